"""CSV files: feature columns (numbers or text) and one label column.

- Reading: UTF-8 (a BOM is dropped), Windows or Unix line endings, quoted
  fields, blank lines skipped. The delimiter is the one of tab, semicolon
  and comma that splits the first rows into the same number (>= 2) of
  columns, the widest such split winning (ties: tab, then semicolon).
  A row of another width is an error naming its line.
- Header: the first row is a header when one of its cells is not a number
  in a column whose next row is a number (``sepal_length`` over ``5.1``),
  or, for all-text tables, when none of its cells occurs again in its column.
- Label column: the last one, unless ``target`` names it (a header name
  or a 0-based index, negative counts from the end). Rows without a label
  are dropped (with a note).
- Task (``task="auto"``): text labels are classes; numeric labels with a
  fractional value are a regression target; whole-number labels are
  classes when they take few distinct values, ``k <= 20`` and
  ``k <= max(2, n / 2)`` (every class seen twice on average), otherwise a
  regression target (counts, prices, years).
- Feature cells stay text here; the column rules of
  :mod:`dialnet.data.columns` decide per column (numeric or categorical),
  impute missing cells and one-hot encode, with constants learned on the
  training rows only (by the model's Preprocessor).
"""

from __future__ import annotations

import csv
import io
import math
import os

import numpy as np

from ..errors import DataError
from .columns import MISSING, check_finite_column, encode_cells, fit_column_rules, is_missing  # noqa: F401  (MISSING: re-exported)

MAX_ROWS = 10_000_000
MAX_CLASSES_AUTO = 20
DELIMITERS = ("\t", ";", ",")
TASKS = ("auto", "classification", "regression")


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value


class Rows(list):
    """The non-blank rows of a CSV file; ``lines[i]`` is the file line where row ``i`` ends."""

    lines: list
    delimiter: str = ","


def _choose_delimiter(text):
    """Tab, semicolon or comma: the one that splits the first rows into the most equal columns (>= 2)."""
    sample = [ln for ln in text.splitlines()[:200] if ln.strip()]
    if len(sample) > 1 and not text.endswith(("\n", "\r")):
        sample = sample[:-1] or sample  # the last line of a sample may be cut short
    best, best_width = ",", 1
    for d in DELIMITERS:
        try:
            widths = {len(r) for r in csv.reader(sample, delimiter=d) if any(c.strip() for c in r)}
        except csv.Error:
            continue
        if len(widths) == 1 and (w := widths.pop()) > best_width:
            best, best_width = d, w
    if best_width == 1:  # no delimiter splits every row alike: take the most frequent one
        counts = {d: sum(ln.count(d) for ln in sample) for d in DELIMITERS}
        best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best


def read_rows(path, limit=None, seed=0) -> Rows:
    """The non-blank rows of a CSV file, cells stripped; see the module docstring for the dialect.

    With ``limit``, the file is streamed and only the first row (a header,
    or data) and a seeded random choice of ``limit`` data rows (kept in
    file order) are held: a 50 MB file read for ``--limit 500`` costs
    memory for 500 rows, not for the whole table. ``Rows.total`` is then
    the number of data rows in the file.
    """
    spath = os.fspath(path)
    if os.path.isdir(spath):
        raise DataError(f"{spath} is a folder, not a CSV file", expected="a .csv file", got="a directory",
                        fix="pass the CSV file's path")
    if limit is not None:
        return _sample_rows(spath, int(limit), seed)
    try:
        with open(spath, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise DataError(f"CSV file {spath} does not exist", expected="an existing file", got=spath,
                        fix="check the path") from None
    except UnicodeDecodeError:
        raise DataError(f"{spath} is not a text CSV file", expected="UTF-8 text with comma-separated values",
                        got="bytes that are not UTF-8 text", fix="pass a CSV file (save it as UTF-8 CSV)") from None
    except OSError as exc:
        raise DataError(f"cannot read CSV file {spath}", expected="a readable CSV file", got=str(exc),
                        fix="check the path and the file's format") from None
    if "\0" in text[:65536]:
        raise DataError(f"{spath} is not a text CSV file", expected="UTF-8 text with comma-separated values",
                        got="binary bytes (NUL characters)", fix="pass a CSV file (save it as UTF-8 CSV)")
    delimiter = _choose_delimiter(text[: 256 * 1024])
    rows, lines = Rows(), []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            cells = [c.strip() for c in row]
            if any(cells):
                rows.append(cells)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"cannot read CSV file {spath} (line {reader.line_num})", expected="a well-formed CSV file",
                        got=str(exc), fix="check the quoting on that line") from None
    rows.lines, rows.delimiter = lines, delimiter
    if not rows:
        raise DataError(f"CSV file {spath} is empty", expected="rows of values with a label column",
                        got="no rows", fix="pass a CSV file with data")
    return rows


