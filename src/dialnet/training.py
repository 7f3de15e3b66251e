"""The fit loop: mini-batch gradient descent with history, callbacks and stopping rules."""

from __future__ import annotations

import math
import time

import numpy as np

from . import backend
from .errors import ConfigError, DataError, DivergenceError, InvalidValueError, ShapeError, type_name
from .layers import Dense
from .losses import get_loss
from .optimizers import Adam, get_optimizer, get_schedule


class History:
    """What happened in training: per-epoch metrics and why it stopped.

    ``history.history`` maps ``"loss"``, ``"accuracy"``, ``"val_loss"``,
    ``"val_accuracy"``, ``"certainty"``, ``"val_certainty"`` and ``"lr"`` to
    one value per epoch (keys appear only when they apply).
    """

    def __init__(self):
        self.history = {}
        self.epochs = []
        self.stop_reason = None
        self.stopped_epoch = None
        self.best_epoch = None
        self.train_time = 0.0

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
    """Hooks into the fit loop. Return True from ``on_epoch_end`` to stop training."""

    def on_train_begin(self, net, history):
        pass

    def on_epoch_end(self, epoch, logs, net):
        return False

    def on_train_end(self, net, history):
        pass


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
        if self.restore_best_weights and self.best_weights is not None:
            net.set_weights(self.best_weights)
            history.best_epoch = self.best_epoch


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

    def __init__(self, epochs):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

        self.bar = Progress(
            TextColumn("epoch {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.task = self.bar.add_task("train", total=epochs, status="")
        self.bar.start()

    def update(self, logs):
        status = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "lr")
        self.bar.update(self.task, advance=1, status=status)

    def close(self):
        self.bar.stop()


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

    Returns
    -------
    History
    """
    started = time.perf_counter()
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

    rng = np.random.default_rng(seed)
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

    n = X.shape[0]
    params, grads = net.parameters(), net.gradients()
    weight_grads = [(d.weights, d.grad_weights) for d in net.layers if isinstance(d, Dense)]
    Xs, Ys = backend.xp.empty_like(X), backend.xp.empty_like(Y)
    bar = _Progress(epochs) if progress else None
    try:
        for epoch in range(epochs):
            if shuffle:
                order = backend.xp.asarray(rng.permutation(n))
                backend.xp.take(X, order, axis=0, out=Xs)
                backend.xp.take(Y, order, axis=0, out=Ys)
            else:
                Xs, Ys = X, Y
            total = 0.0
            for start in range(0, n, batch_size):
                Xb = Xs[start : start + batch_size]
                Yb = Ys[start : start + batch_size]
                value = net._backprop(Xb, Yb, loss, training=True)
                if not math.isfinite(value):
                    raise DivergenceError(
                        f"the loss became {value} at epoch {epoch + 1}, step {start // batch_size + 1}",
                        expected="a finite loss",
                        got=f"{value} with learning rate {optimizer.lr:g}",
                        fix="lower the learning rate (e.g. by 10x) and check that the inputs are scaled",
                    )
                if l2:
                    for W, dW in weight_grads:
                        dW += l2 * W
                optimizer.step(params, grads)
                total += value * Xb.shape[0]

            logs = {"loss": total / n}
            logs.update(_metrics(net, net._forward(X[:4096]), Y[:4096]) if net.task != "regression" else {})
            if Xv is not None:
                logs.update({f"val_{k}": v for k, v in _evaluate_prepared(net, Xv, Yv, loss).items()})
            logs["lr"] = optimizer.lr
            history.append(epoch, logs)
            if bar is not None:
                bar.update(logs)

            stop = False
            if target_certainty is not None:
                key = "val_certainty" if "val_certainty" in logs else "certainty"
                if logs.get(key, 0.0) >= target_certainty:
                    where = "validation" if key == "val_certainty" else "training"
                    history.stop_reason = (
                        f"target certainty {target_certainty:g} reached at epoch {epoch + 1} "
                        f"(mean certainty of the true class {logs[key]:.3f} on {where} data)"
                    )
                    stop = True
            for cb in callbacks:
                if cb.on_epoch_end(epoch, logs, net) and not stop:
                    history.stop_reason = getattr(cb, "reason", f"stopped by {type(cb).__name__}")
                    stop = True
            if schedule is not None:
                schedule.on_epoch_end(epoch, logs)
            if stop:
                history.stopped_epoch = epoch
                break
    finally:
        if bar is not None:
            bar.close()
    if history.stop_reason is None:
        history.stop_reason = f"finished {len(history.epochs)} epochs"
        if target_certainty is not None:
            history.stop_reason += f" without reaching target certainty {target_certainty:g}"
    for cb in callbacks:
        cb.on_train_end(net, history)
    history.train_time = time.perf_counter() - started
    return history
