"""Training data is moved and copied once per fit, not per epoch: shuffling reads rows by number."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import dialnet as dn
from dialnet.train import compiled


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_shuffled_epochs_make_no_copy_of_the_training_set(numpy_backend, rng, engine):
    if engine == "compiled" and compiled.kernels() is None:
        pytest.skip("numba is not installed")
    X = rng.standard_normal((6000, 150), dtype=np.float32)  # 3.6 MB, already the network's dtype: not copied on entry
    y = rng.integers(0, 4, size=6000)
    net = dn.mlp([150, 16, 4], seed=0)
    net.fit(X[:64], y[:64], epochs=1, batch_size=32, seed=0, engine=engine)  # buffers, imports, kernels settle first
    tracemalloc.start()
    try:
        net.fit(X, y, epochs=3, batch_size=32, seed=0, engine=engine)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 4, f"peak {peak:,} bytes traced while training on {X.nbytes:,} bytes of inputs"


def test_shuffled_training_sees_every_row_once_per_epoch(numpy_backend, rng):
    """The gathered batches are the shuffled rows: a run equals one fed the same permutation unshuffled."""
    X = rng.standard_normal((50, 5))
    y = rng.integers(0, 3, size=50)
    a = dn.mlp([5, 4, 3], dtype="float64", seed=1)
    a.fit(X, y, optimizer=dn.SGD(lr=0.1), epochs=1, batch_size=8, seed=7, shuffle=True)
    order = np.random.default_rng(7).permutation(50)
    b = dn.mlp([5, 4, 3], dtype="float64", seed=1)
    b.fit(X[order], y[order], optimizer=dn.SGD(lr=0.1), epochs=1, batch_size=8, shuffle=False)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
