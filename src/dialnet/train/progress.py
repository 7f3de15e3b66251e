"""What training shows while it runs: a live bar, one line per epoch, or a notebook display.

``fit(verbose=...)`` picks one of three displays (``progress=True`` is
``verbose=1``):

- ``verbose=1`` on a terminal: a live rich bar over the epochs with the
  latest metrics (:class:`LiveBar`);
- ``verbose=1`` in a Jupyter notebook: a text block updated in place through
  IPython's display machinery (:class:`NotebookDisplay`), which needs no
  ipywidgets;
- ``verbose=2``, or ``verbose=1`` when output is not a terminal (a log file,
  CI, ``nohup``): one complete plain line per epoch (:class:`EpochLines`), as
  Keras ``verbose=2`` prints.

Every display has ``update(epoch, logs)`` after each epoch and ``close()``.
"""

from __future__ import annotations

import sys
import time

from ..errors import InvalidValueError

VERBOSITY = (0, 1, 2)


def check_verbose(verbose, progress) -> int:
    """The verbosity asked for: ``verbose`` (0, 1, 2; True is 1) or else the ``progress`` alias."""
    if verbose is None:
        verbose = progress
    if verbose is None or verbose is False:
        return 0
    if verbose is True:
        return 1
    if isinstance(verbose, int) and verbose in VERBOSITY:
        return int(verbose)
    raise InvalidValueError(
        "verbose must be 0, 1 or 2",
        expected="0 (silent), 1 (a live bar, or one line per epoch when output is not a terminal), 2 (one line per epoch)",
        got=repr(verbose),
        fix="pass verbose=1, or leave it out",
    )


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), where a terminal bar cannot redraw."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = getattr(ipython, "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def format_logs(logs) -> str:
    """``loss 0.1234 - accuracy 0.9500 - val_loss ...``: every metric but the learning rate, 4 decimals."""
    return " - ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "lr")


def epoch_line(epoch, epochs, logs, elapsed) -> str:
    """One complete line for an epoch: ``epoch 3/20 - loss ... - val_... - lr ... - 1.2s``."""
    parts = [f"epoch {epoch + 1}/{epochs}"]
    text = format_logs(logs)
    if text:
        parts.append(text)
    if "lr" in logs:
        parts.append(f"lr {logs['lr']:.3g}")
    parts.append(f"{elapsed:.1f}s")
    return " - ".join(parts)


def make_display(verbose, epochs, completed=0, stream=None):
    """The display for ``verbose`` (see the module docs), or None for 0."""
    if not verbose:
        return None
    stream = sys.stdout if stream is None else stream
    if verbose == 1:
        if in_notebook():
            return NotebookDisplay(epochs, completed)
        isatty = getattr(stream, "isatty", None)
        if isatty is not None and isatty():
            return LiveBar(epochs, completed)
    return EpochLines(epochs, stream)


class EpochLines:
    """One plain line per epoch, flushed at once (log files and CI see every epoch)."""

    def __init__(self, epochs, stream):
        self.epochs, self.stream = epochs, stream
        self.started = time.perf_counter()

    def update(self, epoch, logs):
        self.stream.write(epoch_line(epoch, self.epochs, logs, time.perf_counter() - self.started) + "\n")
        self.stream.flush()

    def close(self):
        pass


class NotebookDisplay:
    """A text block in a notebook cell, replaced after every epoch (IPython's display; no ipywidgets)."""

    def __init__(self, epochs, completed=0):
        from IPython.display import display  # noqa: PLC0415  (only inside a notebook)

        self.epochs = epochs
        self.started = time.perf_counter()
        self.lines = []
        self.handle = display(self._text(f"epoch {completed}/{epochs}"), display_id=True)

    @staticmethod
    def _text(text):
        from IPython.display import Pretty  # noqa: PLC0415

        return Pretty(text)

    def update(self, epoch, logs):
        line = epoch_line(epoch, self.epochs, logs, time.perf_counter() - self.started)
        self.lines = (self.lines + [line])[-10:]  # the last ten epochs, newest last
        bar = "#" * round(30 * (epoch + 1) / self.epochs)
        head = f"[{bar:<30}] epoch {epoch + 1}/{self.epochs}"
        self.handle.update(self._text("\n".join([head, *self.lines])))

    def close(self):
        pass


class LiveBar:
    """A rich progress bar over the epochs, redrawn in place on a terminal."""

    def __init__(self, epochs, completed=0):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

        self.bar = Progress(
            TextColumn("epoch {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.task = self.bar.add_task("train", total=epochs, completed=completed, status="")
        self.bar.start()

    def update(self, epoch, logs):
        self.bar.update(self.task, advance=1, status=format_logs(logs).replace(" - ", "  "))

    def close(self):
        self.bar.stop()
