"""Export a network to ONNX, so any ONNX runtime can run the forward pass.

Each Dense becomes one ``Gemm`` (``Y = X @ W + b``: dialnet's ``W`` is
already ``(n_in, n_out)``, so no transpose), each activation its ONNX op
(Sigmoid, Tanh, Relu, LeakyRelu, Softmax over the last axis, Identity);
Dropout is the identity at inference and is left out. The batch axis is
dynamic (``"batch"``); the graph's input is ``"input"`` and its output
``"output"`` (certainties for a softmax network).

Opset 13 by default: it is the first opset whose ``Softmax`` normalizes
over one axis (opsets < 13 flatten to 2-D first), it is the newest
version of ``Gemm``, and runtimes from 2021 on (ONNX Runtime >= 1.6,
onnxruntime-web, OpenVINO, TensorRT 8) run it. The IR version is the
lowest that opset allows (7), so older runtimes do not reject the file.

Class names, task, preprocessing (scaling, image size), the input and
output names and the dialnet version go into ``metadata_props`` as
strings (JSON for lists and dicts). onnx and onnxruntime are the optional
extra ``dialnet[onnx]``; they are imported only here, inside functions.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .. import backend
from .._version import __version__
from ..core.layers import Dense, Dropout, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from ..core.network import Network
from ..errors import ConfigError
from .modelfile import atomic_write_bytes, preprocessing_config

DEFAULT_OPSET = 13
MIN_OPSET = 13  # Softmax over one axis; the ops below mean the same in every opset from 13 on
INPUT_NAME = "input"
OUTPUT_NAME = "output"
_PROTOBUF_LIMIT = 2 * 1024**3 - 64 * 1024**2  # protobuf messages stop at 2 GiB; leave room for the graph


def _require_onnx():
    try:
        import onnx  # noqa: PLC0415  (optional extra, heavy)
    except ImportError as exc:
        raise ConfigError(
            "ONNX export needs the onnx package",
            expected="an importable onnx package",
            got=str(exc),
            fix='pip install "dialnet[onnx]"',
        ) from None
    return onnx


def _check_opset(opset, onnx):
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= latest:
        raise ConfigError(
            f"unsupported ONNX opset {opset!r}",
            expected=f"an int from {MIN_OPSET} (Softmax over one axis) to {latest} (this onnx package)",
            got=repr(opset),
            fix=f"leave the default opset {DEFAULT_OPSET}, which most runtimes support",
        )
    return int(opset)


def _layer_nodes(layer, i, x, y, dtype, helper, tensor_type):
    """ONNX nodes and initializers for one dialnet layer: ``x`` -> ``y``."""
    kind = type(layer)  # exact type: a subclass may compute something else
    if kind is Dense:
        W = np.ascontiguousarray(backend.to_numpy(layer.weights), dtype=dtype)
        b = np.ascontiguousarray(backend.to_numpy(layer.biases), dtype=dtype)
        inits = [
            helper.make_tensor(f"layers.{i}.weights", tensor_type, W.shape, W.tobytes(), raw=True),
            helper.make_tensor(f"layers.{i}.biases", tensor_type, b.shape, b.tobytes(), raw=True),
        ]
        return [helper.make_node("Gemm", [x, inits[0].name, inits[1].name], [y], name=f"layers.{i}.gemm")], inits
    simple = {Sigmoid: "Sigmoid", Tanh: "Tanh", ReLU: "Relu", Identity: "Identity", Dropout: "Identity"}
    if kind in simple:
        return [helper.make_node(simple[kind], [x], [y], name=f"layers.{i}.{layer.name}")], []
    if kind is Softmax:
        return [helper.make_node("Softmax", [x], [y], axis=-1, name=f"layers.{i}.softmax")], []
    if kind is LeakyReLU:
        if dtype == np.float32:
            return [helper.make_node("LeakyRelu", [x], [y], alpha=float(layer.alpha), name=f"layers.{i}.leaky_relu")], []
        # ONNX Runtime has no double LeakyRelu kernel; max(z, alpha z) is the same function
        # for 0 <= alpha < 1, bit for bit (dialnet computes z * alpha on the negative side too).
        alpha = helper.make_tensor(f"layers.{i}.alpha", tensor_type, [], np.array([layer.alpha], dtype).tobytes(), raw=True)
        scaled = f"layers.{i}.alpha_z"
        return [
            helper.make_node("Mul", [x, alpha.name], [scaled], name=f"layers.{i}.mul"),
            helper.make_node("Max", [x, scaled], [y], name=f"layers.{i}.max"),
        ], [alpha]
    raise ConfigError(
        f"layer {i} ({type(layer).__name__}) has no ONNX equivalent",
        expected="Dense, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, Identity or Dropout",
        got=type(layer).__module__ + "." + type(layer).__qualname__,
        fix="build the network from dialnet's own layers (custom layers cannot be exported)",
    )


def _json_value(value):
    """NumPy scalars and arrays (scaling constants) as plain JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def metadata(net, input_name=INPUT_NAME, output_name=OUTPUT_NAME) -> dict:
    """The ``metadata_props`` of the exported model (all values are strings)."""
    class_names = list(net.class_names) if getattr(net, "class_names", None) is not None else None
    return {
        "dialnet_version": __version__,
        "producer": "dialnet",
        "input_name": input_name,
        "output_name": output_name,
        "output_kind": "certainties" if net.layers[-1].name == "softmax" else net.layers[-1].name,
        "task": str(net.task),
        "class_names": json.dumps(class_names),
        "preprocessing": json.dumps(preprocessing_config(net), sort_keys=True, default=_json_value),
        "architecture": json.dumps([{"type": layer.name, **layer.config()} for layer in net.layers]),
        "dtype": net.dtype.name,
    }


