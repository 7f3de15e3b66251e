"""Data sets: bundled mnist-10k, downloaded MNIST / Fashion-MNIST, CSV, IDX and image folders.

``load(source)`` returns a :class:`Dataset` whatever the source:

==================  ==========================================================
source              what it is
==================  ==========================================================
``"mnist-10k"``     bundled: 8,000 train / 2,000 test real MNIST digits
``"mnist"``         the full MNIST (60,000 / 10,000), downloaded once, SHA-256 checked
``"fashion-mnist"`` Zalando's clothing pictures, same layout, downloaded once
``data.csv``        feature columns (numbers or text), label column last (or ``target``)
``folder/``         one sub-folder of images per class, or IDX files
``a.idx b.idx``     explicit IDX paths: images, labels [, test images, test labels]
==================  ==========================================================

Images come out flattened, resized to ``image_size`` x ``image_size`` and
divided by 255 (values in [0, 1]). Tables keep their raw text cells in
``cells``; their numbers (``X_train``: text columns one-hot encoded and
blanks imputed by rules fitted on all rows, for a quick look) are computed
only when read. Training fits the column rules and the scaling on its
training rows only, with a :class:`~dialnet.data.preprocessing.Preprocessor`
that is saved with the model. :mod:`dialnet.data.splits` holds the seeded
train/test splits and K folds.
"""

from __future__ import annotations

import os
import stat

import numpy as np

from ..errors import DataError
from .idx import is_idx, read_idx, read_idx_pair, write_idx
from .download import fetch

from .images import check_image_size, load_image, load_image_folder, resize_images
from .columns import check_columns_have_values
from .preprocessing import encode_columns, encoded_names, fit_columns
from .tabular import load_table

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
BUNDLED = os.path.join(os.path.dirname(__file__), "bundled")
NAMED = ("mnist-10k", "mnist", "fashion-mnist")
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte", "train-images"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte", "train-labels"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte", "test-images-idx3-ubyte", "t10k-images", "test-images"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte", "test-labels-idx1-ubyte", "t10k-labels", "test-labels"),
}


class Dataset:
    """Features, labels and what they mean.

    Attributes
    ----------
    X_train, y_train : ndarray
        ``(n, features)`` float32/float64 and int64 labels 0..K-1
        (float64 values for ``task == "regression"``). For a table read from
        a CSV file, ``X_train`` is computed when first read: its text
        columns one-hot encoded and blanks imputed by rules fitted on all
        rows (for a quick look; training fits them on its training rows
        only, from ``cells``).
    X_test, y_test : ndarray or None
        A separate test split when the source has one (MNIST, IDX folders).
    class_names : list of str
    feature_names : list of str or None
        Input names (None for images).
    kind : {"image", "table"}
    image_size : int or None
        Side of the (square) images, for ``kind == "image"``.
    target : str or None
        The CSV's label column (name or index).
    background : float or None
        Mean of the training images' border pixels (0 = dark, 1 = light),
        so single images can be matched to it in ``predict``.
    task : {"classification", "regression"}
    cells : ndarray of str or None
        A table's raw feature cells ``(n, columns)``, before encoding.
    column_names : list of str or None
        The names of the columns of ``cells``.
    columns : list of dict or None
        The column rules ``X_train`` is encoded with (fitted on all rows; computed when first read).
    notes : list of str
        Things the loader did that a user should hear about (dropped rows, skipped files).
    """

    def __init__(self, name, X_train=None, y_train=None, X_test=None, y_test=None, class_names=None, feature_names=None,
                 kind="table", image_size=None, target=None, background=None, task="classification", cells=None,
                 columns=None, notes=None, column_names=None):
        self.name = name
        self._X_train = X_train
        self.y_train = y_train
        self.X_test, self.y_test = X_test, y_test
        self.class_names = list(class_names) if class_names is not None else []
        self._feature_names = feature_names
        self.kind, self.image_size, self.target, self.background, self.task = kind, image_size, target, background, task
        self.cells = cells
        self._columns = columns
        self.column_names = column_names if column_names is not None or columns is None else [c["name"] for c in columns]
        self.notes = list(notes) if notes is not None else []

    def _encode_cells(self):
        """Fit the column rules on all rows and encode them (only when X_train, feature_names or columns is read)."""
        columns, _notes = fit_columns(self.cells, self.column_names, where=self.name)
        X, _ = encode_columns(columns, self.cells)
        self._columns, self._X_train = columns, X
        if self._feature_names is None:
            self._feature_names = encoded_names(columns)

    @property
    def X_train(self):
        if self._X_train is None and self.cells is not None:
            self._encode_cells()
        return self._X_train

    @X_train.setter
    def X_train(self, value):
        self._X_train = value

    @property
    def feature_names(self):
        if self._feature_names is None and self.cells is not None and self._X_train is None:
            self._encode_cells()
        return self._feature_names

    @feature_names.setter
    def feature_names(self, value):
        self._feature_names = value

    @property
    def columns(self):
        if self._columns is None and self.cells is not None and self.column_names is not None:
            self._encode_cells()
        return self._columns

    @columns.setter
    def columns(self, value):
        self._columns = value

    @property
    def n_rows(self) -> int:
        """Training rows (without the separate test split)."""
        return int(len(self.y_train))

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self):
        test = f", test={len(self.X_test)}" if self.X_test is not None else ""
        return (f"Dataset({self.name!r}, kind={self.kind!r}, train={self.n_rows}{test}, "
                f"features={self.n_features}, classes={self.n_classes})")


