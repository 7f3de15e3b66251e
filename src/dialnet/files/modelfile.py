"""Model files: one ``.safetensors`` file, JSON metadata, no pickle.

The tensors are the dials (``layers.{i}.weights`` / ``layers.{i}.biases``).
The metadata (a JSON string under the key ``"dialnet"``) holds the
architecture, dtype, task, class names, the preprocessing (a
:class:`~dialnet.data.preprocessing.Preprocessor`, written with its
``to_config`` and read back, checked, with ``from_config``) and the
dialnet version. Loading reads no code: the file is parsed
with size limits and every field is checked before any array is built.

What the loader refuses, each as a ``ModelFileError``: anything that is not
a regular file (a folder, a FIFO, ``/dev/zero``), files over
``MAX_FILE_BYTES``, headers over ``MAX_HEADER_BYTES``, JSON nested deeper
than ``MAX_JSON_DEPTH``, more than ``MAX_TENSORS`` tensors, tensors whose
declared shape and byte range disagree (so no allocation is ever larger
than the file), unknown dtypes, layer types or layer settings, weights whose
shape or dtype differ from the architecture, tensors the architecture does
not name, NaN/inf weights, and format versions newer than this dialnet.
Checkpoints (:mod:`dialnet.checkpoint`) are model files with extra
``checkpoint.*`` tensors and a ``"checkpoint"`` metadata entry.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import reprlib
import stat
import struct
import tempfile

import numpy as np

from .. import backend
from .._version import __version__
from ..core.layers import LAYERS, Dense
from ..core.losses import LOSSES
from ..core.network import TASKS, Network
from ..data.preprocessing import as_preprocessor, preprocessor_of
from ..errors import DialnetError, ModelFileError

FORMAT = "dialnet"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 2 * 1024**3
MAX_HEADER_BYTES = 16 * 1024**2
MAX_LAYERS = 1000
MAX_TENSORS = 100_000
MAX_JSON_DEPTH = 64
CHECKPOINT_PREFIX = "checkpoint."
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8, "U32": np.uint32}
_SCALARS = (str, int, float, bool, type(None))

_short_repr = reprlib.Repr()
_short_repr.maxlevel = 3
_short_repr.maxstring = 40
_short_repr.maxother = 40
_short_repr.maxlist = _short_repr.maxdict = 6


def _short(value) -> str:
    """A bounded repr for error messages: a hostile file cannot make the message huge."""
    return _short_repr.repr(value)


def _fspath(path, action):
    try:
        return os.fspath(path)
    except TypeError:
        raise ModelFileError(
            f"cannot {action}: the path is not a file name",
            expected="a str or pathlib.Path",
            got=_short(path),
            fix="pass the file's path as a string",
        ) from None


def _json_default(value):
    """Let NumPy scalars and arrays (class names, scaling constants) go into the metadata."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _umask_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_CREATE_MODE = _umask_mode()


