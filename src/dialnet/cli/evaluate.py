"""Measure a saved model on a data set: accuracy, per-class precision and recall, confusion matrix.

For a regression model: RMSE, MAE, R^2 and the RMSE of always predicting
the training mean. The model's stored preprocessing (image size, column
encoding and imputation, input scaling, the CSV's label column) is applied
to DATA automatically; CSV columns are matched by header name, and labels
to the model's classes by name. Data with a test split (mnist-10k, mnist,
fashion-mnist, IDX folders with t10k files) are measured on it; other
data on all their rows (--split chooses).

Examples:
  dialnet evaluate model.safetensors mnist-10k
  dialnet evaluate seeds.safetensors seeds.csv
"""

from __future__ import annotations

HELP = "accuracy, per-class precision/recall and the confusion matrix of a model on DATA"


def add_arguments(p):
    p.add_argument("model", help="a .safetensors model file (from `dialnet train`)")
    p.add_argument("data", nargs="+", metavar="DATA",
                   help="mnist-10k, mnist, fashion-mnist, a CSV file, an image folder, or IDX files")
    p.add_argument("--split", choices=("test", "train", "all"), default=None,
                   help="which rows: test (default when DATA has a test split), train, or all")
    p.add_argument("--target", default=None, metavar="COL", help="the CSV's label column (default: the one the model was trained with)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N samples (seeded random subset)")
    p.add_argument("--cache", default=None, metavar="DIR", help="download cache for mnist/fashion-mnist")


def load_model(path):
    """A saved network with its preprocessing checked against its input width."""
    import dialnet as dn  # noqa: PLC0415
    from ..data.preprocessing import validate_preprocessing  # noqa: PLC0415

    net = dn.load(path)
    validate_preprocessing(net.preprocessing, net.n_inputs, name=str(path))
    return net


def data_for_model(net, args):
    """Load ``args.data`` the way the model saw its training data (image size, label column)."""
    from ..errors import DataError  # noqa: PLC0415
    from .train import load_data  # noqa: PLC0415

    from ..data.preprocessing import model_image_size  # noqa: PLC0415

    pre = net.preprocessing or {}
    size = model_image_size(net)
    target = args.target if args.target is not None else pre.get("target")
    args.image_size = size
    args.task = "regression" if net.task == "regression" else "classification"
    try:
        return load_data(args, image_size=size, target=target)
    except DataError as exc:  # the stored label column is not in this CSV: fall back to the last column
        if args.target is None and target is not None and "target" in exc.what:
            return load_data(args, image_size=size, target=None)
        raise


def cells_for_model(net, ds):
    """A table's raw feature cells in the model's column order (by header name, else by position)."""
    from ..errors import ShapeError  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    columns = (net.preprocessing or {}).get("columns") or []
    want = [c["name"] for c in columns]
    have = [c["name"] for c in ds.columns]
    if all(c["name"] in have for c in columns if c["kind"] != "dropped"):  # unused ID columns may be absent
        out = np.full((len(ds.cells), len(want)), "", dtype=object)
        for j, name in enumerate(want):
            if name in have:
                out[:, j] = ds.cells[:, have.index(name)]
        return out
    if len(have) == len(want):
        return ds.cells
    raise ShapeError(f"{ds.name} does not fit the model: its columns differ", expected=f"{len(want)} feature columns: "
                     + ", ".join(want[:8]), got=f"{len(have)}: " + ", ".join(have[:8]),
                     fix="evaluate on a table with the columns the model was trained on")


def labels_for_model(net, y, class_names):
    """Re-number the data's labels as the model's classes, matching by class name."""
    import numpy as np  # noqa: PLC0415

    from ..errors import DataError  # noqa: PLC0415

    if not net.class_names:
        if y.size and int(y.max()) >= net.n_outputs:
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


