"""A saved model's inputs: data sets, CSV rows, inline cells and image files, prepared as its training prepared its own.

Every function here reads the model's :class:`~dialnet.data.preprocessing.Preprocessor`
(``net.preprocessing``): the image size, the CSV's label column, the
column rules (a table's columns are matched by header name), the scaling.
``evaluate``, ``predict``, ``inspect``, ``doctor`` and ``plot`` all go
through these functions, so a row means the same thing to each of them.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .. import data as datasets
from ..data import border_mean, load_image, load_npz
from ..data.images import IMAGE_EXTENSIONS
from ..data.columns import check_cells
from ..data.preprocessing import image_side, preprocessor_of
from ..data.labels import labels_as_text
from ..data.splits import row_fingerprint, split_rows, subset
from ..data.tabular import check_widths, has_header, parse_features, read_rows
from ..errors import DataError, InvalidValueError, ShapeError

FALLBACK_IMAGE_SIZE = 25  # what a table model "resizes" images to: the size only matters for image sources
SPLITS = (None, "test", "train", "all")


def prepare_rows(net, X):
    """Raw rows (numbers, or a table's text cells) -> the network's inputs, by its stored preprocessing."""
    pre = preprocessor_of(net)
    return pre.transform(X, net.dtype) if pre is not None else np.asarray(X, dtype=np.float64).astype(net.dtype)


# ------------------------------------------------------------------ data sets


@dataclass
class ModelData:
    """Rows of a data set, ready for a model.

    Attributes
    ----------
    X : ndarray
        The network's inputs (preprocessed).
    y : ndarray
        Labels numbered as the model's classes (values in the target's units for regression).
    name : str
        The data set's name.
    split : {"test", "train", "all"}
        Which rows these are.
    class_names : list of str or None
        The data set's own class names.
    description : str
        e.g. ``mnist-10k (test split, 2000 rows)``.
    notes : list of str
        What the loader did that a user should hear about.
    """

    X: np.ndarray
    y: np.ndarray
    name: str
    split: str
    class_names: list | None
    description: str
    notes: list = field(default_factory=list)


def _load_for_model(net, pre, sources, target, image_size, cache, limit=None, seed=0):
    """The data set, read the way the model's training data were (image size, label column, task)."""
    size = image_size or image_side(net.n_inputs, pre) or FALLBACK_IMAGE_SIZE
    stored = pre.target if pre is not None else None
    task = "regression" if net.task == "regression" else "classification"
    source = sources[0] if len(sources) == 1 else sources
    try:
        return datasets.load(source, image_size=size, target=target if target is not None else stored, cache=cache,
                             task=task, limit=limit, seed=seed)
    except DataError as exc:  # the stored label column is not in this CSV: fall back to the last column
        if target is None and stored is not None and "target" in exc.what:
            return datasets.load(source, image_size=size, target=None, cache=cache, task=task, limit=limit, seed=seed)
        raise


def cells_for_model(pre, ds, cells=None):
    """A table's raw feature cells (``ds.cells``, or some of its rows) in the model's column order (by header name,
    else by position)."""
    cells = ds.cells if cells is None else cells
    want = pre.column_names
    have = list(ds.column_names)
    if all(rule.name in have for rule in pre.columns if rule.kind != "dropped"):  # unused ID columns may be absent
        out = np.full((len(cells), len(want)), "", dtype=object)
        for j, name in enumerate(want):
            if name in have:
                out[:, j] = cells[:, have.index(name)]
        return out
    if len(have) == len(want):
        return cells
    raise ShapeError(f"{ds.name} does not fit the model: its columns differ", expected=f"{len(want)} feature columns: "
                     + ", ".join(want[:8]), got=f"{len(have)}: " + ", ".join(have[:8]),
                     fix="evaluate on a table with the columns the model was trained on")


