"""Train a network on a data set, save it, and show how sure it is.

With no DATA (the articles' demo): the bundled mnist-10k digits (8,000
train / 2,000 test), resized to 25x25, train the 625-20-20-10 sigmoid
network with a softmax output (Adam lr 0.003, L2 0.0003) until the mean
certainty of the true class on held-out data reaches --target-certainty
(0.9), or early stopping or the epoch cap ends it. The model goes to
model.safetensors with its class names and input scaling; the test
accuracy and a few test digits' certainties are printed.

With DATA, general-purpose defaults: one hidden layer of 100 ReLU units
(He init), no target certainty; the optimizer by the size of the data: up
to 3,000 training rows, L-BFGS on every row (L2 0.01, 0.03 for a
regression, at most 200 iterations), above that Adam lr 0.001, batch 32,
10% of the training rows held out for early stopping on the validation
loss (the best weights are kept), a plateau schedule, L2 0.0001. Tables
are standard-scaled, images scaled to 0..1.

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

Safety: before any work, --out and --checkpoint are compared with DATA
and --resume (the same file, by os.path.samefile, is refused), and the
memory the network, its optimizer and a batch need with what is
available (`dialnet summary --layers` shows the count). A lock file
(OUT.lock, holding the pid) refuses a second run on the same --out or
--checkpoint; a lock left by a dead run is taken over. SIGTERM (a
scheduler, `docker stop`) is handled like Ctrl-C: with --checkpoint the
step finishes and the checkpoint is written (exit 143; Ctrl-C 130). When
training diverges, the last good weights are written to
OUT.diverged.safetensors (never over --out) and the path is printed.
--limit N streams a CSV and keeps a seeded random N rows.

Examples:
  dialnet train
  dialnet train mnist-10k --image-size 28 --layers 256,128 --activation relu --epochs 60
  dialnet train seeds.csv --classic --cv 5     # 7-5-3 sigmoid net, squared error, online SGD
  dialnet train houses.csv --target price       # regression: RMSE, MAE, R^2
"""

from __future__ import annotations

HELP = "train a network on mnist-10k (default), mnist, fashion-mnist, a CSV, an image folder or IDX files"

def add_arguments(p):
    from ._shared import add_recipe_arguments  # noqa: PLC0415

    _network, training, _data = add_recipe_arguments(p)
    training.add_argument("--cv", type=int, default=None, metavar="K",
                          help="K-fold cross-validation (seeded; stratified for classes): print each fold's accuracy "
                          "(R^2 and RMSE for regression) and the mean; saves no model")
    training.add_argument("--checkpoint", default=None, metavar="PATH",
                          help="write a checkpoint here (atomically) each epoch or every --checkpoint-every steps, and on "
                          "Ctrl-C or SIGTERM (the auto optimizer is then adam: L-BFGS has no steps to resume at)")
    training.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                          help="checkpoint every N optimizer steps (mini-batches) instead of each epoch")
    training.add_argument("--resume", default=None, metavar="PATH",
                          help="continue an interrupted run from this checkpoint (same DATA and options): same bits as a run never stopped")
    training.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                          help="where to train: cpu (NumPy, the default) or cuda (an NVIDIA GPU through CuPy; "
                          "pip install 'dialnet[gpu]'); the model file is the same either way")
    training.add_argument("--no-progress", action="store_true", help="no progress bar")
    training.add_argument("--distributed", action="store_true",
                          help="data-parallel on MPI: start with `mpirun -n N dialnet train DATA --distributed` (extra "
                          "dialnet[distributed]); every rank reads DATA, --batch-size is the global batch, rank 0 prints and "
                          "writes; with --cv the folds are spread over the ranks")
    p.add_argument("--out", default="model.safetensors", help="where to save the model (default: model.safetensors)")


# The presets (dialnet.workflow.DATA_DEFAULTS, DEMO, CLASSIC) as option text, e.g. DEMO["layers"] == "20,20":
# read lazily, so `dialnet --help` does not import the library.
PRESETS = {"DEFAULTS": "DATA_DEFAULTS", "DEMO": "DEMO", "CLASSIC": "CLASSIC"}
EXAMPLES_SHOWN = 5


