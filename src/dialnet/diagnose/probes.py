"""The doctor's probes: short training runs on copies of the network, for what a snapshot cannot show.

- :func:`probe_learning_rate` trains a copy for ``LR_PROBE_EPOCHS`` epochs
  with the optimizer (and learning rate) you mean to use, on at most
  ``LR_PROBE_ROWS`` rows, and judges its loss curve by
  :func:`~dialnet.diagnose.loss_curve.check_loss_curve` (a probe that
  diverges is a learning rate too high).
- :func:`probe_capacity` trains a fresh copy and a twin with every hidden
  layer ``WIDEN`` times wider the same way, and says the network is too
  small when the twin fits the rows ``FIT_GAP`` better.

The probes train copies: the network examined and the caller's optimizer
are never changed.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import backend
from ..core.layers import Dense
from ..core.network import Network
from ..errors import DivergenceError
from ..train import Adam, Callback, evaluate_network, fit, get_optimizer
from .findings import Finding
from .history import read_run
from .loss_curve import check_loss_curve

# The learning-rate probe: 8 epochs are enough for the loss-curve rule (it needs 3) and show a
# divergence or a climb while costing a fraction of a real run; 512 rows keep each epoch short.
LR_PROBE_ROWS = 512
LR_PROBE_EPOCHS = 8
# The capacity probe trains on at most this many rows: enough to tell fitting from not fitting,
# few enough that a network of the size being examined can memorize them if it has the capacity.
PROBE_ROWS = 500
# Each capacity run stops after at most this many epochs ...
PROBE_EPOCHS = 200
# ... or when its loss fell by under 1% over the last 10 epochs (a plateau: ten times more training
# would gain under 10%) ...
PLATEAU_EPOCHS = 10
PLATEAU_GAIN = 0.01
# ... or when it fits 99% of the rows (training accuracy, or R^2 for squared error).
FITS = 0.99
# The twin's hidden layers are 4x wider (at least 16 units): enough to show what capacity buys.
WIDEN = 4
WIDE_MIN_UNITS = 16
# Too small when the twin fits 10 points better (training accuracy, or R^2): the same training
# reaches far more with more units, so capacity, not the optimizer, holds the network back.
FIT_GAP = 0.10


def subset(n, m, rng):
    """At most ``m`` of ``n`` row indices, drawn by ``rng`` without replacement, in order."""
    return np.sort(rng.choice(n, size=m, replace=False)) if n > m else np.arange(n)


def _fresh_copy(optimizer):
    if optimizer is None:
        return Adam(lr=1e-3)
    opt = copy.deepcopy(get_optimizer(optimizer))
    opt.reset()
    opt.lr = opt.initial_lr
    return opt


def probe_learning_rate(net, X, y, loss, optimizer=None, batch_size=32, seed=0, baseline=None):
    """Train a copy of ``net`` briefly on ``X, y`` with (a fresh copy of) ``optimizer`` and judge its loss curve.

    ``baseline`` (:func:`~dialnet.diagnose.loss_curve.baseline_losses`) puts
    the curve on the data's scale. Returns ``(findings, check line)``.
    """
    clone = copy.deepcopy(net)
    clone.clear_cache()
    opt = _fresh_copy(optimizer)
    lr = opt.lr
    source = f"probe run: {LR_PROBE_EPOCHS} epochs of {type(opt).__name__} lr {lr:g} on {X.shape[0]} rows"
    try:
        with np.errstate(all="ignore"):
            hist = fit(clone, X, y, loss=loss, optimizer=opt, epochs=LR_PROBE_EPOCHS, batch_size=batch_size, seed=seed)
    except DivergenceError as exc:  # fit raises on the first NaN/inf: the clearest verdict there is
        run = read_run(exc)
        return check_loss_curve(run.losses, run.lrs or [lr], source, baseline=baseline, divergences=run.divergences,
                                stop_reason=run.stop_reason)
    return check_loss_curve(hist.history["loss"], hist.history.get("lr"), source, baseline=baseline)


def _rebuilt(net, widen=1, seed=0):
    """A fresh, seeded network of the same kind, with every hidden layer ``widen`` times wider."""
    def hidden(units):
        return max(widen * units, WIDE_MIN_UNITS) if widen > 1 else units

    dense = net.dense_layers
    layers = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            n_in = layer.n_in if layer is dense[0] else hidden(layer.n_in)
            n_out = layer.n_out if layer is dense[-1] else hidden(layer.n_out)
            layers.append(Dense(n_in, n_out, init=layer.init))
        else:  # activations and dropout carry no dials: reuse their settings
            clone = copy.deepcopy(layer)
            clone.clear_cache()
            layers.append(clone)
    new = Network(layers, seed=seed, dtype=net.dtype)
    new.task = net.task
    return new


_WITHIN_REACH = "came within the margin of the twin"


class _UntilFitOrPlateau(Callback):
    """Stop a probe run once it fits (or reaches ``goal``), or once its loss has stopped falling.

    ``score(logs)`` is the share fitted: training accuracy, or for
    regression the share of a constant guess's loss removed (R^2 for MSE).
    """

    def __init__(self, score, goal=None):
        self.score = score
        self.goal = goal
        self.losses = []
        self.outcome = "was still learning"

    def on_epoch_end(self, epoch, logs, net):
        self.losses.append(logs["loss"])
        value = self.score(logs)
        if value >= FITS:
            self.outcome = f"fit {FITS:.0%}"
            return True
        if self.goal is not None and value > self.goal:
            self.outcome = _WITHIN_REACH
            return True
        if len(self.losses) > PLATEAU_EPOCHS and self.losses[-1] > (1 - PLATEAU_GAIN) * self.losses[-1 - PLATEAU_EPOCHS]:
            self.outcome = "plateaued"
            return True
        return False


def probe_capacity(net, X, y, loss, seed=0):
    """Train a fresh copy and a 4x wider twin the same way; compare how well each fits.

    How well: training accuracy for classifiers; otherwise the share of the
    loss of a constant guess (the targets' mean) that the network removes,
    which is R^2 for squared error. Each run stops when it fits 99%, when
    its loss fell by less than 1% over the last 10 epochs (a plateau: ten
    times more training would gain under 10%), or after ``PROBE_EPOCHS``
    epochs; the copy also stops as soon as it comes within the verdict's
    margin of the twin.
    """
    Xc = net._check_X(X)
    Y = loss.prepare(y, Xc.shape[0], net.n_outputs, net.dtype)
    if net.task == "classification" or net.task in ("binary", "multilabel"):
        kind = "training accuracy"

        def score(logs):
            return logs["accuracy"]
    else:
        kind = "share of the variance fitted" if loss.name == "mse" else "share of a constant guess's loss removed"
        guess = backend.xp.broadcast_to(Y.mean(axis=0), Y.shape)
        baseline = loss.value(guess, Y)
        if not baseline > 0:
            return [], "capacity probe: the targets are constant, nothing to fit"

        def score(logs):
            return 1.0 - logs["loss"] / baseline

    def train(widen, goal):
        model = _rebuilt(net, widen, seed)
        stopper = _UntilFitOrPlateau(score, goal)
        with np.errstate(all="ignore"):
            fit(model, Xc, y, loss=loss, optimizer=Adam(lr=1e-3), epochs=PROBE_EPOCHS, batch_size=32, seed=seed,
                callbacks=[stopper])
        return model, score(evaluate_network(model, Xc, y, loss=loss)), stopper

    try:
        # the wide twin first: the copy then only has to come within reach of it, which often ends its run early
        wide, w, w_stop = train(WIDEN, None)
        small, s, s_stop = train(1, w - FIT_GAP)
    except DivergenceError:
        return [], "capacity probe: a probe run diverged, no verdict"
    sizes = lambda m: "-".join(map(str, m.sizes))  # noqa: E731
    n = Xc.shape[0]
    check = (f"capacity probe (fresh copies, Adam lr 0.001 on {n} rows): {sizes(small)} {s_stop.outcome} after "
             f"{len(s_stop.losses)} epochs, {WIDEN}x wider {sizes(wide)} {w_stop.outcome} after {len(w_stop.losses)}; "
             f"{kind} {s:.1%} against {w:.1%} (too small if it ends {FIT_GAP * 100:.0f} points or more below)")
    if w - s < FIT_GAP or s_stop.outcome == _WITHIN_REACH:
        return [], check
    return [Finding(
        "too_small",
        f"the network is too small to fit its training data: {sizes(small)}",
        f"trained from scratch the same way on the same {n} rows ({len(s_stop.losses)} epochs: it {s_stop.outcome}), "
        f"its {kind} is {s:.1%} against {w:.1%} for a twin with {WIDEN}x wider hidden layers ({sizes(wide)})",
        f"widen the hidden layers (e.g. {sizes(wide)}) or add a hidden layer",
        small=s, wide=w, epochs=len(s_stop.losses),
    )], check

