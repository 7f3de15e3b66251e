"""One error hierarchy for everything a user can get wrong.

Every message says what was wrong, what was expected, what was given and
how to fix it, so the command line can print it on one line and stop.

=====================  ===========================================  ======================
class                  raised for                                   also a
=====================  ===========================================  ======================
``ShapeError``         wrong number of dimensions or columns        ``ValueError``
``InvalidValueError``  a number out of range, NaN/inf in inputs     ``ValueError``
``DataError``          labels, CSV/IDX/image data sets              ``ValueError``
``ConfigError``        unknown names, bad option combinations       ``ValueError``
``ModelFileError``     missing/corrupt/hostile model or checkpoint  ``ValueError``
``DivergenceError``    a non-finite loss or gradient in training    ``FloatingPointError``
=====================  ===========================================  ======================

Not errors: ``DivergenceWarning`` (training stopped on divergence with
``on_divergence="stop"``) and ``TrainingInterrupted`` (Ctrl-C after a
checkpoint was written; a ``KeyboardInterrupt``).
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
        text = _one_line(self.what)
        parts = []
        if self.expected is not None:
            parts.append(f"expected {_one_line(self.expected)}")
        if self.got is not None:
            parts.append(f"got {_one_line(self.got)}")
        if parts:
            text += ": " + ", ".join(parts)
        if self.fix:
            text += f". Fix: {self.fix}"
        return text

    def __reduce__(self):  # keep pickling (multiprocessing, joblib) working
        return (_rebuild, (type(self), self.what, self.expected, self.got, self.fix))


def _rebuild(cls, what, expected, got, fix):
    return cls(what, expected=expected, got=got, fix=fix)


_MAX_PART = 300


def _one_line(value) -> str:
    """Messages are printed on one line: fold newlines, cut runaway text (a hostile file's contents)."""
    text = " ".join(str(value).split())
    return text if len(text) <= _MAX_PART else text[: _MAX_PART - 3] + "..."


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
    """Training produced a non-finite loss or gradient.

    Raised after the network was set back to its last good weights (those
    from before the step where the non-finite value appeared). Attributes:
    ``details`` (a dict: epoch, step, loss, grad_norm, lr, input_scale,
    cause, ...) and ``history`` (the History up to that point).
    """

    details = None
    history = None


class DivergenceWarning(RuntimeWarning):
    """Training stopped early on a non-finite loss or gradient (``on_divergence="stop"``)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the current step finished and a checkpoint was written.

    Attributes: ``checkpoint`` (its path), ``epoch`` and ``step`` (1-based,
    where training will continue from).
    """

    def __init__(self, message, checkpoint=None, epoch=None, step=None):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.epoch = epoch
        self.step = step


def type_name(value) -> str:
    """A short description of a value for error messages."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {getattr(value, 'dtype', '?')}"
    return f"{type(value).__name__} {value!r}"[:200]
