"""Real-world tables and image folders: regression, text columns, missing cells, CSV dialects, mixed images.

The CLI runs go through ``dialnet.cli.main`` in-process (no subprocess
start-up) on small synthetic tables with a known, learnable structure.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from dialnet import data as datasets
from dialnet import workflow
from dialnet.data import preprocessing
from dialnet.cli import main
from dialnet.data import tabular
from dialnet.errors import DataError


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


def _regression_csv(path, n=400, seed=0):
    """y = 3 sin(x1) + x2^2 + 2 [color == red] + noise, with blank cells sprinkled in."""
    r = np.random.default_rng(seed)
    x1, x2 = r.uniform(-2, 2, n), r.uniform(-2, 2, n)
    color = r.choice(["red", "green", "blue"], n)
    y = 3 * np.sin(x1) + x2**2 + 2.0 * (color == "red") + r.normal(0, 0.1, n)
    lines = ["x1,x2,color,price"]
    for i in range(n):
        a = "" if i % 19 == 0 else f"{x1[i]:.4f}"
        c = "NA" if i % 23 == 0 else color[i]
        lines.append(f"{a},{x2[i]:.4f},{c},{y[i]:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_regression_csv_train_evaluate_predict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _regression_csv(tmp_path / "houses.csv")
    out = _run(capsys, "train", "houses.csv", "--no-progress", "--out", "h.safetensors")
    assert "regression target 'price'" in out and "identity output" in out and "loss mse" in out
    assert re.search(r"Note: imputed \d+ missing cells in the training rows", out)
    r2 = float(re.search(r"Test RMSE [\d.e+-]+, MAE [\d.e+-]+, R\^2 ([-\d.]+)", out).group(1))
    assert r2 > 0.8, out
    rmse, base = map(float, re.search(r"Test RMSE ([\d.e+-]+),.*training mean: RMSE ([\d.e+-]+)", out).groups())
    assert rmse < 0.5 * base

    import dialnet as dn

    net = dn.load("h.safetensors")
    assert net.task == "regression" and not net.class_names
    assert net.preprocessing["target_std"] > 0 and [c["kind"] for c in net.preprocessing["columns"]] == [
        "numeric", "numeric", "categorical"]
    assert "color=red" in net.preprocessing["feature_names"]

    out = _run(capsys, "evaluate", "h.safetensors", "houses.csv")
    assert float(re.search(r"R\^2 ([-\d.]+)", out).group(1)) > 0.8

    # columns by name in another order, an unseen category and blanks: still a number each
    (tmp_path / "new.csv").write_text("color,x2,x1\nred,1.0,1.0\nblue,1.0,1.0\npurple,,\n")
    out = _run(capsys, "predict", "h.safetensors", "new.csv", "1.0,1.0,red")
    values = [float(v) for v in re.findall(r"price = ([-\d.e+]+)", out)]
    assert len(values) == 4 and all(np.isfinite(values))
    truth = 3 * np.sin(1.0) + 1.0
    assert abs(values[0] - (truth + 2)) < 0.6 and abs(values[1] - truth) < 0.6  # red adds 2
    assert values[3] == pytest.approx(values[0], abs=1e-4)  # inline row == the same row from the file


def test_regression_cross_validation(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _regression_csv(tmp_path / "h.csv", n=200)
    out = _run(capsys, "train", "h.csv", "--cv", "3", "--epochs", "60")
    assert "3-fold cross-validation (seed 0)" in out and len(re.findall(r"fold \d/3: R\^2", out)) == 3
    assert float(re.search(r"Mean R\^2: ([-\d.]+)", out).group(1)) > 0.5


@pytest.mark.parametrize(
    "labels, task",
    [
        (["cat", "dog", "cat", "dog"], "classification"),
        (["1.5", "2.0", "3.25", "1.5"], "regression"),
        (["0", "1", "2"] * 10, "classification"),
        ([str(v) for v in range(30)] * 2, "regression"),  # 30 distinct whole numbers: > 20
        ([str(v) for v in range(10)], "regression"),  # 10 distinct in 10 rows: never repeated
        (["0", "1"], "classification"),
        (["3", "7", "7", "3", "5", "5"], "classification"),
    ],
)
def test_auto_task_rule(labels, task):
    assert tabular.detect_task(labels) == task


def test_forced_task():
    assert tabular.detect_task(["1", "2", "1", "2"], "regression") == "regression"
    assert tabular.detect_task(["1.5", "2.5"], "classification") == "classification"
    with pytest.raises(DataError, match="not numeric, so it cannot be a regression target"):
        tabular.detect_task(["a", "b"], "regression")


def test_categorical_and_missing_end_to_end(tmp_path, capsys, monkeypatch):
    """A classification table with a text column, an ID column, blanks and a missing label."""
    monkeypatch.chdir(tmp_path)
    r = np.random.default_rng(1)
    n = 300
    lines = ["customer_id,age,plan,city,churn"]
    for i in range(n):
        plan = r.choice(["basic", "pro", "max"])
        age = r.integers(18, 80)
        churn = "yes" if (plan == "basic") != (age > 50) else "no"
        city = r.choice(["Oslo", "Lima", "Pune"]) if i % 7 else ""
        age_cell = "?" if i % 11 == 0 else str(age)
        label = "" if i == 5 else churn
        lines.append(f"C{1000 + i},{age_cell},{plan},{city},{label}")
    (tmp_path / "churn.csv").write_text("\n".join(lines) + "\n")
    out = _run(capsys, "train", "churn.csv", "--no-progress", "--out", "c.safetensors")
    assert "dropped 1 rows without a label (the first on line 7)" in out
    assert "dropped ID-like column(s)" in out and "'customer_id'" in out
    assert "8 inputs (from 3 columns, 2 of them text, one-hot encoded), 2 classes" in out
    assert float(re.search(r"Test accuracy: ([\d.]+)%", out).group(1)) > 80.0
    (tmp_path / "ask.csv").write_text("age,plan,city\n30,basic,Oslo\n70,basic,Tokyo\n30,gold,\n,pro,Lima\n")
    out = _run(capsys, "predict", "c.safetensors", "ask.csv")
    lines = out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("ask.csv row 1: yes") and lines[1].startswith("ask.csv row 2: no")


def test_column_rules_are_learned_on_training_rows_only():
    cells = np.array([["1", "a"], ["", "b"], ["3", ""], ["5", "a"]], dtype=object)
    cols, _ = preprocessing.fit_columns(cells, ["n", "t"])
    assert cols[0] == {"name": "n", "kind": "numeric", "fill": 3.0}
    assert cols[1]["categories"] == ["a", "b", "(missing)"]
    X, imputed = preprocessing.encode_columns(cols, np.array([["", "zzz"], ["2", ""]], dtype=object))
    np.testing.assert_array_equal(X, [[3, 0, 0, 0], [2, 0, 0, 1]])  # unseen -> all zeros; blank -> (missing)
    assert imputed == 2
    many = np.array([[f"v{i % 60}"] for i in range(120)], dtype=object)
    cols, notes = preprocessing.fit_columns(many, ["big"], max_categories=50)
    assert len(cols[0]["categories"]) == 50 and cols[0]["other"] and "(other)" in notes[0]
    assert preprocessing.encoded_names(cols)[-1] == "big=(other)"


@pytest.mark.parametrize(
    "raw",
    [
        "a;b;label\r\n1,5;2;x\r\n3,5;4;y\r\n",  # semicolons, Windows line endings
        "a\tb\tlabel\n1.5\t2\tx\n3.5\t4\ty\n\n\n",  # tabs, blank trailing lines
        "\ufeffa,b,label\n1.5,2,x\n3.5,4,y\n",  # UTF-8 BOM
        'a,b,label\n1.5,"2",x\n3.5,4,"y"\n',  # quoted fields
        'name,b,label\n"Smith, J",2,x\n"Doe, A",4,y\n',  # delimiter inside quotes
    ],
)
def test_csv_dialects(tmp_path, raw):
    p = tmp_path / "t.csv"
    p.write_bytes(raw.encode("utf-8"))
    ds = datasets.load(str(p))
    assert ds.class_names == ["x", "y"] and ds.target == "label" and ds.cells.shape == (2, 2)
    assert ds.columns[1] == {"name": "b", "kind": "numeric", "fill": 3.0}


def test_ragged_row_names_its_file_line(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("a,b,label\n1,2,x\n\n3,4,y\n5,6\n")
    with pytest.raises(DataError, match=r"row 5 of r.csv has 2 columns"):
        datasets.load(str(p))


def test_mixed_image_folder(tmp_path, capsys):
    from PIL import Image

    r = np.random.default_rng(0)
    root = tmp_path / "pics"
    for c, name in enumerate(("dark", "light")):
        os.makedirs(root / name)
        for i in range(4):
            shade = 40 + 170 * c
            h, w = 20 + 3 * i, 30 - 2 * i
            rgb = np.clip(shade + r.normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(rgb, "RGB").save(root / name / f"rgb{i}.jpg")
            rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)])
            Image.fromarray(rgba, "RGBA").save(root / name / f"rgba{i}.png")
            Image.fromarray(rgb, "RGB").convert("P").save(root / name / f"pal{i}.png")
            Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(root / name / f"deep{i}.png")  # 16-bit
        (root / name / "labels.txt").write_text("not an image")
    ds = datasets.load(str(root), image_size=8)
    assert ds.X_train.shape == (32, 64) and ds.class_names == ["dark", "light"]
    assert any("skipped 2 non-image file(s)" in n for n in ds.notes)
    means = [ds.X_train[ds.y_train == k].mean() for k in (0, 1)]
    assert abs(means[0] - 40 / 255) < 0.05 and abs(means[1] - 210 / 255) < 0.05  # 16-bit not clipped to white
    for f in (root / "dark").iterdir():
        if f.suffix in (".png", ".jpg"):
            img = datasets.load_image(str(f), 8)
            assert abs(img.mean() - 40 / 255) < 0.05, f.name
    (root / "dark" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"cannot read .*broken.png as an image"):
        datasets.load(str(root), image_size=8)


def test_data_defaults_differ_from_the_demo(tmp_path, capsys, monkeypatch):
    from dialnet.cli import train

    monkeypatch.chdir(tmp_path)
    _regression_csv(tmp_path / "h.csv", n=60)
    out = _run(capsys, "train", "h.csv", "--epochs", "2", "--no-progress")
    hidden = "-".join(map(str, workflow.DATA_DEFAULTS.hidden))
    assert f"Network 6-{hidden}-1 (relu hidden, identity output)" in out and "L-BFGS" in out  # 60 rows: small data
    assert "target certainty" not in out
    assert train.DEMO["layers"] == "20,20" and train.DEMO["activation"] == "sigmoid" and train.DEMO["target_certainty"] == "0.9"
