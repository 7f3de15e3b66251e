"""Data sets, preprocessing and the fit loop as the CLI uses them.

Every fixture is written by the test itself: IDX files with ``write_idx``,
CSV files as text, image folders with Pillow, and a download served by a
local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import pathlib
import re
import socket
import threading

import numpy as np
import pytest

import dialnet as dn
from dialnet import data as datasets
from dialnet.data import download, idx, images, tabular
from dialnet.errors import ConfigError, DataError, ModelFileError, ShapeError
from dialnet.data.preprocessing import Preprocessor, apply_preprocessing, fit_preprocessing, validate_preprocessing

# ------------------------------------------------------------------ IDX


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, rng, dtype, suffix):
    a = (rng.random((3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / f"a.idx{suffix}"
    idx.write_idx(path, a)
    b = idx.read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    assert idx.is_idx(path)


def test_idx_header_is_big_endian_mnist_layout(tmp_path):
    path = tmp_path / "labels.idx1-ubyte"
    idx.write_idx(path, np.array([7, 2, 1], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


def _raw(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "data, pattern",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x02\x01\x02", "magic number"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x02\x01\x02", "magic number"),
        (b"\x00\x00\x08\x00", "dimensions"),
        (b"\x00\x00\x08\x09", "dimensions"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x00", "dimension is zero"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "bytes after the data"),
        (b"\x00\x00\x08\x02\x00\x00", "header is truncated"),
        (b"\x00\x00", "too short"),
        (b"\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "more data than dialnet reads"),
    ],
)
def test_idx_rejects_bad_files(tmp_path, data, pattern):
    with pytest.raises(DataError, match=pattern):
        idx.read_idx(_raw(tmp_path, "bad.idx", data))


def test_idx_rejects_broken_gzip_and_missing_file(tmp_path):
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(200))
    with pytest.raises(DataError, match="gzip stream is broken"):
        idx.read_idx(_raw(tmp_path, "cut.gz", good[: len(good) // 2]))
    with pytest.raises(DataError, match="does not exist"):
        idx.read_idx(tmp_path / "nope.gz")
    with pytest.raises(DataError, match="is a folder"):
        idx.read_idx(tmp_path)


def test_idx_pair_checks_counts_and_roles(tmp_path, rng):
    imgs = tmp_path / "i.idx"
    labels = tmp_path / "l.idx"
    idx.write_idx(imgs, rng.integers(0, 255, (4, 6, 6)).astype(np.uint8))
    idx.write_idx(labels, np.array([0, 1, 1], dtype=np.uint8))
    with pytest.raises(DataError, match="different counts"):
        idx.read_idx_pair(imgs, labels)
    with pytest.raises(DataError, match="does not hold class labels"):
        idx.read_idx_pair(labels, imgs)


# ------------------------------------------------------------------ resizing


def test_area_resize_is_the_exact_area_average(rng):
    img = rng.integers(0, 256, (28, 28)).astype(np.uint8)
    ours = images.resize_images(img[None], 25)[0]
    # reference: split every pixel into 25x25 sub-pixels (700x700), then average 28x28 blocks
    fine = np.kron(img.astype(np.float64), np.ones((25, 25)))
    reference = fine.reshape(25, 28, 25, 28).mean(axis=(1, 3))
    np.testing.assert_allclose(ours, reference, atol=1e-3)
    assert ours.mean() == pytest.approx(img.mean(), rel=1e-5)  # total brightness is kept


def test_integer_shrink_matches_pillow_box(rng):
    from PIL import Image

    img = rng.integers(0, 256, (28, 28)).astype(np.uint8)
    ours = images.resize_images(img[None], 14)[0]
    pillow = np.asarray(Image.fromarray(img).resize((14, 14), Image.Resampling.BOX), dtype=np.float32)
    np.testing.assert_allclose(ours, img.reshape(14, 2, 14, 2).mean(axis=(1, 3)), atol=1e-4)
    assert np.abs(ours - pillow).max() <= 1.0  # Pillow rounds to whole uint8 levels


@pytest.mark.parametrize("n_in, n_out", [(28, 25), (28, 14), (25, 28), (7, 20)])
def test_resample_rows_sum_to_one_and_keep_constants(n_in, n_out):
    R = images.resample_matrix(n_in, n_out)
    assert R.shape == (n_out, n_in) and (R >= 0).all()
    np.testing.assert_allclose(R.sum(axis=1), 1.0)
    ramp = np.arange(n_in, dtype=np.float64)
    assert (np.diff(R @ ramp) > 0).all()  # a brightness ramp stays a ramp


# ------------------------------------------------------------------ bundled mnist-10k


def test_bundled_mnist_10k_resized_to_25():
    ds = datasets.load()
    assert (ds.X_train.shape, ds.X_test.shape) == ((8000, 625), (2000, 625))
    assert ds.X_train.dtype == np.float32 and 0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0
    assert ds.class_names[:3] == ["zero", "one", "two"] and ds.n_classes == 10
    assert set(np.unique(ds.y_train)) == set(range(10)) and set(np.unique(ds.y_test)) == set(range(10))
    assert ds.kind == "image" and ds.image_size == 25 and ds.background < 0.05  # white digits on black
    assert datasets.load("mnist-10k", image_size=28).n_features == 784


def test_bundled_data_ships_with_its_attribution():
    folder = os.path.join(datasets.BUNDLED, "mnist-10k")
    names = set(os.listdir(folder))
    assert {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz", "README.md"} <= names
    note = pathlib.Path(folder, "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 3.0" in note and "LeCun" in note and "MIT" in note
    pyproject = pathlib.Path(__file__).resolve().parents[2].joinpath("pyproject.toml").read_text(encoding="utf-8")
    assert "data/bundled/mnist-10k/*" in pyproject


# ------------------------------------------------------------------ CSV


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_csv_with_header_and_string_labels(tmp_path):
    path = _write(tmp_path, "iris.csv", "sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n4.9,1.4,setosa\n")
    ds = datasets.load(path)
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert ds.y_train.tolist() == [0, 1, 2, 0] and ds.feature_names == ["sepal", "petal"]
    np.testing.assert_array_equal(ds.X_train[1], [7.0, 4.7])
    assert ds.target == "species" and ds.X_test is None and ds.kind == "table"


def test_csv_without_header_numeric_labels_semicolons(tmp_path):
    path = _write(tmp_path, "seeds.csv", "15.26;14.84;1\n14.88;14.57;1\n17.63;15.98;2\n11.84;13.21;3\n12.1;13.0;3\n16.0;15.1;2\n")
    ds = datasets.load(path)
    assert ds.class_names == ["1", "2", "3"] and ds.y_train.tolist() == [0, 0, 1, 2, 2, 1]
    assert ds.X_train.shape == (6, 2) and ds.feature_names == ["x0", "x1"] and ds.task == "classification"


def test_csv_target_by_name_and_index(tmp_path):
    path = _write(tmp_path, "t.csv", "label,a,b\nyes,1,2\nno,3,4\nyes,5,6\n")
    by_name = datasets.load(path, target="label")
    by_index = datasets.load(path, target=0)
    for ds in (by_name, by_index):
        assert ds.class_names == ["no", "yes"] and ds.y_train.tolist() == [1, 0, 1]
        np.testing.assert_array_equal(ds.X_train[:, 0], [1, 3, 5])
    with pytest.raises(DataError, match="target column 'colour'"):
        datasets.load(path, target="colour")
    with pytest.raises(DataError, match="out of range"):
        datasets.load(path, target=7)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("a,b,c\n1,,0\n2,NA,1\n", r"column 'b' of bad.csv has no values"),
        ("1,2,0\n\n2,3\n", r"row 3 of bad.csv has 2 columns"),
        ("1,2,0\n2,3,0\n", r"only one class"),
        ("a,b,c\n1,2,0.5\n2,3,0.5\n", r"one value only"),
        ("a,b,c\n", r"header but no data rows"),
        ("\n\n", r"is empty"),
        ("1\n2\n", r"only one column"),
        ("a,b,c\n1,2,\n3,4,?\n", r"label column 'c' of bad.csv is empty"),
    ],
)
def test_csv_errors_name_row_and_column(tmp_path, text, pattern):
    with pytest.raises(DataError, match=pattern):
        datasets.load(_write(tmp_path, "bad.csv", text))


def test_csv_binary_file_is_refused(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="not a text CSV"):
        datasets.load(str(p))


def test_header_detection():
    assert tabular.has_header([["a", "b"], ["1", "2"]])
    assert not tabular.has_header([["1", "x"], ["2", "y"]])
    assert tabular.has_header([["width", "class"], ["1.5", "cat"]])


# ------------------------------------------------------------------ image folders


def _image_folder(root, classes=("cat", "dog"), per_class=3, seed=0):
    from PIL import Image

    r = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            size = (30 + 5 * i, 20 + 7 * i)  # sizes and modes differ: all become grayscale size x size
            pixels = (r.random(size[::-1] + (3,)) * 60 + 180 * c).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{i}.png")
    (root / classes[0] / "notes.txt").write_text("not an image")
    return root


def test_image_folder_loads_grayscale_resized(tmp_path):
    ds = datasets.load(str(_image_folder(tmp_path / "pets")), image_size=10)
    assert ds.class_names == ["cat", "dog"] and ds.X_train.shape == (6, 100)
    assert ds.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.X_train[:3].mean() < 0.35 < 0.7 < ds.X_train[3:].mean()  # dark cats, light dogs, in [0, 1]
    assert ds.kind == "image" and ds.image_size == 10


def test_image_folder_errors(tmp_path):
    root = _image_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(DataError, match="at least 2 classes"):
        datasets.load(str(root))
    bad = _image_folder(tmp_path / "bad")
    (bad / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="as an image"):
        datasets.load(str(bad))
    with pytest.raises(ConfigError, match="image size"):
        datasets.load(str(_image_folder(tmp_path / "ok")), image_size=1)


# ------------------------------------------------------------------ dispatch


def _idx_files(folder, rng, n_train=12, n_test=6, side=8):
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        paths[f"{split}-images"] = os.path.join(folder, f"{split}-images-idx3-ubyte.gz")
        paths[f"{split}-labels"] = os.path.join(folder, f"{split}-labels-idx1-ubyte.gz")
        idx.write_idx(paths[f"{split}-images"], rng.integers(0, 256, (n, side, side)).astype(np.uint8))
        idx.write_idx(paths[f"{split}-labels"], (np.arange(n) % 3).astype(np.uint8))
    return paths


def test_load_idx_folder_and_explicit_paths(tmp_path, rng):
    p = _idx_files(tmp_path / "digits", rng)
    ds = datasets.load(str(tmp_path / "digits"), image_size=5)
    assert ds.X_train.shape == (12, 25) and ds.X_test.shape == (6, 25) and ds.class_names == ["0", "1", "2"]
    two = datasets.load([p["train-images"], p["train-labels"]], image_size=5)
    assert two.X_test is None and two.X_train.shape == (12, 25)
    four = datasets.load([p["train-images"], p["train-labels"], p["t10k-images"], p["t10k-labels"]], image_size=5)
    np.testing.assert_array_equal(four.X_test, ds.X_test)
    with pytest.raises(DataError, match="one IDX file"):
        datasets.load(p["train-labels"])
    with pytest.raises(DataError, match="no such data set or file"):
        datasets.load("cifar-10")


# ------------------------------------------------------------------ verified downloads


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> (body, declared length)

    def do_GET(self):  # noqa: N802  (http.server's name)
        body, length = self.files.get(self.path, (None, None))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _labels_gz():
    return gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 3, 1, 4, 1]), mtime=0)


def _cache_files(cache):
    return sorted(f for _, _, fs in os.walk(cache) for f in fs)


def test_download_good_hash_is_cached_and_reused(tmp_path, server):
    httpd, url = server
    body = _labels_gz()
    _Handler.files = {"/l.gz": (body, len(body))}
    table = {"l.gz": (hashlib.sha256(body).hexdigest(), len(body))}
    paths = download.fetch("tiny", cache=str(tmp_path), base_url=url, files=table)
    assert idx.read_idx(paths["l.gz"]).tolist() == [3, 1, 4, 1]
    assert _cache_files(tmp_path) == ["l.gz"]
    httpd.shutdown()  # the second time comes from the cache: no server needed
    assert download.fetch("tiny", cache=str(tmp_path), base_url=url, files=table) == paths


def test_download_bad_hash_leaves_nothing(tmp_path, server):
    _, url = server
    body = _labels_gz()
    _Handler.files = {"/l.gz": (body, len(body))}
    with pytest.raises(DataError, match="failed its SHA-256 check"):
        download.fetch("tiny", cache=str(tmp_path), base_url=url, files={"l.gz": ("0" * 64, None)})
    assert _cache_files(tmp_path) == []


def test_download_truncated_file_leaves_nothing(tmp_path, server):
    _, url = server
    body = _labels_gz()
    _Handler.files = {"/l.gz": (body[:10], len(body))}  # promises more bytes than it sends
    with pytest.raises(DataError, match="cut short|cannot download"):
        download.fetch("tiny", cache=str(tmp_path), base_url=url, files={"l.gz": (hashlib.sha256(body).hexdigest(), None)})
    assert _cache_files(tmp_path) == []


def test_download_server_down_and_damaged_cache(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "l.gz").write_bytes(b"damaged")  # a bad cached copy is dropped, then re-fetched
    with pytest.raises(DataError, match="cannot download") as info:
        download.fetch("tiny", cache=str(tmp_path), base_url=f"http://127.0.0.1:{port}", files={"l.gz": ("a" * 64, None)},
                       timeout=5)
    assert info.value.fix and _cache_files(tmp_path) == []


def test_official_hash_table_is_complete(monkeypatch, tmp_path):
    for name in ("mnist", "fashion-mnist"):
        files = download.REMOTE[name]["files"]
        assert set(files) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) and size > 0 for h, size in files.values()), files
    monkeypatch.setenv("DIALNET_CACHE", str(tmp_path / "c"))
    assert download.cache_dir() == str(tmp_path / "c")


# ------------------------------------------------------------------ preprocessing


def test_minmax_and_standard_scaling(rng):
    X = rng.normal(5.0, 3.0, (50, 4))
    X[:, 2] = 7.0  # a constant feature maps to 0, not to NaN
    pre = fit_preprocessing(X, "minmax", feature_names=list("abcd"))
    Xs = apply_preprocessing(pre, X, np.float64)
    np.testing.assert_allclose(Xs.min(0)[[0, 1, 3]], 0.0, atol=1e-12)
    np.testing.assert_allclose(Xs.max(0)[[0, 1, 3]], 1.0)
    assert (Xs[:, 2] == 0).all()
    std = apply_preprocessing(fit_preprocessing(X, "standard"), X, np.float64)
    np.testing.assert_allclose(std.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(std.std(0)[[0, 1, 3]], 1.0)
    config = pre.to_config()
    assert json.loads(json.dumps(config)) == config  # stored as plain JSON in the model file
    assert Preprocessor.from_config(config, 4) == pre
    with pytest.raises(ShapeError, match="different number of features"):
        apply_preprocessing(pre, X[:, :3])
    with pytest.raises(ConfigError, match="unknown scaling"):
        fit_preprocessing(X, "log")


def test_image_scaling_uses_one_constant_for_all_pixels(rng):
    X = rng.random((20, 16)) * 0.5
    X[:, 0] = 0.0  # a corner pixel that is always black must not be blown up
    pre = fit_preprocessing(X, "minmax", kind="image", image_size=4, background=0.0)
    assert isinstance(pre["min"], float) and pre["image_size"] == 4
    Xs = apply_preprocessing(pre, X, np.float64)
    assert Xs.max() == pytest.approx(1.0) and (Xs[:, 0] == 0.0).all()


def test_validate_preprocessing_refuses_foreign_values():
    validate_preprocessing({"scaling": "minmax", "min": [0.0, 1.0], "max": [1.0, 2.0]}, 2)
    bad = [
        {"scaling": "log"},
        {"scaling": "minmax", "min": [0.0], "max": [1.0]},
        {"scaling": "standard", "mean": ["x", 1], "std": [1, 1]},
        {"input": "image", "image_size": 3, "scaling": "none"},
        {"scaling": "none", "feature_names": ["a"]},
    ]
    for pre in bad:
        with pytest.raises(ModelFileError):
            validate_preprocessing(pre, 2)


# ------------------------------------------------------------------ the fit loop as the CLI uses it


def _blobs(n=240, seed=0):
    r = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    y = np.arange(n) % 3
    return (centres[y] + r.normal(0, 0.7, (n, 2))).astype(np.float32), y


def test_fit_reduces_loss_on_a_separable_problem():
    X, y = _blobs()
    net = dn.mlp([2, 8, 3], activation="sigmoid", output="softmax", seed=0)
    h = net.fit(X, y, epochs=30, batch_size=16, optimizer=dn.Adam(lr=0.01), seed=0)
    assert h.history["loss"][-1] < 0.3 * h.history["loss"][0]
    assert net.evaluate(X, y)["accuracy"] > 0.95


def test_target_certainty_stops_early_and_says_so():
    X, y = _blobs()
    net = dn.mlp([2, 8, 3], activation="sigmoid", output="softmax", seed=0)
    h = net.fit(X, y, epochs=500, batch_size=16, optimizer=dn.Adam(lr=0.01), validation_split=0.2,
                target_certainty=0.8, seed=0)
    assert len(h.epochs) < 500 and h.history["val_certainty"][-1] >= 0.8
    assert "target certainty 0.8 reached" in h.stop_reason
    assert h.history["val_certainty"][-2] < 0.8  # it stopped at the first epoch that got there


def test_early_stopping_restores_the_best_weights():
    X, y = _blobs()
    Xv, yv = _blobs(60, seed=1)
    yv = (yv + 1) % 3  # validation labels that disagree: validation loss soon only gets worse
    seen = {}

    class Snap(dn.Callback):
        def on_epoch_end(self, epoch, logs, net):
            seen[epoch] = net.copy_weights()

    net = dn.mlp([2, 8, 3], activation="sigmoid", output="softmax", seed=0)
    h = net.fit(X, y, epochs=200, batch_size=16, optimizer=dn.Adam(lr=0.01), validation_data=(Xv, yv),
                early_stopping=3, callbacks=[Snap()], seed=0)
    best = int(np.argmin(h.history["val_loss"]))
    assert "early stopping" in h.stop_reason and h.best_epoch == best and len(h.epochs) == best + 5
    for a, b in zip(net.copy_weights(), seen[best]):
        np.testing.assert_array_equal(a, b)


def test_save_load_keeps_predictions_with_preprocessing(tmp_path):
    X, y = _blobs()
    X = X * 100 + 1000  # raw units: only the stored scaling makes them usable
    pre = fit_preprocessing(X, "minmax", feature_names=["u", "v"], target="kind")
    net = dn.mlp([2, 8, 3], activation="sigmoid", output="softmax", seed=0)
    net.fit(apply_preprocessing(pre, X), y, epochs=20, batch_size=16, optimizer=dn.Adam(lr=0.01), seed=0)
    net.preprocessing, net.class_names = pre, ["a", "b", "c"]
    net.save(tmp_path / "m.safetensors")
    back = dn.load(tmp_path / "m.safetensors")
    assert back.preprocessing == pre and back.class_names == ["a", "b", "c"]
    assert isinstance(back.preprocessing, Preprocessor)
    np.testing.assert_array_equal(back.predict_proba(back.preprocessing.transform(X)), net.predict_proba(pre.transform(X)))
    assert (back.predict(back.preprocessing.transform(X)) == y).mean() > 0.95
