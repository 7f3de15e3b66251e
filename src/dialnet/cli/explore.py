"""Watch the dials turn, live in the browser: train on your data and see every weight, gradient and certainty.

Starts a local server on 127.0.0.1 (a free port unless --port) and prints,
flushed, the URL with its token: http://127.0.0.1:PORT/?token=TOKEN. The
browser opens on it unless --no-open. Training runs in the background
through the same fit as `dialnet train`, with the same data, defaults and
options; it starts paused on freshly initialized dials unless --play.

The page: the data (preview, class counts, split sizes, a grid of test
samples coloured right/wrong), the network (summarized when wide; input
images; each hidden unit's incoming weights and their gradients), play /
pause / one step / one epoch, the learning rate, reset with a new seed,
the activations, deltas and certainties of a clicked sample or a drawn
digit, live loss and accuracy curves, a confusion matrix, per-layer
gradient norms with the doctor's flags, and buttons that save the model
(--out, the same file as `dialnet train`) and export ONNX (--onnx-out).

Ctrl-C (or SIGTERM) stops it (exit 0). Nothing is written unless the page
asks; the page, its API and the token are described in the README.

Examples:
  dialnet explore                       # the 625-20-20-10 demo on the bundled digits
  dialnet explore seeds.csv --play      # your table, training at once
  dialnet explore photos/ --image-size 32 --layers 64 --no-open
"""

from __future__ import annotations

HELP = "train in the browser and watch every dial turn (a local page with a token)"

# options that are Recipe fields of the same name (as for `dialnet train`)
NAMED = ("activation", "output", "loss", "optimizer", "lr_schedule", "scale", "dtype")
NUMBERS = ("lr", "batch_size", "epochs", "validation_split", "early_stopping", "l2", "dropout", "seed")


def add_arguments(p):
    p.add_argument("data", nargs="*", metavar="DATA",
                   help="mnist-10k (default), mnist, fashion-mnist, a CSV file, an image folder, or IDX files")
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; the token is still required)")
    g.add_argument("--port", type=int, default=0, help="port to listen on (default: 0 = a free one, printed)")
    g.add_argument("--no-open", action="store_true", help="do not open a browser; just print the URL")
    g.add_argument("--play", action="store_true", help="start training at once (default: paused on fresh dials)")
    g.add_argument("--out", default="model.safetensors",
                   help="where the page's 'save model' writes (default: model.safetensors; nothing is written unless asked)")
    g.add_argument("--onnx-out", default="model.onnx", help="where the page's 'export ONNX' writes (default: model.onnx)")
    g = p.add_argument_group("network (as for dialnet train)")
    g.add_argument("--layers", default=None, help="hidden layer widths, comma-separated (default: 64,64 with DATA, 20,20 without)")
    g.add_argument("--activation", default=None, help="hidden activation: relu (default with DATA), sigmoid (without), tanh, ...")
    g.add_argument("--output", default=None, help="output activation: softmax (classes), identity (regression) or sigmoid")
    g.add_argument("--loss", default=None, help="cross_entropy, mse or binary_cross_entropy (default: the output's own)")
    g.add_argument("--dropout", type=float, default=None, help="dropout rate after each hidden layer (default: 0)")
    g.add_argument("--dtype", default=None, help="float32 (default) or float64")
    g = p.add_argument_group("training (as for dialnet train)")
    g.add_argument("--optimizer", default=None, help="adam (default), adamw, rmsprop or sgd")
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.001 for adam, 0.1 for sgd, 0.003 in the demo)")
    g.add_argument("--batch-size", type=int, default=None, help="samples per gradient step (default: 32)")
    g.add_argument("--epochs", type=int, default=None, help="epoch cap (default: as dialnet train)")
    g.add_argument("--target-certainty", default=None,
                   help="stop at this mean certainty of the true class on held-out rows (default: 0.9 in the demo, none with DATA)")
    g.add_argument("--validation-split", type=float, default=None, help="fraction of training rows held out (default: 0.1)")
    g.add_argument("--early-stopping", type=int, default=None, help="patience in epochs (default: as dialnet train; 0 = off)")
    g.add_argument("--lr-schedule", default=None, help="plateau (default), cosine, step, exponential, none")
    g.add_argument("--l2", type=float, default=None, help="L2 penalty on the weights (default: 0.0001; 0.0003 in the demo)")
    g.add_argument("--seed", type=int, default=None, help="seed for the dials, the shuffling and the splits (default: 0)")
    g.add_argument("--classic", action="store_true", help="the classic from-scratch recipe (as dialnet train --classic)")
    g.add_argument("--class-weight", default=None, choices=("balanced", "none"),
                   help="balanced: each class counts as much as any other in the loss (default: none)")
    g = p.add_argument_group("data (as for dialnet train)")
    g.add_argument("--scale", default=None, help="input scaling: minmax, standard, none, auto (default)")
    g.add_argument("--task", default=None, choices=("auto", "classification", "regression"), help="what a CSV's label is")
    g.add_argument("--target", default=None, metavar="COL", help="the CSV's label column (default: the last)")
    g.add_argument("--image-size", type=int, default=25, help="resize images to N x N pixels (default: 25)")
    g.add_argument("--test-split", type=float, default=0.2, help="for data without a test split: fraction held out (default: 0.2)")
    g.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N training and N test samples")
    g.add_argument("--cache", default=None, metavar="DIR", help="download cache for mnist/fashion-mnist")


