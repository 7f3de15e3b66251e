"""The benchmark command runs and prints its table (no speed is ever asserted here),
and the fast paths it measures compute exactly what the plain formulas compute."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import dialnet as dn
from dialnet.core.losses import CrossEntropy
from dialnet.train.optimizers import FLAT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # `benchmarks` is a top-level folder, not an installed package

from benchmarks import accuracy, memory, run  # noqa: E402
from benchmarks.cases import CASES  # noqa: E402

# ------------------------------------------------------------ the command


def test_quick_run_prints_the_table_for_every_case(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert "samples per second (median)" in text
    for case in CASES:
        assert f"{case.key}. {case.title}" in text
    assert "of this run's float32 matmul peak" in text
    assert "dialnet --help:" in text and "import dialnet:" in text
    report = json.loads(out.read_text())
    assert [r["case"] for r in report["cases"]] == [c.key for c in CASES]
    for r in report["cases"]:
        assert r["samples_per_s"]["dialnet"] > 0


def test_unknown_section_is_refused_by_the_command():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--sections", "speed"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown speed" in done.stderr


def test_flops_per_training_sample_counts_each_matrix_product():
    case4 = next(c for c in CASES if c.key == "4")
    # forward X@W and dW = X.T@dZ for 784x1024, 1024x1024, 1024x10; dX = dZ@W.T for the last two
    forward = 784 * 1024 + 1024 * 1024 + 1024 * 10
    assert case4.train_flops_per_sample() == 2 * (forward + forward + 1024 * 1024 + 1024 * 10)


def test_targets_are_checked_against_the_measured_ratios():
    report = {"cases": [{"case": "1", "samples_per_s": {"dialnet": 700.0, "torch": 100.0}},
                        {"case": "3", "samples_per_s": {"dialnet": 140.0, "torch": 100.0}}],
              "startup": {"help_s": 0.5}}
    checks = {name: (value, met) for name, value, met in run.check_targets(report)}
    assert checks["case 1: dialnet >= 6x torch"] == ("7.00x", True)
    assert checks["case 3: dialnet >= 1.5x torch"] == ("1.40x", False)
    assert checks["dialnet --help <= 0.3 s"] == ("0.500 s", False)


def test_memory_probe_reports_a_peak_at_least_the_rss_before_training():
    result = memory.measure_here("dialnet", samples=256)
    assert result["tool"] == "dialnet" and result["samples"] == 256
    assert result["peak_mib"] >= result["before_training_mib"] > 0


def test_one_pixel_shift_moves_every_pixel_and_fills_zeros():
    image = np.arange(1, 10, dtype=np.float32).reshape(1, 9)  # a 3x3 picture
    right = accuracy.shifted(image, 1, 0, side=3).reshape(3, 3)
    assert right.tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    up = accuracy.shifted(image, 0, -1, side=3).reshape(3, 3)
    assert up.tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
    X, y = accuracy.with_shifts(image, np.array([3]), side=3)
    assert X.shape == (5, 9) and y.tolist() == [3] * 5


# ------------------------------------------- fast paths keep the math exact


def _net(dtype="float64", activation="sigmoid"):
    return dn.mlp([6, 5, 4, 3], activation=activation, seed=0, dtype=dtype)


def test_parameters_and_gradients_are_views_of_one_flat_array_each():
    net = _net()
    params, grads = net.parameters(), net.gradients()
    assert params.flat is not None and grads.flat is not None
    assert params.flat.size == net.count_parameters() == grads.flat.size
    for p in params:
        assert np.shares_memory(p, params.flat)
    net.layers[0].weights[0, 0] = 7.0
    assert 7.0 in params.flat
    for clone in (copy.deepcopy(net), net.astype("float32")):  # copies get storage of their own
        cp = clone.parameters()
        assert cp.flat is not None and not np.shares_memory(cp.flat, params.flat)
        cp[0][...] = 0.0
    assert net.layers[0].weights[0, 0] == 7.0
    net.layers[0].weights = net.layers[0].weights.copy()  # replaced by hand: no flat array any more
    assert net.parameters().flat is None


@pytest.mark.parametrize("make", [
    lambda: dn.SGD(lr=0.1),
    lambda: dn.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda: dn.SGD(lr=0.1, momentum=0.5, dampening=0.3),
    lambda: dn.Adam(lr=0.01, weight_decay=1e-3),
    lambda: dn.AdamW(lr=0.01),
    lambda: dn.RMSprop(lr=0.01, momentum=0.9, centered=True),
], ids=["sgd", "nesterov", "dampening", "adam", "adamw", "rmsprop"])
def test_flat_update_gives_the_same_bits_and_state_as_one_array_at_a_time(make, rng):
    net = _net()
    flat_params, flat_grads = net.parameters(), net.gradients()
    plain_params = [p.copy() for p in flat_params]
    flat_opt, plain_opt = make(), make()
    for _ in range(3):
        for g in flat_grads:
            g[...] = rng.standard_normal(g.shape)
        flat_opt.step(flat_params, flat_grads)
        plain_opt.step(plain_params, [g.copy() for g in flat_grads])
    assert FLAT in flat_opt.state
    for a, b in zip(flat_params, plain_params):
        assert np.array_equal(a, b)
    flat_state, plain_state = flat_opt.state_arrays(), plain_opt.state_arrays()
    assert flat_state.keys() == plain_state.keys()
    for key in plain_state:
        assert np.array_equal(flat_state[key], plain_state[key])
    # a checkpoint's per-position state goes back into flat form and continues identically
    resumed = make()
    resumed.load_state_arrays(plain_state, plain_opt.t)
    grads = [rng.standard_normal(g.shape) for g in flat_grads]
    for g, new in zip(flat_grads, grads):
        g[...] = new
    before = [p.copy() for p in flat_params]
    resumed.step(flat_params, flat_grads)
    plain_opt.step(plain_params, grads)
    for a, b in zip(flat_params, plain_params):
        assert np.array_equal(a, b)
    for p, saved in zip(flat_params, before):
        p[...] = saved
    resumed.step(plain_params, grads)  # and back to one array at a time
    assert FLAT not in resumed.state


def test_fused_softmax_cross_entropy_matches_the_general_formulas_even_where_p_underflows(rng):
    net = dn.Network([dn.Dense(4, 3), dn.Softmax()], seed=0, dtype="float64")
    X = rng.standard_normal((6, 4))
    net.layers[0].weights[...] = rng.standard_normal((4, 3)) * 300  # logits far apart: exp underflows
    y = np.array([0, 1, 2, 0, 1, 2])
    loss = CrossEntropy()
    Y = loss.prepare(y, 6, 3, np.float64)
    net._forward(net._check_X(X))
    softmax = net.layers[-1]
    value, delta = loss.value_and_delta_logits(softmax, Y, out=np.empty((6, 3)))
    assert np.isfinite(value) and value == pytest.approx(loss.value_from_logits(softmax.z, Y), rel=1e-12)
    assert np.allclose(delta, loss.delta_logits(softmax.a, Y), rtol=0, atol=1e-15)


def test_the_finiteness_check_finds_every_bad_value_and_passes_huge_finite_ones(rng):
    from dialnet.core.network import all_finite

    for dtype in (np.float32, np.float64):
        X = rng.standard_normal((80, 90)).astype(dtype)  # large enough for the column-sum pass
        assert all_finite(X)
        for bad in (np.nan, np.inf, -np.inf):
            Y = X.copy()
            Y[37, 5] = bad
            assert not all_finite(Y)
            Y[38, 5] = -Y[37, 5]  # inf - inf in the same column sum is NaN: still caught
            assert not all_finite(Y)
        X[:, 3] = np.finfo(dtype).max  # the column sum overflows, the values are fine
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert all_finite(X)


def test_sigmoid_saturates_without_warnings_and_keeps_its_values():
    z = np.array([[-1e4, -700.0, -100.0, -30.0, 0.0, 30.0, 1e4]])
    for dtype in (np.float32, np.float64):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            a = dn.Sigmoid().forward(z.astype(dtype))
        exact = (1 / (1 + np.exp(-z.astype(np.longdouble)))).astype(np.float64)  # extended range: no overflow
        tiny = np.finfo(dtype).tiny
        assert np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1))
        big = exact > tiny
        assert np.allclose(a[big], exact[big], rtol=4 * np.finfo(dtype).eps, atol=0)
        assert np.all(a[~big] <= tiny)


def test_gradcheck_of_the_seed_network_after_training_steps(rng):
    net = dn.mlp([625, 20, 20, 10], activation="sigmoid", seed=0)
    X = rng.standard_normal((64, 625)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    net.fit(X, y, optimizer=dn.SGD(lr=0.1), epochs=2, batch_size=1, shuffle=False)
    assert dn.gradcheck(net, "cross_entropy", X[:3], y[:3], max_dials=40) < 1e-6
