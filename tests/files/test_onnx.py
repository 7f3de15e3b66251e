"""ONNX export: onnxruntime must compute what dialnet computes, and bad input must say so."""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest

import dialnet as dn
from dialnet.cli import main
from dialnet.core.layers import Activation, Sigmoid

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from dialnet.files.onnx import to_onnx_model, verify_onnx  # noqa: E402

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OUTPUTS = ["softmax", "sigmoid", "identity", "tanh", "relu", "leaky_relu"]
SHAPES = [[3, 2], [4, 8, 3], [10, 16, 16, 5], [7, 5, 2], [6, 32, 4], [2, 3, 3, 3, 2]]
CASES = [(act, out, SHAPES[k % len(SHAPES)]) for k, (act, out) in enumerate(itertools.product(HIDDEN, OUTPUTS))]


def run_onnx(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})[0]


@pytest.mark.parametrize(("activation", "output", "sizes"), CASES, ids=[f"{a}-{o}-{'x'.join(map(str, s))}" for a, o, s in CASES])
def test_onnxruntime_matches_dialnet_float32(activation, output, sizes):
    net = dn.mlp(sizes, activation=activation, output=output, seed=len(sizes) * 7 + sizes[-1])
    model = to_onnx_model(net)
    rng = np.random.default_rng(sizes[0])
    for n in (1, 1000):
        X = (2 * rng.standard_normal((n, sizes[0]))).astype(np.float32)
        got = run_onnx(model, X)
        assert got.dtype == np.float32 and got.shape == (n, sizes[-1])
        np.testing.assert_allclose(got, net.predict_proba(X), rtol=0, atol=1e-5)


def test_dropout_is_left_out_and_leaky_alpha_is_kept():
    net = dn.Network([dn.Dense(6, 12), dn.LeakyReLU(0.3), dn.Dropout(0.5), dn.Dense(12, 4), dn.Softmax()], seed=3)
    model = to_onnx_model(net)
    assert [n.op_type for n in model.graph.node] == ["Gemm", "LeakyRelu", "Identity", "Gemm", "Softmax"]
    assert onnx.helper.get_attribute_value(model.graph.node[1].attribute[0]) == pytest.approx(0.3)
    X = np.random.default_rng(1).standard_normal((1000, 6)).astype(np.float32) * 3
    np.testing.assert_allclose(run_onnx(model, X), net.predict_proba(X), rtol=0, atol=1e-5)


def test_float64_network_exports_as_double():
    net = dn.Network(
        [dn.Dense(5, 9), dn.Sigmoid(), dn.Dense(9, 9), dn.Tanh(), dn.Dense(9, 8), dn.ReLU(),
         dn.Dense(8, 8), dn.LeakyReLU(0.1), dn.Dense(8, 6), dn.Identity(), dn.Dense(6, 3), dn.Softmax()],
        seed=0, dtype="float64",
    )
    model = to_onnx_model(net)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    X = np.random.default_rng(2).standard_normal((1000, 5)) * 4
    got = run_onnx(model, X)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, net.predict_proba(X), rtol=0, atol=1e-12)
    assert verify_onnx(net, model)["max_abs_diff"] <= 1e-12


def test_file_has_dynamic_batch_names_metadata_and_opset(tmp_path):
    net = dn.mlp([4, 6, 3], activation="tanh", output="softmax", seed=0)
    net.class_names = ["setosa", "versicolor", "virginica"]
    rows = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0]])
    net.preprocessing = dn.Preprocessor(scaling="standard").fit(rows)
    path = tmp_path / "iris.onnx"
    assert dn.export_onnx(net, path) == path
    assert sorted(os.listdir(tmp_path)) == ["iris.onnx"]  # no temp file left behind
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert model.ir_version == 7
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "output"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 4]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 3]
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["class_names"]) == ["setosa", "versicolor", "virginica"]
    stored = json.loads(props["preprocessing"])
    assert stored == net.preprocessing.to_config()  # the model file's JSON, the same constants
    assert (stored["scaling"], stored["mean"], stored["std"]) == ("standard", [2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0, 1.0])
    assert props["dialnet_version"] == dn.__version__
    assert (props["input_name"], props["output_name"], props["output_kind"]) == ("input", "output", "certainties")
    assert verify_onnx(net, path, n_samples=1)["max_abs_diff"] <= 1e-6


def test_export_replaces_old_file_and_a_failed_export_leaves_it(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    dn.export_onnx(dn.mlp([2, 2], output="sigmoid", seed=0), path, opset=17)
    assert onnx.load(str(path)).opset_import[0].version == 17
    before = path.read_bytes()

    class Square(Activation):
        name = "square"

        def forward(self, z, training=False):
            return z * z

    with pytest.raises(dn.ConfigError, match="layer 1 \\(Square\\) has no ONNX equivalent"):
        dn.export_onnx(dn.Network([dn.Dense(2, 2), Square()]), path)
    assert path.read_bytes() == before


def test_subclass_of_a_known_layer_is_not_silently_exported():
    class ScaledSigmoid(Sigmoid):
        def forward(self, z, training=False):
            return 2 * super().forward(z, training)

    with pytest.raises(dn.ConfigError, match="ScaledSigmoid"):
        to_onnx_model(dn.Network([dn.Dense(3, 2), ScaledSigmoid()]))


@pytest.mark.parametrize("opset", [11, 12, 10_000, "13", True])
def test_bad_opset(opset):
    with pytest.raises(dn.ConfigError, match="opset"):
        to_onnx_model(dn.mlp([2, 2], seed=0), opset=opset)


def test_bad_arguments(tmp_path):
    net = dn.mlp([2, 3, 2], seed=0)
    with pytest.raises(dn.ConfigError, match="only a dialnet Network"):
        to_onnx_model([dn.Dense(2, 2)])
    with pytest.raises(dn.ConfigError, match="must differ"):
        to_onnx_model(net, input_name="x", output_name="x")
    with pytest.raises(dn.ModelFileError, match="does not exist"):
        dn.export_onnx(net, tmp_path / "missing" / "m.onnx")
    with pytest.raises(dn.ModelFileError, match="folder"):
        dn.export_onnx(net, tmp_path)


def _check_one_line_error(capsys, code, *words):
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("dialnet: error:") and lines[1].startswith("  hint:") and len(lines) == 2
    for word in words:
        assert word in lines[0]


def test_cli_export_onnx(tmp_path, capsys):
    model_path = tmp_path / "m.safetensors"
    dn.mlp([5, 8, 3], activation="relu", seed=0).save(model_path)
    out = tmp_path / "m.onnx"
    assert main(["export", str(model_path), "--onnx", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out} (ONNX opset 13" in text and "largest difference" in text
    X = np.random.default_rng(0).standard_normal((10, 5)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": X})[0], dn.load(model_path).predict_proba(X), atol=1e-6)


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    model_path = tmp_path / "m.safetensors"
    dn.mlp([3, 2], seed=0).save(model_path)
    _check_one_line_error(capsys, main(["export", str(tmp_path / "nope.safetensors"), "--onnx", str(tmp_path / "a.onnx")]), "does not exist")
    _check_one_line_error(capsys, main(["export", str(model_path), "--onnx", str(tmp_path / "no" / "dir" / "a.onnx")]), "does not exist")
    _check_one_line_error(capsys, main(["export", str(model_path), "--onnx", str(tmp_path)]), "folder")
    _check_one_line_error(capsys, main(["export", str(model_path)]), "nothing to export")
    _check_one_line_error(capsys, main(["export", str(model_path), "--onnx", str(tmp_path / "a.onnx"), "--opset", "9"]), "opset")
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]
