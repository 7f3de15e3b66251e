"""How well a network does: accuracy, certainty of the true class, evaluation on a data set, confusion matrix.

Two ways to measure, for two moments:

- :class:`RunningMetrics` sums accuracy and certainty over the mini-batches
  of an epoch *from the forward passes training already made* (a running
  mean, as Keras reports it), so the training metrics cost no extra pass;
- :func:`evaluate_network` runs the network over a data set (validation
  data, a test split) and reports its loss, accuracy and certainty.

Certainty is the mean probability the network gives the true class (per
label for sigmoid outputs): the articles' "0.8 Labrador".
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..core.losses import check_sample_weight, get_loss
from ..errors import DataError, ShapeError

CLASS_TASKS = ("classification", "binary", "multilabel")


def class_labels(Y):
    """Class indices from label vectors or one-hot/probability rows."""
    return Y if Y.ndim == 1 else backend.xp.argmax(Y, axis=1)


def truth_of(task, Y):
    """What outputs are compared with: class indices (classification), or the 0/1 truth of every label."""
    return class_labels(Y) if task == "classification" else Y >= 0.5


def row_scores(task, P, truth):
    """Per row of outputs ``P``: right or not, and the certainty given to the truth (None for one softmax output)."""
    xp = backend.xp
    if task == "classification":
        hits = xp.argmax(P, axis=1) == truth
        sure = xp.take_along_axis(P, truth[:, None], axis=1)[:, 0] if P.shape[1] > 1 else None
    else:
        hits = xp.all((P >= 0.5) == truth, axis=1)
        sure = xp.where(truth, P, 1 - P)
    return hits, sure


def output_metrics(task, P, Y, sample_weight=None) -> dict:
    """Accuracy and mean certainty of the true class of outputs ``P`` against targets ``Y``, where they apply.

    With ``sample_weight`` both are weighted means (a row of weight 2 counts twice).
    """
    if task not in CLASS_TASKS:
        return {}
    hits, sure = row_scores(task, P, truth_of(task, Y))
    xp = backend.xp
    if sample_weight is None:
        out = {"accuracy": int(xp.count_nonzero(hits)) / hits.shape[0]}
        if sure is not None:
            out["certainty"] = float(xp.mean(sure))
        return out
    w = backend.astype(sample_weight, "float64")
    total = float(xp.sum(w))
    out = {"accuracy": float(xp.sum(xp.where(hits, w, 0.0))) / total}
    if sure is not None:
        ws = w if sure.ndim == 1 else w[:, None]
        out["certainty"] = float(xp.sum(ws * sure)) / (total * (1 if sure.ndim == 1 else sure.shape[1]))
    return out


def _units(whole):
    """The exact integer sum of an array of whole numbers (float64 holding integers up to 2**53)."""
    return int(backend.xp.sum(backend.astype(whole, "int64")))


class RunningMetrics:
    """Accuracy and certainty over an epoch, from the outputs of the forward passes training made.

    The running mean Keras reports: the training loop hands each step's
    outputs to :meth:`update`, which only copies them into a block of rows
    (one call: the hot loop stays as fast as without metrics); a full block
    is compared at once with its rows of the epoch's truth (class indices,
    or the 0/1 truth per label, in training order: :meth:`follow`). Nothing
    is kept for regression.

    With sample weights (:meth:`follow`) both are weighted means: a row
    counts ``w`` (in units of 2**-32) instead of 1.

    The sums are exact integers (a certainty counts in units of 2**-32), so
    they do not depend on where the blocks were cut: a run stopped and
    resumed from a checkpoint (:meth:`state`, :meth:`load_state`) reports the
    same bits as one never interrupted.
    """

    UNIT = 2.0**-32  # one count of the certainty sum
    BLOCK = 2**16  # outputs (rows x units) compared at once

    def __init__(self, task, n_outputs, batch_size, dtype):
        self.task = task
        self.active = task in CLASS_TASKS
        self.n_outputs = n_outputs
        self.capacity = max(batch_size, self.BLOCK // max(n_outputs, 1))
        self.dtype = dtype
        self.block = None
        self.order_truth = None
        self.order_weights = None
        self.reset()

    def truth(self, Y):
        """What each row's outputs are compared with: class indices, or the 0/1 truth of every label."""
        return truth_of(self.task, Y)

    def follow(self, truth, weights=None):
        """The epoch's :meth:`truth` (and sample weights) in training order (arrays the loop reshuffles in place)."""
        self.order_truth = truth
        self.order_weights = weights

    def reset(self, offset=0):
        """Start counting afresh at row ``offset`` of the epoch."""
        self.rows = self.correct = self.certainty_units = 0
        self.offset = offset  # the epoch row the staged block starts at
        self.filled = 0

    def update(self, P):
        """Stage one batch's outputs ``P``: the rows that follow the ones staged before."""
        n = P.shape[0]
        if self.filled + n > self.capacity:
            self.flush()
        if self.block is None:
            self.block = backend.xp.empty((self.capacity, P.shape[1]), dtype=P.dtype)
        self.block[self.filled : self.filled + n, ...] = P
        self.filled += n

    def flush(self):
        """Compare the staged outputs with their rows of the truth and add them to the sums."""
        m = self.filled
        if not m:
            return
        xp = backend.xp
        hits, sure = row_scores(self.task, self.block[:m, ...], self.order_truth[self.offset : self.offset + m, ...])
        if self.order_weights is None:
            self.correct += int(xp.count_nonzero(hits))
            if sure is not None:
                self.certainty_units += _units(xp.round(backend.astype(sure, "float64") * 2.0**32))
            self.rows += m
        else:
            units = xp.round(backend.astype(self.order_weights[self.offset : self.offset + m], "float64") * 2.0**32)
            self.correct += _units(xp.where(hits, units, 0.0))
            if sure is not None:
                scaled = units * sure if sure.ndim == 1 else units[:, None] * sure
                self.certainty_units += _units(xp.round(backend.astype(scaled, "float64")))
            self.rows += _units(units)
        self.offset += m
        self.filled = 0

    def logs(self) -> dict:
        """``accuracy`` and ``certainty`` over the rows seen since :meth:`reset` (empty for regression)."""
        self.flush()
        if not self.active or not self.rows:
            return {}
        out = {"accuracy": self.correct / self.rows}
        unit = self.UNIT if self.order_weights is None else 1.0  # weighted: both sums are in weight units
        if self.task != "classification":
            out["certainty"] = self.certainty_units * unit / (self.rows * self.n_outputs)
        elif self.n_outputs > 1:
            out["certainty"] = self.certainty_units * unit / self.rows
        return out

    def state(self) -> dict:
        """The sums so far, JSON-able (the staged rows are counted first)."""
        self.flush()
        return {"rows": self.rows, "correct": self.correct, "certainty_units": self.certainty_units}

    def load_state(self, state, offset):
        """Take back :meth:`state`, ``offset`` rows into the epoch (None: nothing counted yet)."""
        self.reset(offset)
        if state is not None:
            self.rows, self.correct, self.certainty_units = (int(state[k]) for k in ("rows", "correct", "certainty_units"))


