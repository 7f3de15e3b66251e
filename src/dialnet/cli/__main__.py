"""`python -m dialnet.cli ...` runs the command line, as the `dialnet` script does."""

from . import entry

entry()