def labels_for_model(net, y, class_names):
    """Re-number the data's labels as the model's classes, matching by class name."""
    y = np.asarray(y)
    if not net.class_names or not class_names:
        if y.ndim == 1 and y.dtype.kind in "iu" and y.size and int(y.max()) >= net.n_outputs:
            raise DataError("the data have more classes than the model has outputs", expected=f"labels 0..{net.n_outputs - 1}",
                            got=f"labels up to {int(y.max())}", fix="evaluate on data with the classes the model was trained on")
        return y
    index = {name: i for i, name in enumerate(net.class_names)}
    unknown = [name for name in class_names if name not in index and (y == class_names.index(name)).any()]
    if unknown:
        raise DataError("the data have classes the model does not know", expected="classes among " + ", ".join(net.class_names[:12]),
                        got=", ".join(map(str, unknown[:6])), fix="evaluate on data with the classes the model was trained on")
    mapping = np.array([index.get(name, -1) for name in class_names], dtype=np.int64)
    return mapping[y]


def _check_width(net, pre, X, name):
    if X.dtype != object and X.shape[1] != net.n_inputs:  # text cells are checked column by column when encoded
        size = pre.image_size if pre is not None and pre.kind == "image" else None
        what = f" ({size}x{size} images)" if size else ""
        raise ShapeError(f"{name} does not fit the model: it has a different number of features",
                         expected=f"{net.n_inputs} inputs{what}", got=f"{X.shape[1]} features",
                         fix="evaluate on the same kind of data the model was trained on")


def model_data(net, source, split=None, *, target=None, image_size=None, limit=None, seed=0, cache=None) -> ModelData:
    """Load ``source`` for ``net`` and prepare its rows as the model's training did.

    Parameters
    ----------
    source : str or list of str
        What :func:`dialnet.data.load` reads, or an ``.npz`` file with arrays ``X`` and ``y``.
    split : {None, "test", "train", "all"}
        None: the test split when the data have one, else all rows (a note
        says that the training rows are included). "test" is the data's
        test split or, for data the training run split itself (a CSV, an
        image folder), exactly the rows it held out: the seed, fraction,
        ``limit`` and a digest of the rows stored in the model at training
        time find them again, and a file whose rows differ is refused.
        "train" is the training rows, likewise.
    target : str or int, optional
        The CSV's label column (default: the one the model was trained with, else the last).
    image_size : int, optional
        Default: the model's image size.
    limit : int, optional
        At most this many rows (a seeded random subset).

    Returns
    -------
    ModelData
    """
    if split not in SPLITS:
        raise InvalidValueError(f"unknown split {split!r}", expected="None, 'test', 'train' or 'all'", got=repr(split),
                                fix="pass split='test'")
    pre = preprocessor_of(net)
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    notes, class_names = [], None
    if len(sources) == 1 and str(sources[0]).lower().endswith(".npz"):
        X, y, key = load_npz(sources[0], split or "test")
        X = np.asarray(X)
        X = X.reshape(len(X), -1) if X.ndim > 2 else X
        name, used = os.path.basename(str(sources[0])), "all" if split is None else split
        description = f"{name} ({key}, {len(X)} rows)"
    else:
        streamed = limit if split in (None, "all") else None  # re-finding the training split needs all rows
        ds = _load_for_model(net, pre, sources, target, image_size, cache, streamed, seed)
        name, notes, class_names = ds.name, list(ds.notes), ds.class_names or None
        used = split or ("test" if ds.X_test is not None else "all")
        table = ds.cells is not None and pre is not None and pre.columns
        if used in ("test", "train") and ds.X_test is None:
            # data the training run split itself: find the very rows it held out (or trained on) again
            X, y, description = _rows_of_training_split(net, pre, ds, used, sources, target, image_size, cache)
        elif table:
            X, y = cells_for_model(pre, ds), ds.y_train  # tables have no separate test split
        elif used == "test":
            X, y = ds.X_test, ds.y_test
        elif used == "train" or ds.X_test is None:
            X, y = ds.X_train, ds.y_train
        else:
            X, y = np.concatenate([ds.X_train, ds.X_test]), np.concatenate([ds.y_train, ds.y_test])
        if split is None and ds.X_test is None:
            notes.append(f"scoring all {len(X):,} rows of {ds.name}, the training rows included (pass --split test "
                         "to score only the rows the training run held out)")
        if used == "all" and ds.X_test is None:
            description = f"{ds.name} (all {len(X)} rows)"
        elif not (used in ("test", "train") and ds.X_test is None):
            description = f"{ds.name} ({'test' if used == 'test' else 'training'} split, {len(X)} rows)"
        if table:
            check_cells(pre.columns, X, [f"{ds.name} row {i + 1}" for i in range(len(X))])
    X, y = subset(X, np.asarray(y), limit, seed)
    _check_width(net, pre, X, name)
    if net.task != "regression":
        y = labels_for_model(net, y, class_names)
    return ModelData(prepare_rows(net, X), y, name, used, class_names, description, notes)


