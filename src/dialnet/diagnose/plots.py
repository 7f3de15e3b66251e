"""Figures that show what a network learned and how training went (needs the ``plot`` extra).

Each ``plot_*`` function returns a matplotlib ``Figure`` and, given
``path``, writes it as a PNG. Figures are built with the object-oriented
API on the Agg canvas, never through ``pyplot``, so nothing global changes
and no display is needed. matplotlib is imported only inside these
functions, so ``import dialnet`` stays fast.

:class:`GradientNormRecorder` is a ``fit`` callback that records
``||dL/dW||`` of every Dense layer per epoch, for :func:`plot_gradient_norms`.
``confusion_matrix`` is :func:`dialnet.train.confusion_matrix`, re-exported
here where it was before.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .. import backend
from ..errors import ConfigError, DataError, ShapeError, type_name
from ..core.layers import Dense
from ..core.losses import get_loss
from ..train import Callback, History, confusion_matrix  # noqa: F401  (plots.confusion_matrix, as before)
from .history import clean_history, stored_history
from .trace import image_shape as guess

GRAD_NORM_KEY = "grad_norm_{}"  # history key per Dense layer (1-based), one value per epoch


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError(
            "plots need matplotlib, which is not installed",
            expected="an importable matplotlib",
            got=str(exc),
            fix="pip install 'dialnet[plot]'",
        ) from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path):
    if path is not None:
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ConfigError(
                "the folder to write the plot into does not exist",
                expected="an existing folder",
                got=folder,
                fix="create it first, or pass another path",
            )
        fig.savefig(path, format="png", facecolor="white")
    return fig


def _history_dict(source):
    if isinstance(source, History):
        hist = source.history
    elif isinstance(source, dict):
        hist = clean_history(source)
    elif hasattr(source, "layers"):
        hist = stored_history(source)
    else:
        raise ConfigError(
            "cannot read a training history from this",
            expected="a History, a dict of per-epoch lists, or a Network trained with fit",
            got=type_name(source),
            fix="pass the value returned by net.fit(...)",
        )
    if not hist or not hist.get("loss"):
        raise DataError(
            "there is no training history to plot",
            expected="per-epoch 'loss' values (from fit)",
            got="no history" if not hist else "a history without 'loss'",
            fix="train with net.fit(...) (or `dialnet train`) and plot its history",
        )
    return hist


def plot_history(history, path=None, title=None):
    """Loss and accuracy per epoch, training and validation side by side.

    ``history``: a History, its ``.history`` dict, or a Network trained with
    fit (or loaded from a file that stored its history). The best
    validation epoch is marked.
    """
    hist = _history_dict(history)
    epochs = np.arange(1, len(hist["loss"]) + 1)
    metric = "accuracy" if "accuracy" in hist else "certainty" if "certainty" in hist else None
    fig = _figure(10 if metric else 5.5, 4)
    axes = fig.subplots(1, 2 if metric else 1, squeeze=False)[0]
    for ax, key, label in zip(axes, ["loss", metric], ["loss", metric]):
        ax.plot(epochs, hist[key], "o-", ms=3, color="tab:blue", label=f"training {label}")
        if f"val_{key}" in hist:
            ax.plot(epochs[: len(hist[f"val_{key}"])], hist[f"val_{key}"], "o-", ms=3, color="tab:orange", label=f"validation {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if "val_loss" in hist:
        best = int(np.argmin(hist["val_loss"]))
        axes[0].axvline(best + 1, color="gray", ls="--", lw=1)
        axes[0].annotate(f"best validation epoch {best + 1}", (best + 1, hist["val_loss"][best]),
                         textcoords="offset points", xytext=(5, 10), fontsize=8, color="gray")
    if metric == "accuracy":
        axes[1].set_ylim(0, 1.02)
    reason = getattr(history, "stop_reason", None)
    fig.suptitle(title or ("Training history" + (f": {reason}" if reason else "")), fontsize=10)
    return _finish(fig, path)


def plot_confusion_matrix(y_true, y_pred, class_names=None, path=None, title=None):
    """A confusion matrix: rows are true classes, columns the predictions, counts in the cells.

    Cells are shaded by the share of their row, so the diagonal reads as
    per-class recall whatever the class sizes.
    """
    k = len(class_names) if class_names else None
    C = confusion_matrix(y_true, y_pred, k)
    k = C.shape[0]
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    rows = C.sum(axis=1, keepdims=True)
    share = np.divide(C, rows, out=np.zeros(C.shape, dtype=np.float64), where=rows > 0)
    side = max(4.5, 0.5 * k + 2)
    fig = _figure(side + 1, side)
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="share of the true class", shrink=0.8)
    ax.set_xticks(range(k), names, rotation=45 if max(len(n) for n in names) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if C[i, j]:
                    ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=8 if k > 12 else 9,
                            color="white" if share[i, j] > 0.5 else "black")
    total = C.sum()
    acc = np.trace(C) / total if total else 0.0
    ax.set_title(title or f"Confusion matrix: {total} rows, accuracy {acc:.1%}", fontsize=10)
    return _finish(fig, path)


def _image_shape(net, image_shape):
    shape = tuple(image_shape) if image_shape is not None else guess(net)
    if shape is None or len(shape) != 2 or shape[0] * shape[1] != net.n_inputs:
        raise ConfigError(
            "the network's inputs cannot be drawn as an image",
            expected=f"an image shape (rows, cols) with rows * cols = {net.n_inputs}",
            got=repr(image_shape) if image_shape is not None else f"{net.n_inputs} inputs, not a square number",
            fix="pass image_shape=(rows, cols)",
        )
    return int(shape[0]), int(shape[1])


def plot_first_layer(net, path=None, image_shape=None, max_units=100):
    """The first layer's dials drawn as images: one tile per hidden unit.

    Tile ``j`` shows ``W[:, j]`` reshaped to the input image (e.g. 25x25):
    red pixels push unit ``j`` up, blue pixels push it down, each tile on
    its own symmetric scale. That is the pattern the unit looks for.
    """
    first = next(layer for layer in net.layers if isinstance(layer, Dense))
    rows, cols = _image_shape(net, image_shape)
    W = backend.to_numpy(first.weights).astype(np.float64)
    units = min(first.n_out, int(max_units))
    grid = math.ceil(math.sqrt(units))
    grid_rows = math.ceil(units / grid)
    fig = _figure(1.3 * grid + 0.4, 1.3 * grid_rows + 0.6)
    axes = fig.subplots(grid_rows, grid, squeeze=False)
    for j, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if j >= units:
            continue
        w = W[:, j].reshape(rows, cols)
        lim = float(np.abs(w).max()) or 1.0
        ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"unit {j}", fontsize=7)
    more = f" (first {units} of {first.n_out})" if units < first.n_out else ""
    fig.suptitle(f"First layer: each hidden unit's {rows}x{cols} input weights{more}\n"
                 "red = pixel pushes the unit up, blue = pushes it down", fontsize=9)
    return _finish(fig, path)


def plot_certainty(net, x, path=None, label=None, class_names=None, image_shape=None):
    """Certainty per class for one input, as bars; the input drawn beside it when it is an image."""
    arr = np.asarray(backend.to_numpy(x), dtype=np.float64)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise ShapeError(
            "plot_certainty draws one input at a time",
            expected=f"one row of {net.n_inputs} numbers",
            got=type_name(arr),
            fix="pass X[i] for a single sample",
        )
    p = net.predict_proba(arr.reshape(1, -1))[0].astype(np.float64)
    names = list(class_names or getattr(net, "class_names", None) or [str(i) for i in range(p.size)])
    shape = tuple(image_shape) if image_shape is not None else guess(net)
    draw_image = shape is not None and shape[0] * shape[1] == arr.size
    fig = _figure(9 if draw_image else 6, max(3, 0.3 * p.size + 1.2))
    axes = fig.subplots(1, 2, width_ratios=[1, 2]) if draw_image else [None, fig.subplots()]
    if draw_image:
        axes[0].imshow(arr.reshape(shape), cmap="gray_r", interpolation="nearest")
        axes[0].set_axis_off()
        axes[0].set_title("input", fontsize=9)
    ax = axes[1]
    best = int(p.argmax())
    colors = ["tab:orange" if i == best else "tab:blue" for i in range(p.size)]
    if label is not None and 0 <= int(label) < p.size and int(label) != best:
        colors[int(label)] = "tab:red"
    ax.barh(range(p.size), p, color=colors)
    ax.set_yticks(range(p.size), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("certainty")
    for i, v in enumerate(p):
        ax.text(min(v + 0.01, 0.9), i, f"{v:.2f}", va="center", fontsize=8)
    said = f"predicted {names[best]} ({p[best]:.2f})"
    if label is not None:
        said += f", true class {names[int(label)]}" + (" (red)" if int(label) != best else "")
    ax.set_title(f"Certainty per class: {said}", fontsize=9)
    return _finish(fig, path)


class GradientNormRecorder(Callback):
    """A ``fit`` callback: ``||dL/dW||`` of every Dense layer, before training and after each epoch.

    With ``X, y`` it measures on the same rows every time (a steady
    measurement; at most ``max_rows`` rows, dropout off); without them it
    reads the gradients of the epoch's last mini-batch. ``recorder.norms``
    maps the layer number (1 = first Dense) to a list of norms and
    ``recorder.epochs`` gives their epochs (0 = before training). The
    end-of-epoch values are also written to the history as
    ``grad_norm_1``, ``grad_norm_2``, ... so they are saved with it.
    """

    def __init__(self, X=None, y=None, max_rows=256, seed=0):
        if (X is None) != (y is None):
            raise ConfigError(
                "GradientNormRecorder needs both X and y, or neither",
                expected="X and y together",
                got="only one of them",
                fix="pass X and y, or leave both out to use the last mini-batch",
            )
        self.X, self.y = X, y
        self.max_rows = int(max_rows)
        self.seed = seed
        self.norms = {}
        self.epochs = []

    def on_train_begin(self, net, history):
        self.loss = get_loss(net.loss) if net.loss else net.default_loss()
        self.norms = {k: [] for k in range(1, len(net.dense_layers) + 1)}
        self.epochs = []
        self._data = None
        if self.X is not None:
            X = net._check_X(self.X)
            y = np.asarray(backend.to_numpy(self.y))
            if X.shape[0] > self.max_rows:
                rows = np.sort(np.random.default_rng(self.seed).choice(X.shape[0], self.max_rows, replace=False))
                X, y = X[backend.xp.asarray(rows)], y[rows]
            self._data = (X, self.loss.prepare(y, X.shape[0], net.n_outputs, net.dtype))
            self._record(0, net)

    def _record(self, epoch, net):
        if self._data is not None:
            net._backprop(self._data[0], self._data[1], self.loss, training=False)
        self.epochs.append(epoch)
        for k, layer in enumerate(net.dense_layers, start=1):
            self.norms[k].append(float(backend.xp.linalg.norm(layer.grad_weights)))

    def on_epoch_end(self, epoch, logs, net):
        self._record(epoch + 1, net)
        if isinstance(net.history, History):
            for k, values in self.norms.items():
                net.history.history.setdefault(GRAD_NORM_KEY.format(k), []).append(values[-1])
        return False

    def checkpoint_state(self):
        return {"epochs": list(self.epochs), "norms": {str(k): list(v) for k, v in self.norms.items()}}, {}

    def restore_state(self, state, arrays, net):
        self.epochs = [int(e) for e in state.get("epochs", [])]
        self.norms = {int(k): [float(x) for x in v] for k, v in state.get("norms", {}).items()}


def gradient_norms_of(source):
    """``(epochs, {layer: norms})`` from a recorder, a History, a history dict, or a Network."""
    if isinstance(source, GradientNormRecorder):
        return list(source.epochs), dict(source.norms)
    if isinstance(source, dict):
        hist = clean_history(source)
    else:
        hist = _history_dict(source)
    norms = {}
    k = 1
    while GRAD_NORM_KEY.format(k) in hist:
        norms[k] = list(hist[GRAD_NORM_KEY.format(k)])
        k += 1
    if not norms:
        raise DataError(
            "no gradient norms were recorded",
            expected="history keys grad_norm_1, grad_norm_2, ... (from GradientNormRecorder)",
            got="keys " + ", ".join(sorted(hist))[:120],
            fix="train with callbacks=[dialnet.plots.GradientNormRecorder(X, y)]",
        )
    return list(range(1, len(norms[1]) + 1)), norms


def plot_gradient_norms(source, path=None, title=None):
    """``||dL/dW||`` per Dense layer over training, on a log scale.

    Lines far apart mean layers learning at very different speeds: a first
    layer far below the last is the vanishing-gradient picture.
    """
    epochs, norms = gradient_norms_of(source)
    fig = _figure(7, 4)
    ax = fig.subplots()
    for k, values in norms.items():
        v = np.asarray(values, dtype=np.float64)
        ax.plot(epochs[: v.size], np.where(v > 0, v, np.nan), "o-", ms=3, label=f"layer {k} ||dL/dW{k}||")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (0 = before training)" if epochs and epochs[0] == 0 else "epoch")
    ax.set_ylabel("gradient norm")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "Gradient norm per layer over training", fontsize=10)
    return _finish(fig, path)
