"""IDX files, the format MNIST ships in: gzip-compressed or raw.

Layout (big-endian): two zero bytes, a type code, the number of
dimensions ``d``, then ``d`` 32-bit sizes, then the values in C order.
Everything is checked before an array is built: the magic, the type, the
dimensions, and that the data are exactly as long as the sizes say.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from ..errors import DataError

# type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_DIMS = 4
MAX_BYTES = 2 * 1024**3  # a decompressed IDX larger than this is refused (a gzip bomb, a wrong file)
_GZIP_MAGIC = b"\x1f\x8b"


def _open(path):
    """Open raw or gzip IDX by its first bytes (not its name)."""
    spath = os.fspath(path)
    if os.path.isdir(spath):
        raise DataError(f"{spath} is a folder, not an IDX file", expected="an IDX file", got="a directory",
                        fix="pass the path of a file such as train-images-idx3-ubyte.gz")
    try:
        fh = open(spath, "rb")
    except FileNotFoundError:
        raise DataError(f"IDX file {spath} does not exist", expected="an existing file", got=spath,
                        fix="check the path") from None
    except OSError as exc:
        raise DataError(f"cannot read IDX file {spath}", expected="a readable file", got=exc.strerror or str(exc),
                        fix="check the path and its permissions") from None
    head = fh.read(2)
    fh.seek(0)
    return (gzip.GzipFile(fileobj=fh, mode="rb") if head == _GZIP_MAGIC else fh), fh


def _bad(path, what, expected, got):
    return DataError(f"{path} is not a valid IDX file: {what}", expected=expected, got=got,
                     fix="pass an IDX file such as MNIST's train-images-idx3-ubyte(.gz), or re-download it")


def read_idx(path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a native-endian NumPy array.

    Raises
    ------
    DataError
        Missing file, bad magic, unknown type code, zero or too many
        dimensions, a truncated file or one with bytes left over, a broken
        gzip stream.
    """
    spath = os.fspath(path)
    stream, raw = _open(spath)
    try:
        with raw, stream:
            header = stream.read(4)
            if len(header) < 4:
                raise _bad(spath, "it is too short", "at least a 4-byte header", f"{len(header)} bytes")
            zero, type_code, ndim = header[:2], header[2], header[3]
            if zero != b"\x00\x00" or type_code not in IDX_TYPES:
                raise _bad(spath, "the magic number is wrong", "00 00 <type 08/09/0B/0C/0D/0E> <ndim>",
                           header.hex(" "))
            if not 1 <= ndim <= MAX_DIMS:
                raise _bad(spath, "unsupported number of dimensions", f"1 to {MAX_DIMS}", str(ndim))
            dims_raw = stream.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise _bad(spath, "the header is truncated", f"{ndim} dimension sizes", "fewer")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            dtype = IDX_TYPES[type_code]
            nbytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
            if 0 in dims:
                raise _bad(spath, "a dimension is zero", "sizes >= 1", str(dims))
            if nbytes > MAX_BYTES:
                raise _bad(spath, "it declares more data than dialnet reads", f"at most {MAX_BYTES:,} bytes",
                           f"{nbytes:,} bytes for shape {dims}")
            data = stream.read(nbytes)
            if len(data) < nbytes:
                raise _bad(spath, "the data are truncated", f"{nbytes:,} bytes for shape {dims}", f"{len(data):,} bytes")
            if stream.read(1):
                raise _bad(spath, "there are bytes after the data", f"exactly {nbytes:,} bytes for shape {dims}", "more")
    except (OSError, EOFError, zlib.error) as exc:  # a corrupt or truncated gzip stream
        raise _bad(spath, "the gzip stream is broken", "a complete gzip file", str(exc)) from None
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None or not 1 <= array.ndim <= MAX_DIMS:
        raise DataError("this array cannot be written as IDX", expected="uint8/int8/int16/int32/float32/float64, 1-4 dims",
                        got=f"{array.dtype}, {array.ndim} dims", fix="convert it, e.g. array.astype(np.uint8)")
    body = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body += np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(body)


def is_idx(path) -> bool:
    """True when the file's first bytes look like IDX (raw or inside gzip)."""
    try:
        stream, raw = _open(path)
        with raw, stream:
            head = stream.read(4)
    except (DataError, OSError, EOFError, zlib.error):
        return False
    return len(head) == 4 and head[:2] == b"\x00\x00" and head[2] in IDX_TYPES and 1 <= head[3] <= MAX_DIMS


def read_idx_pair(images_path, labels_path):
    """Images and labels from two IDX files, checked against each other.

    Returns ``(images, labels)``: images of shape (n, h, w) or (n, features),
    labels an int64 vector of length n.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{os.fspath(labels_path)} does not hold class labels",
                        expected="a 1-D IDX file of integers (idx1-ubyte)",
                        got=f"{labels.dtype} of shape {labels.shape}",
                        fix="pass the labels file second, e.g. train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz")
    if images.ndim < 2:
        raise DataError(f"{os.fspath(images_path)} does not hold samples",
                        expected="a 2-D (n, features) or 3-D (n, h, w) IDX file",
                        got=f"shape {images.shape}", fix="pass the images file first, then the labels file")
    if images.shape[0] != labels.shape[0]:
        raise DataError("the IDX images and labels have different counts",
                        expected="one label per image", got=f"{images.shape[0]} images, {labels.shape[0]} labels",
                        fix="pass the labels file that belongs to these images")
    return images, labels.astype(np.int64)
