"""The array module behind one name.

Layers, losses and optimizers never import numpy for array math directly;
they call ``backend.xp``. Today that is NumPy; ``use("cupy")`` swaps in
CuPy (same API) so the same code runs on a GPU.
"""

from __future__ import annotations

import numpy

from .errors import ConfigError

xp = numpy
name = "numpy"

_FLOAT_DTYPES = {"float32": numpy.float32, "float64": numpy.float64}


def use(backend: str) -> None:
    """Select the array module: ``"numpy"`` (default) or ``"cupy"``."""
    global xp, name
    if backend == "numpy":
        xp, name = numpy, "numpy"
    elif backend == "cupy":
        try:
            import cupy  # noqa: PLC0415  (heavy and optional)
        except ImportError as exc:
            raise ConfigError(
                "the cupy backend was asked for but CuPy is not installed",
                expected="an importable cupy package",
                got=str(exc),
                fix="pip install cupy-cuda12x, or use backend 'numpy'",
            ) from None
        xp, name = cupy, "cupy"
    else:
        raise ConfigError(
            f"unknown backend {backend!r}",
            expected="'numpy' or 'cupy'",
            got=repr(backend),
            fix="pass backend='numpy'",
        )


def to_numpy(array):
    """Return a NumPy array whatever the backend."""
    if name == "cupy" and not isinstance(array, numpy.ndarray):
        return xp.asnumpy(array)
    return numpy.asarray(array)


def resolve_dtype(dtype) -> numpy.dtype:
    """Map ``"float32"``/``"float64"`` (or the NumPy types) to a dtype."""
    if dtype is None:
        return numpy.dtype(numpy.float32)
    key = numpy.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in _FLOAT_DTYPES:
        raise ConfigError(
            f"unsupported dtype {dtype!r}",
            expected="'float32' or 'float64'",
            got=repr(dtype),
            fix="pass dtype='float32' (fast) or dtype='float64' (exact checks)",
        )
    return numpy.dtype(_FLOAT_DTYPES[key])
