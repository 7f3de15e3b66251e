"""Ask a saved model what it sees: a certainty per class for each input (a value for regression models).

INPUT is an image file (png, jpg, ...: made grayscale and resized to the
model's image size), a folder of images, a CSV file (one prediction per
row; the label column, if present, is left out; columns matched by header
name), or a row written inline ("5.1,3.5,1.4,0.2", or "3.1,red,,7" for a
model with text columns; a blank cell is imputed). The model's stored
encoding and scaling are applied first. An image whose background is the opposite of the training images'
(dark digits on white paper for an MNIST model) is inverted to match, and
the line says so.

Machine-readable output: --format json writes JSON Lines, one object per
input: {"input": ..., "values": {column: cell, ...}, "prediction": ...,
"certainty": {class: p, ...}} (a regression model's "prediction" is the
value, in the target's units); --format csv writes the input's own
columns, then "prediction" and one "certainty_<class>" column per class.
Both go to stdout, or to --out FILE (written atomically; never over an
input). Columns the model dropped (ID-like) need not be given.

Examples:
  dialnet predict model.safetensors my_digit.png
  dialnet predict seeds.safetensors "15.26,14.84,0.871,5.763,3.312,2.221,5.22"
  dialnet predict seeds.safetensors new_rows.csv --format csv --out preds.csv
  dialnet predict seeds.safetensors new_rows.csv --format json | jq .prediction
"""

from __future__ import annotations

HELP = "certainty per class for image files, a folder of images, CSV rows or an inline row of numbers"


FORMATS = ("table", "text", "json", "csv")  # "text" is the older name of "table"


def add_arguments(p):
    p.add_argument("model", help="a .safetensors model file (from `dialnet train`)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, an image folder, a CSV file, or a row of numbers")
    p.add_argument("--top", type=int, default=3, help="how many certainties to show per input, largest first (default: 3; 0 = all)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default: a line per input, for people; 'text' is the same), json (JSON Lines) or csv "
                   "(the input's columns, the prediction and a certainty column per class)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the predictions here instead of stdout (atomically)")


def records(net, inputs, values):
    """One dict per input: ``input``, ``values`` (its own columns), ``prediction``, ``certainty`` per class
    (classification) or the predicted value (regression)."""
    names = net.class_names or [str(i) for i in range(net.n_outputs)]
    out = []
    for k, label in enumerate(inputs.labels):
        record = {"input": label}
        if inputs.records and inputs.records[k]:
            record["values"] = inputs.records[k]
        if inputs.inverted[k]:
            record["inverted"] = True
        if net.task == "regression":
            record["prediction"] = float(values[k])
        else:
            p = values[k]
            record["prediction"] = names[int(p.argmax())]
            record["certainty"] = {name: float(v) for name, v in zip(names, p)}
        out.append(record)
    return out


def as_json_lines(rows) -> str:
    import json  # noqa: PLC0415

    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def as_csv(rows, class_names) -> str:
    """The input's columns (the union over inputs, in order of appearance), ``prediction``, ``certainty_<class>``."""
    import csv  # noqa: PLC0415
    import io  # noqa: PLC0415

    columns = ["input"]
    for row in rows:
        columns += [c for c in row.get("values", {}) if c not in columns]
    certainty = [f"certainty_{name}" for name in class_names] if rows and "certainty" in rows[0] else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns + ["prediction"] + certainty)
    for row in rows:
        values = row.get("values", {})
        cells = [row["input"]] + [values.get(c, "") for c in columns[1:]]
        cells.append(repr(row["prediction"]) if isinstance(row["prediction"], float) else row["prediction"])
        cells += [repr(row["certainty"][name]) for name in class_names] if certainty else []
        writer.writerow(cells)
    return buffer.getvalue()


def run(args):
    import dialnet as dn  # noqa: PLC0415

    from .. import workflow  # noqa: PLC0415
    from ..errors import InvalidValueError  # noqa: PLC0415
    from ..files.modelfile import atomic_write_bytes  # noqa: PLC0415
    from ._shared import check_outputs, format_certainties  # noqa: PLC0415

    if args.top < 0:
        raise InvalidValueError("--top must be >= 0", expected="a whole number >= 0", got=repr(args.top), fix="e.g. --top 3 (0 = all)")
    check_outputs({"--out": args.out}, {"MODEL": args.model, "INPUT": list(args.inputs)})
    net = dn.load(args.model)
    inputs = workflow.model_inputs(net, args.inputs)
    regression = net.task == "regression"
    values = workflow.predict_targets(net, inputs.X) if regression else net.predict_proba(inputs.X)
    names = net.class_names or [str(i) for i in range(net.n_outputs)]
    if args.format in ("table", "text"):
        lines = []
        if regression:
            pre = workflow.preprocessor_of(net)
            target = (pre.target if pre is not None else None) or "value"
            lines = [f"{label}: {target} = {float(value):.6g}" for label, value in zip(inputs.labels, values)]
        else:
            for label, p, inverted in zip(inputs.labels, values, inputs.inverted):
                note = " (inverted to match the training images' background)" if inverted else ""
                lines.append(f"{label}: {names[int(p.argmax())]}  ({format_certainties(p, names, args.top)}){note}")
        text = "".join(line + "\n" for line in lines)
    elif args.format == "json":
        text = as_json_lines(records(net, inputs, values))
    else:
        text = as_csv(records(net, inputs, values), names)
    if args.out:
        atomic_write_bytes(args.out, text.encode("utf-8"))
        print(f"wrote {len(inputs.labels):,} predictions to {args.out} ({args.format})")
    else:
        print(text, end="")
    return 0
