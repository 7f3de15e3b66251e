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

**The whole pipeline.** A model trained on a CSV table (its Preprocessor
has column rules) or on images exports, by default, what dialnet does
from the raw input to the answer, so whoever deploys it writes no
preprocessing:

- tables: one graph input per feature column the model reads, named by
  the column's header, shape ``[N, 1]``: ``float`` for a number column (NaN
  or inf = missing, imputed with the training median), ``string`` for a
  text column (one-hot over the training categories; an empty or NA-like
  cell, matched exactly or in any letter case, is missing and takes the
  column's fill; an unseen value sets the ``(other)`` input when the
  column has one). Dropped ID columns are not inputs. Then the scaling
  (in double precision, as dialnet computes it), the network, and:
- outputs: ``label`` (the class name, or the class index without names)
  and ``certainties`` (one column per class) for classification (``[N, 2]``,
  ``1 - p`` and ``p``, for one sigmoid unit); ``labels`` (0/1 per label)
  and ``certainties`` for multi-label; ``value`` (double, in the
  target's own units: the standardization undone) for regression;
- images: one input ``pixels``, ``[N, side, side]`` float, raw values
  from 0 to ``pixel_max`` (255), divided and scaled in the graph.

The string ops are ONNX-ML's ``LabelEncoder`` (domain ``ai.onnx.ml``,
version 2), as scikit-learn's converters use: ONNX ``Equal`` on strings
needs opset 19. :func:`describe_inputs` says in words what a graph takes.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .. import backend
from .._version import __version__
from ..core.layers import Dense, Dropout, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from ..core.network import Network
from ..data.columns import MISSING
from ..data.preprocessing import preprocessor_of
from ..errors import ConfigError
from .modelfile import atomic_write_bytes, preprocessing_config

DEFAULT_OPSET = 13
MIN_OPSET = 13  # Softmax over one axis; the ops below mean the same in every opset from 13 on
INPUT_NAME = "input"
OUTPUT_NAME = "output"
_PROTOBUF_LIMIT = 2 * 1024**3 - 64 * 1024**2  # protobuf messages stop at 2 GiB; leave room for the graph
ML_OPSET = 2  # ai.onnx.ml LabelEncoder with string keys and int64 values (ONNX Runtime >= 1.1)
PIXELS_NAME = "pixels"


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


