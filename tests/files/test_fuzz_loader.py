"""Fuzzing the model loader: mutated model files raise DialnetError and nothing else, in bounded memory.

Two kinds of mutation of a valid file: raw bytes (flip, insert, delete,
truncate, a false header length) and structural ones (a field of the
safetensors header or of the dialnet metadata replaced by a hostile value:
huge or negative sizes, wrong types, deep nesting, long lists).
"""

from __future__ import annotations

import json
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dialnet as dn
from dialnet.files import modelfile as io

MEMORY_LIMIT = 32 * 1024**2  # bytes traced per example; the valid file is ~2 KB
FUZZ = settings(max_examples=600, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _valid_file() -> bytes:
    net = dn.mlp([6, 5, 3], activation="leaky_relu", dropout=0.1, seed=0)
    net.class_names = ["a", "b", "c"]
    net.preprocessing = {"scale": 1.0}
    return io.pack(io.network_tensors(net), io.network_metadata(net))


VALID = _valid_file()
(HEADER_LEN,) = struct.unpack("<Q", VALID[:8])
HEADER = json.loads(VALID[8 : 8 + HEADER_LEN])
META = json.loads(HEADER["__metadata__"]["dialnet"])
BODY = VALID[8 + HEADER_LEN :]
X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6)


def _load(data: bytes):
    """Everything a user's `dialnet.load` does after reading the file, plus one prediction."""
    tensors, meta = io.parse_bytes(data, "fuzzed.safetensors")
    net = io.build_network(tensors, meta, "fuzzed.safetensors")
    with np.errstate(all="ignore"):
        net.predict_proba(X)


def _check(data: bytes):
    tracemalloc.start()  # traced per example, so Hypothesis's own allocations do not count (or slow it down)
    try:
        _load(data)
    except dn.DialnetError as exc:
        assert "\n" not in str(exc)  # the CLI prints it on one line
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"loading {len(data)} bytes traced {peak:,} bytes"


@st.composite
def byte_mutations(draw):
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "set", "insert", "delete", "truncate", "header_len"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 32))]
        elif op == "truncate":
            del data[pos:]
        else:
            data[:8] = struct.pack("<Q", draw(st.sampled_from([0, 1, HEADER_LEN - 1, HEADER_LEN + 1, len(data), 2**63, 2**64 - 1])))
    return bytes(data)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, (*prefix, i))


RAW = "\u0000RAW\u0000"  # placeholder replaced by raw JSON text (nesting too deep for json.dumps)

HOSTILE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31, 2**31 + 1, 2**32, 2**62, 2**63, -1, 0, 1, 10**30, 1e308, -0.0, float("nan"), float("inf")]),
    st.text(max_size=20),
    st.sampled_from(["F32", "F64", "I64", "U8", "dense", "softmax", "float16", "object", "__import__('os')"]),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-3, 2**33), max_size=6),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3), max_size=3),
    st.integers(100, 5000).map(lambda depth: (RAW, "[" * depth + "]" * depth)),
    st.integers(0, 50_000).map(lambda n: ["c"] * n),
)


@st.composite
def structural_mutations(draw):
    header = json.loads(json.dumps(HEADER))
    meta = json.loads(json.dumps(META))
    raw = None
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(["meta", "meta", "header"]))
        tree = meta if target == "meta" else header
        paths = [p for p in _paths(tree) if p and p[:2] != ("__metadata__", "dialnet")]
        path = draw(st.sampled_from(paths))
        value = draw(HOSTILE)
        if isinstance(value, tuple):
            value, raw = RAW, value[1]
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1])
        else:
            parent[path[-1]] = value
    header.setdefault("__metadata__", {})
    if isinstance(header["__metadata__"], dict):
        header["__metadata__"]["dialnet"] = json.dumps(meta).replace(json.dumps(RAW), raw or "null")
    text = json.dumps(header).replace(json.dumps(RAW), raw or "null").encode()
    return struct.pack("<Q", len(text)) + text + BODY


@FUZZ
@given(byte_mutations())
def test_byte_mutations_raise_only_dialnet_errors(data):
    _check(data)


@FUZZ
@given(structural_mutations())
def test_structural_mutations_raise_only_dialnet_errors(data):
    _check(data)


def test_the_valid_file_loads_and_known_hostile_cases_are_refused():
    _load(VALID)
    started = time.perf_counter()

    def with_header(mutate):
        header = json.loads(json.dumps(HEADER))
        meta = json.loads(json.dumps(META))
        mutate(header, meta)
        header["__metadata__"]["dialnet"] = json.dumps(meta)
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + BODY

    first = next(k for k in HEADER if k != "__metadata__")
    cases = {
        # shape product that wraps around in int64 to exactly the declared byte count
        "int64 wrap": lambda h, m: h[first].update(shape=[2**31, 2**31, 2**31, 2**31], data_offsets=[0, 0]),
        "unhashable dtype": lambda h, m: h[first].update(dtype=["F32"]),
        "unhashable layer type": lambda h, m: m["architecture"][1].update(type=["relu"]),
        "text alpha": lambda h, m: m["architecture"][1].update(alpha="x"),
        "unexpected setting": lambda h, m: m["architecture"][1].update(exec="print(1)"),
        "nested setting": lambda h, m: m["architecture"][2].update(p={"a": 1}),
        "huge class list": lambda h, m: m.update(class_names=["c"] * 100_000),
        "future version": lambda h, m: m.update(format_version=2),
        "f64 weights in a f32 model": lambda h, m: m.update(dtype="float64"),
        "extra tensor": lambda h, m: h.update(evil={"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}),
        "unknown task": lambda h, m: m.update(task=["x"]),
        "unknown loss": lambda h, m: m.update(loss="os.system"),
    }
    for _label, mutate in cases.items():
        with pytest.raises(dn.ModelFileError, match="not a usable dialnet model file"):
            _load(with_header(mutate))
    assert time.perf_counter() - started < 30

