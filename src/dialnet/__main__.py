"""`python -m dialnet ...` runs the command line, as the `dialnet` script does."""

from .cli import entry

entry()
