"""The learning-rate rule: is this run's training loss what gradient descent with a small enough step gives?

Gradient descent with a small enough step lowers the loss at every step;
the mean loss per epoch then falls, or flattens with a little mini-batch
noise. A learning rate that is clearly too high shows in one of a few
ways, and :func:`check_loss_curve` fires on every one of them, whatever
the exact path the run took (which, for a diverging run, depends on
rounding and so differs between machines and BLAS builds):

- the run **diverged**: fit met a NaN/inf loss or weight
  (``History.divergences``, a ``stop_reason`` that says so, a
  ``DivergenceError``), or the curve holds a NaN/inf;
- the loss **exploded**: an epoch at least ``EXPLODE_FACTOR`` times the
  first. Past ``2 / curvature`` each step multiplies the distance to the
  minimum by ``|1 - lr * curvature| > 1``, so the loss grows
  geometrically; noise never lifts an epoch's mean 10x above the first
  epoch's, which already includes the untrained start;
- the loss **stayed far above a guess that knows nothing** (cross-entropy
  losses only): its best epoch is ``ABOVE_UNINFORMED`` times the loss of
  uniform certainties (``ln K`` for K classes, ``ln 2`` per yes/no output).
  A fresh network starts near that level and descent only lowers it; so
  far above it, the outputs are confidently wrong: the steps have thrown
  the dials past the valley (saturated units and huge logits follow);
- the loss **rose**: it ended at or above where it started;
- it **oscillated**: one epoch gave back at least ``LOSS_OSCILLATION`` of
  all the progress the run ever made (rising that far above the best loss
  before it);
- it **gave back** at least ``LOSS_GIVEN_BACK`` of its progress by the
  end (``last - best >= 0.1 (first - best)``): with a small enough step
  the last epochs are the best ones.

Rises smaller than ``NOISE_SHARE`` of the loss of the best constant guess
(class frequencies, target means; without the data, of the first epoch's
loss) are mini-batch noise and never count.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from .findings import Finding

# Fewer epochs than this say nothing about rises, oscillation or progress given back (the rules on
# divergence and explosion need less: a NaN, or a 10x jump after the first epoch, are clear at once).
MIN_EPOCHS = 3
# An epoch's mean loss this many times the first epoch's: the loss grows geometrically, the mark of
# a step past 2 / curvature; mini-batch noise on an epoch mean never comes near 10x.
EXPLODE_FACTOR = 10.0
# Cross-entropy losses: a best epoch this many times the loss of uniform certainties (ln K, ln 2).
# A fresh network starts near 1x and descent only lowers it; 3x means the outputs are confidently
# wrong on many rows, which small steps from a fresh start never produce.
ABOVE_UNINFORMED = 3.0
# One epoch that undoes half of all the progress the run ever made is a step that overshot the
# valley; noise on an epoch mean is a few percent of the progress at most.
LOSS_OSCILLATION = 0.5
# A run that ends a tenth of its progress above its best: with a small enough step the last epochs
# are the best ones.
LOSS_GIVEN_BACK = 0.1
# Rises under 1% of the loss of the best constant guess change no prediction that matters: noise.
NOISE_SHARE = 0.01


class Baseline:
    """Reference losses for one data set, that put a loss curve's numbers on a scale.

    Attributes
    ----------
    constant : float or None
        The loss of the best constant guess: the class frequencies (cross-
        entropy), each output's rate of ones (binary cross-entropy), or each
        target's mean (squared error, where it is the targets' variance).
    uninformed : float or None
        The loss of outputs that say nothing: uniform certainties, ``ln K``
        for K classes and ``ln 2`` per yes/no output; a fresh network starts
        near it. None for squared error, whose untrained level depends on
        the output's scale.
    """

    def __init__(self, constant=None, uninformed=None):
        self.constant = constant
        self.uninformed = uninformed

    def __repr__(self):
        return f"Baseline(constant={self.constant!r}, uninformed={self.uninformed!r})"


def baseline_losses(loss, Y, n_outputs) -> Baseline:
    """The :class:`Baseline` of ``loss`` on prepared targets ``Y`` (``loss.prepare``'s result) for ``n_outputs``.

    Both reference losses are the ``loss``'s own ``value`` of a constant
    output, so they are on exactly the scale of the training loss.
    """
    xp = backend.xp
    n = Y.shape[0]
    if n == 0:
        return Baseline()
    if loss.name == "cross_entropy":
        if Y.ndim == 1:
            k = int(n_outputs)
            prior = np.bincount(backend.to_numpy(Y).astype(np.int64), minlength=k)[:k] / n
        else:
            k = Y.shape[1]
            prior = backend.to_numpy(Y).astype(np.float64).mean(axis=0)
        return Baseline() if k < 2 else Baseline(
            constant=_value_of_constant(loss, prior, n, Y),
            uninformed=_value_of_constant(loss, np.full(k, 1.0 / k), n, Y),
        )
    if Y.ndim != 2:
        return Baseline()
    mean = backend.to_numpy(Y).astype(np.float64).mean(axis=0)
    if loss.name == "binary_cross_entropy":
        return Baseline(constant=_value_of_constant(loss, mean, n, Y),
                        uninformed=_value_of_constant(loss, np.full(mean.shape, 0.5), n, Y))
    if loss.name == "mse":
        return Baseline(constant=_value_of_constant(loss, mean, n, Y))
    return Baseline()


def _value_of_constant(loss, row, n, Y):
    P = backend.xp.asarray(np.broadcast_to(row, (n, row.size)).astype(np.float64))
    value = loss.value(P, Y.astype(np.float64) if Y.ndim == 2 else Y)
    return float(value) if math.isfinite(value) else None


def check_loss_curve(losses, lrs=None, source="training run", *, baseline=None, divergences=(), stop_reason=None):
    """Judge a run's per-epoch training loss for a learning rate that is too high.

    Parameters
    ----------
    losses : sequence of float
        The mean training loss per epoch (``history.history["loss"]``).
    lrs : sequence of float, optional
        The learning rate per epoch (``history.history["lr"]``), for the fix.
    source : str
        Names the run in the report.
    baseline : Baseline, optional
        Reference losses on the training targets (:func:`baseline_losses`);
        without it the rule on staying above an uninformed guess is not
        applied, and noise is judged against the first epoch's loss.
    divergences : sequence of dict
        ``History.divergences``: each NaN/inf met by fit (epoch, step,
        what, lr, action).
    stop_reason : str, optional
        ``History.stop_reason``; one that starts with "diverged" counts as
        a divergence even without the records.

    Returns
    -------
    (findings, check) : a list with at most one ``learning_rate_too_high``
        :class:`Finding`, and the report's line (None for an empty run).
    """
    losses = [float(v) for v in losses]
    divergences = [d for d in divergences if isinstance(d, dict)]
    lr = _last_number(lrs)
    if divergences or (isinstance(stop_reason, str) and stop_reason.startswith("diverged")):
        return _diverged(divergences, stop_reason, lr, source)
    if not losses:
        return [], None
    fix = _fix(lr)
    bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
    if bad:
        return [Finding(
            "learning_rate_too_high",
            f"the training loss diverged: it became {losses[bad[0]]} at epoch {bad[0] + 1} ({source})",
            "the steps are so large that the dials overflow",
            fix, epoch=bad[0] + 1,
        )], f"{source}: the loss diverged"
    if len(losses) < 2:
        return [], f"{source}: only 1 epoch, too few to judge the learning rate"
    first, last, best = losses[0], losses[-1], min(losses)
    reference = baseline.constant if baseline is not None and baseline.constant is not None else abs(first)
    noise = NOISE_SHARE * reference
    peak_at = 1 + int(np.argmax(losses[1:]))
    peak = losses[peak_at]
    if peak >= EXPLODE_FACTOR * first and peak - first > noise:
        times = f"{peak / first:.3g}x" if first > 0 else "far above"
        return [Finding(
            "learning_rate_too_high",
            f"the training loss exploded: {first:.4g} in epoch 1, {peak:.4g} in epoch {peak_at + 1} ({source})",
            f"{times} the first epoch's: past a stable step each step multiplies the distance to the valley's "
            "floor, so the loss grows geometrically",
            fix, first=first, peak=peak, epoch=peak_at + 1,
        )], f"{source}: the loss exploded"
    if len(losses) < MIN_EPOCHS:
        return [], f"{source}: only {len(losses)} epochs, too few to judge the learning rate"

    progress = first - best
    best_before = np.minimum.accumulate(losses)[:-1]  # the best loss before each later epoch
    setbacks = np.asarray(losses[1:]) - best_before
    worst = int(np.argmax(setbacks))
    setback = float(setbacks[worst])
    oscillation = setback / progress if progress > 0 and setback > noise else 0.0
    given_back = (last - best) / progress if progress > 0 and last - best > noise else 0.0
    n_up = int((np.diff(losses) > noise).sum())
    uninformed = baseline.uninformed if baseline is not None else None
    check = (f"{source}: loss over {len(losses)} epochs {first:.4g} -> {last:.4g} (best {best:.4g}); its worst epoch "
             f"undid {min(oscillation, 9.99):.0%} of the progress (fine below {LOSS_OSCILLATION:.0%}), it ended "
             f"{given_back:.0%} of its progress above its best (fine below {LOSS_GIVEN_BACK:.0%})")
    if uninformed:
        check += f", best {best / uninformed:.3g}x an uninformed guess's loss (fine below {ABOVE_UNINFORMED:g}x)"
    numbers = {"first": first, "last": last, "best": best, "epochs_up": n_up, "oscillation": oscillation,
               "given_back": given_back}
    went_up = f"it went up in {n_up} of {len(losses) - 1} epochs"
    if uninformed and best >= ABOVE_UNINFORMED * uninformed:
        title = (f"the training loss stayed far above a guess that knows nothing: its best, {best:.4g}, is "
                 f"{best / uninformed:.3g}x the {uninformed:.3g} of uniform certainties ({source})")
        detail = (f"{went_up}; a fresh network starts near {uninformed:.3g} and small steps only lower it, so the "
                  "outputs are confidently wrong: the steps threw the dials past the valley (huge weights, "
                  "saturated units)")
        numbers["uninformed"] = uninformed
    elif last >= first and last - best > noise:
        title = f"the training loss rose from {first:.4g} to {last:.4g} over {len(losses)} epochs ({source})"
        detail = f"{went_up}: the steps overshoot the valley instead of descending into it"
    elif oscillation >= LOSS_OSCILLATION:
        title = (f"the training loss oscillates: epoch {worst + 2} undid {oscillation:.0%} of all the progress "
                 f"the run made ({source})")
        detail = f"{went_up} ({first:.4g} -> {last:.4g}); a small enough step lowers it nearly every epoch"
    elif given_back >= LOSS_GIVEN_BACK:
        title = f"the training loss gave back {given_back:.0%} of its progress: best {best:.4g}, last {last:.4g} ({source})"
        detail = f"{went_up}; with a small enough step the last epochs are the best ones"
    else:
        return [], check
    return [Finding("learning_rate_too_high", title, detail, fix, **numbers)], check


def _last_number(values):
    if values is None:
        return None
    try:
        value = float(list(values)[-1])
    except (IndexError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _fix(lr, what="it was"):
    lr_text = f" ({what} {lr:g}: try {lr / 10:g})" if lr else ""
    return "divide the learning rate by 10" + lr_text + "; if the loss still jumps, by 10 again"


def _number(record, key):
    value = record.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _diverged(divergences, stop_reason, lr, source):
    """The finding for a run that met a NaN/inf: from fit's divergence records, or its stop reason alone."""
    if not divergences:
        return [Finding(
            "learning_rate_too_high",
            f"training diverged ({source})",
            stop_reason,
            _fix(lr),
        )], f"{source}: diverged"
    first = divergences[0]
    at_lr = _number(first, "lr")
    epoch, step = _number(first, "epoch"), _number(first, "step")
    where = f" at epoch {epoch:g}, step {step:g}" if epoch is not None and step is not None else ""
    what = first.get("what") if isinstance(first.get("what"), str) else "a non-finite loss or weight"
    with_lr = f" with learning rate {at_lr:g}" if at_lr else ""
    repeated = f" ({len(divergences)} times)" if len(divergences) > 1 else ""
    halvings = [d for d in divergences if isinstance(d.get("action"), str) and d["action"].startswith("halved")]
    went_on = bool(halvings and lr and at_lr and lr < at_lr)  # on_divergence="halve" found a rate that worked
    detail = f"{what}; fit set the dials back to before that step"
    if went_on:
        halved = "once" if len(halvings) == 1 else f"{len(halvings)} times"
        detail += f", halved the learning rate {halved} and went on at {lr:g}"
    cause = first.get("cause") if isinstance(first.get("cause"), str) else None
    if cause:
        detail += f" (fit's guess at the cause: {cause})"
    if went_on:
        fix = f"start at the learning rate the halving reached, {lr:g}, or lower (it diverged at {at_lr:g})"
    else:
        fix = _fix(at_lr or lr, "it diverged at")
    return [Finding(
        "learning_rate_too_high",
        f"training diverged{where}{with_lr}{repeated} ({source})",
        detail,
        fix,
        epoch=epoch, step=step, lr=at_lr, divergences=len(divergences),
    )], f"{source}: diverged{where}{repeated}"