def __getattr__(name):
    if name not in PRESETS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .. import workflow  # noqa: PLC0415

    recipe = getattr(workflow, PRESETS[name])
    return {
        "layers": ",".join(map(str, recipe.hidden)) or "none", "activation": recipe.activation,
        "output": recipe.output or recipe.class_output, "loss": recipe.loss, "optimizer": recipe.optimizer,
        "lr": recipe.lr, "batch_size": recipe.batch_size, "epochs": recipe.epochs,
        "target_certainty": "none" if recipe.target_certainty is None else f"{recipe.target_certainty:g}",
        "validation_split": recipe.validation_split, "early_stopping": recipe.early_stopping,
        "lr_schedule": recipe.lr_schedule or "none", "l2": recipe.l2, "scale": recipe.scale,
    }


def build_recipe(args):
    """The Recipe for the options (``_shared.build_recipe``), with the checks of train's own options."""
    from ..errors import ConfigError  # noqa: PLC0415
    from . import _shared  # noqa: PLC0415

    recipe = _shared.build_recipe(args, [
        ("--cv", args.cv, args.cv is None or args.cv >= 2, "a whole number >= 2", "--cv 5"),
        ("--checkpoint-every", args.checkpoint_every, args.checkpoint_every is None or args.checkpoint_every >= 1,
         "a whole number >= 1", "--checkpoint-every 500"),
    ])
    if args.checkpoint_every is not None and args.checkpoint is None:
        raise ConfigError("--checkpoint-every needs --checkpoint", expected="--checkpoint PATH with it", got="no --checkpoint",
                          fix="add --checkpoint run.ckpt.safetensors")
    if args.cv and (args.checkpoint or args.resume):
        raise ConfigError("--checkpoint and --resume do not apply to --cv", expected="one training run",
                          got=f"--cv {args.cv}", fix="drop --cv to train (and checkpoint) one model")
    return recipe


def _check_task(args, recipe, ds):
    """Regression takes no certainty target: an error if one was asked for, else the preset's is dropped."""
    from dataclasses import replace  # noqa: PLC0415

    from ..errors import ConfigError  # noqa: PLC0415

    if ds.task != "regression" or recipe.target_certainty is None:
        return recipe
    if args.target_certainty is not None:
        raise ConfigError("--target-certainty applies to classification only", expected="class labels",
                          got=f"a regression target ({ds.target!r})",
                          fix="drop --target-certainty (early stopping ends regression training), or pass --task classification")
    print("Note: no target certainty for a regression target; early stopping governs")
    return replace(recipe, target_certainty=None)


def check_paths(args):
    """Before any work: no output is an input (DATA, --resume), --out and --checkpoint differ."""
    from ._shared import check_outputs  # noqa: PLC0415

    out = None if args.cv else args.out
    examples = {"--out": "model.safetensors", "--checkpoint": "run.ckpt.safetensors"}
    check_outputs({"--out": out}, {"DATA": list(args.data), "--resume": args.resume}, examples)
    check_outputs({"--checkpoint": args.checkpoint}, {"DATA": list(args.data)}, examples)  # = --resume: how to resume
    check_outputs({"--out": out, "--checkpoint": args.checkpoint}, {}, examples)


HUGE_WEIGHTS = 1e6  # a weight norm no trained MLP of sane inputs reaches: the run blew up before it overflowed


def weight_norm(net):
    import numpy as np  # noqa: PLC0415

    with np.errstate(over="ignore"):
        return float(np.sqrt(sum(float(np.square(np.asarray(p, dtype=np.float64)).sum()) for p in net.parameters())))


def diverged_path(out):
    """Where the last good weights of a diverged run go: ``model.diverged.safetensors`` (never an existing file)."""
    import os  # noqa: PLC0415

    stem, ext = os.path.splitext(out)
    ext = ext or ".safetensors"
    path, k = f"{stem}.diverged{ext}", 2
    while os.path.lexists(path):
        path, k = f"{stem}.diverged-{k}{ext}", k + 1
    return path