def to_onnx_model(net, opset=DEFAULT_OPSET, input_name=INPUT_NAME, output_name=OUTPUT_NAME, pipeline="auto"):
    """Build the ONNX ``ModelProto`` of a network (nothing is written).

    Parameters
    ----------
    net : Network
        Built from dialnet's own layers, float32 or float64.
    opset : int
        ONNX opset, 13 (default) or newer.
    input_name, output_name : str
        Names of the graph's input ``(batch, n_inputs)`` and output
        ``(batch, n_outputs)`` when the network alone is exported.
    pipeline : "auto", bool
        Export the whole pipeline, raw inputs to answers (the module
        docstring): "auto" does for a model with a table's column rules
        or an image Preprocessor; True also for numeric scaling alone (one
        input ``input_name`` of raw numbers); False exports the network
        alone, on already prepared inputs.

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
    pre = _pipeline_preprocessor(net, pipeline)
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
    if pre is not None:
        g = _Graph(helper, TensorProto)
        features = _pipeline_front(g, net, pre, input_name)
        nodes, inits = _network_nodes(net, features, "dialnet.network.out", dtype, helper, tensor_type)
        g.nodes += nodes
        g.inits += inits
        _pipeline_outputs(g, net, pre, "dialnet.network.out")
        props = metadata(net, input_name, output_name)
        props.update(pipeline="true", inputs=json.dumps(g.input_specs), outputs=json.dumps([o.name for o in g.outputs]))
        props["input_name"] = ",".join(spec["name"] for spec in g.input_specs)
        props["output_name"] = ",".join(o.name for o in g.outputs)
        graph = helper.make_graph(g.nodes, "dialnet", g.inputs, g.outputs, initializer=g.inits,
                                  doc_string=f"dialnet pipeline: raw inputs -> {'-'.join(map(str, net.sizes))} network "
                                  f"({dtype.name}) -> answers")
        opsets = [helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    else:
        nodes, inits = _network_nodes(net, input_name, output_name, dtype, helper, tensor_type)
        graph = helper.make_graph(
            nodes,
            "dialnet",
            [helper.make_tensor_value_info(input_name, tensor_type, ["batch", net.n_inputs])],
            [helper.make_tensor_value_info(output_name, tensor_type, ["batch", net.n_outputs])],
            initializer=inits,
            doc_string=f"dialnet {'-'.join(map(str, net.sizes))} network ({dtype.name})",
        )
        opsets = [helper.make_opsetid("", opset)]
        props = metadata(net, input_name, output_name)
    model = helper.make_model(graph, opset_imports=opsets, producer_name="dialnet", producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(model, props)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:  # a bug here, not bad input
        raise RuntimeError(f"dialnet built an invalid ONNX graph: {exc}") from exc
    return model


def export_onnx(net, path, opset=DEFAULT_OPSET, input_name=INPUT_NAME, output_name=OUTPUT_NAME, pipeline="auto"):
    """Write a network to an ``.onnx`` file (atomically) and return the path.

    See :func:`to_onnx_model` for the graph (a table or image model
    exports its whole pipeline) and the module docstring for why opset 13.
    """
    return write_model(to_onnx_model(net, opset, input_name, output_name, pipeline), path)


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
        ``n_samples``. A pipeline graph is fed raw rows (:func:`raw_rows`:
        blanks, NA, unseen categories) and compared, certainties or values,
        with dialnet's preprocessing and network on the same rows;
        ``labels_agree`` then says whether the labels match too.
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
    outputs = [o.name for o in session.get_outputs()]
    if len(session.get_inputs()) > 1 or session.get_inputs()[0].name == PIXELS_NAME or outputs[-1] in ("certainties", "value"):
        pre = preprocessor_of(net)
        feeds, raw = raw_rows(net, n_samples, seed)
        got = dict(zip(outputs, session.run(None, feeds)))
        want = _dialnet_answers(net, pre, raw)
        got_values = got["value"] if "value" in got else got["certainties"]
        result = {
            "max_abs_diff": float(np.max(np.abs(got_values.astype(np.float64) - want))) if want.size else 0.0,
            "max_abs_output": float(np.max(np.abs(want))) if want.size else 0.0,
            "n_samples": int(n_samples),
            "inputs": "random pixel images" if PIXELS_NAME in feeds else "raw rows (with blank cells and unseen categories)",
        }
        if "label" in got:
            index = want.argmax(axis=1)
            names = list(net.class_names) if getattr(net, "class_names", None) is not None and len(net.class_names) == want.shape[1] else None
            expected = np.array(names, dtype=object)[index] if names is not None else index
            close = np.sort(want, axis=1)[:, -1] - np.sort(want, axis=1)[:, -2] > 1e-6  # rows not on a tie
            result["labels_agree"] = bool(np.all(np.asarray(got["label"]).astype(object)[close] == expected[close]))
        return result
    X = np.random.default_rng(seed).standard_normal((n_samples, net.n_inputs)).astype(net.dtype)
    (got,) = session.run(None, {session.get_inputs()[0].name: X})
    want = net.predict_proba(X).astype(np.float64)
    return {
        "max_abs_diff": float(np.max(np.abs(got.astype(np.float64) - want))),
        "max_abs_output": float(np.max(np.abs(want))),
        "n_samples": int(n_samples),
        "inputs": "random inputs",
    }


# ------------------------------------------------------------------ the network's nodes


def _network_nodes(net, x, output, dtype, helper, tensor_type):
    """The nodes and initializers of every layer, from tensor ``x`` to tensor ``output``."""
    nodes, inits = [], []
    for i, layer in enumerate(net.layers):
        y = output if i == len(net.layers) - 1 else f"layers.{i}.out"
        layer_nodes, layer_inits = _layer_nodes(layer, i, x, y, dtype, helper, tensor_type)
        nodes += layer_nodes
        inits += layer_inits
        x = y
    return nodes, inits


# ------------------------------------------------------------------ the whole pipeline


def _pipeline_preprocessor(net, pipeline):
    """The Preprocessor whose steps go into the graph, or None for the network alone."""
    if pipeline not in ("auto", True, False):
        raise ConfigError("pipeline must be 'auto', True or False", expected="'auto' (default), True or False",
                          got=repr(pipeline), fix="leave pipeline out: table and image models export their whole pipeline")
    if pipeline is False:
        return None
    pre = preprocessor_of(net)
    if pre is None:
        if pipeline is True:
            raise ConfigError("this network has no preprocessing to export", expected="a model trained by dialnet on a "
                              "table or images (net.preprocessing set)", got="net.preprocessing = None",
                              fix="export the network alone (pipeline='auto' or False)")
        return None
    if pipeline == "auto" and not (pre.columns or (pre.kind == "image" and pre.image_size)):
        return None
    if pre.kind == "image" and (not pre.image_size or int(pre.image_size) ** 2 != net.n_inputs):
        raise ConfigError("the image preprocessing does not fit the network", expected=f"{net.n_inputs} pixels",
                          got=f"image_size {pre.image_size!r}", fix="export with pipeline=False")
    return pre


class _Graph:
    """Nodes, initializers, inputs and outputs of the graph being built, with fresh tensor names."""

    def __init__(self, helper, tensor_proto):
        self.helper, self.T = helper, tensor_proto
        self.nodes, self.inits, self.inputs, self.outputs, self.input_specs = [], [], [], [], []
        self.count = 0

    def name(self, hint):
        self.count += 1
        return f"dialnet.{hint}.{self.count}"

    def node(self, op, inputs, output=None, domain=None, **attrs):
        output = output or self.name(op.lower())
        kwargs = {"domain": domain} if domain else {}
        self.nodes.append(self.helper.make_node(op, list(inputs), [output], name=self.name(op.lower() + "_node"),
                                                **kwargs, **attrs))
        return output

    def const(self, values, kind, hint="const"):
        """An initializer of ``kind`` ("double", "int64" or "string") holding ``values`` (its shape kept)."""
        name = self.name(hint)
        if kind == "string":
            arr = np.asarray(values, dtype=object)
            tensor = self.helper.make_tensor(name, self.T.STRING, arr.shape, [str(v).encode("utf-8") for v in arr.ravel()])
        else:
            arr = np.ascontiguousarray(values, dtype=np.float64 if kind == "double" else np.int64)
            elem = self.T.DOUBLE if kind == "double" else self.T.INT64
            tensor = self.helper.make_tensor(name, elem, arr.shape, arr.tobytes(), raw=True)
        self.inits.append(tensor)
        return name

    def add_input(self, name, elem, shape, spec):
        self.inputs.append(self.helper.make_tensor_value_info(name, elem, shape))
        self.input_specs.append(spec)

    def add_output(self, name, tensor, elem, shape):
        self.node("Identity", [tensor], name)
        self.outputs.append(self.helper.make_tensor_value_info(name, elem, shape))


def missing_spellings():
    """Every letter case of every NA-like cell dialnet reads as missing ('' 'na' 'N/A' 'NaN' 'null' ...)."""
    out = set()
    for token in MISSING:
        letters = [i for i, c in enumerate(token) if c.isalpha()]
        for mask in range(2 ** len(letters)):
            chars = list(token)
            for bit, i in enumerate(letters):
                chars[i] = chars[i].upper() if mask >> bit & 1 else chars[i].lower()
            out.add("".join(chars))
    return sorted(out)


def _pipeline_front(g, net, pre, input_name):
    """Raw inputs -> the network's inputs (of the network's dtype): the graph's inputs, encoding and scaling."""
    T = g.T
    if pre.kind == "image":
        side, pixel_max = int(pre.image_size), float(pre.pixel_max or 255)
        g.add_input(PIXELS_NAME, T.FLOAT, ["batch", side, side],
                    {"name": PIXELS_NAME, "type": "float32", "shape": ["batch", side, side], "kind": "image",
                     "pixel_max": pixel_max})
        flat = g.node("Reshape", [PIXELS_NAME, g.const([-1, side * side], "int64")])
        x = g.node("Div", [g.node("Cast", [flat], to=T.DOUBLE), g.const(pixel_max, "double")])
    elif pre.columns:
        parts = []
        used = [rule for rule in pre.columns if rule.kind != "dropped"]
        names = [rule.name for rule in used]
        if len(set(names)) != len(names):
            raise ConfigError("two feature columns have the same name", expected="one graph input per column name",
                              got=", ".join(sorted({n for n in names if names.count(n) > 1})),
                              fix="export the network alone: export_onnx(net, path, pipeline=False)")
        for rule in used:
            if rule.kind == "numeric":
                g.add_input(rule.name, T.FLOAT, ["batch", 1],
                            {"name": rule.name, "type": "float32", "shape": ["batch", 1], "kind": "number",
                             "fill": float(rule.fill)})
                x = g.node("Cast", [rule.name], to=T.DOUBLE)
                bad = g.node("Or", [g.node("IsNaN", [x]), g.node("IsInf", [x])])
                parts.append(g.node("Where", [bad, g.const([[float(rule.fill)]], "double"), x]))
                continue
            g.add_input(rule.name, T.STRING, ["batch", 1],
                        {"name": rule.name, "type": "string", "shape": ["batch", 1], "kind": "text",
                         "categories": list(rule.categories), "other": bool(rule.other), "fill": rule.fill})
            codes = {c: k for k, c in enumerate(rule.categories)}
            fill = codes.get(rule.fill, -1) if rule.fill is not None else -1
            for token in missing_spellings():
                codes[token] = fill  # dialnet reads a missing cell first, then looks its fill up
            code = g.node("LabelEncoder", [rule.name], domain="ai.onnx.ml", keys_strings=list(codes),
                          values_int64s=list(codes.values()), default_int64=-1)
            k = len(rule.categories)
            if k:
                hits = g.node("Equal", [code, g.const(np.arange(k)[None, :], "int64")])
                parts.append(g.node("Cast", [hits], to=T.DOUBLE))
            if rule.other:
                parts.append(g.node("Cast", [g.node("Equal", [code, g.const([[-1]], "int64")])], to=T.DOUBLE))
        x = parts[0] if len(parts) == 1 else g.node("Concat", parts, axis=1)
    else:
        g.add_input(input_name, T.FLOAT, ["batch", net.n_inputs],
                    {"name": input_name, "type": "float32", "shape": ["batch", net.n_inputs], "kind": "numbers"})
        x = g.node("Cast", [input_name], to=T.DOUBLE)
    keys = {"minmax": ("min", "max"), "standard": ("mean", "std")}.get(pre.scaling)
    if keys and getattr(pre, keys[0]) is not None:
        offset, spread = np.asarray(getattr(pre, keys[0]), np.float64), np.asarray(getattr(pre, keys[1]), np.float64)
        scale = spread - offset if pre.scaling == "minmax" else spread
        scale = np.where(np.abs(scale) > 1e-12, scale, 1.0)  # as Preprocessor.scale: a constant feature maps to 0
        x = g.node("Div", [g.node("Sub", [x, g.const(offset, "double")]), g.const(scale, "double")])
    return g.node("Cast", [x], to=T.DOUBLE if np.dtype(net.dtype) == np.float64 else T.FLOAT)


