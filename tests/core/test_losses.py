"""The one loss step, ``Loss.value_and_delta``: fused or not, weighted or not, and where it is used.

Gradients of every loss against torch and finite differences, with and
without weights, are in tests/core/test_gradients.py; here are the properties of
the weighted mean itself and the paths that reach it (fit, evaluate, gradcheck).
"""

from __future__ import annotations

import numpy as np
import pytest

import dialnet as dn
from dialnet.core import losses as LS

# (loss, output activation, kind of targets): every loss on its fused head and on a plain one
SETUPS = [
    ("cross_entropy", "softmax", "labels"),
    ("cross_entropy", "softmax", "rows"),
    ("cross_entropy", "identity", "labels"),
    ("binary_cross_entropy", "sigmoid", "binary"),
    ("binary_cross_entropy", "identity", "binary"),
    ("mse", "identity", "values"),
    ("mse", "sigmoid", "labels"),
]


def _setup(loss_name, output, targets, n=9, k=3, seed=0):
    rng = np.random.default_rng(seed)
    if output == "identity" and loss_name != "mse":  # probabilities from a softmax/sigmoid the loss does not fuse with
        head = dn.Softmax() if loss_name == "cross_entropy" else dn.Sigmoid()
        net = dn.Network([dn.Dense(4, 5), dn.Tanh(), dn.Dense(5, k), head, dn.Identity()], seed=seed, dtype="float64")
    else:
        net = dn.mlp([4, 5, k], activation="tanh", output=output, seed=seed, dtype="float64")
    X = rng.standard_normal((n, 4))
    if targets == "labels":
        y = rng.integers(0, k, n)
    elif targets == "rows":
        y = rng.dirichlet(np.ones(k), size=n)
    elif targets == "binary":
        y = rng.integers(0, 2, (n, k)).astype(float)
    else:
        y = rng.standard_normal((n, k))
    loss = LS.get_loss(loss_name)
    Xc = net._check_X(X)
    return net, loss, Xc, loss.prepare(y, n, k, net.dtype), X, y


def _step(net, loss, X, Y, w=None):
    P = net._forward(X)
    value, delta = loss.value_and_delta(P, Y, w, head=net.layers[-1])
    return value, delta.copy()


@pytest.mark.parametrize("setup", SETUPS, ids=["-".join(s) for s in SETUPS])
def test_unit_weights_are_the_plain_mean(setup):
    net, loss, X, Y, *_ = _setup(*setup)
    value, delta = _step(net, loss, X, Y)
    w_value, w_delta = _step(net, loss, X, Y, np.ones(X.shape[0]))
    assert w_value == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(w_delta, delta, rtol=1e-12, atol=1e-15)
    # and the value alone is the same value
    assert loss.value_and_delta(net._forward(X), Y, head=net.layers[-1], need_delta=False) == (value, None)


@pytest.mark.parametrize("setup", SETUPS, ids=["-".join(s) for s in SETUPS])
def test_whole_number_weights_are_repeated_rows(setup):
    net, loss, X, Y, *_ = _setup(*setup)
    w = np.array([0, 1, 2, 3, 1, 0, 4, 1, 2])
    value, delta = _step(net, loss, X, Y, w.astype(float))
    rows = np.repeat(np.arange(len(w)), w)
    r_value, r_delta = _step(net, loss, X[rows], Y[rows])
    assert value == pytest.approx(r_value, rel=1e-12)
    # the repeated rows' gradients add up to the weighted row's; left-out rows get none
    summed = np.zeros_like(delta)
    np.add.at(summed, rows, r_delta)
    np.testing.assert_allclose(delta, summed, rtol=1e-12, atol=1e-15)
    assert not delta[w == 0].any()


def test_the_weighted_mean_is_scale_free_and_a_batch_of_zero_weights_teaches_nothing():
    net, loss, X, Y, *_ = _setup("cross_entropy", "softmax", "labels")
    w = np.linspace(0.1, 2.0, X.shape[0])
    value, delta = _step(net, loss, X, Y, w)
    value10, delta10 = _step(net, loss, X, Y, 10 * w)
    assert value10 == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(delta10, delta, rtol=1e-12)
    zero_value, zero_delta = _step(net, loss, X, Y, np.zeros(X.shape[0]))
    assert zero_value == 0.0 and not zero_delta.any()


