"""Warm-up, interleaved repeats, medians.

Each contender runs once untimed (imports settle, buffers and caches are
allocated, BLAS threads start), then the repeats go round-robin, starting
with a different contender each round, so a slow spell on a shared machine
falls on all of them rather than on one. A short pause between contenders
lets the previous one's thread pool go idle (OpenBLAS and OpenMP workers
spin for a while after a call and would steal cycles from the next).
"""

from __future__ import annotations

import statistics
import time

PAUSE_S = 0.2


def interleaved(contenders, repeats, warmup=None, pause=PAUSE_S):
    """Time ``{name: fn}`` with interleaved repeats.

    Parameters
    ----------
    contenders : dict
        ``name -> fn()``, the unit of work to time.
    repeats : int
        Timed calls per contender.
    warmup : dict, optional
        ``name -> fn()`` run once, untimed, before the repeats (default: the
        contender itself).

    Returns
    -------
    dict
        ``name -> list of seconds``, one per repeat.
    """
    names = list(contenders)
    for name in names:
        (warmup or contenders)[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            time.sleep(pause)
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median(values):
    return statistics.median(values)
