"""One error hierarchy for everything a user can get wrong.

Every message says what was wrong, what was expected, what was given and
how to fix it, so the command line can print it on one line and stop.
"""

from __future__ import annotations


class DialnetError(Exception):
    """Base class of every error dialnet raises on bad input.

    Parameters
    ----------
    what : str
        What was wrong, e.g. ``"input X has 3 columns"``.
    expected, got : str, optional
        What dialnet expected and what it was given.
    fix : str, optional
        How to fix it; the CLI prints it as a hint.
    """

    def __init__(self, what: str, *, expected=None, got=None, fix=None):
        self.what = what
        self.expected = expected
        self.got = got
        self.fix = fix
        super().__init__(self._format())

    def _format(self) -> str:
        text = self.what
        parts = []
        if self.expected is not None:
            parts.append(f"expected {self.expected}")
        if self.got is not None:
            parts.append(f"got {self.got}")
        if parts:
            text += ": " + ", ".join(parts)
        if self.fix:
            text += f". Fix: {self.fix}"
        return text

    def __reduce__(self):  # keep pickling (multiprocessing, joblib) working
        return (_rebuild, (type(self), self.what, self.expected, self.got, self.fix))


def _rebuild(cls, what, expected, got, fix):
    return cls(what, expected=expected, got=got, fix=fix)


class ShapeError(DialnetError, ValueError):
    """An array has the wrong number of dimensions or the wrong width."""


class InvalidValueError(DialnetError, ValueError):
    """A value is out of range, not finite, or otherwise unusable."""


class DataError(DialnetError, ValueError):
    """A data set (labels, CSV, IDX, images) cannot be used as given."""


class ConfigError(DialnetError, ValueError):
    """An option, name or combination of options is not supported."""


class ModelFileError(DialnetError, ValueError):
    """A model or checkpoint file is missing, corrupt, hostile or foreign."""


class DivergenceError(DialnetError, FloatingPointError):
    """Training produced a non-finite loss or gradient."""


def type_name(value) -> str:
    """A short description of a value for error messages."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {getattr(value, 'dtype', '?')}"
    return f"{type(value).__name__} {value!r}"[:200]