def training_split(net):
    """What the training run recorded about the test split it made (seed, fraction, limit, row digest), or None."""
    extra = (getattr(net, "metadata", None) or {}).get("extra")
    split = extra.get("split") if isinstance(extra, dict) else None
    keys = {"seed": int, "test_split": float, "stratified": bool, "n_rows": int, "fingerprint": str}
    if not isinstance(split, dict) or not all(isinstance(split.get(k), t) for k, t in keys.items()):
        return None
    if split.get("limit") is not None and not isinstance(split["limit"], int):
        return None
    return split


def _rows_of_training_split(net, pre, ds, which, sources, target, image_size, cache):
    """The rows the training run held out (``which="test"``) or trained on, from the same file: the same
    limit and seed read the same rows, the digest proves it, the same seeded split picks them."""
    info = training_split(net)
    if info is None:
        raise DataError(f"{ds.name} has no test split, and the model does not record the one its training made",
                        expected="a model saved by `dialnet train` on this file (dialnet 0.2 or later)",
                        got="no split record in the model file", fix="use --split all to score every row")
    if info["limit"] is not None:
        ds = _load_for_model(net, pre, sources, target, image_size, cache, info["limit"], info["seed"])
    X, y = subset(ds.cells if ds.cells is not None else ds.X_train, ds.y_train, info["limit"], info["seed"])
    if len(y) != info["n_rows"] or row_fingerprint(X, labels_as_text(ds, y)) != info["fingerprint"]:
        raise DataError(f"{ds.name} is not the data this model was trained on: its rows differ",
                        expected=f"the {info['n_rows']:,} rows the training run split", got=f"{len(y):,} rows that differ",
                        fix="pass the training file unchanged (same --target), or --split all to score every row of this one")
    train, test = split_rows(y, info["test_split"], info["seed"], stratify=info["stratified"])
    rows = test if which == "test" else train
    X, y = X[rows], y[rows]
    if ds.cells is not None and pre is not None and pre.columns:
        X = cells_for_model(pre, ds, X)
    what = "held out for testing" if which == "test" else "trained on"
    return X, y, f"{ds.name} (the {len(rows):,} rows the training run {what}, seed {info['seed']})"


# ------------------------------------------------------------------ images


