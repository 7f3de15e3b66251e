"""The training doctor: what is wrong with a network or a run, with its numbers and a fix.

``doctor(net, X, y)`` measures and returns a :class:`Diagnosis`. Each rule
and its threshold, and why that threshold:

unscaled_inputs
    Glorot and He initial weights are sized for inputs of about unit scale
    (RMS ~1): then ``z = x @ W`` starts with a spread of about 1. With an
    input RMS ``s`` it starts ``s`` times wider. Flagged when the overall
    RMS is above 3 (a spread of 3 puts ~5% of sigmoid and ~30% of tanh
    pre-activations where the slope is under 1% of its peak) or below 0.01
    (the first layer then sees a near-constant input, and its gradients,
    which are proportional to the input, are 100x smaller too), or when
    one feature's RMS is 100x the median feature's (one learning rate
    cannot suit dials whose gradients differ by 100x).
class_imbalance
    The largest class has 10 times the rows of the smallest (or a class
    has none). At 10:1, ignoring the rare class still scores over 90% on
    the pair, so accuracy says nothing about it, and it contributes under
    1/11 of the gradient.
saturated_units / dead_relu
    A sigmoid/tanh activation is flat when its slope is under 1% of its
    peak (it passes back under 1% of the error); a unit is stuck when it is
    flat on at least 99% of the samples. A ReLU is dead when it outputs 0 on
    every sample (no gradient at all, so it never recovers). Flagged when
    at least 10% of a hidden layer's units are stuck (a tenth of its
    capacity lost) or, for sigmoid/tanh, when half of all the layer's
    activations are flat (most of the error stops there). Half of a ReLU
    layer's outputs being 0 is normal, so only dead units count there.
vanishing_gradients / exploding_gradients
    The error signal ``delta = dL/dz`` (RMS per unit and sample) at the
    first layer against the output layer. With one learning rate for all
    layers, a 1000x gap means one end learns 1000x slower than the other
    (or takes 1000x too large steps): flagged beyond 1000x either way, or
    when a gradient is not finite.
learning_rate_too_high
    From the training loss per epoch (``net.history``, a given History, or
    a short probe run with the given optimizer): the loss became NaN/inf,
    ended above where it started, its rises undid at least half of its
    falls, or it ended having given back at least a tenth of the progress
    it had made (last - best >= 0.1 (first - best)). Gradient descent with
    a small enough step lowers the loss every step; mini-batch noise on
    epoch averages is far smaller than that.
too_small
    A probe: a fresh copy of this architecture and a twin with every hidden
    layer 4x wider train on the same rows the same way, each until it fits
    99% of them, its loss plateaus (under 1% better over 10 epochs: ten
    times more training would gain under 10%), or 200 epochs. If the twin
    then fits the rows better by 10 points or more (of training accuracy;
    for regression, of R^2: the share of the targets' variance fitted),
    capacity, not the optimizer, is what holds this network back: the same
    training reaches far more with more units.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np

from .. import backend
from ..errors import ConfigError, DialnetError, DivergenceError, InvalidValueError, type_name
from .trace import FLAT_SLOPE, STUCK_SHARE, trace, unit_health
from ..core.layers import Dense
from ..core.losses import get_loss
from ..core.network import Network
from ..train import Callback, History, evaluate_network, fit
from ..train import Adam, get_optimizer

INPUT_RMS_HIGH = 3.0
INPUT_RMS_LOW = 0.01
FEATURE_SPREAD = 100.0
IMBALANCE_RATIO = 10.0
STUCK_LAYER_SHARE = 0.10
LAYER_FLAT_SHARE = 0.5
GRADIENT_RATIO = 1e3
LOSS_UNDONE = 0.5
LOSS_GIVEN_BACK = 0.1
MIN_EPOCHS = 3
WIDEN = 4
WIDE_MIN_UNITS = 16
FIT_GAP = 0.10

PROBE_ROWS = 500
PROBE_EPOCHS = 200
PLATEAU_EPOCHS = 10
PLATEAU_GAIN = 0.01
FITS = 0.99
LR_PROBE_ROWS = 512
LR_PROBE_EPOCHS = 8
GRADIENT_ROWS = 256


class DoctorWarning(UserWarning):
    """A finding of the training doctor, raised as a warning during ``fit``."""


class Finding:
    """One problem found: a short code, what was measured, and how to fix it.

    Attributes
    ----------
    code : str        e.g. ``"dead_relu"`` (see the module docstring)
    title : str       one line
    detail : str      the measured numbers and what they mean
    fix : str         a concrete change to make
    numbers : dict    the measurements, as plain Python numbers
    """

    def __init__(self, code, title, detail, fix, **numbers):
        self.code = code
        self.title = title
        self.detail = detail
        self.fix = fix
        self.numbers = numbers

    def __str__(self):
        return f"[{self.code}] {self.title}\n    {self.detail}\n    fix: {self.fix}"

    def __repr__(self):
        return f"Finding({self.code!r}, {self.title!r})"


class Diagnosis:
    """The doctor's report: ``findings`` (problems) and ``checks`` (what was measured).

    ``diagnosis.healthy`` is True when nothing was found; ``"dead_relu" in
    diagnosis`` tests for one finding; ``str(diagnosis)`` is the report.
    """

    def __init__(self, findings, checks, skipped=()):
        self.findings = list(findings)
        self.checks = list(checks)
        self.skipped = list(skipped)

    @property
    def healthy(self) -> bool:
        return not self.findings

    @property
    def codes(self):
        return [f.code for f in self.findings]

    def __contains__(self, code):
        return code in self.codes

    def __iter__(self):
        return iter(self.findings)

    def __len__(self):
        return len(self.findings)

    def report(self) -> str:
        if self.healthy:
            lines = ["Clean bill of health: no problem found."]
        else:
            n = len(self.findings)
            lines = [f"{n} problem{'s' if n != 1 else ''} found:"]
            lines += [str(f) for f in self.findings]
        lines.append("Checked:")
        lines += [f"  {c}" for c in self.checks]
        lines += [f"  not checked: {s}" for s in self.skipped]
        return "\n".join(lines)

    def __str__(self):
        return self.report()

    def __repr__(self):
        return f"Diagnosis(findings={self.codes})"


# ------------------------------------------------------------------ the checks


def check_inputs(X):
    """Input scale: overall RMS and the spread of per-feature RMS. Returns (findings, check line)."""
    X = np.asarray(backend.to_numpy(X), dtype=np.float64)
    feature_rms = np.sqrt((X * X).mean(axis=0))
    rms = float(np.sqrt((feature_rms**2).mean()))
    used = feature_rms[feature_rms > 0]
    median = float(np.median(used)) if used.size else 0.0
    biggest = int(feature_rms.argmax())
    spread = float(feature_rms[biggest] / median) if median > 0 else 1.0
    check = (
        f"input scale: RMS {rms:.3g} (fine between {INPUT_RMS_LOW:g} and {INPUT_RMS_HIGH:g}); largest feature RMS "
        f"{feature_rms[biggest]:.3g} = {spread:.3g}x the median (fine below {FEATURE_SPREAD:g}x)"
    )
    fix = (
        "standardize each column with the training set's statistics: X = (X - mean) / std "
        "(images: divide pixels by 255); apply the same to every later input"
    )
    findings = []
    if rms > INPUT_RMS_HIGH:
        findings.append(Finding(
            "unscaled_inputs",
            f"inputs are not scaled: their RMS is {rms:.3g}, about {rms:.0f}x the unit scale the initial weights assume",
            f"so the first layer's z starts about {rms:.0f}x too spread out (sigmoid/tanh units saturate, ReLU outputs and "
            f"gradients blow up); largest feature: column {biggest} with RMS {feature_rms[biggest]:.3g}",
            fix, rms=rms, largest_feature=biggest, largest_rms=float(feature_rms[biggest]), spread=spread,
        ))
    elif 0 < rms < INPUT_RMS_LOW:
        findings.append(Finding(
            "unscaled_inputs",
            f"inputs are tiny: their RMS is {rms:.2g}, under {INPUT_RMS_LOW:g} of the unit scale the initial weights assume",
            "the first layer sees an almost constant input and its gradients (proportional to the input) are as small",
            fix, rms=rms, spread=spread,
        ))
    elif spread > FEATURE_SPREAD:
        findings.append(Finding(
            "unscaled_inputs",
            f"feature scales differ {spread:.3g}x: column {biggest} has RMS {feature_rms[biggest]:.3g}, the median column {median:.3g}",
            "that column's dials get gradients ~{:.0f}x larger than the rest, so no single learning rate suits them all".format(spread),
            fix, rms=rms, largest_feature=biggest, largest_rms=float(feature_rms[biggest]), spread=spread,
        ))
    return findings, check


def _labels_of(net, y):
    """Class indices from labels or one-hot rows; None for regression/multi-label."""
    y = np.asarray(backend.to_numpy(y))
    if net.task == "classification":
        if y.ndim == 1:
            return y.astype(np.int64), net.n_outputs
        if y.ndim == 2 and y.shape[1] == net.n_outputs:
            return y.argmax(axis=1), net.n_outputs
    if net.task == "binary":
        return (y.reshape(-1) >= 0.5).astype(np.int64), 2
    return None, 0


def check_classes(net, y):
    """Class balance: the largest class against the smallest, and classes with no rows."""
    labels, k = _labels_of(net, y)
    if labels is None:
        return [], None
    counts = np.bincount(labels, minlength=k)[:k]
    names = net.class_names if getattr(net, "class_names", None) and len(net.class_names) == k else [str(i) for i in range(k)]
    big, small = int(counts.argmax()), int(counts.argmin())
    ratio = float(counts[big] / counts[small]) if counts[small] else math.inf
    check = f"classes: {k}, rows per class {int(counts.min())}..{int(counts.max())} (ratio {ratio:.3g}, fine below {IMBALANCE_RATIO:g})"
    if ratio < IMBALANCE_RATIO:
        return [], check
    missing = [names[i] for i in range(k) if counts[i] == 0]
    if missing:
        detail = (f"class{'es' if len(missing) > 1 else ''} {', '.join(missing)} never appear{'s' if len(missing) == 1 else ''} "
                  f"in the labels, though the output layer has {k} units; the network learns to never predict "
                  f"{'them' if len(missing) > 1 else 'it'}")
        fix = "add examples of the missing classes, or drop them from the output layer"
    else:
        detail = (f"class {names[big]} has {int(counts[big])} rows, class {names[small]} only {int(counts[small])} ({ratio:.3g}:1); "
                  f"always answering the big class already scores {counts[big] / (counts[big] + counts[small]):.1%} on the pair, "
                  "and the rare class gives under a tenth of the gradient")
        fix = ("oversample the rare classes (repeat their rows) or collect more of them, and judge the model by per-class "
               "recall or the confusion matrix (`dialnet plot`), not by accuracy")
    finding = Finding("class_imbalance", f"classes are imbalanced {ratio:.3g}:1" if math.isfinite(ratio) else "a class has no rows",
                      detail, fix, counts=[int(c) for c in counts], ratio=ratio)
    return [finding], check


def check_units(net, X):
    """Saturated sigmoid/tanh units and dead ReLUs, per hidden layer."""
    findings, parts = [], []
    n = X.shape[0]
    for h in unit_health(net, X):
        share = h.share_stuck
        if h.activation == "relu":
            parts.append(f"layer {h.layer} relu {h.n_stuck}/{h.units} dead")
            if h.n_stuck and share >= STUCK_LAYER_SHARE:
                findings.append(Finding(
                    "dead_relu",
                    f"layer {h.layer}: {h.n_stuck} of {h.units} ReLU units are dead ({share:.0%})",
                    f"they output 0 on all {n} samples checked, so no gradient reaches their dials and they never recover",
                    "lower the learning rate, keep He initialization (init='auto' does it for relu), or use "
                    "activation='leaky_relu'; then retrain from a fresh seed",
                    layer=h.layer, dead=h.n_stuck, units=h.units,
                ))
            continue
        flat = float(h.flat_share.mean())
        parts.append(f"layer {h.layer} {h.activation} {h.n_stuck}/{h.units} stuck, {flat:.0%} of activations flat")
        if not ((h.n_stuck and share >= STUCK_LAYER_SHARE) or flat >= LAYER_FLAT_SHARE):
            continue
        top, bottom = ("1", "0") if h.activation == "sigmoid" else ("+1", "-1")
        findings.append(Finding(
            "saturated_units",
            f"layer {h.layer}: the {h.activation} units are saturated: {flat:.0%} of their activations sit on a flat end",
            f"{float(h.high.mean()):.0%} near {top} and {float(h.low.mean()):.0%} near {bottom} over {n} samples, where the slope "
            f"is under {FLAT_SLOPE:.0%} of its peak, so almost no error passes back; {h.n_stuck} of {h.units} units are "
            f"stuck there on at least {STUCK_SHARE:.0%} of the samples",
            "scale the inputs (mean 0, std 1), keep Glorot initialization (init='auto'), lower the learning rate "
            "that grew the weights, or use activation='relu' for the hidden layers",
            layer=h.layer, flat_share=flat, stuck=h.n_stuck, units=h.units,
        ))
    check = (f"stuck units (fine below {STUCK_LAYER_SHARE:.0%} of a layer; sigmoid/tanh: and below "
             f"{LAYER_FLAT_SHARE:.0%} flat activations): " + ("; ".join(parts) if parts else "no hidden sigmoid/tanh/relu layer"))
    return findings, check


def check_gradients(net, X, y, loss):
    """The error signal's size per layer, first layer against the output layer."""
    t = trace(net, X, y, loss)
    rms = [float(np.sqrt(np.mean(lt.delta.astype(np.float64) ** 2))) for lt in t.layers]
    grad_norms = [float(np.linalg.norm(lt.grad_weights)) for lt in t.layers]
    by_layer = ", ".join(f"layer {k}: {r:.3g}" for k, r in enumerate(rms, start=1))
    if not all(math.isfinite(v) for v in rms + grad_norms):
        return [Finding(
            "exploding_gradients",
            "gradients are not finite",
            f"RMS of dL/dz by layer: {by_layer}; the weights or the loss have overflowed",
            "retrain with a learning rate 10x lower and scaled inputs",
            rms=rms,
        )], f"error signal: {by_layer}"
    if len(rms) < 2 or rms[-1] == 0:
        return [], f"error signal dL/dz RMS: {by_layer}"
    ratio = rms[0] / rms[-1]
    shrink = f"{1 / ratio:.3g}x smaller" if ratio > 0 else "zero"
    check = f"error signal dL/dz RMS by layer: {by_layer}; first/output {ratio:.3g} (fine within 1/{GRADIENT_RATIO:g}..{GRADIENT_RATIO:g})"
    numbers = {"rms": rms, "grad_weight_norms": grad_norms, "ratio": ratio}
    if ratio < 1 / GRADIENT_RATIO:
        return [Finding(
            "vanishing_gradients",
            f"vanishing gradients: the error signal at layer 1 is {shrink} against the output layer's",
            f"RMS of dL/dz by layer: {by_layer}; with one learning rate the first layers barely move",
            "use fewer layers, or activation='relu' (He init) instead of sigmoid/tanh; fix saturated or dead units "
            "first if any were found; Adam (the default optimizer) rescales per dial and suffers less",
            **numbers,
        )], check
    if ratio > GRADIENT_RATIO:
        return [Finding(
            "exploding_gradients",
            f"exploding gradients: the error signal is {ratio:.3g}x larger at layer 1 than at the output",
            f"RMS of dL/dz by layer: {by_layer}; the first layers take huge steps while the last crawl",
            "re-initialize with init='auto' (Glorot/He keep the signal's size steady), use fewer layers, "
            "and lower the learning rate",
            **numbers,
        )], check
    return [], check


