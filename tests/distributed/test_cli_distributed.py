"""``mpirun -n 2 dialnet train DATA --distributed``: the command line, on two ranks that share no folder.

Open MPI's MPMD form (``mpirun -n 1 --wdir A cmd : -n 1 --wdir B cmd``)
starts the two ranks of one job in two folders, as on two machines without a
shared disk: each holds its own copy of DATA, and only rank 0's folder may
get the model or the checkpoint.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from mpi_jobs import TIMEOUT_S, mpi_env, mpirun_path

import dialnet as dn

DIALNET = [sys.executable, "-m", "dialnet"]
OPTIONS = ["train", "t.csv", "--distributed", "--epochs", "3", "--dtype", "float64", "--no-progress", "--optimizer", "adam"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    pytest.importorskip("mpi4py")
    if mpirun_path() is None:
        pytest.skip("no mpirun (pip install 'dialnet[distributed]')")
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8)
    lines = ["a,b,c,d,label"] + [",".join(f"{v:.5f}" for v in row) + f",k{label}" for row, label in zip(X, y)]
    (folder / "t.csv").write_text("\n".join(lines) + "\n")
    return folder


def two_ranks_in_two_folders(root, args):
    folders = [root / "rank0", root / "rank1"]
    for f in folders:
        f.mkdir()
        shutil.copy(root.parent / "t.csv", f / "t.csv")  # no shared disk: each "machine" has its copy of DATA
    cmd = [mpirun_path(), "--oversubscribe"]
    for i, f in enumerate(folders):
        cmd += ([":"] if i else []) + ["-n", "1", "--wdir", str(f), *DIALNET, *args]
    done = subprocess.run(cmd, env=mpi_env(), capture_output=True, text=True, timeout=TIMEOUT_S, cwd=root)
    return done, folders


def test_the_command_trains_once_prints_once_and_writes_on_rank_0_only(table):
    root = table / "train"
    root.mkdir()
    done, (rank0, rank1) = two_ranks_in_two_folders(root, OPTIONS + ["--out", "m.safetensors", "--checkpoint", "c.ckpt"])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("Saved m.safetensors") == 1
    assert done.stdout.count("Test accuracy") == 1
    assert sorted(p.name for p in rank0.iterdir()) == ["c.ckpt", "m.safetensors", "t.csv"]
    assert sorted(p.name for p in rank1.iterdir()) == ["t.csv"]

    alone = table / "alone"
    alone.mkdir()
    shutil.copy(table / "t.csv", alone / "t.csv")
    one = subprocess.run([*DIALNET, *OPTIONS, "--out", "m.safetensors"], capture_output=True, text=True, cwd=alone,
                         timeout=TIMEOUT_S)
    assert one.returncode == 0, one.stderr[-2000:]
    two_nets, one_net = dn.load(rank0 / "m.safetensors"), dn.load(alone / "m.safetensors")
    for a, b in zip(two_nets.parameters(), one_net.parameters()):
        assert float(np.max(np.abs(a - b)) / np.max(np.abs(b))) <= 1e-9


def test_cross_validation_spreads_the_folds_and_reports_them_in_order(table):
    root = table / "cv"
    root.mkdir()
    done, _ = two_ranks_in_two_folders(root, OPTIONS + ["--cv", "3"])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    folds = [line.split(" (")[0] for line in done.stdout.splitlines() if line.startswith("fold ")]
    alone = table / "cv-alone"
    alone.mkdir()
    shutil.copy(table / "t.csv", alone / "t.csv")
    one = subprocess.run([*DIALNET, *OPTIONS, "--cv", "3"], capture_output=True, text=True, cwd=alone, timeout=TIMEOUT_S)
    assert folds == [line.split(" (")[0] for line in one.stdout.splitlines() if line.startswith("fold ")]
    assert [f[:8] for f in folds] == ["fold 1/3", "fold 2/3", "fold 3/3"]


def test_without_mpi4py_the_command_says_how_to_install_it_and_exits_2(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,label\n" + "\n".join(f"{i % 7},{i % 5},{i % 2}" for i in range(40)) + "\n")
    code = ("import sys; sys.modules['mpi4py'] = None  # what a missing package does\n"
            "from dialnet.cli import main; raise SystemExit(main(['train', 't.csv', '--distributed', '--epochs', '1']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=TIMEOUT_S)
    assert done.returncode == 2, done.stderr
    assert "needs mpi4py" in done.stderr and "dialnet[distributed]" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "t.csv"]
