"""The ``mpi`` fixture: skip where mpi4py or mpirun are missing (the extra ``dialnet[distributed]``)."""

from __future__ import annotations

import pytest
from mpi_jobs import mpirun, mpirun_path


@pytest.fixture(scope="module")
def mpi():
    """Skip where mpi4py and mpirun are missing; else the :func:`mpirun` function."""
    pytest.importorskip("mpi4py")
    if mpirun_path() is None:
        pytest.skip("no mpirun (pip install 'dialnet[distributed]')")
    return mpirun