def _pipeline_outputs(g, net, pre, out):
    """The network's outputs -> ``label`` + ``certainties``, ``labels`` + ``certainties``, or ``value``."""
    T = g.T
    elem = T.DOUBLE if np.dtype(net.dtype) == np.float64 else T.FLOAT
    task = net.task or net._default_task()
    k = net.n_outputs
    taken = {spec["name"] for spec in g.input_specs}
    wanted = {"regression": ["value"], "multilabel": ["labels", "certainties"]}.get(task, ["label", "certainties"])
    clash = taken.intersection(wanted)
    if clash:
        raise ConfigError(f"a feature column is named like a graph output: {', '.join(sorted(clash))}",
                          expected="feature columns not named " + " or ".join(wanted), got=", ".join(sorted(clash)),
                          fix="rename the column in the CSV and train again, or export with pipeline=False")
    if task == "regression":
        value = g.node("Cast", [out], to=T.DOUBLE)
        std = 1.0 if pre.target_std is None else float(pre.target_std)
        mean = 0.0 if pre.target_mean is None else float(pre.target_mean)
        value = g.node("Add", [g.node("Mul", [value, g.const(std, "double")]), g.const(mean, "double")])
        g.add_output("value", value, T.DOUBLE, ["batch", k])
        return
    half = g.node("Cast", [g.const(0.5, "double")], to=elem)
    if task == "multilabel":
        g.add_output("labels", g.node("Cast", [g.node("GreaterOrEqual", [out, half])], to=T.INT64), T.INT64, ["batch", k])
        g.add_output("certainties", out, elem, ["batch", k])
        return
    if k == 1:
        one = g.node("Cast", [g.const(1.0, "double")], to=elem)
        certainties = g.node("Concat", [g.node("Sub", [one, out]), out], axis=1)
        index = g.node("Reshape", [g.node("Cast", [g.node("GreaterOrEqual", [out, half])], to=T.INT64),
                                   g.const([-1], "int64")])
        width = 2
    else:
        certainties, index, width = out, g.node("ArgMax", [out], axis=1, keepdims=0), k
    names = list(net.class_names) if getattr(net, "class_names", None) is not None and len(net.class_names) == width else None
    if names is not None:
        g.add_output("label", g.node("Gather", [g.const(names, "string"), index], axis=0), T.STRING, ["batch"])
    else:
        g.add_output("label", index, T.INT64, ["batch"])
    g.add_output("certainties", certainties, elem, ["batch", width])


