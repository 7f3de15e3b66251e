"""Small training problems run both by one process (in the tests) and by N ranks (worker.py), the same way."""

from __future__ import annotations

import os
import signal

import numpy as np

import dialnet as dn


def shard(n, size, rank):
    """Rank ``rank``'s contiguous rows of ``n`` (ranks in order make up all rows)."""
    return np.array_split(np.arange(n), size)[rank]


def _data(n=203, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, np.minimum(y, classes - 1)


def sgd64():
    """float64, SGD with momentum, a last batch of 11 rows, validation data."""
    X, y = _data()
    net = dn.mlp([6, 16, 3], activation="tanh", dtype="float64", seed=1)
    Xv, yv = _data(57, seed=1)
    return net, (X, y), dict(optimizer=dn.SGD(lr=0.1, momentum=0.9), epochs=2, batch_size=32, seed=3,
                             validation_data=(Xv, yv))


def adam64():
    """float64, Adam, L2, no validation."""
    X, y = _data()
    net = dn.mlp([6, 16, 8, 3], activation="sigmoid", dtype="float64", seed=2)
    return net, (X, y), dict(optimizer=dn.Adam(lr=0.01), epochs=2, batch_size=25, seed=4, l2=1e-4)


def adam32():
    """float32 (the default dtype), Adam."""
    X, y = _data()
    net = dn.mlp([6, 16, 3], seed=1)
    return net, (X.astype(np.float32), y), dict(optimizer="adam", lr=0.01, epochs=2, batch_size=32, seed=3)


def tiny_batches():
    """Global batches of 3 rows on 2+ ranks: some ranks get 1 row, a last batch of 1 leaves a rank with none."""
    X, y = _data(31)
    net = dn.mlp([6, 8, 3], activation="relu", dtype="float64", seed=5)
    return net, (X, y), dict(optimizer=dn.SGD(lr=0.05), epochs=2, batch_size=3, seed=6)


def weighted64():
    """float64, sample weights, weighted validation data, regression-free classification with Adam."""
    X, y = _data()
    w = np.random.default_rng(7).uniform(0.2, 2.0, size=len(X))
    Xv, yv = _data(57, seed=1)
    wv = np.random.default_rng(8).uniform(0.5, 1.5, size=len(Xv))
    net = dn.mlp([6, 16, 3], activation="tanh", dtype="float64", seed=1)
    return net, (X, y), dict(optimizer=dn.Adam(lr=0.01), epochs=2, batch_size=32, seed=3, sample_weight=w,
                             validation_data=(Xv, yv, wv))


def regression64():
    """float64 regression (squared error), SGD."""
    X, _ = _data()
    y = np.stack([X[:, 0] - X[:, 1], X[:, 2] * 0.5], axis=1)
    net = dn.mlp([6, 12, 2], activation="tanh", output="linear", dtype="float64", seed=9)
    return net, (X, y), dict(optimizer=dn.SGD(lr=0.05), epochs=2, batch_size=20, seed=10)


def decisions64():
    """Stopping rules, a schedule and class weights: every decision taken on reduced numbers."""
    X, y = _data(240, seed=13)
    net = dn.mlp([6, 12, 3], activation="tanh", dtype="float64", seed=14)
    return net, (X, y), dict(optimizer=dn.Adam(lr=0.05), epochs=12, batch_size=16, seed=15, validation_split=0.25,
                             early_stopping=2, lr_schedule="plateau", class_weight="balanced", target_certainty=0.9)


PROBLEMS = {f.__name__: f for f in (sgd64, adam64, adam32, tiny_batches, weighted64, regression64, decisions64)}


class StopAt(dn.Callback):
    """Raise at the end of epoch ``epoch`` (0-based; None: never), as a crash would stop a run."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs, net):
        if epoch == self.epoch:
            raise RuntimeError("stopped on purpose")
        return False


class SignalAt(dn.Callback):
    """Rank ``rank`` sends itself SIGTERM at the end of epoch ``epoch`` (None: never), as a scheduler would."""

    def __init__(self, epoch, rank=1):
        self.epoch, self.rank = epoch, rank

    def on_epoch_end(self, epoch, logs, net):
        from mpi4py import MPI  # noqa: PLC0415  (only run under mpirun)

        if epoch == self.epoch and MPI.COMM_WORLD.rank == self.rank:
            os.kill(os.getpid(), signal.SIGTERM)
        return False


def table_cells(n=157, seed=11):
    """A table's text cells with a header: numbers with blanks, text with blanks and a rare tail, an ID column,
    a regression target last."""
    rng = np.random.default_rng(seed)
    header = ["id", "age", "height", "color", "city", "score"]
    colors = np.array(["red", "green", "blue", "n/a"])
    cities = np.array([f"town{k}" for k in range(60)])
    rows = []
    for i in range(n):
        age = "" if rng.random() < 0.1 else str(int(rng.integers(18, 90)))
        height = f"{rng.normal(170, 9):.2f}" if rng.random() > 0.05 else "NA"
        color = str(rng.choice(colors, p=[0.5, 0.3, 0.15, 0.05]))
        city = str(cities[min(int(rng.exponential(12)), 59)])
        rows.append([str(1000 + i), age, height, color, city, f"{rng.normal():.4f}"])
    return header, rows


def write_files(folder):
    """The files the shard readers are tested on: .npy, raw and gzipped IDX, a CSV table (with a blank line)."""
    from dialnet.data.idx import write_idx  # noqa: PLC0415

    rng = np.random.default_rng(12)
    np.save(folder / "X.npy", rng.normal(size=(37, 5)).astype(np.float32))
    images = rng.integers(0, 256, size=(29, 6, 6), dtype=np.uint8)
    write_idx(folder / "images.idx", images)
    write_idx(folder / "images.idx.gz", images)
    write_idx(folder / "values.idx", rng.normal(size=(23, 3)))
    header, rows = table_cells()
    lines = [",".join(header)] + [",".join(r) for r in rows[:70]] + [""] + [",".join(r) for r in rows[70:]]
    text = "\n".join(lines)
    (folder / "table.csv").write_text(text + "\n")
    (folder / "plain.csv").write_text("\n".join(",".join(r[1:3]) for r in rows if r[1] and r[2] != "NA") + "\n")
