"""The fit loop: mini-batch gradient descent with history, callbacks and stopping rules.

Reliability, in the loop itself:

- Divergence guard. The loss is checked after every forward pass
  (``math.isfinite``, nothing more per step) and the weights once per epoch
  and before every checkpoint. A non-finite gradient always shows up as a
  non-finite weight after the update and so as a non-finite loss on the
  next step, so when either check fails the loop rewinds to an in-memory
  snapshot taken at the start of the epoch and replays the steps, checking
  every one, to find the exact step where the non-finite value appeared.
  The network keeps the weights from before that step; the error names
  the step and the numbers (gradient norm, weight norm, learning rate,
  input scale) and a likely cause. ``on_divergence`` picks what happens:
  ``"raise"`` (default) raises :class:`~dialnet.errors.DivergenceError`,
  ``"stop"`` returns with ``history.stop_reason`` and a
  :class:`~dialnet.errors.DivergenceWarning`, ``"halve"`` halves the
  learning rate and carries on from that step, at most
  ``divergence_retries`` times.
- Checkpoints. ``checkpoint=path`` writes everything needed to continue to
  the same bits (see :mod:`dialnet.checkpoint`) every ``checkpoint_every``
  optimizer steps, or at the end of every epoch when that is left out;
  ``resume=path`` continues from one. Ctrl-C finishes the current step,
  writes a checkpoint and raises :class:`~dialnet.errors.TrainingInterrupted`.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import threading
import time
import warnings

import numpy as np

from .. import backend
from ..errors import (
    ConfigError,
    DataError,
    DivergenceError,
    DivergenceWarning,
    InvalidValueError,
    ShapeError,
    TrainingInterrupted,
    type_name,
)
from ..core.layers import Dense, Dropout
from ..files import checkpoint as ckpt
from ..files.checkpoint import check_arrays_like
from ..files.modelfile import network_metadata
from ..core.losses import get_loss
from .optimizers import Adam, get_optimizer, get_schedule


class History:
    """What happened in training: per-epoch metrics and why it stopped.

    ``history.history`` maps ``"loss"``, ``"accuracy"``, ``"val_loss"``,
    ``"val_accuracy"``, ``"certainty"``, ``"val_certainty"`` and ``"lr"`` to
    one value per epoch (keys appear only when they apply).
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
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` (default) the network ends with the dials
    of its best epoch.
    """

    def __init__(self, patience=10, monitor="val_loss", min_delta=0.0, restore_best_weights=True):
        if isinstance(patience, bool) or int(patience) < 0:
            raise InvalidValueError(
                "early-stopping patience must be a whole number >= 0",
                expected="an int >= 0",
                got=repr(patience),
                fix="e.g. early_stopping=10",
            )
        self.patience = int(patience)
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, net, history):
        self.best = math.inf
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0

    def on_epoch_end(self, epoch, logs, net):
        key = self.monitor if self.monitor in logs else "loss"
        value = logs[key]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = net.copy_weights()
            return False
        self.wait += 1
        if self.wait > self.patience:
            self.reason = (
                f"early stopping: {key} has not improved for {self.patience} epochs "
                f"(best {self.best:.4f} at epoch {self.best_epoch + 1})"
            )
            return True
        return False

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


def _as_labels(Y):
    """Class indices from label vectors or one-hot/probability rows."""
    return Y if Y.ndim == 1 else Y.argmax(axis=1)


def _metrics(net, P, Y):
    """Accuracy and mean certainty of the true class, where they apply."""
    xp = backend.xp
    task = net.task
    out = {}
    if task == "classification":
        labels = _as_labels(Y)
        out["accuracy"] = float((P.argmax(axis=1) == labels).mean())
        if P.shape[1] > 1:
            out["certainty"] = float(P[xp.arange(P.shape[0]), labels].mean())
    elif task in ("binary", "multilabel"):
        pred = P >= 0.5
        truth = Y >= 0.5
        out["accuracy"] = float((pred == truth).all(axis=1).mean())
        out["certainty"] = float(xp.where(truth, P, 1 - P).mean())
    return out


def _evaluate_prepared(net, X, Y, loss, batch_size=4096):
    n = X.shape[0]
    total = 0.0
    parts = []
    fused = net._fused(loss)
    for i in range(0, n, batch_size):
        Xb, Yb = X[i : i + batch_size], Y[i : i + batch_size]
        P = net._forward(Xb)
        v = loss.value_from_logits(net.layers[-1].z, Yb) if fused else loss.value(P, Yb)
        total += v * Xb.shape[0]
        parts.append(P.copy())
    P = parts[0] if len(parts) == 1 else backend.xp.concatenate(parts)
    logs = {"loss": total / n}
    logs.update(_metrics(net, P, Y))
    return logs


def evaluate_arrays(net, X, y, loss, batch_size=4096):
    X = net._check_X(X)
    Y = loss.prepare(y, X.shape[0], net.n_outputs, net.dtype)
    return _evaluate_prepared(net, X, Y, loss, batch_size)


def evaluate_network(net, X, y, loss=None, batch_size=4096):
    """Loss and (for classification tasks) accuracy and certainty on a data set, as a dict.

    ``loss`` defaults to the network's own (cross-entropy for softmax, ...).
    """
    return evaluate_arrays(net, X, y, get_loss(loss) if loss is not None else net.default_loss(), batch_size)


def _infer_task(net, loss, y):
    y = np.asarray(y)
    if loss.name == "cross_entropy":
        return "classification"
    if loss.name == "binary_cross_entropy":
        return "binary" if net.n_outputs == 1 else "multilabel"
    if y.ndim == 1 and net.n_outputs > 1:
        return "classification"  # labels with squared error: the classic recipe
    return "regression"


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidValueError(
            f"{name} must be a positive integer",
            expected="an int >= 1",
            got=repr(value),
            fix=f"pass e.g. {name}=32" if name == "batch_size" else f"pass a positive {name}",
        )
    return int(value)


def _split_validation(X, Y, validation_split, rng):
    if not 0.0 < validation_split < 1.0:
        raise InvalidValueError(
            "validation_split must be between 0 and 1",
            expected="0 < validation_split < 1",
            got=repr(validation_split),
            fix="e.g. validation_split=0.1 holds out 10% of the rows",
        )
    n = X.shape[0]
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise DataError(
            "too few rows to hold some out for validation",
            expected="at least 1 validation row and 1 training row",
            got=f"{n} rows with validation_split={validation_split}",
            fix="use more data or leave validation_split out",
        )
    order = rng.permutation(n)
    val, train = order[:n_val], order[n_val:]
    return X[train], Y[train], X[val], Y[val]


class _Progress:
    """A rich progress bar over epochs (imported only when asked for)."""

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

    def update(self, logs):
        status = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "lr")
        self.bar.update(self.task, advance=1, status=status)

    def close(self):
        self.bar.stop()


ON_DIVERGENCE = ("raise", "stop", "halve")


def fit(
    net,
    X,
    y,
    loss=None,
    optimizer=None,
    lr=None,
    epochs=20,
    batch_size=32,
    validation_data=None,
    validation_split=None,
    shuffle=True,
    seed=None,
    target_certainty=None,
    early_stopping=None,
    callbacks=None,
    progress=False,
    lr_schedule=None,
    l2=0.0,
    on_divergence="raise",
    divergence_retries=8,
    checkpoint=None,
    checkpoint_every=None,
    resume=None,
):
    """Train ``net`` on ``(X, y)`` by mini-batch gradient descent with backpropagation.

    Parameters
    ----------
    loss : str or Loss, optional
        Default: cross-entropy for a softmax output, binary cross-entropy
        for a sigmoid yes/no output, squared error otherwise.
    optimizer : str or Optimizer, optional
        Default ``Adam(lr=1e-3)``; a name ('sgd', 'adam', 'rmsprop') uses ``lr``.
    epochs, batch_size : int
        Passes over the data, and samples per gradient step.
    validation_data : (X_val, y_val), optional
    validation_split : float, optional
        Hold out this fraction of (shuffled) rows instead.
    shuffle, seed :
        Reshuffle every epoch from a generator seeded by ``seed``.
    target_certainty : float, optional
        Stop once the mean certainty given to the true class (on validation
        data if there is any) reaches this value, e.g. 0.9.
    early_stopping : int or EarlyStopping, optional
        Patience in epochs on validation loss (training loss if there is no
        validation data); the best weights are restored.
    callbacks : list of Callback
    progress : bool
        Show a progress bar (rich).
    lr_schedule : str or Schedule, optional
        'step', 'exponential', 'cosine', 'plateau' or a Schedule instance.
    l2 : float
        L2 penalty: ``l2 * W`` is added to each weight gradient.
    on_divergence : {"raise", "stop", "halve"}
        What to do when the loss or a gradient becomes NaN or infinite. In
        every case the network is first set back to its weights from before
        the step where that happened. "raise" (default) raises
        ``DivergenceError``; "stop" ends training and returns the History
        with ``stop_reason`` saying why (and warns ``DivergenceWarning``);
        "halve" halves the learning rate and continues from that step, at
        most ``divergence_retries`` times, then raises.
    divergence_retries : int
        How many halvings "halve" may make.
    checkpoint : str or path, optional
        Write a checkpoint here (atomically) every ``checkpoint_every``
        steps, at the end of training, and on Ctrl-C (which then raises
        ``TrainingInterrupted``, a KeyboardInterrupt, after the current step).
    checkpoint_every : int, optional
        In optimizer steps (mini-batches), counted over the whole run; by
        default a checkpoint is written at the end of every epoch.
    resume : str or path, optional
        Continue from this checkpoint: the weights, optimizer state, random
        generators, schedule, early stopping and history come from it (``seed``
        is not used). Pass the same data and settings as the run that wrote it
        (checked); the result has the same bits as a run never interrupted.
        A checkpoint of a finished run returns its History at once.

    Returns
    -------
    History
    """
    loss = get_loss(loss) if loss is not None else net.default_loss()
    if optimizer is None:
        optimizer = Adam(lr=lr if lr is not None else 1e-3)
    else:
        optimizer = get_optimizer(optimizer, lr=lr)
    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    l2 = float(l2)
    if not math.isfinite(l2) or l2 < 0:
        raise InvalidValueError("l2 must be >= 0", expected="a number >= 0", got=repr(l2), fix="e.g. l2=1e-4")
    if target_certainty is not None:
        target_certainty = float(target_certainty)
        if not 0.0 < target_certainty <= 1.0:
            raise InvalidValueError(
                "target_certainty must be in (0, 1]",
                expected="a certainty such as 0.9",
                got=repr(target_certainty),
                fix="pass target_certainty=0.9 to stop at 90% mean certainty",
            )
    if on_divergence not in ON_DIVERGENCE:
        raise ConfigError(
            f"unknown on_divergence {on_divergence!r}",
            expected="one of " + ", ".join(repr(v) for v in ON_DIVERGENCE),
            got=repr(on_divergence),
            fix="use on_divergence='halve' to retry with a smaller learning rate, or leave it out",
        )
    if isinstance(divergence_retries, bool) or not isinstance(divergence_retries, (int, np.integer)) or divergence_retries < 0:
        raise InvalidValueError(
            "divergence_retries must be a whole number >= 0",
            expected="an int >= 0",
            got=repr(divergence_retries),
            fix="e.g. divergence_retries=5",
        )
    if checkpoint_every is not None:
        checkpoint_every = _check_positive_int(checkpoint_every, "checkpoint_every")
        if checkpoint is None:
            raise ConfigError(
                "checkpoint_every needs a checkpoint path",
                expected="checkpoint='run.ckpt.safetensors' with checkpoint_every",
                got="checkpoint_every without checkpoint",
                fix="pass checkpoint=PATH too",
            )
    checkpoint = _check_path(checkpoint, "checkpoint")
    resume = _check_path(resume, "resume")

    state = arrays = None
    if resume is not None:
        stored, state, arrays = ckpt.load(resume)
        _check_same_network(net, stored, resume)
        rng = ckpt.make_generator(state["initial_rng_state"], resume, "the shuffle generator")
    else:
        rng = np.random.default_rng(seed)
    initial_rng_state = ckpt.generator_state(rng)

    X = net._check_X(X)
    Y = loss.prepare(y, X.shape[0], net.n_outputs, net.dtype)
    net.task = _infer_task(net, loss, y)
    net.loss = loss.name
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ShapeError(
                "validation_data must be a pair",
                expected="(X_val, y_val)",
                got=type_name(validation_data),
                fix="pass validation_data=(X_val, y_val)",
            )
        Xv = net._check_X(validation_data[0], "validation X")
        Yv = loss.prepare(validation_data[1], Xv.shape[0], net.n_outputs, net.dtype)
    elif validation_split:
        X, Y, Xv, Yv = _split_validation(X, Y, float(validation_split), rng)
    else:
        Xv = Yv = None
    if target_certainty is not None and net.task not in ("classification", "binary", "multilabel"):
        raise ConfigError(
            "target_certainty needs a classification task",
            expected="class labels with a softmax or sigmoid output",
            got=f"task {net.task!r}",
            fix="leave target_certainty out for regression",
        )

    callbacks = list(callbacks or [])
    if early_stopping is not None and early_stopping is not False:
        callbacks.append(early_stopping if isinstance(early_stopping, EarlyStopping) else EarlyStopping(patience=early_stopping))
    schedule = get_schedule(lr_schedule)
    if schedule is not None:
        schedule.attach(optimizer)

    history = History()
    net.history = history
    for cb in callbacks:
        cb.on_train_begin(net, history)

    run_info = None
    if checkpoint is not None or resume is not None:
        run_info = _run_info(X, Y, Xv, Yv, batch_size, shuffle, loss, l2)
    trainer = _Trainer(
        net, loss, optimizer, schedule, callbacks, history, rng, X, Y, Xv, Yv,
        epochs=epochs, batch_size=batch_size, shuffle=bool(shuffle), l2=l2,
        target_certainty=target_certainty, on_divergence=on_divergence,
        divergence_retries=int(divergence_retries), checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, run_info=run_info,
        initial_rng_state=initial_rng_state, progress=progress,
    )
    if resume is not None:
        trainer.load_checkpoint(stored, state, arrays, resume)
        if trainer.finished:
            history.train_time = trainer.train_time
            return history
    return trainer.run()


def _check_path(path, what):
    if path is None:
        return None
    try:
        return os.fspath(path)
    except TypeError:
        raise ConfigError(
            f"{what} must be a file path",
            expected="a str or pathlib.Path",
            got=type_name(path),
            fix=f"pass {what}='run.ckpt.safetensors'",
        ) from None


def _check_same_network(net, stored, path):
    mine, theirs = network_metadata(net), network_metadata(stored)
    if mine["architecture"] != theirs["architecture"] or mine["dtype"] != theirs["dtype"]:
        raise ConfigError(
            f"the checkpoint {path} holds a different network",
            expected=f"{'-'.join(map(str, net.sizes))} ({net.dtype.name}) like the network being trained",
            got=f"{'-'.join(map(str, stored.sizes))} ({stored.dtype.name})",
            fix="build the same network (sizes, activations, dropout, dtype) before resuming",
        )


def _run_info(X, Y, Xv, Yv, batch_size, shuffle, loss, l2):
    """The settings a resumed run must share with the run that wrote the checkpoint, and a data fingerprint."""
    digest = hashlib.blake2b(digest_size=16)
    for arr in (X, Y, Xv, Yv):
        if arr is None:
            digest.update(b"-")
            continue
        arr = np.ascontiguousarray(backend.to_numpy(arr))
        digest.update(f"{arr.shape}{arr.dtype}".encode())
        digest.update(memoryview(arr).cast("B"))
    return {
        "n_samples": int(X.shape[0]),
        "n_validation": None if Xv is None else int(Xv.shape[0]),
        "batch_size": batch_size,
        "shuffle": bool(shuffle),
        "loss": loss.name,
        "l2": l2,
        "fingerprint": digest.hexdigest(),
    }


class _Diverged(Exception):
    """Internal: a non-finite value was seen; replay steps up to ``upto`` (0-based, inclusive) to find it."""

    def __init__(self, upto):
        super().__init__(upto)
        self.upto = upto


class _SigintGuard:
    """While active (and asked for), Ctrl-C sets ``hit`` instead of raising; a second Ctrl-C raises at once."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.hit = False
        self.previous = None

    def _handler(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __enter__(self):
        self.installed = self.enabled and threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGINT, self.previous if self.previous is not None else signal.SIG_DFL)
        return False


def _norm(arrays) -> float:
    """Euclidean norm of a list of arrays, in float64 (used off the hot path only)."""
    total = 0.0
    for a in arrays:
        a = backend.to_numpy(a)
        total += float(np.square(a, dtype=np.float64).sum())
    return math.sqrt(total)


# The learning rate above which a divergence is blamed on it first.
_HIGH_LR = {"sgd": 1.0}
_HIGH_LR_DEFAULT = 0.1  # adaptive optimizers (Adam, AdamW, RMSprop) move each dial by about lr per step
_INPUT_SCALE_LIMIT = 50.0  # standardized inputs rarely exceed ~10 in absolute value
_EXPLODING_GRAD_NORM = 1e3


class _Trainer:
    """The state of one training run and the loop that advances it."""

    def __init__(self, net, loss, optimizer, schedule, callbacks, history, rng, X, Y, Xv, Yv, *, epochs,
                 batch_size, shuffle, l2, target_certainty, on_divergence, divergence_retries, checkpoint,
                 checkpoint_every, run_info, initial_rng_state, progress):
        self.net, self.loss, self.optimizer, self.schedule = net, loss, optimizer, schedule
        self.callbacks, self.history, self.rng = callbacks, history, rng
        self.X, self.Y, self.Xv, self.Yv = X, Y, Xv, Yv
        self.epochs, self.batch_size, self.shuffle, self.l2 = epochs, batch_size, shuffle, l2
        self.target_certainty = target_certainty
        self.on_divergence, self.divergence_retries = on_divergence, divergence_retries
        self.checkpoint, self.run_info, self.initial_rng_state = checkpoint, run_info, initial_rng_state
        self.checkpoint_every = checkpoint_every if checkpoint is not None else None
        self.progress = progress
        self.params, self.grads = net.parameters(), net.gradients()
        self.weight_grads = [(d.weights, d.grad_weights) for d in net.layers if isinstance(d, Dense)]
        self.dropouts = [layer for layer in net.layers if isinstance(layer, Dropout)]
        self.n = X.shape[0]
        self.n_steps = -(-self.n // batch_size)
        # where training stands: epoch (0-based), steps done in it, their summed loss, steps done in all
        self.epoch = self.step = self.global_step = 0
        self.total = 0.0
        self.retries = 0
        self.finished = False
        self.train_time = 0.0
        self.epoch_rng_state = None
        self.epoch_started = False  # the epoch's shuffle order has been drawn
        # the state at the start of the current epoch: divergence replays and "halve" retries begin here
        self.snapshot = None
        self.resumed_snapshot = None
        self.interrupt = _SigintGuard(enabled=checkpoint is not None)

    # ------------------------------------------------------------ one step

    def apply_update(self):
        """Turn the dials after backprop: the L2 term joins dW, then the optimizer steps.

        The hot loop and the divergence replay both call this, so a replayed
        step is bit for bit the step that ran.
        """
        if self.l2:
            for W, dW in self.weight_grads:
                dW += self.l2 * W
        self.optimizer.step(self.params, self.grads)

    def params_finite(self) -> bool:
        """Every dial finite: one sum per array (NaN and inf survive a sum)."""
        return all(math.isfinite(float(p.sum())) for p in self.params)

    # ------------------------------------------------- in-memory snapshots

    def capture(self) -> dict:
        opt = self.optimizer
        return {
            "params": [p.copy() for p in self.params],
            "optimizer": {k: v.copy() for k, v in opt.state_arrays().items()},
            "t": opt.t,
            "dropout": [d.rng.bit_generator.state for d in self.dropouts],
            "position": (self.step, self.total, self.global_step),
        }

    def restore(self, snap):
        for p, saved in zip(self.params, snap["params"]):
            p[...] = saved
        self.optimizer.load_state_arrays(snap["optimizer"], snap["t"])
        for d, state in zip(self.dropouts, snap["dropout"]):
            d.rng.bit_generator.state = state
        self.step, self.total, self.global_step = snap["position"]

    # ------------------------------------------------------------ the loop

    def run(self):
        history, xp = self.history, backend.xp
        if self.shuffle:
            Xs, Ys = xp.empty_like(self.X), xp.empty_like(self.Y)
        else:
            Xs, Ys = self.X, self.Y
        bar = _Progress(self.epochs, self.epoch) if self.progress else None
        started = time.perf_counter()
        stopped = history.stopped_epoch is not None  # a resumed run whose stopping rule already fired
        try:
            # overflow inside a diverging step is reported by the guard, once, not by NumPy per operation
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"), self.interrupt:
                while self.epoch < self.epochs and not stopped:
                    epoch = self.epoch
                    self.epoch_rng_state = self.rng.bit_generator.state
                    if self.shuffle:
                        order = xp.asarray(self.rng.permutation(self.n))
                        xp.take(self.X, order, axis=0, out=Xs)
                        xp.take(self.Y, order, axis=0, out=Ys)
                    self.epoch_started = True
                    self.snapshot = self.resumed_snapshot or self.capture()
                    self.resumed_snapshot = None
                    if not self._run_epoch(Xs, Ys):
                        break
                    stopped = self._end_epoch(epoch, bar)
                    self.epoch, self.step, self.total = epoch + 1, 0, 0.0
                    self.epoch_started = False
                    if self.checkpoint is not None and self.checkpoint_every is None:
                        self.train_time += time.perf_counter() - started
                        started = time.perf_counter()
                        self.save_checkpoint()
                    if self.interrupt.hit:
                        self._interrupted()
        finally:
            if bar is not None:
                bar.close()
            self.train_time += time.perf_counter() - started
        if history.stop_reason is None:
            history.stop_reason = f"finished {len(history.epochs)} epochs"
            if self.target_certainty is not None:
                history.stop_reason += f" without reaching target certainty {self.target_certainty:g}"
        for cb in self.callbacks:
            cb.on_train_end(self.net, history)
        history.train_time = self.train_time
        if self.checkpoint is not None:
            self.finished = True
            self.save_checkpoint()
        return history

    def _run_epoch(self, Xs, Ys) -> bool:
        """The epoch's remaining steps; False if training stopped on a divergence."""
        while True:
            try:
                self._run_steps(Xs, Ys)
                if not self.params_finite():  # e.g. +inf dials behind a saturated sigmoid leave the loss finite
                    raise _Diverged(self.n_steps - 1)
                return True
            except _Diverged as event:
                if not self._on_divergence(Xs, Ys, event.upto):
                    return False

    def _run_steps(self, Xs, Ys):
        """The hot loop: forward, loss, backward, check the loss, update. Nothing else per step."""
        backprop, loss, update = self.net._backprop, self.loss, self.apply_update
        isfinite, bs, n_steps = math.isfinite, self.batch_size, self.n_steps
        every, interrupt = self.checkpoint_every or 0, self.interrupt
        step, total, global_step = self.step, self.total, self.global_step
        while step < n_steps:
            start = step * bs
            Xb = Xs[start : start + bs]
            value = backprop(Xb, Ys[start : start + bs], loss, True)
            if not isfinite(value):
                self.step, self.total, self.global_step = step, total, global_step
                raise _Diverged(step)
            update()
            total += value * Xb.shape[0]
            step += 1
            global_step += 1
            if (every and global_step % every == 0) or interrupt.hit:
                self.step, self.total, self.global_step = step, total, global_step
                if not self.params_finite():  # never write non-finite dials into a checkpoint
                    raise _Diverged(step - 1)
                if interrupt.hit:
                    self._interrupted()
                self.save_checkpoint()
        self.step, self.total, self.global_step = step, total, global_step

    def _end_epoch(self, epoch, bar) -> bool:
        """Metrics, history, callbacks, schedule; True when a stopping rule fired."""
        net, history = self.net, self.history
        logs = {"loss": self.total / self.n}
        if net.task != "regression":
            logs.update(_metrics(net, net._forward(self.X[:4096]), self.Y[:4096]))
        if self.Xv is not None:
            logs.update({f"val_{k}": v for k, v in _evaluate_prepared(net, self.Xv, self.Yv, self.loss).items()})
        logs["lr"] = self.optimizer.lr
        history.append(epoch, logs)
        if bar is not None:
            bar.update(logs)
        stop = False
        target = self.target_certainty
        if target is not None:
            key = "val_certainty" if "val_certainty" in logs else "certainty"
            if logs.get(key, 0.0) >= target:
                where = "validation" if key == "val_certainty" else "training"
                history.stop_reason = (
                    f"target certainty {target:g} reached at epoch {epoch + 1} "
                    f"(mean certainty of the true class {logs[key]:.3f} on {where} data)"
                )
                history.reached_target = True
                stop = True
        for cb in self.callbacks:
            if cb.on_epoch_end(epoch, logs, net) and not stop:
                history.stop_reason = getattr(cb, "reason", f"stopped by {type(cb).__name__}")
                stop = True
        if self.schedule is not None:
            self.schedule.on_epoch_end(epoch, logs)
        if stop:
            history.stopped_epoch = epoch
        return stop

    # -------------------------------------------------------- divergence

    def _replay(self, Xs, Ys, upto) -> dict:
        """Rewind to the epoch snapshot and redo steps up to ``upto``, checking each, to find the bad one.

        Leaves the network, optimizer and dropout generators as they were
        just before that step and returns what was measured there.
        """
        self.restore(self.snapshot)
        bs, net = self.batch_size, self.net
        previous_ratio = None
        for j in range(self.step, upto + 1):
            before = self.capture()
            start = j * bs
            Xb = Xs[start : start + bs]
            value = net._backprop(Xb, Ys[start : start + bs], self.loss, True)
            grad_norm, weight_norm = _norm(self.grads), _norm(self.params)
            if math.isfinite(value):
                self.apply_update()
                if self.params_finite():
                    moved = _norm([p - q for p, q in zip(self.params, before["params"])])
                    previous_ratio = moved / max(weight_norm, 1e-30)
                    self.step, self.total, self.global_step = j + 1, self.total + value * Xb.shape[0], self.global_step + 1
                    continue
                what = "the update made some weights non-finite (an infinite or NaN gradient)"
            else:
                what = f"the loss became {value}"
            self.restore(before)
            break
        else:  # the replay ran clean: the values seen were not reproducible; stop where we are
            j, value, what = upto + 1, float("nan"), "non-finite values appeared that did not recur on replay"
            grad_norm = weight_norm = float("nan")
        return {
            "epoch": self.epoch + 1,
            "step": j + 1,
            "what": what,
            "loss": float(value),
            "grad_norm": float(grad_norm),
            "weight_norm": float(weight_norm),
            "previous_update_ratio": previous_ratio,
            "lr": float(self.optimizer.lr),
        }

    def _diagnose(self, info):
        """Name a likely cause with the numbers that show it, and a fix."""
        xp = backend.xp
        input_scale = float(xp.abs(self.X).max())
        target_scale = float(xp.abs(self.Y).max()) if self.net.task == "regression" else None
        lr, grad_norm = info["lr"], info["grad_norm"]
        high_lr = _HIGH_LR.get(self.optimizer.name, _HIGH_LR_DEFAULT)
        if input_scale > _INPUT_SCALE_LIMIT:
            cause = "unscaled inputs"
            fix = f"standardize each input column, X = (X - mean) / std (the largest |x| is {input_scale:.3g})"
        elif target_scale is not None and target_scale > _INPUT_SCALE_LIMIT:
            cause = "unscaled targets"
            fix = f"standardize the regression targets (the largest |y| is {target_scale:.3g}) and undo it on predictions"
        elif lr > high_lr or (math.isfinite(grad_norm) and grad_norm <= _EXPLODING_GRAD_NORM):
            cause = "learning rate too high"
            fix = f"lower the learning rate 10x or more (try lr={lr / 10:g})"
        else:
            cause = "exploding gradients"
            fix = f"lower the learning rate (try lr={lr / 10:g}), use fewer or narrower layers, or scale the inputs"
        info.update(input_scale=input_scale, target_scale=target_scale, cause=cause, fix=fix)
        numbers = [
            f"gradient norm {grad_norm:.3g}",
            f"weight norm {info['weight_norm']:.3g}",
            f"learning rate {lr:g}",
            f"largest |input| {input_scale:.3g}",
        ]
        if target_scale is not None:
            numbers.append(f"largest |target| {target_scale:.3g}")
        if info["previous_update_ratio"] is not None:
            numbers.append(f"the step before moved the weights by {info['previous_update_ratio']:.3g}x their size")
        info["numbers"] = ", ".join(numbers)
        return info

    def _on_divergence(self, Xs, Ys, upto) -> bool:
        """Set the dials back to the last good step, then halve and go on (True), stop (False) or raise."""
        info = self._diagnose(self._replay(Xs, Ys, upto))
        opt, history = self.optimizer, self.history
        where = f"epoch {info['epoch']}, step {info['step']}"
        if self.on_divergence == "halve" and self.retries < self.divergence_retries:
            # the dials just before the bad step are finite but may already be ruined by the
            # too-large steps that led there, so the retry starts the epoch over
            self.restore(self.snapshot)
            self.retries += 1
            opt.lr /= 2
            if self.schedule is not None and hasattr(self.schedule, "base_lr"):
                self.schedule.base_lr /= 2
            info["action"] = (
                f"halved the learning rate to {opt.lr:g} and restarted epoch {info['epoch']} "
                f"(retry {self.retries} of {self.divergence_retries})"
            )
            history.divergences.append(info)
            return True
        info["action"] = "stopped with the weights from before that step"
        history.divergences.append(info)
        retried = f" after {self.retries} halvings of the learning rate" if self.retries else ""
        reason = f"diverged at {where}{retried}: {info['what']}; likely cause: {info['cause']} ({info['numbers']})"
        history.stop_reason = reason
        history.stopped_epoch = self.epoch
        if self.on_divergence == "stop":
            warnings.warn(f"dialnet: training {reason}. Fix: {info['fix']}", DivergenceWarning, stacklevel=5)
            return False
        exc = DivergenceError(
            f"training diverged at {where}{retried}: {info['what']} "
            f"(the network keeps its weights from before that step); likely cause: {info['cause']}",
            expected="a finite loss and finite gradients",
            got=info["numbers"],
            fix=info["fix"],
        )
        exc.details, exc.history = info, history
        history.train_time = self.train_time
        raise exc

    # -------------------------------------------------------- checkpoints

    def _interrupted(self):
        path = self.save_checkpoint()
        raise TrainingInterrupted(
            f"training interrupted at epoch {self.epoch + 1}, step {self.step}; checkpoint saved to {path}; "
            f"resume with fit(..., resume={path!r})",
            checkpoint=path,
            epoch=self.epoch + 1,
            step=self.step,
        )

    def save_checkpoint(self):
        opt = self.optimizer
        arrays = {f"optimizer.{k}": v for k, v in opt.state_arrays().items()}
        snapshot = None
        if self.epoch_started:  # mid-epoch: keep the epoch's start too, so a replay or retry after resuming begins there
            snap = self.snapshot
            arrays.update({f"snapshot.params.{i}": backend.to_numpy(p) for i, p in enumerate(snap["params"])})
            arrays.update({f"snapshot.optimizer.{k}": v for k, v in snap["optimizer"].items()})
            snapshot = {"t": snap["t"], "dropout_rng_states": snap["dropout"], "position": list(snap["position"])}
        callbacks = []
        for k, cb in enumerate(self.callbacks):
            state, cb_arrays = cb.checkpoint_state()
            callbacks.append({"type": type(cb).__name__, "state": state})
            arrays.update({f"callback.{k}.{name}": a for name, a in cb_arrays.items()})
        schedule = None
        if self.schedule is not None:
            schedule = {"name": type(self.schedule).__name__, "base_lr": self.schedule.base_lr, "state": self.schedule.state()}
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "total": self.total,
            "retries": self.retries,
            "finished": self.finished,
            "train_time": self.train_time,
            "initial_rng_state": self.initial_rng_state,
            # the shuffle order of a part-done epoch is drawn again from the generator's state at its start
            "epoch_rng_state": self.epoch_rng_state if self.epoch_started else self.rng.bit_generator.state,
            "epoch_started": self.epoch_started,
            "snapshot": snapshot,
            "dropout_rng_states": [d.rng.bit_generator.state for d in self.dropouts],
            "optimizer": {"name": opt.name, "config": opt.config(), "t": opt.t, "lr": opt.lr, "initial_lr": opt.initial_lr},
            "schedule": schedule,
            "callbacks": callbacks,
            "history": self.history.to_state(),
            "run": self.run_info,
        }
        ckpt.save(self.checkpoint, self.net, state, arrays)
        return self.checkpoint

    def load_checkpoint(self, stored, state, arrays, name):
        """Continue from a checkpoint read by :func:`dialnet.checkpoint.load` (already type-checked)."""
        mismatch = [k for k, v in self.run_info.items() if state["run"].get(k) != v]
        if mismatch:
            k = mismatch[0]
            what = "the training data" if k == "fingerprint" else k
            raise ConfigError(
                f"cannot resume from {name}: {what} differs from the run that wrote it",
                expected=f"{k} = {state['run'].get(k)!r}",
                got=repr(self.run_info[k]),
                fix="resume with the same data, batch_size, shuffle, loss, l2 and validation setting, or start again without resume",
            )
        opt = self.optimizer
        saved = state["optimizer"]
        mine = {k: v for k, v in opt.config().items() if k != "lr"}
        theirs = {k: v for k, v in saved["config"].items() if k != "lr"}
        if saved["name"] != opt.name or mine != theirs:
            raise ConfigError(
                f"cannot resume from {name}: the optimizer differs from the run that wrote it",
                expected=f"{saved['name']} with {theirs}",
                got=f"{opt.name} with {mine}",
                fix="pass the same optimizer settings as the interrupted run",
            )
        schedule_name = type(self.schedule).__name__ if self.schedule is not None else None
        saved_schedule = state["schedule"]
        if schedule_name != (saved_schedule or {}).get("name"):
            raise ConfigError(
                f"cannot resume from {name}: the learning-rate schedule differs from the run that wrote it",
                expected=repr((saved_schedule or {}).get("name")),
                got=repr(schedule_name),
                fix="pass the same lr_schedule as the interrupted run",
            )
        kinds = [type(cb).__name__ for cb in self.callbacks]
        if kinds != [cb["type"] for cb in state["callbacks"]]:
            raise ConfigError(
                f"cannot resume from {name}: the callbacks differ from the run that wrote it",
                expected=repr([cb["type"] for cb in state["callbacks"]]),
                got=repr(kinds),
                fix="pass the same callbacks and early_stopping as the interrupted run",
            )
        if len(state["dropout_rng_states"]) != len(self.dropouts):
            raise ckpt.bad(name, "its dropout generator states do not match the network", str(len(self.dropouts)), str(len(state["dropout_rng_states"])))

        params_np = [backend.to_numpy(p) for p in self.params]
        slots = ckpt.check_arrays_like(arrays, "optimizer.", params_np, name)
        self.net.set_weights(stored.copy_weights())
        opt.load_state_arrays(slots, saved["t"])
        opt.lr, opt.initial_lr = float(saved["lr"]), float(saved["initial_lr"])
        if self.schedule is not None:
            self.schedule.base_lr = float(saved_schedule["base_lr"])
            try:
                self.schedule.load_state(saved_schedule["state"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ckpt.bad(name, f"its schedule state is invalid ({exc})") from None
        for k, (cb, saved_cb) in enumerate(zip(self.callbacks, state["callbacks"])):
            prefix = f"callback.{k}."
            cb.restore_state(saved_cb["state"], {key[len(prefix):]: a for key, a in arrays.items() if key.startswith(prefix)}, self.net)
        for d, s in zip(self.dropouts, state["dropout_rng_states"]):
            d.rng = ckpt.make_generator(s, name, "a dropout generator")
        self.rng = ckpt.make_generator(state["epoch_rng_state"], name, "the shuffle generator")
        self.initial_rng_state = state["initial_rng_state"]
        self.epoch, self.step, self.global_step = state["epoch"], state["step"], state["global_step"]
        self.total, self.retries = float(state["total"]), state["retries"]
        self.finished, self.train_time = state["finished"], float(state["train_time"])
        if self.step > self.n_steps:
            raise ckpt.bad(name, "its step is past the end of the epoch", f"at most {self.n_steps}", str(self.step))
        snap = state.get("snapshot")
        if state.get("epoch_started"):
            self.resumed_snapshot = self._load_snapshot(snap, arrays, params_np, name)
        self.history.load_state(state["history"])

    def _load_snapshot(self, snap, arrays, params_np, name):
        ok = (
            isinstance(snap, dict)
            and isinstance(snap.get("t"), int)
            and isinstance(snap.get("dropout_rng_states"), list)
            and len(snap["dropout_rng_states"]) == len(self.dropouts)
            and isinstance(snap.get("position"), list)
            and len(snap["position"]) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in snap["position"])
        )
        params = ckpt.check_arrays_like(arrays, "snapshot.params.", params_np, name) if ok else {}
        if not ok or len(params) != len(params_np):
            raise ckpt.bad(name, "its epoch-start snapshot is missing or invalid", "t, dropout states, position and the weights")
        for s in snap["dropout_rng_states"]:
            ckpt.make_generator(s, name, "a dropout generator")  # check it before it is needed
        step, total, global_step = snap["position"]
        return {
            "params": [backend.xp.asarray(params[str(i)]).copy() for i in range(len(params_np))],
            "optimizer": ckpt.check_arrays_like(arrays, "snapshot.optimizer.", params_np, name),
            "t": snap["t"],
            "dropout": snap["dropout_rng_states"],
            "position": (int(step), float(total), int(global_step)),
        }
