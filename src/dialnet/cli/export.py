"""Export a trained model for other runtimes: ONNX, or a PyTorch state_dict.

ONNX (opset 13 by default, dynamic batch axis) holds the whole pipeline of
a model trained on a table or images: one input per raw column, named by
its header (float32 numbers, NaN = missing; strings for text columns,
empty = missing), imputation, one-hot, scaling and the network, with the
label and the certainties per class (or the value) as outputs; an image
model takes the raw pixels. The command prints what the inputs are. It is
checked by onnx.checker and, unless --no-verify, run in ONNX Runtime on
seeded inputs (raw rows with blanks and unseen categories for a table)
and compared with dialnet. --state-dict writes the weights
of the equivalent torch.nn.Sequential (keys 0.weight, 0.bias, 2.weight,
...) as a .safetensors file: safetensors.torch.load_file reads it, no
pickle involved.

Examples:
  dialnet export model.safetensors --onnx model.onnx
  dialnet export model.safetensors --state-dict model.torch.safetensors
"""

from __future__ import annotations

HELP = "export a model to ONNX (checked by onnxruntime) or a PyTorch state_dict"


def add_arguments(p):
    p.add_argument("model", help="a .safetensors model file written by dialnet")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write an ONNX model here (needs dialnet[onnx])")
    p.add_argument("--state-dict", metavar="OUT.safetensors", help="write the torch.nn.Sequential state_dict here")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 13, for wide runtime support)")
    p.add_argument("--no-verify", action="store_true", help="do not compare ONNX Runtime's outputs with dialnet's")


def run(args):
    import dialnet as dn  # noqa: PLC0415

    from ..errors import ConfigError, InvalidValueError  # noqa: PLC0415

    if not args.onnx and not args.state_dict:
        raise ConfigError(
            "nothing to export",
            expected="--onnx OUT.onnx and/or --state-dict OUT.safetensors",
            got="neither",
            fix=f"run `dialnet export {args.model} --onnx model.onnx`",
        )
    from ._shared import check_outputs  # noqa: PLC0415

    check_outputs({"--onnx": args.onnx, "--state-dict": args.state_dict}, {"MODEL": args.model})
    net = dn.load(args.model)
    n_params = f"{net.count_parameters():,} parameters, {net.dtype.name}"
    if args.onnx:
        from ..files.onnx import DEFAULT_OPSET, describe_inputs, to_onnx_model, verify_onnx, write_model  # noqa: PLC0415

        opset = DEFAULT_OPSET if args.opset is None else args.opset
        model = to_onnx_model(net, opset=opset)
        check = None if args.no_verify else verify_onnx(net, model)
        if check is not None:
            # float32 sums of a few hundred terms round at ~1e-7 of the outputs' size
            tol = (1e-4 if net.dtype.name == "float32" else 1e-10) * max(1.0, check["max_abs_output"])
            if not check["max_abs_diff"] <= tol:
                raise InvalidValueError(
                    "ONNX Runtime's outputs differ from dialnet's",
                    expected=f"a largest difference <= {tol:.1e}",
                    got=f"{check['max_abs_diff']:.3e}",
                    fix="report this as a bug; pass --no-verify to write the file anyway",
                )
        write_model(model, args.onnx)
        print(f"wrote {args.onnx} (ONNX opset {opset}, {n_params})")
        if check is not None:
            print(f"  onnxruntime matches dialnet: largest difference {check['max_abs_diff']:.2e} "
                  f"on {check['n_samples']} {check['inputs']}")
        for line in describe_inputs(model).splitlines():
            print(f"  {line}")
    if args.state_dict:
        from ..files.torch import save_torch_state_dict  # noqa: PLC0415

        save_torch_state_dict(net, args.state_dict)
        keys = ", ".join(list(net.to_torch_state_dict(as_numpy=True))[:4])
        print(f"wrote {args.state_dict} (torch.nn.Sequential state_dict, keys {keys}, ...; {n_params})")
    return 0

