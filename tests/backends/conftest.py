"""The backend fixtures: each test that switches the array library switches it back."""

from __future__ import annotations

import pytest

from dialnet import backend


@pytest.fixture
def strict():
    """``array_api_strict``, the Array API standard's reference namespace, as the backend for one test."""
    pytest.importorskip("array_api_strict")
    backend.use("array_api_strict")
    try:
        yield backend.xp
    finally:
        backend.use("numpy")


@pytest.fixture
def numpy_backend():
    """NumPy as the backend (the default), restored afterwards whatever the test did."""
    backend.use("numpy")
    try:
        yield backend.xp
    finally:
        backend.use("numpy")