def image_rows(net, paths, image_size=None):
    """Image files as the model's raw input rows, each matched to the training images' background.

    An image whose border differs from the training images' background by
    more than half the pixel range (dark digits on white paper for a model
    trained on white digits on black) is inverted.

    Returns
    -------
    (rows, inverted) : ndarray (n, size*size), list of bool
    """
    pre = preprocessor_of(net)
    if pre is not None and pre.kind == "table":  # never shrink a picture into a table's columns, whatever their count
        names = pre.column_names or pre.feature_names or []
        raise ShapeError("this model was trained on a table, not on images", expected=f"rows of its {len(names) or net.n_inputs} "
                         "columns" + (": " + ", ".join(names[:6]) if names else ""), got="an image file",
                         fix="pass a CSV file or a row of values (e.g. \"5.1,3.5,1.4,0.2\")")
    size = image_size or image_side(net.n_inputs, pre)
    if size is None:
        raise ShapeError("this model does not take images", expected="a model trained on images",
                         got=f"a model with {net.n_inputs} inputs (not a square image)", fix="pass CSV rows or numbers")
    background = pre.background if pre is not None else None
    rows, inverted = [], []
    for path in paths:
        row = load_image(path, size).reshape(-1)
        flip = background is not None and abs(border_mean(row[None]) - background) > 0.5
        rows.append(1.0 - row if flip else row)
        inverted.append(bool(flip))
    return np.stack(rows), inverted


# ------------------------------------------------------------------ CSV rows and inline rows


def csv_rows(net, path):
    """The feature cells of a CSV file's rows, and a label per row; the label column is left out when present.

    Columns are matched by header name when the header has all of the
    model's columns (order and extra columns do not matter), else by
    position. Models with column rules get the text cells (encoded and
    imputed by the stored preprocessing); others get numbers.
    """
    rows = read_rows(path)
    header = has_header(rows)
    names = rows[0] if header else None
    start = 1 if header else 0
    body = rows[start:]
    if not body:
        raise DataError(f"{path} has a header but no rows", expected="rows to predict", got="only a header", fix="add data rows")
    pre = preprocessor_of(net)
    raw = pre.column_names if pre is not None else None
    features = raw or (pre.feature_names if pre is not None else None)
    target = pre.target if pre is not None else None
    n = len(raw) if raw else net.n_inputs
    width = len(names) if names is not None else len(body[0])
    check_widths(rows, width, path, start)
    needed = [rule.name for rule in pre.columns if rule.kind != "dropped"] if raw else features
    if names is not None and features and all(f in names for f in needed):
        # by name: column order, extra columns and unused (ID-like) columns do not matter
        columns = [names.index(f) if f in names else None for f in features]
    elif width == n:
        columns = list(range(width))
    elif raw and width in (len(needed), len(needed) + 1) and len(needed) < n:
        # without the columns the model dropped (IDs): the used ones in order (then the label, left out)
        used = iter(range(width))
        columns = [None if rule.kind == "dropped" else next(used) for rule in pre.columns]
    elif width == n + 1:  # the label column is there too: leave it out
        drop = width - 1
        if target is not None and names is not None and target in names:
            drop = names.index(target)
        elif target is not None and target.lstrip("-").isdigit() and -width <= int(target) < width:
            drop = int(target) % width
        columns = [c for c in range(width) if c != drop]
    else:
        raise ShapeError(f"the rows of {path} do not fit the model", expected=f"{n} feature columns (or {n + 1} with the label)"
                         + (": " + ", ".join(features[:8]) if features else ""),
                         got=f"{width} columns", fix="pass rows with the same feature columns the model was trained on")
    labels = [f"{path} row {i + 1}" for i in range(len(body))]
    heads = names if names is not None else [f"x{c}" for c in range(width)]
    records = [dict(zip(heads, row)) for row in body]  # the input's own columns, for --format json/csv
    if raw:
        X = np.array([[row[c] if c is not None else "" for c in columns] for row in body], dtype=object)
        X = X.reshape(len(body), len(columns))
        check_cells(pre.columns, X, labels)
    else:
        X = parse_features(body, columns, names, 2 if header else 1, path)
    return X, labels, records


def _split_numbers(text):
    parts = [s for s in re.split(r"[,;\s]+", text.strip()) if s]
    try:
        return [float(s) for s in parts] if parts else None
    except ValueError:
        return None


