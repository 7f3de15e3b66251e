"""What training reports and who may stop it: the History, the Callback hooks and EarlyStopping.

The fit loop appends one dict of metrics per epoch to a :class:`History` and
hands the same dict to every :class:`Callback`; a callback returning True
from ``on_epoch_end`` stops training. Callbacks whose state matters for
resuming (counters, best weights) give it to the checkpoint and take it back.
"""

from __future__ import annotations

import math

from .. import backend
from ..errors import ConfigError, InvalidValueError
from ..files.checkpoint import check_arrays_like


class History:
    """What happened in training: per-epoch metrics and why it stopped.

    ``history.history`` maps ``"loss"``, ``"accuracy"``, ``"val_loss"``,
    ``"val_accuracy"``, ``"certainty"``, ``"val_certainty"`` and ``"lr"`` to
    one value per epoch (keys appear only when they apply). The training
    ``loss``, ``accuracy`` and ``certainty`` are running means over the
    epoch's mini-batches, as they were trained on; the ``val_`` ones are
    measured on the validation data after the epoch.
    ``history.divergences`` lists each non-finite loss or gradient met (a
    dict with the step, the numbers and what was done about it).
    """

    def __init__(self):
        self.history = {}
        self.epochs = []
        self.stop_reason = None
        self.stopped_epoch = None
        self.best_epoch = None
        self.reached_target = False  # stopped because target_certainty was reached
        self.train_time = 0.0
        self.divergences = []

    def to_state(self) -> dict:
        """A JSON-able copy, for checkpoints."""
        return {
            "history": {k: list(v) for k, v in self.history.items()},
            "epochs": list(self.epochs),
            "stop_reason": self.stop_reason,
            "stopped_epoch": self.stopped_epoch,
            "best_epoch": self.best_epoch,
            "divergences": [dict(d) for d in self.divergences],
        }

    def load_state(self, state: dict):
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.epochs = list(state["epochs"])
        self.stop_reason = state["stop_reason"]
        self.stopped_epoch = state["stopped_epoch"]
        self.best_epoch = state["best_epoch"]
        self.divergences = [dict(d) for d in state.get("divergences", []) if isinstance(d, dict)]

    def append(self, epoch, logs):
        self.epochs.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epochs)}, last={last}, stop_reason={self.stop_reason!r})"


class Callback:
    """Hooks into the fit loop. Return True from ``on_epoch_end`` to stop training.

    A callback with state that matters for resuming (counters, best values)
    returns it from ``checkpoint_state`` and takes it back in
    ``restore_state``; the default keeps nothing.
    """

    def on_train_begin(self, net, history):
        pass

    def on_epoch_end(self, epoch, logs, net):
        return False

    def on_train_end(self, net, history):
        pass

    def checkpoint_state(self):
        """``(json_state, arrays)``: a JSON-able dict and a ``{name: ndarray}`` dict."""
        return {}, {}

    def restore_state(self, state, arrays, net):
        """Take back what :meth:`checkpoint_state` gave (after ``on_train_begin``)."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for more than ``patience`` epochs.

    Parameters
    ----------
    patience : int or math.inf
        Epochs without improvement that are tolerated; training stops on the
        next one. ``math.inf`` never stops, but still tracks (and with
        ``restore_best_weights`` restores) the best epoch.
    monitor : str
        A key of the epoch's logs, e.g. ``"val_loss"``; ``"loss"`` when the
        key is missing (no validation data). Lower is better.
    min_delta : float
        How much lower than the best so far a value must be to count.
    restore_best_weights : bool
        End with the dials of the best epoch (default), unless training
        stopped because ``target_certainty`` was reached: then the weights
        that reached it are kept.

    The rule is in two small methods a subclass may change:
    :meth:`resets_patience` (does this value count as an improvement) and
    :meth:`is_new_best` (does it become the best, whose weights are kept).
    """

    def __init__(self, patience=10, monitor="val_loss", min_delta=0.0, restore_best_weights=True):
        if isinstance(patience, bool) or not (patience == math.inf or _is_whole(patience)) or patience < 0:
            raise InvalidValueError(
                "early-stopping patience must be a whole number >= 0",
                expected="an int >= 0 (or math.inf)",
                got=repr(patience),
                fix="e.g. early_stopping=10",
            )
        self.patience = math.inf if patience == math.inf else int(patience)
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.reason = None

    def on_train_begin(self, net, history):
        self.best = math.inf
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0
        self.reason = None

    def resets_patience(self, value) -> bool:
        """True when ``value`` improves on the best by more than ``min_delta`` (the wait starts over)."""
        return value < self.best - self.min_delta

    def is_new_best(self, value) -> bool:
        """True when ``value`` becomes the best (its epoch's weights are kept); here, the same test."""
        return self.resets_patience(value)

    def on_epoch_end(self, epoch, logs, net):
        key = self.monitor if self.monitor in logs else "loss"
        return self.track(epoch, logs[key], key, net)

    def track(self, epoch, value, what, net) -> bool:
        """Count epoch ``epoch``'s ``value`` of ``what``; True when patience has run out."""
        reset, best = self.resets_patience(value), self.is_new_best(value)
        self.wait = 0 if reset else self.wait + 1
        if best:
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = net.copy_weights()
        if self.wait > self.patience:
            self.reason = self.stop_message(what)
            return True
        return False

    def stop_message(self, what) -> str:
        return (
            f"early stopping: {what} has not improved for {self.patience} epochs "
            f"(best {self.best:.4f} at epoch {self.best_epoch + 1})"
        )

    def on_train_end(self, net, history):
        # the weights that reached the target certainty are the ones asked for: keep them
        if getattr(history, "reached_target", False):
            return
        if self.restore_best_weights and self.best_weights is not None:
            net.set_weights(self.best_weights)
            history.best_epoch = self.best_epoch

    def checkpoint_state(self):
        state = {"best": float(self.best), "best_epoch": self.best_epoch, "wait": self.wait}
        arrays = {f"best.{i}": backend.to_numpy(w) for i, w in enumerate(self.best_weights or [])}
        state["n_best_weights"] = len(arrays) if self.best_weights is not None else None
        return state, arrays

    def restore_state(self, state, arrays, net):
        best, best_epoch, wait, n_best = (state.get(k) for k in ("best", "best_epoch", "wait", "n_best_weights"))
        params = [backend.to_numpy(p) for p in net.parameters()]
        ok = (
            isinstance(best, (int, float))
            and (best_epoch is None or isinstance(best_epoch, int))
            and isinstance(wait, int)
            and (n_best is None or n_best == len(params))
        )
        weights = check_arrays_like(arrays, "best.", params) if ok else {}
        if not ok or (n_best is not None and len(weights) != n_best):
            raise ConfigError(
                "the checkpoint's early-stopping state does not fit this run",
                expected=f"best, best_epoch, wait and {len(params)} weight arrays",
                got=repr(state)[:120],
                fix="resume with the same early_stopping setting, or start again without resume",
            )
        self.best, self.best_epoch, self.wait = float(best), best_epoch, wait
        self.best_weights = None if n_best is None else [backend.xp.asarray(weights[str(i)]).copy() for i in range(n_best)]


def _is_whole(value) -> bool:
    try:
        return int(value) == value
    except (TypeError, ValueError, OverflowError):
        return False
