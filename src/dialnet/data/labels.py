"""What a data set's label column holds, said out loud: its class counts, and a warning when it looks like a feature.

``dialnet train penguins.csv`` takes the last column as the label by
default; when that column is ``year`` (3 values, so 3 "classes") the run
trains happily on the wrong question. The Data line therefore names the
label column and its class counts, and :func:`label_warnings` flags a label
column that looks like a feature:

- a year: whole numbers, all between 1800 and 2100, in a column named like
  one or with few distinct values;
- an ID: named like one (``id``, ``*_id``, ``index``), or a different value
  on most rows;
- a quantity in a classification: numbers with many distinct values (more
  than ``MANY_CLASSES``), fractional or not.

When a text feature column with a few distinct values exists, the warning
suggests it as ``--target``.
"""

from __future__ import annotations

import math

import numpy as np

from .columns import ID_NAMES, is_missing

MANY_CLASSES = 20
YEARS = (1800, 2100)
SHOWN_CLASSES = 8


def class_counts(class_names, y, shown=SHOWN_CLASSES) -> str:
    """``'Kama 70, Rosa 70, Canadian 70'``: each class and its rows (the first ``shown``, then how many more)."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(class_names))
    parts = [f"{name} {int(c):,}" for name, c in zip(class_names[:shown], counts[:shown])]
    if len(class_names) > shown:
        parts.append(f"... {len(class_names) - shown} more")
    return ", ".join(parts)


def _numbers(names):
    try:
        values = [float(n) for n in names]
    except (TypeError, ValueError):
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _suggestion(ds):
    """A text feature column with 2..MANY_CLASSES distinct values: a likelier label."""
    if ds.cells is None or not ds.column_names:
        return None
    for j, name in enumerate(ds.column_names):
        present = {str(v) for v in ds.cells[:, j] if not is_missing(str(v))}
        if 2 <= len(present) <= MANY_CLASSES and _numbers(sorted(present)) is None:
            return name
    return None


def label_warnings(ds) -> list:
    """Lines warning that a table's label column looks like a feature (a year, an ID, a quantity); [] when fine."""
    if ds.kind != "table" or ds.task != "classification" or ds.target is None or not ds.class_names:
        return []
    name = str(ds.target)
    lowered = name.strip().lower()
    values = _numbers(ds.class_names)
    k, n = len(ds.class_names), len(ds.y_train) + (0 if ds.y_test is None else len(ds.y_test))
    why = None
    if values is not None and all(v == round(v) for v in values) and YEARS[0] <= min(values) and max(values) <= YEARS[1] \
            and ("year" in lowered or k <= MANY_CLASSES):
        why = f"looks like a year ({int(min(values))}..{int(max(values))}), a feature rather than something to predict"
    elif lowered in ID_NAMES or lowered.endswith(("_id", " id")) or (n >= 10 and k > n / 2):
        why = f"looks like an ID ({k:,} distinct values in {n:,} rows)"
    elif values is not None and k > MANY_CLASSES:
        kind = "fractional numbers" if any(v != round(v) for v in values) else "whole numbers"
        why = f"holds {kind} with {k:,} distinct values: a quantity, better predicted by --task regression"
    if why is None:
        return []
    other = _suggestion(ds)
    fix = f"; if the label is another column, pass --target {other}" if other else "; pass --target to choose the label column"
    return [f"the label column {name!r} {why}{fix}"]


def labels_as_text(ds, y) -> list:
    """Labels as the file wrote them (class names, or a regression target's values), for a row digest."""
    if ds.task == "regression" or not ds.class_names:
        return [repr(float(v)) for v in np.asarray(y, dtype=np.float64)]
    names = list(ds.class_names)
    return [names[int(i)] for i in y]
