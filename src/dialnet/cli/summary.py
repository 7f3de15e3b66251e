"""Show a network's layers, their dials (weights and biases), and the totals.

Examples:
  dialnet summary --layers 625,20,20,10
  dialnet summary model.safetensors
"""

from __future__ import annotations

HELP = "show layers, weights and biases of a model or of --layers sizes"


def add_arguments(p):
    p.add_argument("model", nargs="?", help="a .safetensors model file")
    p.add_argument("--layers", help="comma-separated sizes, e.g. 625,20,20,10")
    p.add_argument("--activation", default="sigmoid", help="hidden activation for --layers (default: sigmoid)")
    p.add_argument("--output", default="softmax", help="output activation for --layers (default: softmax)")


def table_for_sizes(sizes, activation, output, dtype="float32"):
    """The table ``Network.summary()`` prints, counted from the sizes alone: no weight is allocated, so
    ``--layers 20000,20000`` costs nothing to show (and its memory line says what building it would)."""
    from ..core.layers import get_activation  # noqa: PLC0415
    from ..core.network import OUTPUTS  # noqa: PLC0415
    from ..errors import ConfigError  # noqa: PLC0415

    if len(sizes) < 2:
        raise ConfigError("--layers needs at least an input and an output size", expected="e.g. 625,20,20,10",
                          got=",".join(map(str, sizes)), fix="pass --layers 625,20,20,10")
    if str(output).lower() not in OUTPUTS:
        raise ConfigError(f"unknown output activation {output!r}", expected="one of " + ", ".join(OUTPUTS),
                          got=repr(output), fix="use --output softmax for classes, identity for numbers")
    if str(output).lower() == "softmax" and sizes[-1] == 1:
        raise ConfigError("a softmax over one output is always 1", expected="at least 2 outputs for softmax", got="1 output",
                          fix="use --output sigmoid for a yes/no problem, or 2 softmax outputs")
    hidden_name = type(get_activation(activation)).__name__
    output_name = type(get_activation(output)).__name__
    rows = [("#", "layer", "output", "weights", "biases")]
    n_w = n_b = 0
    index = 0
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        n_w += n_in * n_out
        n_b += n_out
        rows.append((str(index), f"Dense {n_in}->{n_out}", str(n_out), f"{n_in * n_out:,}", f"{n_out:,}"))
        rows.append((str(index + 1), hidden_name if k < len(sizes) - 2 else output_name, str(n_out), "", ""))
        index += 2
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    lines = [f"Network {'-'.join(map(str, sizes))} ({dtype}), input width {sizes[0]}"]
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) if c < 2 else r[c].rjust(widths[c]) for c in range(5)))
    lines.append(f"Total: {n_w:,} weights + {n_b:,} biases = {n_w + n_b:,} parameters")
    return "\n".join(lines)


def memory_line(sizes, dtype="float32"):
    """``Memory: ...``: what the network and training it (Adam, batch 32) need, against what is available now."""
    from ..core.memory import available_bytes, estimate  # noqa: PLC0415

    est = estimate(sizes, dtype, batch_size=32, optimizer="adam")
    available = available_bytes()
    line = "Memory: " + est.describe(available, " with Adam, batch 32")
    if available is not None and max(est.training, est.building) > available:
        line += "; it does not fit: training it would be refused"
    return line


def run(args):
    import dialnet as dn  # noqa: PLC0415

    from ..errors import ConfigError  # noqa: PLC0415
    from ._shared import parse_sizes  # noqa: PLC0415

    if args.model and args.layers:
        raise ConfigError("give a model file or --layers, not both", expected="one of them", got="both", fix="drop one")
    if args.model:
        net = dn.load(args.model)
        print(net.summary())
        if getattr(net, "class_names", None):
            print("Classes: " + ", ".join(net.class_names))
        print(memory_line(net.sizes, net.dtype.name))
    elif args.layers:
        sizes = parse_sizes(args.layers)
        print(table_for_sizes(sizes, args.activation, args.output))
        print(memory_line(sizes))
    else:
        raise ConfigError(
            "nothing to summarize",
            expected="a model file or --layers",
            got="neither",
            fix="run `dialnet summary --layers 625,20,20,10` or `dialnet summary model.safetensors`",
        )
    return 0
