"""Turning the dials by hand: gradients by central finite differences.

The naive way to learn how the cost depends on each dial is to turn that
one dial a little up, then a little down, and watch the cost:
``dL/dw ~ (L(w + h) - L(w - h)) / 2h``. That is two forward passes per
dial, so it is slow; backpropagation gets every gradient in one backward
pass. ``gradcheck`` does both and says how far apart they are.
"""

from __future__ import annotations

import time

import numpy as np

from .. import backend
from ..errors import InvalidValueError
from .losses import check_sample_weight, get_loss


def _loss_value(net, X, Y, loss, sample_weight=None):
    """The loss alone, by the same loss step backprop takes (a forward pass, no backward)."""
    return net._loss_step(net._forward(X), Y, loss, sample_weight, need_delta=False)[0]


def numerical_gradients(net, loss, X, Y, eps=1e-6, indices=None, sample_weight=None):
    """Central differences for every dial (or the chosen ``indices`` per array).

    ``X``, ``Y`` and ``sample_weight`` must already be validated (see
    :meth:`Network._check_X`, ``loss.prepare`` and ``check_sample_weight``).
    Returns one array per parameter, NaN where a dial was not turned.
    """
    out = []
    for k, p in enumerate(net.parameters()):
        g = np.full(p.shape, np.nan)
        flat = backend.xp.reshape(p, (-1,))  # a view: turning flat[i] turns the dial
        which = range(flat.shape[0]) if indices is None else indices[k]
        for i in which:
            i = int(i)
            old = float(flat[i])
            flat[i] = old + eps
            up = _loss_value(net, X, Y, loss, sample_weight)
            flat[i] = old - eps
            down = _loss_value(net, X, Y, loss, sample_weight)
            flat[i] = old
            g.reshape(-1)[i] = (up - down) / (2 * eps)
        out.append(g)
    return out


def relative_error(a, n):
    """``||a - n|| / (||a|| + ||n||)``: 0 when equal, 1 when unrelated (0 if both are 0)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    n = np.asarray(n, dtype=np.float64).ravel()
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


class GradcheckResult(float):
    """The max relative error (a float), with the details attached.

    Attributes: ``errors`` (one per parameter array, in ``parameters()``
    order), ``analytic`` and ``numeric`` gradient arrays, ``dials`` (how many
    were turned), ``backprop_seconds`` and ``numeric_seconds``.
    """

    def __new__(cls, value, **details):
        obj = super().__new__(cls, value)
        obj.__dict__.update(details)
        return obj

    @property
    def speedup(self):
        """How many times faster backprop was than turning each dial by hand."""
        return self.numeric_seconds / max(self.backprop_seconds, 1e-12)


def gradcheck(net, loss, X, y, eps=None, max_dials=None, seed=0, dtype="float64", sample_weight=None):
    """Compare backprop's gradients with central differences on every dial.

    Parameters
    ----------
    net : Network
    loss : str or Loss
    X, y : the batch to differentiate the loss on.
    eps : float, optional
        The nudge ``h``; default 1e-6 in float64, 1e-3 in float32.
    max_dials : int, optional
        Turn at most this many dials per parameter array (chosen with
        ``seed``); all of them by default.
    dtype : str or None
        Check a copy of the network in this dtype (float64 by default, since
        float32 differences are too coarse to compare closely); None checks
        the network as it is.
    sample_weight : array-like of shape (n,), optional
        Check the weighted loss ``sum_i w_i l_i / sum_i w_i``.

    Returns
    -------
    GradcheckResult
        A float: the largest, over parameter arrays, of
        ``||backprop - numeric|| / (||backprop|| + ||numeric||)``. It also
        carries per-array errors, both gradients and the timings.
    """
    loss = get_loss(loss)
    if dtype is not None and np.dtype(dtype) != net.dtype:
        net = net.astype(dtype)
    if eps is None:
        eps = 1e-6 if net.dtype == np.float64 else 1e-3
    if not eps > 0:
        raise InvalidValueError("eps must be > 0", expected="a small positive step such as 1e-6", got=repr(eps), fix="leave eps out")
    Xc = net._check_X(X)
    Y = loss.prepare(y, Xc.shape[0], net.n_outputs, net.dtype)
    w = check_sample_weight(sample_weight, Xc.shape[0], net.dtype)

    t0 = time.perf_counter()
    net._backprop(Xc, Y, loss, False, w)
    backprop_seconds = time.perf_counter() - t0
    analytic = [backend.to_numpy(g).astype(np.float64).copy() for g in net.gradients()]

    indices = None
    if max_dials is not None:
        rng = np.random.default_rng(seed)
        indices = [
            np.sort(rng.choice(p.size, size=min(int(max_dials), p.size), replace=False)) for p in net.parameters()
        ]
    t0 = time.perf_counter()
    numeric = numerical_gradients(net, loss, Xc, Y, eps=eps, indices=indices, sample_weight=w)
    numeric_seconds = time.perf_counter() - t0

    errors = []
    for a, n in zip(analytic, numeric):
        turned = ~np.isnan(n)
        errors.append(relative_error(a[turned], n[turned]))
    dials = int(sum((~np.isnan(n)).sum() for n in numeric))
    return GradcheckResult(
        max(errors) if errors else 0.0,
        errors=errors,
        analytic=analytic,
        numeric=numeric,
        dials=dials,
        backprop_seconds=backprop_seconds,
        numeric_seconds=numeric_seconds,
    )
