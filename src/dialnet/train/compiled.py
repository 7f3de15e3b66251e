"""Which engine trains: the NumPy layers, or one compiled step per mini-batch.

The NumPy path (layers, losses and optimizers calling NumPy a few times
each) is the reference: readable, inspectable, and on every backend. For the
common stacks it also has a compiled twin, :mod:`dialnet.train._kernels`
(numba, ``pip install 'dialnet[fast]'``): forward, loss, backward and the
optimizer update in one call, the products still in BLAS. On small networks
a step of the NumPy path is mostly the cost of its ~100 Python calls; the
compiled step makes that one call.

``fit(engine=...)`` chooses (or the ``DIALNET_ENGINE`` environment variable,
for runs started from the command line):

- ``"auto"`` (default): the compiled step when numba is installed and the
  run is one it covers (:func:`why_not` says what it does not cover), else
  the NumPy path. The choice never depends on how long the run is, so a
  shorter run of the same settings follows the same path, to the bit;
- ``"numpy"``: always the reference path;
- ``"compiled"``: the compiled step, or a ConfigError saying why it cannot.

Both paths leave the same things behind: the dials, the gradients of the
last step (``net.gradients()``), the optimizer's state (checkpoints written
by one resume in the other), and the same numbers within float32 rounding.
The compiled step is bitwise reproducible run to run.

The kernels are compiled the first time a machine uses them (about 5 s per
dtype) and cached on disk next to the package (or in numba's user cache
when that folder is read-only): later runs load them in about 0.3 s.
"""

from __future__ import annotations

import importlib
import math
import os
import time

import numpy as np

from .. import backend
from ..core.layers import Dense, Dropout, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, exp_limit
from ..core.losses import MSE, BinaryCrossEntropy, CrossEntropy
from ..errors import ConfigError, lookup
from .optimizers import FLAT, SGD, Adam, AdamW, RMSprop

ENGINES = {"auto": "auto", "numpy": "numpy", "compiled": "compiled"}
ENV = "DIALNET_ENGINE"
INSTALL = "pip install 'dialnet[fast]'"

# the codes of dialnet.train._kernels (kept here too: this module must not import numba to decide)
ACTIVATIONS = {Identity: 0, Sigmoid: 1, Tanh: 2, ReLU: 3, LeakyReLU: 4, Softmax: 5}
CROSS_ENTROPY, BINARY_CROSS_ENTROPY, SQUARED_ERROR = 0, 1, 2
OPTIMIZERS = {SGD: 0, Adam: 1, AdamW: 1, RMSprop: 2}
BACKPROP, UPDATE, BOTH = 0, 1, 2

_kernels = []  # [(the kernels module or None, why not)] once the first run asked for them


def kernels():
    """The compiled kernels (:mod:`dialnet.train._kernels`), or None when numba cannot be loaded (see :func:`kernels_missing`)."""
    if not _kernels:
        try:
            _kernels.append((importlib.import_module("dialnet.train._kernels"), None))  # imports numba: only now
        except ImportError as exc:
            _kernels.append((None, f"numba is not installed ({INSTALL}): {exc}"))
        except Exception as exc:  # noqa: BLE001  (a broken numba, or no folder to cache the kernels in: train without)
            _kernels.append((None, f"numba could not load the kernels ({type(exc).__name__}: {exc})"))
    return _kernels[0][0]


def kernels_missing() -> str:
    """Why :func:`kernels` is None."""
    kernels()
    return _kernels[0][1]


def check_engine(engine) -> str:
    """``engine`` (None: ``$DIALNET_ENGINE`` or "auto") as one of "auto", "numpy", "compiled"."""
    where = "engine"
    if engine is None:
        engine, where = os.environ.get(ENV, "auto") or "auto", ENV
    return lookup(ENGINES, engine, where, fix="use engine='auto' (the default), 'numpy' or 'compiled'")


def _layer_codes(net):
    """``(activation codes, leaky slopes)`` per Dense, or a reason the layer stack is not covered."""
    codes, slopes, pending = [], [], None
    for layer in net.layers:
        kind = type(layer)
        if kind is Dense:
            if pending is not None:
                codes.append(0)
                slopes.append(0.0)
            pending = layer
        elif kind in ACTIVATIONS and pending is not None:
            codes.append(ACTIVATIONS[kind])
            slopes.append(layer.alpha if kind is LeakyReLU else 0.0)
            pending = None
        elif kind is Dropout and layer.p == 0.0:
            continue
        else:
            what = f"{kind.__name__}" + (f"(p={layer.p:g})" if kind is Dropout else "")
            return f"a {what} layer" + ("" if pending is not None or kind is Dropout else " not right after a Dense")
        if any(name in vars(layer) for name in ("forward", "backward")):
            return f"a {kind.__name__} with its own forward or backward"
    if pending is not None:
        codes.append(0)
        slopes.append(0.0)
    return codes, slopes


