"""Synchronous data-parallel SGD: every rank trains a bitwise-equal replica on its rows of each global batch.

The fit loop (:mod:`dialnet.train.loop`) keeps its shape; where a
:class:`DataParallel` is attached it asks it for three things:

- **the epoch's rows** (:meth:`DataParallel.plan_epoch`): every rank draws
  the same shuffle from the same seed, so all agree on the global batches
  (``batch_size`` is the global batch, as in a single process). With
  ``distributed=True`` every rank holds all rows and takes an even,
  contiguous part of each global batch; with ``distributed="sharded"``
  each rank holds only its own row range (ranks in order make up the data
  set) and computes the rows of each global batch that it owns, so no row
  ever moves between machines;
- **one step** (:meth:`DataParallel.step`): backprop on the local rows,
  the gradient scaled by ``local rows / global rows`` (weights with
  ``sample_weight``), one ``Allreduce`` (SUM) of the single flat gradient
  array and one of the batch's loss (with the signals any rank caught):
  every rank then holds the gradient of the global batch's mean loss and
  applies the identical update (the replicas' digests are compared after
  every epoch);
- **reduced values** for every decision: the loss is reduced every step
  (the divergence guard), the running accuracy and certainty are exact
  integer sums reduced at the end of an epoch, sharded validation data is
  reduced too, so early stopping, target certainty and the schedules see the
  same numbers on every rank and every rank stops at the same step.

Rank 0 alone prints, shows progress and writes checkpoints (and, in the
CLI, the model); it also reads a checkpoint to resume from and hands it to
the others, so the files need not be on a shared disk.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..core.layers import Dropout
from ..errors import ConfigError
from .agreement import check_same, describe, digest
from .comm import DistributedError, world

MODES = ("replicated", "sharded")
_METRIC_KEYS = ("rows", "correct", "certainty_units")


def start(distributed, net, optimizer=None):
    """The :class:`DataParallel` for fit's ``distributed=`` argument, or None for an ordinary run.

    ``distributed``: False/None; True or ``"replicated"`` (every rank is
    given all rows); ``"sharded"`` (every rank is given its own row range);
    or an mpi4py communicator (replicated, over that communicator). A world
    of one process is an ordinary run.
    """
    mode, comm = "replicated", True
    if isinstance(distributed, str):
        if distributed not in MODES:
            raise ConfigError(
                f"unknown distributed mode {distributed!r}",
                expected="True, 'replicated' or 'sharded'",
                got=repr(distributed),
                fix="distributed=True when every rank loads all rows, 'sharded' when each rank loads its own rows",
            )
        mode = distributed
    elif distributed is None or distributed is False:
        return None
    elif distributed is not True:
        comm = distributed
    w = world(comm)
    if w is None:
        return None
    if backend.name != "numpy":
        raise DistributedError(
            "distributed training runs on the numpy backend",
            expected="backend 'numpy'",
            got=f"backend {backend.name!r}",
            fix="leave the backend (device) at its default for a distributed run",
        )
    if getattr(optimizer, "name", None) == "lbfgs":
        raise DistributedError(
            "L-BFGS is not data-parallel in dialnet",
            expected="a mini-batch optimizer (adam, sgd, adamw, rmsprop) with distributed training",
            got="optimizer 'lbfgs'",
            fix="train with optimizer='adam' when distributed, or with L-BFGS in one process",
        )
    if any(isinstance(layer, Dropout) and layer.p > 0 for layer in net.layers):
        raise DistributedError(
            "dropout is not supported in distributed training",
            expected="a network without dropout layers",
            got="a Dropout layer with p > 0",
            fix="leave dropout out (or set it to 0) for a distributed run, or train in one process",
        )
    return DataParallel(w, mode)


def _root_only(callback):
    """A callback that writes a file (it has a ``path``: ModelCheckpoint, CSVLogger) does nothing on ranks other than 0.

    The rank 0 copy writes; the others' methods are replaced on the instance
    (its type, which a resumed run checks, stays the same). Such callbacks
    only write: they take no decision the ranks would need to share.
    """
    if isinstance(getattr(callback, "path", None), (str, bytes)) or hasattr(getattr(callback, "path", None), "__fspath__"):
        callback.on_train_begin = lambda net, history: None
        callback.on_epoch_end = lambda epoch, logs, net: False
        callback.on_train_end = lambda net, history: None


def _part(n, size, rank):
    """Where rank ``rank``'s part of ``n`` rows starts, and how many it gets (the first ``n % size`` get one more)."""
    q, extra = divmod(n, size)
    return rank * q + min(rank, extra), q + (rank < extra)


