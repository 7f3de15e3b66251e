"""The engine on the Array API standard's reference namespace (array_api_strict).

array_api_strict has only what the standard promises: no ``out=``, no
``np.dot``, no array methods beyond the standard's, no mixing with NumPy
arrays. Every test here runs the engine on it, so a NumPy-only call in the
hot path (layers, losses, backprop, optimizers, gradcheck, training) fails
here. In float64 the results must equal NumPy's to 1e-12 relative, and
backprop's gradients must match central finite differences.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dialnet as dn
from dialnet import backend

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")


def _data(rng, n=24, n_in=7, k=3):
    X = rng.standard_normal((n, n_in))
    y = rng.integers(0, k, size=n)
    return X, y


def _relative(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _on(which, build):
    """``build()`` run with ``which`` as the backend; NumPy again afterwards."""
    backend.use(which)
    try:
        return build()
    finally:
        backend.use("numpy")


def test_the_strict_namespace_is_really_in_use(strict):
    net = dn.mlp([4, 3, 2], dtype="float64", seed=0)
    assert type(net.layers[0].weights).__module__.startswith("array_api_strict")
    assert not isinstance(net.layers[0].weights, np.ndarray)
    assert not backend.buffer_ok()
    with pytest.raises(TypeError):
        strict.multiply(net.layers[0].weights, 2.0, out=net.layers[0].weights)  # the standard has no out=


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_gradcheck_passes_on_array_api_strict(strict, rng, activation, loss):
    X, y = _data(rng)
    net = dn.mlp([7, 5, 4, 3], activation=activation, dtype="float64", seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no dtype comparisons across libraries, no NumPy warnings
        err = dn.gradcheck(net, loss, X, y)
    assert err < 1e-7, (activation, loss, err.errors)


def test_gradcheck_binary_cross_entropy_and_sample_weights_on_strict(strict, rng):
    X, _ = _data(rng)
    Y = (rng.random((24, 3)) > 0.5).astype(np.float64)
    w = rng.uniform(0.0, 2.0, size=24)
    fused = dn.mlp([7, 5, 3], activation="tanh", output="sigmoid", dtype="float64", seed=1)
    assert dn.gradcheck(fused, "binary_cross_entropy", X, Y, sample_weight=w) < 1e-7
    plain = dn.Network([dn.Dense(7, 5), dn.Tanh(), dn.Dense(5, 3), dn.Sigmoid()], seed=2, dtype="float64")
    assert dn.gradcheck(plain, "mse", X, Y, sample_weight=w) < 1e-7
    # cross-entropy on sigmoid outputs: the unfused formulas, with probability rows as targets
    rows = Y / np.maximum(Y.sum(axis=1, keepdims=True), 1)
    assert dn.gradcheck(plain, "cross_entropy", X, rows) < 1e-6


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backprop_on_strict_equals_numpy(rng, activation):
    X, y = _data(rng)
    w = rng.uniform(0.5, 1.5, size=24)

    def run():
        net = dn.mlp([7, 6, 3], activation=activation, dtype="float64", seed=5)
        value = net.backprop(X, y, "cross_entropy", sample_weight=w)
        dx = net.backward(np.ones((24, 3)))  # the plain chain through softmax too
        return value, [backend.to_numpy(g).copy() for g in net.gradients()], backend.to_numpy(dx), net.predict_proba(X)

    v_np, g_np, dx_np, p_np = _on("numpy", run)
    v_st, g_st, dx_st, p_st = _on("array_api_strict", run)
    assert v_st == pytest.approx(v_np, rel=1e-12)
    for a, b in zip(g_st, g_np):
        assert _relative(a, b) < 1e-12
    assert _relative(dx_st, dx_np) < 1e-12
    assert isinstance(p_st, np.ndarray) and _relative(p_st, p_np) < 1e-12


OPTIMIZERS = {
    "sgd": lambda: dn.SGD(lr=0.05),
    "sgd-momentum": lambda: dn.SGD(lr=0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda: dn.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: dn.Adam(lr=1e-2),
    "adamw": lambda: dn.AdamW(lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda: dn.RMSprop(lr=1e-2, momentum=0.5, centered=True, weight_decay=1e-3),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_steps_on_strict_equal_numpy(rng, name):
    """Forward, loss, backward and the optimizer's update, 12 steps: the weights agree to 1e-12."""
    X, y = _data(rng, n=48)

    def run():
        net = dn.mlp([7, 8, 3], activation="tanh", dtype="float64", seed=9)
        opt = OPTIMIZERS[name]()
        for step in range(12):
            rows = slice((step % 3) * 16, (step % 3 + 1) * 16)
            net.backprop(X[rows], y[rows], "cross_entropy")
            opt.step(net.parameters(), net.gradients())
        return [backend.to_numpy(p).copy() for p in net.parameters()], opt.state_arrays()

    p_np, s_np = _on("numpy", run)
    p_st, s_st = _on("array_api_strict", run)
    for a, b in zip(p_st, p_np):
        assert _relative(a, b) < 1e-12
    assert sorted(s_st) == sorted(s_np)
    for key in s_np:
        assert _relative(s_st[key], s_np[key]) < 1e-12, key