def check_loss_curve(losses, lrs=None, source="training run"):
    """Judge a per-epoch training-loss curve: diverged, rising, oscillating, or giving back progress."""
    losses = [float(v) for v in losses]
    if not losses:
        return [], None
    lr_text = ""
    if lrs:
        lr = float(lrs[-1])
        lr_text = f" (it was {lr:g}: try {lr / 10:g})"
    fix = "divide the learning rate by 10" + lr_text + "; if the loss still jumps, by 10 again"
    bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
    if bad:
        return [Finding(
            "learning_rate_too_high",
            f"the training loss diverged: it became {losses[bad[0]]} at epoch {bad[0] + 1} ({source})",
            "the steps are so large that the dials overflow",
            fix, epoch=bad[0] + 1,
        )], f"{source}: the loss diverged"
    if len(losses) < MIN_EPOCHS:
        return [], f"{source}: only {len(losses)} epoch(s), too few to judge the learning rate"
    steps = np.diff(losses)
    rises = float(steps[steps > 0].sum())
    falls = float(-steps[steps < 0].sum())
    n_up = int((steps > 0).sum())
    undone = rises / falls if falls > 0 else math.inf
    best = min(losses)
    given_back = (losses[-1] - best) / (losses[0] - best) if losses[0] > best else 0.0
    check = (f"{source}: loss over {len(losses)} epochs {losses[0]:.4g} -> {losses[-1]:.4g} (best {best:.4g}); "
             f"rises undid {min(undone, 9.99):.0%} of the falls (fine below {LOSS_UNDONE:.0%}), it ended "
             f"{given_back:.0%} of its progress above its best (fine below {LOSS_GIVEN_BACK:.0%})")
    numbers = {"first": losses[0], "last": losses[-1], "best": best, "rises": rises, "falls": falls,
               "epochs_up": n_up, "undone": undone, "given_back": given_back}
    went_up = f"it went up in {n_up} of {len(steps)} epochs"
    if losses[-1] >= losses[0] and rises > 0:
        title = f"the training loss rose from {losses[0]:.4g} to {losses[-1]:.4g} over {len(losses)} epochs ({source})"
        detail = f"{went_up}: the steps overshoot the valley instead of descending into it"
    elif undone >= LOSS_UNDONE:
        title = f"the training loss oscillates: its rises undid {undone:.0%} of its falls ({source})"
        detail = f"{went_up} ({losses[0]:.4g} -> {losses[-1]:.4g}); a small enough step lowers it nearly every epoch"
    elif given_back >= LOSS_GIVEN_BACK:
        title = f"the training loss gave back {given_back:.0%} of its progress: best {best:.4g}, last {losses[-1]:.4g} ({source})"
        detail = f"{went_up}; with a small enough step the last epochs are the best ones"
    else:
        return [], check
    return [Finding("learning_rate_too_high", title, detail, fix, **numbers)], check


