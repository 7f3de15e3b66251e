"""core.memory: the count a network's memory is checked with, against what building one really takes."""

from __future__ import annotations

import tracemalloc

import pytest

import dialnet as dn
from dialnet.core import memory


@pytest.mark.parametrize("sizes, dtype", [([2000, 1000, 10], "float32"), ([500, 500, 500, 10], "float64"), ([3000, 10], "float32")])
def test_the_estimate_bounds_what_building_takes(sizes, dtype):
    est = memory.estimate(sizes, dtype)
    tracemalloc.start()
    try:
        net = dn.mlp(sizes, seed=0, dtype=dtype)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert est.parameters == net.count_parameters() == memory.parameter_count(sizes)
    assert 0.5 * est.building <= peak <= est.building, (peak, est.building)  # an upper bound, and not a loose one
    assert abs(kept - est.network) <= 0.1 * est.network


def test_optimizer_state_and_batch_are_counted():
    plain, adam = memory.estimate([100, 50, 10], optimizer="sgd"), memory.estimate([100, 50, 10], optimizer="adam")
    assert adam.optimizer == 2 * adam.parameters * 4 and plain.optimizer == 0
    assert memory.estimate([100, 50, 10], batch_size=64).batch == 2 * memory.estimate([100, 50, 10], batch_size=32).batch


def test_available_memory_and_its_override(monkeypatch):
    monkeypatch.delenv(memory.ENV_LIMIT, raising=False)
    found = memory.available_bytes()
    assert found is None or found > 0
    monkeypatch.setenv(memory.ENV_LIMIT, "1.5G")
    assert memory.available_bytes() == int(1.5 * 1024**3)
    with pytest.raises(dn.ConfigError, match="does not fit in memory"):
        memory.check_training([40000, 10000, 10])
    monkeypatch.setenv(memory.ENV_LIMIT, "lots")
    with pytest.raises(dn.ConfigError, match="DIALNET_MEMORY_LIMIT is not a memory size"):
        memory.available_bytes()


def test_format_bytes():
    assert memory.format_bytes(512) == "512 bytes"
    assert memory.format_bytes(1536) == "1.5 KiB"
    assert memory.format_bytes(3 * 1024**3) == "3.0 GiB"
