"""Data-parallel training on real MPI (``mpirun -n 2``): equal to one process, equal replicas, rank 0 writes.

One MPI job runs every scenario of ``worker.py`` (mpirun starts in about a
second; the problems are tiny); the tests compare what each rank saved with
a single-process ``fit`` of the same problem (``dist_problems.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import dialnet as dn
from dialnet.data.idx import read_idx
from dialnet.data.preprocessing import Preprocessor
from dialnet.distributed import DistributedError
from dist_problems import PROBLEMS, table_cells, write_files
from mpi_jobs import WORKER

RANKS = 2
SCENARIOS = [*PROBLEMS, "sharded64", "diverge", "files", "writers", "resume", "sigterm", "shards", "stats", "mismatch_option",
             "mismatch_data", "refusals"]
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}


@pytest.fixture(scope="module")
def job(mpi, tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    write_files(out)
    done = mpi(RANKS, [WORKER, out, *SCENARIOS], cwd=out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done


def result(job, name, rank):
    z = np.load(job[0] / f"{name}.rank{rank}.npz")
    meta = json.loads(bytes(z["meta"]).decode())
    return [z[f"p{i}"] for i in range(len(z.files) - 1)], meta


def max_relative_difference(got, want):
    """The largest |difference| of a weight array, relative to that array's largest |weight|, over all arrays."""
    return max(float(np.max(np.abs(g - w)) / np.max(np.abs(w))) for g, w in zip(got, want))


def single_process(name):
    net, data, kwargs = PROBLEMS[name]()
    history = net.fit(*data, **kwargs)
    return list(net.parameters()), history, net


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_two_ranks_train_what_one_process_trains(job, name):
    want, history, net = single_process(name)
    got, meta = result(job, name, 0)
    tolerance = TOLERANCE[net.dtype.name]
    assert max_relative_difference(got, want) <= tolerance
    assert meta["history"].keys() == history.history.keys()
    for key, values in history.history.items():
        np.testing.assert_allclose(meta["history"][key], values, rtol=tolerance * 10, atol=0)


@pytest.mark.parametrize("name", [*PROBLEMS, "sharded64"])
def test_replicas_are_bitwise_equal(job, name):
    (p0, m0), (p1, m1) = result(job, name, 0), result(job, name, 1)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(p0, p1))
    assert m0["history"] == m1["history"]  # every decision was taken on the same reduced numbers


def test_sharded_ranks_read_only_their_rows_and_train_what_one_process_trains(job):
    want, history, _ = single_process("weighted64")
    got, meta = result(job, "sharded64", 0)
    assert max_relative_difference(got, want) <= TOLERANCE["float64"]
    for key, values in history.history.items():  # sample weights and validation shards, reduced
        np.testing.assert_allclose(meta["history"][key], values, rtol=1e-9, atol=0)


def test_only_rank_0_writes_checkpoints(job):
    out = job[0]
    assert sorted(p.name for p in (out / "files.cwd0").iterdir()) == ["run.ckpt.safetensors"]
    assert list((out / "files.cwd1").iterdir()) == []
    _, _, net = single_process("sgd64")
    stored, state, _ = dn.files.checkpoint.load(out / "files.cwd0" / "run.ckpt.safetensors")
    assert state["finished"]
    got, _ = result(job, "files", 0)
    assert all(np.array_equal(a, b) for a, b in zip(stored.parameters(), got))


def test_a_diverging_run_is_replayed_and_retried_alike_on_every_rank(job):
    (p0, m0), (p1, m1) = result(job, "diverge", 0), result(job, "diverge", 1)
    assert m0["divergences"] and m0["divergences"] == m1["divergences"]
    assert "halved the learning rate" in m0["divergences"][0]
    assert m0["history"] == m1["history"] and m0["stop_reason"] == m1["stop_reason"]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(p0, p1))


