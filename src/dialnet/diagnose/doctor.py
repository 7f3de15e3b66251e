"""The training doctor: what is wrong with a network or a run, with its numbers and a fix.

:func:`doctor` runs every rule and probe and returns a :class:`Diagnosis`;
:class:`DoctorCallback` does it during ``fit``. ``help(dialnet.doctor)``
lists each rule, its threshold and why the threshold is that. The parts:

- ``findings``   Finding, Diagnosis, DoctorWarning: what comes back
- ``rules``      the network and data as they are: inputs, classes, units, gradients
- ``loss_curve`` the learning-rate rule on a run's loss curve and divergences
- ``probes``     short runs on copies: the learning-rate probe, the capacity probe
- ``history``    reading a run back from a History, a dict, a DivergenceError or a model file
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from ..core.losses import get_loss
from ..core.network import Network
from ..errors import ConfigError, DialnetError, InvalidValueError, type_name
from ..train import Callback, History
from .findings import Diagnosis, DoctorWarning, Finding
from .history import RunRecord, clean_history, read_run, stored_history, stored_run
from .loss_curve import (
    ABOVE_UNINFORMED,
    EXPLODE_FACTOR,
    LOSS_GIVEN_BACK,
    LOSS_OSCILLATION,
    MIN_EPOCHS,
    NOISE_SHARE,
    Baseline,
    baseline_losses,
    check_loss_curve,
)
from .probes import (
    FIT_GAP,
    FITS,
    LR_PROBE_EPOCHS,
    LR_PROBE_ROWS,
    PLATEAU_EPOCHS,
    PLATEAU_GAIN,
    PROBE_EPOCHS,
    PROBE_ROWS,
    WIDE_MIN_UNITS,
    WIDEN,
    probe_capacity,
    probe_learning_rate,
    subset,
)
from .rules import (
    FEATURE_SPREAD,
    GRADIENT_RATIO,
    IMBALANCE_RATIO,
    INPUT_RMS_HIGH,
    INPUT_RMS_LOW,
    LAYER_FLAT_SHARE,
    STUCK_LAYER_SHARE,
    check_classes,
    check_gradients,
    check_inputs,
    check_units,
)

# The error signal is measured on at most this many rows: one backward pass, enough for an RMS per layer.
GRADIENT_ROWS = 256


def doctor(net, X, y, history=None, loss=None, optimizer=None, batch_size=32, probe=True, seed=0, max_samples=2000):
    """Examine a network on its training data and say what is wrong, with numbers and fixes.

    Parameters
    ----------
    net : Network
    X, y : array-like
        The training inputs and targets (labels or rows).
    history : History, dict or DivergenceError, optional
        The run to judge for the learning rate: what ``fit`` returned, its
        ``.history`` dict, or the ``DivergenceError`` it raised. Default:
        ``net.history`` (set by ``fit``, or stored in a model file). With
        ``probe``, a short probe run with ``optimizer`` is judged too when
        an optimizer is given or there is no history.
    loss : str or Loss, optional
        Default: the network's training loss.
    optimizer : str or Optimizer, optional
        The optimizer (and learning rate) you train with, for the probe run;
        default Adam(lr=1e-3), fit's default. It is copied, never stepped.
    batch_size : int
        The probe run's mini-batch size.
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
        ``diagnosis.findings``, ``diagnosis.healthy``, ``"dead_relu" in
        diagnosis``; ``print(diagnosis)`` is the report.

    Notes
    -----
    Each rule (the finding's code), its threshold, and why it is that:

    unscaled_inputs
        Glorot and He initial weights are sized for inputs of about unit
        scale (RMS ~1): then ``z = x @ W`` starts with a spread of about 1,
        and an input RMS ``s`` makes it ``s`` times wider. Flagged when the
        overall RMS is above 3 (a spread of 3 puts ~5% of sigmoid and ~30%
        of tanh pre-activations where the slope is under 1% of its peak) or
        below 0.01 (the first layer then sees a near-constant input, and its
        gradients, proportional to the input, are 100x smaller too), or when
        one feature's RMS is 100x the median feature's (one learning rate
        cannot suit dials whose gradients differ by 100x).
    class_imbalance
        The largest class has 10 times the rows of the smallest (or a class
        has none). At 10:1, ignoring the rare class still scores over 90% on
        the pair, so accuracy says nothing about it, and it contributes
        under 1/11 of the gradient.
    saturated_units, dead_relu
        A sigmoid/tanh activation is flat when its slope is under 1% of its
        peak (it passes back under 1% of the error); a unit is stuck when it
        is flat on at least 99% of the samples. A ReLU is dead when it
        outputs 0 on every sample (no gradient at all, so it never
        recovers). Flagged when at least 10% of a hidden layer's units are
        stuck (a tenth of its capacity lost) or, for sigmoid/tanh, when half
        of all the layer's activations are flat (most of the error stops
        there). Half of a ReLU layer's outputs being 0 is normal, so only
        dead units count there.
    vanishing_gradients, exploding_gradients
        The error signal ``delta = dL/dz`` (RMS per unit and sample, on at
        most 256 rows) at the first layer against the output layer. With one
        learning rate for all layers, a 1000x gap means one end learns 1000x
        slower than the other (or takes 1000x too large steps): flagged
        beyond 1000x either way, or when a gradient is not finite.
    learning_rate_too_high
        From the run (``history``, ``net.history`` or a model file's stored
        history) and from a short probe run with ``optimizer``. Gradient
        descent with a small enough step lowers the loss every step, so the
        rule fires, whatever the exact path a bad run took, when:

        - the run diverged: fit met a NaN/inf (``History.divergences``, a
          stop reason that says so, a ``DivergenceError``, a probe that
          diverged), even if halving the learning rate let it go on, or the
          per-epoch loss holds a NaN/inf;
        - the loss exploded: an epoch at 10x the first epoch's or more (past
          ``2 / curvature`` every step multiplies the distance to the
          valley's floor, so the loss grows geometrically; noise on an epoch
          mean never comes near 10x); judged from 2 epochs;
        - cross-entropy losses: its best epoch is 3x the loss of uniform
          certainties (``ln K``, ``ln 2`` per yes/no output) or more: a fresh
          network starts near 1x and small steps only lower it, so the
          outputs are confidently wrong;
        - it ended at or above where it started; one epoch undid half or
          more of all the progress the run made (oscillation); or it ended a
          tenth or more of its progress above its best (with a small enough
          step the last epochs are the best ones). These need 3 epochs.

        Rises under 1% of the loss of the best constant guess (class
        frequencies, target means) are mini-batch noise and never count.
    too_small
        A probe: a fresh copy of this architecture and a twin with every
        hidden layer 4x wider (at least 16 units) train on the same rows (at
        most 500) the same way, each until it fits 99% of them, its loss
        plateaus (under 1% better over 10 epochs: ten times more training
        would gain under 10%), or 200 epochs. If the twin then fits the rows
        better by 10 points or more (of training accuracy; for regression,
        of R^2: the share of the targets' variance fitted), capacity, not
        the optimizer, is what holds this network back.

    The thresholds are constants of ``dialnet.diagnose.rules``,
    ``.loss_curve`` and ``.probes``, each with its reason beside it.
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
    Y = loss.prepare(y_arr, Xv.shape[0], net.n_outputs, net.dtype)  # fails early, with the loss's own message
    baseline = baseline_losses(loss, Y, net.n_outputs)
    rng = np.random.default_rng(seed)
    n = Xv.shape[0]
    rows = subset(n, int(max_samples), rng)
    Xs = Xv[backend.xp.asarray(rows)]

    findings, checks, skipped = [], [], []

    def run(check, *args, **kwargs):
        # a blown-up network overflows on purpose here: the checks report non-finite values themselves
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            found, line = check(*args, **kwargs)
        findings.extend(found)
        if line:
            checks.append(line)

    run(check_inputs, Xs)
    run(check_classes, net, y_arr)
    run(check_units, net, Xs)
    g_rows = rows[:GRADIENT_ROWS] if rows.size > GRADIENT_ROWS else rows
    run(check_gradients, net, Xv[backend.xp.asarray(g_rows)], y_arr[g_rows], loss)

    record = read_run(history) if history is not None else stored_run(net)
    has_history = record is not None and record.judgeable
    if has_history:
        run(check_loss_curve, record.losses, record.lrs, baseline=baseline, divergences=record.divergences,
            stop_reason=record.stop_reason)
    if probe_lr and (optimizer is not None or not has_history):
        sub = subset(n, LR_PROBE_ROWS, rng)
        run(probe_learning_rate, net, Xv[backend.xp.asarray(sub)], y_arr[sub], loss, optimizer, batch_size, seed,
            baseline=baseline)
    elif not has_history:
        skipped.append("learning rate (no training history, and the learning-rate probe was not run)")
    elif optimizer is not None:
        skipped.append("the given optimizer's learning rate (the learning-rate probe was not run)")

    if probe_fit:
        sub = subset(n, PROBE_ROWS, rng)
        run(probe_capacity, net, Xv[backend.xp.asarray(sub)], y_arr[sub], loss, seed)
    else:
        skipped.append("capacity (the capacity probe was not run)")
    return Diagnosis(findings, checks, skipped)


class DoctorCallback(Callback):
    """The doctor during training: warns as soon as the run goes wrong, and examines the network at the end.

    Pass it to fit: ``net.fit(X, y, callbacks=[dn.DoctorCallback(X, y)])``.
    (``fit(doctor=True)`` is gone: training sits below the doctor in the
    package and does not call it; the callback is the way.)

    After each epoch it judges the run so far by the learning-rate rule
    (see ``help(dialnet.doctor)``): a loss that explodes, rises, oscillates
    or gives back its progress, or a divergence that ``on_divergence="halve"``
    recovered from, raises a :class:`DoctorWarning` at once. When training
    ends, also by ``on_divergence="stop"``, it runs :func:`doctor` on the
    network and the run's History and warns once per new finding. With
    ``on_divergence="raise"`` (fit's default) a divergence ends fit with a
    ``DivergenceError`` before any callback runs: catch it and pass it on,
    ``dn.doctor(net, X, y, history=error)``.

    Parameters
    ----------
    X, y : array-like
        Training data to examine at the end (a sample is enough).
    probe : bool
        Also run the capacity probe at the end (trains two copies). The
        run's own history judges the learning rate, so there is no
        learning-rate probe.
    warn : bool
        Emit ``warnings.warn(..., DoctorWarning)`` per finding.
    seed, max_samples :
        As for :func:`doctor`.

    Attributes
    ----------
    diagnosis : Diagnosis or None
        The full diagnosis, after training ends.
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
        self._baseline = None

    def on_train_begin(self, net, history):
        self.diagnosis = None
        self._warned = set()
        try:
            loss = get_loss(net.loss) if net.loss else net.default_loss()
            X = net._check_X(self.X)
            Y = loss.prepare(np.asarray(backend.to_numpy(self.y)), X.shape[0], net.n_outputs, net.dtype)
            self._baseline = baseline_losses(loss, Y, net.n_outputs)
        except DialnetError:  # data the doctor cannot read: the end-of-training check will say so
            self._baseline = None

    def _emit(self, finding):
        if self.warn and finding.code not in self._warned:
            warnings.warn(f"dialnet doctor: {finding.title}. {finding.detail}. Fix: {finding.fix}", DoctorWarning, stacklevel=4)
        self._warned.add(finding.code)

    def on_epoch_end(self, epoch, logs, net):
        if "learning_rate_too_high" in self._warned or not isinstance(net.history, History):
            return False
        hist = net.history
        found, _ = check_loss_curve(hist.history.get("loss", ()), hist.history.get("lr"), baseline=self._baseline,
                                    divergences=hist.divergences)
        for f in found:
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


__all__ = [
    # the thresholds, re-exported from the modules that define them (each with its reason there)
    "ABOVE_UNINFORMED", "EXPLODE_FACTOR", "FEATURE_SPREAD", "FIT_GAP", "FITS", "GRADIENT_RATIO", "GRADIENT_ROWS",
    "IMBALANCE_RATIO", "INPUT_RMS_HIGH", "INPUT_RMS_LOW", "LAYER_FLAT_SHARE", "LOSS_GIVEN_BACK", "LOSS_OSCILLATION",
    "LR_PROBE_EPOCHS", "LR_PROBE_ROWS", "MIN_EPOCHS", "NOISE_SHARE", "PLATEAU_EPOCHS", "PLATEAU_GAIN", "PROBE_EPOCHS",
    "PROBE_ROWS", "STUCK_LAYER_SHARE", "WIDE_MIN_UNITS", "WIDEN",
    "Baseline",
    "Diagnosis",
    "DoctorCallback",
    "DoctorWarning",
    "Finding",
    "RunRecord",
    "baseline_losses",
    "check_classes",
    "check_gradients",
    "check_inputs",
    "check_loss_curve",
    "check_units",
    "clean_history",
    "doctor",
    "probe_capacity",
    "probe_learning_rate",
    "read_run",
    "stored_history",
    "stored_run",
]

