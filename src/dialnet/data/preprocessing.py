"""Input scaling that travels with the model.

The constants are learned on the training rows only and stored in
``net.preprocessing`` (a JSON-able dict saved in the model file), so
``evaluate``, ``predict`` and any other caller scale new inputs exactly
as training did:

- ``minmax``: ``x' = (x - min) / (max - min)``, each feature into [0, 1]
  on the training data (a constant feature maps to 0).
- ``standard``: ``x' = (x - mean) / std`` (a constant feature maps to 0).
- ``none``: inputs are used as they are.

For images the statistics are one number over all pixels, not one per
pixel: a border pixel that is nearly always black must not be blown up.

Tables may also carry ``columns``, one entry per CSV feature column,
applied before the scaling (:func:`fit_columns`, :func:`encode_columns`):

- ``{"name": "age", "kind": "numeric", "fill": 41.0}``: a missing cell
  becomes the training median ``fill``.
- ``{"name": "color", "kind": "categorical", "categories": [...],
  "other": false, "fill": "red"}``: one input per category (one-hot,
  categories sorted); a missing cell is the category ``(missing)`` when
  training had missing cells, else the most frequent one (``fill``); a
  value not among the categories (unseen, or rarer than the 50 most
  frequent) sets ``color=(other)`` when there is one, else no input.
- ``{"name": "id", "kind": "dropped"}``: an ID-like column, unused.

A regression model also stores ``target_mean``/``target_std``: it learns
``(y - mean) / std`` and :func:`unscale_target` undoes it.

The dict::

    {"version": 1, "input": "table" | "image", "scaling": "minmax",
     "min": [...], "max": [...]            # or "mean"/"std"; scalars for images
     "feature_names": [...], "target": "class",        # tables
     "image_size": 25, "pixel_max": 255, "background": 0.02}  # images
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, DataError, ModelFileError, ShapeError

SCALINGS = ("minmax", "standard", "none")
MAX_CATEGORIES = 50
MISSING_CATEGORY = "(missing)"
ID_NAMES = {"", "id", "index", "row", "rowid", "row_id", "unnamed: 0"}
MIN_ROWS_FOR_ID = 10
VERSION = 1
_PARAMS = {"minmax": ("min", "max"), "standard": ("mean", "std"), "none": ()}


def check_scaling(scaling) -> str:
    name = str(scaling).lower().replace("-", "")
    if name in SCALINGS:
        return name
    raise ConfigError(f"unknown scaling {scaling!r}", expected="one of " + ", ".join(SCALINGS), got=repr(scaling),
                      fix="use --scale minmax (features into [0, 1]), standard (mean 0, std 1) or none")


def fit_preprocessing(X, scaling="minmax", *, kind="table", image_size=None, feature_names=None, target=None,
                      background=None, columns=None) -> dict:
    """Learn the scaling constants from training rows ``X``; return the preprocessing dict.

    Parameters
    ----------
    X : array of shape (n, features)
        Training inputs only (never the test rows).
    scaling : {"minmax", "standard", "none"}
    kind : {"table", "image"}
        Images get one constant over all pixels; tables one per feature.
    columns : list of dict, optional
        The column rules from :func:`fit_columns` (``X`` is then already encoded by them).
    """
    scaling = check_scaling(scaling)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ShapeError("preprocessing is fitted on a table of samples", expected="shape (n >= 1, features)",
                         got=f"shape {X.shape}", fix="pass the training inputs as a 2-D array")
    pre = {"version": VERSION, "input": kind, "scaling": scaling}
    axis = None if kind == "image" else 0
    if scaling == "minmax":
        lo, hi = X.min(axis=axis), X.max(axis=axis)
        pre["min"], pre["max"] = _plain(lo), _plain(hi)
    elif scaling == "standard":
        mean, std = X.mean(axis=axis), X.std(axis=axis)
        pre["mean"], pre["std"] = _plain(mean), _plain(std)
    if columns is not None:
        pre["columns"] = columns
        feature_names = encoded_names(columns)
    if feature_names is not None:
        pre["feature_names"] = [str(f) for f in feature_names]
    if target is not None:
        pre["target"] = str(target)
    if kind == "image":
        pre["image_size"] = int(image_size) if image_size is not None else int(round(math.sqrt(X.shape[1])))
        pre["pixel_max"] = 255
        if background is not None:
            pre["background"] = float(background)
    return pre


MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a", "missing"}


def is_missing(text) -> bool:
    """An empty or NA-like cell ("", NA, N/A, NaN, null, none, ?, -)."""
    return text.strip().lower() in MISSING


def _to_float(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def fit_columns(cells, names, max_categories=MAX_CATEGORIES, where="the table"):
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
    (columns, notes) : list of dict, list of str
        ``columns`` goes into the preprocessing dict; ``notes`` are lines to print.
    """
    cells = np.asarray(cells, dtype=object)
    n = cells.shape[0]
    columns, notes, dropped = [], [], []
    for j, name in enumerate(names):
        values = [str(v) for v in cells[:, j]]
        present = [v for v in values if not is_missing(v)]
        if not present:
            raise DataError(f"column {name!r} of {where} has no values", expected="at least one value in every feature column",
                            got=f"{n:,} empty cells", fix="drop the column from the file")
        numbers = [_to_float(v) for v in present]
        if all(x is not None for x in numbers):
            ints = all(x == round(x) for x in numbers)
            lowered = name.strip().lower()
            id_name = lowered in ID_NAMES or lowered.endswith(("_id", " id"))
            if id_name and ints and n >= MIN_ROWS_FOR_ID and len(set(numbers)) == len(values):
                columns.append({"name": name, "kind": "dropped"})
                dropped.append(name)
                continue
            columns.append({"name": name, "kind": "numeric", "fill": float(np.median(numbers))})
            continue
        counts = {}
        for v in present:
            counts[v] = counts.get(v, 0) + 1
        if n >= MIN_ROWS_FOR_ID and len(counts) == n:
            columns.append({"name": name, "kind": "dropped"})
            dropped.append(name)
            continue
        by_count = sorted(counts, key=lambda v: (-counts[v], v))
        categories = sorted(by_count[:max_categories])
        has_missing = len(present) < len(values)
        if has_missing:
            categories.append(MISSING_CATEGORY)
        other = len(by_count) > max_categories
        columns.append({"name": name, "kind": "categorical", "categories": categories, "other": other,
                        "fill": MISSING_CATEGORY if has_missing else by_count[0]})
        if other:
            notes.append(f"column {name!r}: {len(by_count):,} values; the {max_categories} most frequent get an input each, "
                         "the rest share '(other)'")
    if dropped:
        notes.append("dropped ID-like column(s) (a different value on every row): " + ", ".join(repr(d) for d in dropped))
    if all(c["kind"] == "dropped" for c in columns):
        raise DataError(f"{where} has no usable feature column", expected="at least one column that is not an ID",
                        got="only ID-like columns: " + ", ".join(dropped), fix="add feature columns")
    return columns, notes


