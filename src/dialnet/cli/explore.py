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


def add_arguments(p):
    from ._shared import add_recipe_arguments  # noqa: PLC0415

    add_recipe_arguments(p)  # DATA and the network, training and data options of `dialnet train`
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; the token is still required)")
    g.add_argument("--port", type=int, default=0, help="port to listen on (default: 0 = a free one, printed)")
    g.add_argument("--no-open", action="store_true", help="do not open a browser; just print the URL")
    g.add_argument("--play", action="store_true", help="start training at once (default: paused on fresh dials)")
    g.add_argument("--out", default="model.safetensors",
                   help="where the page's 'save model' writes (default: model.safetensors; nothing is written unless asked)")
    g.add_argument("--onnx-out", default="model.onnx", help="where the page's 'export ONNX' writes (default: model.onnx)")


def build_recipe(args):
    """The Recipe for the options, as for `dialnet train` (``_shared.build_recipe``), and the port checked."""
    from ._shared import build_recipe as recipe_for  # noqa: PLC0415

    return recipe_for(args, [("--port", args.port, 0 <= args.port <= 65535, "0 (a free port) or 1..65535", "--port 0")])


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
