"""The Preprocessor: fit on training rows, transform, and the model file's JSON round trip (old files included)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import dialnet as dn
from dialnet.data.columns import ColumnRule
from dialnet.data.preprocessing import Preprocessor, as_preprocessor, image_side
from dialnet.errors import ConfigError, ModelFileError, ShapeError

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "files" / "fixtures" / "v0.1.0"


def _cells():
    return np.array([["1", "red", "7"], ["", "blue", "8"], ["3", "red", "9"], ["5", "", "10"]], dtype=object)


def test_fit_transform_learns_columns_then_scaling_on_the_training_rows():
    pre = Preprocessor(scaling="minmax", target="y")
    X = pre.fit_transform(_cells(), ["n", "color", "id"], dtype=np.float64)
    assert [r.kind for r in pre.columns] == ["numeric", "categorical", "numeric"]
    assert pre.columns[0].fill == 3.0 and pre.columns[1].categories == ("blue", "red", "(missing)")
    assert pre.feature_names == ["n", "color=blue", "color=red", "color=(missing)", "id"] and pre.n_inputs == 5
    assert X.shape == (4, 5) and X.min() == 0.0 and X.max() == 1.0
    assert any("imputed 2 missing cells" in note for note in pre.notes)
    # a test row: unseen category -> no input, blank number -> the training median, all by the training constants
    row = pre.transform(np.array([["", "green", "7"]], dtype=object), np.float64)
    np.testing.assert_allclose(row, [[0.5, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(pre.transform(_cells(), np.float64), X)  # cells again: the same numbers


def test_numbers_and_images():
    X = np.random.default_rng(0).random((30, 16)) * 0.5
    pre = Preprocessor(kind="image", scaling="minmax", background=0.1).fit(X)
    assert pre.image_size == 4 and pre.pixel_max == 255 and pre.min.ndim == 0  # one constant for all pixels
    assert pre.transform(X).dtype == np.float32 and pre.transform(X).max() == pytest.approx(1.0)
    std = Preprocessor(scaling="standard").fit(X)
    np.testing.assert_allclose(std.transform(X, np.float64).mean(0), 0.0, atol=1e-12)
    with pytest.raises(ShapeError, match="different number of features"):
        std.transform(X[:, :3])
    with pytest.raises(ConfigError, match="unknown scaling"):
        Preprocessor(scaling="log")
    with pytest.raises(ConfigError, match="unknown preprocessing kind"):
        Preprocessor(kind="audio")


def test_regression_target_constants():
    y = np.array([10.0, 20.0, 30.0])
    pre = Preprocessor().fit_target(y)
    np.testing.assert_allclose(pre.scale_target(y), [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    np.testing.assert_allclose(pre.unscale_target(pre.scale_target(y)), y)
    assert Preprocessor().fit_target(np.ones(4)).target_std == 1.0  # a constant target is not divided by 0


def test_config_round_trip_is_the_saved_json():
    pre = Preprocessor(scaling="standard", target="price")
    pre.fit_transform(_cells(), ["n", "color", "id"])
    pre.fit_target([1.0, 2.0, 4.0, 8.0])
    config = pre.to_config()
    assert list(config)[:4] == ["version", "input", "scaling", "mean"]
    assert json.loads(json.dumps(config)) == config
    back = Preprocessor.from_config(json.loads(json.dumps(config)), n_inputs=5)
    assert back == pre and back.to_config() == config
    assert back["target"] == "price" and back.get("image_size") is None and "columns" in back  # reads like the JSON
    cells = _cells()
    np.testing.assert_array_equal(back.transform(cells), pre.transform(cells))


def test_unknown_keys_are_kept_and_written_back():
    config = {"version": 1, "input": "table", "scaling": "none", "made_by": {"tool": "x"}}
    assert Preprocessor.from_config(config).to_config() == config
    assert as_preprocessor({}) is None and as_preprocessor(None) is None


@pytest.mark.parametrize(
    "config, pattern",
    [
        ([1, 2], "not a JSON object"),
        ({"scaling": "log"}, "unknown scaling"),
        ({"input": "audio"}, "unknown input kind"),
        ({"version": 2}, "version"),
        ({"scaling": "minmax", "min": [0.0], "max": [1.0]}, "has 1 values"),
        ({"scaling": "standard", "mean": ["x", 1], "std": [1, 1]}, "finite numbers"),
        ({"scaling": "minmax", "min": [0.0, float("nan")], "max": [1.0, 1.0]}, "finite numbers"),
        ({"input": "image", "image_size": 3, "scaling": "none"}, "image size"),
        ({"input": "image", "image_size": True}, "image size"),
        ({"scaling": "none", "feature_names": ["a"]}, "feature_names"),
        ({"columns": [{"name": "a", "kind": "numeric", "fill": "x"}]}, "column rules"),
        ({"columns": [{"name": "a", "kind": "numeric", "fill": 1.0}]}, "do not match the input width"),
        ({"target_std": "wide"}, "target_std"),
        ({"target": ["a"]}, "target"),
    ],
)
def test_from_config_refuses_bad_values(config, pattern):
    with pytest.raises(ModelFileError, match=pattern) as info:
        Preprocessor.from_config(config, n_inputs=2, name="m.safetensors")
    assert "m.safetensors" in str(info.value) and info.value.fix


def test_a_model_file_with_bad_preprocessing_is_refused_when_loaded(tmp_path):
    from dialnet.files import modelfile

    net = dn.mlp([2, 3, 2], seed=0)
    meta = modelfile.network_metadata(net)
    meta["preprocessing"] = {"scaling": "minmax", "min": [0.0], "max": [1.0]}
    (tmp_path / "m.safetensors").write_bytes(modelfile.pack(modelfile.network_tensors(net), meta))
    with pytest.raises(ModelFileError, match="unusable preprocessing"):
        dn.load(tmp_path / "m.safetensors")


def test_the_network_attribute_is_saved_and_rebuilt(tmp_path):
    X = np.random.default_rng(0).normal(50, 10, (40, 3))
    net = dn.mlp([3, 4, 2], seed=0)
    net.preprocessing = Preprocessor(scaling="standard", feature_names=["a", "b", "c"]).fit(X)
    net.save(tmp_path / "m.safetensors")
    back = dn.load(tmp_path / "m.safetensors")
    assert isinstance(back.preprocessing, Preprocessor) and back.preprocessing == net.preprocessing
    np.testing.assert_array_equal(back.preprocessing.transform(X), net.preprocessing.transform(X))
    net.preprocessing = {"scale": 1.0}  # a plain JSON object set by hand is saved as it is
    net.save(tmp_path / "d.safetensors")
    assert dn.load(tmp_path / "d.safetensors").preprocessing.to_config()["scale"] == 1.0
    plain = dn.mlp([3, 2], seed=0)
    plain.save(tmp_path / "p.safetensors")
    assert dn.load(tmp_path / "p.safetensors").preprocessing is None


@pytest.mark.parametrize("name", ["table", "digits"])
def test_files_written_before_the_preprocessor_round_trip_exactly(name):
    """The JSON that dialnet 0.1 wrote comes back key for key."""
    from dialnet.files import modelfile

    _tensors, meta = modelfile.read_file(FIXTURES / f"{name}_model.safetensors")
    net = dn.load(FIXTURES / f"{name}_model.safetensors")
    assert isinstance(net.preprocessing, Preprocessor)
    assert net.preprocessing.to_config() == meta["preprocessing"]
    assert list(net.preprocessing.to_config()) == list(meta["preprocessing"])


def test_one_image_size_rule():
    assert image_side(625) == 25 and image_side(784) == 28 and image_side(16) == 4
    assert image_side(9) is None and image_side(10) is None  # too small, or not a square
    assert image_side(625, Preprocessor(kind="image", image_size=25)) == 25
    table = Preprocessor(columns=[ColumnRule(f"x{i}", "numeric", 0.0) for i in range(16)])
    assert image_side(16, table) is None  # a table's named columns are no picture
    assert image_side(16, Preprocessor(scaling="minmax")) == 4  # scaling alone says nothing
