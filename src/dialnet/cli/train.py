"""Train a network on a data set, save it, and show how sure it is.

With no DATA (the articles' demo): the bundled mnist-10k digits (8,000
train / 2,000 test), resized to 25x25, train the 625-20-20-10 sigmoid
network with a softmax output (Adam lr 0.003, L2 0.0003) until the mean
certainty of the true class on held-out data reaches --target-certainty
(0.9), or early stopping or the epoch cap ends it. The model goes to
model.safetensors with its class names and input scaling; the test
accuracy and a few test digits' certainties are printed.

With DATA, general-purpose defaults: hidden layers 64,64 ReLU (He init),
Adam lr 0.001, batch 32, 10% of the training rows held out for early
stopping on the validation loss (the best weights are kept), a plateau
schedule, L2 0.0001, no target certainty; tables are standard-scaled,
images scaled to 0..1.

Tables (CSV): text feature columns are one-hot encoded (50 most frequent
values + "other"; ID-like columns dropped), missing cells imputed (median,
or a "(missing)" category), all learned on the training rows and stored
with the model. --task auto decides classification or regression from the
label column: text -> classes; a fractional number -> regression; whole
numbers -> classes when there are at most 20 distinct values and at most
half as many as rows, else regression. Regression trains an identity
output on standardized targets (MSE) and reports RMSE, MAE and R^2.

DATA: mnist-10k (default), mnist, fashion-mnist (downloaded once and
checked by SHA-256 into $DIALNET_CACHE or ~/.cache/dialnet), a CSV file
(last column = label unless --target), a folder with one sub-folder of
images per class, an IDX folder, or explicit IDX files (images labels
[test-images test-labels]). Data without a test split get one
(--test-split, stratified, seeded).

Examples:
  dialnet train
  dialnet train mnist-10k --image-size 28 --layers 256,128 --activation relu --epochs 60
  dialnet train seeds.csv --classic --cv 5     # 7-5-3 sigmoid net, squared error, online SGD
  dialnet train houses.csv --target price       # regression: RMSE, MAE, R^2
"""

from __future__ import annotations

HELP = "train a network on mnist-10k (default), mnist, fashion-mnist, a CSV, an image folder or IDX files"

# Defaults when DATA is given, chosen to generalize to tables and images nobody here has seen:
# two ReLU layers of 64 (He init), Adam, a held-out 10% with early stopping on the validation
# loss (best weights kept) and a plateau schedule, light L2, no certainty target.
DEFAULTS = {
    "layers": "64,64", "activation": "relu", "output": "softmax", "loss": None, "optimizer": "adam", "lr": None,
    "batch_size": 32, "epochs": "auto", "target_certainty": "none", "validation_split": 0.1, "early_stopping": "auto",
    "lr_schedule": "plateau", "l2": 1e-4, "scale": "auto", "task": "auto",
}
# No DATA: the articles' demo on the bundled digits, the 625-20-20-10 sigmoid net trained until
# the mean certainty of the true class on held-out digits reaches 0.9.
DEMO = {**DEFAULTS, "layers": "20,20", "activation": "sigmoid", "lr": 3e-3, "target_certainty": "0.9", "l2": 3e-4}
# --classic: the from-scratch recipe of the articles (one hidden layer of 5 sigmoid units,
# sigmoid outputs with one-hot targets and squared error, online SGD, lr 0.3, 500 epochs).
CLASSIC = {
    "layers": "5", "activation": "sigmoid", "output": "sigmoid", "loss": "mse", "optimizer": "sgd", "lr": 0.3,
    "batch_size": 1, "epochs": 500, "target_certainty": "none", "validation_split": 0.0, "early_stopping": 0,
    "lr_schedule": "none", "l2": 0.0, "scale": "minmax", "task": "auto",
}
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "sgd": 0.1}
# "auto" epoch cap and patience: in epochs, but never fewer than this many optimizer
# steps, so a 200-row CSV (5 steps an epoch) trains as long as a big set does.
MIN_EPOCHS, MIN_STEPS = 100, 20_000
MIN_PATIENCE, MIN_PATIENCE_STEPS = 10, 2_000
MAX_AUTO_EPOCHS = 10_000
EXAMPLES_SHOWN = 5


