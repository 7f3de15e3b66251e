"""Column rules: how a table's text cells become numbers, learned on the training rows.

A :class:`ColumnRule` says what one CSV feature column turns into:

- numeric: one input; a missing (or unreadable) cell becomes the training
  median ``fill``.
- categorical: one input per category (one-hot, categories sorted); a
  missing cell is the category ``(missing)`` when training had missing
  cells, else the most frequent one (``fill``); a value not among the
  categories (unseen, or rarer than the ``max_categories`` most frequent)
  sets ``name=(other)`` when there is one, else no input.
- dropped: an ID-like column (a different value on every row), unused.

The saved form of a rule is a small JSON object (``to_config``), e.g.
``{"name": "age", "kind": "numeric", "fill": 41.0}`` or ``{"name": "color",
"kind": "categorical", "categories": [...], "other": false, "fill": "red"}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

MAX_CATEGORIES = 50
MISSING_CATEGORY = "(missing)"
ID_NAMES = {"", "id", "index", "row", "rowid", "row_id", "unnamed: 0"}
MIN_ROWS_FOR_ID = 10
MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a", "missing"}
KINDS = ("numeric", "categorical", "dropped")


def is_missing(text) -> bool:
    """An empty or NA-like cell ("", NA, N/A, NaN, null, none, ?, -)."""
    return text.strip().lower() in MISSING


def to_float(text):
    """The finite number a cell holds, or None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class ColumnRule:
    """What one feature column turns into (see the module docstring).

    Attributes
    ----------
    name : str
        The column's header name (or ``x{i}``).
    kind : {"numeric", "categorical", "dropped"}
    fill : float or str or None
        The value a missing cell takes: the training median (numeric) or a category.
    categories : tuple of str
        One-hot categories, sorted (``(missing)`` last when training had blanks).
    other : bool
        Whether rarer values share one ``name=(other)`` input.
    """

    name: str
    kind: str
    fill: float | str | None = None
    categories: tuple = field(default_factory=tuple)
    other: bool = False

    @property
    def width(self) -> int:
        """How many inputs the column becomes."""
        if self.kind == "numeric":
            return 1
        if self.kind == "categorical":
            return len(self.categories) + int(self.other)
        return 0

    @property
    def feature_names(self) -> list:
        """``age``, or ``color=red``, ``color=blue``, ... (``color=(other)`` last)."""
        if self.kind == "numeric":
            return [self.name]
        if self.kind == "categorical":
            return [f"{self.name}={c}" for c in self.categories] + ([f"{self.name}=(other)"] if self.other else [])
        return []

    def encode(self, cells):
        """One column of text cells -> ``(inputs (n, width) float64, cells imputed)``."""
        n = len(cells)
        imputed = 0
        if self.kind == "numeric":
            out = np.empty((n, 1), dtype=np.float64)
            for i, v in enumerate(cells):
                x = to_float(str(v))
                if x is None:
                    x, imputed = self.fill, imputed + 1
                out[i, 0] = x
            return out, imputed
        out = np.zeros((n, self.width), dtype=np.float64)
        if self.kind == "categorical":
            index = {c: k for k, c in enumerate(self.categories)}
            for i, v in enumerate(cells):
                v = str(v)
                if is_missing(v):
                    v, imputed = self.fill, imputed + 1
                k = index.get(v)
                if k is None and self.other:
                    k = len(self.categories)
                if k is not None:
                    out[i, k] = 1.0
        return out, imputed

    def to_config(self) -> dict:
        """The rule as saved in the model file."""
        if self.kind == "numeric":
            return {"name": self.name, "kind": "numeric", "fill": float(self.fill)}
        if self.kind == "categorical":
            return {"name": self.name, "kind": "categorical", "categories": list(self.categories), "other": bool(self.other),
                    "fill": self.fill}
        return {"name": self.name, "kind": "dropped"}

    @classmethod
    def from_config(cls, config):
        """A rule from its saved form; ``None`` when the form is not a valid rule."""
        if not isinstance(config, dict) or not isinstance(config.get("name"), str) or config.get("kind") not in KINDS:
            return None
        kind = config["kind"]
        if kind == "numeric":
            fill = config.get("fill")
            if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not math.isfinite(fill):
                return None
            return cls(config["name"], "numeric", float(fill))
        if kind == "categorical":
            categories, fill = config.get("categories"), config.get("fill")
            if not isinstance(categories, list) or not all(isinstance(v, str) for v in categories):
                return None
            if fill is not None and (not isinstance(fill, str) or fill not in categories):
                return None  # a missing cell would map to no input at all
            if len(set(categories)) != len(categories):
                return None
            return cls(config["name"], "categorical", fill, tuple(categories), bool(config.get("other")))
        return cls(config["name"], "dropped")


