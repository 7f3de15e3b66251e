"""Draw a model's training and what it learned, as PNG files (needs matplotlib: the `plot` extra).

Figures, each written to --out (default: plots/):
  history.png     loss and accuracy per epoch, training and validation
                  (from the history `dialnet train` stores in the model file)
  confusion.png   which classes are mistaken for which, on DATA's test split
  weights.png     each first-layer unit's input weights drawn as an image
  certainty.png   the certainty per class for one input (--index of DATA, or --input)
  gradients.png   ||dL/dW|| per layer over training: from the stored history
                  if it was recorded, else from a short run of a fresh copy on DATA

Examples:
  dialnet plot model.safetensors mnist-10k
  dialnet plot model.safetensors mnist-10k --only confusion,certainty --index 8
  dialnet plot model.safetensors --only weights,history --out figures
"""

from __future__ import annotations

HELP = "write PNG figures: history, confusion matrix, first-layer weights, certainty, gradient norms"

KINDS = ("history", "confusion", "weights", "certainty", "gradients")


def add_arguments(p):
    from ._shared import add_data_arguments  # noqa: PLC0415

    p.add_argument("model", help="a .safetensors model file")
    p.add_argument("data", nargs="*", metavar="DATA", help="data for the confusion matrix, certainty and gradients")
    p.add_argument("--out", default="plots", help="folder to write the PNGs into (default: plots)")
    p.add_argument("--only", default=None, help="comma-separated figures to draw: " + ",".join(KINDS) + " (default: all that apply)")
    p.add_argument("--index", type=int, default=0, help="row of DATA's test split for certainty.png (default: 0)")
    p.add_argument("--input", default=None, help="an image, .npy or CSV row for certainty.png instead of a DATA row")
    p.add_argument("--gradient-epochs", type=int, default=5,
                   help="epochs of the fresh run that records gradient norms when the model file has none (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed for that run (default: 0)")
    add_data_arguments(p)


def _kinds(only):
    from ..errors import ConfigError  # noqa: PLC0415

    if only is None:
        return list(KINDS), False
    chosen = [k.strip() for k in only.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in KINDS]
    if unknown or not chosen:
        raise ConfigError("unknown figure in --only", expected="some of " + ", ".join(KINDS), got=repr(only),
                          fix="e.g. --only history,confusion")
    return chosen, True


def run(args):
    import os  # noqa: PLC0415

    import dialnet as dn  # noqa: PLC0415

    from ..diagnose.doctor import stored_history  # noqa: PLC0415
    from ..errors import ConfigError, InvalidValueError  # noqa: PLC0415

    kinds, explicit = _kinds(args.only)
    if args.gradient_epochs < 1:
        raise InvalidValueError("--gradient-epochs must be at least 1", expected="e.g. 5", got=str(args.gradient_epochs),
                                fix="pass --gradient-epochs 5")
    from ._shared import check_outputs  # noqa: PLC0415

    check_outputs({"--out": [os.path.join(args.out, f"{kind}.png") for kind in kinds]},
                  {"MODEL": args.model, "DATA": list(args.data), "--input": args.input})
    net = dn.load(args.model)
    names = getattr(net, "class_names", None)
    history = stored_history(net)
    created = not os.path.isdir(args.out)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder {args.out}", expected="a writable place", got=exc.strerror or str(exc),
                          fix="pass another --out folder") from None
    try:
        return _draw(args, net, names, history, kinds, explicit)
    except BaseException:
        if created:  # leave no empty folder behind
            try:
                os.rmdir(args.out)
            except OSError:
                pass
        raise


def _draw(args, net, names, history, kinds, explicit):
    import os  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ..data.preprocessing import image_side  # noqa: PLC0415
    from ..diagnose import plots  # noqa: PLC0415
    from ..errors import ConfigError, DataError  # noqa: PLC0415

    data = {}

    def split(name):
        if name not in data:
            data[name] = workflow.model_data(net, args.data, name, target=args.target, image_size=args.image_size)
        return data[name]

    written, skipped = [], []

    def cannot(kind, why, fix):
        if explicit:
            raise DataError(f"cannot draw {kind}.png: {why}", expected=None, got=None, fix=fix)
        skipped.append(f"{kind}.png: {why} ({fix})")

    for kind in kinds:
        path = os.path.join(args.out, f"{kind}.png")
        existed = os.path.lexists(path)
        try:
            drawn = _draw_one(args, net, names, history, kind, path, split, cannot, plots, workflow, image_side)
        except OSError as exc:  # a full disk, a read-only folder, a folder where the file should be
            if not existed and os.path.isfile(path):
                try:
                    os.unlink(path)  # no half-written figure left behind
                except OSError:
                    pass
            raise ConfigError(f"cannot write {path}", expected="a writable folder with free space",
                              got=exc.strerror or str(exc), fix="free some disk space or pass another --out folder") from None
        if drawn:
            written.append(path)
    for path in written:
        print(f"wrote {path}")
    for line in skipped:
        print(f"skipped {line}")
    return 0


def _draw_one(args, net, names, history, kind, path, split, cannot, plots, workflow, image_side):
    """Draw one figure into ``path``; False when it does not apply (``cannot`` said why)."""
    import os  # noqa: PLC0415

    if True:  # noqa: SIM108  (one branch per figure)
        if kind == "history":
            if not history or not history.get("loss"):
                cannot(kind, "the model file holds no training history", "train and save it with `dialnet train`")
                return False
            plots.plot_history(history, path, title=f"Training history of {os.path.basename(args.model)}")
        elif kind == "weights":
            side = image_side(net.n_inputs, workflow.preprocessor_of(net))
            if side is None:
                cannot(kind, "the inputs are not an image", "it applies to image models such as the 625-input digits net")
                return False
            plots.plot_first_layer(net, path, image_shape=(side, side))
        elif kind == "confusion":
            if net.task != "classification":
                cannot(kind, f"the model's task is {net.task}, not classification", "use a classifier")
                return False
            if not args.data:
                cannot(kind, "no DATA given", "pass DATA, e.g. mnist-10k")
                return False
            test = split(None)
            plots.plot_confusion_matrix(test.y, net.predict(test.X), class_names=names or test.class_names, path=path,
                                        title=f"Confusion matrix on {test.description}")
        elif kind == "certainty":
            if args.input:
                X, y, _what = workflow.model_rows(net, [args.input], None, target=args.target, image_size=args.image_size)
            elif args.data:
                X, y, _what = workflow.model_rows(net, args.data, args.index, target=args.target, image_size=args.image_size)
            else:
                cannot(kind, "no input given", "pass DATA (and --index) or --input FILE")
                return False
            plots.plot_certainty(net, X[0], path, label=None if y is None else int(y[0]), class_names=names)
        elif kind == "gradients":
            if history and "grad_norm_1" in history:
                plots.plot_gradient_norms(history, path, title="Gradient norm per layer over training (recorded in fit)")
            elif args.data:
                train = split("train")
                recorder, n = workflow.record_gradient_norms(net, train.X, train.y, args.gradient_epochs, args.seed)
                plots.plot_gradient_norms(recorder, path, title=f"Gradient norm per layer: a fresh {'-'.join(map(str, net.sizes))} "
                                          f"trained {args.gradient_epochs} epochs on {n} rows")
            else:
                cannot(kind, "the model file has no recorded gradient norms and no DATA was given",
                       "pass DATA to record them on a short fresh run")
                return False
        return True
