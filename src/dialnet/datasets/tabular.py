"""CSV files: numeric feature columns and one label column.

- Header: the first row is a header when one of its cells is not a number
  in a column whose next row is a number (``sepal_length`` over ``5.1``).
- Label column: the last one, unless ``target`` names it (a header name
  or a 0-based index, negative counts from the end).
- Labels: strings become class names (sorted); whole numbers keep their
  values as names ("1", "2", "3"), in numeric order.
- Feature columns must be numbers: text or an empty/missing cell (``""``,
  ``NA``, ``NaN``, ``?``) is an error naming the row and column.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from ..errors import DataError

MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-"}
MAX_ROWS = 10_000_000


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value


def read_rows(path):
    """The non-empty rows of a CSV file (delimiter sniffed: comma, semicolon, tab)."""
    spath = os.fspath(path)
    if os.path.isdir(spath):
        raise DataError(f"{spath} is a folder, not a CSV file", expected="a .csv file", got="a directory",
                        fix="pass the CSV file's path")
    try:
        with open(spath, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(64 * 1024)
            fh.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            rows = [[c.strip() for c in row] for row in csv.reader(fh, dialect) if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise DataError(f"CSV file {spath} does not exist", expected="an existing file", got=spath,
                        fix="check the path") from None
    except UnicodeDecodeError:
        raise DataError(f"{spath} is not a text CSV file", expected="UTF-8 text with comma-separated values",
                        got="bytes that are not UTF-8 text", fix="pass a CSV file (save it as UTF-8 CSV)") from None
    except (OSError, csv.Error) as exc:
        raise DataError(f"cannot read CSV file {spath}", expected="a readable CSV file", got=str(exc),
                        fix="check the path and the file's format") from None
    if not rows:
        raise DataError(f"CSV file {spath} is empty", expected="rows of numbers with a label column",
                        got="no rows", fix="pass a CSV file with data")
    return rows


def has_header(rows) -> bool:
    """A header row has a non-number where the next row has a number."""
    if len(rows) < 2:
        return _number(rows[0][0]) is None if rows and rows[0] else False
    first, second = rows[0], rows[1]
    return any(
        _number(a) is None and a.lower() not in MISSING and _number(b) is not None
        for a, b in zip(first, second)
    )


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


def parse_table(rows, target=None, where="the CSV file", header=None):
    """Split rows into features, raw label strings and names.

    Returns ``(X, labels, feature_names, target_name)``; ``X`` float64.
    """
    if header is None:
        header = has_header(rows)
    names = rows[0] if header else None
    body = rows[1:] if header else rows
    if not body:
        raise DataError(f"{where} has a header but no data rows", expected="at least one data row",
                        got="only a header", fix="add data rows")
    if len(body) > MAX_ROWS:
        raise DataError(f"{where} has too many rows", expected=f"at most {MAX_ROWS:,}", got=f"{len(body):,}",
                        fix="use a sample of the rows")
    n_cols = len(names) if names is not None else len(body[0])
    for i, row in enumerate(body):
        if len(row) != n_cols:
            line = i + (2 if header else 1)
            raise DataError(f"row {line} of {where} has {len(row)} columns", expected=f"{n_cols} columns like the first row",
                            got=f"{len(row)}: {','.join(row)[:80]}", fix="make every row the same width")
    if n_cols < 2:
        raise DataError(f"{where} has only one column", expected="at least one feature column and one label column",
                        got="1 column", fix="add feature columns, or check the delimiter (comma, semicolon or tab)")
    t = resolve_target(target, names, n_cols, where)
    feature_cols = [c for c in range(n_cols) if c != t]
    feature_names = [names[c] for c in feature_cols] if names is not None else [f"x{c}" for c in feature_cols]
    target_name = names[t] if names is not None else str(t)
    X = parse_features(body, feature_cols, names, 2 if header else 1, where)
    labels = [row[t] for row in body]
    for i, value in enumerate(labels):
        if value.lower() in MISSING:
            line = i + (2 if header else 1)
            raise DataError(f"missing label in row {line} of {where}", expected="a label in every row", got=repr(value),
                            fix="drop rows without a label")
    return X, labels, feature_names, target_name


def parse_features(body, columns, names=None, first_line=1, where="the CSV file"):
    """The numbers in ``columns`` of the rows ``body`` as a float64 array.

    ``names`` are the header cells (or None); ``first_line`` is the file
    line of ``body[0]``, for error messages. Text, missing or infinite
    cells raise a DataError naming the row and column.
    """
    feature_names = [names[c] for c in columns] if names is not None else [f"x{c}" for c in columns]
    X = np.empty((len(body), len(columns)), dtype=np.float64)
    for i, row in enumerate(body):
        for j, c in enumerate(columns):
            value = _number(row[c])
            if value is None or not math.isfinite(value):
                line = i + first_line
                col = f"column {c + 1} ({feature_names[j]})" if names is not None else f"column {c + 1}"
                if row[c].lower() in MISSING or (value is not None and math.isnan(value)):
                    raise DataError(f"missing value in row {line}, {col} of {where}", expected="a number in every feature cell",
                                    got=repr(row[c]), fix="fill or drop rows with missing values before training")
                if value is not None:
                    raise DataError(f"infinite value in row {line}, {col} of {where}", expected="finite numbers",
                                    got=repr(row[c]), fix="replace it with a finite number or drop the row")
                raise DataError(f"{col} of {where} is not numeric (row {line})", expected="numbers in every feature column",
                                got=repr(row[c][:40]),
                                fix="encode text columns as numbers or drop them; if it is the label column, pass --target "
                                + (repr(names[c]) if names is not None else str(c)))
            X[i, j] = value
    return X


def encode_labels(labels, where="the CSV file"):
    """Map raw label strings to 0..K-1; return ``(y, class_names)``.

    Numeric labels are sorted by value and named as written without a
    trailing ``.0`` ("1", "2", "3"); text labels are sorted as text.
    """
    numbers = [_number(v) for v in labels]
    if all(v is not None for v in numbers):
        if not all(math.isfinite(v) and v == round(v) for v in numbers):
            raise DataError(f"the label column of {where} holds fractional numbers",
                            expected="class labels (whole numbers or names)", got="values such as "
                            + ", ".join(sorted({v for v in labels if _number(v) != round(_number(v))})[:3]),
                            fix="dialnet's CLI trains classifiers; pick the class column with --target, "
                            "or use the Python API with output='identity' for regression")
        values = sorted({int(round(v)) for v in numbers})
        index = {v: i for i, v in enumerate(values)}
        y = np.array([index[int(round(v))] for v in numbers], dtype=np.int64)
        names = [str(v) for v in values]
    else:
        names = sorted(set(labels))
        index = {v: i for i, v in enumerate(names)}
        y = np.array([index[v] for v in labels], dtype=np.int64)
    if len(names) < 2:
        raise DataError(f"the label column of {where} has only one class", expected="at least 2 different labels",
                        got=repr(names[0]), fix="check the label column (pass --target to choose another)")
    return y, names


def load_csv(path, target=None):
    """Features, labels and names from a CSV file.

    Returns ``(X, y, class_names, feature_names, target_name)``.
    """
    where = os.path.basename(os.fspath(path))
    X, labels, feature_names, target_name = parse_table(read_rows(path), target, where)
    y, class_names = encode_labels(labels, where)
    return X, y, class_names, feature_names, target_name
