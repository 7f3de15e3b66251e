"""Cost functions: how wrong the network is, and which way to turn.

Each loss is a small class with ``value`` (the cost) and ``delta`` (its
gradient with respect to the network output), in the manner of Nielsen's
``network2.py``, plus ``per_sample`` (one value per row, for weighting).
``prepare`` checks and converts targets once per fit, so the hot path never
re-validates. Losses that pair with an output activation (softmax +
cross-entropy, sigmoid + binary cross-entropy) also have the fused forms,
from the logits ``z``: cheaper, and numerically exact.

:meth:`Loss.value_and_delta` is the one loss step everything calls
(backprop, training, evaluation, gradcheck, trace, the scikit-learn
estimators): it picks the fused or the plain form from the output layer it
is given, and takes per-sample weights.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import DataError, ShapeError, lookup, type_name
from .layers import constant, reuse_buffer


def _as_2d_targets(y, n, n_out, dtype, loss_name):
    y = np.asarray(y)
    if y.ndim == 1 and n_out == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.shape != (n, n_out):
        raise ShapeError(
            f"{loss_name} targets do not match the network output",
            expected=f"shape ({n}, {n_out})" + (" or 1-D class labels" if n_out > 1 else ""),
            got=type_name(y),
            fix="pass one target row per sample, as wide as the output layer",
        )
    if not np.issubdtype(y.dtype, np.number) and y.dtype != np.bool_:
        raise DataError(
            f"{loss_name} targets are not numbers",
            expected="a numeric array",
            got=f"dtype {y.dtype}",
            fix="convert labels to numbers (string labels: use the CSV loader or the sklearn estimators)",
        )
    y = y.astype(dtype)
    if not np.isfinite(y).all():
        raise DataError(
            f"{loss_name} targets contain NaN or infinity",
            expected="finite numbers",
            got=f"{int((~np.isfinite(y)).sum())} non-finite values",
            fix="drop or fill the missing targets",
        )
    return y


def check_labels(y, n, n_classes):
    """Validate integer class labels; return them as an int64 array."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ShapeError(
            "class labels have the wrong shape",
            expected=f"a 1-D array of {n} labels",
            got=type_name(y),
            fix="pass one integer label per row of X",
        )
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise DataError(
                "class labels are not whole numbers",
                expected=f"integers 0..{n_classes - 1}",
                got="fractional or non-finite values",
                fix="pass integer class indices, or one-hot rows",
            )
    elif y.dtype.kind not in "iub":
        raise DataError(
            "class labels are not numbers",
            expected=f"integers 0..{n_classes - 1}",
            got=f"dtype {y.dtype}",
            fix="map class names to 0..K-1 first (the sklearn estimators do this for you)",
        )
    labels = y.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            "class label out of range",
            expected=f"labels in 0..{n_classes - 1} (the output layer has {n_classes} units)",
            got=f"labels from {labels.min()} to {labels.max()}",
            fix="relabel the classes as 0..K-1, or make the output layer as wide as the number of classes",
        )
    return labels