def _open_error(spath, exc):
    if isinstance(exc, FileNotFoundError):
        return DataError(f"CSV file {spath} does not exist", expected="an existing file", got=spath, fix="check the path")
    if isinstance(exc, UnicodeDecodeError):
        return DataError(f"{spath} is not a text CSV file", expected="UTF-8 text with comma-separated values",
                         got="bytes that are not UTF-8 text", fix="pass a CSV file (save it as UTF-8 CSV)")
    return DataError(f"cannot read CSV file {spath}", expected="a readable CSV file", got=str(exc),
                     fix="check the path and the file's format")


def _sample_rows(spath, limit, seed) -> Rows:
    """The first non-blank row and a seeded reservoir of ``limit`` later rows, streamed (Li's algorithm L:
    O(limit) memory, a few random draws per kept row)."""
    rng = np.random.default_rng(seed)
    try:
        with open(spath, newline="", encoding="utf-8-sig") as fh:
            head = fh.read(256 * 1024)
            if "\0" in head[:65536]:
                raise DataError(f"{spath} is not a text CSV file", expected="UTF-8 text with comma-separated values",
                                got="binary bytes (NUL characters)", fix="pass a CSV file (save it as UTF-8 CSV)")
            delimiter = _choose_delimiter(head)
            fh.seek(0)
            reader = csv.reader(fh, delimiter=delimiter)
            rows = ((reader.line_num, row) for row in reader if row and any(c.strip() for c in row))
            first = next(rows, None)
            kept, seen = [], 0
            for item in rows:
                kept.append(item)
                seen += 1
                if seen == limit:
                    break
            if seen == limit and limit > 0:
                w = math.exp(math.log(rng.random()) / limit)
                while True:
                    skip = math.floor(math.log(rng.random()) / math.log1p(-w)) if w < 1.0 else 0
                    item = None
                    for item in rows:
                        seen += 1
                        if skip == 0:
                            break
                        skip -= 1
                        item = None
                    if item is None:
                        break
                    kept[int(rng.integers(limit))] = item
                    w *= math.exp(math.log(rng.random()) / limit)
    except DataError:
        raise
    except csv.Error as exc:
        raise DataError(f"cannot read CSV file {spath}", expected="a well-formed CSV file", got=str(exc),
                        fix="check the quoting in the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _open_error(spath, exc) from None
    if first is None:
        raise DataError(f"CSV file {spath} is empty", expected="rows of values with a label column",
                        got="no rows", fix="pass a CSV file with data")
    kept.sort(key=lambda item: item[0])
    out = Rows([[c.strip() for c in first[1]]] + [[c.strip() for c in row] for _, row in kept])
    out.lines = [first[0]] + [line for line, _ in kept]
    out.delimiter = delimiter
    out.total = seen
    return out


def _line(rows, i):
    lines = getattr(rows, "lines", None)
    return lines[i] if lines is not None and i < len(lines) else i + 1


def has_header(rows) -> bool:
    """A header row has a non-number where the next row has a number (or, all text, no cell that recurs below)."""
    if len(rows) < 2:
        return _number(rows[0][0]) is None if rows and rows[0] else False
    first, second = rows[0], rows[1]
    if any(_number(a) is None and not is_missing(a) and _number(b) is not None for a, b in zip(first, second)):
        return True
    if all(_number(a) is None and not is_missing(a) for a in first):
        below = rows[1:201]
        return all(all(len(r) <= j or r[j] != a for r in below) for j, a in enumerate(first))
    return False


def resolve_target(target, header, n_cols, where):
    """Column index of the label column from a name or an index (default: the last)."""
    if target is None:
        return n_cols - 1
    text = str(target).strip()
    try:
        index = int(text)
    except ValueError:
        index = None
    if index is not None:
        if not -n_cols <= index < n_cols:
            raise DataError(f"target column {index} is out of range in {where}",
                            expected=f"an index from 0 to {n_cols - 1} (or -1 for the last)", got=str(index),
                            fix="pass --target with a column index or a header name")
        return index % n_cols
    if header is None:
        raise DataError(f"{where} has no header row, so the target cannot be found by name",
                        expected="a column index", got=repr(text), fix="pass --target with a 0-based column index, e.g. --target -1")
    if text not in header:
        lowered = [h.lower() for h in header]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        raise DataError(f"target column {text!r} is not in {where}", expected="one of " + ", ".join(header),
                        got=repr(text), fix="pass --target with one of the header names or a column index")
    return header.index(text)


def check_widths(rows, width, where, first=0):
    """Every row from ``first`` on must have ``width`` cells; else a DataError naming the file line."""
    for i in range(first, len(rows)):
        if len(rows[i]) != width:
            raise DataError(f"row {_line(rows, i)} of {where} has {len(rows[i])} columns",
                            expected=f"{width} columns like the first row",
                            got=f"{len(rows[i])}: {','.join(rows[i])[:80]}",
                            fix="make every row the same width (quote cells that contain the delimiter)")


def _distinct_names(names, notes, where):
    """Header names made distinct (``x, x, x`` -> ``x, x_2, x_3``), with a note saying so."""
    seen, out, repeated = {}, [], []
    for name in names:
        key = name or ""
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1 and key:
            new = f"{key}_{seen[key]}"
            while new in names:
                new += "_"
            out.append(new)
            if key not in repeated:
                repeated.append(key)
        else:
            out.append(name)
    if repeated:
        notes.append(f"the header of {where} repeats the column name(s) " + ", ".join(repr(r) for r in repeated)
                     + "; they are told apart as " + ", ".join(repr(n) for n in out if n not in names))
    return out


def parse_table(rows, target=None, where="the CSV file", header=None):
    """Split rows into feature cells, raw labels and names.

    Returns ``(cells, labels, feature_names, target_name, notes)``: ``cells``
    an ``(n, features)`` array of str, ``labels`` a list of str. Rows
    whose label is missing are dropped and counted in ``notes``.
    """
    if header is None:
        header = has_header(rows)
    names = rows[0] if header else None
    start = 1 if header else 0
    if len(rows) <= start:
        raise DataError(f"{where} has a header but no data rows", expected="at least one data row",
                        got="only a header", fix="add data rows")
    if len(rows) - start > MAX_ROWS:
        raise DataError(f"{where} has too many rows", expected=f"at most {MAX_ROWS:,}", got=f"{len(rows) - start:,}",
                        fix="use a sample of the rows")
    n_cols = len(names) if names is not None else len(rows[0])
    check_widths(rows, n_cols, where, start)
    if n_cols < 2:
        raise DataError(f"{where} has only one column", expected="at least one feature column and one label column",
                        got="1 column", fix="add feature columns, or check the delimiter (comma, semicolon or tab)")
    notes = []
    if names is not None:
        names = _distinct_names(names, notes, where)
    t = resolve_target(target, names, n_cols, where)
    feature_cols = [c for c in range(n_cols) if c != t]
    feature_names = [names[c] or f"x{c}" for c in feature_cols] if names is not None else [f"x{c}" for c in feature_cols]
    target_name = names[t] if names is not None else str(t)
    body = rows[start:]
    keep = [i for i, row in enumerate(body) if not is_missing(row[t])]
    if len(keep) < len(body):
        kept = set(keep)
        first = _line(rows, start + next(i for i in range(len(body)) if i not in kept))
        if not keep:
            raise DataError(f"the label column {target_name!r} of {where} is empty", expected="a label in the rows",
                            got=f"{len(body)} rows without a label", fix="pick the label column with --target")
        notes.append(f"dropped {len(body) - len(keep):,} rows without a label (the first on line {first})")
    for j, c in enumerate(feature_cols):  # inf in a number column: an error naming the file lines, not a text category
        check_finite_column([row[c] for row in body], feature_names[j], where, [_line(rows, start + i) for i in range(len(body))],
                            "lines")
    cells = np.array([[body[i][c] for c in feature_cols] for i in keep], dtype=object).reshape(len(keep), len(feature_cols))
    labels = [body[i][t] for i in keep]
    return cells, labels, feature_names, target_name, notes


def parse_features(body, columns, names=None, first_line=1, where="the CSV file"):
    """The numbers in ``columns`` of the rows ``body`` as a float64 array (missing cells are NaN).

    Text cells raise a DataError naming the row and column; for tables
    with text columns use a Preprocessor (:mod:`dialnet.data.preprocessing`).
    """
    feature_names = [names[c] for c in columns] if names is not None else [f"x{c}" for c in columns]
    X = np.empty((len(body), len(columns)), dtype=np.float64)
    for i, row in enumerate(body):
        for j, c in enumerate(columns):
            value = _number(row[c])
            if value is None:
                if is_missing(row[c]):
                    value = math.nan
                else:
                    col = f"column {c + 1} ({feature_names[j]})" if names is not None else f"column {c + 1}"
                    raise DataError(f"{col} of {where} is not numeric (row {i + first_line})",
                                    expected="numbers in every feature column", got=repr(row[c][:40]),
                                    fix="train a model on this table with its text columns (they are one-hot encoded)")
            X[i, j] = value
    return X


def detect_task(labels, task="auto", where="the CSV file") -> str:
    """'classification' or 'regression' for raw label strings (the rule is in the module docstring)."""
    task = str(task or "auto").lower()
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}", expected="one of " + ", ".join(TASKS), got=repr(task),
                        fix="use --task auto, classification or regression")
    numbers = [_number(v) for v in labels]
    numeric = all(v is not None and math.isfinite(v) for v in numbers)
    if task == "regression":
        if not numeric:
            bad = next(v for v, x in zip(labels, numbers) if x is None or not math.isfinite(x))
            raise DataError(f"the label column of {where} is not numeric, so it cannot be a regression target",
                            expected="numbers in every label cell", got=repr(bad[:40]),
                            fix="use --task classification, or pick a numeric column with --target")
        return task
    if task == "classification" or not numeric:
        return "classification"
    if any(v != round(v) for v in numbers):
        return "regression"
    k = len(set(numbers))
    return "classification" if k <= MAX_CLASSES_AUTO and k <= max(2, len(numbers) / 2) else "regression"