def why_not(net, loss, optimizer, targets, distributed=False):
    """Why the compiled step cannot train this run, in a few words; None when it can."""
    if backend.name != "numpy":
        return f"arrays on the {backend.name} backend (the compiled step runs on NumPy arrays)"
    if net.dtype not in (np.float32, np.float64):
        return f"dtype {net.dtype}"
    if distributed:
        return "a distributed run"
    if any(name in vars(net) for name in ("_forward", "_backprop", "_loss_step")):
        return "a network with its own forward or backward pass"
    layers = _layer_codes(net)
    if isinstance(layers, str):
        return layers
    if net.parameters().flat is None:
        return "dials not in one flat array"
    if type(optimizer) not in OPTIMIZERS or "step" in vars(optimizer):
        return f"the optimizer {type(optimizer).__name__}" + (" with its own step" if "step" in vars(optimizer) else "")
    if "value_and_delta" in vars(loss) or _loss_code(net, loss, targets) is None:
        return f"the loss {type(loss).__name__} on a {net.layers[-1].name} output" + (
            " with target rows" if getattr(targets, "ndim", 1) != 1 and type(loss) is CrossEntropy else "")
    return None


def _loss_code(net, loss, targets):
    head = type(net.layers[-1])
    if type(loss) is CrossEntropy and head is Softmax and targets.ndim == 1:
        return CROSS_ENTROPY
    if type(loss) is BinaryCrossEntropy and head is Sigmoid:
        return BINARY_CROSS_ENTROPY
    if type(loss) is MSE:
        return SQUARED_ERROR
    return None


def choose(engine, trainer):
    """The :class:`CompiledStep` for ``trainer`` when ``engine`` asks for it and it applies; else None."""
    if engine == "numpy":
        return None
    reason = why_not(trainer.net, trainer.loss, trainer.optimizer, trainer.Y, trainer.dist is not None)
    module = None if reason else kernels()
    if reason is None and module is None:
        reason = kernels_missing()
    if reason is None and module.numpy_gemm(trainer.net.dtype) is None:
        reason = "NumPy's BLAS is not the OpenBLAS of its wheels (the compiled step calls its cblas_gemm)"
    if reason is None:
        return CompiledStep(module, trainer)
    if engine == "compiled":
        raise ConfigError(
            "the compiled training step does not cover this run",
            expected="Dense layers with sigmoid/tanh/relu/leaky_relu/identity, a softmax + cross-entropy, sigmoid + "
                     "binary cross-entropy or squared-error output, SGD/Adam/AdamW/RMSprop, NumPy float32/float64",
            got=reason,
            fix="leave engine out (or engine='auto') to use the compiled step where it applies and NumPy elsewhere",
        )
    return None