def evaluate_prepared(net, X, Y, loss, batch_size=4096, sample_weight=None):
    """Loss and metrics of ``net`` on validated ``X``, prepared targets ``Y`` and checked weights, as a dict.

    The loss is the mean over rows (the weighted mean with ``sample_weight``),
    by the same loss step training takes; so are accuracy and certainty.
    """
    n = X.shape[0]
    total = 0.0
    parts = []
    for i in range(0, n, batch_size):
        stop = min(i + batch_size, n)
        Xb, Yb = X[i:stop, ...], Y[i:stop, ...]
        wb = None if sample_weight is None else sample_weight[i:stop]
        P = net._forward(Xb)
        value = net._loss_step(P, Yb, loss, wb, need_delta=False)[0]
        total += value * (Xb.shape[0] if wb is None else float(backend.total(wb)))
        parts.append(backend.copy(P))
    P = parts[0] if len(parts) == 1 else backend.concat(parts)
    logs = {"loss": total / (n if sample_weight is None else float(backend.total(sample_weight)))}
    logs.update(output_metrics(net.task, P, Y, sample_weight))
    return logs


def evaluate_network(net, X, y, loss=None, batch_size=4096, sample_weight=None):
    """Loss and (for classification tasks) accuracy and certainty on a data set, as a dict.

    Parameters
    ----------
    net : Network
    X, y : the data set (inputs, and labels or target rows).
    loss : str or Loss, optional
        Default: the network's own (cross-entropy for softmax, ...).
    batch_size : int
        Rows per forward pass.
    sample_weight : array-like of shape (n,), optional
        Weights of the rows in the loss (a weighted mean).

    Returns
    -------
    dict
        ``loss``; for classification ``accuracy`` and ``certainty`` (the mean
        probability given to the true class).
    """
    loss = get_loss(loss) if loss is not None else net.default_loss()
    X = net._check_X(X)
    Y = loss.prepare(y, X.shape[0], net.n_outputs, net.dtype)
    w = check_sample_weight(sample_weight, X.shape[0], net.dtype)
    return evaluate_prepared(net, X, Y, loss, batch_size, w)


def confusion_matrix(y_true, y_pred, n_classes=None):
    """``C[i, j]`` = how many rows of true class ``i`` were predicted as class ``j``.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices 0..K-1, one per row.
    n_classes : int, optional
        K; by default one more than the largest label seen.

    Returns
    -------
    ndarray of shape (K, K), int64
    """
    t = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ShapeError(
            "true and predicted labels differ in length",
            expected="two 1-D arrays of the same length",
            got=f"{t.size} and {p.size}",
            fix="pass y and net.predict(X) for the same rows",
        )
    if t.size and (t.min() < 0 or p.min() < 0):
        raise DataError("class labels must be >= 0", expected="labels 0..K-1", got=f"minimum {min(t.min(), p.min())}",
                        fix="relabel the classes as 0..K-1")
    k = int(n_classes) if n_classes is not None else int(max(t.max(initial=0), p.max(initial=0)) + 1)
    if t.size and max(t.max(), p.max()) >= k:
        raise DataError("a class label is not below n_classes", expected=f"labels 0..{k - 1}",
                        got=f"maximum {max(t.max(), p.max())}", fix="pass n_classes as the number of classes, or leave it out")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)

