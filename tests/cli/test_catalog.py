"""A catalog of bad inputs: each gives the right DialnetError, a message naming the problem, and a fix.

Rows are (id, call, exception type, pattern the message must match). The
Python rows call the API; the CLI rows run ``dialnet.cli.main`` and check a
non-zero exit, one ``dialnet: error:`` line plus a hint, and no traceback.
Data-loader rows (CSV, IDX, images) come last.
"""

from __future__ import annotations

import importlib.util
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
    _round2_files(d, paths)
    return paths


def _pre_model(d, name, pre):
    """A [4, 5, 3] model file whose preprocessing block is ``pre`` (written as given, not checked)."""
    return _write_model(d / f"{name}.safetensors", lambda m: m.update(preprocessing=pre))


def _round2_files(d, paths):
    """The files of issue 14's cases: hostile preprocessing, a checkpoint, inf cells, a huge PNG, a table model..."""
    from PIL import Image

    table = {"input": "table", "scaling": "standard", "mean": [0.0] * 4, "std": [1.0] * 4}
    for name, pre in {
        "pre_image_20000": {"input": "image", "scaling": "none", "image_size": 20000},
        "pre_image_0": {"input": "image", "scaling": "none", "image_size": 0},
        "pre_image_neg": {"input": "image", "scaling": "none", "image_size": -3},
        "pre_mean_length": {**table, "mean": [0.0, 0.0]},
        "pre_std_string": {**table, "std": "wide"},
        "pre_std_negative": {**table, "std": [1.0, 1.0, 1.0, -1.0]},
        "pre_scaling": {"input": "table", "scaling": "zscore"},
        "pre_version": {**table, "version": 999},
        "pre_table_image_size": {**table, "image_size": 20000},
        "pre_target_std": {"input": "table", "scaling": "none", "target_std": 0.0},
        "pre_background": {"input": "image", "scaling": "none", "image_size": 2, "background": 7.0},
        "pre_fill": {"input": "table", "scaling": "none", "columns": [
            {"name": "c", "kind": "categorical", "categories": ["a", "b", "x"], "other": True, "fill": "zzz"}]},
    }.items():
        paths[name] = _pre_model(d, name, pre)
    paths["version999"] = _write_model(d / "v999.safetensors", lambda m: m.update(format_version=999))
    ck = str(d / "run.ckpt.safetensors")
    _net().fit(_X(), _y(), epochs=1, lr=0.01, checkpoint=ck)
    paths["ckpt"] = ck
    csv = {
        "inf.csv": "a,b,label\n1,2,0\ninf,3,1\n4,5,0\n-inf,6,1\n7,8,0\n",
        "huge.csv": "a,b,label\n" + "".join(f"{'1.5e308' if i % 2 else '-1.7e308'},{i},{i % 2}\n" for i in range(40)),
        "dup.csv": "x,x,x\n" + "".join(f"{i % 5},{(i * 3) % 7},{i % 2}\n" for i in range(40)),
        "square.csv": "a,b,c,d,label\n" + "".join(f"{i % 5},{(i * 3) % 7},{i % 4},{(i * 7) % 11},{i % 2}\n" for i in range(60)),
        "square_cut.csv": "a,b,c,d,label\n" + "".join(f"{i % 5},{(i * 3) % 7},{i % 4},{(i * 7) % 11},{i % 2}\n" for i in range(50)),
    }
    for name, content in csv.items():
        (d / name).write_text(content)
        paths[name] = str(d / name)
    Image.new("L", (30, 30), 0).save(d / "picture.png")
    paths["picture"] = str(d / "picture.png")
    big = d / "big_imgs"
    for cls in ("a", "b"):
        (big / cls).mkdir(parents=True)
        Image.new("L", (8, 8), 0).save(big / cls / "small.png")
    Image.new("L", (5000, 5000), 255).save(big / "a" / "huge.png")  # 25 million pixels: a few KB on disk
    paths["big_imgs"] = str(big)
    os.link(paths["model"], d / "model_link.safetensors")
    paths["model_link"] = str(d / "model_link.safetensors")
    table_model = str(d / "table_model.safetensors")
    assert main(["train", paths["square.csv"], "--epochs", "2", "--no-progress", "--out", table_model]) == 0
    paths["table_model"] = table_model
    cli_ckpt = str(d / "cli.ckpt.safetensors")
    assert main(["train", paths["train.csv"], "--epochs", "2", "--optimizer", "adam", "--no-progress", "--checkpoint", cli_ckpt,
                 "--out", str(d / "cli_model.safetensors")]) == 0
    paths["cli_ckpt"] = cli_ckpt
    plot_dir = d / "plot_dir"
    (plot_dir / "history.png").mkdir(parents=True)  # a folder where the figure should go: the write fails
    paths["plot_dir"] = str(plot_dir)
    trap = d / "trap"
    trap.mkdir()
    (trap / "history.png").write_bytes(open(table_model, "rb").read())  # a model named like the figure it would draw
    paths["trap_model"] = str(trap / "history.png")
    paths["trap_dir"] = str(trap)
    paths["out_model"] = str(d / "out.safetensors")


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

