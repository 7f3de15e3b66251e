"""L-BFGS: full-batch training with scipy's L-BFGS-B on the network's flat dials and gradients.

scikit-learn recommends L-BFGS for small data sets: every iteration sees all
rows, and the quasi-Newton step needs no learning rate. ``fit(optimizer=
"lbfgs")`` (or ``LBFGS(...)``) runs it: scipy proposes dial values, dialnet
computes the loss over all rows (the weighted mean with sample weights) plus
``0.5 * l2 * sum(W**2)`` and its gradient by backpropagation, and after every
L-BFGS iteration the fit loop's epoch end runs as after an epoch of
mini-batches (history, validation metrics, callbacks, target certainty), so
``epochs`` counts iterations. Dropout is off (the objective must not change
between evaluations). scipy (a dependency) is imported when L-BFGS runs.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from .. import backend
from ..core.layers import Dense
from ..errors import ConfigError, check_number, check_positive_int


class LBFGS:
    """scipy's L-BFGS-B as a dialnet optimizer (full batch).

    Parameters
    ----------
    max_fun : int
        At most this many loss-and-gradient evaluations (scikit-learn's
        ``max_fun``); the iterations are ``fit``'s ``epochs``.
    tol : float
        Stop when the largest entry of the projected gradient is below
        ``tol`` (scipy's ``gtol``, as scikit-learn's MLP passes its ``tol``),
        or when the objective stops changing (scipy's default ``ftol``).
    memory : int
        Correction pairs kept (scipy's ``maxcor``).
    """

    name = "lbfgs"
    lr = None  # no learning rate: the line search finds each step
    initial_lr = None

    def __init__(self, max_fun=15000, tol=1e-4, memory=10):
        self.max_fun = check_positive_int(max_fun, "max_fun")
        self.tol = check_number("tol", tol)
        self.memory = check_positive_int(memory, "memory")
        self.n_fun = 0
        self.n_iter = 0

    def __repr__(self):
        return f"LBFGS(max_fun={self.max_fun}, tol={self.tol:g}, memory={self.memory})"


class _Stop(Exception):
    """Raised from the iteration callback to end the run (a stopping rule fired)."""


def run(trainer, display):
    """Train ``trainer.net`` by L-BFGS-B for at most ``trainer.epochs`` iterations; the trainer's epoch end runs after each."""
    from scipy.optimize import minimize  # noqa: PLC0415  (only when L-BFGS runs)

    opt, net, history = trainer.optimizer, trainer.net, trainer.history
    if trainer.schedule is not None:
        raise ConfigError(
            "L-BFGS has no learning rate for a schedule to change",
            expected="lr_schedule=None with optimizer='lbfgs'",
            got=f"lr_schedule {type(trainer.schedule).__name__}",
            fix="leave lr_schedule out, or use optimizer='adam'",
        )
    X, Y, W, T = trainer.X, trainer.Y, trainer.W, trainer.truth
    trainer.order = (X, Y, W, T)
    trainer.metrics.follow(T, W)
    l2 = trainer.l2
    objective, set_params, x0 = flat_objective(net, X, Y, W, trainer.loss, l2)
    cache = objective.cache

    def end_iteration(x):
        if "x" not in cache or not np.array_equal(cache["x"], x):
            objective(x)
        set_params(x)
        epoch = trainer.epoch
        trainer.total = cache["data_loss"] * trainer.weight_total
        trainer.metrics.reset()
        if T is not None:
            P, cap = cache["P"], trainer.metrics.capacity
            for i in range(0, P.shape[0], cap):
                trainer.metrics.update(P[i : i + cap])
        opt.n_iter += 1
        stopped = trainer._end_epoch(epoch, display)
        trainer.epoch, trainer.step, trainer.total = epoch + 1, 0, 0.0
        trainer.global_step += 1
        if stopped:
            raise _Stop

    started = time.perf_counter()
    result = None
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), _small_blas(net, X):
            result = minimize(
                objective, x0, jac=True, method="L-BFGS-B", callback=end_iteration,
                options={"maxiter": trainer.epochs, "maxfun": opt.max_fun, "maxcor": opt.memory,
                         "gtol": opt.tol},
            )
    except _Stop:
        pass
    finally:
        trainer.train_time += time.perf_counter() - started
        opt.n_fun += objective.calls
    if result is not None:
        set_params(result.x if np.isfinite(result.fun) else cache.get("x", x0))
        if history.stop_reason is None and trainer.epoch < trainer.epochs:
            history.stop_reason = f"L-BFGS converged after {trainer.epoch} iterations ({_message(result)})"
    if history.stop_reason is None:
        history.stop_reason = f"finished {len(history.epochs)} L-BFGS iterations"
    for cb in trainer.callbacks:
        cb.on_train_end(net, history)
    history.train_time = trainer.train_time
    return history


def flat_objective(net, X, Y, W, loss, l2):
    """``(objective, set_params, x0)``: the full-batch objective of the flat float64 dials, and where it starts.

    ``objective(x)`` sets the dials to ``x`` and returns the loss over all
    rows (the weighted mean with ``W``) plus ``0.5 * l2 * sum(W**2)`` over
    the weight matrices, and its gradient by backpropagation (dropout off);
    a non-finite value returns ``(inf, 0)``, which the line search backs
    away from. ``objective.cache`` keeps the last finite evaluation: ``x``,
    ``value``, ``data_loss`` (without the L2 term) and the outputs ``P``.
    """
    params, grads = net.parameters(), net.gradients()
    bounds = np.cumsum([0, *[p.size for p in params]])
    weights = [(bounds[i], bounds[i + 1]) for i, p in enumerate(params) if _is_weight(net, p)]
    xp = backend.xp

    def set_params(x):
        for p, a, b in zip(params, bounds[:-1], bounds[1:]):
            p[...] = xp.asarray(x[a:b].reshape(p.shape), dtype=p.dtype)

    def objective(x):
        set_params(x)
        objective.calls += 1
        data_loss, P = net._backprop(X, Y, loss, False, W)
        value = data_loss = float(data_loss)
        g = np.concatenate([backend.to_numpy(gr).ravel() for gr in grads]).astype(np.float64)
        if l2:
            for a, b in weights:
                wv = x[a:b]
                value += 0.5 * l2 * float(wv @ wv)
                g[a:b] += l2 * wv
        if not math.isfinite(value) or not np.isfinite(g).all():
            return math.inf, np.zeros_like(g)
        objective.cache.update(x=x.copy(), value=value, data_loss=data_loss, P=P.copy())
        return value, g

    objective.calls = 0
    objective.cache = {}
    x0 = np.concatenate([backend.to_numpy(p).ravel() for p in params]).astype(np.float64)
    return objective, set_params, x0


SMALL_WORK = 10**8  # multiply-adds of one full-batch forward pass below which BLAS runs on one thread


def _small_blas(net, X):
    """One BLAS thread for a small problem (threadpoolctl, when installed), else nothing.

    A small table's products are too small to split across threads: on a
    busy machine the threads wait on each other (a 5-fold run on iris took
    7.7 s with two OpenBLAS threads on a loaded 2-core machine, 0.6 s with one).
    """
    work = X.shape[0] * sum(d.weights.size for d in net.layers if isinstance(d, Dense))
    if work >= SMALL_WORK or backend.xp is not np:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415  (a dependency)
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _is_weight(net, array) -> bool:
    return any(d.weights is array for d in net.layers if isinstance(d, Dense))


def _message(result) -> str:
    message = result.message
    return message.decode() if isinstance(message, bytes) else str(message)
