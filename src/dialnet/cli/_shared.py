"""What the command modules share: exit codes, option parsing helpers, the console and number formatting.

Only the standard library is imported at the top (``dialnet --help`` stays
fast); the library's error classes and rich are imported where used.
"""

from __future__ import annotations

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def add_data_arguments(p):
    """Options that say how to read DATA for a saved model (doctor, plot and inspect)."""
    p.add_argument("--target", help="CSV label column, by name or index (default: the last column)")
    p.add_argument("--image-size", type=int, default=None,
                   help="side of the square images (default: what the model was trained on)")


def parse_sizes(text, what="--layers"):
    """'625,20,20,10' -> [625, 20, 20, 10], with a clear error."""
    from ..errors import ConfigError  # noqa: PLC0415

    try:
        sizes = [int(s) for s in str(text).replace(" ", "").split(",") if s != ""]
    except ValueError:
        sizes = []
    if not sizes or any(s <= 0 for s in sizes):
        raise ConfigError(f"{what} must be comma-separated positive integers", expected="e.g. 625,20,20,10", got=repr(text),
                          fix=f"pass {what} 625,20,20,10")
    return sizes


def parse_hidden(text):
    """'20,20' -> [20, 20]; 'none' or '' -> [] (no hidden layer)."""
    if str(text).strip().lower() in ("", "none", "0"):
        return []
    return parse_sizes(text, "--layers")


def parse_certainty(text):
    """'0.9' -> 0.9; 'none'/'off'/'0' -> None."""
    from ..errors import InvalidValueError  # noqa: PLC0415

    if text is None or str(text).strip().lower() in ("none", "off", "0", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise InvalidValueError("--target-certainty must be a certainty in (0, 1], or 'none'", expected="e.g. 0.9",
                                got=repr(text), fix="pass --target-certainty 0.9, or --target-certainty none to train all epochs")
    return value


def check_limit(limit, low=1):
    """``--limit`` must be a whole number >= ``low`` when given."""
    from ..errors import InvalidValueError  # noqa: PLC0415

    if limit is not None and limit < low:
        raise InvalidValueError("--limit is out of range", expected=f"a whole number >= {low}", got=repr(limit),
                                fix="e.g. --limit 1000")


def format_certainties(probs, class_names, top=3):
    """'0.95 eight, 0.02 three, 0.01 five': the ``top`` largest certainties, largest first (top=0: all)."""
    import numpy as np  # noqa: PLC0415

    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, kind="stable")
    if top:
        order = order[:top]
    names = class_names or [str(i) for i in range(len(probs))]
    return ", ".join(f"{probs[i]:.2f} {names[i]}" for i in order)


def console():
    """A rich console for tables; wide enough for a 10-class confusion matrix."""
    from rich.console import Console  # noqa: PLC0415

    c = Console(highlight=False)
    if not c.is_terminal:
        c = Console(highlight=False, width=120)
    return c