def _raw_float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _rows_text(rows, shown=5):
    listed = ", ".join(str(r) for r in rows[:shown])
    return listed + (f" and {len(rows) - shown:,} more" if len(rows) > shown else "")


def check_finite_column(values, name, where="the table", numbering=None, unit="data rows"):
    """A number column with ``inf``/``-inf`` (or 1e999) cells is an error naming the column and the rows.

    Infinity is not a category: without this check such a column would turn
    into text and be one-hot encoded, value by value. Rows are the table's
    data rows counted from 1, or ``numbering[i]`` (e.g. file lines) with ``unit``.
    """
    bad, numeric = [], True
    for i, v in enumerate(values):
        if is_missing(v):
            continue
        x = _raw_float(v)
        if x is None:
            numeric = False
            break
        if not math.isfinite(x):
            bad.append(i)
    if numeric and bad:
        shown = [numbering[i] if numbering is not None else i + 1 for i in bad]
        raise DataError(f"column {name!r} of {where} has infinite values ({unit} {_rows_text(shown)})",
                        expected="finite numbers (a blank cell is imputed)", got=f"{len(bad):,} cells such as "
                        f"{values[bad[0]]!r}", fix="replace those cells with numbers, or leave them blank to impute them")


def check_cells(rules, cells, labels=None):
    """Refuse cells a model cannot read, naming the row, the column and the value (used at predict time).

    A number column's cell must be a finite number or blank (blank cells are
    imputed, as in training); ``"abc"`` or ``inf`` there is an error, not
    the training median in disguise. Text columns take any value (an unseen
    one counts as ``(other)``).
    """
    cells = np.asarray(cells, dtype=object)
    for j, rule in enumerate(rules):
        if rule.kind != "numeric":
            continue
        for i, v in enumerate(cells[:, j]):
            v = str(v)
            if not is_missing(v) and to_float(v) is None:
                where = labels[i] if labels is not None else f"row {i + 1}"
                what = "an infinite value" if _raw_float(v) is not None else "not a number"
                raise DataError(f"{where}: column {rule.name!r} holds {v[:40]!r}, {what}",
                                expected=f"a finite number in column {rule.name!r} (or a blank cell, imputed with the "
                                f"training median {rule.fill:g})", got=repr(v[:40]),
                                fix=f"write a number for {rule.name!r}, or leave the cell blank")


