"""How much memory a network needs, counted from its sizes before anything is allocated.

A size mistake (``--layers 20000,20000``, ``mlp([100000, 100000, 10])``)
must be refused before it costs gigabytes, and ``dialnet summary`` must be
able to print a table for a network it never builds. The count, per
parameter ``p`` (weights and biases) of item size ``s`` (4 for float32):

- network: ``2 p s`` (the dials and their gradients, one flat array each);
- building: while the flat arrays are made, each layer's own arrays and the
  float64 starting values of the largest layer are alive too: ``2 p s +
  8 max_layer``;
- optimizer: ``k p s`` for its ``k`` moment arrays (Adam 2, RMSprop 1, SGD
  with momentum 1, plain SGD 0);
- copies training keeps: the epoch-start snapshot the divergence replay
  starts from (weights and moments) and the best weights of early
  stopping: ``(2 + k) p s``;
- a batch: ``b s (inputs + 4 * sum of the layer widths)`` (each layer's
  pre-activation, activation, delta and a scratch buffer).

:func:`available_bytes` reads ``MemAvailable`` from ``/proc/meminfo`` (and
a cgroup's limit when it is lower), falling back to the free physical
pages, and to None when nothing says (then no check is made).
``DIALNET_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix) overrides it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..errors import ConfigError

OPTIMIZER_SLOTS = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2, "rmsprop": 1, "lbfgs": 22}
ITEM_SIZES = {"float32": 4, "float64": 8}
ENV_LIMIT = "DIALNET_MEMORY_LIMIT"
_SUFFIXES = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parameter_count(sizes) -> int:
    """Weights and biases of Dense layers ``sizes[0] -> sizes[1] -> ...`` (exact Python ints)."""
    sizes = [int(s) for s in sizes]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def format_bytes(n) -> str:
    """``1536`` -> ``'1.5 KiB'``; ``7.7e9`` -> ``'7.2 GiB'``."""
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a network needs: ``network`` (dials and gradients), ``building`` (peak while it is built),
    ``optimizer``, ``copies`` (snapshots training keeps), ``batch`` (one batch's activations and deltas)
    and ``training`` (the peak of a training run: all of them but ``building``)."""

    parameters: int
    network: int
    building: int
    optimizer: int
    copies: int
    batch: int

    @property
    def training(self) -> int:
        return self.network + self.optimizer + self.copies + self.batch

    def describe(self, available=None, how="") -> str:
        """``3.0 GiB for the weights and gradients, about 11.9 GiB to train{how} (23.1 GiB available)``."""
        text = (f"{format_bytes(self.network)} for the weights and gradients, about "
                f"{format_bytes(max(self.training, self.building))} to train{how}")
        if available is not None:
            text += f" ({format_bytes(available)} available)"
        return text


def estimate(sizes, dtype="float32", batch_size=32, optimizer="adam") -> MemoryEstimate:
    """A :class:`MemoryEstimate` for an MLP with layer widths ``sizes`` (see the module docstring)."""
    sizes = [int(s) for s in sizes]
    item = ITEM_SIZES.get(str(getattr(dtype, "name", dtype)), 8)
    p = parameter_count(sizes)
    largest = max((a * b + b for a, b in zip(sizes, sizes[1:])), default=0)
    slots = OPTIMIZER_SLOTS.get(str(optimizer or "adam").lower(), 2)
    return MemoryEstimate(
        parameters=p,
        network=2 * p * item,
        building=4 * p * item + 8 * largest,
        optimizer=slots * p * item,
        copies=(2 + slots) * p * item,
        batch=int(batch_size) * item * (sizes[0] + 4 * sum(sizes[1:])),
    )


def _parse_limit(text):
    text = str(text).strip().lower().replace("ib", "").replace(" ", "")
    unit = text[-1] if text and text[-1] in _SUFFIXES else ""
    number = text[: len(text) - len(unit)] if unit else text
    try:
        value = float(number) * _SUFFIXES[unit]
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{ENV_LIMIT} is not a memory size", expected="bytes, or a number with K, M, G or T, e.g. 8G",
                          got=repr(text), fix=f"set {ENV_LIMIT}=8G, or unset it to use the memory the system reports")
    return int(value)


def _meminfo_available():
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room():
    """What a cgroup v2 memory limit leaves (None without one)."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            current = int(fh.read().strip())
        return max(int(limit) - current, 0)
    except (OSError, ValueError):
        return None


def available_bytes():
    """Memory a new allocation can use now, in bytes; None when the system does not say."""
    override = os.environ.get(ENV_LIMIT)
    if override:
        return _parse_limit(override)
    found = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    return min(found) if found else None


def check_fits(needed, what, fix, available=None):
    """Refuse ``needed`` bytes (for ``what``) when more than the available memory; returns ``needed``.

    A ``ConfigError`` that names the need, what is available and how to fix
    it: raised before anything is allocated, instead of a bare MemoryError
    (or the kernel's OOM killer) minutes later.
    """
    available = available_bytes() if available is None else available
    if available is not None and needed > available:
        raise ConfigError(
            f"{what} does not fit in memory",
            expected=f"at most {format_bytes(available)} (the memory available now)",
            got=f"about {format_bytes(needed)} needed",
            fix=fix,
        )
    return needed


def check_network(sizes, dtype="float32"):
    """Refuse to build an MLP whose dials (with the peak while building) exceed the available memory."""
    est = estimate(sizes, dtype)
    shown = "-".join(str(int(s)) for s in sizes)
    check_fits(est.building, f"a {shown} network ({est.parameters:,} parameters, {getattr(dtype, 'name', dtype)})",
               "use narrower layers (a few hundred units is plenty for most tables and small images)")
    return est


def check_training(sizes, dtype="float32", batch_size=32, optimizer="adam"):
    """Refuse a training run whose network, optimizer state, copies and one batch exceed the available memory."""
    est = estimate(sizes, dtype, batch_size, optimizer)
    shown = "-".join(str(int(s)) for s in sizes)
    check_fits(max(est.training, est.building),
               f"training a {shown} network ({est.parameters:,} parameters, {optimizer or 'adam'}, batch {batch_size})",
               "use narrower layers (--layers), a smaller --batch-size, or float32")
    return est