def describe_inputs(model) -> str:
    """What an exported graph takes and gives, in words (for ``dialnet export`` to print).

    ``model`` is an ``onnx.ModelProto`` built by :func:`to_onnx_model`.
    """
    props = {p.key: p.value for p in model.metadata_props}
    outputs = ", ".join(o.name for o in model.graph.output)
    if props.get("pipeline") != "true":
        (inp,) = model.graph.input
        width = inp.type.tensor_type.shape.dim[1].dim_value
        prepared = " (encoded and scaled as in training: see the 'preprocessing' metadata)" if props.get(
            "preprocessing", "{}") != "{}" else ""
        return f"input '{inp.name}': float [N, {width}], the prepared inputs{prepared}; output '{outputs}'"
    specs = json.loads(props["inputs"])
    if specs and specs[0]["kind"] == "image":
        spec = specs[0]
        lines = [f"input '{spec['name']}': float32 [N, {spec['shape'][1]}, {spec['shape'][2]}], raw pixel values "
                 f"0..{spec['pixel_max']:g} (scaled inside the graph)"]
    elif specs and specs[0]["kind"] == "numbers":
        lines = [f"input '{specs[0]['name']}': float32 [N, {specs[0]['shape'][1]}], raw numbers (scaled inside the graph)"]
    else:
        lines = [f"{len(specs)} inputs, one per column, each of shape [N, 1]:"]
        for spec in specs:
            if spec["kind"] == "number":
                lines.append(f"  {spec['name']}: float32 number (NaN = missing, imputed with {spec['fill']:g})")
            else:
                cats = spec["categories"]
                shown = ", ".join(cats[:6]) + (f", ... ({len(cats)} in all)" if len(cats) > 6 else "")
                other = "an unseen value counts as (other)" if spec["other"] else "an unseen value sets no category"
                lines.append(f"  {spec['name']}: string, one of {shown}; {other}; empty = missing"
                             + (f" (-> {spec['fill']})" if spec["fill"] is not None else ""))
    lines.append(f"outputs: {outputs}")
    return "\n".join(lines)


