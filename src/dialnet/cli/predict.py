"""Ask a saved model what it sees: a certainty per class for each input (a value for regression models).

INPUT is an image file (png, jpg, ...: made grayscale and resized to the
model's image size), a folder of images, a CSV file (one prediction per
row; the label column, if present, is left out; columns matched by header
name), or a row written inline ("5.1,3.5,1.4,0.2", or "3.1,red,,7" for a
model with text columns; a blank cell is imputed). The model's stored
encoding and scaling are applied first. An image whose background is the opposite of the training images'
(dark digits on white paper for an MNIST model) is inverted to match, and
the line says so.

Examples:
  dialnet predict model.safetensors my_digit.png
  dialnet predict seeds.safetensors "15.26,14.84,0.871,5.763,3.312,2.221,5.22"
"""

from __future__ import annotations

HELP = "certainty per class for image files, a folder of images, CSV rows or an inline row of numbers"


def add_arguments(p):
    p.add_argument("model", help="a .safetensors model file (from `dialnet train`)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, an image folder, a CSV file, or a row of numbers")
    p.add_argument("--top", type=int, default=3, help="how many certainties to show per input, largest first (default: 3; 0 = all)")


def _split_numbers(text):
    import re  # noqa: PLC0415

    parts = [s for s in re.split(r"[,;\s]+", text.strip()) if s]
    try:
        return [float(s) for s in parts] if parts else None
    except ValueError:
        return None


def _image_inputs(net, paths):
    """Rows for image files, with notes for inverted ones."""
    import numpy as np  # noqa: PLC0415

    from ..data import load_image  # noqa: PLC0415
    from ..errors import ShapeError  # noqa: PLC0415
    from ..data.preprocessing import model_image_size  # noqa: PLC0415

    pre = net.preprocessing or {}
    size = model_image_size(net, default=None)
    if size is None:
        raise ShapeError("this model does not take images", expected="a model trained on images",
                         got=f"a model with {net.n_inputs} inputs (not a square image)", fix="pass CSV rows or numbers")
    background = pre.get("background")
    rows, notes = [], []
    for path in paths:
        img = load_image(path, size)
        note = ""
        if background is not None:
            edge = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]]).mean()
            if abs(edge - background) > 0.5:  # e.g. a dark digit on white paper for a white-on-black model
                img = 1.0 - img
                note = " (inverted to match the training images' background)"
        rows.append(img.reshape(-1))
        notes.append(note)
    return np.stack(rows), notes


def _model_columns(net):
    """The raw CSV column names a table model reads (None for models without column rules)."""
    columns = (net.preprocessing or {}).get("columns")
    return [c["name"] for c in columns] if columns else None


def _csv_inputs(net, path):
    """The feature cells of a CSV file's rows; the label column is left out when the rows have one.

    Columns are matched by header name when the header has all of the
    model's columns (order and extra columns do not matter), else by
    position. Models with column rules get the text cells (encoded and
    imputed later by the stored preprocessing); others get numbers.
    """
    import numpy as np  # noqa: PLC0415

    from ..data.tabular import check_widths, has_header, parse_features, read_rows  # noqa: PLC0415
    from ..errors import DataError, ShapeError  # noqa: PLC0415

    rows = read_rows(path)
    header = has_header(rows)
    names = rows[0] if header else None
    start = 1 if header else 0
    body = rows[start:]
    if not body:
        raise DataError(f"{path} has a header but no rows", expected="rows to predict", got="only a header", fix="add data rows")
    pre = net.preprocessing or {}
    raw = _model_columns(net)
    features = raw or pre.get("feature_names")
    target = pre.get("target")
    n = len(raw) if raw else net.n_inputs
    width = len(names) if names is not None else len(body[0])
    check_widths(rows, width, path, start)
    needed = [c["name"] for c in pre["columns"] if c["kind"] != "dropped"] if raw else features
    if names is not None and features and all(f in names for f in needed):
        # by name: column order, extra columns and unused (ID-like) columns do not matter
        columns = [names.index(f) if f in names else None for f in features]
    elif width == n:
        columns = list(range(width))
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
    if raw:
        X = np.array([[row[c] if c is not None else "" for c in columns] for row in body], dtype=object)
        X = X.reshape(len(body), len(columns))
    else:
        X = parse_features(body, columns, names, 2 if header else 1, path)
    return X, [f"{path} row {i + 1}" for i in range(len(X))]


