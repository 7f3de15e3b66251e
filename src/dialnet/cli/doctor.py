"""Examine a trained model on its data and say what is wrong, with numbers and a fix for each.

Checks: unscaled inputs, class imbalance, saturated sigmoid/tanh units,
dead ReLUs, vanishing or exploding gradients by layer, a learning rate too
high (from the training history stored in the model file, or from a short
probe run with --optimizer/--lr), and a network too small to fit the
training set (a probe against a 4x wider twin). Every threshold is
explained in `python -c "import dialnet; help(dialnet.doctor)"`.

DATA is what `dialnet train` accepts: mnist-10k, mnist, fashion-mnist, a
CSV file (label last, or --target), an image folder, IDX files, or an
.npz file with arrays X and y.

Examples:
  dialnet doctor model.safetensors mnist-10k
  dialnet doctor model.safetensors data.csv --optimizer sgd --lr 0.5
  dialnet doctor model.safetensors mnist-10k --no-probe
"""

from __future__ import annotations

HELP = "diagnose a model on its training data: saturation, dead units, gradients, learning rate, capacity"


def add_arguments(p):
    from ._shared import add_data_arguments  # noqa: PLC0415

    p.add_argument("model", help="a .safetensors model file")
    p.add_argument("data", nargs="+", metavar="DATA", help="the training data (see above)")
    add_data_arguments(p)
    p.add_argument("--optimizer", default=None, help="the optimizer you train with, for the learning-rate probe (sgd, adam, rmsprop)")
    p.add_argument("--lr", type=float, default=None, help="the learning rate you train with, for the probe")
    p.add_argument("--no-probe", action="store_true", help="skip the short training probes (learning rate, capacity)")
    p.add_argument("--max-samples", type=int, default=2000, help="rows to examine (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed for the sampled rows and the probes (default: 0)")


def run(args):
    import dialnet as dn  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ..diagnose.doctor import doctor  # noqa: PLC0415
    from ..train import get_optimizer  # noqa: PLC0415

    net = dn.load(args.model)
    data = workflow.model_data(net, args.data, "train", target=args.target, image_size=args.image_size)
    optimizer = None
    if args.optimizer is not None or args.lr is not None:
        optimizer = get_optimizer(args.optimizer or "adam", lr=args.lr)
    diagnosis = doctor(net, data.X, data.y, optimizer=optimizer, probe=not args.no_probe, seed=args.seed,
                       max_samples=args.max_samples)
    print(f"Doctor's report for {args.model} ({'-'.join(map(str, net.sizes))}) on {data.description}")
    print(diagnosis.report())
    return 0