def test_callbacks_that_write_files_write_on_rank_0_only(job):
    out = job[0]
    assert sorted(p.name for p in (out / "writers.cwd0").iterdir()) == ["best.safetensors", "log.csv"]
    assert list((out / "writers.cwd1").iterdir()) == []
    assert len((out / "writers.cwd0" / "log.csv").read_text().splitlines()) == 1 + 2  # a header and 2 epochs
    (_, m0), (_, m1) = result(job, "writers", 0), result(job, "writers", 1)
    assert m0["history"] == m1["history"]


def test_a_resumed_two_rank_run_equals_an_uninterrupted_one(job):
    (resumed, m_resumed), (whole, m_whole) = result(job, "resume", 0), result(job, "uninterrupted", 0)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(resumed, whole))
    assert m_resumed["history"] == m_whole["history"]
    assert m_resumed["stop_reason"] == "finished 3 epochs"
    # rank 1 had no checkpoint on its disk: rank 0 read it and handed it over
    assert list((job[0] / "resume.cwd1").iterdir()) == []


def test_a_signal_on_one_rank_stops_all_at_the_same_step_and_the_run_resumes(job):
    (_, m0), (_, m1) = result(job, "sigterm", 0), result(job, "sigterm", 1)
    stopped = {"epoch": 2, "step": 1, "checkpoint": "run.ckpt.safetensors", "signal": "SIGTERM"}
    assert m0["stopped"] == m1["stopped"] == stopped  # rank 0 caught nothing itself: the signal was agreed
    assert list((job[0] / "sigterm.cwd1").iterdir()) == []
    (resumed, m_resumed), (whole, m_whole) = result(job, "sigterm", 0), result(job, "uninterrupted", 0)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(resumed, whole))
    assert m_resumed["history"] == m_whole["history"]


@pytest.mark.parametrize(("name", "what"), [("mismatch_option", "option batch_size"), ("mismatch_data", "the training inputs")])
def test_ranks_that_disagree_stop_with_the_difference_named(job, name, what):
    for rank in range(RANKS):
        _, meta = result(job, name, rank)
        assert meta["error"] is not None
        assert f"disagree on {what}" in meta["error"]
        assert "rank 0 has" in meta["error"] and "rank 1 has" in meta["error"]


def test_what_distributed_training_refuses_is_said_on_every_rank(job):
    for rank in range(RANKS):
        _, meta = result(job, "refusals", rank)
        errors = meta["errors"]
        assert "dropout is not supported" in errors["dropout"]
        assert "L-BFGS" in errors["lbfgs"] and "distributed" in errors["lbfgs"]
        assert "validation_split cannot" in errors["validation_split"]


def test_the_job_prints_nothing_on_its_own(job):
    _, done = job
    assert "Traceback" not in done.stderr


def test_a_world_of_one_process_is_an_ordinary_run(tmp_path):
    pytest.importorskip("mpi4py")
    code = (
        "import sys, numpy as np; sys.path.insert(0, %r)\n"
        "from dist_problems import PROBLEMS\n"
        "runs = []\n"
        "for distributed in (None, True):\n"
        "    net, data, kw = PROBLEMS['adam32']()\n"
        "    h = net.fit(*data, **kw, distributed=distributed)\n"
        "    runs.append(([p.tobytes() for p in net.parameters()], h.history))\n"
        "assert runs[0] == runs[1], 'differs'\n"
        "import mpi4py.MPI as M; print(M.COMM_WORLD.size)\n"
    ) % str(WORKER.parent)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1"


def test_without_mpi4py_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # what `import mpi4py` does where it is not installed
    net, data, kwargs = PROBLEMS["sgd64"]()
    with pytest.raises(DistributedError, match=r"needs mpi4py.*dialnet\[distributed\]"):
        net.fit(*data, **kwargs, distributed=True)


def test_an_unknown_mode_is_a_config_error():
    net, data, kwargs = PROBLEMS["sgd64"]()
    with pytest.raises(dn.errors.ConfigError, match="unknown distributed mode"):
        net.fit(*data, **kwargs, distributed="everywhere")