def encode_labels(labels, where="the CSV file"):
    """Map raw label strings to 0..K-1; return ``(y, class_names)``.

    Numeric labels are sorted by value and named as written without a
    trailing ``.0`` ("1", "2", "3"); text labels are sorted as text.
    """
    numbers = [_number(v) for v in labels]
    if all(v is not None and math.isfinite(v) for v in numbers):
        def name(v):
            return str(int(v)) if v == round(v) else repr(v)

        values = sorted(set(numbers))
        names = [name(v) for v in values]
        index = {v: i for i, v in enumerate(values)}
        y = np.array([index[v] for v in numbers], dtype=np.int64)
    else:
        names = sorted(set(labels))
        index = {v: i for i, v in enumerate(names)}
        y = np.array([index[v] for v in labels], dtype=np.int64)
    if len(names) < 2:
        raise DataError(f"the label column of {where} has only one class", expected="at least 2 different labels",
                        got=repr(names[0]), fix="check the label column (pass --target to choose another)")
    return y, names


def regression_targets(labels, where="the CSV file"):
    """Raw label strings -> float64 values (the task is regression)."""
    y = np.array([_number(v) for v in labels], dtype=np.float64)
    if y.size and float(y.std()) == 0.0:
        raise DataError(f"the target column of {where} has one value only", expected="a target that varies",
                        got=repr(labels[0]), fix="check the label column (pass --target to choose another)")
    return y