def test_backprop_fit_evaluate_and_gradcheck_take_sample_weights():
    net, loss, _, _, X, y = _setup("cross_entropy", "softmax", "labels", n=12)
    w = np.random.default_rng(1).integers(0, 4, 12).astype(float)
    w[0] = 1.0
    rows = np.repeat(np.arange(12), w.astype(int))
    per_row = [net.backprop(X[i : i + 1], y[i : i + 1], loss) for i in range(12)]
    assert net.backprop(X, y, loss, sample_weight=w) == pytest.approx(np.dot(per_row, w) / w.sum(), rel=1e-12)
    assert net.evaluate(X, y, sample_weight=w)["loss"] == pytest.approx(np.dot(per_row, w) / w.sum(), rel=1e-12)
    assert dn.gradcheck(net, loss, X, y, sample_weight=w) < 1e-6
    # one full batch of SGD on weighted rows is the same step as on the rows repeated
    weighted, repeated = dn.mlp([4, 5, 3], seed=3, dtype="float64"), dn.mlp([4, 5, 3], seed=3, dtype="float64")
    h1 = weighted.fit(X, y, optimizer=dn.SGD(lr=0.5), epochs=3, batch_size=12, shuffle=False, sample_weight=w)
    h2 = repeated.fit(X[rows], y[rows], optimizer=dn.SGD(lr=0.5), epochs=3, batch_size=len(rows), shuffle=False)
    for a, b in zip(weighted.parameters(), repeated.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-12)


def test_validation_data_with_weights_reports_the_weighted_loss():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    Xv, yv, wv = X[:10], y[:10], np.arange(10.0)
    net = dn.mlp([4, 6, 3], seed=0, dtype="float64")
    history = net.fit(X, y, epochs=1, validation_data=(Xv, yv, wv), seed=0)
    assert history.history["val_loss"][-1] == pytest.approx(net.evaluate(Xv, yv, sample_weight=wv)["loss"], rel=1e-12)
    assert history.history["val_loss"][-1] != pytest.approx(net.evaluate(Xv, yv)["loss"], rel=1e-6)


@pytest.mark.parametrize("weights, error, fragment", [
    (np.ones(5), dn.ShapeError, "does not match the rows"),
    (np.ones((6, 1)), dn.ShapeError, "does not match the rows"),
    (np.array([1, 1, -1, 1, 1, 1.0]), dn.DataError, "finite and >= 0"),
    (np.array([1, 1, np.nan, 1, 1, 1.0]), dn.DataError, "finite and >= 0"),
    (np.zeros(6), dn.DataError, "all sample weights are zero"),
    (np.array(list("abcdef")), dn.DataError, "not numbers"),
])
def test_bad_sample_weights_are_refused_with_a_clear_error(weights, error, fragment):
    net = dn.mlp([4, 3, 2], seed=0)
    X, y = np.ones((6, 4)), np.array([0, 1, 0, 1, 0, 1])
    for call in (lambda: net.backprop(X, y, sample_weight=weights), lambda: net.fit(X, y, epochs=1, sample_weight=weights),
                 lambda: net.evaluate(X, y, sample_weight=weights)):
        with pytest.raises(error, match=fragment) as info:
            call()
        assert info.value.fix


def test_trace_and_backprop_take_the_same_loss_step(rng):
    net = dn.mlp([5, 4, 3], activation="sigmoid", seed=0, dtype="float64")
    X, y = rng.standard_normal((4, 5)), np.array([0, 2, 1, 2])
    value = net.backprop(X, y)
    grads = [g.copy() for g in net.gradients()]
    t = dn.trace(net, X, y)
    assert t.loss == value
    for layer, (gW, gb) in zip(t.layers, zip(grads[::2], grads[1::2])):
        assert np.array_equal(layer.grad_weights, gW) and np.array_equal(layer.grad_biases, gb)
