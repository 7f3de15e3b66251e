"""The array library behind one name, and the few calls that differ between libraries.

Layers, losses and optimizers never import numpy for array math; they call
``backend.xp``, written against the Python Array API standard
(https://data-apis.org/array-api/), so the same code runs on:

- ``"numpy"`` (the default, the reference every test compares against);
- ``"array_api_strict"``, the standard's reference namespace: it has only
  what the standard promises, so a run on it proves that no NumPy-only call
  hides in the engine (the test suite trains and gradient-checks on it);
- ``"cupy"``, NVIDIA GPUs through CuPy (``pip install dialnet[gpu]``).

NumPy (and CuPy) can write a result into an existing array (``out=``),
which is most of why a training step allocates nothing; the standard cannot.
That difference lives here and only here:

- :data:`ops` is the namespace for element-wise calls that take ``out=``:
  NumPy or CuPy itself, or, for other libraries, a wrapper that computes the
  result and, when ``out`` is an array, copies it in. Callers always use the
  value returned (``a = ops.exp(z, out=a)``), so either works;
- :func:`buffer_ok` says whether reused output buffers are worth keeping
  (``False``: layers pass ``out=None`` and get fresh arrays);
- :func:`dot`, :func:`greater`, :func:`row_max`, :func:`total`, :func:`vdot`,
  :func:`copy` and :func:`all_true` are NumPy's fastest spelling on NumPy and the standard's
  on the rest. :func:`use` binds each name straight to the NumPy function,
  so the NumPy path pays no extra call.
"""

from __future__ import annotations

import functools
import hashlib

import numpy

from .errors import ConfigError

BACKENDS = ("numpy", "array_api_strict", "cupy")
DEVICES = ("cpu", "cuda")

xp = numpy
ops = numpy
name = "numpy"

_FLOAT_DTYPES = {"float32": numpy.float32, "float64": numpy.float64}


# --------------------------------------------------------------- choosing


def use(backend: str) -> None:
    """Select the array library: ``"numpy"`` (default), ``"array_api_strict"`` or ``"cupy"``.

    Arrays made under one backend are not arrays of another: build (or
    load) networks after choosing, or move them with ``net.to(device)``.
    """
    global xp, ops, name
    if backend == "numpy":
        module, namespace = numpy, numpy
    elif backend == "cupy":
        module = _import_cupy()
        namespace = module
    elif backend == "array_api_strict":
        try:
            import array_api_strict as module  # noqa: PLC0415  (optional: the test backend)
        except ImportError as exc:
            raise ConfigError(
                "the array_api_strict backend was asked for but it is not installed",
                expected="an importable array_api_strict package",
                got=str(exc),
                fix="pip install array-api-strict (it comes with dialnet[dev])",
            ) from None
        namespace = _WithoutOut(module)
    else:
        raise ConfigError(
            f"unknown backend {backend!r}",
            expected="one of " + ", ".join(repr(b) for b in BACKENDS),
            got=repr(backend),
            fix="pass 'numpy' (CPU), 'cupy' (NVIDIA GPU) or 'array_api_strict' (tests)",
        )
    xp, ops, name = module, namespace, backend
    _bind()


def backend_for_device(device) -> str:
    """The backend a ``device=`` argument asks for: ``"cpu"`` is NumPy, ``"cuda"`` (or ``"gpu"``, ``"cuda:0"``) CuPy."""
    if device is None:
        return name
    text = str(device).strip().lower()
    if text == "cpu":
        return "numpy"
    if text in ("cuda", "gpu") or text.startswith("cuda:"):
        if text.startswith("cuda:") and text[5:] not in ("", "0"):
            raise ConfigError(
                f"device {device!r} is not supported",
                expected="'cuda' (the first GPU) or 'cpu'",
                got=repr(device),
                fix="pass device='cuda'; choose the GPU with CUDA_VISIBLE_DEVICES",
            )
        return "cupy"
    raise ConfigError(
        f"unknown device {device!r}",
        expected="'cpu' or 'cuda'",
        got=repr(device),
        fix="pass device='cpu' (NumPy) or device='cuda' (an NVIDIA GPU through CuPy)",
    )


def use_device(device) -> str:
    """Select the backend for ``device`` (see :func:`backend_for_device`); returns its name."""
    wanted = backend_for_device(device)
    if wanted != name:
        use(wanted)
    return wanted


def device_name() -> str:
    """``"cpu"`` or ``"cuda"``: where the current backend's arrays live."""
    return "cuda" if name == "cupy" else "cpu"


