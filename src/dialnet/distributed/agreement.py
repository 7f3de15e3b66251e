"""The start-of-run check that every rank was given the same options and data: a fingerprint compared across ranks.

Each rank describes what it was given as short strings (an option's value,
an array's shape, dtype and digest); rank 0's description is the reference
and the first item another rank differs on is named in the error, with
both values, so "rank 1 has batch_size 64, rank 0 has 32" is what a user
reads instead of a run that hangs or silently trains two different models.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .comm import DistributedError

_PLAIN = (bool, int, float, str, bytes, type(None))


digest = backend.array_digest  # shapes, dtypes and bytes of arrays (a checkpoint's data fingerprint too)


def describe(value, depth=0) -> str:
    """A value as a string that is equal on two ranks exactly when the values mean the same thing.

    Numbers, strings and containers by value; arrays by shape, dtype and
    digest; an optimizer by its ``config()``; other objects by their type
    and public whole-number, text and flag attributes (never by ``id`` or a
    float such as a start time, which differ from process to process).
    """
    if isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, np.ndarray) or hasattr(value, "__array_namespace__"):
        arr = backend.to_numpy(value)
        return f"array{arr.shape} {arr.dtype} {digest(arr)[:12]}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(describe(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ", ".join(f"{k!r}: {describe(v, depth + 1)}" for k, v in items) + "}"
    name = type(value).__qualname__
    config = getattr(value, "config", None)
    if callable(config):
        try:
            return f"{name}({describe(config(), depth + 1)})"
        except TypeError:
            pass
    if depth > 1 or not hasattr(value, "__dict__"):
        return name
    # settings only (whole numbers, text, flags): a float attribute may be a start time, which differs by rank
    fields = {k: v for k, v in vars(value).items()
              if not k.startswith("_") and isinstance(v, (bool, int, str, type(None), np.integer))}
    return f"{name}({describe(fields, depth + 1)})"


def check_same(world, items: dict) -> None:
    """Raise a DistributedError on every rank if any rank's ``items`` (name -> description) differ from rank 0's."""
    everyone = world.gather(items)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone[1:], start=1):
        for key in list(reference) + [k for k in theirs if k not in reference]:
            mine, other = reference.get(key), theirs.get(key)
            if mine != other:
                raise DistributedError(
                    f"the ranks of this distributed run disagree on {key}",
                    expected=f"the same on every rank; rank 0 has {mine}",
                    got=f"rank {rank} has {other}",
                    fix="start every rank with the same command, options and data (the same seed, file and "
                        "settings); in Python, pass the same arguments to fit on every rank",
                )
