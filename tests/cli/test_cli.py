"""The `dialnet train / evaluate / predict` commands, end to end, as a user runs them.

Each test runs ``python -m dialnet.cli`` in a subprocess inside a temporary
folder, with its download cache pointed there too. Runs are kept small
(``--limit``, few epochs) except one: the real no-argument ``dialnet train``.
"""

from __future__ import annotations

import os
import pathlib
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from dialnet import workflow

VARIETIES = ("Kama", "Rosa", "Canadian")


def seeds_like_csv(path, n_per_class=70, seed=0, labels=("1", "2", "3")):
    """A CSV shaped like UCI wheat-seeds: 7 kernel measurements, 3 varieties, 70 rows each.

    Class means and spreads follow the published data; one "kernel size"
    factor drives area, perimeter, length and width together, as in real
    kernels, so the features are correlated.
    """
    rng = np.random.default_rng(seed)
    means = np.array([[14.33, 14.29, 0.880, 5.51, 3.24, 2.67, 5.09],
                      [18.33, 16.14, 0.884, 6.15, 3.68, 3.64, 6.02],
                      [11.87, 13.25, 0.849, 5.23, 2.85, 4.79, 5.12]])
    spreads = np.array([[1.22, 0.58, 0.016, 0.23, 0.18, 1.17, 0.26],
                        [1.44, 0.62, 0.015, 0.27, 0.19, 1.18, 0.25],
                        [0.72, 0.34, 0.022, 0.14, 0.15, 1.34, 0.16]])
    loading = np.array([0.95, 0.95, 0.3, 0.85, 0.85, 0.0, 0.7])
    lines = ["area,perimeter,compactness,length,width,asymmetry,groove,variety"]
    for c in range(3):
        size = rng.standard_normal((n_per_class, 1))
        z = loading * size + np.sqrt(1 - loading**2) * rng.standard_normal((n_per_class, 7))
        lines += [",".join(f"{v:.4f}" for v in row) + f",{labels[c]}" for row in means[c] + spreads[c] * z]
    order = rng.permutation(len(lines) - 1) + 1
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join([lines[0]] + [lines[i] for i in order]) + "\n")
    return str(path)