def encode_columns(columns, cells):
    """Text cells -> float64 inputs by the column rules from :func:`fit_columns`.

    Returns ``(X, n_imputed)``: the encoded rows and how many missing (or,
    in a numeric column, unreadable) cells were filled in.
    """
    cells = np.asarray(cells, dtype=object)
    if cells.ndim != 2 or cells.shape[1] != len(columns):
        raise ShapeError("the rows have a different number of columns than the model was trained on",
                         expected=f"{len(columns)} feature columns ({', '.join(c['name'] for c in columns[:8])})",
                         got=f"{cells.shape[1] if cells.ndim == 2 else cells.shape} columns",
                         fix="pass the same columns as in training (the label column left out)")
    n = cells.shape[0]
    parts, imputed = [], 0
    for j, col in enumerate(columns):
        kind = col.get("kind")
        if kind == "numeric":
            out = np.empty(n, dtype=np.float64)
            for i, v in enumerate(cells[:, j]):
                x = _to_float(str(v))
                if x is None:
                    x, imputed = col["fill"], imputed + 1
                out[i] = x
            parts.append(out[:, None])
        elif kind == "categorical":
            cats = list(col["categories"])
            index = {c: k for k, c in enumerate(cats)}
            width = len(cats) + (1 if col.get("other") else 0)
            out = np.zeros((n, width), dtype=np.float64)
            for i, v in enumerate(cells[:, j]):
                v = str(v)
                if is_missing(v):
                    v, imputed = col["fill"], imputed + 1
                k = index.get(v)
                if k is None and col.get("other"):
                    k = len(cats)
                if k is not None:
                    out[i, k] = 1.0
            parts.append(out)
    return (np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))), imputed


def encoded_names(columns):
    """Input names after encoding: ``age``, ``color=red``, ``color=(other)``, ..."""
    return [name for c in columns for name in column_feature_names(c)]


def fit_target(y) -> dict:
    """``{"target_mean", "target_std"}`` of regression targets (training rows only)."""
    y = np.asarray(y, dtype=np.float64)
    std = float(y.std())
    return {"target_mean": float(y.mean()), "target_std": std if std > 1e-12 else 1.0}


def scale_target(pre, y):
    """``(y - mean) / std`` with the stored constants (identity when there are none)."""
    pre = getattr(pre, "preprocessing", pre) or {}
    y = np.asarray(y, dtype=np.float64)
    return (y - pre.get("target_mean", 0.0)) / pre.get("target_std", 1.0)


def unscale_target(pre, values):
    """Network outputs back in the target's units: ``out * std + mean``."""
    pre = getattr(pre, "preprocessing", pre) or {}
    values = np.asarray(values, dtype=np.float64)
    return values * pre.get("target_std", 1.0) + pre.get("target_mean", 0.0)


def _plain(value):
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else [float(v) for v in value]


def _params(pre):
    scaling = pre.get("scaling", "none")
    keys = _PARAMS.get(scaling, ())
    if not keys:
        return None, None
    try:
        a = np.asarray(pre[keys[0]], dtype=np.float64)
        b = np.asarray(pre[keys[1]], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"the {scaling} scaling constants are missing or not numbers",
                             expected=f"numbers under {keys[0]!r} and {keys[1]!r}", got=str(sorted(pre))[:80],
                             fix="re-train and save the model with dialnet") from None
    if scaling == "minmax":
        offset, scale = a, b - a
    else:
        offset, scale = a, b
    scale = np.where(np.abs(scale) > 1e-12, scale, 1.0)  # constant feature: shift only, maps to 0
    return offset, scale


