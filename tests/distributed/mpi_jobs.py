"""Starting real MPI jobs from the tests: ``mpirun -n N python ...`` from the venv's Open MPI (extra ``distributed``)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
TIMEOUT_S = 240  # generous: mpirun starts in ~1 s, but the CI machine is small and shared


def mpirun_path():
    found = pathlib.Path(sys.executable).parent / "mpirun"
    return str(found) if found.exists() else shutil.which("mpirun")


def mpi_env():
    env = dict(os.environ)
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1",  # CI and containers run as root
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_mpi_yield_when_idle="1",  # ranks waiting in a collective give the cores back
        OMPI_MCA_rmaps_base_oversubscribe="1",  # more ranks than cores is fine for tests
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
    )
    return env


def mpirun(n, args, cwd, timeout=TIMEOUT_S):
    """Run ``args`` (after ``python``) on ``n`` ranks; the CompletedProcess (stdout and stderr as text)."""
    launcher = mpirun_path()
    if launcher is None:
        pytest.skip("no mpirun (pip install 'dialnet[distributed]')")
    cmd = [launcher, "-n", str(n), "--oversubscribe", sys.executable, *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=mpi_env(), capture_output=True, text=True, timeout=timeout)
