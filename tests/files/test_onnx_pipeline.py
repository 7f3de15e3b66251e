"""Deployable ONNX: a table or image model exports its whole pipeline, run here in onnxruntime on raw rows."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import dialnet as dn
from dialnet.data.preprocessing import Preprocessor
from dialnet.files.onnx import describe_inputs, missing_spellings, to_onnx_model, verify_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

COLUMNS = ["id", "age", "color", "income"]


def _table(n=200, seed=0):
    """Raw text cells of a small table: an ID, numbers with blanks, a text column with rare values and blanks."""
    rng = np.random.default_rng(seed)
    cells = np.empty((n, 4), dtype=object)
    cells[:, 0] = [f"r{i}" for i in range(n)]
    cells[:, 1] = ["" if rng.random() < 0.1 else f"{rng.normal(40, 12):.1f}" for _ in range(n)]
    colors = rng.choice(["red", "blue", "green", "teal", "plum", ""], size=n, p=[0.35, 0.3, 0.2, 0.05, 0.04, 0.06])
    cells[:, 2] = colors
    cells[:, 3] = [f"{v:.0f}" for v in rng.lognormal(10, 0.5, n)]
    return cells


def _model(cells, sizes_hidden=(8,), output="softmax", n_out=3, dtype="float32", scaling="standard", task=None, seed=0):
    pre = Preprocessor(scaling=scaling).fit(cells, COLUMNS, max_categories=3)
    net = dn.mlp([pre.n_inputs, *sizes_hidden, n_out], output=output, dtype=dtype, seed=seed)
    net.preprocessing = pre
    net.task = task or ("classification" if output == "softmax" else "binary" if output == "sigmoid" else "regression")
    return net, pre


def _feeds(cells, rules):
    feeds = {}
    for j, rule in enumerate(rules):
        if rule.kind == "numeric":
            feeds[rule.name] = np.array([[np.nan if c == "" else float(c)] for c in cells[:, j]], dtype=np.float32)
        elif rule.kind == "categorical":
            feeds[rule.name] = cells[:, j : j + 1].astype(object)
    return feeds


def _run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def _raw_rows_with_surprises(cells):
    """The training cells plus rows with a blank number, NA spellings and a category never seen."""
    extra = np.array([["x1", "", "red", "52000"], ["x2", "33.5", "", "41000"], ["x3", "61", "NA", ""],
                      ["x4", "25", "violet", "38000"], ["x5", "", "n/a", ""], ["x6", "44", "Null", "1e5"]], dtype=object)
    return np.vstack([cells, extra])


def test_table_classifier_pipeline_equals_dialnet_on_raw_rows():
    cells = _table()
    net, pre = _model(cells)
    net.class_names = ["low", "mid", "high"]
    assert [r.kind for r in pre.columns] == ["dropped", "numeric", "categorical", "numeric"]
    assert pre.columns[2].other  # teal and plum pooled as (other)
    model = to_onnx_model(net)
    assert [i.name for i in model.graph.input] == ["age", "color", "income"]  # no input for the dropped ID
    types = [i.type.tensor_type.elem_type for i in model.graph.input]
    assert types == [onnx.TensorProto.FLOAT, onnx.TensorProto.STRING, onnx.TensorProto.FLOAT]
    assert all([d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] == ["batch", 1] for i in model.graph.input)
    rows = _raw_rows_with_surprises(cells)
    got = _run(model, _feeds(rows, pre.columns))
    want = net.predict_proba(pre.transform(rows, dtype=net.dtype))
    np.testing.assert_allclose(got["certainties"], want, rtol=0, atol=1e-5)
    assert list(got["label"]) == [net.class_names[i] for i in want.argmax(axis=1)]
    # the surprising rows: imputed and pooled as dialnet does
    encoded = pre.encode(rows[-6:])[0]
    names = pre.feature_names
    assert encoded[3, names.index("color=(other)")] == 1  # violet, never seen
    assert verify_onnx(net, model)["max_abs_diff"] <= 1e-5


def test_binary_pipeline_gives_both_certainties_and_the_label():
    cells = _table(seed=1)
    net, pre = _model(cells, output="sigmoid", n_out=1)
    net.class_names = ["no", "yes"]
    got = _run(to_onnx_model(net), _feeds(_raw_rows_with_surprises(cells), pre.columns))
    p = net.predict_proba(pre.transform(_raw_rows_with_surprises(cells)))[:, 0]
    np.testing.assert_allclose(got["certainties"], np.stack([1 - p, p], axis=1), atol=1e-6)
    assert list(got["label"]) == ["yes" if v >= 0.5 else "no" for v in p]


def test_regression_pipeline_answers_in_the_targets_units():
    cells = _table(seed=2)
    net, pre = _model(cells, output="identity", n_out=1, task="regression")
    pre.fit_target(np.random.default_rng(0).normal(3e4, 5e3, 200))
    rows = _raw_rows_with_surprises(cells)
    got = _run(to_onnx_model(net), _feeds(rows, pre.columns))
    want = pre.unscale_target(net.predict_proba(pre.transform(rows)))
    assert got["value"].dtype == np.float64 and got["value"].shape == (len(rows), 1)
    np.testing.assert_allclose(got["value"], want, rtol=1e-5)


def test_float64_pipeline_is_exact_and_minmax_scaling_works():
    cells = _table(seed=3)
    net, pre = _model(cells, dtype="float64", scaling="minmax", sizes_hidden=(6, 5))
    rows = _raw_rows_with_surprises(cells)
    for j in (1, 3):  # number inputs are float32: give dialnet the same values (the rest is double, as dialnet's)
        rows[:, j] = ["" if c == "" else repr(float(np.float32(c))) for c in rows[:, j]]
    got = _run(to_onnx_model(net), _feeds(rows, pre.columns))
    np.testing.assert_allclose(got["certainties"], net.predict_proba(pre.transform(rows, dtype=np.float64)), rtol=0, atol=1e-12)
    assert list(got["label"]) == list(net.predict_proba(pre.transform(rows, dtype=np.float64)).argmax(axis=1))


def test_every_letter_case_of_na_is_missing():
    spellings = missing_spellings()
    assert {"", "NA", "na", "Na", "N/A", "NaN", "NULL", "None", "?", "-", "#N/A", "MISSING"} <= set(spellings)
    cells = _table(seed=4)
    net, pre = _model(cells)
    model = to_onnx_model(net)
    rows = np.array([["x", "30", s, "40000"] for s in ["", "NA", "nUlL", "NONE", "-", "red"]], dtype=object)
    got = _run(model, _feeds(rows, pre.columns))
    np.testing.assert_allclose(got["certainties"], net.predict_proba(pre.transform(rows)), atol=1e-6)
    assert np.allclose(got["certainties"][0], got["certainties"][1:5])  # all missing: the same fill


def test_a_model_trained_from_a_csv_exports_and_predicts_raw_rows(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "people.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "height", "city", "weight", "label"])
        for i in range(240):
            h, city = rng.normal(170, 10), rng.choice(["Oslo", "Lima", "Pune", ""])
            wt = h - 100 + rng.normal(0, 8)
            w.writerow([i, f"{h:.1f}" if rng.random() > 0.05 else "", city, f"{wt:.1f}",
                        "heavy" if wt > 72 else "light"])
    result = dn.train_model(str(path), dn.Recipe(epochs=3), target="label")
    net = result.net
    model = to_onnx_model(net)
    assert [i.name for i in model.graph.input] == ["height", "city", "weight"]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["pipeline"] == "true" and [s["name"] for s in json.loads(props["inputs"])] == ["height", "city", "weight"]
    check = verify_onnx(net, model)
    assert check["max_abs_diff"] <= 1e-5 and check["labels_agree"]
    text = describe_inputs(model)
    assert "height: float32 number (NaN = missing" in text and "city: string, one of" in text
    assert text.endswith("outputs: label, certainties")


def test_image_model_takes_raw_pixels():
    rng = np.random.default_rng(6)
    images = rng.random((50, 36))
    pre = Preprocessor(kind="image", scaling="standard").fit(images)
    net = dn.mlp([36, 10, 4], seed=0)
    net.preprocessing, net.task = pre, "classification"
    model = to_onnx_model(net)
    (inp,) = model.graph.input
    assert inp.name == "pixels" and [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 6, 6]
    pixels = (rng.random((20, 6, 6)) * 255).astype(np.float32)
    got = _run(model, {"pixels": pixels})
    want = net.predict_proba(pre.transform(pixels.reshape(20, -1).astype(np.float64) / 255))
    np.testing.assert_allclose(got["certainties"], want, atol=1e-5)
    assert list(got["label"]) == list(want.argmax(axis=1))
    assert "raw pixel values 0..255" in describe_inputs(model)


def test_pipeline_switch_and_its_errors():
    cells = _table(seed=7)
    net, pre = _model(cells)
    bare = to_onnx_model(net, pipeline=False)
    assert [i.name for i in bare.graph.input] == ["input"] and "prepared inputs" in describe_inputs(bare)
    numeric = dn.mlp([3, 4, 2], seed=0)
    numeric.preprocessing = Preprocessor(scaling="minmax").fit(np.array([[0.0, 1, 2], [4, 5, 10]]))
    assert [i.name for i in to_onnx_model(numeric).graph.input] == ["input"]  # auto: no column rules, network alone
    scaled = to_onnx_model(numeric, pipeline=True)  # raw numbers in, the scaling in the graph
    X = np.array([[1.0, 2, 3], [4, 4, 4]], dtype=np.float32)
    got = _run(scaled, {"input": X})
    np.testing.assert_allclose(got["certainties"], numeric.predict_proba(numeric.preprocessing.transform(X)), atol=1e-6)
    with pytest.raises(dn.ConfigError, match="no preprocessing"):
        to_onnx_model(dn.mlp([2, 2], seed=0), pipeline=True)
    with pytest.raises(dn.ConfigError, match="pipeline must be"):
        to_onnx_model(net, pipeline="yes")
    clash = np.array([["1", "a"], ["2", "b"], ["3", "a"]], dtype=object)
    p2 = Preprocessor().fit(clash, ["label", "color"])
    n2 = dn.mlp([p2.n_inputs, 2], seed=0)
    n2.preprocessing, n2.task = p2, "classification"
    with pytest.raises(dn.ConfigError, match="named like a graph output"):
        to_onnx_model(n2)