def clean_history(hist):
    """Keep only the per-epoch series that are lists of numbers (a model file's metadata is not trusted)."""
    if not isinstance(hist, dict):
        return {}
    inner = hist.get("history")
    if isinstance(inner, dict):
        hist = inner
    return {
        str(k): [float(x) for x in v]
        for k, v in hist.items()
        if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    }


def _history_of(history):
    if history is None:
        return None
    if isinstance(history, History):
        return history.history
    if isinstance(history, dict):
        return clean_history(history)
    raise ConfigError(
        "history must be a dialnet History or a dict of per-epoch lists",
        expected="net.fit(...)'s return value or history.history",
        got=type_name(history),
        fix="pass history=net.fit(...)",
    )


def stored_history(net):
    """The training history kept with a network: ``net.history`` or a model file's metadata."""
    history = getattr(net, "history", None)
    if isinstance(history, (History, dict)):
        return _history_of(history)
    extra = (getattr(net, "metadata", None) or {}).get("extra")
    if isinstance(extra, dict):
        return clean_history(extra.get("history")) or None
    return None


def _subset(n, m, rng):
    return np.sort(rng.choice(n, size=m, replace=False)) if n > m else np.arange(n)


def _fresh_copy(optimizer):
    if optimizer is None:
        return Adam(lr=1e-3)
    opt = copy.deepcopy(get_optimizer(optimizer))
    opt.reset()
    opt.lr = opt.initial_lr
    return opt