def dialnet(*args, cwd, env_extra=None, timeout=120):
    env = dict(os.environ, DIALNET_CACHE=os.path.join(str(cwd), "cache"), COLUMNS="120")
    env.pop("DIALNET_DATA_URL", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "dialnet.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def _percent(text, label):
    return float(re.search(label + r": ([\d.]+)%", text).group(1))


# ------------------------------------------------------------------ digits: train -> evaluate -> predict


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A small model trained on 1,000 of the bundled digits (the CLI's own defaults otherwise)."""
    folder = tmp_path_factory.mktemp("digits")
    out = ok(dialnet("train", "--limit", "1000", "--epochs", "15", "--no-progress", "--out", "digits.safetensors", cwd=folder))
    return folder, out


def test_train_limited_run_reports_and_saves(digits):
    import dialnet as dn

    folder, out = digits
    assert "Data: mnist-10k: 1,000 training / 1,000 test samples, 625 inputs (25x25 images)" in out
    assert "Network 625-20-20-10 (sigmoid hidden, softmax output): 13,150 dials" in out
    assert re.search(r"Stopped: (target certainty|early stopping|finished)", out)
    assert _percent(out, "Test accuracy") > 75.0
    assert re.search(r"\d\.\d\d (zero|one|two|three|four|five|six|seven|eight|nine)", out)  # the certainty table
    net = dn.load(folder / "digits.safetensors")
    assert net.class_names[8] == "eight" and net.preprocessing["image_size"] == 25
    assert net.preprocessing["input"] == "image" and net.preprocessing["background"] < 0.1


def test_evaluate_prints_accuracy_per_class_and_confusion(digits):
    folder, train_out = digits
    out = ok(dialnet("evaluate", "digits.safetensors", "mnist-10k", cwd=folder))
    assert "test rows: 2,000" in out and "Per class" in out and "Confusion matrix" in out
    assert re.search(r"eight\s+│\s+0\.\d{3}\s+│\s+0\.\d{3}\s+│\s+169", out)  # precision, recall, support
    assert _percent(out, "Accuracy") > 75.0


def test_predict_image_files_with_class_names(digits, tmp_path):
    from PIL import Image

    from dialnet import data as datasets

    folder, _ = digits
    imgs = datasets.read_idx(os.path.join(datasets.BUNDLED, "mnist-10k", "t10k-images-idx3-ubyte.gz"))
    Image.fromarray(imgs[0]).save(tmp_path / "a.png")
    Image.fromarray(255 - imgs[0]).resize((140, 140)).save(tmp_path / "paper.jpg")  # dark ink on white paper
    out = ok(dialnet("predict", "digits.safetensors", tmp_path / "a.png", tmp_path / "paper.jpg", "--top", "2", cwd=folder))
    lines = out.strip().splitlines()
    assert len(lines) == 2
    first, second = (re.match(r".*: (\w+)  \((\d\.\d\d) (\w+), (\d\.\d\d) (\w+)\)", line) for line in lines)
    assert first.group(1) == first.group(3) and float(first.group(2)) >= float(first.group(4))
    assert "inverted" in lines[1] and second.group(1) == first.group(1)  # the same digit, once inverted to match


# ------------------------------------------------------------------ CSV: the classic recipe and string labels


def test_classic_recipe_cross_validation(tmp_path):
    seeds_like_csv(tmp_path / "seeds.csv")
    out = ok(dialnet("train", "seeds.csv", "--classic", "--cv", "3", "--epochs", "40", cwd=tmp_path))
    assert "Network 7-5-3 (sigmoid hidden, sigmoid output): 58 dials; loss mse, sgd lr 0.3, batch 1" in out
    assert len(re.findall(r"fold \d/3: accuracy", out)) == 3 and "3-fold cross-validation (stratified, seed 0)" in out
    assert _percent(out, "Mean accuracy") > 85.0
    assert not os.path.exists(tmp_path / "model.safetensors")  # cross-validation saves nothing


def test_csv_train_predict_evaluate_with_string_labels(tmp_path):
    csv = seeds_like_csv(tmp_path / "wheat.csv", labels=VARIETIES)
    out = ok(dialnet("train", "wheat.csv", "--no-progress", "--out", "wheat.safetensors", cwd=tmp_path))
    assert "168 training / 42 test samples, 7 inputs (from 7 columns), 3 classes" in out
    hidden = "-".join(map(str, workflow.DATA_DEFAULTS.hidden))
    assert f"Network 7-{hidden}-3 (relu hidden, softmax output)" in out and "target certainty" not in out  # DATA defaults
    assert "3 classes in label column 'variety' (Canadian 70, Kama 70, Rosa 70)" in out
    assert _percent(out, "Test accuracy") > 85.0
    rows = pathlib.Path(csv).read_text(encoding="utf-8").splitlines()
    (tmp_path / "two.csv").write_text("\n".join(rows[:3]) + "\n")  # header + 2 rows, label column included
    inline = rows[1].rsplit(",", 1)[0]
    out = ok(dialnet("predict", "wheat.safetensors", "two.csv", inline, "--top", "0", cwd=tmp_path))
    lines = out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("two.csv row 1: ")
    assert all(sorted(re.findall(r"\d\.\d\d (\w+)", line)) == sorted(VARIETIES) for line in lines)
    assert lines[0].split(": ")[1] == lines[2].split(": ")[1]  # the same row, from the file and inline
    out = ok(dialnet("evaluate", "wheat.safetensors", "wheat.csv", cwd=tmp_path))
    assert "all rows: 210" in out and _percent(out, "Accuracy") > 85.0 and "Canadian" in out


def test_image_folder_training(tmp_path):
    from PIL import Image

    r = np.random.default_rng(0)
    for c, name in enumerate(("dark", "light")):
        os.makedirs(tmp_path / "shades" / name)
        for i in range(10):
            Image.fromarray((r.random((12, 12)) * 80 + 160 * c).astype(np.uint8)).save(tmp_path / "shades" / name / f"{i}.png")
    out = ok(dialnet("train", "shades", "--image-size", "6", "--layers", "4", "--no-progress", "--out", "s.safetensors", cwd=tmp_path))
    assert "16 training / 4 test samples, 36 inputs (6x6 images), 2 classes" in out
    out = ok(dialnet("predict", "s.safetensors", tmp_path / "shades" / "light", cwd=tmp_path))
    assert out.count(": light") == 10


# ------------------------------------------------------------------ the real thing


@pytest.mark.slow
def test_default_train_reaches_92_percent(tmp_path):
    """`dialnet train` with no argument: bundled digits, 625-20-20-10 sigmoid net, >= 92% on the 2,000 test digits."""
    out = ok(dialnet("train", cwd=tmp_path, timeout=300))
    assert "Network 625-20-20-10 (sigmoid hidden, softmax output): 13,150 dials" in out
    assert re.search(r"Stopped: (target certainty 0.9 reached|early stopping|finished)", out)
    assert _percent(out, "Test accuracy") >= 92.0
    assert os.path.isfile(tmp_path / "model.safetensors")


# ------------------------------------------------------------------ bad input: one line, a hint, no traceback


def _dead_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bad_inputs(tmp_path):
    from PIL import Image
    from safetensors.numpy import save_file

    seeds_like_csv(tmp_path / "seeds.csv")
    (tmp_path / "text.csv").write_text("a,b,label\n1,,x\n2,NA,y\n")
    os.makedirs(tmp_path / "one" / "cats")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "one" / "cats" / "c.png")
    save_file({"w": np.zeros((2, 2), np.float32)}, str(tmp_path / "foreign.safetensors"))
    (tmp_path / "notes.safetensors").write_text("hello, I am not a model")
    return {
        "missing data": (["train", "missing.csv"], "no such data set or file"),
        "empty column": (["train", "text.csv"], r"column 'b' of text.csv has no values"),
        "certainty on regression": (["train", "seeds.csv", "--target", "area", "--target-certainty", "0.9"],
                                    "--target-certainty applies to classification only"),
        "one-class folder": (["train", "one"], "at least 2 classes"),
        "foreign model": (["evaluate", "foreign.safetensors", "seeds.csv"], "no dialnet metadata"),
        "text as model": (["predict", "notes.safetensors", "1,2"], "not a usable dialnet model file"),
        "missing model": (["predict", "nope.safetensors", "1,2"], "does not exist"),
        "unknown activation": (["train", "seeds.csv", "--activation", "swish"], "unknown activation 'swish'"),
        "unknown scaling": (["train", "seeds.csv", "--scale", "log"], "unknown scaling 'log'"),
        "unknown loss": (["train", "seeds.csv", "--loss", "hinge"], "unknown loss 'hinge'"),
        "bad certainty": (["train", "seeds.csv", "--target-certainty", "2"], "--target-certainty"),
        "bad image size": (["train", "--image-size", "0"], "image size"),
        "download, server down": (["train", "mnist", "--no-progress"], "cannot download"),
    }


def test_bad_input_is_one_line_with_a_hint(tmp_path):
    cases = _bad_inputs(tmp_path)
    env = {"DIALNET_DATA_URL": f"http://127.0.0.1:{_dead_port()}"}
    for name, (argv, pattern) in cases.items():
        result = dialnet(*argv, cwd=tmp_path, env_extra=env)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr, name
        assert lines[0].startswith("dialnet: error: ") and re.search(pattern, lines[0]), (name, result.stderr)
        assert len(lines) == 2 and lines[1].startswith("  hint: "), (name, result.stderr)
    assert not os.listdir(tmp_path / "cache" / "mnist")  # the failed download left nothing behind


def test_model_for_other_inputs_is_refused(digits, tmp_path):
    folder, _ = digits
    csv = seeds_like_csv(tmp_path / "seeds.csv")
    for argv in (["evaluate", "digits.safetensors", csv], ["predict", "digits.safetensors", "1,2,3"]):
        result = dialnet(*argv, cwd=folder)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert re.search(r"dialnet: error: .*(features|numbers)", result.stderr), result.stderr
