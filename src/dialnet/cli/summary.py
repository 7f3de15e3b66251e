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


def run(args):
    import dialnet as dn  # noqa: PLC0415

    from ..errors import ConfigError  # noqa: PLC0415
    from ._shared import parse_sizes  # noqa: PLC0415

    if args.model and args.layers:
        raise ConfigError("give a model file or --layers, not both", expected="one of them", got="both", fix="drop one")
    if args.model:
        net = dn.load(args.model)
    elif args.layers:
        net = dn.mlp(parse_sizes(args.layers), activation=args.activation, output=args.output, seed=0)
    else:
        raise ConfigError(
            "nothing to summarize",
            expected="a model file or --layers",
            got="neither",
            fix="run `dialnet summary --layers 625,20,20,10` or `dialnet summary model.safetensors`",
        )
    print(net.summary())
    if getattr(net, "class_names", None):
        print("Classes: " + ", ".join(net.class_names))
    return 0
