"""A catalog of bad inputs: each gives the right DialnetError, a message naming the problem, and a fix.

Rows are (id, call, exception type, pattern the message must match). The
Python rows call the API; the CLI rows run ``dialnet.cli.main`` and check a
non-zero exit, one ``dialnet: error:`` line plus a hint, and no traceback.
Data-loader rows (CSV, IDX, images) come last.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

import dialnet as dn
from dialnet.files import modelfile as io
from dialnet.cli import main
from dialnet.errors import ConfigError, DataError, DivergenceError, InvalidValueError, ModelFileError, ShapeError

RAW = "\u0000RAW\u0000"


def _net(**kw):
    return dn.mlp([4, 5, 3], seed=0, **kw)


def _X(n=8, d=4):
    return np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)


def _y(n=8, k=3):
    return np.arange(n) % k


def _write_model(path, mutate_meta=None, mutate_tensors=None, raw=None):
    net = _net()
    tensors, meta = io.network_tensors(net), io.network_metadata(net)
    if mutate_tensors:
        mutate_tensors(tensors)
    if mutate_meta:
        mutate_meta(meta)
    data = io.pack(tensors, meta)
    if raw is not None:  # splice raw JSON text (e.g. nesting too deep for json.dumps) into the metadata
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        header["__metadata__"]["dialnet"] = header["__metadata__"]["dialnet"].replace(json.dumps(RAW), raw)
        text = json.dumps(header).encode()
        data = struct.pack("<Q", len(text)) + text + data[8 + n :]
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    """Every bad file the catalog needs, by name."""
    d = tmp_path_factory.mktemp("catalog")
    paths = {"dir": str(d)}
    good = d / "model.safetensors"
    _net().save(good)
    paths["model"] = str(good)
    data = good.read_bytes()
    for name, content in {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "random": np.random.default_rng(0).bytes(600),
        "huge_header": struct.pack("<Q", 2**63) + data[8:],
        "text": b"this is a text file, not a model\n" * 4,
    }.items():
        (d / f"{name}.safetensors").write_bytes(content)
        paths[name] = str(d / f"{name}.safetensors")
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(d / "foreign.safetensors"))
    paths["foreign"] = str(d / "foreign.safetensors")
    paths["version"] = _write_model(d / "v99.safetensors", lambda m: m.update(format_version=99))
    paths["layer_type"] = _write_model(d / "conv.safetensors", lambda m: m["architecture"][1].update(type="conv2d"))
    paths["layer_kwargs"] = _write_model(d / "kwargs.safetensors", lambda m: m["architecture"][1].update(command="rm -rf /"))
    paths["nan_weights"] = _write_model(d / "nan.safetensors", mutate_tensors=lambda t: t["layers.0.weights"].__setitem__((0, 0), np.nan))
    paths["shape"] = _write_model(d / "shape.safetensors", mutate_tensors=lambda t: t.update({"layers.0.weights": np.zeros((5, 4), np.float32)}))
    paths["deep"] = _write_model(d / "deep.safetensors", lambda m: m.update(preprocessing={"x": RAW}), raw="[" * 500 + "]" * 500)
    huge = d / "huge_shape.safetensors"
    text = json.dumps({"__metadata__": {"dialnet": json.dumps(io.network_metadata(_net()))},
                       "layers.0.weights": {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 8]}}).encode()
    huge.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 8)
    paths["huge_shape"] = str(huge)
    fifo = d / "fifo.safetensors"
    os.mkfifo(fifo)
    paths["fifo"] = str(fifo)
    paths["missing"] = str(d / "missing.safetensors")

    csv = {
        "text.csv": "a,b,label\n1,,0\n3,NA,1\n",
        "ragged.csv": "a,b,label\n1,2,0\n3,4\n",
        "empty.csv": "",
        "nan.csv": "a,b,label\n1,2,nan\n3,4,\n",
        "oneclass.csv": "a,b,label\n1,2,0\n3,4,0\n",
        "ok.csv": "a,b,label\n1,2,0\n3,4,1\n",
        "train.csv": "a,b,c,label\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2},{i % 3}\n" for i in range(60)),
    }
    for name, content in csv.items():
        (d / name).write_text(content)
        paths[name] = str(d / name)
    (d / "trunc.idx").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")
    (d / "labels.idx").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x02\x00\x01")
    (d / "magic.idx").write_bytes(b"PK\x03\x04 not an idx file at all")
    paths.update({k: str(d / f"{k}.idx") for k in ("trunc", "labels", "magic")})
    for cls in ("cats", "dogs"):
        (d / "imgs" / cls).mkdir(parents=True)
        (d / "imgs" / cls / "a.png").write_bytes(b"not a png")
    (d / "oneclass_imgs" / "cats").mkdir(parents=True)
    (d / "empty_dir").mkdir()
    paths.update(imgs=str(d / "imgs"), oneclass_imgs=str(d / "oneclass_imgs"), empty_dir=str(d / "empty_dir"))
    return paths


def _fit(**kw):
    return lambda f: _net().fit(_X(), _y(), epochs=1, **kw)


API = [
    # shapes
    ("X 1-D", lambda f: _net().predict(np.zeros(4)), ShapeError, r"must be 2-D.*reshape\(1, -1\)"),
    ("X wrong width", lambda f: _net().predict(np.zeros((2, 5))), ShapeError, r"wrong number of features.*4 columns"),
    ("X 3-D", lambda f: _net().predict(np.zeros((2, 2, 2))), ShapeError, r"must be 2-D"),
    ("X no rows", lambda f: _net().predict(np.zeros((0, 4))), ShapeError, r"no rows"),
    ("y wrong length", lambda f: _net().fit(_X(), _y(7), epochs=1), ShapeError, r"labels have the wrong shape.*8 labels"),
    ("validation not a pair", _fit(validation_data=_X()), ShapeError, r"validation_data must be a pair"),
    ("dense sizes do not chain", lambda f: dn.Network([dn.Dense(4, 5), dn.Dense(6, 2)]), ShapeError, r"do not fit together"),
    ("mse targets too wide", lambda f: _net().fit(_X(), np.zeros((8, 4)), loss="mse", epochs=1), ShapeError, r"targets do not match"),
    ("set_weights wrong count", lambda f: _net().set_weights([np.zeros(3)]), ShapeError, r"wrong number of weight arrays"),
    # dtypes, text
    ("X strings", lambda f: _net().predict(np.array([["a", "b", "c", "d"]])), InvalidValueError, r"not numeric"),
    ("X ragged", lambda f: _net().predict([[1, 2, 3, 4], [1, 2]]), ShapeError, r"cannot be read as a table"),
    ("dtype float16", lambda f: dn.mlp([4, 3], dtype="float16"), ConfigError, r"unsupported dtype"),
    ("labels strings", lambda f: _net().fit(_X(), np.array(["a", "b"] * 4), epochs=1), DataError, r"labels are not numbers"),
    ("labels fractional", lambda f: _net().fit(_X(), np.full(8, 0.5), epochs=1), DataError, r"not whole numbers"),
    # NaN / inf
    ("X NaN in fit", lambda f: _net().fit(np.where(_X() > 1, np.nan, _X()), _y(), epochs=1), InvalidValueError, r"NaN or infinity"),
    ("X inf in predict", lambda f: _net().predict(np.full((1, 4), np.inf)), InvalidValueError, r"NaN or infinity"),
    ("targets NaN", lambda f: dn.mlp([4, 1], output="identity", seed=0).fit(_X(), np.full(8, np.nan), epochs=1), DataError, r"NaN or infinity"),
    ("l2 NaN", _fit(l2=float("nan")), InvalidValueError, r"l2 must be >= 0"),
    # empty data, one class, out of range
    ("fit on no rows", lambda f: _net().fit(np.zeros((0, 4)), np.zeros(0), epochs=1), ShapeError, r"no rows"),
    ("too few rows to split", lambda f: _net().fit(_X(1), _y(1), validation_split=0.5, epochs=1), DataError, r"too few rows"),
    ("label out of range", lambda f: _net().fit(_X(), _y() + 1, epochs=1), DataError, r"out of range.*0\.\.2"),
    ("negative label", lambda f: _net().fit(_X(), _y() - 1, epochs=1), DataError, r"out of range"),
    ("softmax over one class", lambda f: dn.mlp([4, 1], output="softmax"), ConfigError, r"softmax over one output"),
    ("bce targets outside [0,1]", lambda f: dn.mlp([4, 1], output="sigmoid", seed=0).fit(_X(), np.full(8, 2.0), loss="bce", epochs=1), DataError, r"outside \[0, 1\]"),
    ("ce negative rows", lambda f: _net().fit(_X(), -np.ones((8, 3)), epochs=1), DataError, r"negative values"),
    # bad options
    ("epochs 0", lambda f: _net().fit(_X(), _y(), epochs=0), InvalidValueError, r"epochs must be a positive integer"),
    ("batch_size -1", _fit(batch_size=-1), InvalidValueError, r"batch_size must be a positive integer"),
    ("batch_size True", _fit(batch_size=True), InvalidValueError, r"batch_size"),
    ("unknown optimizer", _fit(optimizer="adagrad"), ConfigError, r"unknown optimizer 'adagrad'"),
    ("unknown loss", _fit(loss="hinge"), ConfigError, r"unknown loss 'hinge'"),
    ("unknown activation", lambda f: dn.mlp([4, 5, 3], activation="swish"), ConfigError, r"unknown activation 'swish'"),
    ("unknown schedule", _fit(lr_schedule="warmup"), ConfigError, r"unknown learning-rate schedule"),
    ("negative lr", _fit(optimizer="sgd", lr=-1), InvalidValueError, r"lr is out of range"),
    ("validation_split 1.5", _fit(validation_split=1.5), InvalidValueError, r"validation_split must be between 0 and 1"),
    ("target_certainty 2", _fit(target_certainty=2), InvalidValueError, r"target_certainty must be in"),
    ("target_certainty on regression", lambda f: dn.mlp([4, 1], output="identity", seed=0).fit(_X(), np.zeros(8), target_certainty=0.9), ConfigError, r"needs a classification task"),
    ("on_divergence unknown", _fit(on_divergence="ignore"), ConfigError, r"unknown on_divergence"),
    ("momentum 1.5", lambda f: dn.SGD(momentum=1.5), InvalidValueError, r"momentum is out of range"),
    ("nesterov without momentum", lambda f: dn.SGD(nesterov=True), ConfigError, r"Nesterov momentum needs momentum > 0"),
    ("dropout p=1", lambda f: dn.Dropout(1.0), InvalidValueError, r"dropout rate p must be in \[0, 1\)"),
    ("mlp one size", lambda f: dn.mlp([4]), ConfigError, r"at least an input and an output size"),
    ("mlp zero width", lambda f: dn.mlp([4, 0, 3]), InvalidValueError, r"positive integers"),
    ("unknown init", lambda f: dn.mlp([4, 3], init="zeros"), ConfigError, r"unknown initializer 'zeros'"),
    ("unknown backend", lambda f: dn.backend.use("tpu"), ConfigError, r"unknown backend 'tpu'"),
    ("patience -1", _fit(early_stopping=-1), InvalidValueError, r"patience must be a whole number"),
    ("empty network", lambda f: dn.Network([]), ConfigError, r"non-empty list of layers"),
    ("network without dense", lambda f: dn.Network([dn.ReLU()]), ConfigError, r"at least one Dense"),
    ("checkpoint_every alone", _fit(checkpoint_every=2), ConfigError, r"checkpoint_every needs a checkpoint path"),
    ("checkpoint not a path", _fit(checkpoint=3.5), ConfigError, r"checkpoint must be a file path"),
    # training that diverges
    ("lr 1e6 diverges", lambda f: dn.mlp([4, 16, 16, 3], seed=0).fit(_X(64), _y(64), optimizer="sgd", lr=1e6, epochs=5, batch_size=8),
     DivergenceError, r"training diverged at epoch \d+, step \d+.*learning rate 1e\+06"),
    # model files
    ("model missing", lambda f: dn.load(f["missing"]), ModelFileError, r"does not exist"),
    ("model is a folder", lambda f: dn.load(f["dir"]), ModelFileError, r"is a folder"),
    ("model unreadable (FIFO)", lambda f: dn.load(f["fifo"]), ModelFileError, r"not a regular file"),
    ("model path None", lambda f: dn.load(None), ModelFileError, r"not a file name"),
    ("model empty", lambda f: dn.load(f["empty"]), ModelFileError, r"too short"),
    ("model truncated", lambda f: dn.load(f["truncated"]), ModelFileError, r"truncated"),
    ("model random bytes", lambda f: dn.load(f["random"]), ModelFileError, r"not a usable dialnet model file"),
    ("model text file", lambda f: dn.load(f["text"]), ModelFileError, r"header length is impossible"),
    ("model huge header length", lambda f: dn.load(f["huge_header"]), ModelFileError, r"header length is impossible"),
    ("model huge declared shape", lambda f: dn.load(f["huge_shape"]), ModelFileError, r"wrong size"),
    ("model deep JSON", lambda f: dn.load(f["deep"]), ModelFileError, r"nested too deeply"),
    ("model from another program", lambda f: dn.load(f["foreign"]), ModelFileError, r"no dialnet metadata"),
    ("model newer version", lambda f: dn.load(f["version"]), ModelFileError, r"format version.*upgrade dialnet"),
    ("model unknown layer", lambda f: dn.load(f["layer_type"]), ModelFileError, r"unknown type.*conv2d"),
    ("model unexpected setting", lambda f: dn.load(f["layer_kwargs"]), ModelFileError, r"unexpected setting 'command'"),
    ("model NaN weights", lambda f: dn.load(f["nan_weights"]), ModelFileError, r"NaN or infinity"),
    ("model weight shape", lambda f: dn.load(f["shape"]), ModelFileError, r"do not match its declared shape"),
    ("save into missing folder", lambda f: _net().save(os.path.join(f["dir"], "no", "m.safetensors")), ModelFileError, r"folder to save into does not exist"),
    ("save onto a folder", lambda f: _net().save(f["dir"]), ModelFileError, r"it is a folder"),
    ("resume from a model file", lambda f: _net().fit(_X(), _y(), resume=f["model"]), ModelFileError, r"not a training checkpoint"),
]

# data loaders (dialnet.data)
DATA = [
    ("data missing file", lambda f: _load_data(f, "missing.csv"), DataError, r"no such data set or file"),
    ("csv empty feature column", lambda f: _load_data(f, f["text.csv"]), DataError, r"column 'b' of text.csv has no values"),
    ("csv ragged rows", lambda f: _load_data(f, f["ragged.csv"]), DataError, r"has 2 columns.*expected 3"),
    ("csv empty", lambda f: _load_data(f, f["empty.csv"]), DataError, r"is empty"),
    ("csv no labels", lambda f: _load_data(f, f["nan.csv"]), DataError, r"label column 'label' of nan.csv is empty"),
    ("csv one class", lambda f: _load_data(f, f["oneclass.csv"]), DataError, r"only one class"),
    ("csv unknown target", lambda f: _load_data(f, f["ok.csv"], target="price"), DataError, r"target column 'price'"),
    ("idx truncated", lambda f: _load_data(f, [f["trunc"], f["labels"]]), DataError, r"not a valid IDX file.*truncated"),
    ("idx bad magic", lambda f: _load_data(f, [f["magic"], f["labels"]]), DataError, r"not a valid IDX file"),
    ("idx one file", lambda f: _load_data(f, f["labels"]), DataError, r"one IDX file"),
    ("images not images", lambda f: _load_data(f, f["imgs"]), DataError, r"cannot read .* as an image"),
    ("images one class", lambda f: _load_data(f, f["oneclass_imgs"]), DataError, r"at least 2 classes"),
    ("images empty folder", lambda f: _load_data(f, f["empty_dir"]), DataError, r"neither an image folder nor"),
    ("image size 0", lambda f: _load_data(f, "mnist-10k", image_size=0), ConfigError, r"image size"),
]


def _load_data(f, source, **kw):
    from dialnet import data as datasets

    return datasets.load(source, **kw)


CATALOG = API + DATA


@pytest.mark.parametrize("row", CATALOG, ids=[row[0] for row in CATALOG])
def test_python_catalog(f, row):
    _, call, exc_type, pattern = row
    with pytest.raises(exc_type) as info:
        call(f)
    exc = info.value
    assert isinstance(exc, dn.DialnetError)
    message = str(exc)
    assert re.search(pattern, message), message
    assert "\n" not in message
    assert exc.fix, "every error says how to fix it"
    assert exc.expected is not None or exc.got is not None, "and what was expected or given"


CLI = [
    ("summary missing model", lambda f: ["summary", f["missing"]], r"does not exist"),
    ("summary truncated model", lambda f: ["summary", f["truncated"]], r"truncated"),
    ("summary random bytes", lambda f: ["summary", f["random"]], r"not a usable dialnet model file"),
    ("summary newer version", lambda f: ["summary", f["version"]], r"format version"),
    ("summary hostile shape", lambda f: ["summary", f["huge_shape"]], r"wrong size"),
    ("summary folder", lambda f: ["summary", f["dir"]], r"is a folder"),
    ("summary bad --layers", lambda f: ["summary", "--layers", "625,x,10"], r"comma-separated positive integers"),
    ("summary nothing", lambda f: ["summary"], r"nothing to summarize"),
    ("summary both", lambda f: ["summary", f["model"], "--layers", "4,3"], r"not both"),
    ("gradcheck corrupt model", lambda f: ["gradcheck", f["random"]], r"not a usable dialnet model file"),
    ("export missing model", lambda f: ["export", f["missing"], "--onnx", os.path.join(f["dir"], "o.onnx")], r"does not exist"),
    ("inspect foreign model", lambda f: ["inspect", f["foreign"], f["ok.csv"]], r"no dialnet metadata"),
    ("train empty-column csv", lambda f: ["train", f["text.csv"]], r"has no values"),
    ("train ragged csv", lambda f: ["train", f["ragged.csv"]], r"has 2 columns"),
    ("train one-class csv", lambda f: ["train", f["oneclass.csv"]], r"only one class"),
    ("train idx truncated", lambda f: ["train", f["trunc"], f["labels"]], r"not a valid IDX file"),
    ("train images unreadable", lambda f: ["train", f["imgs"]], r"as an image"),
    ("train missing data", lambda f: ["train", os.path.join(f["dir"], "nope.csv")], r"no such data set or file"),
    ("train --epochs 0", lambda f: ["train", f["train.csv"], "--epochs", "0"], r"--epochs is out of range"),
    ("train --lr negative", lambda f: ["train", f["train.csv"], "--lr", "-1"], r"--lr is out of range"),
    ("train unknown optimizer", lambda f: ["train", f["train.csv"], "--optimizer", "adagrad"], r"unknown optimizer"),
    ("train --checkpoint-every alone", lambda f: ["train", f["train.csv"], "--checkpoint-every", "5"], r"needs --checkpoint"),
    ("train --resume missing", lambda f: ["train", f["train.csv"], "--no-progress", "--resume", f["missing"],
                                          "--out", os.path.join(f["dir"], "t.safetensors")], r"checkpoint .* does not exist"),
    ("train --resume a model", lambda f: ["train", f["train.csv"], "--no-progress", "--resume", f["model"],
                                          "--out", os.path.join(f["dir"], "t.safetensors")], r"not a training checkpoint"),
    ("train diverges", lambda f: ["train", f["train.csv"], "--optimizer", "sgd", "--lr", "1e6", "--activation", "relu",
                                  "--layers", "16,16", "--no-progress", "--out", os.path.join(f["dir"], "t.safetensors")],
     r"training diverged at epoch \d+, step \d+.*learning rate 1e\+06"),
]


@pytest.mark.parametrize("row", CLI, ids=[row[0] for row in CLI])
def test_cli_catalog(f, row, capsys):
    _, argv, pattern = row
    argv = argv(f)
    if argv[0] not in _commands():
        pytest.fail(f"the `dialnet {argv[0]}` command is missing")
    code = main(argv)
    out = capsys.readouterr()
    assert code != 0
    lines = out.err.strip().splitlines()
    assert "Traceback" not in out.err + out.out
    assert lines[0].startswith("dialnet: error: ") and re.search(pattern, lines[0]), out.err
    assert len(lines) == 2 and lines[1].startswith("  hint: ")


def _commands():
    from dialnet.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def test_cli_process_exit_code_and_debug_traceback(f):
    """The real process: exit 2 and one line; with --debug the traceback is shown."""
    cmd = [sys.executable, "-m", "dialnet.cli"]
    plain = subprocess.run([*cmd, "summary", f["version"]], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.startswith("dialnet: error: ") and "hint:" in plain.stderr
    debug = subprocess.run([*cmd, "--debug", "summary", f["version"]], capture_output=True, text=True, timeout=60)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ModelFileError" in debug.stderr