def test_dropout_masks_are_the_same_on_every_backend(rng):
    X, y = _data(rng)

    def run():
        net = dn.Network([dn.Dense(7, 6), dn.ReLU(), dn.Dropout(0.4), dn.Dense(6, 3), dn.Softmax()], seed=4, dtype="float64")
        net.backprop(X, y, "cross_entropy", training=True)
        return [backend.to_numpy(g).copy() for g in net.gradients()]

    for a, b in zip(_on("array_api_strict", run), _on("numpy", run)):
        assert _relative(a, b) < 1e-12


def test_fit_on_strict_equals_numpy(rng):
    """A short training run through ``fit`` (shuffled mini-batches, sample weights, L2, Adam): the same weights."""
    X = rng.standard_normal((60, 6))
    Y = rng.standard_normal((60, 2))
    w = rng.uniform(0.5, 2.0, size=60)

    def run():
        net = dn.mlp([6, 8, 2], activation="sigmoid", output="identity", dtype="float64", seed=11)
        history = net.fit(X, Y, loss="mse", optimizer=dn.Adam(lr=0.02), epochs=4, batch_size=16, seed=3,
                          sample_weight=w, l2=1e-3)
        return [np.array(backend.to_numpy(p)) for p in net.parameters()], history.history["loss"]

    p_np, loss_np = _on("numpy", run)
    p_st, loss_st = _on("array_api_strict", run)
    assert loss_np[-1] < loss_np[0]  # it trained
    np.testing.assert_allclose(loss_st, loss_np, rtol=1e-12)
    for a, b in zip(p_st, p_np):
        assert _relative(a, b) < 1e-12


def test_inspect_trace_on_strict_equals_numpy(rng):
    """inspect's trace (every layer's z, a, delta and gradients, handed back as NumPy) and the unit health."""
    from dialnet.diagnose.trace import trace, unit_health  # noqa: PLC0415

    X, y = _data(rng, n=5)

    def run():
        net = dn.mlp([7, 6, 5, 3], activation=["sigmoid", "relu"], dtype="float64", seed=8)
        return trace(net, X, y), unit_health(net, X)

    (t_np, h_np), (t_st, h_st) = _on("numpy", run), _on("array_api_strict", run)
    assert t_st.loss == pytest.approx(t_np.loss, rel=1e-12)
    assert len(t_st.layers) == len(t_np.layers) == 3
    for a, b in zip(t_st.layers, t_np.layers):
        for field in ("z", "a", "delta", "grad_weights", "grad_biases"):
            assert isinstance(getattr(a, field), np.ndarray)
            assert _relative(getattr(a, field), getattr(b, field)) < 1e-12, field
    assert [h.stuck.tolist() for h in h_st] == [h.stuck.tolist() for h in h_np]


def test_gradcheck_passes_on_the_seed_net_on_strict(strict, rng):
    """The articles' 625-20-20-10 sigmoid net: backprop against central differences on 40 dials per array."""
    X = rng.uniform(0.0, 1.0, size=(8, 625))
    y = rng.integers(0, 10, size=8)
    net = dn.mlp([625, 20, 20, 10], activation="sigmoid", seed=0)  # float32; gradcheck checks a float64 copy
    err = dn.gradcheck(net, "cross_entropy", X, y, max_dials=40, seed=1)
    assert err.dials == 40 + 20 + 40 + 20 + 40 + 10  # every dial of the arrays smaller than 40
    assert err < 1e-7, err.errors


def test_the_seed_net_trains_on_strict_as_on_numpy(rng):
    """The seed net (625-20-20-10 sigmoid, softmax + cross-entropy) through fit with validation: same history, same weights."""
    X = rng.uniform(0.0, 1.0, size=(96, 625))
    y = rng.integers(0, 10, size=96)

    def run():
        net = dn.mlp([625, 20, 20, 10], activation="sigmoid", dtype="float64", seed=0)
        history = net.fit(X[:64], y[:64], optimizer=dn.SGD(lr=0.5, momentum=0.9), epochs=3, batch_size=16, seed=1,
                          validation_data=(X[64:], y[64:]))
        return [np.array(backend.to_numpy(p)) for p in net.parameters()], history.history

    p_np, h_np = _on("numpy", run)
    p_st, h_st = _on("array_api_strict", run)
    assert sorted(h_st) == sorted(h_np)
    for key in h_np:
        np.testing.assert_allclose(h_st[key], h_np[key], rtol=1e-12, err_msg=key)
    for a, b in zip(p_st, p_np):
        assert _relative(a, b) < 1e-12