def raw_rows(net, n_samples=256, seed=0):
    """Seeded raw inputs for a pipeline graph, with blanks and unseen categories: ``(feeds, dialnet_input)``.

    ``feeds`` maps the graph's input names to arrays; ``dialnet_input`` is
    what dialnet's own preprocessing takes for the same rows (text cells,
    or pixel rows in [0, 1]).
    """
    pre = preprocessor_of(net)
    rng = np.random.default_rng(seed)
    if pre.kind == "image":
        side, pixel_max = int(pre.image_size), float(pre.pixel_max or 255)
        pixels = (rng.random((n_samples, side, side)) * pixel_max).astype(np.float32)
        return {PIXELS_NAME: pixels}, pixels.reshape(n_samples, -1).astype(np.float64) / pixel_max
    if not pre.columns:
        X = rng.standard_normal((n_samples, net.n_inputs)).astype(np.float32)
        return {INPUT_NAME: X}, X.astype(np.float64)
    feeds, cells = {}, np.empty((n_samples, len(pre.columns)), dtype=object)
    position = 0
    for j, rule in enumerate(pre.columns):
        if rule.kind == "dropped":
            cells[:, j] = "id"
            continue
        if rule.kind == "numeric":
            spread = max(1.0, abs(float(rule.fill)))
            values = (float(rule.fill) + spread * rng.standard_normal(n_samples)).astype(np.float32)
            values[rng.random(n_samples) < 0.1] = np.nan
            feeds[rule.name] = values[:, None]
            cells[:, j] = ["" if np.isnan(v) else repr(float(v)) for v in values]
        else:
            choices = list(rule.categories) + ["", "NA", "a value never seen in training"]
            picked = [choices[i] for i in rng.integers(0, len(choices), n_samples)]
            feeds[rule.name] = np.array(picked, dtype=object)[:, None]
            cells[:, j] = picked
        position += rule.width
    return feeds, cells


def _dialnet_answers(net, pre, raw):
    """dialnet's own answers for raw inputs: certainties (as the graph gives them) or values."""
    X = pre.transform(raw, dtype=net.dtype)
    P = np.asarray(net.predict_proba(X), dtype=np.float64)
    task = net.task or net._default_task()
    if task == "regression":
        return pre.unscale_target(P)
    if task != "multilabel" and P.shape[1] == 1:
        return np.hstack([1 - P, P])
    return P
