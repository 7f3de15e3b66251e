"""Data-parallel training on MPI: ``mpirun -n N dialnet train DATA --distributed``, or ``fit(..., distributed=True)``.

Needs the extra ``dialnet[distributed]`` (mpi4py and Open MPI); mpi4py is
imported only when a distributed run starts, so ``import dialnet`` stays light.

- :mod:`~dialnet.distributed.comm`: the MPI world (:class:`World`,
  :func:`world`) and :class:`DistributedError`;
- :mod:`~dialnet.distributed.parallel`: synchronous data-parallel SGD, the
  hooks the fit loop calls (:class:`DataParallel`);
- :mod:`~dialnet.distributed.agreement`: the start-of-run fingerprint of
  options and data compared across ranks;
- :mod:`~dialnet.distributed.shards`: each rank reads only its row range of
  a ``.npy``, IDX or CSV file;
- :mod:`~dialnet.distributed.stats`: preprocessing statistics reduced over
  the ranks' shards, equal to the single-process ones.
"""

from . import shards, stats
from .comm import DistributedError, World, world
from .parallel import DataParallel
from .shards import read_csv, read_idx, read_npy, row_range

__all__ = ["DataParallel", "DistributedError", "World", "read_csv", "read_idx", "read_npy", "row_range", "shards", "stats",
           "world"]