def to_onnx_model(net, opset=DEFAULT_OPSET, input_name=INPUT_NAME, output_name=OUTPUT_NAME):
    """Build the ONNX ``ModelProto`` of a network (nothing is written).

    Parameters
    ----------
    net : Network
        Built from dialnet's own layers, float32 or float64.
    opset : int
        ONNX opset, 13 (default) or newer.
    input_name, output_name : str
        Names of the graph's input ``(batch, n_inputs)`` and output ``(batch, n_outputs)``.

    Returns
    -------
    onnx.ModelProto
        Checked by ``onnx.checker.check_model(full_check=True)``.
    """
    onnx = _require_onnx()
    from onnx import TensorProto, helper  # noqa: PLC0415

    if not isinstance(net, Network):
        raise ConfigError(
            "only a dialnet Network can be exported to ONNX",
            expected="a dialnet.Network",
            got=type(net).__name__,
            fix="build it with dialnet.mlp(...) or load it with dialnet.load(path)",
        )
    opset = _check_opset(opset, onnx)
    for what, name in (("input_name", input_name), ("output_name", output_name)):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{what} must be a non-empty string", expected="e.g. 'input'", got=repr(name), fix=f"pass {what}='{INPUT_NAME if what == 'input_name' else OUTPUT_NAME}'")
    if input_name == output_name:
        raise ConfigError("input and output names must differ", expected="two different names", got=repr(input_name), fix="keep the defaults 'input' and 'output'")
    dtype = np.dtype(net.dtype)
    tensor_type = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    n_bytes = sum(p.size for p in net.parameters()) * dtype.itemsize
    if n_bytes > _PROTOBUF_LIMIT:
        raise ConfigError(
            "the network is too large for one ONNX file",
            expected=f"at most {_PROTOBUF_LIMIT:,} bytes of weights (protobuf's 2 GiB limit)",
            got=f"{n_bytes:,} bytes",
            fix="export a smaller network, or a float32 copy: net.astype('float32')",
        )
    nodes, inits = [], []
    x = input_name
    for i, layer in enumerate(net.layers):
        y = output_name if i == len(net.layers) - 1 else f"layers.{i}.out"
        layer_nodes, layer_inits = _layer_nodes(layer, i, x, y, dtype, helper, tensor_type)
        nodes += layer_nodes
        inits += layer_inits
        x = y
    graph = helper.make_graph(
        nodes,
        "dialnet",
        [helper.make_tensor_value_info(input_name, tensor_type, ["batch", net.n_inputs])],
        [helper.make_tensor_value_info(output_name, tensor_type, ["batch", net.n_outputs])],
        initializer=inits,
        doc_string=f"dialnet {'-'.join(map(str, net.sizes))} network ({dtype.name})",
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="dialnet", producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(model, metadata(net, input_name, output_name))
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:  # a bug here, not bad input
        raise RuntimeError(f"dialnet built an invalid ONNX graph: {exc}") from exc
    return model


def export_onnx(net, path, opset=DEFAULT_OPSET, input_name=INPUT_NAME, output_name=OUTPUT_NAME):
    """Write a network to an ``.onnx`` file (atomically) and return the path.

    See :func:`to_onnx_model` for the graph and the module docstring for
    why opset 13.
    """
    return write_model(to_onnx_model(net, opset, input_name, output_name), path)


def write_model(model, path):
    """Write an ONNX ``ModelProto`` to ``path``: temp file, fsync, rename (a crash leaves old or new)."""
    atomic_write_bytes(path, model.SerializeToString())  # raises ModelFileError on a folder or an unwritable path
    return path


def verify_onnx(net, model, n_samples=256, seed=0):
    """Run the exported model in ONNX Runtime and dialnet on the same seeded batch.

    Parameters
    ----------
    net : Network
    model : onnx.ModelProto, bytes or path
    n_samples, seed : int
        Size and seed of the standard-normal input batch (any finite input
        must give the same outputs).

    Returns
    -------
    dict
        ``max_abs_diff`` (largest ``|onnxruntime - dialnet|``),
        ``max_abs_output`` (largest ``|dialnet|``, to scale a tolerance) and
        ``n_samples``.
    """
    try:
        import onnxruntime as ort  # noqa: PLC0415  (optional extra, heavy)
    except ImportError as exc:
        raise ConfigError(
            "checking the export needs onnxruntime",
            expected="an importable onnxruntime package",
            got=str(exc),
            fix='pip install "dialnet[onnx]", or skip the check (dialnet export --no-verify)',
        ) from None
    if isinstance(model, (str, os.PathLike)):
        with open(os.fspath(model), "rb") as fh:
            data = fh.read()
    else:
        data = bytes(model) if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    X = np.random.default_rng(seed).standard_normal((n_samples, net.n_inputs)).astype(net.dtype)
    (got,) = session.run(None, {session.get_inputs()[0].name: X})
    want = net.predict_proba(X).astype(np.float64)
    return {
        "max_abs_diff": float(np.max(np.abs(got.astype(np.float64) - want))),
        "max_abs_output": float(np.max(np.abs(want))),
        "n_samples": int(n_samples),
    }
