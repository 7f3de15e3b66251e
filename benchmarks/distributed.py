"""Data-parallel training on MPI: steps per second, the allreduce's share of a step, and time per epoch.

The issue 16 network, 784-256-128-10 (float32, 235k dials), Adam, global
batch 256, random data; three runs side by side, each in fresh processes:

- ``mpirun -n 1``: a world of one process is an ordinary run (no allreduce);
- ``mpirun -n 2``: two ranks with one BLAS thread each, every step's
  gradient summed by one ``Allreduce`` of the flat gradient (plus one of three
  float64s: the batch's loss and the ranks that caught SIGINT or SIGTERM);
- one process without MPI, two BLAS threads: the same two cores used the
  other way.

The allreduce time is taken inside the run by timing :meth:`World.sum_`
(the one call every step's reductions go through), so it includes waiting
for the slower rank: what synchronous SGD really pays. Repeats are
interleaved and medians reported; on a 2-core machine the point is low
overhead, not speed-up.

Run ``python -m benchmarks --sections distributed`` (``--quick`` for a few seconds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .timing import median

SIZES = [784, 256, 128, 10]
BATCH = 256
ROWS, QUICK_ROWS = 32768, 1024
EPOCHS, QUICK_EPOCHS = 3, 1
REPEATS, QUICK_REPEATS = 3, 1
ALLREDUCE_GOAL = 0.05  # at most 5% of a step
TIMEOUT_S = 600


def _env(threads):
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    return env


def _mpirun():
    path = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return path if os.path.exists(path) else "mpirun"


def worker(out, rows, epochs, distributed):
    """One timed run (in this process, one rank of it under mpirun); rank 0 writes the figures to ``out``."""
    import dialnet as dn  # noqa: PLC0415

    timer = {"seconds": 0.0, "calls": 0}
    rank, size = 0, 1
    if distributed:
        from dialnet.distributed import World  # noqa: PLC0415

        plain_sum = World.sum_

        def timed_sum(self, array):
            start = time.perf_counter()
            try:
                return plain_sum(self, array)
            finally:
                timer["seconds"] += time.perf_counter() - start
                timer["calls"] += 1

        World.sum_ = timed_sum
        from mpi4py import MPI  # noqa: PLC0415

        rank, size = MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size
    rng = np.random.default_rng(0)
    X = rng.random((rows, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], size=rows)

    def run(n_epochs):
        net = dn.mlp(SIZES, activation="relu", seed=0)
        # every run on the NumPy path, the one data-parallel training uses: the rows differ only in ranks and threads
        return net.fit(X, y, optimizer="adam", lr=1e-3, epochs=n_epochs, batch_size=BATCH, seed=0,
                       distributed=True if distributed else None, engine="numpy")

    run(1)  # warm-up: buffers, BLAS, the MPI connections
    timer.update(seconds=0.0, calls=0)
    history = run(epochs)
    steps = epochs * -(-rows // BATCH)
    result = {"ranks": size, "steps": steps, "train_s": history.train_time, "allreduce_s": timer["seconds"],
              "allreduce_calls": timer["calls"], "loss": history.history["loss"][-1], "alone_ms": 0.0}
    if distributed and size > 1:  # the same Allreduce with nothing between: its own cost, without waiting for a rank
        from mpi4py import MPI  # noqa: PLC0415

        flat = np.ones(sum(a * b + b for a, b in zip(SIZES, SIZES[1:])), dtype=np.float32)
        times = []
        for _ in range(120):
            MPI.COMM_WORLD.Barrier()
            start = time.perf_counter()
            MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            times.append(time.perf_counter() - start)
        result["alone_ms"] = 1e3 * median(times[20:])
    if rank == 0:
        with open(out, "w") as f:
            json.dump(result, f)


def _launch(kind, rows, epochs, folder):
    out = os.path.join(folder, f"{kind}.json")
    code = [sys.executable, "-m", "benchmarks.distributed", "--worker", out, str(rows), str(epochs)]
    if kind == "alone-2-threads":
        cmd, env = code + ["plain"], _env(2)
    else:
        cmd, env = [_mpirun(), "-n", kind[-1], *code, "mpi"], _env(1)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    with open(out) as f:
        return json.load(f)


def measure(quick=False):
    """Figures for mpirun -n 1, mpirun -n 2 and one process with 2 BLAS threads (a dict), or why they are missing."""
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError:
        return {"skipped": "mpi4py is not installed (pip install 'dialnet[distributed]')"}
    rows, epochs = (QUICK_ROWS, QUICK_EPOCHS) if quick else (ROWS, EPOCHS)
    repeats = QUICK_REPEATS if quick else REPEATS
    kinds = ("mpirun-n-1", "mpirun-n-2", "alone-2-threads")
    samples = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):  # interleaved: a slow moment of the machine hits every kind alike
            for kind in kinds:
                samples[kind].append(_launch(kind, rows, epochs, folder))
    out = {"rows": rows, "epochs": epochs, "batch": BATCH, "repeats": repeats, "sizes": SIZES, "runs": {}}
    for kind, runs in samples.items():
        train_s = median([r["train_s"] for r in runs])
        share = median([r["allreduce_s"] / r["train_s"] for r in runs])
        out["runs"][kind] = {"steps_per_s": runs[0]["steps"] / train_s, "epoch_s": train_s / epochs,
                             "allreduce_share": share, "allreduce_ms_per_step": 1e3 * median(
                                 [r["allreduce_s"] / r["steps"] for r in runs]), "loss": runs[0]["loss"],
                             "allreduce_alone_ms": median([r["alone_ms"] for r in runs])}
        fastest = min(runs, key=lambda r: r["train_s"])  # the run the machine's other work disturbed least
        out["runs"][kind]["fastest"] = {"epoch_s": fastest["train_s"] / epochs,
                                        "allreduce_share": fastest["allreduce_s"] / fastest["train_s"]}
    return out


def format_report(r) -> str:
    if "skipped" in r:
        return f"distributed: skipped: {r['skipped']}"
    net = "-".join(map(str, r["sizes"]))
    lines = [f"distributed (MPI), {net} float32, Adam, global batch {r['batch']}, {r['rows']:,} rows x {r['epochs']} epochs, "
             f"median of {r['repeats']}:"]
    names = {"mpirun-n-1": "mpirun -n 1 (1 BLAS thread)", "mpirun-n-2": "mpirun -n 2 (1 BLAS thread each)",
             "alone-2-threads": "one process, 2 BLAS threads"}
    alone = r["runs"]["alone-2-threads"]["epoch_s"]
    for kind, v in r["runs"].items():
        lines.append(f"  {names[kind]:<34} {v['steps_per_s']:7.1f} steps/s  {v['epoch_s']:.3f} s/epoch "
                     f"({alone / v['epoch_s']:.2f}x the 2-thread process)  allreduce {v['allreduce_ms_per_step']:.2f} ms/step "
                     f"= {v['allreduce_share']:.1%} of a step")
    fastest = {kind: v["fastest"] for kind, v in r["runs"].items()}
    lines.append("  fastest runs: " + ", ".join(
        f"{kind} {v['epoch_s']:.3f} s/epoch (allreduce {v['allreduce_share']:.1%})" for kind, v in fastest.items()))
    two = r["runs"]["mpirun-n-2"]
    step_ms = 1e3 / two["steps_per_s"]
    lines.append(f"  the gradient's Allreduce alone (235,146 float32, after a barrier): {two['allreduce_alone_ms']:.3f} ms "
                 f"= {two['allreduce_alone_ms'] / step_ms:.1%} of a 2-rank step ({step_ms:.2f} ms)")
    lines.append(f"  goal: allreduce <= {ALLREDUCE_GOAL:.0%} of a step with 2 ranks: "
                 f"{'met' if two['allreduce_share'] <= ALLREDUCE_GOAL else 'NOT met'} ({two['allreduce_share']:.1%}); "
                 f"final training loss {r['runs']['mpirun-n-1']['loss']:.6f} / {two['loss']:.6f} / "
                 f"{r['runs']['alone-2-threads']['loss']:.6f} (float32: equal to rounding, not to the bit)")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "mpi")
    else:
        print(format_report(measure(quick="--quick" in sys.argv)))