def test_import_dialnet_does_not_import_mpi4py():
    code = "import sys, dialnet, dialnet.distributed; print('mpi4py' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_benchmark_section_runs_and_reports_all_three_ways(mpi, tmp_path):
    out = tmp_path / "bench.json"
    root = WORKER.parents[2]
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--sections", "distributed", "--json", str(out)],
                          capture_output=True, text=True, timeout=240, cwd=root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())["distributed"]
    assert set(report["runs"]) == {"mpirun-n-1", "mpirun-n-2", "alone-2-threads"}
    assert report["runs"]["mpirun-n-1"]["allreduce_share"] == 0.0  # a world of one process: an ordinary run
    assert report["runs"]["mpirun-n-2"]["allreduce_share"] > 0.0
    assert "steps/s" in done.stdout


def test_the_shards_of_each_file_kind_are_the_file_in_rank_order(job):
    out = job[0]
    parts = [np.load(out / f"shards.rank{r}.npz") for r in range(RANKS)]
    whole = {"npy": np.load(out / "X.npy"), "idx": read_idx(out / "images.idx"), "idx_gz": read_idx(out / "images.idx.gz"),
             "idx_f64": read_idx(out / "values.idx")}
    for key, want in whole.items():
        got = np.concatenate([p[key] for p in parts])
        assert got.dtype == want.dtype and np.array_equal(got, want), key
        assert 0 < len(parts[0][key]) < len(want)  # each rank read a part, not all
    header, rows = table_cells()
    assert list(parts[0]["header"]) == list(parts[1]["header"]) == header
    assert np.concatenate([p["csv"] for p in parts]).tolist() == rows  # the blank line is skipped
    plain = [r[1:3] for r in rows if r[1] and r[2] != "NA"]
    assert bool(parts[0]["plain_header"]) and np.concatenate([p["plain"] for p in parts]).tolist() == plain


def test_preprocessing_fitted_on_shards_equals_one_process_on_all_rows(job):
    out = job[0]
    metas = [json.loads(bytes(np.load(out / f"stats.rank{r}.npz")["meta"]).decode()) for r in range(RANKS)]
    assert metas[0] == metas[1]  # every rank holds the same constants
    header, rows = table_cells()
    cells = np.array(rows, dtype=object)
    for scaling in ("standard", "minmax"):
        pre = Preprocessor(kind="table", scaling=scaling)
        want = pre.fit_transform(cells[:, :-1], header[:-1], dtype=np.float64)
        pre.fit_target(cells[:, -1].astype(float))
        got = Preprocessor.from_config(metas[0][scaling]["config"])
        assert got.columns == pre.columns  # numeric/categorical/dropped, medians, categories: exact
        assert metas[0][scaling]["notes"] == pre.notes
        for key in ("min", "max", "mean", "std"):
            if getattr(pre, key) is not None:
                np.testing.assert_allclose(getattr(got, key), getattr(pre, key), rtol=1e-12, atol=1e-12)
        assert got.target_mean == pytest.approx(pre.target_mean, rel=1e-12)
        assert got.target_std == pytest.approx(pre.target_std, rel=1e-12)
        scaled = np.concatenate([np.load(out / f"stats.rank{r}.npz")[f"scaled_{scaling}"] for r in range(RANKS)])
        np.testing.assert_allclose(scaled, want, rtol=1e-12, atol=1e-12)
    assert any(rule.kind == "dropped" for rule in got.columns)  # the ID column, judged on all rows
    images = read_idx(out / "images.idx").reshape(-1, 36) / 255.0
    image = Preprocessor(kind="image", scaling="standard").fit(images)
    got = Preprocessor.from_config(metas[0]["image"]["config"])
    assert float(got.mean) == pytest.approx(float(image.mean), rel=1e-12)
    assert float(got.std) == pytest.approx(float(image.std), rel=1e-12)
    assert metas[0]["image"]["background"] == pytest.approx(dn.data.border_mean(images), rel=1e-12)
    values = np.array([1.5, -0.0, 7.0, np.inf, -3.25])
    assert metas[0]["medians"] == [float(np.median(values)), float(np.median(values[[0, 1]]))]  # each rank's first value
