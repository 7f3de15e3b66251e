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

``check_positive_int``, ``check_number``, ``check_seed``, ``check_lr`` and
``lookup`` (a name in a registry) are the checks every layer shares: one wording for each message.

Not errors: ``DivergenceWarning`` (training stopped on divergence with
``on_divergence="stop"``) and ``TrainingInterrupted`` (Ctrl-C after a
checkpoint was written; a ``KeyboardInterrupt``).
"""

from __future__ import annotations

import math
import numbers


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
    where training will continue from), ``signal_name`` (``"SIGINT"`` or
    ``"SIGTERM"``: a SIGTERM is handled like Ctrl-C).
    """

    def __init__(self, message, checkpoint=None, epoch=None, step=None, signal_name="SIGINT"):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.epoch = epoch
        self.step = step
        self.signal_name = signal_name  # "SIGINT" (Ctrl-C) or "SIGTERM" (a scheduler, `docker stop`, `kill`)


def type_name(value) -> str:
    """A short description of a value for error messages."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {getattr(value, 'dtype', '?')}"
    return f"{type(value).__name__} {value!r}"[:200]


# ------------------------------------------------------------- shared checks
# Every layer checks a few kinds of numbers the same way: the checks live
# here, at the floor, so each message is written once.


def check_positive_int(value, name, fix=None) -> int:
    """``value`` as an ``int`` >= 1, or an :class:`InvalidValueError` naming ``name``.

    ``True``/``False`` and floats are refused even when they equal a whole
    number: a flag or a fraction passed as a count is a mistake.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidValueError(
            f"{name} must be a positive integer",
            expected="an int >= 1",
            got=repr(value),
            fix=fix or f"pass a whole number >= 1 for {name}",
        )
    return int(value)


def check_number(name, value, low=0.0, high=None, low_open=False) -> float:
    """``value`` as a finite float with ``low <= value`` (``<`` with ``low_open``) and ``value < high``.

    For settings such as a learning rate, a momentum or a decay factor; the
    error names the setting and the range.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    bad = not math.isfinite(number) or number < low or (low_open and number == low) or (high is not None and number >= high)
    if bad:
        bounds = f"{'>' if low_open else '>='} {low}" + (f" and < {high}" if high is not None else "")
        raise InvalidValueError(
            f"setting {name} is out of range",
            expected=f"a number {bounds}",
            got=repr(value),
            fix=f"choose a valid {name}",
        )
    return number


def check_seed(seed, name="seed"):
    """``seed`` as an ``int`` >= 0 (None passes through), or an :class:`InvalidValueError` naming ``name``.

    NumPy's generators take seeds >= 0 only; a negative or fractional seed
    is refused here, at the boundary, with one message for the API and the CLI.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidValueError(
            f"{name} must be a whole number >= 0",
            expected="an int >= 0 (or None for a fresh random seed)",
            got=repr(seed)[:80],
            fix=f"pass e.g. {name}=0" if name == "seed" else f"pass e.g. {name} 0",
        )
    return int(seed)


def check_lr(lr, name="lr"):
    """A learning rate as a float > 0 (None passes through): ``fit(lr="fast")`` is an error that says so."""
    if lr is None:
        return None
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise InvalidValueError(
            f"{name} is out of range: a learning rate is a number",
            expected="a number > 0, e.g. 0.001",
            got=repr(lr)[:80],
            fix=f"pass e.g. {name}=0.001 (Adam) or {name}=0.1 (SGD)",
        )
    return check_number(name, lr, low=0.0, low_open=True)


def lookup(table: dict, name, what: str, fix: str, also=()):
    """``table[str(name).lower()]``: a name looked up in a registry, or a ConfigError listing the names.

    ``what`` names the kind of thing (``"loss"``, ``"optimizer"``...), ``also``
    adds names accepted elsewhere to the list in the message.
    """
    try:
        return table[str(name).lower()]
    except KeyError:
        raise ConfigError(
            f"unknown {what} {name!r}",
            expected="one of " + ", ".join(sorted(table)) + "".join(f" or {a!r}" for a in also),
            got=repr(name),
            fix=fix,
        ) from None