def run(args):
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ..errors import DivergenceError, TrainingInterrupted  # noqa: PLC0415
    from ._shared import EXIT_INTERRUPTED, EXIT_TERMINATED, OutputLock  # noqa: PLC0415

    started = time.perf_counter()
    rank0 = _rank0() if args.distributed else True
    recipe = build_recipe(args)
    check_paths(args)
    if args.device != "cpu":
        from ..backend import use_device  # noqa: PLC0415

        use_device(args.device)  # before the data and the network are made: their arrays live there
    ds = workflow.load_dataset(args.data or None, image_size=args.image_size, target=args.target, task=args.task or "auto",
                               cache=args.cache, limit=args.limit, seed=recipe.seed)
    recipe = _check_task(args, recipe, ds)

    def log(line):
        print(line, flush=True)

    if args.cv:
        workflow.cross_validate(ds, recipe, args.cv, limit=args.limit, log=log, distributed=args.distributed or None,
                                class_weight=_class_weight(args, ds))
        print(f"Total time {time.perf_counter() - started:.1f} s (cross-validation only: no model saved; "
              "run without --cv to train and save one)")
        return 0
    # a second run writing the same files is refused, not raced (in a distributed run rank 0 alone writes)
    with OutputLock([args.out, args.checkpoint] if rank0 else []):
        try:
            result = workflow.train_model(ds, recipe, test_split=args.test_split, limit=args.limit,
                                          progress=not args.no_progress, checkpoint=args.checkpoint,
                                          checkpoint_every=args.checkpoint_every, resume=args.resume, log=log,
                                          distributed=args.distributed or None, class_weight=_class_weight(args, ds))
        except TrainingInterrupted as exc:  # Ctrl-C or SIGTERM: the step finished and the checkpoint is on disk
            how = "terminated (SIGTERM)" if exc.signal_name == "SIGTERM" else "interrupted"
            if rank0:  # in a distributed run every rank stops here; rank 0 says so
                print(f"dialnet: {how} at epoch {exc.epoch}, step {exc.step}; checkpoint saved to {exc.checkpoint}",
                      file=sys.stderr)
                print(f"  hint: run the same command with --resume {exc.checkpoint} to continue", file=sys.stderr)
            return EXIT_TERMINATED if exc.signal_name == "SIGTERM" else EXIT_INTERRUPTED
        except DivergenceError as exc:
            net = getattr(exc, "network", None)
            if net is not None and rank0:  # never over --out: that may hold a good model from an earlier run
                path = diverged_path(args.out)
                net.save(path, extra_metadata={"data": ds.name, "seed": recipe.seed, "diverged": exc.what})
                print(f"Saved the last good weights (from before the step that diverged) to {path}")
                norm = weight_norm(net)
                if norm > HUGE_WEIGHTS:  # finite, but already blown up: say so rather than let them pass for a model
                    print(f"Note: those weights are finite but huge (norm {norm:.3g}); train again with a smaller --lr "
                          "rather than use them" + (f" (the same holds for the checkpoint {args.checkpoint})"
                                                    if args.checkpoint else ""))
            raise
        if rank0:
            result.net.save(args.out, extra_metadata=result.metadata)
    print(f"Saved {args.out}")
    prepared = result.data
    _show_examples(result.net, prepared.X_test[:EXAMPLES_SHOWN], prepared.y_test[:EXAMPLES_SHOWN], ds.kind)
    print(f"Total time {time.perf_counter() - started:.1f} s")
    return 0


def _class_weight(args, ds):
    """``--class-weight balanced`` for a classification, None otherwise (an error for a regression target)."""
    from ..errors import ConfigError  # noqa: PLC0415

    if args.class_weight in (None, "none"):
        return None
    if ds.task == "regression":
        raise ConfigError("--class-weight applies to classification only", expected="class labels",
                          got=f"a regression target ({ds.target!r})", fix="drop --class-weight, or pass --task classification")
    return args.class_weight


def _rank0():
    """``--distributed``: True on rank 0 (or in a world of one process); the other ranks print nothing."""
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from ..distributed import world  # noqa: PLC0415

    ranks = world(True)
    if ranks is None or ranks.is_root:
        return True
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  (for the rest of this process)
    return False


def _show_examples(net, X, y, kind):
    from rich.table import Table  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ._shared import console, format_certainties  # noqa: PLC0415

    what = "digit" if kind == "image" else "row"
    if net.task == "regression":
        table = Table(title=f"Predictions, first {len(X)} test rows")
        for col in (f"test {what}", "true value", "predicted"):
            table.add_column(col, justify="right")
        for i, (p, t) in enumerate(zip(workflow.predict_targets(net, X), y)):
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