def build_recipe(args):
    """The Recipe for the options: the preset (--classic; the demo without DATA; else the DATA defaults), then each option."""
    from dataclasses import replace  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ..data import check_image_size  # noqa: PLC0415
    from ..errors import InvalidValueError  # noqa: PLC0415
    from ._shared import parse_certainty, parse_hidden  # noqa: PLC0415

    preset = workflow.CLASSIC if args.classic else (workflow.DATA_DEFAULTS if args.data else workflow.DEMO)
    named = {name: getattr(args, name) for name in NAMED if getattr(args, name) is not None}
    if args.layers is not None:
        named["hidden"] = parse_hidden(args.layers)
    recipe = replace(preset, **named)
    check_image_size(args.image_size)
    if args.target_certainty is not None:
        recipe = replace(recipe, target_certainty=parse_certainty(args.target_certainty))
    checks = [
        ("--epochs", args.epochs, args.epochs is None or args.epochs >= 1, "a whole number >= 1"),
        ("--batch-size", args.batch_size, args.batch_size is None or args.batch_size >= 1, "a whole number >= 1"),
        ("--validation-split", args.validation_split,
         args.validation_split is None or 0.0 <= args.validation_split < 1.0, "0 <= f < 1"),
        ("--test-split", args.test_split, 0.0 < args.test_split < 1.0, "0 < f < 1"),
        ("--early-stopping", args.early_stopping, args.early_stopping is None or args.early_stopping >= 0, "a whole number >= 0"),
        ("--l2", args.l2, args.l2 is None or args.l2 >= 0.0, "a number >= 0"),
        ("--dropout", args.dropout, args.dropout is None or 0.0 <= args.dropout < 1.0, "0 <= p < 1"),
        ("--lr", args.lr, args.lr is None or args.lr > 0.0, "a number > 0"),
        ("--limit", args.limit, args.limit is None or args.limit >= 2, "a whole number >= 2"),
        ("--port", args.port, 0 <= args.port <= 65535, "0 (a free port) or 1..65535"),
        ("--seed", args.seed, args.seed is None or args.seed >= 0, "a whole number >= 0"),
    ]
    for name, value, ok, expected in checks:
        if not ok:
            raise InvalidValueError(f"{name} is out of range", expected=expected, got=repr(value),
                                    fix=f"see `dialnet explore --help` for {name}")
    numbers = {name: getattr(args, name) for name in NUMBERS if getattr(args, name) is not None}
    return replace(recipe, **numbers)


def run(args):
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415
    from dataclasses import replace  # noqa: PLC0415

    from ..errors import ConfigError  # noqa: PLC0415
    from ..explore import Explorer, serve  # noqa: PLC0415

    recipe = build_recipe(args)

    def log(line):
        print(line, flush=True)

    explorer = Explorer(args.data or None, recipe, image_size=args.image_size, target=args.target, task=args.task or "auto",
                        cache=args.cache, test_split=args.test_split, limit=args.limit, out=args.out,
                        class_weight=None if args.class_weight in (None, "none") else args.class_weight,
                        onnx_out=args.onnx_out, log=log)
    if explorer.regression and recipe.target_certainty is not None:
        if args.target_certainty is not None:
            raise ConfigError("--target-certainty applies to classification only", expected="class labels",
                              got="a regression target", fix="drop --target-certainty")
        explorer.fit_kw["target_certainty"] = None
        explorer.recipe = replace(recipe, target_certainty=None)
    try:
        server = serve(explorer, host=args.host, port=args.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}", expected="a free port on a local address",
                          got=str(exc), fix="pass --port 0 (a free port) or another --host") from None
    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.play:
            explorer.control("play")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"Note: listening on {args.host}: anyone who can reach this machine and has the URL can train and "
                  "save from it", flush=True)
        print(server.url, flush=True)
        print(f"  the page is at the URL above{'' if args.no_open else ' (opening a browser)'}; Ctrl-C stops it", flush=True)
        if not args.no_open:
            import webbrowser  # noqa: PLC0415

            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
        explorer.close()
    state = explorer.state()
    saved = sorted(set(explorer.saved))
    where = f"; saved {', '.join(saved)}" if saved else "; nothing saved"
    print(f"Stopped at step {state['step']}, epoch {state['epoch']}{where}", flush=True)
    return 0