def probe_learning_rate(net, X, y, loss, optimizer=None, batch_size=32, seed=0):
    """Train a copy of ``net`` briefly on ``X, y`` and judge its loss curve."""
    clone = copy.deepcopy(net)
    clone.clear_cache()
    opt = _fresh_copy(optimizer)
    lr = opt.lr
    try:
        with np.errstate(all="ignore"):
            hist = fit(clone, X, y, loss=loss, optimizer=opt, epochs=LR_PROBE_EPOCHS, batch_size=batch_size, seed=seed)
    except DivergenceError as exc:
        return [Finding(
            "learning_rate_too_high",
            f"a probe run with learning rate {lr:g} diverged",
            exc.what,
            f"divide the learning rate by 10 (try {lr / 10:g})",
            lr=lr,
        )], f"probe run ({type(opt).__name__}, lr {lr:g}): diverged"
    return check_loss_curve(hist.history["loss"], hist.history.get("lr"),
                            source=f"probe run: {LR_PROBE_EPOCHS} epochs of {type(opt).__name__} lr {lr:g} on {X.shape[0]} rows")


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


# --------------------------------------------------------------- entry points


def doctor(net, X, y, history=None, loss=None, optimizer=None, batch_size=32, probe=True, seed=0, max_samples=2000):
    """Examine a network on its training data and say what is wrong, with numbers and fixes.

    Parameters
    ----------
    net : Network
    X, y : the training inputs and targets (labels or rows).
    history : History or dict, optional
        The run to judge for the learning rate; default ``net.history`` (set
        by ``fit``, or stored in a model file). With ``probe``, a short
        probe run with ``optimizer`` is judged too when an optimizer is
        given or there is no history.
    loss : str or Loss, optional   default: the network's training loss.
    optimizer : str or Optimizer, optional
        The optimizer (and learning rate) you train with, for the probe run;
        default Adam(lr=1e-3), fit's default. It is copied, never stepped.
    probe : bool, "learning_rate" or "capacity"
        Run the short training probes: True both, False none, or the one
        named. They train copies; ``net`` is not changed.
    seed : int
        Which rows are sampled and how the probes are seeded.
    max_samples : int
        At most this many rows are examined.

    Returns
    -------
    Diagnosis
    """
    if not isinstance(net, Network):
        raise ConfigError(
            "the doctor examines a dialnet Network",
            expected="a Network (dialnet.mlp(...) or dialnet.load(path))",
            got=type_name(net),
            fix="call doctor(net, X, y)",
        )
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 2:
        raise InvalidValueError("max_samples must be an integer >= 2", expected="e.g. 2000", got=repr(max_samples), fix="leave it out")
    if probe not in (True, False, "learning_rate", "capacity"):
        raise ConfigError("unknown probe", expected="True, False, 'learning_rate' or 'capacity'", got=repr(probe),
                          fix="pass probe=True to run both probes")
    probe_lr = probe in (True, "learning_rate")
    probe_fit = probe in (True, "capacity")
    loss = get_loss(loss) if loss is not None else net.default_loss()
    Xv = net._check_X(X)
    y_arr = np.asarray(backend.to_numpy(y))
    loss.prepare(y_arr, Xv.shape[0], net.n_outputs, net.dtype)  # fail early, with loss's own message
    rng = np.random.default_rng(seed)
    n = Xv.shape[0]
    rows = _subset(n, int(max_samples), rng)
    Xs = Xv[backend.xp.asarray(rows)]

    findings, checks, skipped = [], [], []

    def run(result):
        found, check = result
        findings.extend(found)
        if check:
            checks.append(check)

    run(check_inputs(Xs))
    run(check_classes(net, y_arr))
    run(check_units(net, Xs))
    g_rows = rows[: GRADIENT_ROWS] if rows.size > GRADIENT_ROWS else rows
    run(check_gradients(net, Xv[backend.xp.asarray(g_rows)], y_arr[g_rows], loss))

    hist = _history_of(history) if history is not None else stored_history(net)
    has_history = bool(hist and hist.get("loss"))
    if has_history:
        run(check_loss_curve(hist["loss"], hist.get("lr")))
    if probe_lr and (optimizer is not None or not has_history):
        sub = _subset(n, LR_PROBE_ROWS, rng)
        run(probe_learning_rate(net, Xv[backend.xp.asarray(sub)], y_arr[sub], loss, optimizer, batch_size, seed))
    elif not has_history:
        skipped.append("learning rate (no training history, and the learning-rate probe was not run)")
    elif optimizer is not None:
        skipped.append("the given optimizer's learning rate (the learning-rate probe was not run)")

    if probe_fit:
        sub = _subset(n, PROBE_ROWS, rng)
        run(probe_capacity(net, Xv[backend.xp.asarray(sub)], y_arr[sub], loss, seed))
    else:
        skipped.append("capacity (the capacity probe was not run)")
    return Diagnosis(findings, checks, skipped)


