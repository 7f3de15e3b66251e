"""Layers as forward/backward pairs.

Batch first: a layer takes ``(n, n_in)`` and returns ``(n, n_out)``.
``forward`` caches only what ``backward`` needs; ``backward`` takes the
gradient of the loss with respect to the layer's output and returns the
gradient with respect to its input: one chain-rule step each.

Outputs are written into buffers the layer owns and reuses while the batch
size stays the same, so a training step allocates (almost) nothing. A
buffer is overwritten by the next call: ``Network.forward`` copies the
final result before handing it to the user.

The math is written against the Array API standard through
:mod:`dialnet.backend`: ``backend.xp`` for the standard's functions,
``backend.ops`` for element-wise calls into a buffer (``out=``; on a library
without it the buffer is None and the call returns a fresh array, so every
call site uses the value returned), and ``backend.dot`` for the products.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import backend
from ..errors import InvalidValueError, check_positive_int, lookup
from .init import AUTO_FOR_ACTIVATION, get_initializer


@functools.lru_cache(maxsize=256)
def _constant(value, dtype, backend_name):
    arr = backend.asarray(value, dtype=dtype)
    if backend_name == "numpy":
        arr.flags.writeable = False
    return arr


def constant(value, dtype):
    """``value`` as a 0-d array of ``dtype``, made once and reused.

    A Python float handed to a ufunc is converted on every call, which costs
    about as much as the arithmetic on a small batch; a 0-d array of the
    same dtype is not, and keeps float32 math in float32.
    """
    return _constant(value, dtype, backend.name)


@functools.lru_cache(maxsize=16)
def _exp_limit(dtype, backend_name):
    dtype = backend.numpy_dtype(dtype)
    limit = np.asarray(np.log(np.finfo(dtype).max), dtype=dtype)
    with np.errstate(over="ignore"):
        while not np.isfinite(np.exp(limit)):  # rounding to dtype can land just above
            limit = np.nextafter(limit, dtype.type(0))
    return _constant(float(limit), dtype, backend_name)


def exp_limit(dtype):
    """The largest ``x`` of ``dtype`` with a finite ``exp(x)`` (a 0-d array, made once)."""
    return _exp_limit(dtype, backend.name)


def reuse_buffer(buffers: dict, key, shape, dtype):
    """The array ``buffers[key]``, made anew only when ``shape`` or ``dtype`` changed.

    Layers and losses write their outputs into such buffers, so a training
    step at a steady batch size allocates nothing. None on a backend without
    ``out=`` (the call then returns a fresh array).
    """
    buf = buffers.get(key)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        if not backend.buffer_ok():
            return None
        buf = buffers[key] = backend.xp.empty(shape, dtype=dtype)
    return buf


class Layer:
    """Base class: a forward/backward pair with no parameters."""

    name = "layer"
    trainable = False

    def __init__(self):
        self._buffers = {}

    def _buffer(self, key, shape, dtype):
        return reuse_buffer(self._buffers, key, shape, dtype)

    def _ones(self, n, dtype):
        """A vector of ``n`` ones, kept: sums written as products with it run in BLAS."""
        ones = self._buffers.get("ones")
        if ones is None or ones.shape[0] != n or ones.dtype != dtype:
            ones = self._buffers["ones"] = backend.xp.ones(n, dtype=backend.native_dtype(dtype))
        return ones

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, grad_out, need_dx=True):
        raise NotImplementedError

    def parameters(self):
        return []

    def gradients(self):
        return []

    def config(self) -> dict:
        """Constructor arguments, for model files (JSON-serializable)."""
        return {}

    def clear_cache(self):
        """Drop cached activations and buffers (e.g. before saving or after a huge batch)."""
        self._buffers = {}
        for attr in ("x", "z", "a", "mask", "shifted", "row_sum"):
            if hasattr(self, attr):
                setattr(self, attr, None)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """A fully connected layer: ``Z = X @ W + b``, ``W`` of shape (n_in, n_out).

    Backward: ``dX = dZ @ W.T``; ``dW = X.T @ dZ``; ``db = dZ.sum(0)``.
    Each weight is a dial; ``grad_weights[i, j]`` is how fast the loss
    changes when dial ``W[i, j]`` is turned.
    """

    name = "dense"
    trainable = True

    def __init__(self, n_in, n_out, init="auto", seed=None, dtype="float32"):
        super().__init__()
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        if init != "auto":
            get_initializer(init)  # fail early on an unknown name
        self.init = init
        self.x = None
        self.reset_parameters(np.random.default_rng(seed), backend.resolve_dtype(dtype))

    def reset_parameters(self, rng, dtype, init=None):
        """Set the dials to fresh random values from ``rng``."""
        name = init or self.init
        if name == "auto":
            name = "glorot_uniform"
        W = get_initializer(name)(self.n_in, self.n_out, rng, dtype)
        if name == "uniform":  # the articles' recipe starts biases at random too
            b = rng.uniform(0.0, 1.0, size=self.n_out).astype(dtype)
        else:
            b = np.zeros(self.n_out, dtype=dtype)
        self.weights = backend.asarray(W)
        self.biases = backend.asarray(b)
        self.grad_weights = backend.xp.zeros_like(self.weights)
        self.grad_biases = backend.xp.zeros_like(self.biases)
        self._buffers = {}

    def reset_storage(self):
        """Fresh zero arrays of the current backend for the dials and gradients (values set afterwards)."""
        dtype = backend.native_dtype(backend.numpy_dtype(self.weights.dtype))
        self.weights = backend.xp.zeros((self.n_in, self.n_out), dtype=dtype)
        self.biases = backend.xp.zeros((self.n_out,), dtype=dtype)
        self.grad_weights = backend.xp.zeros_like(self.weights)
        self.grad_biases = backend.xp.zeros_like(self.biases)
        self._buffers = {}

    def astype(self, dtype):
        self.weights = backend.astype(self.weights, dtype)
        self.biases = backend.astype(self.biases, dtype)
        self.grad_weights = backend.xp.zeros_like(self.weights)
        self.grad_biases = backend.xp.zeros_like(self.biases)
        self._buffers = {}

    # backend.dot is np.dot on NumPy: it hands 2-D products straight to BLAS,
    # where np.matmul takes a slower route for some shapes (X.T @ dZ at batch
    # 1 is an outer product); the standard's matmul elsewhere.

    def forward(self, x, training=False):
        self.x = x
        z = self._buffer("z", (x.shape[0], self.n_out), self.weights.dtype)
        z = backend.dot(x, self.weights, out=z)
        return backend.ops.add(z, self.biases, out=z)

    def backward(self, dz, need_dx=True):
        """``dW = X.T @ dZ``, ``db = 1.T @ dZ`` (a sum over the batch, done by BLAS), ``dX = dZ @ W.T``.

        The gradients are written into ``grad_weights`` and ``grad_biases``
        in place (they are views of the network's one flat gradient array).
        """
        dot = backend.dot
        n = dz.shape[0]
        dot(self.x.T, dz, out=self.grad_weights)
        dot(self._ones(n, dz.dtype), dz, out=self.grad_biases)
        if not need_dx:
            return None
        dx = self._buffer("dx", (n, self.n_in), dz.dtype)
        return dot(dz, self.weights.T, out=dx)

    def parameters(self):
        return [self.weights, self.biases]

    def gradients(self):
        return [self.grad_weights, self.grad_biases]

    def use_storage(self, params, grads):
        """Move the dials and their gradients into the given arrays (same shapes), and keep using those.

        ``Network`` passes views of one flat array, so that an optimizer can
        turn every dial of the network in a few whole-array operations.
        """
        for new, old in zip(params + grads, self.parameters() + self.gradients()):
            new[...] = old
        self.weights, self.biases = params
        self.grad_weights, self.grad_biases = grads

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init}


class Activation(Layer):
    """An element-wise (or row-wise) function with no dials."""


class Sigmoid(Activation):
    """``a = 1 / (1 + exp(-z))``.

    Backward: ``dz = da * a * (1 - a)``: the slope of the neuron's output,
    computed from the cached output ``a`` so no exp is repeated.
    """

    name = "sigmoid"

    def forward(self, z, training=False):
        ops = backend.ops
        self.z = z
        a = self._buffer("a", z.shape, z.dtype)
        a = ops.negative(z, out=a)
        # exp(-z) stays finite below log(max float): a >= 1/max instead of an
        # overflow warning, and no np.errstate (slower than the math) per call
        a = ops.minimum(a, exp_limit(z.dtype), out=a)
        a = ops.exp(a, out=a)
        one = constant(1, z.dtype)
        a = ops.add(a, one, out=a)
        a = ops.divide(one, a, out=a)  # same bits as reciprocal, which NumPy does not vectorize
        self.a = a
        return a

    def backward(self, da, need_dx=True):
        ops = backend.ops
        dz = self._buffer("dz", da.shape, da.dtype)
        dz = ops.subtract(constant(1, da.dtype), self.a, out=dz)  # 1 - a is exact near a = 1; a - a*a is not
        dz = ops.multiply(dz, self.a, out=dz)
        return ops.multiply(dz, da, out=dz)


class Tanh(Activation):
    """``a = tanh(z)``. Backward: ``dz = da * (1 - a**2)``."""

    name = "tanh"

    def forward(self, z, training=False):
        a = self._buffer("a", z.shape, z.dtype)
        self.a = backend.ops.tanh(z, out=a)
        return self.a

    def backward(self, da, need_dx=True):
        ops = backend.ops
        dz = self._buffer("dz", da.shape, da.dtype)
        dz = ops.multiply(self.a, self.a, out=dz)
        dz = ops.subtract(constant(1, da.dtype), dz, out=dz)
        return ops.multiply(dz, da, out=dz)


class ReLU(Activation):
    """``a = max(z, 0)``. Backward: ``dz = da * (z > 0)``."""

    name = "relu"

    def forward(self, z, training=False):
        a = self._buffer("a", z.shape, z.dtype)
        self.a = backend.ops.maximum(z, constant(0, z.dtype), out=a)
        return self.a

    def backward(self, da, need_dx=True):
        dz = self._buffer("dz", da.shape, da.dtype)
        # the 0/1 mask is written straight as floats: two float passes, no bool array to cast
        dz = backend.greater(self.a, constant(0, da.dtype), out=dz)
        return backend.ops.multiply(dz, da, out=dz)


class LeakyReLU(Activation):
    """``a = z if z > 0 else alpha * z``. Backward: ``dz = da * (1 if z > 0 else alpha)``."""

    name = "leaky_relu"

    def __init__(self, alpha=0.01):
        super().__init__()
        alpha = float(alpha)
        if not 0.0 <= alpha < 1.0:
            raise InvalidValueError(
                "LeakyReLU alpha must be in [0, 1)",
                expected="0 <= alpha < 1",
                got=repr(alpha),
                fix="use a small slope such as alpha=0.01",
            )
        self.alpha = alpha

    def forward(self, z, training=False):
        dtype = z.dtype
        self.slope = backend.xp.where(z > constant(0, dtype), constant(1, dtype), constant(self.alpha, dtype))
        a = self._buffer("a", z.shape, dtype)
        self.a = backend.ops.multiply(z, self.slope, out=a)
        return self.a

    def backward(self, da, need_dx=True):
        dz = self._buffer("dz", da.shape, da.dtype)
        return backend.ops.multiply(da, self.slope, out=dz)

    def config(self):
        return {"alpha": self.alpha}


class Softmax(Activation):
    """``a_i = exp(z_i) / sum_j exp(z_j)`` per row: a certainty per class.

    Backward: ``dz = a * (da - sum(da * a, axis=1))``. With
    :class:`~dialnet.losses.CrossEntropy` the network skips this and uses
    the fused ``dz = (a - y) / n``, which is cheaper and exact.
    """

    name = "softmax"

    def forward(self, z, training=False):
        """Keeps ``shifted = z - max(z)`` (per row) and the row sums ``s = sum_j exp(shifted_j)``.

        Then ``log a = shifted - log s`` exactly, with no log of a rounded
        probability: the fused cross-entropy reads its value from these two.
        """
        ops = backend.ops
        self.z = z
        n, k = z.shape
        a = self._buffer("a", z.shape, z.dtype)
        shifted = self._buffer("shifted", z.shape, z.dtype)
        m = self._buffer("row_max", (n, 1), z.dtype)
        s = self._buffer("row_sum", (n,), z.dtype)
        m = backend.row_max(z, out=m)
        shifted = ops.subtract(z, m, out=shifted)
        a = ops.exp(shifted, out=a)
        # row sums as a product with a vector of ones: BLAS, where NumPy's
        # reduction along a short last axis goes row by row
        s = backend.dot(a, self._ones(k, z.dtype), out=s)
        a = ops.divide(a, s[:, None], out=a)
        self.shifted, self.row_sum = shifted, s
        self.a = a
        return a

    def backward(self, da, need_dx=True):
        ops = backend.ops
        dz = self._buffer("dz", da.shape, da.dtype)
        dz = ops.multiply(da, self.a, out=dz)
        s = backend.xp.sum(dz, axis=1, keepdims=True)
        dz = ops.subtract(da, s, out=dz)
        dz *= self.a
        return dz


class Identity(Activation):
    """``a = z`` (a linear output, for regression). Backward: ``dz = da``."""

    name = "identity"

    def forward(self, z, training=False):
        self.a = z
        return z

    def backward(self, da, need_dx=True):
        return da


class Dropout(Layer):
    """Inverted dropout: in training, ``a = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)``.

    Backward: ``dx = da * m / (1 - p)`` with the same mask. At inference it
    is the identity, so no rescaling is needed there. The mask comes from a
    seeded generator (set by the network's seed).
    """

    name = "dropout"

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        p = float(p)
        if not 0.0 <= p < 1.0:
            raise InvalidValueError(
                "dropout rate p must be in [0, 1)",
                expected="0 <= p < 1",
                got=repr(p),
                fix="use e.g. p=0.2 (drop 20% of units while training)",
            )
        self.p = p
        self.rng = np.random.default_rng(seed)
        self.mask = None

    def forward(self, x, training=False):
        if not training or self.p == 0.0:
            self.mask = None
            return x
        # drawn on the host from the seeded NumPy generator, so every backend gets the same masks
        keep = self.rng.random(x.shape) >= self.p
        mask = self._buffer("mask", x.shape, x.dtype)
        if mask is None:
            mask = backend.asarray(keep, dtype=x.dtype)
        else:
            mask[...] = backend.asarray(keep) if backend.name != "numpy" else keep
        mask *= 1.0 / (1.0 - self.p)
        self.mask = mask
        out = self._buffer("a", x.shape, x.dtype)
        return backend.ops.multiply(x, mask, out=out)

    def backward(self, da, need_dx=True):
        if self.mask is None:
            return da
        dx = self._buffer("dx", da.shape, da.dtype)
        return backend.ops.multiply(da, self.mask, out=dx)

    def config(self):
        return {"p": self.p}


LAYERS = {cls.name: cls for cls in (Dense, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, Identity, Dropout)}

ACTIVATIONS = {
    "sigmoid": Sigmoid,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "softmax": Softmax,
    "identity": Identity,
    "linear": Identity,
}


def get_activation(name):
    """Build an activation layer from its name (or pass a layer through)."""
    if isinstance(name, Layer):
        return name
    return lookup(ACTIVATIONS, name, "activation", fix="use activation='relu' or 'sigmoid'")()


def auto_init_for(next_layer) -> str:
    """The initializer 'auto' resolves to, given the activation that follows."""
    return AUTO_FOR_ACTIVATION.get(getattr(next_layer, "name", None), "glorot_uniform")