def check_sample_weight(sample_weight, n, dtype):
    """Per-row weights as an array of ``dtype`` (None passes through): ``n`` finite numbers >= 0, not all 0."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim != 1 or w.shape[0] != n:
        raise ShapeError(
            "sample_weight does not match the rows",
            expected=f"a 1-D array of {n} weights, one per row of X",
            got=type_name(w),
            fix="pass one weight per sample, or leave sample_weight out",
        )
    if w.dtype.kind not in "fiub":
        raise DataError(
            "sample weights are not numbers",
            expected="a numeric array",
            got=f"dtype {w.dtype}",
            fix="pass numbers such as 1.0 (normal) and 2.0 (counts twice)",
        )
    w = w.astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        raise DataError(
            "sample weights must be finite and >= 0",
            expected="finite numbers >= 0",
            got=f"values from {np.nanmin(w)} to {np.nanmax(w)}" if n and not np.isnan(w).all() else "NaN",
            fix="drop the rows with missing weights, and use 0 to leave a row out",
        )
    if n and not w.sum() > 0:
        raise DataError(
            "all sample weights are zero",
            expected="sample weights with at least one non-zero number",
            got=f"{n} zero weights",
            fix="give the rows to learn from a positive weight",
        )
    return backend.asarray(w, dtype=dtype)


class Loss:
    """Base class: ``value(P, Y)``, ``per_sample(P, Y)`` and ``delta(P, Y) = dL/dP``.

    ``P`` is the network's output (batch first), ``Y`` the targets as
    :meth:`prepare` returned them. ``value`` is the mean of ``per_sample``.
    A loss that fuses with an output activation names it in ``fuses_with``
    and adds ``value_from_logits``, ``per_sample_from_logits`` and
    ``delta_logits = dL/dz`` (``z``: that activation's input).
    """

    name = "loss"
    fuses_with = None  # name of the output activation this loss fuses with

    def prepare(self, y, n, n_out, dtype):
        """Check targets and convert them to the form the loss uses."""
        raise NotImplementedError

    def value(self, P, Y) -> float:
        return float(backend.xp.mean(self.per_sample(P, Y)))

    def per_sample(self, P, Y):
        """One loss value per row (shape ``(n,)``); their mean is :meth:`value`."""
        raise NotImplementedError

    def delta(self, P, Y, out=None):
        raise NotImplementedError

    def fuses(self, head) -> bool:
        """True when this loss takes over the backward step of the output layer ``head``."""
        return self.fuses_with is not None and getattr(head, "name", None) == self.fuses_with

    # ------------------------------------------------------ the one step

    def value_and_delta(self, outputs, targets, sample_weight=None, *, head=None, out=None, need_delta=True):
        """The loss step: the loss value and the error signal that starts the backward pass.

        Parameters
        ----------
        outputs : array (n, n_out)
            The network's outputs ``P`` (after a forward pass).
        targets : array
            As :meth:`prepare` returned them.
        sample_weight : array (n,), optional
            One weight per row: the value is the weighted mean
            ``sum_i w_i l_i / sum_i w_i`` (0 for a batch whose weights are
            all 0), so each row's gradient is scaled by ``w_i / sum(w)``.
        head : Layer, optional
            The output layer, after its forward pass. When this loss fuses
            with it (:meth:`fuses`), the value comes from the logits and the
            delta is ``dL/dz`` at the head's *input*: the head's own backward
            is then skipped. Otherwise the delta is ``dL/dP``.
        out : array, optional
            Where to write the delta (a reused buffer).
        need_delta : bool
            False for the value alone (evaluation, finite differences).

        Returns
        -------
        (float, array or None)
        """
        fused = self.fuses(head)
        if sample_weight is not None:
            return self._weighted_step(outputs, targets, sample_weight, head if fused else None, out, need_delta)
        if fused:
            return self._fused_step(head, targets, out, need_delta)
        value = self.value(outputs, targets)
        return value, (self.delta(outputs, targets, out=out) if need_delta else None)

    def _fused_step(self, head, Y, out, need_delta):
        value = self.value_from_logits(head.z, Y)
        return value, (self.delta_logits(head.a, Y, out=out) if need_delta else None)

    def _weighted_step(self, P, Y, w, head, out, need_delta):
        n = P.shape[0]
        total = float(backend.total(w))
        norm = total if total > 0 else 1.0  # rows that all weigh 0 teach nothing: value 0, delta 0
        per_row = self.per_sample(P, Y) if head is None else self.per_sample_from_logits(head.z, Y)
        value = float(backend.vdot(per_row, w)) / norm
        if not need_delta:
            return value, None
        d = self.delta(P, Y, out=out) if head is None else self.delta_logits(head.a, Y, out=out)
        # the mean's delta carries a factor 1/n per row; the weighted mean's carries w_i / sum(w)
        d *= (w * (n / norm))[:, None]
        return value, d

    def _buffer(self, key, shape, dtype):
        # keyed by backend too: one Loss may serve networks on the CPU and on the GPU
        return reuse_buffer(self.__dict__.setdefault("_buffers", {}), (backend.name, key), shape, dtype)

    def __repr__(self):
        return f"{type(self).__name__}()"


class MSE(Loss):
    """``L = mean((P - Y)**2)`` over all elements, like ``torch.nn.MSELoss``.

    ``delta = 2 (P - Y) / P.size``; per sample, the mean over the outputs.
    Integer labels become one-hot rows, so the classic recipe (sigmoid
    outputs, one-hot targets, squared error) works on class labels directly.
    """

    name = "mse"

    def prepare(self, y, n, n_out, dtype):
        y_arr = np.asarray(y)
        if y_arr.ndim == 1 and n_out > 1:
            labels = check_labels(y_arr, n, n_out)
            Y = np.zeros((n, n_out), dtype=dtype)
            Y[np.arange(n), labels] = 1
            return backend.asarray(Y)
        return backend.asarray(_as_2d_targets(y_arr, n, n_out, dtype, "MSE"))

    def value(self, P, Y):
        diff = P - Y
        return float(backend.xp.mean(diff * diff))

    def per_sample(self, P, Y):
        diff = P - Y
        return backend.xp.mean(diff * diff, axis=1)

    def delta(self, P, Y, out=None):
        out = backend.ops.subtract(P, Y, out=out)
        out *= 2.0 / P.size
        return out


class CrossEntropy(Loss):
    """``L = mean over samples of -sum_k y_k log p_k`` (``-log p[true class]`` for labels).

    Fused with a softmax output: the value comes from the logits by
    log-sum-exp (no log of 0) and ``dL/dz = (p - y) / n``. On any other
    output the network's outputs are taken as probabilities:
    ``dL/dp = -y / (p n)``. Targets: integer labels or probability rows.
    """

    name = "cross_entropy"
    fuses_with = "softmax"

    def prepare(self, y, n, n_out, dtype):
        y_arr = np.asarray(y)
        if y_arr.ndim == 1:
            return backend.asarray(check_labels(y_arr, n, n_out))
        Y = _as_2d_targets(y_arr, n, n_out, dtype, "CrossEntropy")
        if (Y < 0).any():
            raise DataError(
                "cross-entropy target rows contain negative values",
                expected="one-hot or probability rows (non-negative)",
                got=f"minimum {Y.min()}",
                fix="pass integer labels or rows of class probabilities",
            )
        return backend.asarray(Y)

    @staticmethod
    def _true_term(A, Y):
        """sum_k y_k a_k per row; for label vectors that is a[i, y_i]."""
        xp = backend.xp
        if Y.ndim == 1:
            return xp.take_along_axis(A, Y[:, None], axis=1)[:, 0]
        return xp.sum(A * Y, axis=1)

    def per_sample_from_logits(self, Z, Y):
        """``logsumexp(z) * sum(y) - sum(y * z)`` per row (``logsumexp(z) - z[true]`` for labels)."""
        xp = backend.xp
        m = xp.max(Z, axis=1, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(Z - m), axis=1)) + m[:, 0]
        if Y.ndim == 1:
            return lse - self._true_term(Z, Y)
        return lse * xp.sum(Y, axis=1) - self._true_term(Z, Y)

    def value_from_logits(self, Z, Y):
        return float(backend.xp.mean(self.per_sample_from_logits(Z, Y)))

    def delta_logits(self, P, Y, out=None):
        n = P.shape[0]
        if Y.ndim == 1:
            out = backend.ops.subtract(P, self._one_hot(Y, P.shape, P.dtype), out=out)
        else:
            # for rows that do not sum to 1 the exact gradient is p * sum(y) - y
            out = backend.ops.multiply(P, backend.xp.sum(Y, axis=1, keepdims=True), out=out)
            out -= Y
        out *= 1.0 / n
        return out

    def _fused_step(self, softmax, Y, out, need_delta):
        """Softmax + cross-entropy in one step, for integer labels (other targets: the general formulas).

        The labels become one-hot rows ``T`` once, used twice. The value is
        ``-mean(log p[true]) = (sum_i log s_i - sum(shifted * T)) / n`` from
        the softmax's own ``shifted = z - max(z)`` and row sums ``s``: exact
        even where ``p`` underflows, and both sums add terms of one sign (no
        cancellation). The gradient is ``dL/dz = (p - T) / n``.
        """
        if Y.ndim != 1 or getattr(softmax, "shifted", None) is None:
            return super()._fused_step(softmax, Y, out, need_delta)
        ops = backend.ops
        P = softmax.a
        n = P.shape[0]
        T = self._one_hot(Y, P.shape, P.dtype)
        log_s = self._buffer("log_s", softmax.row_sum.shape, P.dtype)
        log_s = ops.log(softmax.row_sum, out=log_s)
        value = (float(backend.total(log_s)) - float(backend.vdot(softmax.shifted, T))) / n
        if not need_delta:
            return value, None
        out = ops.subtract(P, T, out=out)
        return value, ops.multiply(out, constant(1.0 / n, P.dtype), out=out)

    def _one_hot(self, labels, shape, dtype):
        """Rows with a 1 in each label's column: one comparison of the labels against 0..K-1."""
        xp = backend.xp
        classes = self.__dict__.get("_classes")
        if classes is None or classes.shape[0] != shape[1] or type(classes) is not type(labels):  # a backend switch
            classes = self._classes = xp.arange(shape[1])
        T = self._buffer("one_hot", shape, dtype)
        if T is None:
            return xp.astype(labels[:, None] == classes, dtype)
        return xp.equal(labels[:, None], classes, out=T)

    def per_sample(self, P, Y):
        xp = backend.xp
        logp = xp.log(xp.maximum(P, xp.finfo(P.dtype).smallest_normal))
        return -self._true_term(logp, Y)

    def delta(self, P, Y, out=None):
        xp = backend.xp
        n = P.shape[0]
        T = self._one_hot(Y, P.shape, P.dtype) if Y.ndim == 1 else Y
        # -y / (n p): for labels, -1 / (n p[true]) in the label's column, 0 elsewhere
        out = backend.ops.divide(T, xp.maximum(P, xp.finfo(P.dtype).smallest_normal), out=out)
        out *= -1.0 / n
        return out


class BinaryCrossEntropy(Loss):
    """``L = mean of -(y log p + (1 - y) log(1 - p))`` over all elements, like ``torch.nn.BCELoss``.

    For multi-label outputs (one sigmoid per label); per sample, the mean
    over the outputs. Fused with a sigmoid output: value by the stable
    softplus form, ``dL/dz = (p - y) / P.size``.
    """

    name = "binary_cross_entropy"
    fuses_with = "sigmoid"

    def prepare(self, y, n, n_out, dtype):
        Y = _as_2d_targets(np.asarray(y), n, n_out, dtype, "BinaryCrossEntropy")
        if Y.size and (Y.min() < 0 or Y.max() > 1):
            raise DataError(
                "binary cross-entropy targets are outside [0, 1]",
                expected="0/1 indicators or probabilities",
                got=f"values from {Y.min()} to {Y.max()}",
                fix="use 0/1 labels per output, or a different loss for regression",
            )
        return backend.asarray(Y)

    @staticmethod
    def _logit_terms(Z, Y):
        xp = backend.xp
        # -(y log s(z) + (1-y) log(1-s(z))) = max(z,0) - z y + log(1 + exp(-|z|))
        return xp.maximum(Z, 0.0) - Z * Y + xp.log1p(xp.exp(-xp.abs(Z)))

    def value_from_logits(self, Z, Y):
        return float(backend.xp.mean(self._logit_terms(Z, Y)))

    def per_sample_from_logits(self, Z, Y):
        return backend.xp.mean(self._logit_terms(Z, Y), axis=1)

    def delta_logits(self, P, Y, out=None):
        out = backend.ops.subtract(P, Y, out=out)
        out *= 1.0 / P.size
        return out

    @staticmethod
    def _clipped(P):
        eps = float(backend.xp.finfo(P.dtype).eps)
        return backend.xp.clip(P, eps, 1 - eps)

    @classmethod
    def _terms(cls, P, Y):
        xp = backend.xp
        Pc = cls._clipped(P)
        return -(Y * xp.log(Pc) + (1 - Y) * xp.log1p(-Pc))

    def value(self, P, Y):
        return float(backend.xp.mean(self._terms(P, Y)))

    def per_sample(self, P, Y):
        return backend.xp.mean(self._terms(P, Y), axis=1)

    def delta(self, P, Y, out=None):
        Pc = self._clipped(P)
        out = backend.ops.subtract(Pc, Y, out=out)
        out /= Pc * (1 - Pc) * P.size
        return out


LOSSES = {
    "mse": MSE,
    "squared_error": MSE,
    "cross_entropy": CrossEntropy,
    "crossentropy": CrossEntropy,
    "categorical_crossentropy": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "bce": BinaryCrossEntropy,
}


def get_loss(loss) -> Loss:
    """Build a loss from its name (or pass a Loss instance through)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    return lookup(LOSSES, loss, "loss", fix="use loss='cross_entropy' for classes, 'mse' for numbers")()