def load_table(path, target=None, task="auto", limit=None, seed=0):
    """Cells, labels and names from a CSV file.

    Returns a dict with ``cells`` (str array), ``y`` (int classes or float
    values), ``task``, ``class_names``, ``feature_names``, ``target_name``
    and ``notes``. ``limit``: keep a seeded random ``limit`` rows, streamed
    (see :func:`read_rows`).
    """
    where = os.path.basename(os.fspath(path))
    rows = read_rows(path, limit, seed)
    cells, labels, feature_names, target_name, notes = parse_table(rows, target, where)
    total = getattr(rows, "total", None)
    if total is not None and total > len(labels):
        notes.insert(0, f"--limit: read {len(labels):,} of the {total:,} rows of {where} (a seeded random choice, "
                     "streamed: the others were never held in memory)")
    task = detect_task(labels, task, where)
    if task == "regression":
        y, class_names = regression_targets(labels, where), []
    else:
        y, class_names = encode_labels(labels, where)
    return {"cells": cells, "y": y, "task": task, "class_names": class_names, "feature_names": feature_names,
            "target_name": target_name, "notes": notes}


def load_csv(path, target=None, task="auto"):
    """Features, labels and names from a CSV file, with text columns one-hot encoded on all rows.

    Returns ``(X, y, class_names, feature_names, target_name)``; for the
    train/test-safe route (encoding fitted on training rows) see
    :func:`load_table` and :mod:`dialnet.data.preprocessing`.
    """
    t = load_table(path, target, task)
    rules, _notes = fit_column_rules(t["cells"], t["feature_names"], where=os.path.basename(os.fspath(path)))
    X, _ = encode_cells(rules, t["cells"])
    return X, t["y"], t["class_names"], [n for rule in rules for n in rule.feature_names], t["target_name"]
