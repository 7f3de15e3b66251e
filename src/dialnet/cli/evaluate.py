"""Measure a saved model on a data set: accuracy, per-class precision and recall, confusion matrix.

For a regression model: RMSE, MAE, R^2 and the RMSE of always predicting
the training mean. The model's stored preprocessing (image size, column
encoding and imputation, input scaling, the CSV's label column) is applied
to DATA automatically; CSV columns are matched by header name, and labels
to the model's classes by name. Data with a test split (mnist-10k, mnist,
fashion-mnist, IDX folders with t10k files) are measured on it; other
data on all their rows, training rows included (the output says so).
For data the training run split itself (a CSV, an image folder),
--split test re-scores exactly the rows it held out: `dialnet train`
stores the split's seed and a digest of the rows in the model, and
evaluate refuses a file whose rows differ.

Examples:
  dialnet evaluate model.safetensors mnist-10k
  dialnet evaluate seeds.safetensors seeds.csv
  dialnet evaluate seeds.safetensors seeds.csv --split test   # the held-out rows of the training run
"""

from __future__ import annotations

HELP = "accuracy, per-class precision/recall and the confusion matrix of a model on DATA"


def add_arguments(p):
    p.add_argument("model", help="a .safetensors model file (from `dialnet train`)")
    p.add_argument("data", nargs="+", metavar="DATA",
                   help="mnist-10k, mnist, fashion-mnist, a CSV file, an image folder, or IDX files")
    p.add_argument("--split", choices=("test", "train", "all"), default=None,
                   help="which rows: test (DATA's test split, or the rows the training run held out), train, or all "
                   "(default: test when DATA has a test split, else all)")
    p.add_argument("--target", default=None, metavar="COL", help="the CSV's label column (default: the one the model was trained with)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N samples (seeded random subset)")
    p.add_argument("--cache", default=None, metavar="DIR", help="download cache for mnist/fashion-mnist")


def run(args):
    import numpy as np  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    import dialnet as dn  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ._shared import check_limit, console  # noqa: PLC0415

    check_limit(args.limit)
    net = dn.load(args.model)
    data = workflow.model_data(net, args.data, args.split, target=args.target, limit=args.limit, cache=args.cache)
    for line in data.notes:
        print(f"Note: {line}")
    m = workflow.evaluate_model(net, data.X, data.y)
    out = console()
    sizes = "-".join(map(str, net.sizes))
    # rows the training run split off itself: say which (its seed), so the figure is known to be the held-out one
    which = " (" + data.description.split(" (", 1)[1] if "training run" in data.description else ""
    if net.task == "regression":
        out.print(f"Model {args.model}: {sizes} (regression); data {data.name}, {data.split} rows: {m['n']:,}{which}")
        out.print(workflow.format_regression(m))
        return 0
    names = net.class_names or [str(i) for i in range(net.n_outputs)]
    out.print(f"Model {args.model}: {sizes}; data {data.name}, {data.split} rows: {m['n']:,}{which}")
    out.print(f"Accuracy: {100 * m['accuracy']:.2f}% ({m['correct']:,} of {m['n']:,}), loss {m['loss']:.4f}")
    per_class = Table(title="Per class")
    for col, justify in (("class", "left"), ("precision", "right"), ("recall", "right"), ("support", "right")):
        per_class.add_column(col, justify=justify)
    for name, precision, recall, support in zip(names, m["precision"], m["recall"], m["support"]):
        per_class.add_row(name, "-" if np.isnan(precision) else f"{precision:.3f}", "-" if np.isnan(recall) else f"{recall:.3f}",
                          f"{support:,}")
    out.print(per_class)
    short = all(len(name) <= 6 for name in names)  # short names head the columns; long ones get numbers
    matrix = Table(title="Confusion matrix")
    matrix.add_column("true \\ predicted")
    for i, name in enumerate(names):
        matrix.add_column(name if short else str(i), justify="right")
    for i, name in enumerate(names):
        cells = [f"[bold]{v}[/bold]" if i == j else (str(v) if v else ".") for j, v in enumerate(m["confusion"][i])]
        matrix.add_row(name if short else f"{i} {name}", *cells)
    out.print(matrix)
    return 0
