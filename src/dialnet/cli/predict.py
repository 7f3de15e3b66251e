"""Ask a saved model what it sees: a certainty per class for each input (a value for regression models).

INPUT is an image file (png, jpg, ...: made grayscale and resized to the
model's image size), a folder of images, a CSV file (one prediction per
row; the label column, if present, is left out; columns matched by header
name), or a row written inline ("5.1,3.5,1.4,0.2", or "3.1,red,,7" for a
model with text columns; a blank cell is imputed). The model's stored
encoding and scaling are applied first. An image whose background is the opposite of the training images'
(dark digits on white paper for an MNIST model) is inverted to match, and
the line says so.

Examples:
  dialnet predict model.safetensors my_digit.png
  dialnet predict seeds.safetensors "15.26,14.84,0.871,5.763,3.312,2.221,5.22"
"""

from __future__ import annotations

HELP = "certainty per class for image files, a folder of images, CSV rows or an inline row of numbers"


def add_arguments(p):
    p.add_argument("model", help="a .safetensors model file (from `dialnet train`)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, an image folder, a CSV file, or a row of numbers")
    p.add_argument("--top", type=int, default=3, help="how many certainties to show per input, largest first (default: 3; 0 = all)")


def run(args):
    import dialnet as dn  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ..errors import InvalidValueError  # noqa: PLC0415
    from ._shared import format_certainties  # noqa: PLC0415

    if args.top < 0:
        raise InvalidValueError("--top must be >= 0", expected="a whole number >= 0", got=repr(args.top), fix="e.g. --top 3 (0 = all)")
    net = dn.load(args.model)
    inputs = workflow.model_inputs(net, args.inputs)
    if net.task == "regression":
        pre = workflow.preprocessor_of(net)
        target = (pre.target if pre is not None else None) or "value"
        for label, value in zip(inputs.labels, workflow.predict_targets(net, inputs.X)):
            print(f"{label}: {target} = {float(value):.6g}")
        return 0
    P = net.predict_proba(inputs.X)
    names = net.class_names or [str(i) for i in range(P.shape[1])]
    for label, p, inverted in zip(inputs.labels, P, inputs.inverted):
        note = " (inverted to match the training images' background)" if inverted else ""
        print(f"{label}: {names[int(p.argmax())]}  ({format_certainties(p, names, args.top)}){note}")
    return 0