class CompiledStep:
    """One trainer's compiled step: the network's layout, a work area, and the optimizer's state.

    :meth:`run` is one step; the trainer calls it in place of backprop and
    the update. The optimizer's state stays the optimizer's (flat arrays in
    ``optimizer.state``): checkpoints, snapshots and restores see the same
    arrays as on the NumPy path, and a state put back by ``restore`` is
    picked up at the next step.
    """

    name = "compiled"

    def __init__(self, module, trainer):
        net, dtype = trainer.net, trainer.net.dtype
        codes, slopes = _layer_codes(net)
        self.kernel = module.step
        self.gemm, self.wide = module.numpy_gemm(dtype)
        self.trainer, self.optimizer = trainer, trainer.optimizer
        self.params, self.grads = trainer.params, trainer.grads
        self.flat_p, self.flat_g = self.params.flat, self.grads.flat
        self.sizes = np.asarray(net.sizes, dtype=np.int64)
        self.acts = np.asarray(codes, dtype=np.int64)
        self.alphas = np.asarray(slopes, dtype=dtype)
        self.loss = _loss_code(net, trainer.loss, trainer.Y)
        self.hyper = np.asarray([float(exp_limit(dtype)), trainer.l2], dtype=dtype)
        self.cap = min(trainer.batch_size, trainer.n)
        widths = [int(s) for s in net.sizes]
        self.work = np.empty(self.cap * (sum(widths) + 2 * max(widths[1:])), dtype=dtype)
        self.out_offset = self.cap * sum(widths[:-1])
        self.n_out = widths[-1]
        self.no_rows = np.empty(0, dtype=np.int64)
        self.no_targets = np.empty((0, 0), dtype=dtype)
        self.no_weights = np.empty(0, dtype=dtype)
        self.kind = OPTIMIZERS[type(self.optimizer)]
        self.c = np.zeros(10, dtype=dtype)
        self._state = None  # the optimizer.state dict the slots below belong to
        self.slots = None
        self._first = False  # SGD with momentum before its first step: the buffer starts as the gradient
        self._rows = None
        # nothing compiled or loaded in this process yet: the first call compiles the kernels (the first run on a
        # machine) or loads them from numba's cache, and its time is kept in load_time
        self.loading = not self.kernel.signatures
        self.load_time = 0.0

    # ------------------------------------------------------------- inputs

    def sources(self, order):
        """``(X, index, labels, Y, weights)`` for the kernel from the trainer's epoch ``order``."""
        Xs, Ys, Ws = order[0], order[1], order[2]
        index = getattr(Xs, "index", None)
        X = getattr(Xs, "source", Xs)
        labels, Y = (Ys, self.no_targets) if self.loss == CROSS_ENTROPY else (self.no_rows, Ys)
        if index is None and not X.flags.c_contiguous:  # rows in order are read as one block only from C order
            index = self._identity(X.shape[0])
        return X, (self.no_rows if index is None else index), labels, Y, (self.no_weights if Ws is None else Ws)

    def _identity(self, n):
        """Row numbers 0..n-1, made once: reads rows in order from inputs that are not in C order."""
        if self._rows is None or self._rows.shape[0] != n:
            self._rows = np.arange(n, dtype=np.int64)
        return self._rows

    def outputs(self, rows):
        """The network's outputs for the last step's ``rows`` (a view into the work area)."""
        return self.work[self.out_offset : self.out_offset + rows * self.n_out].reshape(rows, self.n_out)

    # ------------------------------------------------------ the optimizer

    def _sync(self):
        """Point the kernel at the optimizer's current flat state (made here, like its own first step would)."""
        opt, flat = self.optimizer, self.flat_p
        if opt._flat_of is not flat:
            opt._make_state_flat(self.params, flat)
        slots = opt.state.get(FLAT)
        if slots is None:
            slots = opt.state[FLAT] = {}
        empty = self.no_targets.reshape(-1)
        c = self.c
        if self.kind == 0:  # SGD: the momentum buffer is made by the first step, from its gradient
            s1 = slots.get("momentum")
            self._first = s1 is None and opt.momentum != 0
            if self._first:
                s1 = np.empty_like(flat)
            c[1:7] = (opt.weight_decay, opt.momentum, 1.0 - opt.dampening, opt.nesterov, self._first, opt.dampening)
            self.slots = (empty if s1 is None else s1, empty, empty)
        elif self.kind == 1:
            for key in ("m", "v"):
                if key not in slots:
                    slots[key] = np.zeros_like(flat)
            slots.setdefault("scratch", np.empty_like(flat))  # the NumPy path's work array
            b1, b2 = opt.betas
            c[2:9] = (b1, 1.0 - b1, b2, 1.0 - b2, opt.eps, opt.weight_decay, opt.decoupled)
            self.slots = (slots["m"], slots["v"], empty)
        else:
            slots.setdefault("square_avg", np.zeros_like(flat))
            if opt.momentum:
                slots.setdefault("momentum", np.zeros_like(flat))
            if opt.centered:
                slots.setdefault("grad_avg", np.zeros_like(flat))
            c[1:7] = (opt.alpha, 1.0 - opt.alpha, opt.eps, opt.momentum, opt.centered, opt.weight_decay)
            self.slots = (slots["square_avg"], slots.get("momentum", empty), slots.get("grad_avg", empty))
        self._state = opt.state

    def _constants(self):
        """The step's learning-rate terms, as the NumPy optimizers compute them (Python floats, then the dtype)."""
        opt, c = self.optimizer, self.c
        if self.kind == 1:
            b1, b2 = opt.betas
            t = opt.t
            bc1, bc2_sqrt = 1.0 - b1**t, math.sqrt(1.0 - b2**t)
            c[0], c[1], c[9] = opt.lr / bc1, 1.0 / bc2_sqrt, 1.0 - opt.lr * opt.weight_decay
        else:
            c[0] = opt.lr

    def _first_call(self, sources, start, stop, mode):
        """:meth:`run`'s first call in a process, timed: it compiles or loads the kernels."""
        self.loading = False
        started = time.perf_counter()
        value = self.run(sources, start, stop, mode)
        self.load_time = time.perf_counter() - started
        return value

    def _updated(self):
        """After a step that turned the dials: SGD's momentum buffer now holds its first value."""
        if self.kind == 0 and self._first:
            self.optimizer.state[FLAT]["momentum"] = self.slots[0]
            self._first = False
            self.c[5] = 0

    # ---------------------------------------------------------------- run

    def run(self, sources, start, stop, mode=BOTH):
        """One step on rows ``start:stop`` of the epoch; returns the loss (NaN for ``mode=UPDATE``).

        ``BOTH`` turns the dials only when the loss is finite, as the NumPy
        loop does before it raises ``Diverged``.
        """
        if self.loading:
            return self._first_call(sources, start, stop, mode)
        opt = self.optimizer
        if opt.state is not self._state or opt._flat_of is not self.flat_p:
            self._sync()
        if mode != BACKPROP:
            opt.t += 1
            self._constants()
        X, index, labels, Y, weights = sources
        s1, s2, s3 = self.slots
        value = self.kernel(self.gemm, self.wide, X, index, start, stop, labels, Y, weights, self.sizes, self.acts,
                            self.alphas, self.loss, self.flat_p, self.flat_g, self.work, self.cap, self.hyper,
                            mode, self.kind, self.c, s1, s2, s3)
        if mode == BOTH and not math.isfinite(value):
            opt.t -= 1  # no update was made
        elif mode != BACKPROP:
            self._updated()
        return value