def add_arguments(p):
    p.add_argument("data", nargs="*", metavar="DATA",
                   help="mnist-10k (default), mnist, fashion-mnist, a CSV file, an image folder, or IDX files")
    g = p.add_argument_group("network")
    g.add_argument("--layers", default=None,
                   help="hidden layer widths, comma-separated (default: 64,64 with DATA, 20,20 without; 'none' for no hidden layer)")
    g.add_argument("--activation", default=None,
                   help="hidden activation: relu (default with DATA), sigmoid (default without), tanh, leaky_relu, identity")
    g.add_argument("--output", default=None,
                   help="output activation: softmax (default for classes), identity (regression) or sigmoid (the classic recipe)")
    g.add_argument("--loss", default=None,
                   help="cross_entropy (default for softmax), mse (default for sigmoid and regression), binary_cross_entropy")
    g.add_argument("--dropout", type=float, default=0.0, help="dropout rate after each hidden layer (default: 0)")
    g.add_argument("--dtype", default="float32", help="float32 (default, fast) or float64")
    g = p.add_argument_group("training")
    g.add_argument("--optimizer", default=None, help="adam (default), adamw, rmsprop or sgd")
    g.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.001 for adam and rmsprop, 0.1 for sgd; 0.003 in the no-DATA demo)")
    g.add_argument("--batch-size", type=int, default=None, help="samples per gradient step (default: 32; 1 = online SGD)")
    g.add_argument("--epochs", type=int, default=None,
                   help="epoch cap (default: 100, or more on small data so that at least 20,000 steps are allowed)")
    g.add_argument("--target-certainty", default=None,
                   help="stop when the mean certainty of the true class on held-out data reaches this "
                   "(default: none with DATA, 0.9 in the no-DATA demo; classification only)")
    g.add_argument("--validation-split", type=float, default=None,
                   help="fraction of the training rows held out to watch (default: 0.1; 0 = none)")
    g.add_argument("--early-stopping", type=int, default=None,
                   help="stop after this many epochs without a better validation loss, keeping the best weights "
                   "(default: 10, or more on small data: at least 2,000 steps; 0 = off)")
    g.add_argument("--lr-schedule", default=None, help="plateau (default: halve lr when stuck), cosine, step, exponential, none")
    g.add_argument("--l2", type=float, default=None, help="L2 penalty on the weights (default: 0.0001; 0.0003 in the no-DATA demo; 0 = off)")
    g.add_argument("--seed", type=int, default=0, help="seed for the dials, the shuffling and the splits (default: 0)")
    g.add_argument("--cv", type=int, default=None, metavar="K",
                   help="K-fold cross-validation (seeded; stratified for classes): print each fold's accuracy "
                   "(R^2 and RMSE for regression) and the mean; saves no model")
    g.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="write a checkpoint here (atomically) each epoch or every --checkpoint-every steps, and on Ctrl-C")
    g.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                   help="checkpoint every N optimizer steps (mini-batches) instead of each epoch")
    g.add_argument("--resume", default=None, metavar="PATH",
                   help="continue an interrupted run from this checkpoint (same DATA and options): same bits as a run never stopped")
    g.add_argument("--classic", action="store_true",
                   help="the classic from-scratch recipe: --layers 5 --output sigmoid --loss mse --optimizer sgd --lr 0.3 "
                   "--batch-size 1 --epochs 500 --scale minmax, no target certainty, validation split, early stopping, "
                   "schedule or L2 (options given explicitly still win)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("data")
    g.add_argument("--scale", default=None,
                   help="input scaling stored with the model: minmax, standard, none; auto (default) = standard for tables "
                   "(minmax with --classic), none for images (pixels are already 0..1)")
    g.add_argument("--task", default=None, choices=("auto", "classification", "regression"),
                   help="what a CSV's label column is: auto (default: text or few whole numbers -> classification, "
                   "fractional or many distinct numbers -> regression), classification or regression")
    g.add_argument("--target", default=None, metavar="COL", help="the CSV's label column, by header name or 0-based index (default: the last)")
    g.add_argument("--image-size", type=int, default=25, help="resize images to N x N pixels (default: 25 -> 625 inputs)")
    g.add_argument("--test-split", type=float, default=0.2,
                   help="for data without a test split: fraction held out for the test accuracy (default: 0.2)")
    g.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use at most N training and N test samples (a seeded random subset), for quick runs")
    g.add_argument("--cache", default=None, metavar="DIR", help="download cache for mnist/fashion-mnist (default: $DIALNET_CACHE or ~/.cache/dialnet)")
    p.add_argument("--out", default="model.safetensors", help="where to save the model (default: model.safetensors)")


# ------------------------------------------------------------------ helpers shared by evaluate and predict


def parse_hidden(text):
    """'20,20' -> [20, 20]; 'none' or '' -> [] (no hidden layer)."""
    from .summary import parse_sizes  # noqa: PLC0415

    if str(text).strip().lower() in ("", "none", "0"):
        return []
    return parse_sizes(text, "--layers")


def parse_certainty(text):
    """'0.9' -> 0.9; 'none'/'off'/'0' -> None."""
    from ..errors import InvalidValueError  # noqa: PLC0415

    if text is None or str(text).strip().lower() in ("none", "off", "0", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise InvalidValueError("--target-certainty must be a certainty in (0, 1], or 'none'", expected="e.g. 0.9",
                                got=repr(text), fix="pass --target-certainty 0.9, or --target-certainty none to train all epochs")
    return value


def format_certainties(probs, class_names, top=3):
    """'0.95 eight, 0.02 three, 0.01 five': the ``top`` largest certainties, largest first (top=0: all)."""
    import numpy as np  # noqa: PLC0415

    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, kind="stable")
    if top:
        order = order[:top]
    names = class_names or [str(i) for i in range(len(probs))]
    return ", ".join(f"{probs[i]:.2f} {names[i]}" for i in order)


def stratified_split(y, fraction, seed):
    """Indices ``(train, test)`` with ``fraction`` of each class in test (at least one row per class that has 2+)."""
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * fraction))
        k = min(max(k, 1 if len(idx) > 1 else 0), len(idx) - 1)
        test.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def stratified_folds(y, k, seed):
    """``k`` disjoint test-index arrays covering every row; each class dealt round-robin after a seeded shuffle."""
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    start = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = (start + np.arange(len(idx))) % k
        start = (start + len(idx)) % k  # keeps the folds' sizes within one of each other
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def subset(X, y, n, seed):
    """At most ``n`` rows, a seeded random choice kept in the original order."""
    import numpy as np  # noqa: PLC0415

    if X is None or n is None or len(X) <= n:
        return X, y
    keep = np.sort(np.random.default_rng(seed).permutation(len(X))[:n])
    return X[keep], y[keep]


