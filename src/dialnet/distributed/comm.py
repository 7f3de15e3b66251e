"""The MPI world dialnet trains in: mpi4py imported only here, only when distributed training is asked for.

:func:`world` turns fit's ``distributed=`` into a :class:`World` (a thin
wrapper over an mpi4py communicator with the few collectives dialnet uses),
or ``None`` when there is nothing to distribute: a world of one process
(``python train.py``, no ``mpirun``) is an ordinary run, bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DialnetError, type_name

INSTALL = "pip install 'dialnet[distributed]' (mpi4py and Open MPI), then start with mpirun -n 2 ..."


class DistributedError(ConfigError):
    """Distributed training cannot go on: no MPI, or ranks that disagree on their options or data."""


def _mpi():
    """The ``mpi4py.MPI`` module, or a DistributedError saying how to get it."""
    try:
        from mpi4py import MPI  # noqa: PLC0415  (optional, heavy: only for distributed runs)
    except ImportError as exc:
        raise DistributedError(
            "distributed training needs mpi4py",
            expected="mpi4py >= 4 and an MPI library",
            got=f"no mpi4py ({exc})",
            fix=INSTALL,
        ) from None
    except (RuntimeError, OSError) as exc:  # mpi4py present but its MPI library is missing or broken
        raise DistributedError(
            "mpi4py is installed but its MPI library could not be started",
            expected="a working MPI (Open MPI or MPICH)",
            got=str(exc),
            fix=INSTALL,
        ) from None
    return MPI


class World:
    """The processes of one data-parallel run (rank 0 is the root: it prints and writes files).

    Parameters
    ----------
    comm : mpi4py communicator, optional
        Default ``MPI.COMM_WORLD``; pass a sub-communicator to train several
        models side by side (e.g. one per cross-validation fold).
    """

    def __init__(self, comm=None):
        self.MPI = _mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._scalars = np.zeros(1, dtype=np.float64)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def __repr__(self):
        return f"World(rank={self.rank}, size={self.size})"

    # ------------------------------------------------------------ collectives

    def sum_(self, array):
        """Sum a contiguous array over all ranks, in place (one ``Allreduce``); returns it."""
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array

    def sum_scalar(self, value: float) -> float:
        """The sum of one float64 over all ranks (same bits on every rank)."""
        self._scalars[0] = value
        self.comm.Allreduce(self.MPI.IN_PLACE, self._scalars, op=self.MPI.SUM)
        return float(self._scalars[0])

    def sum_ints(self, values):
        """Exact sums of integers over all ranks (int64)."""
        buf = np.asarray(values, dtype=np.int64).copy()
        return [int(v) for v in self.sum_(buf)]

    def min_max(self, low, high):
        """Element-wise minimum of ``low`` and maximum of ``high`` over all ranks (float64 arrays)."""
        low = np.ascontiguousarray(low, dtype=np.float64).copy()
        high = np.ascontiguousarray(high, dtype=np.float64).copy()
        self.comm.Allreduce(self.MPI.IN_PLACE, low, op=self.MPI.MIN)
        self.comm.Allreduce(self.MPI.IN_PLACE, high, op=self.MPI.MAX)
        return low, high

    def reduce(self, value, op="SUM"):
        """A Python number reduced over all ranks with ``op`` ("SUM", "MIN", "MAX", "LAND", "LOR"), on every rank."""
        return self.comm.allreduce(value, op=getattr(self.MPI, op))

    def agree(self, work, *args):
        """``work(*args)`` on every rank; if it raised a DialnetError on any rank, every rank raises the first one.

        For checks of a rank's own rows: the rank that finds bad data names
        it, and the others stop with the same message instead of waiting in
        the next collective.
        """
        try:
            result, error = work(*args), None
        except DialnetError as exc:
            result, error = None, exc
        first = next((e for e in self.gather(error) if e is not None), None)
        if first is not None:
            raise first
        return result

    def broadcast(self, array):
        """Rank 0's values into ``array`` on every rank, in place."""
        self.comm.Bcast(array, root=0)
        return array

    def share(self, obj):
        """Rank 0's Python object, on every rank (pickled)."""
        return self.comm.bcast(obj, root=0)

    def gather(self, obj) -> list:
        """Every rank's Python object, in rank order, on every rank."""
        return self.comm.allgather(obj)

    def root_does(self, work, *args):
        """Run ``work(*args)`` on rank 0 only and give its result (or its DialnetError) to every rank.

        A failure on the root (or the TrainingInterrupted it raises after
        writing a checkpoint) then stops every rank the same way, instead of
        leaving the others waiting in the next collective.
        """
        outcome = None
        if self.is_root:
            try:
                outcome = (True, work(*args))
            except BaseException as exc:  # noqa: BLE001  (handed to every rank, raised there)
                outcome = (False, exc)
        ok, value = self.share(outcome)
        if not ok:
            raise value
        return value


def world(distributed, comm=None):
    """The :class:`World` for fit's ``distributed=``, or None for an ordinary run.

    ``distributed`` is False/None (no MPI touched), True (``MPI.COMM_WORLD``),
    or an mpi4py communicator. A world of one process is an ordinary run.
    """
    if distributed is None or distributed is False:
        return None
    if distributed is not True and not hasattr(distributed, "Get_rank"):
        raise ConfigError(
            "distributed must be True, False or an MPI communicator",
            expected="distributed=True (under mpirun), or an mpi4py communicator",
            got=type_name(distributed),
            fix="pass distributed=True and start the script with mpirun -n 2 python script.py",
        )
    w = World(None if distributed is True else distributed)
    return w if w.size > 1 else None
