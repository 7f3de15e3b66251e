"""Cost functions: how wrong the network is, and which way to turn.

Each loss is a small class with ``value`` (the cost) and ``delta`` (its
gradient with respect to the network output), in the manner of Nielsen's
``network2.py``. ``prepare`` checks and converts targets once per fit, so
the hot path never re-validates. Losses that pair with an output
activation (softmax + cross-entropy, sigmoid + binary cross-entropy) also
give the fused gradient with respect to the logits, which is cheaper and
numerically exact.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import ConfigError, DataError, ShapeError, type_name
from .layers import constant


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


def is_label_vector(y) -> bool:
    y = np.asarray(y)
    return y.ndim == 1


class Loss:
    """Base class: ``value(P, Y)`` and ``delta(P, Y) = dL/dP``."""

    name = "loss"
    fuses_with = None  # name of the output activation this loss fuses with

    def prepare(self, y, n, n_out, dtype):
        """Check targets and convert them to the form the loss uses."""
        raise NotImplementedError

    def value(self, P, Y) -> float:
        raise NotImplementedError

    def delta(self, P, Y):
        raise NotImplementedError

    def value_and_delta_logits(self, layer, Y, out=None):
        """The fused training step for the output ``layer`` it pairs with (after that layer's forward).

        Returns the loss value and ``dL/dz``, the gradient with respect to
        the layer's input ``z``, written into ``out``.
        """
        return self.value_from_logits(layer.z, Y), self.delta_logits(layer.a, Y, out=out)

    def __repr__(self):
        return f"{type(self).__name__}()"


class MSE(Loss):
    """``L = mean((P - Y)**2)`` over all elements, like ``torch.nn.MSELoss``.

    ``delta = 2 (P - Y) / P.size``. Integer labels become one-hot rows, so
    the classic recipe (sigmoid outputs, one-hot targets, squared error)
    works on class labels directly.
    """

    name = "mse"

    def prepare(self, y, n, n_out, dtype):
        y_arr = np.asarray(y)
        if y_arr.ndim == 1 and n_out > 1:
            labels = check_labels(y_arr, n, n_out)
            Y = np.zeros((n, n_out), dtype=dtype)
            Y[np.arange(n), labels] = 1
            return backend.xp.asarray(Y)
        return backend.xp.asarray(_as_2d_targets(y_arr, n, n_out, dtype, "MSE"))

    def value(self, P, Y):
        diff = P - Y
        return float((diff * diff).mean())

    def delta(self, P, Y, out=None):
        out = backend.xp.subtract(P, Y, out=out)
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
            return backend.xp.asarray(check_labels(y_arr, n, n_out))
        Y = _as_2d_targets(y_arr, n, n_out, dtype, "CrossEntropy")
        if (Y < 0).any():
            raise DataError(
                "cross-entropy target rows contain negative values",
                expected="one-hot or probability rows (non-negative)",
                got=f"minimum {Y.min()}",
                fix="pass integer labels or rows of class probabilities",
            )
        return backend.xp.asarray(Y)

    @staticmethod
    def _true_term(A, Y):
        """sum_k y_k a_k per row; for label vectors that is a[i, y_i]."""
        if Y.ndim == 1:
            return A[backend.xp.arange(A.shape[0]), Y]
        return (A * Y).sum(axis=1)

    def value_from_logits(self, Z, Y):
        xp = backend.xp
        m = Z.max(axis=1, keepdims=True)
        lse = xp.log(xp.exp(Z - m).sum(axis=1)) + m[:, 0]
        if Y.ndim == 1:
            return float((lse - self._true_term(Z, Y)).mean())
        return float((lse * Y.sum(axis=1) - self._true_term(Z, Y)).mean())

    def delta_logits(self, P, Y, out=None):
        xp = backend.xp
        n = P.shape[0]
        if Y.ndim == 1:
            if out is None:
                out = P.copy()
            else:
                xp.copyto(out, P)
            out[xp.arange(n), Y] -= 1
        else:
            # for rows that do not sum to 1 the exact gradient is p * sum(y) - y
            out = xp.multiply(P, Y.sum(axis=1, keepdims=True), out=out)
            out -= Y
        out *= 1.0 / n
        return out

    def value_and_delta_logits(self, softmax, Y, out=None):
        """Softmax + cross-entropy in one step, for integer labels (other targets: the general formulas).

        The labels become one-hot rows ``T`` once, used twice. The value is
        ``-mean(log p[true]) = (sum_i log s_i - sum(shifted * T)) / n`` from
        the softmax's own ``shifted = z - max(z)`` and row sums ``s``: exact
        even where ``p`` underflows, and both sums add terms of one sign (no
        cancellation). The gradient is ``dL/dz = (p - T) / n``.
        """
        if Y.ndim != 1 or getattr(softmax, "shifted", None) is None:
            return super().value_and_delta_logits(softmax, Y, out)
        xp = backend.xp
        P = softmax.a
        n = P.shape[0]
        T = self._one_hot(Y, P.shape, P.dtype)
        log_s = self._buffer("log_s", softmax.row_sum.shape, P.dtype)
        xp.log(softmax.row_sum, out=log_s)
        value = (float(xp.add.reduce(log_s)) - float(xp.vdot(softmax.shifted, T))) / n
        out = xp.subtract(P, T, out=out)
        xp.multiply(out, constant(1.0 / n, P.dtype), out=out)
        return value, out

    def _buffer(self, key, shape, dtype):
        buffers = self.__dict__.setdefault("_buffers", {})
        buf = buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = buffers[key] = backend.xp.empty(shape, dtype=dtype)
        return buf

    def _one_hot(self, labels, shape, dtype):
        """Rows with a 1 in each label's column: one comparison of the labels against 0..K-1."""
        xp = backend.xp
        classes = self.__dict__.get("_classes")
        if classes is None or classes.shape[0] != shape[1]:
            classes = self._classes = xp.arange(shape[1])
        T = self._buffer("one_hot", shape, dtype)
        xp.equal(labels[:, None], classes, out=T)
        return T

    def value(self, P, Y):
        xp = backend.xp
        tiny = np.finfo(P.dtype).tiny
        logp = xp.log(xp.maximum(P, tiny))
        return float(-self._true_term(logp, Y).mean())

    def delta(self, P, Y, out=None):
        xp = backend.xp
        n = P.shape[0]
        tiny = np.finfo(P.dtype).tiny
        if Y.ndim == 1:
            out = xp.zeros_like(P) if out is None else out
            out[...] = 0
            rows = xp.arange(n)
            out[rows, Y] = -1.0 / (n * xp.maximum(P[rows, Y], tiny))
            return out
        out = xp.divide(Y, xp.maximum(P, tiny), out=out)
        out *= -1.0 / n
        return out


class BinaryCrossEntropy(Loss):
    """``L = mean of -(y log p + (1 - y) log(1 - p))`` over all elements, like ``torch.nn.BCELoss``.

    For multi-label outputs (one sigmoid per label). Fused with a sigmoid
    output: value by the stable softplus form, ``dL/dz = (p - y) / P.size``.
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
        return backend.xp.asarray(Y)

    def value_from_logits(self, Z, Y):
        xp = backend.xp
        # -(y log s(z) + (1-y) log(1-s(z))) = max(z,0) - z y + log(1 + exp(-|z|))
        terms = xp.maximum(Z, 0) - Z * Y + xp.log1p(xp.exp(-xp.abs(Z)))
        return float(terms.mean())

    def delta_logits(self, P, Y, out=None):
        out = backend.xp.subtract(P, Y, out=out)
        out *= 1.0 / P.size
        return out

    def value(self, P, Y):
        xp = backend.xp
        eps = np.finfo(P.dtype).eps
        Pc = xp.clip(P, eps, 1 - eps)
        return float(-(Y * xp.log(Pc) + (1 - Y) * xp.log1p(-Pc)).mean())

    def delta(self, P, Y, out=None):
        xp = backend.xp
        eps = np.finfo(P.dtype).eps
        Pc = xp.clip(P, eps, 1 - eps)
        out = xp.subtract(Pc, Y, out=out)
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
    try:
        return LOSSES[str(loss).lower()]()
    except KeyError:
        raise ConfigError(
            f"unknown loss {loss!r}",
            expected="one of " + ", ".join(sorted(LOSSES)),
            got=repr(loss),
            fix="use loss='cross_entropy' for classes, 'mse' for numbers",
        ) from None
