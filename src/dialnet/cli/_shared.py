"""What the command modules share: exit codes, option parsing helpers, the console and number formatting.

Only the standard library is imported at the top (``dialnet --help`` stays
fast); the library's error classes and rich are imported where used.
"""

from __future__ import annotations

EXIT_ERROR = 2
EXIT_INTERNAL = 1  # a bug in dialnet, not the user's input
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM: the checkpoint was written first


# options that are Recipe fields of the same name (`dialnet train` and `dialnet explore`): the ones that name
# something are checked (by the Recipe) before the numbers
RECIPE_NAMED = ("activation", "output", "loss", "optimizer", "lr_schedule", "scale", "dtype")
RECIPE_NUMBERS = ("lr", "batch_size", "epochs", "validation_split", "early_stopping", "l2", "dropout", "seed")


def add_recipe_arguments(p):
    """DATA and the network, training and data options that `dialnet train` and `dialnet explore` share.

    Every option defaults to None (the preset's value: see ``build_recipe``),
    except the data options. Returns the (network, training, data) argument
    groups, for the command to add its own options to.
    """
    p.add_argument("data", nargs="*", metavar="DATA",
                   help="mnist-10k (default), mnist, fashion-mnist, a CSV file, an image folder, or IDX files")
    net = p.add_argument_group("network")
    net.add_argument("--layers", default=None,
                     help="hidden layer widths, comma-separated (default: 100 with DATA, 20,20 without; 'none' for no hidden layer)")
    net.add_argument("--activation", default=None,
                     help="hidden activation: relu (default with DATA), sigmoid (default without), tanh, leaky_relu, identity")
    net.add_argument("--output", default=None,
                     help="output activation: softmax (default for classes), identity (regression) or sigmoid (the classic recipe)")
    net.add_argument("--loss", default=None,
                     help="cross_entropy (default for softmax), mse (default for sigmoid and regression), binary_cross_entropy")
    net.add_argument("--dropout", type=float, default=None, help="dropout rate after each hidden layer (default: 0)")
    net.add_argument("--dtype", default=None, help="float32 (default, fast) or float64")
    train = p.add_argument_group("training")
    train.add_argument("--optimizer", default=None,
                       help="auto (default with DATA: lbfgs on up to 3,000 training rows, adam above), adam, adamw, rmsprop, "
                       "sgd, or lbfgs (full batch, scipy's L-BFGS-B)")
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: 0.001 for adam and rmsprop, 0.1 for sgd; 0.003 in the no-DATA demo)")
    train.add_argument("--batch-size", type=int, default=None, help="samples per gradient step (default: 32; 1 = online SGD)")
    train.add_argument("--epochs", type=int, default=None,
                       help="epoch cap (default: 200 L-BFGS iterations; with a mini-batch optimizer 100 epochs, or more on "
                       "small data so that at least 20,000 steps are allowed)")
    train.add_argument("--target-certainty", default=None,
                       help="stop when the mean certainty of the true class on held-out data reaches this "
                       "(default: none with DATA, 0.9 in the no-DATA demo; classification only)")
    train.add_argument("--validation-split", type=float, default=None,
                       help="fraction of the training rows held out to watch (default: 0 with L-BFGS, 0.1 otherwise)")
    train.add_argument("--early-stopping", type=int, default=None,
                       help="stop after this many epochs without a better validation loss, keeping the best weights "
                       "(default: 10, or more on small data: at least 2,000 steps; 0 = off)")
    train.add_argument("--lr-schedule", default=None, help="plateau (default: halve lr when stuck), cosine, step, exponential, none")
    train.add_argument("--l2", type=float, default=None,
                       help="L2 penalty on the weights (default: 0.01 with L-BFGS, 0.03 for its regressions, 0.0001 otherwise; "
                       "0.0003 in the no-DATA demo; 0 = off)")
    train.add_argument("--class-weight", default=None, choices=("balanced", "none"),
                       help="balanced: weight each class by n_rows / (n_classes * its rows) in the loss and the metrics, "
                       "so rare classes count as much as common ones (default: none)")
    train.add_argument("--seed", type=int, default=None, help="seed for the dials, the shuffling and the splits (default: 0)")
    train.add_argument("--classic", action="store_true",
                       help="the classic from-scratch recipe: --layers 5 --output sigmoid --loss mse --optimizer sgd --lr 0.3 "
                       "--batch-size 1 --epochs 500 --scale minmax, no target certainty, validation split, early stopping, "
                       "schedule or L2 (options given explicitly still win)")
    data = p.add_argument_group("data")
    data.add_argument("--scale", default=None,
                      help="input scaling stored with the model: minmax, standard, none; auto (default) = standard for tables "
                      "(minmax with --classic), none for images (pixels are already 0..1)")
    data.add_argument("--task", default=None, choices=("auto", "classification", "regression"),
                      help="what a CSV's label column is: auto (default: text or few whole numbers -> classification, "
                      "fractional or many distinct numbers -> regression), classification or regression")
    data.add_argument("--target", default=None, metavar="COL",
                      help="the CSV's label column, by header name or 0-based index (default: the last)")
    data.add_argument("--image-size", type=int, default=25, help="resize images to N x N pixels (default: 25 -> 625 inputs)")
    data.add_argument("--test-split", type=float, default=0.2,
                      help="for data without a test split: fraction held out for the test accuracy (default: 0.2)")
    data.add_argument("--limit", type=int, default=None, metavar="N",
                      help="a seeded random N rows of a CSV (streamed), or at most N training and N test samples of other data")
    data.add_argument("--cache", default=None, metavar="DIR",
                      help="download cache for mnist/fashion-mnist (default: $DIALNET_CACHE or ~/.cache/dialnet)")
    return net, train, data


