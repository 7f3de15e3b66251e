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
    from ._shared import add_data_arguments  # noqa: PLC0415

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


def run(args):
    import numpy as np  # noqa: PLC0415

    import dialnet as dn  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ..diagnose.trace import trace  # noqa: PLC0415
    from ..errors import ConfigError, InvalidValueError  # noqa: PLC0415

    if args.top < 0:
        raise InvalidValueError("--top must be 0 or more", expected="a count such as 5", got=str(args.top), fix="pass --top 5")
    if args.save_arrays:
        from ._shared import check_outputs  # noqa: PLC0415

        saved = args.save_arrays if args.save_arrays.endswith(".npz") else args.save_arrays + ".npz"  # what np.savez writes
        check_outputs({"--save-arrays": saved}, {"MODEL": args.model, "INPUT": args.input})
    net = dn.load(args.model)
    if args.wrong:
        X, y, what = workflow.first_mistake(net, args.input, args.index or 0, target=args.target, image_size=args.image_size)
    else:
        X, y, what = workflow.model_rows(net, args.input, args.index, target=args.target, image_size=args.image_size)
    if args.label is not None:
        y = np.full(len(X), workflow.class_index(net, args.label), dtype=np.int64)
    t = trace(net, X, y)
    print(f"Input: {what}")
    print(t.report(top=args.top))
    if args.save_arrays:
        try:
            np.savez(args.save_arrays, **t.arrays())
        except OSError as exc:
            raise ConfigError(f"cannot write {args.save_arrays}", expected="a writable path", got=exc.strerror or str(exc),
                              fix="check the folder exists and is writable") from None
        print(f"Every traced array written to {args.save_arrays}")
    return 0
