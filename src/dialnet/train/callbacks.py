"""What training reports and who may stop it: the History, the Callback hooks and the Keras-style callbacks.

The fit loop appends one dict of metrics per epoch to a :class:`History` and
hands the same dict to every :class:`Callback`; a callback returning True
from ``on_epoch_end`` stops training. Callbacks whose state matters for
resuming (counters, best weights) give it to the checkpoint and take it back.

The callbacks Keras users reach for: :class:`EarlyStopping`,
:class:`ModelCheckpoint` (the best model so far, saved atomically),
:class:`CSVLogger` (one row per epoch), :class:`LearningRateScheduler`
(``lr = schedule(epoch, lr)`` before every epoch), and
``ReduceLROnPlateau`` (a :mod:`~dialnet.train.schedules` schedule, taken in
the callbacks list too). :func:`check_callbacks` turns anything else into a
clear error, and :func:`class_weights` turns ``class_weight`` into row weights.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from .. import backend
from ..errors import ConfigError, DataError, InvalidValueError, type_name
from ..files import modelfile
from ..files.checkpoint import check_arrays_like
from .schedules import Schedule


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
        self.engine = None  # "compiled" or "numpy": which engine ran the steps (dialnet.train.compiled)
        self.engine_load_time = 0.0  # seconds the compiled step took to compile or load, when this run did it

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

    def table(self, last=None):
        """``(header, rows)``: one row per epoch (``last`` of them, or all): the epoch and every metric."""
        keys = list(self.history)
        epochs = self.epochs if last is None else self.epochs[-last:]
        offset = len(self.epochs) - len(epochs)
        rows = [[str(e + 1)] + [_cell(self.history[k][offset + i]) for k in keys] for i, e in enumerate(epochs)]
        return ["epoch", *keys], rows

    def __str__(self):
        header, rows = self.table(last=20)
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
        lines = [f"History: {len(self.epochs)} epochs, {self.stop_reason or 'not trained'}"]
        if len(self.epochs) > len(rows):
            lines.append(f"(the last {len(rows)} epochs)")
        lines += ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in [header, *rows]]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))

    def _repr_html_(self):
        header, rows = self.table(last=50)
        head = "".join(f"<th>{_escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        note = f"<p>{len(self.epochs)} epochs; {_escape(self.stop_reason or 'not trained')}</p>"
        return f"{note}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _escape(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Callback:
    """Hooks into the fit loop. Return True from ``on_epoch_end`` to stop training.

    A callback with state that matters for resuming (counters, best values)
    returns it from ``checkpoint_state`` and takes it back in
    ``restore_state``; the default keeps nothing.
    """

    optimizer = None

    def set_optimizer(self, optimizer):
        """The run's optimizer (``self.optimizer``), given before :meth:`on_train_begin`."""
        self.optimizer = optimizer

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
        key is missing (no validation data).
    min_delta : float
        How much better than the best so far a value must be to count.
    restore_best_weights : bool
        End with the dials of the best epoch (default), unless training
        stopped because ``target_certainty`` was reached: then the weights
        that reached it are kept.
    mode : {"auto", "min", "max"}
        Whether lower ("min") or higher ("max") is better; "auto" is "max"
        for accuracy, certainty and score and "min" otherwise, as in Keras.
    verbose : int
        1 prints a line when training stops (as Keras does).

    The rule is in two small methods a subclass may change:
    :meth:`resets_patience` (does this value count as an improvement) and
    :meth:`is_new_best` (does it become the best, whose weights are kept).
    """

    def __init__(self, patience=10, monitor="val_loss", min_delta=0.0, restore_best_weights=True, mode="auto", verbose=0):
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
        self.mode = mode
        self.sign = _sign(mode, monitor)  # values are multiplied by it: lower is always better inside
        self.verbose = verbose
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
        return self.track(epoch, (self.sign if key == self.monitor else 1) * logs[key], key, net)

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
            if getattr(self, "verbose", 0):
                print(f"Epoch {epoch + 1}: {self.reason}")
            return True
        return False

    def stop_message(self, what) -> str:
        return (
            f"early stopping: {what} has not improved for {self.patience} epochs "
            f"(best {(self.sign if what == self.monitor else 1) * self.best:.4f} at epoch {self.best_epoch + 1})"
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


def _sign(mode, monitor) -> int:
    """+1 when lower is better, -1 when higher is."""
    if mode not in ("auto", "min", "max"):
        raise InvalidValueError(
            f"unknown mode {mode!r}", expected="'auto', 'min' or 'max'", got=repr(mode),
            fix="use mode='max' for a metric where higher is better, or leave mode out",
        )
    if mode == "auto":
        higher = any(word in str(monitor) for word in ("acc", "certainty", "score", "auc", "r2"))
        return -1 if higher else 1
    return -1 if mode == "max" else 1


class ModelCheckpoint(Callback):
    """Save the model after every epoch where ``monitor`` improved (Keras' ``save_best_only=True``).

    Parameters
    ----------
    path : str or path
        The model file, written atomically (a ``.safetensors`` that
        ``dialnet.load`` and the CLI read); ``{epoch}`` in the name is
        replaced by the epoch number (1-based).
    monitor : str
        A key of the epoch's logs; ``"loss"`` when it is missing.
    mode : {"auto", "min", "max"}
        As in :class:`EarlyStopping`.
    save_best_only : bool
        Only when ``monitor`` improved (default); False saves every epoch.
    verbose : int
        1 prints a line for every save (as Keras does).
    """

    def __init__(self, path, monitor="val_loss", mode="auto", save_best_only=True, verbose=0):
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise InvalidValueError("ModelCheckpoint needs a file path", expected="a path such as 'best.safetensors'",
                                    got=type_name(path), fix="pass ModelCheckpoint('best.safetensors')")
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = mode
        self.sign = _sign(mode, monitor)
        self.save_best_only = bool(save_best_only)
        self.verbose = verbose
        self.saved = []

    def on_train_begin(self, net, history):
        self.best = math.inf
        self.best_epoch = None
        self.saved = []

    def on_epoch_end(self, epoch, logs, net):
        key = self.monitor if self.monitor in logs else "loss"
        value = (self.sign if key == self.monitor else 1) * logs[key]
        if self.save_best_only and not value < self.best:
            return False
        self.best, self.best_epoch = min(self.best, value), epoch
        path = self.path.replace("{epoch}", str(epoch + 1))
        modelfile.save(net, path)
        self.saved.append(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: {key} {logs[key]:.4f}, saved the model to {path}")
        return False

    def checkpoint_state(self):
        return {"best": float(self.best), "best_epoch": self.best_epoch}, {}

    def restore_state(self, state, arrays, net):
        self.best, self.best_epoch = float(state.get("best", math.inf)), state.get("best_epoch")


class CSVLogger(Callback):
    """Append one CSV row per epoch to ``path``: the epoch (1-based) and every metric of its logs.

    The file is flushed after every row, so a log of a running (or crashed)
    training is complete up to the last epoch. ``append=True`` continues an
    existing file instead of starting a new one.
    """

    def __init__(self, path, separator=",", append=False):
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise InvalidValueError("CSVLogger needs a file path", expected="a path such as 'training.csv'",
                                    got=type_name(path), fix="pass CSVLogger('training.csv')")
        self.path = os.fspath(path)
        self.separator = separator
        self.append = bool(append)
        self.file = self.writer = self.keys = None

    def on_train_begin(self, net, history):
        exists = self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self.file = open(self.path, "a" if self.append else "w", newline="", encoding="utf-8")  # noqa: SIM115
        self.writer = csv.writer(self.file, delimiter=self.separator)
        self.keys = None
        self.header_written = exists

    def on_epoch_end(self, epoch, logs, net):
        if self.keys is None:
            self.keys = list(logs)
            if not self.header_written:
                self.writer.writerow(["epoch", *self.keys])
        self.writer.writerow([epoch + 1] + [logs.get(k, "") for k in self.keys])
        self.file.flush()
        return False

    def on_train_end(self, net, history):
        if self.file is not None:
            self.file.close()
            self.file = None


class LearningRateScheduler(Callback):
    """Set the learning rate before every epoch to ``schedule(epoch, lr)`` (epoch counted from 0), as in Keras."""

    def __init__(self, schedule, verbose=0):
        self.verbose = verbose
        if not callable(schedule):
            raise InvalidValueError("LearningRateScheduler needs a function", expected="schedule(epoch, lr) -> new lr",
                                    got=type_name(schedule), fix="e.g. LearningRateScheduler(lambda e, lr: lr * 0.95)")
        self.schedule = schedule

    def _apply(self, epoch):
        opt = self.optimizer
        if opt is None or opt.lr is None:
            raise ConfigError("LearningRateScheduler needs an optimizer with a learning rate",
                              expected="adam, sgd, adamw or rmsprop", got=type(opt).__name__,
                              fix="leave LearningRateScheduler out with optimizer='lbfgs'")
        lr = self.schedule(epoch, opt.lr)
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)) or not (0 < lr < math.inf):
            raise InvalidValueError("the learning-rate schedule returned a bad learning rate",
                                    expected="a finite number > 0", got=repr(lr),
                                    fix="make schedule(epoch, lr) return a positive number")
        opt.lr = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting the learning rate to {opt.lr:g}")

    def on_train_begin(self, net, history):
        self._apply(len(history.epochs))

    def on_epoch_end(self, epoch, logs, net):
        self._apply(epoch + 1)
        return False


def check_callbacks(callbacks, schedule):
    """``(callbacks, schedule)``: the Callback instances as a list, and the one learning-rate schedule.

    A :class:`~dialnet.train.schedules.Schedule` in the list (Keras puts
    ``ReduceLROnPlateau`` there) becomes the schedule; anything that is
    neither raises a :class:`~dialnet.errors.ConfigError`.
    """
    if callbacks is None:
        return [], schedule
    if isinstance(callbacks, (Callback, Schedule)):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise ConfigError("callbacks must be a list", expected="a list of dialnet Callbacks",
                          got=type_name(callbacks), fix="pass callbacks=[dialnet.EarlyStopping(5)]")
    out = []
    for cb in callbacks:
        if isinstance(cb, Schedule):
            if schedule is not None and schedule is not cb:
                raise ConfigError("two learning-rate schedules", expected="one schedule (lr_schedule or in callbacks)",
                                  got=f"{type(schedule).__name__} and {type(cb).__name__}",
                                  fix="keep one of them")
            schedule = cb
        elif isinstance(cb, Callback):
            out.append(cb)
        else:
            raise ConfigError(
                f"{type_name(cb)} is not a dialnet callback",
                expected="instances of dialnet.Callback (EarlyStopping, ModelCheckpoint, CSVLogger, "
                "LearningRateScheduler, DoctorCallback, ...) or a schedule such as ReduceLROnPlateau()",
                got=type_name(cb),
                fix="pass an instance (e.g. dialnet.EarlyStopping(patience=5), not the class), or subclass "
                "dialnet.Callback (Keras callbacks do not run in dialnet)",
            )
    return out, schedule


def class_weights(class_weight, Y, W, task, n_outputs, dtype):
    """Row weights from ``class_weight`` ("balanced" or ``{class_index: weight}``) times ``W`` (or 1)."""
    if task not in ("classification", "binary"):
        raise ConfigError("class_weight needs class labels", expected="a single-label classification (softmax or one sigmoid)",
                          got=f"task {task!r}", fix="leave class_weight out, or pass sample_weight")
    xp = backend.xp
    if Y.ndim == 1:
        index = Y
    elif Y.shape[1] == 1:
        index = (Y[:, 0] >= 0.5).astype(np.int64)
    else:
        index = Y.argmax(axis=1)
    index = backend.to_numpy(index).astype(np.int64)
    k = max(n_outputs, 2)
    counts = np.bincount(index, minlength=k)
    if isinstance(class_weight, str) and class_weight == "balanced":
        with np.errstate(divide="ignore"):
            per_class = np.where(counts > 0, len(index) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    elif isinstance(class_weight, dict):
        per_class = np.ones(k)
        for label, weight in class_weight.items():
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < k:
                raise ConfigError("class_weight has a key that is not a class", expected=f"class indices 0..{k - 1}",
                                  got=repr(label), fix="key the dict by class index, e.g. {0: 1.0, 1: 5.0}")
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)) or not 0 <= weight < math.inf:
                raise InvalidValueError("class weights must be finite numbers >= 0", expected="e.g. 1.0 or 5.0",
                                        got=repr(weight), fix="give every class a weight >= 0")
            per_class[int(label)] = float(weight)
    else:
        raise ConfigError("unknown class_weight", expected="'balanced' or a dict {class_index: weight}",
                          got=repr(class_weight), fix="use class_weight='balanced'")
    w = per_class[index]
    if W is not None:
        w = w * backend.to_numpy(W).astype(np.float64)
    if not w.sum() > 0:
        raise DataError("class_weight leaves every row with weight 0", expected="a positive weight for some class",
                        got=repr(class_weight), fix="give at least one class present in y a weight > 0")
    return xp.asarray(w.astype(dtype))


def _is_whole(value) -> bool:
    try:
        return int(value) == value
    except (TypeError, ValueError, OverflowError):
        return False