def apply_preprocessing(pre, X, dtype=np.float32) -> np.ndarray:
    """Scale raw inputs ``X`` (n, features) as recorded in ``pre``; returns a new array.

    ``pre`` may be a Network (its ``preprocessing`` is used) or the dict.
    An empty dict means no scaling. With stored ``columns``, ``X`` may be
    the raw text cells of the table's feature columns: they are encoded
    (:func:`encode_columns`) first.
    """
    pre = getattr(pre, "preprocessing", pre) or {}
    X = np.asarray(X)
    if pre.get("columns") and (X.dtype == object or X.dtype.kind in "US"):
        X, _ = encode_columns(pre["columns"], X)
    X = np.asarray(X, dtype=np.float64)
    offset, scale = _params(pre)
    if offset is not None:
        if offset.ndim == 1 and X.ndim == 2 and offset.shape[0] != X.shape[1]:
            raise ShapeError("the inputs have a different number of features than the model was trained on",
                             expected=f"{offset.shape[0]} features" + _names_hint(pre), got=f"{X.shape[1]} features",
                             fix="pass the same columns as in training (the label column left out)")
        X = (X - offset) / scale
    return X.astype(dtype)


def _names_hint(pre):
    names = pre.get("feature_names")
    if not names:
        return ""
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f" ({shown})"


def validate_preprocessing(pre, n_inputs, name="the model") -> dict:
    """Check a preprocessing dict read from a model file before it is used.

    Raises
    ------
    ModelFileError
        Unknown scaling, missing or non-numeric constants, lists whose
        length differs from the network's input width, a bad image size.
    """
    if not pre:
        return {}

    def bad(what, expected, got):
        return ModelFileError(f"{name} has unusable preprocessing: {what}", expected=expected, got=str(got)[:80],
                              fix="re-train and save the model with dialnet")

    if not isinstance(pre, dict):
        raise bad("not a JSON object", "an object", type(pre).__name__)
    scaling = pre.get("scaling", "none")
    if scaling not in SCALINGS:
        raise bad("unknown scaling", " or ".join(SCALINGS), scaling)
    per_feature = pre.get("input", "table") != "image"
    for key in _PARAMS[scaling]:
        value = pre.get(key)
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise bad(f"{key!r} is not a list of finite numbers", "numbers", type(value).__name__)
        if isinstance(value, list) and len(value) != n_inputs and per_feature:
            raise bad(f"{key!r} has {len(value)} values", f"{n_inputs} (one per input)", len(value))
    if pre.get("input") == "image":
        size = pre.get("image_size")
        if not isinstance(size, int) or isinstance(size, bool) or size * size != n_inputs:
            raise bad("the image size does not match the input width", f"size*size = {n_inputs}", size)
    columns = pre.get("columns")
    if columns is not None:
        ok = isinstance(columns, list) and all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and c.get("kind") in ("numeric", "categorical", "dropped")
            and (c["kind"] != "numeric" or (isinstance(c.get("fill"), (int, float)) and math.isfinite(c["fill"])))
            and (c["kind"] != "categorical" or (isinstance(c.get("categories"), list)
                                                 and all(isinstance(v, str) for v in c["categories"])))
            for c in columns)
        if not ok:
            raise bad("'columns' is not a list of column rules", "numeric/categorical/dropped entries", columns)
        width = sum(1 if c["kind"] == "numeric" else len(c["categories"]) + bool(c.get("other"))
                    for c in columns if c["kind"] != "dropped")
        if width != n_inputs:
            raise bad("the column rules do not match the input width", f"{n_inputs} inputs", f"{width}")
    for key in ("target_mean", "target_std"):
        value = pre.get(key)
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            raise bad(f"{key!r} is not a finite number", "a number", value)
    names = pre.get("feature_names")
    if names is not None and (not isinstance(names, list) or len(names) != n_inputs):
        raise bad("feature_names do not match the input width", f"{n_inputs} names", names)
    return pre


def model_image_size(net, override=None, default=25):
    """The image side a model takes: ``override`` (--image-size), the size stored in
    the model file, or sqrt(inputs) when the input width is a square; else ``default``."""
    if override is not None:
        return int(override)
    pre = getattr(net, "preprocessing", None) or {}
    size = pre.get("image_size") if isinstance(pre, dict) else None
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    side = math.isqrt(net.n_inputs)
    return side if side * side == net.n_inputs else default


def column_feature_names(column):
    """The input names one column turns into: ``age``, or ``color=red``, ``color=blue``, ... for a text column."""
    if column["kind"] == "numeric":
        return [column["name"]]
    if column["kind"] == "categorical":
        return [f"{column['name']}={c}" for c in column["categories"]] + ([f"{column['name']}=(other)"] if column.get("other") else [])
    return []
