"""The pipeline as library calls: splits, recipes, train_model, cross_validate, evaluate_model, a saved model's inputs."""

from __future__ import annotations

import numpy as np
import pytest

import dialnet as dn
from dialnet import workflow
from dialnet.data import splits
from dialnet.errors import ConfigError, DataError, InvalidValueError


def _table(path, n=150, seed=0):
    """Three classes from a number and a text column, with an ID column and blanks."""
    r = np.random.default_rng(seed)
    lines = ["id,size,shade,kind"]
    for i in range(n):
        k = i % 3
        size = "" if i % 17 == 0 else f"{k * 2 + r.normal(0, 0.3):.3f}"
        shade = ["dark", "mid", "light"][k] if i % 5 else r.choice(["dark", "mid", "light"])
        lines.append(f"{i},{size},{shade},{'abc'[k]}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# ------------------------------------------------------------------ splits


def test_stratified_split_keeps_each_class_share_and_its_seed():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    train, test = splits.stratified_split(y, 0.2, seed=3)
    assert np.bincount(y[test]).tolist() == [10, 6, 4] and len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == len(y)
    again = splits.stratified_split(y, 0.2, seed=3)
    assert all((a == b).all() for a, b in zip((train, test), again))
    assert not (splits.stratified_split(y, 0.2, seed=4)[1] == test).all()


def test_folds_cover_every_row_once_and_stay_balanced():
    y = np.array([0] * 23 + [1] * 12)
    folds = splits.stratified_folds(y, 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(y)))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert all(abs((y[f] == 1).mean() - 12 / 35) < 0.2 for f in folds)
    plain = splits.fold_rows(np.arange(10.0), 3, seed=0, stratify=False)
    assert sorted(np.concatenate(plain).tolist()) == list(range(10)) and [len(f) for f in plain] == [4, 3, 3]
    with pytest.raises(InvalidValueError, match="folds"):
        splits.stratified_folds(y, 1, seed=0)
    with pytest.raises(InvalidValueError, match="fraction"):
        splits.split_rows(y, 1.5, seed=0)


def test_subset_is_seeded_and_keeps_the_order():
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    Xs, ys = splits.subset(X, y, 4, seed=1)
    assert len(ys) == 4 and (np.diff(ys) > 0).all() and (Xs[:, 0] == 2 * ys).all()
    assert splits.subset(X, y, None, 0)[1] is y


# ------------------------------------------------------------------ recipes


def test_recipe_presets_and_auto_epochs():
    assert workflow.DEMO.hidden == (20, 20) and workflow.DEMO.target_certainty == 0.9
    assert workflow.CLASSIC.output_for("classification") == "sigmoid"
    assert workflow.CLASSIC.output_for("regression") == "identity" and workflow.CLASSIC.loss_for("regression") == "mse"
    from dialnet.workflow import recipe

    kw = workflow.DATA_DEFAULTS.fit_options(200, "classification")  # small data: L-BFGS on every row
    assert getattr(kw["optimizer"], "name", kw["optimizer"]) == "lbfgs" and kw["epochs"] == recipe.LBFGS_ITERATIONS and kw["validation_split"] is None
    kw = workflow.Recipe(optimizer="adam").fit_options(200, "classification")
    assert kw["epochs"] == 3334 and kw["early_stopping"] == 334  # 6 steps an epoch: at least 20,000 / 2,000 steps
    big = workflow.DATA_DEFAULTS.fit_options(100_000, "classification")
    assert big["epochs"] == 100 and big["optimizer"].name == "adam"
    assert workflow.Recipe(lr_schedule="none").lr_schedule is None and workflow.Recipe(optimizer="SGD").learning_rate == 0.1
    with pytest.raises(ConfigError, match="unknown optimizer"):
        workflow.Recipe(optimizer="adagrad")
    with pytest.raises(InvalidValueError, match="batch_size"):
        workflow.Recipe(batch_size=0)


# ------------------------------------------------------------------ training


def test_prepare_data_encodes_each_split_once_from_the_training_rows(tmp_path):
    ds = dn.data.load(_table(tmp_path / "t.csv"))
    prepared = dn.prepare_data(ds, test_split=0.2, seed=0)
    assert ds._X_train is None  # the all-rows encoding of the quick-look X_train was never made
    pre = prepared.preprocessor
    assert [r.kind for r in pre.columns] == ["dropped", "numeric", "categorical"]
    assert prepared.X_train.shape == (120, 4) and prepared.X_test.shape == (30, 4)
    np.testing.assert_allclose(prepared.X_train.mean(0), 0.0, atol=1e-6)  # standard scaling fitted on these rows
    assert "stratified, seed 0" in prepared.split_note