def load_data(args, image_size=None, target=None):
    """The data set named by ``args.data`` (a list of 0, 1, 2 or 4 items)."""
    from .. import data as datasets  # noqa: PLC0415

    sources = list(args.data) if args.data else ["mnist-10k"]
    source = sources[0] if len(sources) == 1 else sources
    return datasets.load(source, image_size=image_size or args.image_size, target=target,
                         cache=getattr(args, "cache", None), task=getattr(args, "task", None) or "auto")


def console():
    """A rich console for tables; wide enough for a 10-class confusion matrix."""
    from rich.console import Console  # noqa: PLC0415

    c = Console(highlight=False)
    if not c.is_terminal:
        c = Console(highlight=False, width=120)
    return c


# ------------------------------------------------------------------ the command


def _check_options(args):
    """Validate every name and number before any data is read."""
    from ..errors import ConfigError, InvalidValueError  # noqa: PLC0415
    from ..core.layers import get_activation  # noqa: PLC0415
    from ..core.losses import get_loss  # noqa: PLC0415
    from ..core.network import OUTPUTS  # noqa: PLC0415
    from ..train.optimizers import OPTIMIZERS, get_schedule  # noqa: PLC0415
    from ..data.preprocessing import check_scaling  # noqa: PLC0415
    from ..backend import resolve_dtype  # noqa: PLC0415
    from ..data import check_image_size  # noqa: PLC0415

    preset = CLASSIC if getattr(args, "classic", False) else (DEFAULTS if args.data else DEMO)
    args.given = {key for key in preset if getattr(args, key, None) is not None}
    for key, value in preset.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.hidden = parse_hidden(args.layers)
    get_activation(args.activation)
    if args.output.lower() not in OUTPUTS:
        raise ConfigError(f"unknown output activation {args.output!r}", expected="one of " + ", ".join(OUTPUTS),
                          got=repr(args.output), fix="use --output softmax (certainty per class) or sigmoid")
    if args.loss is not None:
        get_loss(args.loss)
    if args.optimizer.lower() not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {args.optimizer!r}", expected="one of " + ", ".join(sorted(OPTIMIZERS)),
                          got=repr(args.optimizer), fix="use --optimizer adam or sgd")
    args.optimizer = args.optimizer.lower()
    args.schedule = None if str(args.lr_schedule).lower() in ("none", "off", "") else args.lr_schedule
    get_schedule(args.schedule)
    if args.scale != "auto":
        args.scale = check_scaling(args.scale)
    resolve_dtype(args.dtype)
    check_image_size(args.image_size)
    args.certainty = parse_certainty(args.target_certainty)
    checks = [
        ("--epochs", args.epochs, args.epochs == "auto" or args.epochs >= 1, "a whole number >= 1", "--epochs 100"),
        ("--batch-size", args.batch_size, args.batch_size >= 1, "a whole number >= 1", "--batch-size 32"),
        ("--validation-split", args.validation_split, 0.0 <= args.validation_split < 1.0, "0 <= f < 1", "--validation-split 0.1"),
        ("--test-split", args.test_split, 0.0 < args.test_split < 1.0, "0 < f < 1", "--test-split 0.2"),
        ("--early-stopping", args.early_stopping, args.early_stopping == "auto" or args.early_stopping >= 0, "a whole number >= 0", "--early-stopping 10"),
        ("--l2", args.l2, args.l2 >= 0.0, "a number >= 0", "--l2 0.0003"),
        ("--dropout", args.dropout, 0.0 <= args.dropout < 1.0, "0 <= p < 1", "--dropout 0.2"),
        ("--lr", args.lr, args.lr is None or args.lr > 0.0, "a number > 0", "--lr 0.003"),
        ("--limit", args.limit, args.limit is None or args.limit >= 2, "a whole number >= 2", "--limit 1000"),
        ("--cv", args.cv, args.cv is None or args.cv >= 2, "a whole number >= 2", "--cv 5"),
        ("--checkpoint-every", args.checkpoint_every, args.checkpoint_every is None or args.checkpoint_every >= 1,
         "a whole number >= 1", "--checkpoint-every 500"),
    ]
    for name, value, ok, expected, example in checks:
        if not ok:
            raise InvalidValueError(f"{name} is out of range", expected=expected, got=repr(value), fix=f"e.g. {example}")
    if args.checkpoint_every is not None and args.checkpoint is None:
        raise ConfigError("--checkpoint-every needs --checkpoint", expected="--checkpoint PATH with it", got="no --checkpoint",
                          fix="add --checkpoint run.ckpt.safetensors")
    if args.cv and (args.checkpoint or args.resume):
        raise ConfigError("--checkpoint and --resume do not apply to --cv", expected="one training run",
                          got=f"--cv {args.cv}", fix="drop --cv to train (and checkpoint) one model")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]