def _with_env(name, value, call):
    """Run ``call`` with one environment variable set (a memory or pixel limit), then restore it."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        return call()
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _predict_inputs(f, *items):
    from dialnet import workflow

    return workflow.model_inputs(dn.load(f["table_model"]), list(items))


# issue 14 (reliability, round 2): silent wrong answers, size mistakes, exit codes
ROUND2_API = [
    ("mlp seed -1", lambda f: dn.mlp([4, 3], seed=-1), InvalidValueError, r"seed must be a whole number >= 0.*-1"),
    ("fit seed -1", _fit(seed=-1), InvalidValueError, r"seed must be a whole number >= 0"),
    ("fit lr text", _fit(lr="fast"), InvalidValueError, r"lr is out of range.*'fast'"),
    ("mlp 100000x100000 does not fit", lambda f: _with_env("DIALNET_MEMORY_LIMIT", "8G", lambda: dn.mlp([100000, 100000, 10])),
     ConfigError, r"100000-100000-10 network .* does not fit in memory.*8\.0 GiB"),
    ("mlp larger than any machine", lambda f: dn.mlp([10**6, 10**6, 10]), ConfigError, r"does not fit in memory"),
    ("resume with another lr", lambda f: _net().fit(_X(), _y(), epochs=2, lr=0.5, resume=f["ckpt"]), ConfigError,
     r"learning rate differs.*lr 0\.01.*lr 0\.5"),
    ("scaling overflow", lambda f: dn.data.preprocessing.Preprocessor(scaling="standard").fit(np.array([[1.5e308], [-1.7e308]])),
     InvalidValueError, r"overflow in scaling"),
    ("predict cell not a number", lambda f: _predict_inputs(f, "abc,def,ghi,jkl"), DataError,
     r"row 'abc,def,ghi,jkl': column 'a' holds 'abc', not a number"),
    ("predict cell inf", lambda f: _predict_inputs(f, "inf,-inf,nan,1"), DataError, r"column 'a' holds 'inf', an infinite value"),
    ("predict picture into a table model", lambda f: _predict_inputs(f, f["picture"]), ShapeError,
     r"trained on a table, not on images"),
    ("model format version 999", lambda f: dn.load(f["version999"]), ModelFileError, r"format version.*999.*upgrade dialnet"),
    ("preprocessing image size 20000", lambda f: dn.load(f["pre_image_20000"]), ModelFileError, r"image size does not match"),
    ("preprocessing image size 0", lambda f: dn.load(f["pre_image_0"]), ModelFileError, r"image size does not match"),
    ("preprocessing image size -3", lambda f: dn.load(f["pre_image_neg"]), ModelFileError, r"image size does not match"),
    ("preprocessing mean wrong length", lambda f: dn.load(f["pre_mean_length"]), ModelFileError, r"'mean' has 2 values"),
    ("preprocessing std a string", lambda f: dn.load(f["pre_std_string"]), ModelFileError, r"'std' is not a list of finite numbers"),
    ("preprocessing std negative", lambda f: dn.load(f["pre_std_negative"]), ModelFileError, r"'std' has a negative value"),
    ("preprocessing unknown scaling", lambda f: dn.load(f["pre_scaling"]), ModelFileError, r"unknown scaling.*zscore"),
    ("preprocessing version 999", lambda f: dn.load(f["pre_version"]), ModelFileError, r"version is not one this dialnet reads"),
    ("preprocessing image size on a table", lambda f: dn.load(f["pre_table_image_size"]), ModelFileError,
     r"table model has image settings"),
    ("preprocessing target_std 0", lambda f: dn.load(f["pre_target_std"]), ModelFileError, r"'target_std' is not positive"),
    ("preprocessing background 7", lambda f: dn.load(f["pre_background"]), ModelFileError, r"'background' is out of range"),
    ("preprocessing fill not a category", lambda f: dn.load(f["pre_fill"]), ModelFileError, r"not a list of column rules"),
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


ROUND2_DATA = [
    ("data FIFO", lambda f: _load_data(f, f["fifo"]), DataError, r"is a FIFO \(named pipe\), not a data file"),
    ("data /dev/zero", lambda f: _load_data(f, "/dev/zero"), DataError, r"/dev/zero is a character device, not a data file"),
    ("csv inf cells", lambda f: _load_data(f, f["inf.csv"]), DataError, r"column 'a' of inf\.csv has infinite values \(lines 3, 5\)"),
    ("image larger than the limit", lambda f: _load_data(f, f["big_imgs"]), DataError,
     r"huge\.png is too large to read: 5000x5000 pixels.*DIALNET_MAX_IMAGE_PIXELS"),
    ("image limit configurable", lambda f: _with_env("DIALNET_MAX_IMAGE_PIXELS", "50", lambda: _load_data(f, f["big_imgs"])),
     DataError, r"\.png is too large to read: \d+x\d+ pixels.*at most 50 pixels"),
]

CATALOG = API + ROUND2_API + DATA + ROUND2_DATA


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



def _out(f, name="t.safetensors"):
    return os.path.join(f["dir"], name)


ROUND2_CLI = [
    # data loss: an output is never an input
    ("train --out the data", lambda f: ["train", f["train.csv"], "--out", f["train.csv"], "--no-progress"],
     r"--out .*train\.csv is the input DATA"),
    ("train --checkpoint the data", lambda f: ["train", f["train.csv"], "--checkpoint", f["train.csv"], "--no-progress",
                                               "--out", _out(f)], r"--checkpoint .*train\.csv is the input DATA"),
    ("train --out the --resume", lambda f: ["train", f["train.csv"], "--resume", f["ckpt"], "--out", f["ckpt"]],
     r"--out .* is the input --resume"),
    ("train --out the --checkpoint", lambda f: ["train", f["train.csv"], "--checkpoint", _out(f, "c.safetensors"),
                                                "--out", _out(f, "c.safetensors")], r"--out and --checkpoint are the same file"),
    ("export --state-dict the model", lambda f: ["export", f["model"], "--state-dict", f["model"]], r"--state-dict .* is the input MODEL"),
    ("export --onnx the model", lambda f: ["export", f["model"], "--onnx", f["model"]], r"--onnx .* is the input MODEL"),
    ("export --onnx a hard link to the model", lambda f: ["export", f["model"], "--onnx", f["model_link"]],
     r"--onnx .*model_link\.safetensors is the input MODEL"),
    ("plot --out onto the model", lambda f: ["plot", f["trap_model"], "--out", f["trap_dir"], "--only", "history"],
     r"--out .*history\.png is the input MODEL"),
    ("plot cannot write", lambda f: ["plot", f["table_model"], "--out", f["plot_dir"], "--only", "history"],
     r"cannot write .*history\.png"),
    # silent wrong answers
    ("predict cells not numbers", lambda f: ["predict", f["table_model"], "abc,def,ghi,jkl"], r"column 'a' holds 'abc', not a number"),
    ("predict inf cells", lambda f: ["predict", f["table_model"], "inf,-inf,nan,1"], r"column 'a' holds 'inf', an infinite value"),
    ("predict picture with a table model", lambda f: ["predict", f["table_model"], f["picture"]], r"trained on a table, not on images"),
    ("train inf cells", lambda f: ["train", f["inf.csv"], "--no-progress", "--out", _out(f)], r"infinite values \(lines 3, 5\)"),
    ("train --resume with another --lr", lambda f: ["train", f["train.csv"], "--optimizer", "adam", "--no-progress", "--checkpoint", f["cli_ckpt"],
                                                    "--resume", f["cli_ckpt"], "--lr", "0.5", "--out", _out(f)],
     r"cannot resume from .*cli\.ckpt\.safetensors: the learning rate differs.*lr 0\.001.*lr 0\.5"),
    ("train --layers 0", lambda f: ["train", f["train.csv"], "--layers", "0"], r"--layers must be .* or 'none'"),
    ("train --layers blank", lambda f: ["train", f["train.csv"], "--layers", " "], r"--layers must be .* or 'none'"),
    ("train --layers 5,,5", lambda f: ["train", f["train.csv"], "--layers", "5,,5"], r"--layers must be"),
    ("summary --layers 10,,5", lambda f: ["summary", "--layers", "10,,5"], r"comma-separated positive integers.*10,,5"),
    ("summary version 999", lambda f: ["summary", f["version999"]], r"format version"),
    ("predict hostile preprocessing", lambda f: ["predict", f["pre_image_20000"], "1,2,3,4"], r"unusable preprocessing"),
    # size mistakes
    ("train a network larger than memory", lambda f: ["train", f["train.csv"], "--layers", "20000,20000", "--no-progress",
                                                      "--out", _out(f)], r"training a 3-20000-20000-3 network .* does not fit in memory",
     {"DIALNET_MEMORY_LIMIT": "1G"}),
    ("train images larger than the limit", lambda f: ["train", f["big_imgs"], "--no-progress", "--out", _out(f)],
     r"too large to read: 5000x5000"),
    # exit codes and messages
    ("train --seed -1", lambda f: ["train", f["train.csv"], "--seed", "-1"], r"--seed is out of range"),
    ("argparse --epochs abc", lambda f: ["train", f["train.csv"], "--epochs", "abc"], r"argument --epochs: invalid int value: 'abc'"),
    ("argparse unknown option", lambda f: ["train", f["train.csv"], "--epochz", "3"], r"unrecognized arguments: --epochz"),
    ("argparse missing argument", lambda f: ["predict", f["model"]], r"the following arguments are required: INPUT"),
    ("argparse option without value", lambda f: ["train", "--epochs"], r"argument --epochs: expected one argument"),
    ("argparse unknown command", lambda f: ["trian"], r"invalid choice: 'trian'"),
    ("train FIFO as DATA", lambda f: ["train", f["fifo"]], r"is a FIFO \(named pipe\), not a data file"),
    ("train /dev/zero as DATA", lambda f: ["train", "/dev/zero"], r"/dev/zero is a character device"),
    ("train overflow in scaling", lambda f: ["train", f["huge.csv"], "--no-progress", "--out", _out(f)], r"overflow in scaling a"),
    # issue 19's CLI: machine-readable predictions, evaluate --split test, class weights
    ("predict --out the input", lambda f: ["predict", f["table_model"], f["square.csv"], "--format", "csv", "--out", f["square.csv"]],
     r"--out .*square\.csv is the input INPUT"),
    ("predict --out the model", lambda f: ["predict", f["table_model"], "1,2,3,4", "--format", "json", "--out", f["table_model"]],
     r"--out .* is the input MODEL"),
    ("predict unknown --format", lambda f: ["predict", f["table_model"], "1,2,3,4", "--format", "xml"], r"invalid choice: 'xml'"),
    ("evaluate --split test on other rows", lambda f: ["evaluate", f["table_model"], f["square_cut.csv"], "--split", "test"],
     r"square_cut\.csv is not the data this model was trained on: its rows differ.*the 60 rows"),
    ("evaluate --split test without a split record", lambda f: ["evaluate", f["model"], f["train.csv"], "--split", "test"],
     r"has no test split, and the model does not record the one its training made"),
    ("train --class-weight on a regression", lambda f: ["train", f["huge.csv"], "--task", "regression", "--target", "b",
                                                        "--class-weight", "balanced", "--no-progress"],
     r"--class-weight applies to classification only"),
]
CLI = CLI + ROUND2_CLI


def test_train_device_cuda_without_cupy_is_a_clear_error(f, capsys):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here: --device cuda may run")
    code = main(["train", f["train.csv"], "--device", "cuda", "--out", _out(f)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert re.search(r"the GPU \(cupy\) backend was asked for but CuPy is not installed", err)
    assert "pip install 'dialnet[gpu]'" in err
    assert not os.path.exists(_out(f))
    assert dn.backend.name == "numpy"  # the failed switch left the backend as it was


@pytest.mark.parametrize("row", CLI, ids=[row[0] for row in CLI])
def test_cli_catalog(f, row, capsys, monkeypatch):
    _, argv, pattern = row[:3]
    for name, value in (row[3] if len(row) > 3 else {}).items():
        monkeypatch.setenv(name, value)
    argv = argv(f)
    if argv[0] not in _commands() and not argv[0].startswith("tri"):
        pytest.fail(f"the `dialnet {argv[0]}` command is missing")
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2
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



# ------------------------------------------------------------------ issue 14: what the rows above cannot show


def _copy(src, dst):
    with open(src, "rb") as a, open(dst, "wb") as b:
        b.write(a.read())
    return str(dst)


def test_train_onto_its_data_leaves_the_data_intact(f, tmp_path, capsys):
    data = _copy(f["train.csv"], tmp_path / "x.csv")
    before = open(data, "rb").read()
    assert main(["train", data, "--out", data, "--no-progress"]) == 2
    assert main(["train", data, "--checkpoint", "./" + os.path.relpath(data), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert open(data, "rb").read() == before
    assert not (tmp_path / "m.safetensors").exists(), "refused before any work"
    capsys.readouterr()


def test_output_lock_refuses_a_live_run_and_takes_over_a_dead_ones(f, tmp_path, capsys):
    out = str(tmp_path / "m.safetensors")
    args = ["train", f["train.csv"], "--epochs", "1", "--no-progress", "--out", out]
    with open(out + ".lock", "w") as fh:
        fh.write(f"{os.getppid()}\n")  # a live process that is not this one
    assert main(args) == 2
    assert re.search(rf"another dialnet run \(pid {os.getppid()}\) is writing .*m\.safetensors", capsys.readouterr().err)
    assert not os.path.exists(out) and os.path.exists(out + ".lock")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    with open(out + ".lock", "w") as fh:
        fh.write(gone.stdout)  # a run that died (SIGKILL) and left its lock
    assert main(args) == 0
    assert dn.load(out).n_inputs == 3
    assert not os.path.exists(out + ".lock"), "the lock goes with the run"
    capsys.readouterr()


def test_a_second_run_on_the_same_files_is_refused_and_sigterm_writes_the_checkpoint(f, tmp_path):
    """Real processes: run 1 trains with a checkpoint; run 2 on the same --out is refused (exit 2); SIGTERM to
    run 1 (what `docker stop` sends) finishes the step, writes the checkpoint and exits 143."""
    import signal
    import time

    from dialnet.files import checkpoint as ckpt

    out, ck = str(tmp_path / "m.safetensors"), str(tmp_path / "run.ckpt.safetensors")
    cmd = [sys.executable, "-m", "dialnet.cli", "train", f["train.csv"], "--optimizer", "adam", "--no-progress", "--epochs", "1000000",
           "--early-stopping", "0", "--lr-schedule", "none", "--checkpoint", ck, "--out", out]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(ck) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.path.exists(ck), first.communicate(timeout=10)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert re.search(rf"another dialnet run \(pid {first.pid}\) is writing", second.stderr), second.stderr
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, err
    assert "terminated (SIGTERM)" in err and f"checkpoint saved to {ck}" in err and "--resume" in err
    _net_stored, state, _arrays = ckpt.load(ck)
    assert state["epoch"] >= 1 and not state["finished"]
    assert not os.path.exists(out), "no model: the run did not finish"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".lock")]


def test_divergence_saves_the_last_good_weights_to_a_new_file(f, tmp_path, capsys):
    out = _copy(f["model"], tmp_path / "good.safetensors")  # a good model from an earlier run
    before = open(out, "rb").read()
    args = ["train", f["train.csv"], "--optimizer", "sgd", "--lr", "1e6", "--activation", "relu", "--layers", "16,16",
            "--no-progress", "--out", out]
    for expected in ("good.diverged.safetensors", "good.diverged-2.safetensors"):
        assert main(args) == 2
        captured = capsys.readouterr()
        assert "training diverged" in captured.err
        saved = str(tmp_path / expected)
        assert f"Saved the last good weights (from before the step that diverged) to {saved}" in captured.out
        net = dn.load(saved)
        assert all(np.isfinite(p).all() for p in net.parameters()) and net.preprocessing is not None
    assert open(out, "rb").read() == before, "--out is never overwritten by a diverged run"


def test_summary_counts_a_huge_network_without_building_it(capsys):
    import tracemalloc

    tracemalloc.start()
    try:
        assert main(["summary", "--layers", "20000,20000"]) == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    text = capsys.readouterr().out
    assert "400,020,000 parameters" in text and re.search(r"Memory: 3\.0 GiB for the weights and gradients", text)
    assert peak < 20 * 1024**2, f"summary allocated {peak:,} bytes"
    assert main(["summary", "--layers", "625,20,20,10"]) == 0
    table = capsys.readouterr().out
    assert table.startswith(dn.mlp([625, 20, 20, 10], activation="sigmoid", seed=0).summary())


def test_limit_streams_the_csv(tmp_path):
    """--limit keeps a seeded random N rows while reading: memory for N rows, not for the file."""
    import tracemalloc

    from dialnet import data as datasets

    path = tmp_path / "big.csv"
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((12000, 6))
    with open(path, "w") as fh:
        fh.write("a,b,c,d,e,f,label\n")
        for i, r in enumerate(rows):
            fh.write(",".join(f"{v:.6f}" for v in r) + f",{i % 3}\n")

    def peak(**kw):
        tracemalloc.start()
        try:
            ds = datasets.load(str(path), **kw)
            return ds, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, small_peak = peak(limit=100, seed=3)
    full, full_peak = peak()
    assert small.n_rows == 100 and full.n_rows == 12000
    assert "read 100 of the 12,000 rows" in small.notes[0]
    assert small_peak * 5 < full_peak, (small_peak, full_peak)  # the small one is mostly the 256 KB sniffed for the dialect
    again, _ = peak(limit=100, seed=3)
    assert (again.cells == small.cells).all(), "same seed, same rows"
    other, _ = peak(limit=100, seed=4)
    assert not (other.cells == small.cells).all()
    picked = {tuple(r) for r in small.cells.tolist()}
    assert picked <= {tuple(r) for r in full.cells.tolist()}, "rows of the file, unchanged"


def test_duplicate_header_names_are_told_apart_with_a_note(f):
    from dialnet import data as datasets

    ds = datasets.load(f["dup.csv"])
    assert ds.column_names == ["x", "x_2"] and ds.target == "x_3"
    assert any("repeats the column name(s) 'x'" in note for note in ds.notes)


def test_predict_still_imputes_blank_cells(f, capsys):
    assert main(["predict", f["table_model"], "1,,2,3"]) == 0
    assert "row 1,,2,3:" in capsys.readouterr().out


def test_an_internal_error_says_it_is_a_bug_and_exits_1(f, capsys, monkeypatch):
    import dialnet.cli.summary as summary

    def broken(args):
        raise RuntimeError("an invariant broke")

    monkeypatch.setattr(summary, "run", broken)
    assert main(["summary", f["model"]]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "dialnet: internal error (a bug in dialnet, not in your input): RuntimeError: an invariant broke"
    assert err[1].startswith("  hint: run again with --debug")


def test_argparse_errors_exit_2_from_the_process(f):
    """The real process: an argparse error is one `dialnet: error:` line, a hint, exit 2 (no usage dump)."""
    run = subprocess.run([sys.executable, "-m", "dialnet.cli", "train", f["train.csv"], "--epochs", "abc"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.splitlines() == ["dialnet: error: argument --epochs: invalid int value: 'abc'",
                                       "  hint: run `dialnet train --help` for the options and the values they take"]
