"""Preprocessing learned from the rows of all ranks, each rank holding only its own: the single-process constants.

When every rank reads only its shard, a Preprocessor fitted on one shard
would scale by that shard's statistics and the ranks would disagree. Here
each statistic is reduced over the ranks so that it equals what one process
fitting all rows computes (to floating-point rounding for sums; exactly for
minima, maxima, medians, categories and counts):

- ``minmax``: element-wise MIN and MAX of the shards' extremes;
- ``standard``: the global mean from summed sums, then the standard deviation
  from summed squared deviations about it (numpy's two-pass formula);
- a table's column rules: numeric or not (all ranks' cells), the median of a
  numeric column exactly (a bisection over the float64 order with summed
  counts: no rank ever holds another's values), the value counts of a text
  column summed (its ``max_categories`` most frequent values, ties by name),
  missing cells and ID-like columns judged on all rows;
- regression targets' mean and std, and the images' background (border mean).

:func:`fit_transform` is :meth:`Preprocessor.fit_transform
<dialnet.data.preprocessing.Preprocessor.fit_transform>` on a rank's shard
with these statistics; the Preprocessor it fills saves and loads as any
other (``to_config``/``from_config``).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..data.columns import (
    MAX_CATEGORIES,
    MIN_ROWS_FOR_ID,
    ColumnRule,
    check_finite_column,
    finish_rules,
    is_id_name,
    is_missing,
    text_column_rule,
    to_float,
)
from ..errors import DataError, ShapeError


def row_offset(world, n_local):
    """``(first global row of this rank, rows on all ranks)``: the shards in rank order make up the data."""
    counts = world.gather(int(n_local))
    return sum(counts[: world.rank]), sum(counts)


# ---------------------------------------------------------------- numbers


def min_max(world, X, axis=0):
    """The minimum and maximum over all ranks' rows (``axis=None``: over every value), as float64."""
    X = np.asarray(X, dtype=np.float64)
    shape = () if axis is None else X.shape[1:]
    low = X.min(axis=axis) if X.size else np.full(shape, np.inf)
    high = X.max(axis=axis) if X.size else np.full(shape, -np.inf)
    low, high = world.min_max(np.atleast_1d(low), np.atleast_1d(high))
    return (low[0], high[0]) if axis is None else (low, high)


def mean_std(world, X, axis=0):
    """The mean and (population) standard deviation over all ranks' rows, numpy's two-pass way, as float64."""
    X = np.asarray(X, dtype=np.float64)
    count = X.size if axis is None else X.shape[0]
    n = world.reduce(int(count))
    sums = np.atleast_1d(X.sum(axis=axis)).astype(np.float64)
    mean = world.sum_(sums) / n
    centered = X - (mean[0] if axis is None else mean)
    squares = np.atleast_1d(np.square(centered).sum(axis=axis)).astype(np.float64)
    std = np.sqrt(world.sum_(squares) / n)
    return (mean[0], std[0]) if axis is None else (mean, std)  # numpy scalars for axis=None, as numpy gives


def _order_keys(values):
    """float64 -> int64 keys that sort as the floats do (negative floats' bits flipped)."""
    bits = np.asarray(values, dtype=np.float64).view(np.int64)
    return np.where(bits < 0, bits ^ np.int64(0x7FFFFFFFFFFFFFFF), bits)


def _from_key(key):
    key = np.int64(key)
    bits = key ^ np.int64(0x7FFFFFFFFFFFFFFF) if key < 0 else key
    return float(np.array([bits], dtype=np.int64).view(np.float64)[0])


def kth_smallest(world, values, k):
    """The ``k``-th smallest (0-based) of all ranks' values, exactly: a bisection over the float64 order.

    Each round every rank counts its values at or below a candidate and the
    counts are summed; 64 rounds at most, whatever the data's size.
    """
    keys = np.sort(_order_keys(values))
    lo = world.reduce(int(keys[0]) if keys.size else 2**63 - 1, "MIN")
    hi = world.reduce(int(keys[-1]) if keys.size else -(2**63), "MAX")
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if world.reduce(int(np.searchsorted(keys, np.int64(mid), side="right"))) >= k + 1:
            hi = mid
        else:
            lo = mid + 1
    return _from_key(lo)