class DataParallel:
    """One rank's side of a data-parallel run (see the module docstring).

    Attributes
    ----------
    world : World
        ``world.rank``, ``world.size``, ``world.is_root``.
    mode : {"replicated", "sharded"}
    n : int
        Rows in the whole training set (all shards).
    bounds : ndarray of int
        This epoch's step ``j`` trains local rows ``bounds[j]:bounds[j + 1]``
        of the epoch's training order.
    batch_weight : ndarray of float64
        The global batch of each step: its rows (or summed sample weights).
    """

    def __init__(self, world, mode="replicated"):
        self.world = world
        self.mode = mode
        self.trainer = None
        self.n = self.offset = self.n_local = 0
        self.bounds = self.batch_weight = self.positions = None

    @property
    def is_root(self) -> bool:
        return self.world.is_root

    @property
    def sharded(self) -> bool:
        return self.mode == "sharded"

    # ------------------------------------------------------------ the start

    def agree_seed(self, seed):
        """The seed every rank uses: the given one, or one rank 0 drew when none was given."""
        if seed is None:
            seed = self.world.share(int(np.random.SeedSequence().entropy % 2**63) if self.is_root else None)
        return seed

    def check_agreement(self, arguments: dict, net, X, Y, W, validation) -> None:
        """Compare fit's ``arguments``, the network and the data across ranks (a DistributedError names the first
        difference), then give every rank rank 0's dials."""
        Xv, Yv, Wv = validation
        skip = ("net", "X", "y", "validation_data", "sample_weight", "verbose", "progress", "distributed")
        options = {k: v for k, v in arguments.items() if k not in skip}
        items = {f"option {k}": describe(v) for k, v in sorted(options.items())}
        items["the network"] = describe([{"type": layer.name, **layer.config()} for layer in net.layers]) + f" {net.dtype}"
        items["the distributed mode"] = self.mode
        if self.sharded:  # each rank has its own rows: compare their kind, not their values
            items["the training inputs"] = f"columns {X.shape[1:]} {X.dtype}"
            items["the training targets"] = f"columns {Y.shape[1:]} {Y.dtype}"
            items["the sample weights"] = "given" if W is not None else "none"
            items["the validation data"] = "none" if Xv is None else f"columns {Xv.shape[1:]} {Xv.dtype}"
            items["whether the validation shard has rows"] = "none given" if Xv is None else str(Xv.shape[0] > 0)
        else:
            items["the training inputs"] = f"{X.shape} {X.dtype} {digest(X)}"
            items["the training targets"] = f"{Y.shape} {Y.dtype} {digest(Y)}"
            items["the sample weights"] = digest(W)
            items["the validation data"] = digest(Xv, Yv, Wv)
        check_same(self.world, items)  # first: every check below then fails alike on every rank
        if self.sharded and options.get("validation_split"):
            raise DistributedError(
                "validation_split cannot hold out rows of sharded data the same way on every rank",
                expected="validation_data=(X_val_shard, y_val_shard) with distributed='sharded'",
                got=f"validation_split={options['validation_split']!r}",
                fix="read a validation shard on every rank and pass it as validation_data",
            )
        if not self.is_root:
            for cb in options.get("callbacks") or []:
                _root_only(cb)
        params = net.parameters()
        for p in [params.flat] if params.flat is not None else params:
            self.world.broadcast(p)

    def run_info(self, info: dict) -> dict:
        """The data fingerprint a checkpoint stores: the whole data set's, not one shard's."""
        if not self.sharded:
            return info
        infos = self.world.gather(info)
        merged = dict(info)
        merged["n_samples"] = sum(i["n_samples"] for i in infos)
        merged["n_validation"] = None if info["n_validation"] is None else sum(i["n_validation"] for i in infos)
        merged["fingerprint"] = digest(np.frombuffer("".join(i["fingerprint"] for i in infos).encode(), dtype=np.uint8))
        return merged

    def attach(self, trainer) -> None:
        """Lay out the run's rows for ``trainer`` (a ``dialnet.train.loop._Trainer``) and take over its counts."""
        self.trainer = trainer
        size, rank, bs = self.world.size, self.world.rank, trainer.batch_size
        self.n_local = trainer.n
        if self.sharded:
            counts = self.world.gather(self.n_local)
            self.offset, self.n = sum(counts[:rank]), sum(counts)
        else:
            self.offset, self.n = 0, self.n_local
        n, n_steps = self.n, -(-self.n // bs)
        self.batch_rows = np.full(n_steps, bs, dtype=np.float64)
        self.batch_rows[-1] = n - (n_steps - 1) * bs
        self.batch_weight = self.batch_rows
        if not self.sharded:  # my part of every global batch: the same positions every epoch
            lo, part = _part(bs, size, rank)
            full = n // bs
            positions = [(np.arange(full)[:, None] * bs + lo + np.arange(part)).ravel()]
            counts = [np.full(full, part)]
            if n % bs:
                lo, last = _part(n % bs, size, rank)
                positions.append(full * bs + lo + np.arange(last))
                counts.append([last])
            self.positions = np.concatenate(positions).astype(np.int64)
            self.bounds = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
            self.local_rows = int(self.positions.size)
        else:
            self.local_rows = self.n_local
        trainer.n_steps = n_steps
        self.interrupt = trainer.interrupt = AgreedInterrupt(trainer.interrupt)
        if trainer.W is None:
            trainer.weight_total = n
        elif self.sharded:
            trainer.weight_total = self.world.sum_scalar(float(trainer.W.sum(dtype=np.float64)))
        net = trainer.net
        self.backprop, self.loss = net._backprop, trainer.loss
        flat = trainer.grads.flat
        self.grad_parts = [flat] if flat is not None else list(trainer.grads)
        self.no_rows = backend.xp.empty((0, net.n_outputs), dtype=net.dtype)
        self.pair = np.zeros(3, dtype=np.float64)  # the batch's loss sum; ranks that caught SIGINT, SIGTERM

    # ------------------------------------------------------------ an epoch

    def plan_epoch(self, rng, shuffle):
        """The epoch's training order of this rank's rows (indices into its arrays); sets ``bounds``.

        Draws the same permutation of all ``n`` rows as a single process
        would (``rng.permutation(n)``, only when shuffling), so the global
        batches are the single process's batches.
        """
        n, bs = self.n, self.trainer.batch_size
        order = rng.permutation(n) if shuffle else np.arange(n)
        if self.sharded:
            mine = np.flatnonzero((order >= self.offset) & (order < self.offset + self.n_local))
            local = order[mine] - self.offset
            self.bounds = np.concatenate([[0], np.cumsum(np.bincount(mine // bs, minlength=len(self.batch_rows)))])
        else:
            local = order[self.positions]
        W = self.trainer.W
        if W is not None:
            step_of_row = np.repeat(np.arange(len(self.batch_rows)), np.diff(self.bounds))
            if self.sharded:
                sums = np.bincount(step_of_row, weights=backend.to_numpy(W)[local].astype(np.float64),
                                   minlength=len(self.batch_rows))
                self.batch_weight = self.world.sum_(np.ascontiguousarray(sums))
            else:
                every = np.arange(n) // bs
                self.batch_weight = np.bincount(every, weights=backend.to_numpy(W)[order].astype(np.float64),
                                                minlength=len(self.batch_rows))
        trainer = self.trainer
        if trainer.step:  # resumed in the middle of this epoch: the running metrics continue after my rows so far
            trainer.metrics.load_state(trainer.metrics.state(), int(self.bounds[trainer.step]))
        return local

    def row_offset(self, step) -> int:
        """How many of this rank's rows the epoch's first ``step`` steps trained on."""
        return int(self.bounds[step])

    def step(self, j):
        """Step ``j`` of the epoch on every rank: ``(global batch loss, local outputs, global batch weight)``.

        Leaves the gradient of the global batch's (weighted) mean loss in the
        network's gradient arrays, the same bits on every rank.
        """
        a, b = int(self.bounds[j]), int(self.bounds[j + 1])
        whole = float(self.batch_weight[j])
        if b > a:
            Xs, Ys, Ws = self.trainer.order[:3]
            if Ws is None:
                value, P = self.backprop(Xs[a:b], Ys[a:b], self.loss, True)
                mine = float(b - a)
            else:
                wb = Ws[a:b]
                value, P = self.backprop(Xs[a:b], Ys[a:b], self.loss, True, wb)
                mine = float(wb.sum())
            if mine != whole:
                scale = mine / whole if whole > 0 else 0.0
                for g in self.grad_parts:
                    g *= scale
            part = value * mine
        else:  # none of this global batch's rows are mine
            for g in self.grad_parts:
                g.fill(0)
            part, P = 0.0, self.no_rows
        for g in self.grad_parts:
            self.world.sum_(g)
        pair = self.pair
        guard = self.interrupt.guard
        caught = getattr(guard, "signal_name", None) or "SIGINT"
        pair[0], pair[1], pair[2] = part, float(guard.hit and caught != "SIGTERM"), float(guard.hit and caught == "SIGTERM")
        self.world.sum_(pair)
        if pair[1] or pair[2]:
            self.interrupt.hit = True
            self.interrupt.agreed_signal = "SIGTERM" if pair[2] else "SIGINT"
        return (float(pair[0]) / whole if whole > 0 else 0.0), P, whole

    def end_epoch(self, metrics, params) -> None:
        """The running metrics summed over the ranks (exact integers); the replicas checked to be equal."""
        local = metrics.state()
        metrics.load_state(dict(zip(_METRIC_KEYS, self.world.sum_ints([local[k] for k in _METRIC_KEYS]))), metrics.offset)
        self.check_replicas(params)

    def check_replicas(self, params) -> None:
        """A DistributedError if the ranks' dials are not the same bits (they must be, step after step)."""
        mine = digest(*params)
        everyone = self.world.gather(mine)
        bad = [r for r, d in enumerate(everyone) if d != everyone[0]]
        if bad:
            raise DistributedError(
                "the replicas of the network drifted apart",
                expected="the same dials on every rank after every step",
                got=f"rank(s) {', '.join(map(str, bad))} differ from rank 0",
                fix="make sure every rank runs the same dialnet, numpy and BLAS (the same environment on every "
                    "machine), and report this if they do",
            )

    def combine_validation(self, logs: dict, rows: int, weights=None) -> dict:
        """Sharded validation data: each rank's means -> the means over all ranks' rows (replicated: as is).

        The loss is a mean over rows (or sample weights), and so are accuracy
        and certainty: each is summed back from its rank's mean and count.
        """
        if not self.sharded:
            return logs
        keys = sorted(logs)
        weight = float(rows if weights is None else weights.sum(dtype=np.float64))
        parts = np.array([logs[k] * (weight if k == "loss" or weights is not None else rows) for k in keys] + [weight, rows],
                         dtype=np.float64)
        self.world.sum_(parts)
        total_weight, total_rows = parts[-2], parts[-1]
        return {k: float(v / (total_weight if k == "loss" or weights is not None else total_rows)) for k, v in zip(keys, parts)}

    # ------------------------------------------------------------ checkpoints

    def load_checkpoint(self, path, load):
        """``load(path)`` on rank 0, its result (or its error) on every rank: the file need only be on rank 0's disk."""
        return self.world.root_does(load, path)

    def after_resume(self, trainer) -> None:
        """A resumed epoch's running metrics so far are the sum over all ranks: rank 0 holds it, the others start at 0."""
        if not self.is_root:
            trainer.metrics.load_state(None, 0)

    def on_root(self, trainer, save):
        """``save(trainer)`` on rank 0 with the running metrics summed over the ranks; its result (or what it
        raised, e.g. TrainingInterrupted after writing the checkpoint) on every rank."""
        metrics = trainer.metrics
        local, offset = metrics.state(), metrics.offset
        summed = dict(zip(_METRIC_KEYS, self.world.sum_ints([local[k] for k in _METRIC_KEYS])))

        def write():
            metrics.load_state(summed, offset)
            try:
                return save(trainer)
            finally:
                metrics.load_state(local, offset)

        return self.world.root_does(write)


class AgreedInterrupt:
    """The fit loop's Ctrl-C/SIGTERM guard in a distributed run: a signal caught on any rank stops them all.

    The wrapped guard (``dialnet.train.resume.SigintGuard``) notes a signal
    on its own rank; :meth:`DataParallel.step` sums that note over the ranks
    with the loss, so ``hit`` turns True on every rank after the same step
    and rank 0 writes the checkpoint before all of them stop. (Slurm sends
    SIGTERM to every task before a time limit; ``mpirun`` passes SIGTERM on.)
    """

    def __init__(self, guard):
        self.guard = guard
        self.hit = False
        self.agreed_signal = None

    @property
    def signal_name(self):
        """SIGTERM if any rank caught one, else SIGINT: the same on every rank."""
        return self.agreed_signal

    def __enter__(self):
        self.guard.__enter__()
        return self

    def __exit__(self, *exc):
        return self.guard.__exit__(*exc)