def atomic_write_bytes(path, data: bytes):
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never half.

    Temp file in the same folder, fsync, rename over the target, fsync the folder.
    """
    path = _fspath(path, "save")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ModelFileError(
            "the folder to save into does not exist",
            expected="an existing folder",
            got=folder,
            fix="create the folder first or choose another path",
        )
    if os.path.isdir(path):
        raise ModelFileError(
            f"cannot save to {path}: it is a folder",
            expected="a file name such as model.safetensors",
            got="a directory",
            fix=f"pass a path inside it, e.g. {os.path.join(path, 'model.safetensors')}",
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dialnet-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _CREATE_MODE)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some file systems cannot fsync a directory; the rename is still atomic
        pass


def _cannot_write(path, exc):
    return ModelFileError(
        f"cannot write {path}",
        expected="a writable folder with free space",
        got=exc.strerror or str(exc),
        fix="check the folder's permissions and free disk space, or choose another path",
    )


def network_metadata(net) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dialnet_version": __version__,
        "architecture": [{"type": layer.name, **layer.config()} for layer in net.layers],
        "dtype": net.dtype.name,
        "task": net.task,
        "loss": net.loss,
        "class_names": list(net.class_names) if net.class_names is not None else None,
        "preprocessing": preprocessing_config(net),
    }


def preprocessing_config(net) -> dict:
    """``net.preprocessing`` as the JSON object of the model file (``{}`` when it has none)."""
    pre = preprocessor_of(net)
    return {} if pre is None else pre.to_config()


def pack(tensors: dict, meta: dict) -> bytes:
    """Serialize arrays and a JSON-able metadata dict to safetensors bytes."""
    from safetensors.numpy import save as st_save  # noqa: PLC0415

    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    try:
        text = json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(
            "the model's metadata cannot be written as JSON",
            expected="strings, numbers, lists and dicts (class names, preprocessing)",
            got=str(exc),
            fix="store class names as strings and preprocessing constants as numbers",
        ) from None
    return st_save(arrays, metadata={FORMAT: text})


def network_tensors(net) -> dict:
    """The dials as ``{"layers.{i}.weights": W, "layers.{i}.biases": b}`` NumPy arrays."""
    tensors = {}
    for i, layer in enumerate(net.layers):
        if layer.trainable:
            tensors[f"layers.{i}.weights"] = backend.to_numpy(layer.weights)
            tensors[f"layers.{i}.biases"] = backend.to_numpy(layer.biases)
    return tensors


def save(net, path, extra_metadata=None):
    """Save ``net`` to ``path`` (atomically). Returns the path."""
    tensors = network_tensors(net)
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


def _check_stat(info, spath, max_bytes):
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(spath)
    if not stat.S_ISREG(info.st_mode):
        raise _bad(spath, "it is not a regular file (a device, FIFO or socket?)", "a .safetensors file", "a special file")
    if info.st_size > max_bytes:
        raise _bad(spath, "the file is too large", f"at most {max_bytes:,} bytes", f"{info.st_size:,} bytes")


def read_file(path, max_bytes=MAX_FILE_BYTES):
    """Read and validate a safetensors file; return ``(tensors, meta)``.

    Only ``DialnetError`` escapes: a missing, truncated, oversized or
    malformed file, or one from another program, is reported as such.
    """
    spath = _fspath(path, "load a model")
    try:
        _check_stat(os.stat(spath), spath, max_bytes)  # before opening: open() on a FIFO would block
        with open(spath, "rb") as fh:
            _check_stat(os.fstat(fh.fileno()), spath, max_bytes)  # the file opened is the file checked
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:  # it grew while we read it
            raise _bad(spath, "the file is too large", f"at most {max_bytes:,} bytes", f"more than {max_bytes:,} bytes")
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
    except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL byte in the path
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            f"cannot read model file {spath!r}",
            expected="a readable file",
            got=getattr(exc, "strerror", None) or str(exc),
            fix="check the path and its permissions",
        ) from None
    return parse_bytes(data, spath)


def _check_depth(value, name, what):
    """Refuse JSON nested deeper than MAX_JSON_DEPTH (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _bad(name, f"the {what} is nested too deeply", f"at most {MAX_JSON_DEPTH} levels", "more")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def parse_bytes(data: bytes, name="<bytes>"):
    """Parse safetensors bytes into ``(tensors, meta)`` with every field checked.

    Each tensor's declared shape times its item size must equal its byte
    range inside the file, so nothing allocated here is larger than ``data``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _bad(name, "the data are not bytes", "bytes", type(data).__name__)
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
    _check_depth(header, name, "header")
    raw_meta = header.pop("__metadata__", None)
    if not isinstance(raw_meta, dict) or not isinstance(raw_meta.get(FORMAT), str):
        raise _bad(name, "it has no dialnet metadata (written by another program?)", "a '__metadata__.dialnet' entry", "none")
    try:
        meta = json.loads(raw_meta[FORMAT])
    except (ValueError, RecursionError):
        raise _bad(name, "the dialnet metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise _bad(name, "the dialnet metadata is not a JSON object", "an object", type(meta).__name__)
    _check_depth(meta, name, "dialnet metadata")
    if len(header) > MAX_TENSORS:
        raise _bad(name, "it holds too many tensors", f"at most {MAX_TENSORS:,}", f"{len(header):,}")
    body = memoryview(data)[8 + n_header :]
    tensors = {}
    spans = []
    for key, info in header.items():
        if not isinstance(info, dict):
            raise _bad(name, f"tensor entry {key!r} is malformed")
        raw_dtype = info.get("dtype")
        dtype = _DTYPES.get(raw_dtype) if isinstance(raw_dtype, str) else None
        shape = info.get("shape")
        offsets = info.get("data_offsets")
        if dtype is None:
            raise _bad(name, f"tensor {_short(key)} has an unsupported dtype", "F32 or F64", _short(raw_dtype))
        if not (isinstance(shape, list) and len(shape) <= 4 and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 2**31 for d in shape)):
            raise _bad(name, f"tensor {_short(key)} has an invalid shape", "a list of at most 4 sizes", _short(shape))
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise _bad(name, f"tensor {_short(key)} has invalid data offsets", "[begin, end]", _short(offsets))
        begin, end = offsets
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize  # exact Python ints: no overflow
        if not (0 <= begin <= end <= len(body)) or end - begin != nbytes:
            raise _bad(name, f"tensor {_short(key)} points outside the file or has the wrong size (truncated?)", f"{nbytes} bytes within {len(body)}", f"bytes {begin}..{end}")
        spans.append((begin, end))
        tensors[key] = np.frombuffer(body[begin:end], dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)
    spans.sort()
    for (b0, e0), (b1, _e1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise _bad(name, "tensor data regions overlap")
    return tensors, meta


def _check_meta(meta, name):

    if meta.get("format") != FORMAT:
        raise _bad(name, "the metadata does not say it is a dialnet model", f"format {FORMAT!r}", _short(meta.get("format")))
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1 or version > FORMAT_VERSION:
        hint = " (written by a newer dialnet? upgrade dialnet)" if isinstance(version, int) and version > FORMAT_VERSION else ""
        raise _bad(name, "the file format version is not one this dialnet can read", f"1..{FORMAT_VERSION}", _short(version) + hint)
    arch = meta.get("architecture")
    if not isinstance(arch, list) or not arch or len(arch) > MAX_LAYERS:
        raise _bad(name, "the architecture is missing or invalid", f"a list of 1..{MAX_LAYERS} layers", _short(arch))
    for i, spec in enumerate(arch):
        kind = spec.get("type") if isinstance(spec, dict) else None
        if not isinstance(kind, str) or kind not in LAYERS:
            raise _bad(name, f"layer {i} has an unknown type", "one of " + ", ".join(sorted(LAYERS)), _short(spec))
        settings = _layer_settings(LAYERS[kind])
        for key, value in spec.items():
            if key == "type":
                continue
            if key not in settings:
                raise _bad(name, f"layer {i} ({kind}) has an unexpected setting {_short(key)}", "one of " + (", ".join(sorted(settings)) or "none"), _short(spec))
            if not isinstance(value, _SCALARS):
                raise _bad(name, f"layer {i} ({kind}) setting {key!r} is not a plain value", "a number or a string", _short(value))
    if meta.get("dtype") not in ("float32", "float64"):
        raise _bad(name, "unsupported dtype", "float32 or float64", _short(meta.get("dtype")))


def _layer_settings(cls) -> set:
    """The settings a model file may give a layer: its constructor's named arguments."""
    return {p.name for p in list(inspect.signature(cls.__init__).parameters.values())[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build_network(tensors, meta, name="<model>", network_class=Network):
    """Rebuild a Network (of ``network_class``) from validated tensors and metadata."""
    _check_meta(meta, name)
    layers = []
    try:
        for i, spec in enumerate(meta["architecture"]):
            cls = LAYERS[spec["type"]]
            kwargs = {k: v for k, v in spec.items() if k != "type"}
            if cls is Dense:
                if not all(isinstance(kwargs.get(k), int) and not isinstance(kwargs.get(k), bool) and 0 < kwargs[k] <= 2**24 for k in ("n_in", "n_out")):
                    raise _bad(name, f"layer {i} has invalid sizes", "positive ints", _short(spec))
                W, b = tensors.get(f"layers.{i}.weights"), tensors.get(f"layers.{i}.biases")
                if W is None or b is None:
                    raise _bad(name, f"the weights of layer {i} are missing", f"tensors layers.{i}.weights and layers.{i}.biases", "none")
                # shapes are checked before Dense allocates anything: its size is then bounded by the file's
                if W.shape != (kwargs["n_in"], kwargs["n_out"]) or b.shape != (kwargs["n_out"],):
                    raise _bad(name, f"layer {i}'s weights do not match its declared shape", f"{(kwargs['n_in'], kwargs['n_out'])}", f"{W.shape}")
                if W.dtype != np.dtype(meta["dtype"]) or b.dtype != np.dtype(meta["dtype"]):
                    raise _bad(name, f"layer {i}'s weights are not stored as {meta['dtype']}", meta["dtype"], f"{W.dtype} and {b.dtype}")
                init = kwargs.get("init", "auto")
                layer = Dense(kwargs["n_in"], kwargs["n_out"], init=init if isinstance(init, str) else "auto", dtype=meta["dtype"])
                layer.weights[...] = W
                layer.biases[...] = b
            else:
                layer = cls(**kwargs)
            layers.append(layer)
        net = network_class(layers, dtype=meta["dtype"])
    except DialnetError as exc:
        if exc.__class__.__name__ == "ModelFileError":
            raise
        raise _bad(name, f"its architecture is invalid ({exc.what})") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise _bad(name, f"a layer has unusable settings ({exc})") from None
    expected_tensors = {f"layers.{i}.{part}" for i, layer in enumerate(layers) if layer.trainable for part in ("weights", "biases")}
    for key in tensors:
        if key not in expected_tensors and not (key.startswith(CHECKPOINT_PREFIX) and isinstance(meta.get("checkpoint"), dict)):
            raise _bad(name, f"it holds a tensor the architecture does not use: {_short(key)}", "only layers.{i}.weights/biases of Dense layers", _short(key))
    if not all(np.isfinite(p).all() for p in net.parameters()):
        raise _bad(name, "its weights contain NaN or infinity", "finite numbers", "non-finite values")
    task = meta.get("task")
    if task is not None and not (isinstance(task, str) and task in TASKS):
        raise _bad(name, "it names an unknown task", "one of " + ", ".join(TASKS), _short(task))
    net.task = task or net.task
    loss = meta.get("loss")
    if loss is not None and not (isinstance(loss, str) and loss in LOSSES):
        raise _bad(name, "it names an unknown loss", "one of " + ", ".join(sorted(LOSSES)), _short(loss))
    net.loss = loss
    classes = meta.get("class_names")
    if classes is not None:
        fits = isinstance(classes, list) and (len(classes) == net.n_outputs or (net.task == "binary" and len(classes) == 2))
        if not fits or not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in classes):
            raise _bad(name, "class_names do not match the output layer", f"{net.n_outputs} names", _short(classes))
        net.class_names = [str(c) for c in classes]
    pre = meta.get("preprocessing") or {}
    if not isinstance(pre, dict):
        raise _bad(name, "its preprocessing entry is not a JSON object", "an object", _short(pre))
    net.preprocessing = as_preprocessor(pre, net.n_inputs, name)
    net.metadata = meta
    return net


def load(path, network_class=Network):
    """Load a model saved by :func:`save`; it predicts the same bits.

    ``network_class`` is the class built (``dialnet.Network``, which adds
    ``fit`` and ``save``, when called as ``dialnet.load``).
    """
    tensors, meta = read_file(path)
    return build_network(tensors, meta, os.fspath(path), network_class)