def inline_row(net, text):
    """A row written on the command line: text cells for a model with column rules, else numbers."""
    pre = preprocessor_of(net)
    raw = pre.column_names if pre is not None else None
    if raw:
        cells = [c.strip() for c in next(csv.reader([text], delimiter=";" if ";" in text else ","), [])]
        used = [rule.name for rule in pre.columns if rule.kind != "dropped"]
        if len(cells) == len(used) and len(used) < len(raw):  # the columns the model dropped (IDs) may be left out
            given = iter(cells)
            cells = ["" if rule.kind == "dropped" else next(given) for rule in pre.columns]
        if len(cells) != len(raw):
            also = f" (or {len(used)} without the dropped ID columns)" if len(used) < len(raw) else ""
            raise ShapeError("the row does not fit the model", expected=f"{len(raw)} values{also}: " + ", ".join(raw[:8]),
                             got=f"{len(cells)} values", fix="write one value per column the model was trained on, comma-separated")
        row = np.array(cells, dtype=object)
        check_cells(pre.columns, row[None, :], [f"row {text!r}"])
        return row
    values = _split_numbers(text)
    parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
    if values is None and len(parts) > 1:  # a row, not a path: name the cell that is not a number
        bad = next(p for p in parts if _split_numbers(p) is None)
        raise DataError(f"row {text[:60]!r}: {bad[:40]!r} is not a number", expected=f"{net.n_inputs} numbers",
                        got=repr(bad[:40]), fix="write the row as comma-separated numbers")
    if values is None:
        raise DataError(f"no such file: {text}", expected="an image file, a folder of images, a CSV file or a row of numbers",
                        got=repr(text), fix="check the path, or write a row as comma-separated numbers")
    if len(values) != net.n_inputs:
        raise ShapeError("the row of numbers does not fit the model", expected=f"{net.n_inputs} numbers",
                         got=f"{len(values)} numbers", fix="pass one value per feature the model was trained on")
    return np.array(values, dtype=np.float64)


@dataclass
class ModelInputs:
    """Inputs gathered for a model: ``X`` (preprocessed), a label per row, which rows are inverted images, and
    ``records``: each input's own columns (a CSV row's cells by header, an inline row's by the model's column
    names; ``{}`` for an image), for machine-readable predictions."""

    X: np.ndarray
    labels: list
    inverted: list
    records: list = field(default_factory=list)