def median(world, values) -> float:
    """``np.median`` of all ranks' values together (the mean of the two middle ones for an even count)."""
    values = np.asarray(values, dtype=np.float64)
    n = world.reduce(int(values.size))
    if n == 0:
        raise DataError("no values to take the median of", expected="at least one value on some rank", got="none",
                        fix="check that every rank read its rows")
    middle = [kth_smallest(world, values, (n - 1) // 2)]
    if n % 2 == 0:
        middle.append(kth_smallest(world, values, n // 2))
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.median(middle))
        if not math.isfinite(value):
            value = float(np.median(np.asarray(middle) / 2) * 2)  # halving is exact
    return value


# ---------------------------------------------------------------- a table's columns


def fit_column_rules(world, cells, names, max_categories=MAX_CATEGORIES, where="the table"):
    """:func:`dialnet.data.columns.fit_column_rules` over the cells of all ranks: the same rules and notes.

    ``cells`` are this rank's rows of text cells ``(n_local, columns)``.
    """
    cells = np.asarray(cells, dtype=object).reshape(-1, len(names))
    offset, n = row_offset(world, cells.shape[0])
    rules, notes = [], []
    for j, name in enumerate(names):
        values = [str(v) for v in cells[:, j]]
        present = [v for v in values if not is_missing(v)]
        if world.reduce(len(present)) == 0:
            raise DataError(f"column {name!r} of {where} has no values", expected="at least one value in every feature column",
                            got=f"{n:,} empty cells", fix="drop the column from the file")
        numbers = [to_float(v) for v in present]
        world.agree(check_finite_column, values, name, where, [offset + i + 1 for i in range(len(values))])
        if world.reduce(all(x is not None for x in numbers), "LAND"):
            ints = world.reduce(all(x == round(x) for x in numbers), "LAND")
            if is_id_name(name) and ints and n >= MIN_ROWS_FOR_ID and _distinct(world, numbers) == n:
                rules.append(ColumnRule(name, "dropped"))
                continue
            rules.append(ColumnRule(name, "numeric", median(world, numbers)))
            continue
        counts = {}
        for part in world.gather(dict(Counter(present))):
            for v, c in part.items():
                counts[v] = counts.get(v, 0) + c
        rule, note = text_column_rule(name, counts, n, world.reduce(len(present) < len(values), "LOR"), max_categories)
        rules.append(rule)
        if note:  # (a dropped column has none: finish_rules names them all at once)
            notes.append(note)
    return finish_rules(rules, notes, where)


def _distinct(world, numbers):
    """How many distinct values all ranks' ``numbers`` hold (asked only of ID-like columns)."""
    return len(set().union(*world.gather(set(numbers))))


# ---------------------------------------------------------------- the Preprocessor


def fit_transform(world, pre, X, column_names=None, *, dtype=np.float32, max_categories=MAX_CATEGORIES, where="the table"):
    """``pre.fit_transform(X, column_names)`` with constants learned from all ranks' rows; this rank's rows scaled.

    ``pre`` is a :class:`~dialnet.data.preprocessing.Preprocessor` (its
    ``kind`` and ``scaling`` set); every rank ends with the same constants.
    """
    pre.notes = []
    if column_names is None:
        encoded = np.asarray(X, dtype=np.float64)
    else:
        pre.columns, pre.notes = fit_column_rules(world, X, list(column_names), max_categories, where)
        pre.feature_names = [name for rule in pre.columns for name in rule.feature_names]
        encoded, imputed = pre.encode(X)
        imputed = world.reduce(int(imputed))
        if imputed:
            pre.notes.append(f"imputed {imputed:,} missing cells in the training rows (median, or the column's "
                             "'(missing)' category)")
    n = world.reduce(int(encoded.shape[0]))
    if encoded.ndim != 2 or n == 0:
        raise ShapeError("preprocessing is fitted on a table of samples", expected="shape (n >= 1, features)",
                         got=f"shape {encoded.shape} on rank {world.rank}, {n} rows in all",
                         fix="pass the training inputs as a 2-D array")
    axis = None if pre.kind == "image" else 0
    pre.min = pre.max = pre.mean = pre.std = None
    if pre.scaling == "minmax":
        pre.min, pre.max = min_max(world, encoded, axis)
    elif pre.scaling == "standard":
        pre.mean, pre.std = mean_std(world, encoded, axis)
    if pre.kind == "image" and pre.image_size is None:
        pre.image_size = int(round(math.sqrt(encoded.shape[1])))
    return pre.scale(encoded, dtype)


def fit_target(world, pre, y):
    """``pre.fit_target(y)`` over all ranks' regression targets; returns ``pre``."""
    mean, std = mean_std(world, np.asarray(y, dtype=np.float64).reshape(-1), axis=None)
    pre.target_mean, pre.target_std = float(mean), (float(std) if std > 1e-12 else 1.0)
    return pre


def border_mean(world, images) -> float:
    """:func:`dialnet.data.border_mean` over all ranks' square images ``(n, s*s)``."""
    images = np.asarray(images)
    s = int(round(math.sqrt(images.shape[1])))
    sq = images.reshape(-1, s, s)
    edge = np.concatenate([sq[:, 0, :], sq[:, -1, :], sq[:, 1:-1, 0], sq[:, 1:-1, -1]], axis=1)
    return float(mean_std(world, edge, axis=None)[0])