def border_mean(images) -> float:
    """Mean of the outermost pixels of square images ``(n, s*s)`` in [0, 1]."""
    images = np.asarray(images)
    s = int(round(np.sqrt(images.shape[1])))
    sq = images.reshape(-1, s, s)
    edge = np.concatenate([sq[:, 0, :], sq[:, -1, :], sq[:, 1:-1, 0], sq[:, 1:-1, -1]], axis=1)
    return float(edge.mean())


def _image_set(images, image_size):
    """Raw (n, h, w) pixels -> (n, size*size) float32 in [0, 1]."""
    images = np.asarray(images)
    top = 255.0 if images.dtype == np.uint8 else max(float(images.max()), 1.0)
    out = resize_images(images, image_size) / np.float32(top)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(len(out), -1)


def _class_names(labels, names=None):
    n = int(labels.max()) + 1 if labels.size else 0
    if names is not None and n <= len(names):
        return list(names)
    return [str(i) for i in range(n)]


def from_idx(train_images, train_labels, test_images=None, test_labels=None, image_size=25, name="idx", names=None):
    """A Dataset from IDX files: images (n, h, w) are resized; (n, features) are kept as a table."""
    Xtr, ytr = read_idx_pair(train_images, train_labels)
    Xte = yte = None
    if test_images is not None:
        Xte, yte = read_idx_pair(test_images, test_labels)
        if Xte.shape[1:] != Xtr.shape[1:]:
            raise DataError("the IDX test images differ in shape from the training images",
                            expected=f"samples of shape {Xtr.shape[1:]}", got=f"{Xte.shape[1:]}",
                            fix="pass test files that belong to the same data set")
    if ytr.min() < 0 or (yte is not None and yte.min() < 0):
        raise DataError("IDX labels must be class numbers 0, 1, 2, ...", expected="labels >= 0", got="negative labels",
                        fix="relabel the classes as 0..K-1")
    labels = ytr if yte is None else np.concatenate([ytr, yte])
    class_names = _class_names(labels, names)
    if Xtr.ndim == 3:
        image_size = check_image_size(image_size)
        Xtr = _image_set(Xtr, image_size)
        Xte = _image_set(Xte, image_size) if Xte is not None else None
        return Dataset(name, Xtr, ytr, Xte, yte, class_names, kind="image", image_size=image_size,
                       background=border_mean(Xtr))
    if Xtr.ndim != 2:
        raise DataError("IDX samples must be pictures (n, h, w) or rows (n, features)", expected="3-D or 2-D image data",
                        got=f"shape {Xtr.shape}", fix="reshape the data before writing the IDX file")
    Xtr = Xtr.astype(np.float64)
    Xte = Xte.astype(np.float64) if Xte is not None else None
    return Dataset(name, Xtr, ytr, Xte, yte, class_names, feature_names=[f"x{i}" for i in range(Xtr.shape[1])])