def model_inputs(net, items) -> ModelInputs:
    """Image files, folders of images, CSV files and inline rows -> the model's inputs, in the order given."""
    images, tables, order = [], [], []  # order: ("image", i) or ("table", i)
    for item in items:
        if os.path.isdir(item):
            files = sorted(os.path.join(item, f) for f in os.listdir(item) if f.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                raise DataError(f"folder {item} holds no image files", expected="png, jpg, bmp, gif or tiff files",
                                got="none", fix="pass image files, a CSV file or a row of numbers")
            for f in files:
                order.append(("image", len(images)))
                images.append(f)
        elif os.path.isfile(item) and item.lower().endswith(IMAGE_EXTENSIONS):
            order.append(("image", len(images)))
            images.append(item)
        elif os.path.isfile(item):
            X, labels, records = csv_rows(net, item)
            for row, label, record in zip(X, labels, records):
                order.append(("table", len(tables)))
                tables.append((row, label, record))
        else:
            order.append(("table", len(tables)))
            row = inline_row(net, item)
            pre = preprocessor_of(net)
            heads = (pre.column_names or pre.feature_names) if pre is not None else None
            heads = heads if heads and len(heads) == len(row) else [f"x{i}" for i in range(len(row))]
            tables.append((row, "row " + item, dict(zip(heads, (str(v) if row.dtype == object else float(v) for v in row)))))
    image_X, image_inverted = image_rows(net, images) if images else (None, [])
    rows, labels, inverted, records = [], [], [], []
    for kind, i in order:
        if kind == "image":
            rows.append(image_X[i])
            labels.append(images[i])
            inverted.append(image_inverted[i])
            records.append({})
        else:
            rows.append(tables[i][0])
            labels.append(tables[i][1])
            inverted.append(False)
            records.append(tables[i][2])
    if any(r.dtype == object for r in rows):
        X = np.array(rows, dtype=object).reshape(len(rows), -1)
    else:
        X = np.stack(rows)
    return ModelInputs(prepare_rows(net, X), labels, inverted, records)


# ------------------------------------------------------------------ single rows (inspect, plot)


def pick_row(X, y, index, what):
    """Row ``index`` (negative counts from the end) as ``(X[i:i+1], y[i:i+1] or None, i)``."""
    i = 0 if index is None else index
    if not -len(X) <= i < len(X):
        raise InvalidValueError(f"--index {i} is out of range for {what}", expected=f"0..{len(X) - 1}",
                                got=str(i), fix="pick a row that exists")
    i %= len(X)
    return X[i : i + 1], (None if y is None else y[i : i + 1]), i


def model_rows(net, sources, index=None, *, target=None, image_size=None):
    """An input as ``(X, y or None, description)``: an image file, a ``.npy`` row (or rows), or row ``index``
    of a data set's test split (its training rows when it has none)."""
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    first = str(sources[0])
    low = first.lower()
    if len(sources) == 1 and low.endswith(IMAGE_EXTENSIONS):
        rows, inverted = image_rows(net, [first], image_size)
        what = os.path.basename(first) + (" (inverted to match the training background)" if inverted[0] else "")
        return prepare_rows(net, rows), None, what
    if len(sources) == 1 and low.endswith(".npy"):
        try:
            X = np.load(first, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {first} as a .npy file", expected="an array saved by numpy.save",
                            got=str(exc)[:120], fix="save the input row with numpy.save(path, x)") from None
        X = X.reshape(1, -1) if X.ndim == 1 else X.reshape(len(X), -1)
        if X.shape[1] != net.n_inputs:
            raise ShapeError("the input does not fit the model's input layer", expected=f"{net.n_inputs} values per row",
                             got=f"shape {X.shape}", fix="pass rows as wide as the model's first layer")
        X = prepare_rows(net, X)
        if index is not None:
            X, _, i = pick_row(X, None, index, first)
            return X, None, f"{os.path.basename(first)} row {i}"
        return X, None, os.path.basename(first)
    md = model_data(net, sources, None, target=target, image_size=image_size)
    X, y, i = pick_row(md.X, md.y, index, md.description)
    return X, y, f"row {i} of {md.description}"


def first_mistake(net, sources, start=0, *, target=None, image_size=None):
    """The first row of a data set's test split, from ``start`` on, whose predicted class is not its label."""
    md = model_data(net, sources, None, target=target, image_size=image_size)
    if net.task != "classification":
        raise DataError("--wrong needs a classifier", expected="a model with class outputs", got=f"task {net.task}",
                        fix="pick a row with --index instead")
    wrong = np.flatnonzero(net.predict(md.X[start:]) != md.y[start:])
    if wrong.size == 0:
        raise DataError(f"the model gets every row of {md.description} from {start} on right", expected="a misclassified row",
                        got="none", fix="pick a row with --index instead")
    i = start + int(wrong[0])
    return md.X[i : i + 1], md.y[i : i + 1], f"row {i} of {md.description}, the first the model gets wrong"


def class_index(net, label):
    """A class given by name or index, as the model's output index."""
    names = getattr(net, "class_names", None) or []
    if str(label) in names:
        return names.index(str(label))
    try:
        k = int(label)
    except ValueError:
        k = -1
    if not 0 <= k < net.n_outputs:
        raise DataError(f"unknown label {label!r}", expected=f"a class index 0..{net.n_outputs - 1}"
                        + (" or a class name: " + ", ".join(names[:10]) if names else ""),
                        got=repr(label), fix="pass --label with one of the model's classes")
    return k
