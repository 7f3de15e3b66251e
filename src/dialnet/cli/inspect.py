"""Follow one input through the network and its error back: where it goes and which dials matter.

For each layer it prints the ranges and norms of the input, z = a @ W + b,
the activation a, the error signal delta = dL/dz that backprop hands to
the layer, and dL/dW, dL/db; then the dials (weights) with the largest
|dL/dW|: the ones that change the loss fastest for this mistake, and which
way gradient descent would turn them.

INPUT is an image file (png, jpg, ...), a .npy row (or rows), a CSV row
file, an .npz with X and y, or a data set (mnist-10k, a CSV, a folder)
from which --index picks a row of the test split (with its true label).
Without a label (--label) the network's own answer is the target, so the
gradients show what would make it surer of it.

Examples:
  dialnet inspect model.safetensors mnist-10k --wrong     # the first test digit it gets wrong
  dialnet inspect model.safetensors mnist-10k --index 8
  dialnet inspect model.safetensors digit.png --label 7
  dialnet inspect model.safetensors mnist-10k --index 0 --save-arrays trace.npz
"""

from __future__ import annotations

HELP = "trace one input through the layers: z, activations, deltas, dL/dW and the dials that matter most"


def add_arguments(p):
    from .doctor import add_data_arguments  # noqa: PLC0415

    p.add_argument("model", help="a .safetensors model file")
    p.add_argument("input", nargs="+", metavar="INPUT", help="an image, a .npy/.csv row file, or a data set (see above)")
    p.add_argument("--index", type=int, default=None,
                   help="which row of a data set or file to trace (default: the first)")
    p.add_argument("--wrong", action="store_true",
                   help="trace the first row (from --index on) that the model gets wrong: a mistake to look into")
    p.add_argument("--label", default=None, help="the true class (index or name) of the input")
    p.add_argument("--top", type=int, default=5, help="how many dials to list per layer (default: 5)")
    p.add_argument("--save-arrays", metavar="FILE.npz", help="also write every traced array to this .npz")
    add_data_arguments(p)


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def _pick(X, y, index, what):
    from ..errors import InvalidValueError  # noqa: PLC0415

    i = 0 if index is None else index
    if not -len(X) <= i < len(X):
        raise InvalidValueError(f"--index {i} is out of range for {what}", expected=f"0..{len(X) - 1}",
                                got=str(i), fix="pick a row that exists")
    i %= len(X)
    return X[i : i + 1], (None if y is None else y[i : i + 1]), i


def load_image_input(net, path, image_size=None):
    """One image file as a model input row, matched to the training images' background."""
    from ..data import load_image  # noqa: PLC0415
    from ..data.preprocessing import model_image_size  # noqa: PLC0415
    from .doctor import prepare_inputs  # noqa: PLC0415

    img = load_image(path, model_image_size(net, image_size))
    pre = getattr(net, "preprocessing", None) or {}
    background = pre.get("background") if isinstance(pre, dict) else None
    border = float(((img[0].sum() + img[-1].sum() + img[1:-1, 0].sum() + img[1:-1, -1].sum())
                    / (2 * img.shape[0] + 2 * img.shape[1] - 4)))
    inverted = isinstance(background, (int, float)) and (border > 0.5) != (background > 0.5)
    if inverted:  # dark digits on white paper, for a model trained on light digits on black
        img = 1.0 - img
    return prepare_inputs(net, img.reshape(1, -1)), inverted


def first_mistake(net, sources, start=0, target=None, image_size=None):
    """The first row of DATA's test split, from ``start`` on, whose predicted class is not its label."""
    import numpy as np  # noqa: PLC0415

    from ..errors import DataError  # noqa: PLC0415
    from .doctor import load_data  # noqa: PLC0415

    X, y, _names, what = load_data(net, sources, "test", target, image_size)
    if net.task != "classification":
        raise DataError("--wrong needs a classifier", expected="a model with class outputs", got=f"task {net.task}",
                        fix="pick a row with --index instead")
    wrong = np.flatnonzero(net.predict(X[start:]) != y[start:])
    if wrong.size == 0:
        raise DataError(f"the model gets every row of {what} from {start} on right", expected="a misclassified row",
                        got="none", fix="pick a row with --index instead")
    i = start + int(wrong[0])
    return X[i : i + 1], y[i : i + 1], f"row {i} of {what}, the first the model gets wrong"


def load_rows(net, sources, index=None, target=None, image_size=None):
    """INPUT as ``(X, y or None, description)``: one row (or all rows of a .npy file without --index)."""
    import os  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from ..errors import DataError, ShapeError  # noqa: PLC0415
    from .doctor import load_data, prepare_inputs  # noqa: PLC0415

    first = str(sources[0])
    low = first.lower()
    if len(sources) == 1 and low.endswith(IMAGE_EXTENSIONS):
        X, inverted = load_image_input(net, first, image_size)
        return X, None, os.path.basename(first) + (" (inverted to match the training background)" if inverted else "")
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
        X = prepare_inputs(net, X)
        if index is not None:
            X, _, i = _pick(X, None, index, first)
            return X, None, f"{os.path.basename(first)} row {i}"
        return X, None, os.path.basename(first)
    X, y, _names, what = load_data(net, sources, "test", target, image_size)
    X, y, i = _pick(X, y, index, what)
    return X, y, f"row {i} of {what}"


def _label_index(net, label):
    from ..errors import DataError  # noqa: PLC0415

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


def run(args):
    import numpy as np  # noqa: PLC0415

    import dialnet as dn  # noqa: PLC0415

    from ..errors import InvalidValueError  # noqa: PLC0415
    from ..diagnose.trace import trace  # noqa: PLC0415

    if args.top < 0:
        raise InvalidValueError("--top must be 0 or more", expected="a count such as 5", got=str(args.top), fix="pass --top 5")
    net = dn.load(args.model)
    if args.wrong:
        X, y, what = first_mistake(net, args.input, args.index or 0, args.target, args.image_size)
    else:
        X, y, what = load_rows(net, args.input, args.index, args.target, args.image_size)
    if args.label is not None:
        y = np.full(len(X), _label_index(net, args.label), dtype=np.int64)
    t = trace(net, X, y)
    print(f"Input: {what}")
    print(t.report(top=args.top))
    if args.save_arrays:
        from ..errors import ConfigError  # noqa: PLC0415

        try:
            np.savez(args.save_arrays, **t.arrays())
        except OSError as exc:
            raise ConfigError(f"cannot write {args.save_arrays}", expected="a writable path", got=exc.strerror or str(exc),
                              fix="check the folder exists and is writable") from None
        print(f"Every traced array written to {args.save_arrays}")
    return 0