def _find_idx(folder):
    """The IDX files in a folder by their MNIST-style names (with or without .gz)."""
    entries = {f.lower(): os.path.join(folder, f) for f in os.listdir(folder)}
    found = {}
    for role, stems in IDX_FILES.items():
        for stem in stems:
            for suffix in ("", ".gz"):
                if stem + suffix in entries:
                    found.setdefault(role, entries[stem + suffix])
    return found


def load_idx_folder(folder, image_size=25, name=None, names=None):
    found = _find_idx(folder)
    if "train_images" not in found or "train_labels" not in found:
        raise DataError(f"{folder} holds no IDX training files", expected="train-images-idx3-ubyte(.gz) and train-labels-idx1-ubyte(.gz)",
                        got=", ".join(sorted(os.listdir(folder))[:6]) or "an empty folder",
                        fix="name the files like MNIST's, or pass their paths explicitly")
    has_test = "test_images" in found and "test_labels" in found
    return from_idx(found["train_images"], found["train_labels"], found.get("test_images") if has_test else None,
                    found.get("test_labels") if has_test else None, image_size, name or os.path.basename(os.path.normpath(folder)), names)


def load_mnist_10k(image_size=25) -> Dataset:
    """The bundled 8,000 + 2,000 MNIST digits, resized to ``image_size`` (area resampling)."""
    return load_idx_folder(os.path.join(BUNDLED, "mnist-10k"), image_size, name="mnist-10k", names=DIGIT_NAMES)


def load_remote(name, image_size=25, cache=None, base_url=None) -> Dataset:
    """MNIST or Fashion-MNIST, downloaded once into the cache and checked by SHA-256."""

    paths = fetch(name, cache=cache, base_url=base_url)
    names = DIGIT_NAMES if name == "mnist" else FASHION_NAMES
    return from_idx(paths["train-images-idx3-ubyte.gz"], paths["train-labels-idx1-ubyte.gz"],
                    paths["t10k-images-idx3-ubyte.gz"], paths["t10k-labels-idx1-ubyte.gz"], image_size, name, names)


def load_csv(path, target=None, task="auto", limit=None, seed=0) -> Dataset:
    """A CSV file as a Dataset (see :mod:`dialnet.data.tabular`); ``limit``: a seeded random ``limit`` rows, streamed."""

    name = os.path.basename(os.fspath(path))
    t = load_table(path, target, task, limit, seed)
    check_columns_have_values(t["cells"], t["feature_names"], where=name)
    return Dataset(name, None, t["y"], None, None, t["class_names"], kind="table", target=t["target_name"], task=t["task"],
                   cells=t["cells"], column_names=t["feature_names"], notes=t["notes"])


def load_images(folder, image_size=25) -> Dataset:
    """A folder of images, one sub-folder per class, as a Dataset."""
    notes = []
    X, y, names, _paths = load_image_folder(folder, image_size, notes=notes)
    return Dataset(os.path.basename(os.path.normpath(os.fspath(folder))), X, y, None, None, names, kind="image",
                   image_size=int(image_size), background=border_mean(X), notes=notes)


NPZ_KEYS = (("X", "y"), ("x", "y"), ("X_train", "y_train"))


def load_npz(path, split="train"):
    """Arrays ``(X, y, key)`` from an ``.npz`` file: ``X_{split}``/``y_{split}`` if present, else ``X``/``y``
    (or ``x``/``y``, ``X_train``/``y_train``); ``key`` names the array used."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as an .npz file", expected="arrays X and y saved by numpy.savez",
                        got=str(exc)[:120], fix="save with numpy.savez(path, X=X, y=y)") from None
    for xk, yk in ((f"X_{split}", f"y_{split}"), *NPZ_KEYS):
        if xk in arrays and yk in arrays:
            return arrays[xk], arrays[yk], xk
    raise DataError(f"{path} has no X and y arrays", expected="arrays named X and y (or X_train, y_train)",
                    got="arrays " + ", ".join(sorted(arrays)), fix="save with numpy.savez(path, X=X, y=y)")


def special_file_kind(path) -> str:
    """What a path that is neither a regular file nor a folder is: ``"a FIFO (named pipe)"``, ``"a character device"``..."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "unreadable"
    for test, what in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "a special file"


