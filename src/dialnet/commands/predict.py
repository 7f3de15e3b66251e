"""Ask a saved model what it sees: a certainty per class for each input.

INPUT is an image file (png, jpg, ...: made grayscale and resized to the
model's image size), a folder of images, a CSV file (one prediction per
row; the label column, if present, is left out), or a row of numbers
written inline ("5.1,3.5,1.4,0.2"). The model's stored scaling is applied
first. An image whose background is the opposite of the training images'
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

    from ..datasets import load_image  # noqa: PLC0415
    from ..errors import ShapeError  # noqa: PLC0415

    pre = net.preprocessing or {}
    size = pre.get("image_size")
    if size is None:
        side = int(round(net.n_inputs**0.5))
        if side * side != net.n_inputs:
            raise ShapeError("this model does not take images", expected="a model trained on images",
                             got=f"a model with {net.n_inputs} inputs (not a square image)", fix="pass CSV rows or numbers")
        size = side
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


def _csv_inputs(net, path):
    """The feature rows of a CSV file; the label column is left out when the rows have one."""
    from ..datasets.tabular import has_header, parse_features, read_rows  # noqa: PLC0415
    from ..errors import DataError, ShapeError  # noqa: PLC0415

    rows = read_rows(path)
    header = has_header(rows)
    names = rows[0] if header else None
    body = rows[1:] if header else rows
    if not body:
        raise DataError(f"{path} has a header but no rows", expected="rows to predict", got="only a header", fix="add data rows")
    pre = net.preprocessing or {}
    features, target = pre.get("feature_names"), pre.get("target")
    n = net.n_inputs
    width = len(names) if names is not None else len(body[0])
    for i, row in enumerate(body):
        if len(row) != width:
            raise DataError(f"row {i + (2 if header else 1)} of {path} has {len(row)} columns", expected=f"{width} like the first",
                            got=str(len(row)), fix="make every row the same width")
    if names is not None and features and all(f in names for f in features):
        columns = [names.index(f) for f in features]  # by name: column order and extra columns do not matter
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
        raise ShapeError(f"the rows of {path} do not fit the model", expected=f"{n} feature columns (or {n + 1} with the label)",
                         got=f"{width} columns", fix="pass rows with the same feature columns the model was trained on")
    X = parse_features(body, columns, names, 2 if header else 1, path)
    return X, [f"{path} row {i + 1}" for i in range(len(X))]


def collect_inputs(net, inputs):
    """Turn INPUT arguments into ``(X_raw, labels, notes)``."""
    import os  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from ..datasets.images import IMAGE_EXTENSIONS  # noqa: PLC0415
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
    return np.stack(rows), labels, notes


def run(args):
    from ..errors import InvalidValueError  # noqa: PLC0415
    from ..preprocessing import apply_preprocessing  # noqa: PLC0415
    from .evaluate import load_model  # noqa: PLC0415
    from .train import format_certainties  # noqa: PLC0415

    if args.top < 0:
        raise InvalidValueError("--top must be >= 0", expected="a whole number >= 0", got=repr(args.top), fix="e.g. --top 3 (0 = all)")
    net = load_model(args.model)
    X, labels, notes = collect_inputs(net, args.inputs)
    P = net.predict_proba(apply_preprocessing(net, X, net.dtype))
    names = net.class_names or [str(i) for i in range(P.shape[1])]
    for label, p, note in zip(labels, P, notes):
        print(f"{label}: {names[int(p.argmax())]}  ({format_certainties(p, names, args.top)}){note}")
    return 0
