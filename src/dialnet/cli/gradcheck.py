"""Turn every dial by hand and compare with backpropagation.

The slow way to learn how the cost depends on a dial w: nudge it up and
down by h and run the network again, dL/dw ~ (L(w + h) - L(w - h)) / 2h:
two forward passes per dial. Backpropagation gets every dL/dw from one
forward and one backward pass by the chain rule. This command does both on
a batch of random inputs (in float64), shows that the two agree array by
array, and with --compare-time how many times faster backprop is.

Examples:
  dialnet gradcheck                        # the articles' 625-20-20-10 net: all 13,150 dials
  dialnet gradcheck --compare-time         # ... and backprop's speed-up
  dialnet gradcheck model.safetensors --max-dials 100
  dialnet gradcheck --layers 4,8,3 --activation tanh
"""

from __future__ import annotations

HELP = "check backprop against turning each dial by hand; --compare-time for the speed-up"

TOLERANCE = 1e-6  # float64 central differences with h = 1e-6 agree with exact gradients to ~1e-8


def add_arguments(p):
    p.add_argument("model", nargs="?", help="a .safetensors model file (default: a fresh --layers network)")
    p.add_argument("--layers", help="comma-separated sizes (default 625,20,20,10 when no model is given)")
    p.add_argument("--activation", default="sigmoid", help="hidden activation for --layers (default: sigmoid)")
    p.add_argument("--output", default="softmax", help="output activation for --layers (default: softmax)")
    p.add_argument("--samples", type=int, default=10, help="random input rows to differentiate on (default: 10)")
    p.add_argument("--max-dials", type=int, default=None,
                   help="turn at most this many dials per weight/bias array (default: all of them)")
    p.add_argument("--compare-time", action="store_true", help="time both ways and print backprop's speed-up")
    p.add_argument("--repeats", type=int, default=50, help="backprop runs to take the median time of (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random inputs, labels and network (default: 0)")


def random_batch(net, n, seed):
    """Inputs in [0, 1) (like pixel intensities) and targets that fit the network's task."""
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    X = rng.random((n, net.n_inputs))
    if net.task == "classification":
        y = rng.integers(0, net.n_outputs, size=n)
    elif net.task in ("binary", "multilabel"):
        y = rng.integers(0, 2, size=(n, net.n_outputs)).astype(np.float64)
    else:
        y = rng.standard_normal((n, net.n_outputs))
    return X, y


def time_backprop(net, X, y, loss, repeats):
    """Median seconds of one forward + backward pass, after a warm-up run."""
    import statistics  # noqa: PLC0415
    import time  # noqa: PLC0415

    Xc = net._check_X(X)
    Y = loss.prepare(y, Xc.shape[0], net.n_outputs, net.dtype)
    net._backprop(Xc, Y, loss, training=False)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        net._backprop(Xc, Y, loss, training=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _seconds(s):
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def run(args):
    import numpy as np  # noqa: PLC0415

    import dialnet as dn  # noqa: PLC0415

    from ..errors import ConfigError, InvalidValueError  # noqa: PLC0415
    from ._shared import parse_sizes  # noqa: PLC0415

    if args.model and args.layers:
        raise ConfigError("give a model file or --layers, not both", expected="one of them", got="both", fix="drop one")
    for name in ("samples", "repeats", "max_dials"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InvalidValueError(f"--{name.replace('_', '-')} must be at least 1", expected="a positive integer",
                                    got=str(value), fix=f"pass e.g. --{name.replace('_', '-')} 10")
    if args.model:
        net = dn.load(args.model)
        where = args.model
    else:
        net = dn.mlp(parse_sizes(args.layers or "625,20,20,10"), activation=args.activation, output=args.output,
                     seed=args.seed)
        where = f"a fresh network (seed {args.seed})"
    loss = net.default_loss()
    X, y = random_batch(net, args.samples, args.seed)
    result = dn.gradcheck(net, loss, X, y, max_dials=args.max_dials, seed=args.seed)

    sizes = "-".join(map(str, net.sizes))
    total = net.count_parameters()
    print(f"Network {sizes} from {where}: {total:,} dials; {args.samples} random input rows, {loss.name} loss, "
          "checked in float64")
    rows = [("array", "shape", "dials turned", "largest |dL/dw|", "relative error", "")]
    params = net.parameters()
    names = [f"layer {k} {kind}" for k in range(1, len(params) // 2 + 1) for kind in ("weights", "biases")]
    for name, p, a, err in zip(names, params, result.analytic, result.errors):
        turned = int((~np.isnan(result.numeric[names.index(name)])).sum())
        rows.append((name, "x".join(map(str, p.shape)), f"{turned:,}", f"{np.abs(a).max():.3g}", f"{err:.2e}",
                     "agree" if err < TOLERANCE else "DIFFER"))
    widths = [max(len(r[c]) for r in rows) for c in range(6)]
    for r in rows:
        print("  " + "  ".join(r[c].ljust(widths[c]) if c in (0, 5) else r[c].rjust(widths[c]) for c in range(6)))
    agree = float(result) < TOLERANCE
    print(f"{result.dials:,} dials turned by hand (two forward passes each) against backprop: largest relative error "
          f"{float(result):.2e}, {'they agree' if agree else 'they DIFFER'} (agreement means below {TOLERANCE:g})")

    if args.compare_time:
        net64 = net.astype("float64")
        backprop = time_backprop(net64, X, y, loss, args.repeats)
        by_hand = result.numeric_seconds
        passes = 2 * result.dials
        print(f"Time for {result.dials:,} gradients on {args.samples} rows:")
        print(f"  turning each dial by hand: {passes:,} forward passes   {_seconds(by_hand)}")
        print(f"  backprop: 1 forward + 1 backward pass          {_seconds(backprop)} (median of {args.repeats})")
        if result.dials < total:
            full = by_hand * total / result.dials
            print(f"  (all {total:,} dials by hand would take about {_seconds(full)})")
            by_hand = full
        print(f"Backprop is {by_hand / backprop:,.0f}x faster on this {sizes} network, and it gets all "
              f"{total:,} gradients at once.")
    return 0 if agree else 1
