"""The fit loop: mini-batch gradient descent with history, callbacks and stopping rules.

:func:`fit` checks its arguments once and hands a :class:`_Trainer` the
validated arrays; the trainer's hot loop does per step only forward, loss,
backward, a finiteness check of the loss, the running metrics and the
update. Around it, in their own modules:

- :mod:`~dialnet.train.callbacks`: History, Callback, EarlyStopping and the
  Keras-style ModelCheckpoint, CSVLogger, LearningRateScheduler;
- :mod:`~dialnet.train.progress`: what ``verbose`` shows (a live bar, one
  line per epoch, or a notebook display);
- :mod:`~dialnet.train.lbfgs`: ``optimizer="lbfgs"`` runs full-batch
  L-BFGS-B instead of the mini-batch loop, with the same epoch end;
- :mod:`~dialnet.train.metrics`: the running accuracy and certainty, and
  the evaluation of the validation data after each epoch;
- :mod:`~dialnet.train.divergence`: when the loss (checked every step) or
  the weights (checked every epoch and before every checkpoint) stop being
  finite, the epoch is replayed from an in-memory snapshot to the exact bad
  step; the network keeps the weights from before it, and ``on_divergence``
  raises :class:`~dialnet.errors.DivergenceError`, stops with a
  :class:`~dialnet.errors.DivergenceWarning`, or halves the learning rate
  and restarts the epoch;
- :mod:`~dialnet.train.resume`: checkpoints every ``checkpoint_every`` steps
  (or every epoch), ``resume=path`` to the same bits, Ctrl-C.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import backend
from ..core.layers import Dense, Dropout, reuse_buffer
from ..core.losses import check_sample_weight, get_loss
from ..distributed import parallel as data_parallel
from ..errors import ConfigError, DataError, InvalidValueError, ShapeError, check_lr, check_positive_int, check_seed, type_name
from ..files import checkpoint as ckpt
from . import compiled as engines, divergence, lbfgs, resume as resuming
from .callbacks import Callback, EarlyStopping, History, check_callbacks, class_weights  # noqa: F401  (History: the old path)
from .metrics import CLASS_TASKS, RunningMetrics, evaluate_network, evaluate_prepared  # noqa: F401
from .optimizers import Adam, get_optimizer
from .progress import check_verbose, make_display
from .schedules import get_schedule

ON_DIVERGENCE = ("raise", "stop", "halve")


def fit(
    net,
    X,
    y,
    loss=None,
    optimizer=None,
    lr=None,
    epochs=20,
    batch_size=32,
    validation_data=None,
    validation_split=None,
    shuffle=True,
    seed=None,
    target_certainty=None,
    early_stopping=None,
    callbacks=None,
    progress=False,
    lr_schedule=None,
    l2=0.0,
    on_divergence="raise",
    divergence_retries=8,
    checkpoint=None,
    checkpoint_every=None,
    resume=None,
    sample_weight=None,
    class_weight=None,
    verbose=None,
    distributed=None,
    device=None,
    engine=None,
):
    """Train ``net`` on ``(X, y)`` by mini-batch gradient descent with backpropagation.

    Parameters
    ----------
    net : Network
        Trained in place (``net.fit(X, y, ...)`` passes itself).
    X : array-like of shape (n_samples, n_inputs)
        The inputs, one row per sample.
    y : array-like
        Integer class labels ``(n_samples,)``, or target rows ``(n_samples,
        n_outputs)`` (one-hot or probabilities, 0/1 per label, or numbers).
    loss : str or Loss, optional
        Default: cross-entropy for a softmax output, binary cross-entropy
        for a sigmoid yes/no output, squared error otherwise.
    optimizer : str or Optimizer, optional
        Default ``Adam(lr=1e-3)``; a name ('sgd', 'adam', 'adamw',
        'rmsprop') is built with ``lr``. ``'lbfgs'`` (or
        :class:`~dialnet.train.lbfgs.LBFGS`) trains full-batch with scipy's
        L-BFGS-B, ``epochs`` then counting its iterations (no ``batch_size``,
        schedule, dropout or checkpoints).
    lr : float, optional
        Learning rate for an optimizer given by name (or the default Adam).
    epochs : int
        Passes over the data.
    batch_size : int
        Samples per gradient step (the last step of an epoch may have fewer).
    validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
        Measured after every epoch: ``val_loss``, ``val_accuracy``,
        ``val_certainty`` in the history.
    validation_split : float, optional
        Hold out this fraction of the (shuffled) rows as validation data instead.
    shuffle : bool
        Reshuffle the rows every epoch.
    seed : int, optional
        Seeds the shuffles and the validation split (same seed, same bits).
    target_certainty : float, optional
        Stop once the mean certainty given to the true class reaches this
        value, e.g. 0.9: on the validation data if there is any, else the
        running mean over the epoch's training batches.
    early_stopping : int or EarlyStopping, optional
        Patience in epochs on validation loss (training loss if there is no
        validation data); the best weights are restored.
    callbacks : list of Callback, optional
        Called at the start and end of training and after every epoch; e.g.
        ``dialnet.DoctorCallback(X, y)`` watches for training problems, and
        the Keras-style ``EarlyStopping``, ``ModelCheckpoint``, ``CSVLogger``,
        ``LearningRateScheduler``; a learning-rate Schedule (such as
        ``ReduceLROnPlateau()``) in the list is used as ``lr_schedule``.
    progress : bool
        The old name of ``verbose=1``.
    lr_schedule : str or Schedule, optional
        'step', 'exponential', 'cosine', 'plateau' or a Schedule instance.
    l2 : float
        L2 penalty: ``l2 * W`` is added to each weight gradient.
    on_divergence : {"raise", "stop", "halve"}
        What to do when the loss or a gradient becomes NaN or infinite. In
        every case the network is first set back to its weights from before
        the step where that happened. "raise" (default) raises
        ``DivergenceError``; "stop" ends training and returns the History
        with ``stop_reason`` saying why (and warns ``DivergenceWarning``);
        "halve" halves the learning rate and restarts that epoch, at most
        ``divergence_retries`` times, then raises.
    divergence_retries : int
        How many halvings "halve" may make.
    checkpoint : str or path, optional
        Write a checkpoint here (atomically) every ``checkpoint_every``
        steps, at the end of training, and on Ctrl-C (which then raises
        ``TrainingInterrupted``, a KeyboardInterrupt, after the current step).
    checkpoint_every : int, optional
        In optimizer steps (mini-batches), counted over the whole run; by
        default a checkpoint is written at the end of every epoch.
    resume : str or path, optional
        Continue from this checkpoint: the weights, optimizer state, random
        generators, schedule, early stopping and history come from it (``seed``
        is not used). Pass the same data and settings as the run that wrote it
        (checked); the result has the same bits as a run never interrupted.
        A checkpoint of a finished run returns its History at once.
    sample_weight : array-like of shape (n_samples,), optional
        How much each row counts (numbers >= 0): every batch's loss is the
        weighted mean ``sum_i w_i l_i / sum_i w_i``, and so is the epoch's
        ``loss``; accuracy and certainty are weighted means too, on the
        training and on the validation data (given weights there).
    class_weight : "balanced" or dict, optional
        Weights per class for integer class labels (or one-hot rows),
        multiplying ``sample_weight``: ``{class_index: weight}``, or
        "balanced", ``n_rows / (n_classes * count(class))``, so that every
        class counts as much as the others in the loss and the metrics.
    verbose : {0, 1, 2}, optional
        0 silent; 1 a live bar on a terminal, a text display in a notebook,
        one plain line per epoch when output is not a terminal; 2 one line
        per epoch (epoch i/N, loss, metrics, validation metrics, elapsed).
        Default: ``progress``.
    distributed : bool or {"replicated", "sharded"}, optional
        Data-parallel training on MPI (``mpirun -n N python script.py``; extra
        ``dialnet[distributed]``): True when every rank passes all rows,
        "sharded" when each passes its own row range (ranks in order make up
        the data). ``batch_size`` is the global batch; the ranks keep
        bitwise-equal networks, rank 0 alone shows progress and writes
        checkpoints. A world of one process is an ordinary run. See
        :mod:`dialnet.distributed`.
    device : {"cpu", "cuda"}, optional
        Train there: the network's dials move first (``net.to(device)``),
        then the data, once, when it is checked. ``"cuda"`` needs CuPy and
        an NVIDIA GPU (``pip install 'dialnet[gpu]'``).
    engine : {"auto", "numpy", "compiled"}, optional
        How each step runs: "numpy" through the layers, losses and optimizers
        (the reference path); "compiled" as one compiled call per step (numba:
        ``pip install 'dialnet[fast]'``; Dense stacks with sigmoid, tanh, relu,
        leaky_relu or identity, a softmax + cross-entropy, sigmoid + binary
        cross-entropy or squared-error output, SGD/Adam/AdamW/RMSprop, no
        dropout); "auto" the compiled step where it applies. Default:
        ``$DIALNET_ENGINE``, else "auto". ``history.engine`` says which ran.
        See :mod:`dialnet.train.compiled`.

    Returns
    -------
    History
        Per-epoch ``loss``, ``accuracy``, ``certainty`` (running means over the
        epoch's batches, as trained on) and the ``val_`` metrics, the
        learning rate, and why training stopped.
    """
    arguments = dict(locals())  # compared across ranks in a distributed run
    loss = get_loss(loss) if loss is not None else net.default_loss()
    lr, seed = check_lr(lr), check_seed(seed)
    if optimizer is None:
        optimizer = Adam(lr=lr if lr is not None else 1e-3)
    elif isinstance(optimizer, lbfgs.LBFGS) or (isinstance(optimizer, str) and optimizer.lower() == "lbfgs"):
        optimizer = optimizer if isinstance(optimizer, lbfgs.LBFGS) else lbfgs.LBFGS()
    else:
        optimizer = get_optimizer(optimizer, lr=lr)
    full_batch = isinstance(optimizer, lbfgs.LBFGS)
    engine = engines.check_engine(engine)
    verbose = check_verbose(verbose, progress)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size", fix="pass e.g. batch_size=32")
    l2 = float(l2)
    if not math.isfinite(l2) or l2 < 0:
        raise InvalidValueError("l2 must be >= 0", expected="a number >= 0", got=repr(l2), fix="e.g. l2=1e-4")
    if target_certainty is not None:
        target_certainty = float(target_certainty)
        if not 0.0 < target_certainty <= 1.0:
            raise InvalidValueError(
                "target_certainty must be in (0, 1]",
                expected="a certainty such as 0.9",
                got=repr(target_certainty),
                fix="pass target_certainty=0.9 to stop at 90% mean certainty",
            )
    if on_divergence not in ON_DIVERGENCE:
        raise ConfigError(
            f"unknown on_divergence {on_divergence!r}",
            expected="one of " + ", ".join(repr(v) for v in ON_DIVERGENCE),
            got=repr(on_divergence),
            fix="use on_divergence='halve' to retry with a smaller learning rate, or leave it out",
        )
    if isinstance(divergence_retries, bool) or not isinstance(divergence_retries, (int, np.integer)) or divergence_retries < 0:
        raise InvalidValueError(
            "divergence_retries must be a whole number >= 0",
            expected="an int >= 0",
            got=repr(divergence_retries),
            fix="e.g. divergence_retries=5",
        )
    if checkpoint_every is not None:
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
        if checkpoint is None:
            raise ConfigError(
                "checkpoint_every needs a checkpoint path",
                expected="checkpoint='run.ckpt.safetensors' with checkpoint_every",
                got="checkpoint_every without checkpoint",
                fix="pass checkpoint=PATH too",
            )
    checkpoint = resuming.check_path(checkpoint, "checkpoint")
    resume = resuming.check_path(resume, "resume")
    if full_batch and (checkpoint is not None or distributed):
        raise _lbfgs_refuses("checkpoint" if checkpoint is not None else "distributed")

    dist = data_parallel.start(distributed, net, optimizer)
    if dist is not None:
        # rank 0 alone reports, one line per epoch: under mpirun a rank's output is a pseudo-terminal even when the
        # job's output goes to a log file, where a live bar would leave escape codes
        seed, verbose = dist.agree_seed(seed), (min(2 * verbose, 2) if dist.is_root else 0)
    state = arrays = None
    if resume is not None:
        stored, state, arrays = ckpt.load(resume) if dist is None else dist.load_checkpoint(resume, ckpt.load)
        if full_batch:  # after the file's own checks: a missing or wrong file says so first
            raise _lbfgs_refuses("resume")
        resuming.check_same_network(net, stored, resume)
        rng = ckpt.make_generator(state["initial_rng_state"], resume, "the shuffle generator")
    else:
        rng = np.random.default_rng(seed)
    initial_rng_state = ckpt.generator_state(rng)

    if device is not None:
        net.to(device)
    X = net._check_X(X)
    Y = loss.prepare(y, X.shape[0], net.n_outputs, net.dtype)
    W = check_sample_weight(sample_weight, X.shape[0], net.dtype)
    net.task = _infer_task(net, loss, y)
    net.loss = loss.name
    if class_weight is not None:
        W = class_weights(class_weight, Y, W, net.task, net.n_outputs, net.dtype)
    Xv = Yv = Wv = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ShapeError(
                "validation_data must be a pair (or a triple with weights)",
                expected="(X_val, y_val) or (X_val, y_val, sample_weight_val)",
                got=type_name(validation_data),
                fix="pass validation_data=(X_val, y_val)",
            )
        Xv = net._check_X(validation_data[0], "validation X")
        Yv = loss.prepare(validation_data[1], Xv.shape[0], net.n_outputs, net.dtype)
        if len(validation_data) == 3:
            Wv = check_sample_weight(validation_data[2], Xv.shape[0], net.dtype)
    elif validation_split:
        X, Y, W, Xv, Yv, Wv = _split_validation(X, Y, W, float(validation_split), rng)
    if target_certainty is not None and net.task not in CLASS_TASKS:
        raise ConfigError(
            "target_certainty needs a classification task",
            expected="class labels with a softmax or sigmoid output",
            got=f"task {net.task!r}",
            fix="leave target_certainty out for regression",
        )

    callbacks, schedule = check_callbacks(callbacks, get_schedule(lr_schedule))
    if early_stopping is not None and early_stopping is not False:
        callbacks.append(early_stopping if isinstance(early_stopping, EarlyStopping) else EarlyStopping(patience=early_stopping))
    if schedule is not None and not full_batch:
        schedule.attach(optimizer)

    if dist is not None:
        dist.check_agreement(arguments, net, X, Y, W, (Xv, Yv, Wv))
    history = History()
    net.history = history
    for cb in callbacks:
        cb.set_optimizer(optimizer)
        cb.on_train_begin(net, history)

    run_info = None
    if checkpoint is not None or resume is not None:
        run_info = resuming.run_info(X, Y, Xv, Yv, batch_size, shuffle, loss, l2, W, Wv)
        run_info = run_info if dist is None else dist.run_info(run_info)
    trainer = _Trainer(
        net, loss, optimizer, schedule, callbacks, history, rng, X, Y, W, (Xv, Yv, Wv),
        epochs=epochs, batch_size=batch_size, shuffle=bool(shuffle), l2=l2,
        target_certainty=target_certainty, on_divergence=on_divergence,
        divergence_retries=int(divergence_retries), checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, run_info=run_info,
        initial_rng_state=initial_rng_state, progress=verbose,
    )
    if dist is not None:
        trainer.dist = dist
        dist.attach(trainer)
    if not full_batch:
        trainer.compiled = engines.choose(engine, trainer)
    history.engine = "compiled" if trainer.compiled is not None else "numpy"
    history.engine_load_time = 0.0
    if full_batch:
        display = make_display(verbose, epochs)
        try:
            return lbfgs.run(trainer, display)
        finally:
            if display is not None:
                display.close()
    if resume is not None:
        resuming.load_checkpoint(trainer, stored, state, arrays, resume)
        if dist is not None:
            dist.after_resume(trainer)
        if trainer.finished:
            history.train_time = trainer.train_time
            return history
    history = trainer.run()
    if trainer.compiled is not None:
        history.engine_load_time = trainer.compiled.load_time
    return history


def _lbfgs_refuses(what):
    """L-BFGS runs one full-batch minimization: no checkpoints to resume from, no data-parallel steps."""
    return ConfigError(
        f"L-BFGS does not take {what}",
        expected=f"{what}=None with optimizer='lbfgs' (one full-batch run: no steps to checkpoint or spread over ranks)",
        got=f"{what} with an L-BFGS optimizer",
        fix=f"train with optimizer='adam' (dialnet train --optimizer adam) to use {what}",
    )


def _infer_task(net, loss, y):
    y = np.asarray(y)
    if loss.name == "cross_entropy":
        return "classification"
    if loss.name == "binary_cross_entropy":
        return "binary" if net.n_outputs == 1 else "multilabel"
    if y.ndim == 1 and net.n_outputs > 1:
        return "classification"  # labels with squared error: the classic recipe
    return "regression"


def _split_validation(X, Y, W, validation_split, rng):
    if not 0.0 < validation_split < 1.0:
        raise InvalidValueError(
            "validation_split must be between 0 and 1",
            expected="0 < validation_split < 1",
            got=repr(validation_split),
            fix="e.g. validation_split=0.1 holds out 10% of the rows",
        )
    n = X.shape[0]
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise DataError(
            "too few rows to hold some out for validation",
            expected="at least 1 validation row and 1 training row",
            got=f"{n} rows with validation_split={validation_split}",
            fix="use more data or leave validation_split out",
        )
    order = rng.permutation(n)
    val, train = order[:n_val], order[n_val:]
    if W is None:
        return X[train], Y[train], None, X[val], Y[val], None
    return X[train], Y[train], W[train], X[val], Y[val], W[val]


class _Rows:
    """The rows of ``source`` in this epoch's order (row numbers ``index``), gathered a batch at a time.

    ``rows[a:b]`` is ``source[index[a:b]]``, written into one reused buffer
    and valid until the next batch is gathered: shuffling costs a
    permutation of row numbers per epoch, not a copy of the training set.
    """

    def __init__(self, source):
        self.source, self.shape, self.index = source, source.shape, None
        self._buffers = {}

    def __getitem__(self, rows):
        if isinstance(rows, tuple):  # rows[a:b, ...]
            rows = rows[0]
        index = self.index[rows]
        out = reuse_buffer(self._buffers, "batch", (index.shape[0],) + tuple(self.shape[1:]), self.source.dtype)
        return backend.ops.take(self.source, index, axis=0, out=out)


class _Trainer:
    """The state of one training run and the loop that advances it.

    Where training stands: ``epoch`` (0-based), ``step`` (steps done in it),
    ``total`` (their summed loss, weighted by rows or sample weights),
    ``metrics`` (running accuracy and certainty), ``global_step`` (steps done
    in all). ``capture``/``restore`` take and put back all of that with the
    dials, the optimizer and the dropout generators.
    """

    def __init__(self, net, loss, optimizer, schedule, callbacks, history, rng, X, Y, W, validation, *, epochs,
                 batch_size, shuffle, l2, target_certainty, on_divergence, divergence_retries, checkpoint,
                 checkpoint_every, run_info, initial_rng_state, progress):
        self.net, self.loss, self.optimizer, self.schedule = net, loss, optimizer, schedule
        self.callbacks, self.history, self.rng = callbacks, history, rng
        self.X, self.Y, self.W = X, Y, W
        self.Xv, self.Yv, self.Wv = validation
        self.epochs, self.batch_size, self.shuffle, self.l2 = epochs, batch_size, shuffle, l2
        self.target_certainty = target_certainty
        self.on_divergence, self.divergence_retries = on_divergence, divergence_retries
        self.checkpoint, self.run_info, self.initial_rng_state = checkpoint, run_info, initial_rng_state
        self.checkpoint_every = checkpoint_every if checkpoint is not None else None
        self.progress = progress
        self.dist = None  # a DataParallel in a distributed run (dialnet.distributed.parallel)
        self.compiled = None  # a CompiledStep when the compiled engine trains (dialnet.train.compiled)
        self.params, self.grads = net.parameters(), net.gradients()
        self.weight_grads = [(d.weights, d.grad_weights) for d in net.layers if isinstance(d, Dense)]
        self.dropouts = [layer for layer in net.layers if isinstance(layer, Dropout)]
        self.n = X.shape[0]
        self.n_steps = -(-self.n // batch_size)
        self.weight_total = self.n if W is None else float(backend.xp.sum(backend.astype(W, "float64")))
        self.metrics = RunningMetrics(net.task, net.n_outputs, batch_size, net.dtype)
        self.truth = self.metrics.truth(Y) if self.metrics.active else None
        self.epoch = self.step = self.global_step = 0
        self.total = 0.0
        self.retries = 0
        self.finished = False
        self.train_time = 0.0
        self.epoch_rng_state = None
        self.epoch_started = False  # the epoch's shuffle order has been drawn
        # the state at the start of the current epoch: divergence replays and "halve" retries begin here
        self.snapshot = None
        self.resumed_snapshot = None
        self.interrupt = resuming.SigintGuard(enabled=checkpoint is not None)
        self.order = None  # this epoch's (X, Y, W, truth) in training order

    # ------------------------------------------------------------ one step

    def step_function(self, fused=True):
        """This run's step as ``step(j) -> (value, outputs, weight)``: forward, loss and backward of step ``j``.

        ``outputs`` are the network's outputs for the batch (what the running
        metrics take), ``weight`` the batch's rows or summed sample weights.
        On the compiled engine, ``fused`` makes the step turn the dials too (only
        when the loss is finite); otherwise :meth:`apply_update` does that. The
        hot loop (:meth:`_run_steps`) and the divergence replay (:meth:`run_step`)
        both run this, so a replayed step is the step that ran.
        """
        if self.dist is not None:
            return self.dist.step
        Xs, Ys, Ws, _ = self.order
        bs, n, total_of = self.batch_size, self.n, backend.total
        if self.compiled is not None:
            run, outputs, sources = self.compiled.run, self.compiled.outputs, self.compiled.sources(self.order)
            mode, full = (engines.BOTH if fused else engines.BACKPROP), outputs(self.compiled.cap)

            def compiled_step(j):
                start = j * bs
                stop = start + bs if start + bs < n else n
                value = run(sources, start, stop, mode)
                rows = stop - start
                weight = rows if Ws is None else float(total_of(Ws[start:stop]))
                return value, (full if rows == bs else outputs(rows)), weight

            return compiled_step
        backprop, loss = self.net._backprop, self.loss

        def numpy_step(j):
            start = j * bs
            stop = start + bs if start + bs < n else n  # the standard does not promise slices past the end
            Xb = Xs[start:stop, ...]  # '...': the standard's spelling of 'these rows'
            if Ws is None:
                value, P = backprop(Xb, Ys[start:stop, ...], loss, True)
                return value, P, stop - start
            wb = Ws[start:stop]
            value, P = backprop(Xb, Ys[start:stop, ...], loss, True, wb)
            return value, P, float(total_of(wb))

        return numpy_step

    def run_step(self, j):
        """Forward, loss and backward of step ``j`` of this epoch (no update); the running metrics take its outputs.

        Returns the loss value and the batch's weight (rows, or summed sample
        weights): the divergence replay's step, then :meth:`apply_update`.
        """
        value, P, weight = self.step_function(fused=False)(j)
        if self.order[3] is not None and math.isfinite(value):
            self.metrics.update(P)
        return value, weight

    def advance(self, value, weight):
        """Count a step done (after its update)."""
        self.step, self.total, self.global_step = self.step + 1, self.total + value * weight, self.global_step + 1

    def apply_update(self):
        """Turn the dials after backprop: the L2 term joins dW, then the optimizer steps.

        The hot loop and the divergence replay both call this, so a replayed
        step is bit for bit the step that ran.
        """
        if self.compiled is not None:
            self.compiled.run(self.compiled.sources(self.order), 0, 0, engines.UPDATE)
            return
        if self.l2:
            for W, dW in self.weight_grads:
                dW += self.l2 * W
        self.optimizer.step(self.params, self.grads)

    def params_finite(self) -> bool:
        """Every dial finite: one sum per array (NaN and inf survive a sum)."""
        return all(math.isfinite(float(backend.total(p))) for p in self.params)

    # ------------------------------------------------- in-memory snapshots

    def capture(self) -> dict:
        opt = self.optimizer
        return {
            "params": [backend.copy(p) for p in self.params],
            "optimizer": {k: v.copy() for k, v in opt.state_arrays().items()},
            "t": opt.t,
            "dropout": [d.rng.bit_generator.state for d in self.dropouts],
            "position": (self.step, self.total, self.global_step),
            "metrics": self.metrics.state(),
        }

    def restore(self, snap):
        for p, saved in zip(self.params, snap["params"]):
            p[...] = saved
        self.optimizer.load_state_arrays(snap["optimizer"], snap["t"])
        for d, state in zip(self.dropouts, snap["dropout"]):
            d.rng.bit_generator.state = state
        self.step, self.total, self.global_step = snap["position"]
        offset = self.step * self.batch_size if self.dist is None else self.dist.row_offset(self.step)
        self.metrics.load_state(snap["metrics"], offset)

    # ------------------------------------------------------------ the loop

    def run(self):
        history, xp = self.history, backend.xp
        X, Y, W, T = self.X, self.Y, self.W, self.truth
        sources = (X, Y, W, None if T is Y else T)  # class labels are their own truth: shuffled once
        if self.shuffle or self.dist is not None:
            rows = self.n if self.dist is None else self.dist.local_rows  # a rank trains its part of each batch
            # the inputs are read by row number, a batch gathered at a time into one buffer (no copy of the
            # training set each epoch); targets, weights and truth (a few numbers per row) are shuffled whole
            shuffled = (_Rows(X),) + tuple(
                None if a is None else xp.empty((rows,) + a.shape[1:], dtype=a.dtype) for a in sources[1:])
            self.order = shuffled[:3] + ((shuffled[1] if T is Y else shuffled[3]),)
        else:
            self.order = (X, Y, W, T)
        pairs = [(a, b) for a, b in zip(sources[1:], self.order[1:]) if a is not None]
        self.metrics.follow(self.order[3], self.order[2])
        bar = make_display(self.progress, self.epochs, self.epoch)
        started = time.perf_counter()
        stopped = history.stopped_epoch is not None  # a resumed run whose stopping rule already fired
        try:
            # overflow inside a diverging step is reported by the guard, once, not by NumPy per operation
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"), self.interrupt:
                while self.epoch < self.epochs and not stopped:
                    epoch = self.epoch
                    self.epoch_rng_state = self.rng.bit_generator.state
                    if self.dist is not None:
                        order = xp.asarray(self.dist.plan_epoch(self.rng, self.shuffle))
                        self.order[0].index = order
                        for source, shuffled in pairs:
                            backend.ops.take(source, order, axis=0, out=shuffled)
                    elif self.shuffle:
                        order = xp.asarray(self.rng.permutation(self.n))
                        self.order[0].index = order
                        for source, shuffled in pairs:
                            backend.ops.take(source, order, axis=0, out=shuffled)
                    self.epoch_started = True
                    self.snapshot = self.resumed_snapshot or self.capture()
                    self.resumed_snapshot = None
                    if not self._run_epoch():
                        break
                    stopped = self._end_epoch(epoch, bar)
                    self.epoch, self.step, self.total = epoch + 1, 0, 0.0
                    self.metrics.reset()
                    self.epoch_started = False
                    if self.checkpoint is not None and self.checkpoint_every is None:
                        self.train_time += time.perf_counter() - started
                        started = time.perf_counter()
                        self._save_checkpoint()
                    if self.interrupt.hit:
                        self._interrupted()
        finally:
            if bar is not None:
                bar.close()
            self.train_time += time.perf_counter() - started
        if history.stop_reason is None:
            history.stop_reason = f"finished {len(history.epochs)} epochs"
            if self.target_certainty is not None:
                history.stop_reason += f" without reaching target certainty {self.target_certainty:g}"
        for cb in self.callbacks:
            cb.on_train_end(self.net, history)
        history.train_time = self.train_time
        if self.checkpoint is not None:
            self.finished = True
            self._save_checkpoint()
        return history

    def _run_epoch(self) -> bool:
        """The epoch's remaining steps; False if training stopped on a divergence."""
        while True:
            try:
                self._run_steps()
                if not self.params_finite():  # e.g. +inf dials behind a saturated sigmoid leave the loss finite
                    raise divergence.Diverged(self.n_steps - 1)
                return True
            except divergence.Diverged as event:
                if not divergence.respond(self, event.upto):
                    return False

    def _save_checkpoint(self):
        if self.dist is None:
            return resuming.save_checkpoint(self)
        return self.dist.on_root(self, resuming.save_checkpoint)  # rank 0 writes, with the metrics summed

    def _interrupted(self):
        if self.dist is None:
            return resuming.interrupted(self)  # writes the checkpoint, raises TrainingInterrupted
        return self.dist.on_root(self, resuming.interrupted)  # rank 0 writes; every rank raises TrainingInterrupted

    def _checkpoint_between_steps(self, step, total, global_step):
        """A checkpoint is due, or Ctrl-C came: record where training stands, refuse non-finite dials, write.

        The hot loop calls this between two steps; on Ctrl-C (or SIGTERM)
        the write is followed by ``TrainingInterrupted``.
        """
        self.step, self.total, self.global_step = step, total, global_step
        if not self.params_finite():  # never write non-finite dials into a checkpoint
            raise divergence.Diverged(step - 1)
        if self.interrupt.hit:
            self._interrupted()
        self._save_checkpoint()

    def _run_steps(self):
        """The hot loop: a step of this run's engine (:meth:`step_function`), check the loss, running metrics, update.

        Nothing else per step. In a distributed run a step is
        :meth:`DataParallel.step` (local backprop, one Allreduce of the
        gradient, the reduced loss, which every rank sees the same) and the
        identical update follows on every rank; on the compiled engine the step
        turns the dials itself.
        """
        step_of = self.step_function(fused=True)
        update = self.apply_update if self.compiled is None else None
        track = self.metrics.update if self.order[3] is not None else None  # stages the outputs: one copy per step
        isfinite, n_steps = math.isfinite, self.n_steps
        every, interrupt = self.checkpoint_every or 0, self.interrupt  # distributed: its `hit` is agreed by all ranks
        step, total, global_step = self.step, self.total, self.global_step
        while step < n_steps:
            value, P, weight = step_of(step)
            if not isfinite(value):
                self.step, self.total, self.global_step = step, total, global_step
                raise divergence.Diverged(step)
            if track is not None:
                track(P)
            if update is not None:
                update()
            total += value * weight
            step += 1
            global_step += 1
            if (every and global_step % every == 0) or interrupt.hit:
                self._checkpoint_between_steps(step, total, global_step)
        self.step, self.total, self.global_step = step, total, global_step

    def _end_epoch(self, epoch, bar) -> bool:
        """Metrics, history, callbacks, schedule; True when a stopping rule fired."""
        net, history = self.net, self.history
        logs = {"loss": self.total / self.weight_total}
        if self.dist is not None:
            self.dist.end_epoch(self.metrics, self.params)  # the metrics summed over the ranks; replicas checked
        logs.update(self.metrics.logs())
        if self.Xv is not None:
            val = evaluate_prepared(net, self.Xv, self.Yv, self.loss, sample_weight=self.Wv)
            if self.dist is not None:
                val = self.dist.combine_validation(val, self.Xv.shape[0], self.Wv)
            logs.update({f"val_{k}": v for k, v in val.items()})
        if self.optimizer.lr is not None:
            logs["lr"] = self.optimizer.lr
        history.append(epoch, logs)
        if bar is not None:
            bar.update(epoch, logs)
        stop = False
        target = self.target_certainty
        if target is not None:
            key = "val_certainty" if "val_certainty" in logs else "certainty"
            if logs.get(key, 0.0) >= target:
                where = "validation" if key == "val_certainty" else "training"
                history.stop_reason = (
                    f"target certainty {target:g} reached at epoch {epoch + 1} "
                    f"(mean certainty of the true class {logs[key]:.3f} on {where} data)"
                )
                history.reached_target = True
                stop = True
        for cb in self.callbacks:
            if cb.on_epoch_end(epoch, logs, net) and not stop:
                history.stop_reason = getattr(cb, "reason", None) or f"stopped by {type(cb).__name__}"
                stop = True
        if self.schedule is not None:
            self.schedule.on_epoch_end(epoch, logs)
        if stop:
            history.stopped_epoch = epoch
        return stop
