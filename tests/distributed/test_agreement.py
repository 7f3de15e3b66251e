"""The fingerprint's descriptions: equal exactly when two ranks were given the same thing (no MPI needed)."""

from __future__ import annotations

import time

import numpy as np

import dialnet as dn
from dialnet.distributed.agreement import describe, digest


class Timed(dn.Callback):
    def __init__(self, patience):
        self.patience = patience
        self.started = time.time()  # differs from process to process: not a setting


def test_arrays_are_described_by_shape_dtype_and_bytes():
    a = np.arange(12.0).reshape(3, 4)
    assert describe(a) == describe(a.copy())
    b = a.copy()
    b[2, 3] += 1e-12
    assert describe(a) != describe(b)
    assert describe(a) != describe(a.astype(np.float32))
    assert digest(a, None) != digest(a)


def test_optimizers_by_their_settings_and_objects_by_type_and_whole_number_settings():
    assert describe(dn.Adam(lr=0.01)) == describe(dn.Adam(lr=0.01))
    assert describe(dn.Adam(lr=0.01)) != describe(dn.Adam(lr=0.02))
    assert describe(dn.Adam()) != describe(dn.SGD())
    first, later = Timed(3), Timed(3)
    later.started += 5.0
    assert describe([first]) == describe([later])  # a start time is not compared
    assert describe([Timed(3)]) != describe([Timed(4)])
    assert "0x" not in describe([first])  # never an address, which differs between processes


def test_plain_values_and_containers():
    assert describe({"b": 1, "a": [1, 2.5, "x", None]}) == describe({"a": [1, 2.5, "x", None], "b": 1})
    assert describe(np.int64(3)) == describe(3)
    assert describe((1, 2)) != describe((2, 1))