def build_recipe(args, checks=()):
    """The Recipe for the options: the preset (--classic; the demo without DATA; else the DATA defaults), then
    every option given. Names are checked first, then the numbers, each error naming its option.

    ``checks``: the command's own ``(option, value, ok, expected, example)`` rows, checked with the shared ones.
    """
    from dataclasses import replace  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ..data import check_image_size  # noqa: PLC0415
    from ..errors import InvalidValueError  # noqa: PLC0415

    preset = workflow.CLASSIC if args.classic else (workflow.DATA_DEFAULTS if args.data else workflow.DEMO)
    named = {name: getattr(args, name) for name in RECIPE_NAMED if getattr(args, name) is not None}
    if args.layers is not None:
        named["hidden"] = parse_hidden(args.layers)
    recipe = replace(preset, **named)
    check_image_size(args.image_size)
    if args.target_certainty is not None:
        recipe = replace(recipe, target_certainty=parse_certainty(args.target_certainty))

    def given(value, ok):
        return value is None or ok(value)

    rows = [
        ("--epochs", args.epochs, given(args.epochs, lambda v: v >= 1), "a whole number >= 1", "--epochs 100"),
        ("--batch-size", args.batch_size, given(args.batch_size, lambda v: v >= 1), "a whole number >= 1", "--batch-size 32"),
        ("--validation-split", args.validation_split, given(args.validation_split, lambda v: 0.0 <= v < 1.0),
         "0 <= f < 1", "--validation-split 0.1"),
        ("--test-split", args.test_split, 0.0 < args.test_split < 1.0, "0 < f < 1", "--test-split 0.2"),
        ("--early-stopping", args.early_stopping, given(args.early_stopping, lambda v: v >= 0), "a whole number >= 0",
         "--early-stopping 10"),
        ("--l2", args.l2, given(args.l2, lambda v: v >= 0.0), "a number >= 0", "--l2 0.0003"),
        ("--dropout", args.dropout, given(args.dropout, lambda v: 0.0 <= v < 1.0), "0 <= p < 1", "--dropout 0.2"),
        ("--lr", args.lr, given(args.lr, lambda v: v > 0.0), "a number > 0", "--lr 0.003"),
        ("--limit", args.limit, given(args.limit, lambda v: v >= 2), "a whole number >= 2", "--limit 1000"),
        ("--seed", args.seed, given(args.seed, lambda v: v >= 0), "a whole number >= 0", "--seed 0"),
        *checks,
    ]
    for name, value, ok, expected, example in rows:
        if not ok:
            raise InvalidValueError(f"{name} is out of range", expected=expected, got=repr(value), fix=f"e.g. {example}")
    numbers = {name: getattr(args, name) for name in RECIPE_NUMBERS if getattr(args, name) is not None}
    return replace(recipe, **numbers)


def add_data_arguments(p):
    """Options that say how to read DATA for a saved model (doctor, plot and inspect)."""
    p.add_argument("--target", help="CSV label column, by name or index (default: the last column)")
    p.add_argument("--image-size", type=int, default=None,
                   help="side of the square images (default: what the model was trained on)")


def parse_sizes(text, what="--layers"):
    """'625,20,20,10' -> [625, 20, 20, 10], with a clear error (an empty piece such as '5,,5' is one)."""
    from ..errors import ConfigError  # noqa: PLC0415

    pieces = str(text).replace(" ", "").split(",")
    try:
        sizes = [int(s) for s in pieces]
    except ValueError:
        sizes = []
    if not sizes or any(s <= 0 for s in sizes):
        raise ConfigError(f"{what} must be comma-separated positive integers", expected="e.g. 625,20,20,10", got=repr(text),
                          fix=f"pass {what} 625,20,20,10")
    return sizes


def parse_hidden(text):
    """'20,20' -> [20, 20]; 'none' -> [] (no hidden layer). '0', '' and ' ' are errors: say 'none' to mean none."""
    from ..errors import ConfigError  # noqa: PLC0415

    if str(text).strip().lower() == "none":
        return []
    try:
        return parse_sizes(text, "--layers")
    except ConfigError as exc:
        raise ConfigError("--layers must be comma-separated positive widths, or 'none' for no hidden layer",
                          expected="e.g. 64,64 or none", got=exc.got, fix="pass --layers 64,64 (or --layers none)") from None


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


