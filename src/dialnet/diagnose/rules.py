"""The doctor's rules on the data and the network as they are now: input scale, class balance, stuck units, gradients.

Each ``check_*`` function measures one thing and returns ``(findings, check
line)``: the problems found (a list of :class:`Finding`) and one line for
the report saying what was measured and where the threshold lies. The
thresholds are module constants; the comment above each says why it is
that. The rule on the training loss curve lives in ``loss_curve``, the
ones that train copies in ``probes``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..errors import InvalidValueError
from .findings import Finding
from .trace import FLAT_SLOPE, STUCK_SHARE, trace, unit_health

# Glorot and He initial weights are sized for inputs of about unit scale (RMS ~1): then z = x @ W
# starts with a spread of about 1; an input RMS of s makes it s times wider. At a spread of 3, ~5%
# of sigmoid and ~30% of tanh pre-activations start where the slope is under 1% of its peak.
INPUT_RMS_HIGH = 3.0
# Below this the first layer sees a near-constant input, and its gradients, which are proportional
# to the input, are 100x smaller than the other layers'.
INPUT_RMS_LOW = 0.01
# One feature's RMS this many times the median feature's: one learning rate cannot suit dials whose
# gradients differ by 100x.
FEATURE_SPREAD = 100.0
# The largest class with this many times the rows of the smallest: at 10:1 ignoring the rare class
# still scores over 90% on the pair, and the rare class gives under 1/11 of the gradient.
IMBALANCE_RATIO = 10.0
# A hidden layer with at least this share of stuck units (flat on 99% of the samples, or dead
# ReLUs) has lost a tenth of its capacity.
STUCK_LAYER_SHARE = 0.10
# Sigmoid/tanh: half of all the layer's activations flat means most of the error stops there.
# (Half of a ReLU layer's outputs being 0 is normal, so only dead units count for ReLU.)
LAYER_FLAT_SHARE = 0.5
# The error signal's RMS at the first layer against the output layer's: with one learning rate for
# all layers, a 1000x gap means one end learns 1000x slower than the other (or steps 1000x too far).
GRADIENT_RATIO = 1e3


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
        fix = ("weight the classes: fit(..., class_weight='balanced') (`dialnet train --class-weight balanced`, "
               "DialnetClassifier(class_weight='balanced')), so each class counts as much in the loss; or oversample the "
               "rare classes or collect more of them; and judge the model by per-class recall or the confusion matrix "
               "(`dialnet plot`), not by accuracy")
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
    try:
        t = trace(net, X, y, loss)
    except InvalidValueError:  # trace refuses a non-finite loss: the weights have overflowed already
        return [Finding(
            "exploding_gradients",
            "the loss is not finite on the training rows, so neither are the gradients",
            "the weights are so large that the outputs overflow (what a learning rate far too high leaves behind)",
            "retrain from a fresh initialization with a learning rate 10x lower and scaled inputs",
        )], "error signal: the loss is not finite on these rows"
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

