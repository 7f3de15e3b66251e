"""Choosing where the dials live: backend names, devices, moving a network, files from any backend.

No GPU is needed: without CuPy (or CUDA) asking for one must give a clear
DialnetError and leave the backend as it was. The moves between libraries
are checked with array_api_strict standing in for a second library.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import dialnet as dn
from dialnet import backend
from dialnet.errors import ConfigError, DialnetError


def _cuda_usable() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy  # noqa: PLC0415

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001
        return False


needs_no_gpu = pytest.mark.skipif(_cuda_usable(), reason="a usable GPU is here: the missing-GPU errors cannot happen")


@needs_no_gpu
def test_cupy_backend_without_cupy_or_cuda_is_a_clear_error(numpy_backend):
    with pytest.raises(ConfigError) as info:
        backend.use("cupy")
    text = str(info.value)
    assert "dialnet[gpu]" in text or "CUDA" in text
    assert "device='cpu'" in text
    assert backend.name == "numpy" and backend.xp is np and backend.ops is np


@needs_no_gpu
def test_device_cuda_in_mlp_and_fit_is_a_clear_error(numpy_backend, rng):
    with pytest.raises(DialnetError):
        dn.mlp([4, 3, 2], device="cuda", seed=0)
    assert backend.name == "numpy"
    net = dn.mlp([4, 3, 2], seed=0)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(DialnetError):
        net.fit(rng.standard_normal((8, 4)), rng.integers(0, 2, 8), epochs=1, device="gpu")
    assert backend.name == "numpy"
    for p, b in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, b)


@pytest.mark.parametrize(
    ("device", "wanted"), [("cpu", "numpy"), ("CPU", "numpy"), ("cuda", "cupy"), ("gpu", "cupy"), ("cuda:0", "cupy")]
)
def test_device_names(numpy_backend, device, wanted):
    assert backend.backend_for_device(device) == wanted


@pytest.mark.parametrize("bad", ["tpu", "cuda:1", "", "metal"])
def test_unknown_device_is_refused(numpy_backend, bad):
    with pytest.raises(ConfigError) as info:
        backend.backend_for_device(bad)
    assert "cpu" in str(info.value)


def test_unknown_backend_is_refused(numpy_backend):
    with pytest.raises(ConfigError) as info:
        backend.use("torch")
    assert "'numpy'" in str(info.value) and "'cupy'" in str(info.value)
    assert backend.name == "numpy"


def test_numpy_backend_binds_numpy_functions_directly(numpy_backend):
    """The NumPy path pays nothing for the other libraries: the helpers are NumPy's own functions."""
    assert backend.ops is np and backend.dot is np.dot and backend.greater is np.greater and backend.vdot is np.vdot
    assert backend.buffer_ok()


def test_a_network_moves_from_another_library_to_the_cpu_with_its_bits(strict, rng):
    X = rng.standard_normal((10, 5))
    net = dn.mlp([5, 4, 3], activation="tanh", dtype="float64", seed=7)
    assert net.device == "cpu" and not isinstance(net.layers[0].weights, np.ndarray)
    before = [np.array(backend.to_numpy(p)) for p in net.parameters()]
    P_strict = net.predict_proba(X)
    assert net.to("cpu") is net
    assert backend.name == "numpy"
    params = net.parameters()
    assert params.flat is not None  # still one flat array: the optimizer's fast path
    for p, b in zip(params, before):
        assert isinstance(p, np.ndarray)
        np.testing.assert_array_equal(p, b)
    np.testing.assert_allclose(net.predict_proba(X), P_strict, rtol=1e-13)
    net.fit(X, rng.integers(0, 3, 10), epochs=1, batch_size=5, seed=0)  # and it trains there


def test_model_files_are_written_from_host_arrays_and_load_on_numpy(strict, rng, tmp_path):
    X = rng.standard_normal((6, 5))
    net = dn.mlp([5, 4, 3], dtype="float64", seed=2)
    P = net.predict_proba(X)
    path = tmp_path / "model.safetensors"
    net.save(path)
    backend.use("numpy")
    loaded = dn.load(path)
    assert isinstance(loaded.layers[0].weights, np.ndarray)
    np.testing.assert_allclose(loaded.predict_proba(X), P, rtol=1e-13)
