"""Run under ``mpirun -n N python worker.py OUTDIR SCENARIO...``: each rank trains and saves what it got.

The tests in this folder start it and compare every rank's result with a
single-process ``fit`` on the same data (see ``dist_problems.py``). Each scenario
writes ``OUTDIR/<scenario>.rank<r>.npz`` (the dials, the history as JSON, or
the error text a rank raised).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dialnet as dn  # noqa: E402
from dialnet.distributed import DistributedError  # noqa: E402
from dist_problems import PROBLEMS, SignalAt, StopAt, shard  # noqa: E402


def save(outdir, name, rank, net=None, history=None, error=None, **extra):
    arrays = {} if net is None else {f"p{i}": p for i, p in enumerate(net.parameters())}
    meta = {"error": error, **extra}
    if history is not None:
        meta["history"] = history.history
        meta["stop_reason"] = history.stop_reason
        meta["divergences"] = [d["action"] for d in history.divergences]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(os.path.join(outdir, f"{name}.rank{rank}.npz"), **arrays)


def run(outdir, name, rank, size):
    if name in PROBLEMS:  # train on all rows (replicated) and compare with one process
        problem = PROBLEMS[name]
        net, data, kwargs = problem()
        history = net.fit(*data, **kwargs, distributed=True)
        save(outdir, name, rank, net, history)
    elif name.startswith("sharded"):  # each rank is given only its rows
        net, (X, y), kwargs = PROBLEMS[name.replace("sharded", "weighted")]()
        rows = shard(len(X), size, rank)
        Xv, yv, wv = kwargs.pop("validation_data")
        vrows = shard(len(Xv), size, rank)
        kwargs["sample_weight"] = kwargs["sample_weight"][rows]
        history = net.fit(X[rows], y[rows], validation_data=(Xv[vrows], yv[vrows], wv[vrows]), **kwargs,
                          distributed="sharded")
        save(outdir, name, rank, net, history)
    elif name == "files":  # a relative checkpoint path: each rank runs in its own folder
        folder = os.path.join(outdir, f"files.cwd{rank}")
        os.makedirs(folder)
        os.chdir(folder)
        net, data, kwargs = PROBLEMS["sgd64"]()
        history = net.fit(*data, **kwargs, checkpoint="run.ckpt.safetensors", checkpoint_every=4, distributed=True)
        save(outdir, name, rank, net, history)
        os.chdir(outdir)
    elif name == "diverge":  # a run that diverges: the guard replays, halves and retries on every rank alike
        _, (X, _), _ = PROBLEMS["sgd64"]()
        y = np.stack([X[:, 0] - X[:, 1], X[:, 2]], axis=1)
        net = dn.mlp([6, 12, 2], activation="relu", output="linear", dtype="float64", seed=9)
        history = net.fit(X * 10, y, optimizer=dn.SGD(lr=1.0), on_divergence="halve", epochs=2, batch_size=20, seed=10,
                          distributed=True)
        save(outdir, name, rank, net, history)
    elif name == "writers":  # callbacks that write files: rank 0's alone writes
        folder = os.path.join(outdir, f"writers.cwd{rank}")
        os.makedirs(folder)
        os.chdir(folder)
        net, data, kwargs = PROBLEMS["sgd64"]()
        writers = [dn.ModelCheckpoint("best.safetensors"), dn.CSVLogger("log.csv")]
        history = net.fit(*data, **kwargs, callbacks=writers, distributed=True)
        save(outdir, name, rank, net, history)
        os.chdir(outdir)
    elif name == "resume":  # stopped by an error after a mid-epoch checkpoint, resumed on rank 0's file only
        folder = os.path.join(outdir, f"resume.cwd{rank}")
        os.makedirs(folder)
        os.chdir(folder)
        settings = dict(epochs=3, checkpoint="run.ckpt.safetensors", checkpoint_every=5)
        net, data, kwargs = PROBLEMS["adam64"]()
        try:
            net.fit(*data, **{**kwargs, **settings}, callbacks=[StopAt(1)], distributed=True)
        except RuntimeError:
            pass
        net, data, kwargs = PROBLEMS["adam64"]()  # a fresh network and optimizer, as in a new process
        history = net.fit(*data, **{**kwargs, **settings}, callbacks=[StopAt(None)], resume="run.ckpt.safetensors",
                          distributed=True)
        save(outdir, name, rank, net, history)
        net, data, kwargs = PROBLEMS["adam64"]()
        settings["checkpoint"] = "whole.ckpt.safetensors"
        history = net.fit(*data, **{**kwargs, **settings}, callbacks=[StopAt(None)], distributed=True)
        save(outdir, "uninterrupted", rank, net, history)
        os.chdir(outdir)
    elif name == "sigterm":  # rank 1 alone gets SIGTERM: all ranks stop after the same step, rank 0 writes
        folder = os.path.join(outdir, f"sigterm.cwd{rank}")
        os.makedirs(folder)
        os.chdir(folder)
        settings = dict(epochs=3, checkpoint="run.ckpt.safetensors")
        net, data, kwargs = PROBLEMS["adam64"]()
        stopped = None
        try:
            net.fit(*data, **{**kwargs, **settings}, callbacks=[SignalAt(0)], distributed=True)
        except dn.errors.TrainingInterrupted as exc:
            stopped = {"epoch": exc.epoch, "step": exc.step, "checkpoint": exc.checkpoint, "signal": exc.signal_name}
        net, data, kwargs = PROBLEMS["adam64"]()
        history = net.fit(*data, **{**kwargs, **settings}, callbacks=[SignalAt(None)], resume="run.ckpt.safetensors",
                          distributed=True)
        save(outdir, name, rank, net, history, stopped=stopped)
        os.chdir(outdir)
    elif name == "shards":  # each rank reads its rows of every file kind
        from dialnet.distributed import shards  # noqa: PLC0415

        arrays = {
            "npy": np.asarray(shards.read_npy("X.npy")),
            "idx": shards.read_idx("images.idx"),
            "idx_gz": shards.read_idx("images.idx.gz"),
            "idx_f64": shards.read_idx("values.idx"),
        }
        header, cells = shards.read_csv("table.csv")
        plain_header, plain = shards.read_csv("plain.csv")
        np.savez(os.path.join(outdir, f"shards.rank{rank}.npz"), **arrays, csv=cells.astype(str),
                 plain=plain.astype(str), header=np.array(header), plain_header=np.array(plain_header is None))
    elif name == "stats":  # preprocessing fitted on the shards: the single-process constants
        from dialnet.data.preprocessing import Preprocessor  # noqa: PLC0415
        from dialnet.distributed import World, shards, stats  # noqa: PLC0415

        world = World()
        header, cells = shards.read_csv("table.csv")
        configs, scaled = {}, {}
        for scaling in ("standard", "minmax"):
            pre = Preprocessor(kind="table", scaling=scaling)
            scaled[scaling] = stats.fit_transform(world, pre, cells[:, :-1], header[:-1], dtype=np.float64)
            stats.fit_target(world, pre, cells[:, -1].astype(float))
            configs[scaling] = {"config": pre.to_config(), "notes": pre.notes}
        images = shards.read_idx("images.idx").reshape(-1, 36) / 255.0
        image = Preprocessor(kind="image", scaling="standard")
        stats.fit_transform(world, image, images)
        configs["image"] = {"config": image.to_config(), "background": stats.border_mean(world, images)}
        odd = np.array([1.5, -0.0, 7.0, np.inf, -3.25])[rank::2] if rank < 2 else np.array([])
        configs["medians"] = [stats.median(world, odd), stats.median(world, odd[:1])]
        np.savez(os.path.join(outdir, f"stats.rank{rank}.npz"), meta=np.frombuffer(json.dumps(configs).encode(), dtype=np.uint8),
                 **{f"scaled_{k}": v for k, v in scaled.items()})
    elif name.startswith("mismatch"):  # rank 1 differs: every rank must raise the same clear error
        net, (X, y), kwargs = PROBLEMS["sgd64"]()
        if name == "mismatch_option" and rank == 1:
            kwargs["batch_size"] += 1
        if name == "mismatch_data" and rank == 1:
            X = X.copy()
            X[5, 2] += 1e-9
        try:
            net.fit(X, y, **kwargs, distributed=True)
            save(outdir, name, rank, net, error=None)
        except DistributedError as exc:
            save(outdir, name, rank, error=str(exc))
    elif name == "refusals":  # what a distributed run cannot do: the same clear error on every rank
        errors = {}
        net, data, kwargs = PROBLEMS["sgd64"]()
        attempts = {
            "dropout": lambda: dn.mlp([6, 8, 3], dropout=0.2, seed=0).fit(*data, epochs=1, distributed=True),
            "lbfgs": lambda: dn.mlp([6, 8, 3], seed=0).fit(*data, optimizer="lbfgs", epochs=1, distributed=True),
            "validation_split": lambda: dn.mlp([6, 8, 3], seed=0).fit(*data, validation_split=0.2, epochs=1,
                                                                      distributed="sharded"),
        }
        for key, attempt in attempts.items():
            try:
                attempt()
                errors[key] = None
            except dn.DialnetError as exc:
                errors[key] = f"{type(exc).__name__}: {exc}"
        save(outdir, name, rank, errors=errors)
    else:
        raise SystemExit(f"unknown scenario {name}")


def main():
    from mpi4py import MPI  # noqa: PLC0415

    outdir, names = os.path.abspath(sys.argv[1]), sys.argv[2:]
    comm = MPI.COMM_WORLD
    os.chdir(outdir)
    for name in names:
        run(outdir, name, comm.rank, comm.size)
        comm.Barrier()
    assert dn  # the package imported without mpi4py first


if __name__ == "__main__":
    main()