def _is_image_folder(folder):
    return any(os.path.isdir(os.path.join(folder, d)) and not d.startswith(".") for d in os.listdir(folder))


def load(source="mnist-10k", image_size=25, target=None, cache=None, base_url=None, task="auto", limit=None, seed=0) -> Dataset:
    """Load any supported data source (see the module docstring).

    Parameters
    ----------
    source : str or list of str
        A data set name, a path, or 2 / 4 IDX paths.
    image_size : int
        Side of the square images after resizing (images only).
    target : str or int, optional
        The CSV's label column (name or index; default: the last).
    cache, base_url :
        For ``mnist``/``fashion-mnist``: cache folder and a mirror override.
    task : {"auto", "classification", "regression"}
        For CSV files: what the label column is (see :mod:`dialnet.data.tabular`).
    limit, seed : int, optional
        For CSV files: read only a seeded random ``limit`` rows (the file is
        streamed; the other rows are never held). Other sources ignore it.
    """

    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if len(sources) in (2, 4):
        missing = [s for s in sources if not os.path.isfile(os.fspath(s))]
        if missing:
            raise DataError(f"IDX file {os.fspath(missing[0])} does not exist", expected="existing IDX files",
                            got=os.fspath(missing[0]), fix="check the paths: images, labels [, test images, test labels]")
        return from_idx(*sources, image_size=image_size, name="idx")
    if len(sources) != 1:
        raise DataError("give one data source, or 2 or 4 IDX files", expected="DATA, or images labels [test-images test-labels]",
                        got=f"{len(sources)} paths", fix="pass e.g. mnist-10k, a CSV file or an image folder")
    src = os.fspath(sources[0])
    if src in NAMED and not os.path.exists(src):
        check_image_size(image_size)
        return load_mnist_10k(image_size) if src == "mnist-10k" else load_remote(src, image_size, cache, base_url)
    if os.path.isdir(src):
        if _find_idx(src):
            return load_idx_folder(src, image_size)
        if _is_image_folder(src):
            return load_images(src, check_image_size(image_size))
        raise DataError(f"{src} is neither an image folder nor a folder of IDX files",
                        expected="one sub-folder of images per class, or train-images/train-labels IDX files",
                        got=", ".join(sorted(os.listdir(src))[:6]) or "an empty folder",
                        fix="put each class's images in its own sub-folder")
    if os.path.isfile(src):
        if is_idx(src):
            raise DataError(f"{src} is one IDX file; images and labels are needed", expected="2 or 4 IDX paths, or their folder",
                            got="1 IDX file", fix=f"pass the images then the labels file, or the folder {os.path.dirname(src) or '.'}")
        return load_csv(src, target, task, limit, seed)
    if os.path.exists(src):  # neither a folder nor a regular file: a FIFO, a device such as /dev/zero, a socket
        raise DataError(f"{src} is {special_file_kind(src)}, not a data file", expected="a CSV file, an image folder or IDX files",
                        got=special_file_kind(src), fix="pass a regular file (save the stream to a file first)")
    raise DataError(f"no such data set or file: {src}", expected="mnist-10k, mnist, fashion-mnist, a CSV file, an image folder or IDX files",
                    got=repr(src), fix="check the path, or run `dialnet train` with no DATA for the bundled digits")


__all__ = [
    "Dataset",
    "DIGIT_NAMES",
    "FASHION_NAMES",
    "border_mean",
    "check_image_size",
    "from_idx",
    "load",
    "load_csv",
    "load_idx_folder",
    "load_image",
    "load_image_folder",
    "load_images",
    "load_mnist_10k",
    "load_npz",
    "load_remote",
    "read_idx",
    "read_idx_pair",
    "resize_images",
    "write_idx",
]