def test_train_model_in_one_call_then_save_and_evaluate(tmp_path):
    lines = []
    result = dn.train_model(_table(tmp_path / "t.csv"), dn.Recipe(hidden=(8,), epochs=60, lr=0.01, early_stopping=0),
                            log=lines.append)
    assert result.metrics["accuracy"] > 0.8 and result.net.class_names == ["a", "b", "c"]
    assert lines[0].startswith("Note: dropped ID-like") and any(line.startswith("Test accuracy:") for line in lines)
    result.net.save(tmp_path / "m.safetensors", extra_metadata=result.metadata)
    net = dn.load(tmp_path / "m.safetensors")
    data = dn.model_data(net, str(tmp_path / "t.csv"))
    assert data.split == "all" and len(data.y) == 150
    m = dn.evaluate_model(net, data.X, data.y)
    assert m["n"] == 150 and m["confusion"].sum() == 150 and m["correct"] == int(np.trace(m["confusion"]))
    np.testing.assert_allclose(m["recall"], np.diag(m["confusion"]) / m["confusion"].sum(1))


def test_a_table_with_columns_in_another_order_means_the_same_rows(tmp_path):
    result = dn.train_model(_table(tmp_path / "t.csv"), dn.Recipe(hidden=(4,), epochs=5, early_stopping=0))
    rows = (tmp_path / "t.csv").read_text().splitlines()
    swapped = ["kind,shade,size"] + [",".join(reversed(r.split(",")[1:])) for r in rows[1:]]
    (tmp_path / "s.csv").write_text("\n".join(swapped) + "\n")
    a = dn.model_data(result.net, str(tmp_path / "t.csv"))
    b = dn.model_data(result.net, str(tmp_path / "s.csv"))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    inputs = dn.model_inputs(result.net, ["7,1.9,mid"])  # an inline row has every column, the unused ID too
    assert inputs.X.shape == (1, 4) and inputs.labels == ["row 7,1.9,mid"]


def test_cross_validate_classes_and_regression(tmp_path):
    cv = dn.cross_validate(_table(tmp_path / "t.csv"), dn.Recipe(hidden=(8,), epochs=60, lr=0.01, early_stopping=0), k=3)
    assert cv.k == 3 and sum(f.n_test for f in cv.folds) == 150 and cv.mean > 0.8
    assert cv.summary().startswith("Mean accuracy:") and cv.rmses is None
    r = np.random.default_rng(0)
    x = r.uniform(-1, 1, 90)
    (tmp_path / "r.csv").write_text("x,y\n" + "".join(f"{v:.4f},{2 * v + 0.5:.4f}\n" for v in x))
    cv = dn.cross_validate(str(tmp_path / "r.csv"), dn.Recipe(hidden=(), epochs=100, lr=0.05, early_stopping=0), k=3)
    assert cv.task == "regression" and cv.mean > 0.9 and (cv.rmses > 0).all()
    with pytest.raises(DataError, match="more folds than samples"):
        dn.cross_validate(str(tmp_path / "r.csv"), k=100, limit=20)


def test_regression_metrics_by_hand():
    m = dn.regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0], train_mean=2.0)
    assert m["rmse"] == pytest.approx(np.sqrt(4 / 3)) and m["mae"] == pytest.approx(2 / 3)
    assert m["r2"] == pytest.approx(1 - 4 / 2) and m["baseline_rmse"] == pytest.approx(np.sqrt(2 / 3))


def test_a_saved_image_model_reads_images_and_data_sets(tmp_path):
    from PIL import Image

    result = dn.train_model(None, dn.Recipe(hidden=(8,), epochs=2, early_stopping=0), limit=200, image_size=10)
    net = result.net
    assert net.n_inputs == 100 and net.preprocessing.image_size == 10
    data = dn.model_data(net, "mnist-10k", limit=50)
    assert data.split == "test" and data.X.shape == (50, 100) and data.description.startswith("mnist-10k (test split")
    digit = (dn.data.read_idx(dn.data.BUNDLED + "/mnist-10k/t10k-images-idx3-ubyte.gz")[0])
    Image.fromarray(255 - digit).save(tmp_path / "paper.png")  # dark ink on white: inverted to match
    inputs = dn.model_inputs(net, [str(tmp_path / "paper.png")])
    assert inputs.inverted == [True] and inputs.X.shape == (1, 100)
    X, y, what = workflow.model_rows(net, "mnist-10k", 3)
    assert X.shape == (1, 100) and y.shape == (1,) and what.startswith("row 3 of mnist-10k")
    with pytest.raises(InvalidValueError, match="out of range"):
        workflow.model_rows(net, "mnist-10k", 5000)
