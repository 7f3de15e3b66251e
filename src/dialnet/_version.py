"""The version, in one place: pyproject.toml reads it, and so do model files and the CLI."""

__version__ = "0.1.0"