def build_network(args, n_in, n_out, task="classification"):
    """The MLP for the options; a regression net gets one identity output unless --output was given."""
    import dialnet as dn  # noqa: PLC0415

    output = args.output
    if task == "regression" and "output" not in getattr(args, "given", ()):
        output = "identity"
    net = dn.mlp([n_in, *args.hidden, n_out], activation=args.activation, output=output, dtype=args.dtype,
                 seed=args.seed, dropout=args.dropout)
    if task == "regression":
        net.task = "regression"
    return net


def fit_options(args, n_rows):
    """The keyword arguments for ``Network.fit`` from the command line, for ``n_rows`` training rows.

    "auto" epochs and patience count epochs but allow at least ``MIN_STEPS``
    (``MIN_PATIENCE_STEPS``) optimizer steps; the plateau schedule waits
    half as long as early stopping; cosine anneals over all the epochs.
    """
    import math  # noqa: PLC0415

    from ..train.optimizers import CosineLR, ReduceLROnPlateau, get_optimizer, get_schedule  # noqa: PLC0415

    n_fit = n_rows - int(round(n_rows * (args.validation_split or 0.0)))
    steps = max(1, math.ceil(max(n_fit, 1) / args.batch_size))
    epochs = args.epochs
    if epochs == "auto":
        epochs = min(MAX_AUTO_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps)))
    patience = args.early_stopping
    if patience == "auto":
        patience = max(MIN_PATIENCE, math.ceil(MIN_PATIENCE_STEPS / steps))
    name = None if args.schedule is None else str(args.schedule).lower()
    if name == "cosine":
        schedule = CosineLR(t_max=epochs)
    elif name == "plateau":
        schedule = ReduceLROnPlateau(patience=max(5, (patience or MIN_PATIENCE) // 2))
    else:
        schedule = get_schedule(args.schedule)
    loss = args.loss
    if getattr(args, "task_found", None) == "regression" and "loss" not in getattr(args, "given", ()):
        loss = "mse"
    return {
        "loss": loss,
        "optimizer": get_optimizer(args.optimizer, lr=args.lr),
        "epochs": epochs,
        "batch_size": args.batch_size,
        "validation_split": args.validation_split or None,
        "seed": args.seed,
        "target_certainty": args.certainty,
        "early_stopping": patience or None,
        "lr_schedule": schedule,
        "l2": args.l2,
    }


def split_rows(y, fraction, seed, task="classification"):
    """Indices ``(train, test)``: stratified for classes, a seeded random split for regression."""
    import numpy as np  # noqa: PLC0415

    if task != "regression":
        return stratified_split(y, fraction, seed)
    order = np.random.default_rng(seed).permutation(len(y))
    k = min(max(int(round(len(y) * fraction)), 1), len(y) - 1)
    return np.sort(order[k:]), np.sort(order[:k])


def kfolds(y, k, seed, task="classification"):
    """``k`` disjoint test-index arrays: stratified for classes, plain seeded K-fold for regression."""
    import numpy as np  # noqa: PLC0415

    if task != "regression":
        return stratified_folds(y, k, seed)
    order = np.random.default_rng(seed).permutation(len(y))
    return [np.sort(part) for part in np.array_split(order, k)]


def _scaling(args, ds):
    if args.scale != "auto":
        return args.scale
    return "none" if ds.kind == "image" else "standard"


def fit_inputs(args, ds, X):
    """Learn the input preprocessing on training rows ``X``; return ``(pre, X_scaled, notes)``.

    For tables ``X`` holds the raw text cells: the column rules (numeric or
    one-hot, imputation) are fitted first, then the scaling on the encoded
    rows. Nothing here sees a test row.
    """
    from ..data.preprocessing import apply_preprocessing, encode_columns, fit_columns, fit_preprocessing  # noqa: PLC0415

    notes = []
    columns = None
    if ds.cells is not None:
        names = [c["name"] for c in ds.columns]
        columns, notes = fit_columns(X, names, where=ds.name)
        X, imputed = encode_columns(columns, X)
        if imputed:
            notes.append(f"imputed {imputed:,} missing cells in the training rows (median, or the column's '(missing)' category)")
    pre = fit_preprocessing(X, _scaling(args, ds), kind=ds.kind, image_size=ds.image_size,
                            feature_names=ds.feature_names if columns is None else None, target=ds.target,
                            background=ds.background, columns=columns)
    return pre, apply_preprocessing(pre, X, args.dtype), notes


def _prepare(args, ds):
    """Limit, split, encode and scale; returns (X_train, y_train, X_test, y_test_raw, preprocessing, split_note, notes).

    For regression ``y_train`` is standardized (constants in the
    preprocessing) and ``y_test`` stays in the target's units.
    """
    from ..data.preprocessing import apply_preprocessing, encode_columns, fit_target, scale_target  # noqa: PLC0415

    rows = ds.cells if ds.cells is not None else ds.X_train
    Xtr, ytr = subset(rows, ds.y_train, args.limit, args.seed)
    Xte, yte = subset(ds.X_test, ds.y_test, args.limit, args.seed + 1)
    note = "test split from the data set"
    if Xte is None:
        tr, te = split_rows(ytr, args.test_split, args.seed, ds.task)
        Xtr, ytr, Xte, yte = Xtr[tr], ytr[tr], Xtr[te], ytr[te]
        how = "stratified, " if ds.task != "regression" else ""
        note = f"{args.test_split:g} of the rows held out for testing ({how}seed {args.seed})"
    if len(Xte) == 0:
        from ..errors import DataError  # noqa: PLC0415

        raise DataError(f"no rows left over for testing in {ds.name}", expected="a class with at least 2 rows",
                        got=f"{len(ytr):,} rows, {len(set(ytr.tolist())):,} classes",
                        fix="use more rows per class, or --task regression if the label is a quantity")
    pre, Xtr_s, notes = fit_inputs(args, ds, Xtr)
    if ds.cells is not None:
        _, imputed = encode_columns(pre["columns"], Xte)
        if imputed:
            notes.append(f"imputed {imputed:,} missing cells in the test rows with the training values")
    if ds.task == "regression":
        pre.update(fit_target(ytr))
        ytr = scale_target(pre, ytr)
    return Xtr_s, ytr, apply_preprocessing(pre, Xte, args.dtype), yte, pre, note, notes


def _describe_data(ds, n_train, n_test):
    if ds.kind == "image":
        what = f"{ds.image_size}x{ds.image_size} images"
    elif ds.columns is not None:
        used = [c for c in ds.columns if c["kind"] != "dropped"]
        n_text = sum(c["kind"] == "categorical" for c in used)
        what = f"from {len(used)} columns" + (f", {n_text} of them text, one-hot encoded" if n_text else "")
    else:
        what = "columns"
    goal = f"regression target {ds.target!r}" if ds.task == "regression" else f"{ds.n_classes} classes"
    return f"Data: {ds.name}: {n_train:,} training / {n_test:,} test samples, {ds.n_features} inputs ({what}), {goal}"


def _describe_net(net, args, fit_kw):
    loss = fit_kw["loss"] or net.default_loss().name
    hidden = f"{args.activation} hidden, " if args.hidden else ""
    output = net.layers[-1].name if net.task == "regression" else args.output
    return (f"Network {'-'.join(map(str, net.sizes))} ({hidden}{output} output): {net.count_parameters():,} dials; "
            f"loss {loss}, {args.optimizer} lr {args.lr:g}, batch {args.batch_size}, at most {fit_kw['epochs']} epochs"
            + (f", early stopping after {fit_kw['early_stopping']}" if fit_kw["early_stopping"] else "")
            + (f", target certainty {args.certainty:g}" if args.certainty is not None else ""))


def regression_metrics(y, pred, train_mean):
    """RMSE, MAE, R^2 = 1 - SSE/SST, and the RMSE of always predicting the training mean."""
    import numpy as np  # noqa: PLC0415

    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    err = pred - y
    sst = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
        "r2": 1.0 - float((err**2).sum()) / sst if sst > 0 else float("nan"),
        "baseline_rmse": float(np.sqrt(((y - train_mean) ** 2).mean())),
    }


def format_regression(m):
    return (f"RMSE {m['rmse']:.4g}, MAE {m['mae']:.4g}, R^2 {m['r2']:.4f} "
            f"(predicting the training mean: RMSE {m['baseline_rmse']:.4g})")


def _check_task(args, ds):
    """Regression takes no certainty target; say so if one was asked for."""
    from ..errors import ConfigError  # noqa: PLC0415

    args.task_found = ds.task
    if ds.task == "regression" and args.certainty is not None:
        if "target_certainty" in args.given:
            raise ConfigError("--target-certainty applies to classification only", expected="class labels",
                              got=f"a regression target ({ds.target!r})",
                              fix="drop --target-certainty (early stopping ends regression training), or pass --task classification")
        print("Note: no target certainty for a regression target; early stopping governs")
        args.certainty = None


def run(args):
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    from . import EXIT_INTERRUPTED  # noqa: PLC0415
    from ..errors import DataError, TrainingInterrupted  # noqa: PLC0415
    from ..diagnose.plots import GradientNormRecorder  # noqa: PLC0415
    from ..data.preprocessing import unscale_target  # noqa: PLC0415

    started = time.perf_counter()
    _check_options(args)
    ds = load_data(args, target=args.target)
    _check_task(args, ds)
    for line in ds.notes:
        print(f"Note: {line}")
    if args.cv:
        return _cross_validate(args, ds, started)
    Xtr, ytr, Xte, yte, pre, note, notes = _prepare(args, ds)
    if len(Xtr) < 2:
        raise DataError("too few training samples", expected="at least 2", got=str(len(Xtr)), fix="use more data or a larger --limit")
    for line in notes:
        print(f"Note: {line}")
    regression = ds.task == "regression"
    print(_describe_data(ds, len(Xtr), len(Xte)))
    net = build_network(args, Xtr.shape[1], 1 if regression else ds.n_classes, ds.task)
    fit_kw = fit_options(args, len(Xtr))
    print(_describe_net(net, args, fit_kw))
    try:
        # gradient norms per layer go into the history, so `dialnet plot` can draw them later
        recorder = GradientNormRecorder(Xtr, ytr, seed=args.seed)
        history = net.fit(Xtr, ytr, progress=not args.no_progress, checkpoint=args.checkpoint,
                          checkpoint_every=args.checkpoint_every, resume=args.resume, callbacks=[recorder], **fit_kw)
    except TrainingInterrupted as exc:  # Ctrl-C: the step finished and the checkpoint is on disk
        print(f"dialnet: interrupted at epoch {exc.epoch}, step {exc.step}; checkpoint saved to {exc.checkpoint}", file=sys.stderr)
        print(f"  hint: run the same command with --resume {exc.checkpoint} to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    net.preprocessing = pre
    net.class_names = None if regression else list(ds.class_names)
    print(f"Stopped: {history.stop_reason}")
    if history.best_epoch is not None and history.best_epoch + 1 != len(history.epochs):
        print(f"Kept the weights of epoch {history.best_epoch + 1} (lowest validation loss)")
    print(f"Trained {len(history.epochs)} epochs in {history.train_time:.1f} s")
    meta = {"data": ds.name, "epochs": len(history.epochs), "stop_reason": history.stop_reason, "seed": args.seed,
            "history": history.history}
    if regression:
        pred = unscale_target(pre, net.predict(Xte))
        m = regression_metrics(yte, pred, pre["target_mean"])
        print(f"Test {format_regression(m)}; {len(yte):,} rows, {note}")
        meta.update(test_r2=m["r2"], test_rmse=m["rmse"], test_mae=m["mae"])
    else:
        pred = net.predict(Xte)
        correct = int((pred == yte).sum())
        acc = correct / len(yte)
        print(f"Test accuracy: {100 * acc:.2f}% ({correct:,} of {len(yte):,}; {note})")
        meta["test_accuracy"] = acc
    net.save(args.out, extra_metadata=meta)
    print(f"Saved {args.out}")
    _show_examples(net, Xte[:EXAMPLES_SHOWN], yte[:EXAMPLES_SHOWN], ds.kind)
    print(f"Total time {time.perf_counter() - started:.1f} s")
    return 0


def _show_examples(net, X, y, kind):
    from rich.table import Table  # noqa: PLC0415

    from ..data.preprocessing import unscale_target  # noqa: PLC0415

    what = "digit" if kind == "image" else "row"
    if net.task == "regression":
        pred = unscale_target(net, net.predict(X))
        table = Table(title=f"Predictions, first {len(X)} test rows")
        for col in (f"test {what}", "true value", "predicted"):
            table.add_column(col, justify="right")
        for i, (p, t) in enumerate(zip(pred, y)):
            table.add_row(str(i + 1), f"{t:.4g}", f"{p:.4g}")
        console().print(table)
        return
    P = net.predict_proba(X)
    table = Table(title=f"How sure the network is, first {len(X)} test samples")
    table.add_column(f"test {what}", justify="right")
    table.add_column("true class")
    table.add_column("certainties (largest first)")
    names = net.class_names or [str(i) for i in range(P.shape[1])]
    for i, (p, t) in enumerate(zip(P, y)):
        table.add_row(str(i + 1), names[int(t)], format_certainties(p, names))
    console().print(table)


def _cross_validate(args, ds, started):
    import time  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from ..errors import DataError  # noqa: PLC0415
    from ..data.preprocessing import apply_preprocessing, fit_target, scale_target, unscale_target  # noqa: PLC0415

    X = ds.cells if ds.cells is not None else ds.X_train
    y = ds.y_train
    if ds.X_test is not None:
        X, y = np.concatenate([X, ds.X_test]), np.concatenate([y, ds.y_test])
    X, y = subset(X, y, args.limit, args.seed)
    if args.cv > len(y):
        raise DataError("more folds than samples", expected=f"--cv at most {len(y)}", got=str(args.cv), fix="use --cv 5 or 10")
    regression = ds.task == "regression"
    how = "" if regression else "stratified, "
    print(_describe_data(ds, len(y), 0).replace(" / 0 test", "") + f"; {args.cv}-fold cross-validation ({how}seed {args.seed})")
    scores, rmses = [], []
    for k, test in enumerate(kfolds(y, args.cv, args.seed, ds.task)):
        t0 = time.perf_counter()
        train = np.setdiff1d(np.arange(len(y)), test, assume_unique=True)
        # encoding and scaling constants come from the training folds only: the held-out fold stays unseen
        pre, Xtr, _notes = fit_inputs(args, ds, X[train])
        ytr = y[train]
        if regression:
            pre.update(fit_target(ytr))
            ytr = scale_target(pre, ytr)
        net = build_network(args, Xtr.shape[1], 1 if regression else ds.n_classes, ds.task)
        net.reset_parameters(args.seed + k)
        if k == 0:
            print(_describe_net(net, args, fit_options(args, len(train))))
        history = net.fit(Xtr, ytr, progress=False, **fit_options(args, len(train)))
        out = net.predict(apply_preprocessing(pre, X[test], args.dtype))
        if regression:
            m = regression_metrics(y[test], unscale_target(pre, out), pre["target_mean"])
            scores.append(m["r2"])
            rmses.append(m["rmse"])
            result = f"R^2 {m['r2']:.4f}, RMSE {m['rmse']:.4g}"
        else:
            scores.append(float((out == y[test]).mean()))
            result = f"accuracy {100 * scores[-1]:.2f}%"
        print(f"fold {k + 1}/{args.cv}: {result} on {len(test)} rows "
              f"({len(history.epochs)} epochs, {time.perf_counter() - t0:.1f} s; {history.stop_reason})", flush=True)
    scores = np.array(scores)
    if regression:
        print(f"Mean R^2: {scores.mean():.4f} (+/- {scores.std():.4f}), mean RMSE {np.mean(rmses):.4g} over {args.cv} folds")
    else:
        print(f"Mean accuracy: {100 * scores.mean():.2f}% (+/- {100 * scores.std():.2f}) over {args.cv} folds")
    print(f"Total time {time.perf_counter() - started:.1f} s (cross-validation only: no model saved; run without --cv to train and save one)")
    return 0