def check_limit(limit, low=1):
    """``--limit`` must be a whole number >= ``low`` when given."""
    from ..errors import InvalidValueError  # noqa: PLC0415

    if limit is not None and limit < low:
        raise InvalidValueError("--limit is out of range", expected=f"a whole number >= {low}", got=repr(limit),
                                fix="e.g. --limit 1000")


def format_certainties(probs, class_names, top=3):
    """'0.95 eight, 0.02 three, 0.01 five': the ``top`` largest certainties, largest first (top=0: all)."""
    import numpy as np  # noqa: PLC0415

    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, kind="stable")
    if top:
        order = order[:top]
    names = class_names or [str(i) for i in range(len(probs))]
    return ", ".join(f"{probs[i]:.2f} {names[i]}" for i in order)


def console():
    """A rich console for tables; wide enough for a 10-class confusion matrix."""
    from rich.console import Console  # noqa: PLC0415

    c = Console(highlight=False)
    if not c.is_terminal:
        c = Console(highlight=False, width=120)
    return c


# ------------------------------------------------------------------ outputs never destroy inputs


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` are one file: by ``os.path.samefile`` when both exist (hard links, symlinks,
    ``./x`` and ``x``), else by their resolved names (an output not yet created)."""
    import os  # noqa: PLC0415

    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def check_outputs(outputs, inputs, examples=None):
    """Refuse, before any work starts, an output path that is one of the inputs, or two outputs that are one file.

    ``outputs`` and ``inputs`` map an option's name (``"--out"``, ``"DATA"``)
    to a path or a list of paths (None is skipped). One rule for every
    command that writes: ``train --out x.csv`` on ``x.csv``, ``export m
    --onnx m``, ``plot --out`` or ``predict --out`` onto an input.
    ``examples`` maps an option to the path its hint suggests (default: the
    path with ``.out`` before its extension).
    """
    examples = examples or {}
    from ..errors import ConfigError  # noqa: PLC0415

    def paths(mapping):
        for name, value in mapping.items():
            for path in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(path, str) and path:
                    yield name, path

    outs, ins = list(paths(outputs)), list(paths(inputs))
    for k, (name, path) in enumerate(outs):
        for other, source in ins:
            if _same_file(path, source):
                raise ConfigError(f"{name} {path} is the input {other} {source}: writing it would destroy the input",
                                  expected=f"a new file for {name}", got=f"{name} {path}",
                                  fix=f"pass another path to {name}, e.g. {examples.get(name) or _suggest(path)}")
        for other, second in outs[k + 1:]:
            if _same_file(path, second):
                raise ConfigError(f"{name} and {other} are the same file ({path}): one would overwrite the other",
                                  expected="a different path for each output", got=f"{name} {path}, {other} {second}",
                                  fix=f"pass another path to {other}, e.g. {examples.get(other) or _suggest(second)}")


def _suggest(path):
    import os  # noqa: PLC0415

    stem, ext = os.path.splitext(path)
    return f"{stem}.out{ext}"


class OutputLock:
    """While held, no other dialnet run writes the same outputs: ``PATH.lock`` files made with O_EXCL, holding the pid.

    A second run sharing ``--out`` or ``--checkpoint`` is refused at once
    (instead of both exiting 0 and the last writer winning); a lock left by
    a run that is gone (SIGKILL, a crash: its pid is dead) is taken over.
    """

    def __init__(self, paths):
        self.paths = [p for p in dict.fromkeys(paths) if p]
        self.held = []

    def __enter__(self):
        try:
            for path in self.paths:
                self._take(path + ".lock", path)
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        import os  # noqa: PLC0415

        for lock in self.held:
            try:
                os.unlink(lock)
            except OSError:
                pass
        self.held = []

    def _take(self, lock, path):
        import os  # noqa: PLC0415

        from ..errors import ConfigError  # noqa: PLC0415

        for _attempt in range(3):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = _lock_owner(lock)
                if pid is None and _fresh(lock):  # just made by a run that has not written its pid yet
                    pid = "unknown"
                if pid is not None and pid != os.getpid() and (pid == "unknown" or _alive(pid)):
                    raise ConfigError(f"another dialnet run (pid {pid}) is writing {path}",
                                      expected="one run per --out / --checkpoint file", got=f"the lock file {lock}",
                                      fix=f"wait for it to finish, or pass another path (if no run is left, delete {lock})") from None
                try:  # its run is gone: take the lock over
                    os.unlink(lock)
                except FileNotFoundError:
                    pass
                continue
            except OSError:
                return  # a folder that takes no lock files (read-only): writing there fails later, with its own message
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()}\n")
            self.held.append(lock)
            return


def _lock_owner(lock):
    try:
        with open(lock, encoding="ascii") as fh:
            return int(fh.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def _fresh(lock, seconds=5.0):
    import os  # noqa: PLC0415
    import time  # noqa: PLC0415

    try:
        return time.time() - os.stat(lock).st_mtime < seconds
    except OSError:
        return False


def _alive(pid):
    import os  # noqa: PLC0415

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    return True