class DoctorCallback(Callback):
    """The doctor during ``fit``: warns (``DoctorWarning``) as soon as the loss curve goes wrong, and at the end.

    Parameters
    ----------
    X, y : training data to examine at the end (a sample is enough).
    probe : bool   also run the capacity probe at the end (trains two copies).
    warn : bool    emit ``warnings.warn(..., DoctorWarning)`` per finding.

    After training, ``callback.diagnosis`` holds the full :class:`Diagnosis`.
    """

    def __init__(self, X, y, probe=False, warn=True, seed=0, max_samples=2000):
        self.X = X
        self.y = y
        self.probe = "capacity" if probe else False  # the run's own history judges the learning rate
        self.warn = bool(warn)
        self.seed = seed
        self.max_samples = max_samples
        self.diagnosis = None
        self._warned = set()

    def on_train_begin(self, net, history):
        self.diagnosis = None
        self._warned = set()

    def _emit(self, finding):
        if self.warn and finding.code not in self._warned:
            warnings.warn(f"dialnet doctor: {finding.title}. {finding.detail}. Fix: {finding.fix}", DoctorWarning, stacklevel=4)
        self._warned.add(finding.code)

    def on_epoch_end(self, epoch, logs, net):
        hist = net.history.history if isinstance(net.history, History) else {}
        if len(hist.get("loss", ())) >= MIN_EPOCHS and "learning_rate_too_high" not in self._warned:
            for f in check_loss_curve(hist["loss"], hist.get("lr"))[0]:
                self._emit(f)
        return False

    def on_train_end(self, net, history):
        try:
            self.diagnosis = doctor(net, self.X, self.y, history=history, loss=net.loss, probe=self.probe,
                                    seed=self.seed, max_samples=self.max_samples)
        except DialnetError as exc:  # the doctor must never break a finished training run
            if self.warn:
                warnings.warn(f"dialnet doctor could not examine the run: {exc}", DoctorWarning, stacklevel=3)
            return
        for f in self.diagnosis.findings:
            self._emit(f)


__all__ = ["Diagnosis", "DoctorCallback", "DoctorWarning", "Finding", "doctor", "stored_history"]
