"""The CLI says what it did and answers machines (issue 19, items 4 and 7):

- ``predict --format json`` (JSON Lines) and ``--format csv --out``, equal to the library's predictions;
- a model's dropped ID column is not needed at predict time;
- the Data line names the label column and its class counts, and warns when the label looks like a feature;
- ``evaluate --split test`` re-scores exactly the rows the training run held out (seed and row digest stored);
  without ``--split`` it says that it scores every row;
- ``train --class-weight balanced`` and ``--optimizer lbfgs`` reach ``fit``.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

import dialnet as dn
from dialnet import workflow
from dialnet.cli import main

SPECIES = ("Adelie", "Chinstrap", "Gentoo")


def _penguins(path, n=120, seed=1, label_last=False):
    """A penguins-like table: the label (species) first, ``year`` last, as in the real file."""
    rng = np.random.default_rng(seed)
    head = ["species", "island", "bill_length_mm", "flipper_length_mm", "body_mass_g", "year"]
    rows = []
    for i in range(n):
        s = i % 3
        rows.append([SPECIES[s], ("Biscoe", "Dream", "Torgersen")[rng.integers(3)], f"{38 + 5 * s + rng.normal():.1f}",
                     f"{190 + 15 * s + 3 * rng.normal():.0f}", f"{3700 + 800 * s + 100 * rng.normal():.0f}",
                     str(2007 + rng.integers(3))])
    if label_last:
        head = head[1:] + head[:1]
        rows = [r[1:] + r[:1] for r in rows]
    path.write_text("\n".join(",".join(r) for r in [head, *rows]) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("predictions")
    data = _penguins(d / "penguins.csv")
    model = str(d / "model.safetensors")
    assert main(["train", data, "--target", "species", "--epochs", "15", "--no-progress", "--out", model]) == 0
    return {"dir": d, "data": data, "model": model}


def test_predict_json_lines_match_the_library(trained, capsys):
    capsys.readouterr()
    assert main(["predict", trained["model"], trained["data"], "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    net = dn.load(trained["model"])
    inputs = workflow.model_inputs(net, [trained["data"]])
    P = net.predict_proba(inputs.X)
    assert len(lines) == len(P) == 120
    for k, (line, p) in enumerate(zip(lines, P)):
        assert line["input"] == f"{trained['data']} row {k + 1}"
        assert line["values"]["species"] in SPECIES and set(line["values"]) >= {"island", "year"}
        assert line["prediction"] == net.class_names[int(p.argmax())]
        assert list(line["certainty"]) == net.class_names
        assert np.allclose([line["certainty"][c] for c in net.class_names], p, rtol=0, atol=1e-7)


def test_predict_csv_out_has_the_inputs_columns_the_prediction_and_a_certainty_per_class(trained, capsys):
    out = trained["dir"] / "preds.csv"
    assert main(["predict", trained["model"], trained["data"], "--format", "csv", "--out", str(out)]) == 0
    assert f"wrote 120 predictions to {out} (csv)" in capsys.readouterr().out
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(trained["data"], newline="") as fh:
        original = list(csv.DictReader(fh))
    net = dn.load(trained["model"])
    assert list(rows[0]) == ["input", *original[0], "prediction", *(f"certainty_{c}" for c in net.class_names)]
    P = net.predict_proba(workflow.model_inputs(net, [trained["data"]]).X)
    for row, source, p in zip(rows, original, P):
        assert all(row[key] == value for key, value in source.items())
        assert row["prediction"] == net.class_names[int(p.argmax())]
        assert np.allclose([float(row[f"certainty_{c}"]) for c in net.class_names], p, rtol=0, atol=1e-7)
    assert main(["predict", trained["model"], trained["data"], "--format", "csv", "--out", trained["data"]]) == 2
    assert "is the input INPUT" in capsys.readouterr().err


def test_predict_json_for_a_regression_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 2))
    lines = ["a,b,price"] + [f"{a:.4f},{b:.4f},{3 * a - b + 10 + 0.1 * rng.normal():.4f}" for a, b in X]
    (tmp_path / "houses.csv").write_text("\n".join(lines) + "\n")
    model = str(tmp_path / "m.safetensors")
    assert main(["train", str(tmp_path / "houses.csv"), "--epochs", "5", "--no-progress", "--out", model]) == 0
    capsys.readouterr()
    assert main(["predict", model, "0.5,-1", "--format", "json"]) == 0
    line = json.loads(capsys.readouterr().out)
    net = dn.load(model)
    expected = workflow.predict_targets(net, workflow.model_inputs(net, ["0.5,-1"]).X)[0]
    assert line["values"] == {"a": "0.5", "b": "-1"} and "certainty" not in line
    assert line["prediction"] == pytest.approx(float(expected), rel=1e-12)


def test_a_dropped_id_column_is_not_needed_at_predict_time(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [f"{1000 + i},{rng.normal():.3f},{rng.normal():.3f},{i % 2}" for i in range(60)]
    (tmp_path / "t.csv").write_text("id,a,b,label\n" + "\n".join(rows) + "\n")
    model = str(tmp_path / "m.safetensors")
    assert main(["train", str(tmp_path / "t.csv"), "--epochs", "3", "--no-progress", "--out", model]) == 0
    (tmp_path / "new.csv").write_text("a,b\n0.5,-0.2\n-1.0,0.3\n")  # no id column
    (tmp_path / "with_id.csv").write_text("id,a,b\n7,0.5,-0.2\n8,-1.0,0.3\n")
    capsys.readouterr()
    outputs = []
    for inputs in (["0.5,-0.2", "-1.0,0.3"], ["7,0.5,-0.2", "8,-1.0,0.3"], [str(tmp_path / "new.csv")], [str(tmp_path / "with_id.csv")]):
        assert main(["predict", model, "--format", "json", *inputs]) == 0  # "-1.0,0.3" is a row, not an option
        outputs.append([json.loads(line)["certainty"] for line in capsys.readouterr().out.splitlines()])
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]


def test_the_data_line_names_the_label_column_and_warns_when_it_looks_like_a_feature(tmp_path, capsys):
    data = _penguins(tmp_path / "penguins.csv")  # species first, year last: the default label is the year
    assert main(["train", data, "--epochs", "1", "--no-progress", "--out", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Warning: the label column 'year' looks like a year \(2007\.\.2009\), a feature rather than "
                     r"something to predict; if the label is another column, pass --target species", out), out
    assert re.search(r"Data: penguins\.csv: .* 3 classes in label column 'year' \(2007 \d+, 2008 \d+, 2009 \d+\)", out)
    assert main(["train", data, "--target", "species", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "m2.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "Warning" not in out
    assert "3 classes in label column 'species' (Adelie 40, Chinstrap 40, Gentoo 40)" in out


@pytest.mark.parametrize("column, values, task, pattern", [
    ("customer_id", lambda i: str(i % 7), "auto", r"'customer_id' looks like an ID"),
    ("ref", lambda i: str(i), "classification", r"'ref' looks like an ID \(60 distinct values in 60 rows\)"),
    ("score", lambda i: f"{(i % 30) / 7:.3f}", "classification",
     r"'score' holds fractional numbers with \d+ distinct values: a quantity, better predicted by --task regression"),
])
def test_label_warnings(tmp_path, column, values, task, pattern):
    from dialnet import data as datasets
    from dialnet.data.labels import label_warnings

    rows = [f"{i % 5},{('red', 'blue')[i % 2]},{values(i)}" for i in range(60)]
    (tmp_path / "t.csv").write_text(f"a,color,{column}\n" + "\n".join(rows) + "\n")
    ds = datasets.load(str(tmp_path / "t.csv"), task=task)
    [warning] = label_warnings(ds)
    assert re.search(pattern, warning), warning
    assert warning.endswith("pass --target color")


def test_evaluate_split_test_rescoring_exactly_the_held_out_rows(trained, capsys):
    net = dn.load(trained["model"])
    for limit in (None, 60):
        recipe = workflow.DATA_DEFAULTS
        result = workflow.train_model(trained["data"], recipe, target="species", limit=limit)
        path = str(trained["dir"] / f"split{limit}.safetensors")
        result.net.save(path, extra_metadata=result.metadata)
        net = dn.load(path)
        test = workflow.model_data(net, trained["data"], "test")
        assert np.array_equal(test.X, result.data.X_test) and np.array_equal(test.y, result.data.y_test)
        train = workflow.model_data(net, trained["data"], "train")
        assert len(train.y) + len(test.y) == (limit or 120)  # validation rows are part of the run's training rows
    capsys.readouterr()
    assert main(["train", trained["data"], "--target", "species", "--epochs", "15", "--no-progress",
                 "--out", str(trained["dir"] / "m.safetensors")]) == 0
    accuracy = re.search(r"Test accuracy: ([\d.]+)% \((\d+) of (\d+)", capsys.readouterr().out).groups()
    assert main(["evaluate", str(trained["dir"] / "m.safetensors"), trained["data"], "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert f"Accuracy: {accuracy[0]}% ({accuracy[1]} of {accuracy[2]})" in out
    assert "test rows: 24 (the 24 rows the training run held out for testing, seed 0)" in " ".join(out.split())


def test_evaluate_without_split_says_it_scores_every_row_and_refuses_other_rows_for_split(trained, capsys, tmp_path):
    assert main(["evaluate", trained["model"], trained["data"]]) == 0
    out = capsys.readouterr().out
    assert "Note: scoring all 120 rows of penguins.csv, the training rows included (pass --split test" in out
    lines = open(trained["data"]).read().splitlines()
    (tmp_path / "penguins.csv").write_text("\n".join(lines[:-3]) + "\n")
    assert main(["evaluate", trained["model"], str(tmp_path / "penguins.csv"), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "penguins.csv is not the data this model was trained on: its rows differ" in err


def test_class_weight_and_lbfgs_reach_fit(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [f"{rng.normal() + (2 if i % 10 == 0 else 0):.3f},{rng.normal():.3f},{'rare' if i % 10 == 0 else 'common'}"
            for i in range(100)]
    (tmp_path / "imb.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    args = ["train", str(tmp_path / "imb.csv"), "--epochs", "5", "--no-progress", "--out", str(tmp_path / "m.safetensors")]
    assert main([*args, "--class-weight", "balanced"]) == 0
    assert "; class weights balanced" in capsys.readouterr().out
    assert main([*args, "--optimizer", "lbfgs"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"(?i)l-?bfgs \(full batch\)", out) and "Stopped: " in out
    (tmp_path / "reg.csv").write_text("a,y\n" + "\n".join(f"{i},{i * 0.37:.2f}" for i in range(40)) + "\n")
    assert main(["train", str(tmp_path / "reg.csv"), "--class-weight", "balanced", "--no-progress"]) == 2
    assert "--class-weight applies to classification only" in capsys.readouterr().err
