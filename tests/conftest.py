"""Shared fixtures for the test suite.

Kept small on purpose: torch is imported only by tests that ask for it, so
collecting the suite stays fast, and every random array comes from a seeded
generator.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded NumPy generator: same test, same numbers."""
    return np.random.default_rng(20240601)


@pytest.fixture(scope="session")
def torch64():
    """torch, pinned to one thread (the CI machine is small and shared).

    Reference tests build float64 tensors explicitly; the global default
    dtype is left alone so other tests see torch as it ships.
    """
    import torch  # noqa: PLC0415  (heavy: only for the reference tests)

    torch.set_num_threads(1)
    return torch

