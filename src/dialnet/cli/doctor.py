"""Examine a trained model on its data and say what is wrong, with numbers and a fix for each.

Checks: unscaled inputs, class imbalance, saturated sigmoid/tanh units,
dead ReLUs, vanishing or exploding gradients by layer, a learning rate too
high (from the training history stored in the model file, or from a short
probe run with --optimizer/--lr), and a network too small to fit the
training set (a probe against a 4x wider twin). Every threshold is
explained in `python -c "import dialnet.doctor; help(dialnet.doctor)"`.

DATA is what `dialnet train` accepts: mnist-10k, mnist, fashion-mnist, a
CSV file (label last, or --target), an image folder, IDX files, or an
.npz file with arrays X and y.

Examples:
  dialnet doctor model.safetensors mnist-10k
  dialnet doctor model.safetensors data.csv --optimizer sgd --lr 0.5
  dialnet doctor model.safetensors mnist-10k --no-probe
"""

from __future__ import annotations

HELP = "diagnose a model on its training data: saturation, dead units, gradients, learning rate, capacity"


def add_data_arguments(p):
    """Options that say how to read DATA (shared by doctor, plot and inspect)."""
    p.add_argument("--target", help="CSV label column, by name or index (default: the last column)")
    p.add_argument("--image-size", type=int, default=None,
                   help="side of the square images (default: what the model was trained on)")


def add_arguments(p):
    p.add_argument("model", help="a .safetensors model file")
    p.add_argument("data", nargs="+", metavar="DATA", help="the training data (see above)")
    add_data_arguments(p)
    p.add_argument("--optimizer", default=None, help="the optimizer you train with, for the learning-rate probe (sgd, adam, rmsprop)")
    p.add_argument("--lr", type=float, default=None, help="the learning rate you train with, for the probe")
    p.add_argument("--no-probe", action="store_true", help="skip the short training probes (learning rate, capacity)")
    p.add_argument("--max-samples", type=int, default=2000, help="rows to examine (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed for the sampled rows and the probes (default: 0)")


def prepare_inputs(net, X):
    """Scale inputs as the model's training did (the constants stored in its file)."""
    from ..data.preprocessing import apply_preprocessing  # noqa: PLC0415

    return apply_preprocessing(net, X, dtype=net.dtype)


def _npz(path, split):
    import numpy as np  # noqa: PLC0415

    from ..errors import DataError  # noqa: PLC0415

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as an .npz file", expected="arrays X and y saved by numpy.savez",
                        got=str(exc)[:120], fix="save with numpy.savez(path, X=X, y=y)") from None
    for xk, yk in ((f"X_{split}", f"y_{split}"), ("X", "y"), ("x", "y"), ("X_train", "y_train")):
        if xk in arrays and yk in arrays:
            return arrays[xk], arrays[yk], xk
    raise DataError(f"{path} has no X and y arrays", expected="arrays named X and y (or X_train, y_train)",
                    got="arrays " + ", ".join(sorted(arrays)), fix="save with numpy.savez(path, X=X, y=y)")


def load_data(net, sources, split="train", target=None, image_size=None):
    """DATA as ``(X, y, class_names, description)``, ready for ``net``.

    ``split``: "train" or "test" (the test split when the source has one,
    else the training rows). The model's preprocessing is applied.
    """
    import os  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from ..errors import ShapeError  # noqa: PLC0415

    sources = [sources] if isinstance(sources, str) else list(sources)
    if len(sources) == 1 and str(sources[0]).lower().endswith(".npz"):
        X, y, key = _npz(sources[0], split)
        names = None
        what = f"{os.path.basename(sources[0])} ({key}, {len(X)} rows)"
    else:
        from .. import data as datasets  # noqa: PLC0415
        from ..data.preprocessing import model_image_size  # noqa: PLC0415

        ds = datasets.load(sources[0] if len(sources) == 1 else sources, image_size=model_image_size(net, image_size),
                           target=target)
        use_test = split == "test" and ds.X_test is not None
        X, y = (ds.X_test, ds.y_test) if use_test else (ds.X_train, ds.y_train)
        names = ds.class_names or None
        what = f"{ds.name} ({'test' if use_test else 'training'} split, {len(X)} rows)"
    X = np.asarray(X)
    if X.ndim > 2:
        X = X.reshape(len(X), -1)
    if X.ndim != 2 or X.shape[1] != net.n_inputs:
        raise ShapeError("the data do not fit the model's input layer",
                         expected=f"{net.n_inputs} features per row", got=f"shape {X.shape}",
                         fix="pass the data the model was trained on (and --image-size if it used another size)")
    return prepare_inputs(net, X), np.asarray(y), names, what


def run(args):
    import dialnet as dn  # noqa: PLC0415

    from ..diagnose.doctor import doctor  # noqa: PLC0415
    from ..train.optimizers import get_optimizer  # noqa: PLC0415

    net = dn.load(args.model)
    X, y, _names, what = load_data(net, args.data, "train", args.target, args.image_size)
    optimizer = None
    if args.optimizer is not None or args.lr is not None:
        optimizer = get_optimizer(args.optimizer or "adam", lr=args.lr)
    diagnosis = doctor(net, X, y, optimizer=optimizer, probe=not args.no_probe, seed=args.seed,
                       max_samples=args.max_samples)
    print(f"Doctor's report for {args.model} ({'-'.join(map(str, net.sizes))}) on {what}")
    print(diagnosis.report())
    return 0