def _median(numbers) -> float:
    """The median, without overflow for values near the float limit (the mean of two such middles)."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.median(numbers))
        if not math.isfinite(value):
            value = float(np.median(np.asarray(numbers, dtype=np.float64) / 2) * 2)  # halving is exact
    return value


def check_columns_have_values(cells, names, where="the table"):
    """A DataError naming the first feature column whose cells are all missing."""
    cells = np.asarray(cells, dtype=object)
    for j, name in enumerate(names):
        if all(is_missing(str(v)) for v in cells[:, j]):
            raise DataError(f"column {name!r} of {where} has no values", expected="at least one value in every feature column",
                            got=f"{cells.shape[0]:,} empty cells", fix="drop the column from the file")


def fit_column_rules(cells, names, max_categories=MAX_CATEGORIES, where="the table"):
    """Decide per feature column how to turn its text cells into numbers; learn the constants.

    A column whose present cells are all finite numbers is numeric (missing
    cells: the training median). Any other column is categorical: one-hot
    over its ``max_categories`` most frequent values (sorted), the rest
    pooled as ``(other)``. A text column unique on every row, or an
    integer column named like an ID (``id``, ``*_id``, ``index``), is
    dropped once the table has ``MIN_ROWS_FOR_ID`` rows.

    Parameters
    ----------
    cells : array of str, shape (n, columns)
        Training rows only.
    names : list of str

    Returns
    -------
    (rules, notes) : list of ColumnRule, list of str
        ``notes`` are lines a user should hear about (pooled values, dropped columns).
    """
    cells = np.asarray(cells, dtype=object)
    n = cells.shape[0]
    check_columns_have_values(cells, names, where)
    rules, notes = [], []
    for j, name in enumerate(names):
        values = [str(v) for v in cells[:, j]]
        present = [v for v in values if not is_missing(v)]
        numbers = [to_float(v) for v in present]
        check_finite_column(values, name, where)
        if all(x is not None for x in numbers):
            ints = all(x == round(x) for x in numbers)
            if is_id_name(name) and ints and n >= MIN_ROWS_FOR_ID and len(set(numbers)) == len(values):
                rules.append(ColumnRule(name, "dropped"))
                continue
            rules.append(ColumnRule(name, "numeric", _median(numbers)))
            continue
        counts = {}
        for v in present:
            counts[v] = counts.get(v, 0) + 1
        rule, note = text_column_rule(name, counts, n, len(present) < len(values), max_categories)
        rules.append(rule)
        if note:  # (a dropped column has none: finish_rules names them all at once)
            notes.append(note)
    return finish_rules(rules, notes, where)


def is_id_name(name) -> bool:
    """A column named like an ID: ``id``, ``index``, ``*_id`` (dropped when it holds a different integer on every row)."""
    lowered = name.strip().lower()
    return lowered in ID_NAMES or lowered.endswith(("_id", " id"))


def text_column_rule(name, counts, n, has_missing, max_categories=MAX_CATEGORIES):
    """The rule for a text column from its value ``counts`` over ``n`` rows, and a note for the user (or None).

    Dropped when it is an ID (a different value on every one of at least
    ``MIN_ROWS_FOR_ID`` rows); else categorical: its ``max_categories`` most
    frequent values (sorted) plus ``(missing)`` when a cell was, the rest
    pooled as ``(other)``.
    """
    if n >= MIN_ROWS_FOR_ID and len(counts) == n:
        return ColumnRule(name, "dropped"), None
    by_count = sorted(counts, key=lambda v: (-counts[v], v))
    categories = sorted(by_count[:max_categories])
    if has_missing:
        categories.append(MISSING_CATEGORY)
    other = len(by_count) > max_categories
    rule = ColumnRule(name, "categorical", MISSING_CATEGORY if has_missing else by_count[0], tuple(categories), other)
    note = None
    if other:
        note = (f"column {name!r}: {len(by_count):,} values; the {max_categories} most frequent get an input each, "
                "the rest share '(other)'")
    return rule, note


def finish_rules(rules, notes, where):
    """The closing note on dropped ID columns, and an error when no usable column is left; returns ``(rules, notes)``."""
    dropped = [rule.name for rule in rules if rule.kind == "dropped"]
    if dropped:
        notes.append("dropped ID-like column(s) (a different value on every row): " + ", ".join(repr(d) for d in dropped))
    if all(rule.kind == "dropped" for rule in rules):
        raise DataError(f"{where} has no usable feature column", expected="at least one column that is not an ID",
                        got="only ID-like columns: " + ", ".join(dropped), fix="add feature columns")
    return rules, notes


def encode_cells(rules, cells):
    """Text cells ``(n, columns)`` -> ``(inputs float64, cells imputed)`` by the rules, column by column."""
    cells = np.asarray(cells, dtype=object)
    n = cells.shape[0]
    parts, imputed = [], 0
    for j, rule in enumerate(rules):
        if rule.kind == "dropped":
            continue
        part, filled = rule.encode(cells[:, j])
        parts.append(part)
        imputed += filled
    return (np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))), imputed
