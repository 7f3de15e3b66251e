"""Model files: one ``.safetensors`` file, JSON metadata, no pickle.

The tensors are the dials (``layers.{i}.weights`` / ``layers.{i}.biases``).
The metadata (a JSON string under the key ``"dialnet"``) holds the
architecture, dtype, task, class names, preprocessing (scaling, image
size) and the dialnet version. Loading reads no code: the file is parsed
with size limits and every field is checked before any array is built.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np

from .errors import ModelFileError

FORMAT = "dialnet"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 2 * 1024**3
MAX_HEADER_BYTES = 16 * 1024**2
MAX_LAYERS = 1000
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8, "U32": np.uint32}


def atomic_write_bytes(path, data: bytes):
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never half.

    Temp file in the same folder, fsync, rename over the target, fsync the folder.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ModelFileError(
            "the folder to save into does not exist",
            expected="an existing folder",
            got=folder,
            fix="create the folder first or choose another path",
        )
    fd, tmp = tempfile.mkstemp(prefix=".dialnet-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some file systems cannot fsync a directory; the rename is still atomic
        pass


def network_metadata(net) -> dict:
    from . import __version__  # noqa: PLC0415

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dialnet_version": __version__,
        "architecture": [{"type": layer.name, **layer.config()} for layer in net.layers],
        "dtype": net.dtype.name,
        "task": net.task,
        "loss": net.loss,
        "class_names": list(net.class_names) if net.class_names is not None else None,
        "preprocessing": net.preprocessing or {},
    }


def pack(tensors: dict, meta: dict) -> bytes:
    """Serialize arrays and a JSON-able metadata dict to safetensors bytes."""
    from safetensors.numpy import save as st_save  # noqa: PLC0415

    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    return st_save(arrays, metadata={FORMAT: json.dumps(meta)})


def save(net, path, extra_metadata=None):
    """Save ``net`` to ``path`` (atomically). Returns the path."""
    from . import backend  # noqa: PLC0415

    tensors = {}
    for i, layer in enumerate(net.layers):
        if layer.trainable:
            tensors[f"layers.{i}.weights"] = backend.to_numpy(layer.weights)
            tensors[f"layers.{i}.biases"] = backend.to_numpy(layer.biases)
    meta = network_metadata(net)
    if extra_metadata:
        meta["extra"] = extra_metadata
    atomic_write_bytes(path, pack(tensors, meta))
    return path


def _bad(path, what, expected=None, got=None):
    return ModelFileError(
        f"{path} is not a usable dialnet model file: {what}",
        expected=expected,
        got=got,
        fix="pass a file written by dialnet's save (or `dialnet train --out`), or re-train and save again",
    )


def read_file(path, max_bytes=MAX_FILE_BYTES):
    """Read and validate a safetensors file; return ``(tensors, meta)``.

    Only ``DialnetError`` escapes: a missing, truncated, oversized or
    malformed file, or one from another program, is reported as such.
    """
    spath = os.fspath(path)
    try:
        size = os.path.getsize(spath)
        if size > max_bytes:
            raise _bad(spath, "the file is too large", f"at most {max_bytes:,} bytes", f"{size:,} bytes")
        with open(spath, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ModelFileError(
            f"model file {spath} does not exist",
            expected="a path to a .safetensors file",
            got=spath,
            fix="check the path (train one with `dialnet train --out model.safetensors`)",
        ) from None
    except IsADirectoryError:
        raise ModelFileError(
            f"{spath} is a folder, not a model file",
            expected="a .safetensors file",
            got="a directory",
            fix="pass the path of the model file inside it",
        ) from None
    except OSError as exc:
        raise ModelFileError(
            f"cannot read model file {spath}",
            expected="a readable file",
            got=exc.strerror or str(exc),
            fix="check the path and its permissions",
        ) from None
    return parse_bytes(data, spath)


def parse_bytes(data: bytes, name="<bytes>"):
    if len(data) < 8:
        raise _bad(name, "the file is too short to be safetensors", "at least 8 bytes", f"{len(data)} bytes")
    (n_header,) = struct.unpack("<Q", data[:8])
    if n_header > MAX_HEADER_BYTES or 8 + n_header > len(data):
        raise _bad(name, "the header length is impossible (truncated or not safetensors)", f"at most {min(MAX_HEADER_BYTES, len(data) - 8):,}", f"{n_header:,}")
    try:
        header = json.loads(data[8 : 8 + n_header].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad(name, "the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _bad(name, "the header is not a JSON object", "an object", type(header).__name__)
    raw_meta = header.pop("__metadata__", None)
    if not isinstance(raw_meta, dict) or not isinstance(raw_meta.get(FORMAT), str):
        raise _bad(name, "it has no dialnet metadata (written by another program?)", "a '__metadata__.dialnet' entry", "none")
    try:
        meta = json.loads(raw_meta[FORMAT])
    except (ValueError, RecursionError):
        raise _bad(name, "the dialnet metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise _bad(name, "the dialnet metadata is not a JSON object")
    body = memoryview(data)[8 + n_header :]
    tensors = {}
    spans = []
    for key, info in header.items():
        if not isinstance(info, dict):
            raise _bad(name, f"tensor entry {key!r} is malformed")
        dtype = _DTYPES.get(info.get("dtype"))
        shape = info.get("shape")
        offsets = info.get("data_offsets")
        if dtype is None:
            raise _bad(name, f"tensor {key!r} has an unsupported dtype", "F32 or F64", repr(info.get("dtype"))[:40])
        if not (isinstance(shape, list) and len(shape) <= 4 and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 2**31 for d in shape)):
            raise _bad(name, f"tensor {key!r} has an invalid shape", got=repr(shape)[:80])
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise _bad(name, f"tensor {key!r} has invalid data offsets", got=repr(offsets)[:80])
        begin, end = offsets
        n_items = int(np.prod(shape, dtype=np.int64)) if shape else 1
        nbytes = n_items * np.dtype(dtype).itemsize
        if not (0 <= begin <= end <= len(body)) or end - begin != nbytes:
            raise _bad(name, f"tensor {key!r} points outside the file or has the wrong size (truncated?)", f"{nbytes} bytes within {len(body)}", f"bytes {begin}..{end}")
        spans.append((begin, end))
        tensors[key] = np.frombuffer(body[begin:end], dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)
    spans.sort()
    for (b0, e0), (b1, _e1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise _bad(name, "tensor data regions overlap")
    return tensors, meta


def _check_meta(meta, name):
    from .layers import LAYERS  # noqa: PLC0415

    if meta.get("format") != FORMAT:
        raise _bad(name, "the metadata does not say it is a dialnet model", f"format {FORMAT!r}", repr(meta.get("format"))[:40])
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1 or version > FORMAT_VERSION:
        raise _bad(name, "the file format version is not one this dialnet can read", f"1..{FORMAT_VERSION}", repr(version)[:40] + " (upgrade dialnet?)")
    arch = meta.get("architecture")
    if not isinstance(arch, list) or not arch or len(arch) > MAX_LAYERS:
        raise _bad(name, "the architecture is missing or invalid", f"a list of 1..{MAX_LAYERS} layers", repr(arch)[:80])
    for spec in arch:
        if not isinstance(spec, dict) or spec.get("type") not in LAYERS:
            raise _bad(name, "it names an unknown layer type", "one of " + ", ".join(sorted(LAYERS)), repr(spec)[:80])
    if meta.get("dtype") not in ("float32", "float64"):
        raise _bad(name, "unsupported dtype", "float32 or float64", repr(meta.get("dtype"))[:40])


def build_network(tensors, meta, name="<model>"):
    """Rebuild a Network from validated tensors and metadata."""
    from .errors import DialnetError  # noqa: PLC0415
    from .layers import LAYERS, Dense  # noqa: PLC0415
    from .network import TASKS, Network  # noqa: PLC0415

    _check_meta(meta, name)
    layers = []
    try:
        for i, spec in enumerate(meta["architecture"]):
            cls = LAYERS[spec["type"]]
            kwargs = {k: v for k, v in spec.items() if k != "type"}
            if cls is Dense:
                if not all(isinstance(kwargs.get(k), int) and not isinstance(kwargs.get(k), bool) and 0 < kwargs[k] <= 2**24 for k in ("n_in", "n_out")):
                    raise _bad(name, f"layer {i} has invalid sizes", "positive ints", repr(spec)[:80])
                W, b = tensors.get(f"layers.{i}.weights"), tensors.get(f"layers.{i}.biases")
                if W is None or b is None:
                    raise _bad(name, f"the weights of layer {i} are missing")
                if W.shape != (kwargs["n_in"], kwargs["n_out"]) or b.shape != (kwargs["n_out"],):
                    raise _bad(name, f"layer {i}'s weights do not match its declared shape", f"{(kwargs['n_in'], kwargs['n_out'])}", f"{W.shape}")
                layer = Dense(kwargs["n_in"], kwargs["n_out"], init=kwargs.get("init", "auto") if isinstance(kwargs.get("init"), str) else "auto", dtype=meta["dtype"])
                layer.weights[...] = W
                layer.biases[...] = b
            else:
                layer = cls(**kwargs)
            layers.append(layer)
        net = Network(layers, dtype=meta["dtype"])
    except DialnetError as exc:
        if exc.__class__.__name__ == "ModelFileError":
            raise
        raise _bad(name, f"its architecture is invalid ({exc.what})") from None
    except TypeError as exc:
        raise _bad(name, f"a layer has unexpected settings ({exc})") from None
    if not all(np.isfinite(p).all() for p in net.parameters()):
        raise _bad(name, "its weights contain NaN or infinity")
    task = meta.get("task")
    net.task = task if task in TASKS else net.task
    loss = meta.get("loss")
    net.loss = loss if isinstance(loss, str) else None
    classes = meta.get("class_names")
    if classes is not None:
        if not isinstance(classes, list) or len(classes) != net.n_outputs or not all(isinstance(c, (str, int, float)) for c in classes):
            if not (net.task in ("binary",) and isinstance(classes, list) and len(classes) == 2):
                raise _bad(name, "class_names do not match the output layer", f"{net.n_outputs} names", repr(classes)[:80])
        net.class_names = [str(c) for c in classes]
    pre = meta.get("preprocessing") or {}
    net.preprocessing = pre if isinstance(pre, dict) else {}
    net.metadata = meta
    return net


def load(path):
    """Load a model saved by :func:`save`; it predicts the same bits."""
    tensors, meta = read_file(path)
    return build_network(tensors, meta, os.fspath(path))
