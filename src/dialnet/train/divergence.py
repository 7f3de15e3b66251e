"""The divergence guard's second half: find the step where a non-finite value appeared, name a likely cause.

The fit loop checks only the loss after every step (and the weights once per
epoch), so it learns *that* something went non-finite, not *where*. Then
:func:`replay_to_bad_step` rewinds to the snapshot taken at the start of the
epoch and redoes the steps one by one, checking each, up to the bad one; it
leaves the network as it was just before that step. :func:`likely_cause`
reads the numbers measured there (gradient norm, learning rate, input and
target scale) and names the cause with a fix, and :func:`respond` does what
``on_divergence`` asks: halve the learning rate and restart the epoch, stop
with a warning, or raise :class:`~dialnet.errors.DivergenceError`.

The trainer these functions take is the fit loop's ``_Trainer``: they use
its ``capture``/``restore`` snapshots, ``run_step``/``advance`` (the very
step the hot loop runs) and its settings.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend
from ..errors import DivergenceError, DivergenceWarning

# The learning rate above which a divergence is blamed on it first.
HIGH_LR = {"sgd": 1.0}
HIGH_LR_DEFAULT = 0.1  # adaptive optimizers (Adam, AdamW, RMSprop) move each dial by about lr per step
INPUT_SCALE_LIMIT = 50.0  # standardized inputs rarely exceed ~10 in absolute value
EXPLODING_GRAD_NORM = 1e3


class Diverged(Exception):
    """Internal: a non-finite value was seen; replay steps up to ``upto`` (0-based, inclusive) to find it."""

    def __init__(self, upto):
        super().__init__(upto)
        self.upto = upto


def norm(arrays) -> float:
    """Euclidean norm of a list of arrays, in float64 (used off the hot path only)."""
    total = 0.0
    for a in arrays:
        a = backend.to_numpy(a)
        total += float(np.square(a, dtype=np.float64).sum())
    return math.sqrt(total)


def replay_to_bad_step(trainer, upto) -> dict:
    """Rewind to the epoch snapshot and redo steps up to ``upto``, checking each, to find the bad one.

    Leaves the network, optimizer and dropout generators as they were
    just before that step and returns what was measured there.
    """
    trainer.restore(trainer.snapshot)
    previous_ratio = None
    for j in range(trainer.step, upto + 1):
        before = trainer.capture()
        value, weight = trainer.run_step(j)
        grad_norm, weight_norm = norm(trainer.grads), norm(trainer.params)
        if math.isfinite(value):
            trainer.apply_update()
            if trainer.params_finite():
                moved = norm([p - q for p, q in zip(trainer.params, before["params"])])
                previous_ratio = moved / max(weight_norm, 1e-30)
                trainer.advance(value, weight)
                continue
            what = "the update made some weights non-finite (an infinite or NaN gradient)"
        else:
            what = f"the loss became {value}"
        trainer.restore(before)
        break
    else:  # the replay ran clean: the values seen were not reproducible; stop where we are
        j, value, what = upto + 1, float("nan"), "non-finite values appeared that did not recur on replay"
        grad_norm = weight_norm = float("nan")
    return {
        "epoch": trainer.epoch + 1,
        "step": j + 1,
        "what": what,
        "loss": float(value),
        "grad_norm": float(grad_norm),
        "weight_norm": float(weight_norm),
        "previous_update_ratio": previous_ratio,
        "lr": float(trainer.optimizer.lr),
    }


def likely_cause(info, X, Y, task, optimizer_name) -> dict:
    """Add a likely ``cause``, a ``fix`` and the ``numbers`` that show it to a replay's ``info``."""
    xp = backend.xp
    input_scale = float(xp.abs(X).max())
    target_scale = float(xp.abs(Y).max()) if task == "regression" else None
    lr, grad_norm = info["lr"], info["grad_norm"]
    high_lr = HIGH_LR.get(optimizer_name, HIGH_LR_DEFAULT)
    if input_scale > INPUT_SCALE_LIMIT:
        cause = "unscaled inputs"
        fix = f"standardize each input column, X = (X - mean) / std (the largest |x| is {input_scale:.3g})"
    elif target_scale is not None and target_scale > INPUT_SCALE_LIMIT:
        cause = "unscaled targets"
        fix = f"standardize the regression targets (the largest |y| is {target_scale:.3g}) and undo it on predictions"
    elif lr > high_lr or (math.isfinite(grad_norm) and grad_norm <= EXPLODING_GRAD_NORM):
        cause = "learning rate too high"
        fix = f"lower the learning rate 10x or more (try lr={lr / 10:g})"
    else:
        cause = "exploding gradients"
        fix = f"lower the learning rate (try lr={lr / 10:g}), use fewer or narrower layers, or scale the inputs"
    info.update(input_scale=input_scale, target_scale=target_scale, cause=cause, fix=fix)
    numbers = [
        f"gradient norm {grad_norm:.3g}",
        f"weight norm {info['weight_norm']:.3g}",
        f"learning rate {lr:g}",
        f"largest |input| {input_scale:.3g}",
    ]
    if target_scale is not None:
        numbers.append(f"largest |target| {target_scale:.3g}")
    if info["previous_update_ratio"] is not None:
        numbers.append(f"the step before moved the weights by {info['previous_update_ratio']:.3g}x their size")
    info["numbers"] = ", ".join(numbers)
    return info


def respond(trainer, upto) -> bool:
    """Set the dials back to the last good step, then halve and go on (True), stop (False) or raise."""
    info = replay_to_bad_step(trainer, upto)
    info = likely_cause(info, trainer.X, trainer.Y, trainer.net.task, trainer.optimizer.name)
    opt, history = trainer.optimizer, trainer.history
    where = f"epoch {info['epoch']}, step {info['step']}"
    if trainer.on_divergence == "halve" and trainer.retries < trainer.divergence_retries:
        # the dials just before the bad step are finite but may already be ruined by the
        # too-large steps that led there, so the retry starts the epoch over
        trainer.restore(trainer.snapshot)
        trainer.retries += 1
        opt.lr /= 2
        if trainer.schedule is not None and hasattr(trainer.schedule, "base_lr"):
            trainer.schedule.base_lr /= 2
        info["action"] = (
            f"halved the learning rate to {opt.lr:g} and restarted epoch {info['epoch']} "
            f"(retry {trainer.retries} of {trainer.divergence_retries})"
        )
        history.divergences.append(info)
        return True
    info["action"] = "stopped with the weights from before that step"
    history.divergences.append(info)
    retried = f" after {trainer.retries} halvings of the learning rate" if trainer.retries else ""
    reason = f"diverged at {where}{retried}: {info['what']}; likely cause: {info['cause']} ({info['numbers']})"
    history.stop_reason = reason
    history.stopped_epoch = trainer.epoch
    if trainer.on_divergence == "stop":
        warnings.warn(f"dialnet: training {reason}. Fix: {info['fix']}", DivergenceWarning, stacklevel=5)  # the caller of fit
        return False
    exc = DivergenceError(
        f"training diverged at {where}{retried}: {info['what']} "
        f"(the network keeps its weights from before that step); likely cause: {info['cause']}",
        expected="a finite loss and finite gradients",
        got=info["numbers"],
        fix=info["fix"],
    )
    exc.details, exc.history = info, history
    history.train_time = trainer.train_time
    raise exc