def collect_inputs(net, inputs):
    """Turn INPUT arguments into ``(X_raw, labels, notes)``."""
    import os  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from ..data.images import IMAGE_EXTENSIONS  # noqa: PLC0415
    from ..errors import DataError, ShapeError  # noqa: PLC0415

    images, tables, labels, notes = [], [], [], []
    order = []  # ("image", i) or ("table", i)
    for item in inputs:
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
            X, names = _csv_inputs(net, item)
            for row, name in zip(X, names):
                order.append(("table", len(tables)))
                tables.append((row, name))
        elif _model_columns(net) and not os.path.exists(item):
            import csv  # noqa: PLC0415

            cells = next(csv.reader([item], delimiter=";" if ";" in item else ","), [])
            raw = _model_columns(net)
            if len(cells) != len(raw):
                raise ShapeError("the row does not fit the model", expected=f"{len(raw)} values: " + ", ".join(raw[:8]),
                                 got=f"{len(cells)} values", fix="write one value per column the model was trained on, comma-separated")
            order.append(("table", len(tables)))
            tables.append((np.array([c.strip() for c in cells], dtype=object), "row " + item))
        else:
            values = _split_numbers(item)
            if values is None:
                raise DataError(f"no such file: {item}", expected="an image file, a folder of images, a CSV file or a row of numbers",
                                got=repr(item), fix="check the path, or write a row as comma-separated numbers")
            if len(values) != net.n_inputs:
                raise ShapeError("the row of numbers does not fit the model", expected=f"{net.n_inputs} numbers",
                                 got=f"{len(values)} numbers", fix="pass one value per feature the model was trained on")
            order.append(("table", len(tables)))
            tables.append((np.array(values, dtype=np.float64), "row " + item))
    image_rows, image_notes = _image_inputs(net, images) if images else (None, [])
    rows = []
    for kind, i in order:
        if kind == "image":
            rows.append(image_rows[i])
            labels.append(images[i])
            notes.append(image_notes[i])
        else:
            rows.append(tables[i][0])
            labels.append(tables[i][1])
            notes.append("")
    if any(r.dtype == object for r in rows):
        return np.array(rows, dtype=object).reshape(len(rows), -1), labels, notes
    return np.stack(rows), labels, notes


def run(args):
    from ..errors import InvalidValueError  # noqa: PLC0415
    from ..data.preprocessing import apply_preprocessing  # noqa: PLC0415
    from .evaluate import load_model  # noqa: PLC0415
    from .train import format_certainties  # noqa: PLC0415

    if args.top < 0:
        raise InvalidValueError("--top must be >= 0", expected="a whole number >= 0", got=repr(args.top), fix="e.g. --top 3 (0 = all)")
    net = load_model(args.model)
    X, labels, notes = collect_inputs(net, args.inputs)
    if net.task == "regression":
        from ..data.preprocessing import unscale_target  # noqa: PLC0415

        target = (net.preprocessing or {}).get("target") or "value"
        for label, value in zip(labels, unscale_target(net, net.predict(apply_preprocessing(net, X, net.dtype)))):
            print(f"{label}: {target} = {float(value):.6g}")
        return 0
    P = net.predict_proba(apply_preprocessing(net, X, net.dtype))
    names = net.class_names or [str(i) for i in range(P.shape[1])]
    for label, p, note in zip(labels, P, notes):
        print(f"{label}: {names[int(p.argmax())]}  ({format_certainties(p, names, args.top)}){note}")
    return 0