def _import_cupy():
    """CuPy, with a GPU it can use; otherwise a ConfigError that says which of the two is missing."""
    try:
        import cupy  # noqa: PLC0415  (heavy and optional)
    except ImportError as exc:
        raise ConfigError(
            "the GPU (cupy) backend was asked for but CuPy is not installed",
            expected="an importable cupy package and an NVIDIA GPU",
            got=f"no cupy ({exc})",
            fix="pip install 'dialnet[gpu]' (CuPy for CUDA 12), or use device='cpu'",
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError, or a driver that cannot load  # noqa: BLE001
        count, why = 0, f"{type(exc).__name__}: {exc}"
    else:
        why = "0 CUDA devices"
    if count < 1:
        raise ConfigError(
            "the GPU (cupy) backend was asked for but CUDA has no usable GPU here",
            expected="an NVIDIA GPU with a working CUDA driver",
            got=why,
            fix="check nvidia-smi and the CUDA driver, or use device='cpu'",
        )
    return cupy


# ------------------------------------------------- the standard, minus out=


class _WithoutOut:
    """An Array API namespace whose functions accept (and honour) NumPy's ``out=``.

    ``ops.f(*args, out=a)`` computes ``xp.f(*args)`` and copies it into
    ``a`` (when ``a`` is an array), returning ``a``; with ``out=None`` it
    returns the fresh result. Only what the standard has is reachable.
    """

    def __init__(self, module):
        self._module = module
        self._cache = {}

    def __getattr__(self, attr):
        fn = self._cache.get(attr)
        if fn is None:
            inner = getattr(self._module, attr)

            def fn(*args, out=None, **kwargs):
                result = inner(*args, **kwargs)
                if out is None:
                    return result
                out[...] = result
                return out

            fn.__name__ = attr
            self._cache[attr] = fn
        return fn


def _write(result, out):
    if out is None:
        return result
    out[...] = result
    return out


def _std_dot(a, b, out=None):
    return _write(xp.matmul(a, b), out)


def _std_greater(a, b, out=None):
    """``1.0`` where ``a > b``, else ``0.0``, in ``a``'s dtype (NumPy writes the booleans straight into a float ``out``)."""
    return _write(xp.astype(xp.greater(a, b), a.dtype), out)


def _std_row_max(z, out=None):
    return _write(xp.max(z, axis=1, keepdims=True), out)


def _std_total(a):
    return xp.sum(a)


def _std_vdot(a, b):
    return xp.sum(xp.multiply(a, b))


def _std_copy(a):
    return xp.asarray(a, copy=True)


def _np_buffer_ok():
    return True


def _std_buffer_ok():
    return False


# NumPy's own functions (partials are C calls: no Python frame on the hot path)
_np_row_max_reduce = functools.partial(numpy.maximum.reduce, axis=1, keepdims=True)


def _np_row_max(z, out=None):
    """Row maxima; for many rows of a few columns, one ``np.maximum`` per column (same bits: max is exact).

    NumPy reduces a short last axis row by row (about 40 ns a row); the
    column form is a handful of vectorized passes, 5x faster on a batch of
    1024 rows of 10 classes, and slower only on small batches, which keep
    the reduction.
    """
    n, k = z.shape
    if out is None or n < 128 or not 2 <= k <= 32:
        return _np_row_max_reduce(z, out=out)
    column = out[:, 0]
    numpy.maximum(z[:, 0], z[:, 1], out=column)
    for j in range(2, k):
        numpy.maximum(column, z[:, j], out=column)
    return out
_np_total = functools.partial(numpy.add.reduce, axis=None)
_np_copy = numpy.ndarray.copy
_np_all_true = functools.partial(numpy.logical_and.reduce, axis=None)


def _bind():
    """Point the calls that differ at the current library's spelling."""
    global dot, greater, row_max, total, vdot, copy, all_true, buffer_ok
    if name == "numpy":
        dot, greater, vdot, row_max, total, copy = numpy.dot, numpy.greater, numpy.vdot, _np_row_max, _np_total, _np_copy
        all_true, buffer_ok = _np_all_true, _np_buffer_ok
    elif name == "cupy":
        dot, greater, vdot = xp.dot, xp.greater, xp.vdot
        row_max = functools.partial(xp.max, axis=1, keepdims=True)
        total, copy, all_true, buffer_ok = xp.sum, xp.ndarray.copy, xp.all, _np_buffer_ok
    else:
        dot, greater, row_max, total, vdot = _std_dot, _std_greater, _std_row_max, _std_total, _std_vdot
        copy, all_true, buffer_ok = _std_copy, xp.all, _std_buffer_ok


dot = numpy.dot
"""``dot(a, b, out=None)``: the matrix product of 2-D (or 1-D and 2-D) arrays, into ``out`` where given."""
greater = numpy.greater
"""``greater(a, b, out)``: the 0/1 mask of ``a > b`` in ``a``'s float dtype (``out`` a float array or None)."""
row_max = _np_row_max
"""``row_max(z, out=None)``: the maximum of each row, shape ``(n, 1)``."""
total = _np_total
"""``total(a)``: the sum of every element, a 0-d array."""
vdot = numpy.vdot
"""``vdot(a, b)``: the sum of ``a * b`` over every element (same shapes)."""
copy = _np_copy
"""``copy(a)``: a new array with ``a``'s values."""
all_true = _np_all_true
"""``all_true(a)``: whether every element of the boolean array ``a`` is true (a 0-d array or bool)."""
buffer_ok = _np_buffer_ok
"""``buffer_ok()``: True when results can be written into reused buffers (``out=``)."""


# ---------------------------------------------------------- dtypes, moves


def resolve_dtype(dtype) -> numpy.dtype:
    """Map ``"float32"``/``"float64"`` (or the NumPy or backend types) to a NumPy dtype.

    Networks keep their dtype as a NumPy dtype whatever the backend (it
    names the model file's dtype); :func:`native_dtype` gives the backend's own.
    """
    if dtype is None:
        return numpy.dtype(numpy.float32)
    key = dtype if isinstance(dtype, str) else numpy_dtype(dtype).name
    if key not in _FLOAT_DTYPES:
        raise ConfigError(
            f"unsupported dtype {dtype!r}",
            expected="'float32' or 'float64'",
            got=repr(dtype),
            fix="pass dtype='float32' (fast) or dtype='float64' (exact checks)",
        )
    return numpy.dtype(_FLOAT_DTYPES[key])


def numpy_dtype(dtype) -> numpy.dtype:
    """The NumPy dtype matching a NumPy, CuPy or Array API dtype (e.g. ``array.dtype`` of any backend)."""
    if isinstance(dtype, numpy.dtype):
        return dtype
    try:
        return numpy.dtype(dtype)
    except TypeError:
        return numpy.dtype(str(dtype).rsplit(".", 1)[-1])  # array_api_strict.float32 -> float32


def native_dtype(d):
    """The current backend's dtype for ``d`` (a name, a NumPy dtype, or already the backend's)."""
    if name == "numpy" or name == "cupy":
        return numpy.dtype(d)
    if isinstance(d, (str, numpy.dtype, type)):
        return getattr(xp, numpy.dtype(d).name)
    return d


def asarray(a, dtype=None):
    """``a`` as an array of the current backend (``dtype`` in any spelling), copied only when it must be."""
    if dtype is None:
        return xp.asarray(a)
    if name == "numpy":
        return numpy.asarray(a, dtype=dtype)
    return xp.asarray(a, dtype=native_dtype(dtype))


def astype(a, d):
    """``a`` converted to dtype ``d`` (any spelling): a new array."""
    if name == "numpy" or name == "cupy":
        return a.astype(native_dtype(d))
    return xp.astype(a, native_dtype(d))


def concat(arrays):
    """The arrays joined along the first axis (``concatenate`` in NumPy and CuPy, ``concat`` in the standard)."""
    if name == "numpy" or name == "cupy":
        return xp.concatenate(arrays)
    return xp.concat(arrays)


def to_numpy(array):
    """A NumPy array with ``array``'s values, whatever the backend (copied to the host from a GPU)."""
    if isinstance(array, numpy.ndarray):
        return array
    if type(array).__module__.startswith("cupy"):  # whatever the backend now: a GPU array copies to the host
        return array.get()
    if hasattr(array, "__dlpack__") and not numpy.isscalar(array):
        return numpy.from_dlpack(array)
    return numpy.asarray(array)


def array_digest(*arrays) -> str:
    """A 32-hex-digit BLAKE2b digest of arrays' shapes, dtypes and bytes, from any backend (None counts as a marker).

    The data fingerprint of checkpoints and the agreement check of distributed runs.
    """
    h = hashlib.blake2b(digest_size=16)
    for arr in arrays:
        if arr is None:
            h.update(b"-")
            continue
        arr = numpy.ascontiguousarray(to_numpy(arr))
        h.update(f"{arr.shape}{arr.dtype}".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()