def confusion(y_true, y_pred, k):
    import numpy as np  # noqa: PLC0415

    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def run(args):
    import numpy as np  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from ..errors import InvalidValueError, ShapeError  # noqa: PLC0415
    from ..data.preprocessing import apply_preprocessing  # noqa: PLC0415
    from .train import console, subset  # noqa: PLC0415

    if args.limit is not None and args.limit < 1:
        raise InvalidValueError("--limit is out of range", expected="a whole number >= 1", got=repr(args.limit), fix="e.g. --limit 1000")
    net = load_model(args.model)
    ds = data_for_model(net, args)
    for line in ds.notes:
        print(f"Note: {line}")
    if ds.cells is not None and (net.preprocessing or {}).get("columns"):
        ds.X_train = cells_for_model(net, ds)
    split = args.split or ("test" if ds.X_test is not None else "all")
    if split == "test" and ds.X_test is None:
        from ..errors import DataError  # noqa: PLC0415

        raise DataError(f"{ds.name} has no test split", expected="data with a test split for --split test", got="no test split",
                        fix="use --split all")
    if split == "test":
        X, y = ds.X_test, ds.y_test
    elif split == "train":
        X, y = ds.X_train, ds.y_train
    else:
        X = ds.X_train if ds.X_test is None else np.concatenate([ds.X_train, ds.X_test])
        y = ds.y_train if ds.y_test is None else np.concatenate([ds.y_train, ds.y_test])
    X, y = subset(X, y, args.limit, 0)
    if X.dtype != object and X.shape[1] != net.n_inputs:  # text cells are checked column by column when encoded
        size = (net.preprocessing or {}).get("image_size")
        what = f" ({size}x{size} images)" if size else ""
        raise ShapeError(f"{ds.name} does not fit the model: it has a different number of features",
                         expected=f"{net.n_inputs} inputs{what}", got=f"{X.shape[1]} features",
                         fix="evaluate on the same kind of data the model was trained on")
    if net.task == "regression":
        return _report_regression(net, args, ds, split, apply_preprocessing(net, X, net.dtype), y)
    y = labels_for_model(net, y, ds.class_names)
    Xs = apply_preprocessing(net, X, net.dtype)
    P = net.predict_proba(Xs)
    pred = P.argmax(axis=1)
    k = net.n_outputs
    names = net.class_names or [str(i) for i in range(k)]
    m = confusion(y, pred, k)
    correct = int(np.trace(m))
    loss = net.evaluate(Xs, y)["loss"]

    out = console()
    out.print(f"Model {args.model}: {'-'.join(map(str, net.sizes))}; data {ds.name}, {split} rows: {len(y):,}")
    out.print(f"Accuracy: {100 * correct / len(y):.2f}% ({correct:,} of {len(y):,}), loss {loss:.4f}")
    per_class = Table(title="Per class")
    for col, justify in (("class", "left"), ("precision", "right"), ("recall", "right"), ("support", "right")):
        per_class.add_column(col, justify=justify)
    for i, name in enumerate(names):
        predicted, actual = m[:, i].sum(), m[i, :].sum()
        precision = f"{m[i, i] / predicted:.3f}" if predicted else "-"
        recall = f"{m[i, i] / actual:.3f}" if actual else "-"
        per_class.add_row(name, precision, recall, f"{actual:,}")
    out.print(per_class)
    short = all(len(name) <= 6 for name in names)  # short names head the columns; long ones get numbers
    matrix = Table(title="Confusion matrix")
    matrix.add_column("true \\ predicted")
    for i, name in enumerate(names):
        matrix.add_column(name if short else str(i), justify="right")
    for i, name in enumerate(names):
        cells = [f"[bold]{v}[/bold]" if i == j else (str(v) if v else ".") for j, v in enumerate(m[i])]
        matrix.add_row(name if short else f"{i} {name}", *cells)
    out.print(matrix)
    return 0


def _report_regression(net, args, ds, split, Xs, y):
    """RMSE, MAE and R^2 of a regression model, in the target's units."""
    from ..data.preprocessing import unscale_target  # noqa: PLC0415
    from .train import console, format_regression, regression_metrics  # noqa: PLC0415

    pre = net.preprocessing or {}
    pred = unscale_target(pre, net.predict(Xs))
    m = regression_metrics(y, pred, pre.get("target_mean", float(y.mean())))
    out = console()
    out.print(f"Model {args.model}: {'-'.join(map(str, net.sizes))} (regression); data {ds.name}, {split} rows: {len(y):,}")
    out.print(format_regression(m))
    return 0
