"""The core contract: sizes and counts, seeds, clear errors on bad input, model files, dropout,
and the fast paths (flat parameter storage, fused softmax + cross-entropy, the finiteness check)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import dialnet as dn
from dialnet.core.losses import CrossEntropy
from dialnet.core.network import all_finite
from dialnet.errors import DialnetError

# ------------------------------------------------------- the running example


def test_625_20_20_10_has_13150_parameters_and_says_so():
    net = dn.mlp([625, 20, 20, 10], activation="sigmoid", output="softmax", seed=0)
    assert net.count_parameters() == 13150
    assert sum(d.weights.size for d in net.dense_layers) == 625 * 20 + 20 * 20 + 20 * 10 == 13100
    assert sum(d.biases.size for d in net.dense_layers) == 50
    summary = net.summary()
    assert "13,100 weights + 50 biases = 13,150" in summary
    assert "625" in summary and "12,500" in summary  # the first layer's row
    assert net.sizes == [625, 20, 20, 10]
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Sigmoid", "Dense", "Sigmoid", "Dense", "Softmax"]


def test_dense_is_batch_first_and_softmax_rows_are_certainties(rng):
    net = dn.mlp([6, 5, 3], activation="relu", output="softmax", seed=1, dtype="float64")
    dense = net.layers[0]
    assert dense.weights.shape == (6, 5) and dense.biases.shape == (5,)
    X = rng.normal(size=(4, 6))
    Z = X @ dense.weights + dense.biases  # Z = X @ W + b
    np.testing.assert_allclose(net.layers[0].forward(X), Z, rtol=1e-15)
    P = net.forward(X)
    assert P.shape == (4, 3) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(P > 0)
    assert np.array_equal(net.predict(X), P.argmax(axis=1))


def test_float32_by_default_float64_on_request(rng):
    X = rng.normal(size=(3, 4))
    assert dn.mlp([4, 3, 2], seed=0).forward(X).dtype == np.float32
    net64 = dn.mlp([4, 3, 2], seed=0, dtype="float64")
    assert net64.forward(X).dtype == np.float64
    assert all(p.dtype == np.float64 for p in net64.parameters())


# ------------------------------------------------------------------- seeds


def test_same_seed_same_bits_different_seed_different_dials():
    a = dn.mlp([625, 20, 20, 10], activation="sigmoid", seed=0)
    b = dn.mlp([625, 20, 20, 10], activation="sigmoid", seed=0)
    c = dn.mlp([625, 20, 20, 10], activation="sigmoid", seed=1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pa.tobytes() == pb.tobytes()
    assert any(not np.array_equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    assert not np.array_equal(a.layers[0].weights, c.layers[0].weights)
    # Network(seed=...) draws afresh too
    n1 = dn.Network([dn.Dense(4, 3), dn.Tanh(), dn.Dense(3, 2), dn.Softmax()], seed=7)
    n2 = dn.Network([dn.Dense(4, 3), dn.Tanh(), dn.Dense(3, 2), dn.Softmax()], seed=7)
    assert all(np.array_equal(p, q) for p, q in zip(n1.parameters(), n2.parameters()))


def test_unseeded_networks_differ():
    a, b = dn.mlp([10, 8, 2]), dn.mlp([10, 8, 2])
    assert not np.array_equal(a.layers[0].weights, b.layers[0].weights)


def _short_fit(seed, fit_seed):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(60, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    net = dn.mlp([8, 12, 3], activation="relu", dropout=0.3, seed=seed)
    history = net.fit(X, y, optimizer=dn.Adam(lr=0.01), epochs=3, batch_size=16, seed=fit_seed)
    return net, history


def test_same_seed_same_bits_after_training():
    (a, ha), (b, hb) = _short_fit(0, 0), _short_fit(0, 0)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pa.tobytes() == pb.tobytes()
    assert ha.history["loss"] == hb.history["loss"]
    c, _ = _short_fit(0, 1)  # same dials, other shuffle and dropout order
    assert any(not np.array_equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    start = dn.mlp([8, 12, 3], activation="relu", dropout=0.3, seed=0)
    assert any(not np.array_equal(pa, ps) for pa, ps in zip(a.parameters(), start.parameters()))  # it trained


# --------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def net10():
    return dn.mlp([6, 5, 10], activation="sigmoid", output="softmax", seed=0)


def _raises(call, kind, *fragments):
    with pytest.raises(kind) as info:
        call()
    err = info.value
    assert isinstance(err, DialnetError)
    text = str(err)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return err


def test_wrong_input_width(net10):
    err = _raises(lambda: net10.forward(np.zeros((2, 7))), dn.ShapeError, "expected 6 columns", "got 7 columns")
    assert isinstance(err, ValueError) and err.fix


def test_one_d_and_three_d_inputs(net10):
    _raises(lambda: net10.forward(np.zeros(6)), dn.ShapeError, "2-D", "shape (n, 6)", "(6,)", "reshape(1, -1)")
    _raises(lambda: net10.predict(np.zeros((2, 2, 3))), dn.ShapeError, "2-D", "(2, 2, 3)", "reshape(len(X), -1)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(net10, bad):
    X = np.zeros((3, 6))
    X[1, 2] = bad
    _raises(lambda: net10.forward(X), dn.InvalidValueError, "NaN or infinity", "finite numbers", "1 non-finite")
    _raises(lambda: net10.fit(X, [0, 1, 2], epochs=1), dn.InvalidValueError, "NaN or infinity")


def test_labels_out_of_range_negative_and_fractional(net10):
    X = np.zeros((3, 6))
    _raises(lambda: net10.backprop(X, np.array([0, 10, 3])), dn.DataError, "out of range", "0..9", "0 to 10")
    _raises(lambda: net10.backprop(X, np.array([0, -1, 3])), dn.DataError, "out of range", "0..9", "-1 to 3")
    _raises(lambda: net10.fit(X, np.array([0.0, 1.5, 2.0]), epochs=1), dn.DataError, "whole numbers", "integers 0..9")
    _raises(lambda: net10.backprop(X, np.array([0, 1])), dn.ShapeError, "3 labels", "(2,)")
    assert isinstance(pytest.raises(ValueError, net10.backprop, X, np.array([0, 10, 3])).value, dn.DataError)


@pytest.mark.parametrize(
    ("call", "kind", "fragments"),
    [
        (lambda: dn.mlp([4, 3, 2], activation="swish"), dn.ConfigError, ["'swish'", "relu", "sigmoid"]),
        (lambda: dn.mlp([4, 2], activation="swish"), dn.ConfigError, ["'swish'"]),
        (lambda: dn.mlp([4, 3, 2], output="sigmod"), dn.ConfigError, ["'sigmod'", "softmax"]),
        (lambda: dn.mlp([4, 3, 2], init="gaussian"), dn.ConfigError, ["'gaussian'", "he_normal", "glorot_uniform"]),
        (lambda: dn.Dense(4, 3, init="gaussian"), dn.ConfigError, ["'gaussian'"]),
        (lambda: dn.mlp([4, 3, 2], seed=0).backprop(np.zeros((1, 4)), [0], "hinge"), dn.ConfigError, ["'hinge'", "cross_entropy", "mse"]),
        (lambda: dn.mlp([4, 3, 2], seed=0).fit(np.zeros((2, 4)), [0, 1], optimizer="adagrad"), dn.ConfigError, ["'adagrad'", "adam", "sgd"]),
    ],
)
def test_unknown_names(call, kind, fragments):
    err = _raises(call, kind, "unknown", "expected one of", *fragments)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: dn.mlp([4, 0, 2]), ["positive", "[4, 0, 2]"]),
        (lambda: dn.mlp([4, -3, 2]), ["positive", "[4, -3, 2]"]),
        (lambda: dn.mlp([4, 2.5, 2]), ["positive", "2.5"]),
        (lambda: dn.Dense(0, 3), ["n_in", ">= 1", "got 0"]),
        (lambda: dn.Dense(3, -2), ["n_out", ">= 1", "got -2"]),
        (lambda: dn.Dropout(1.0), ["[0, 1)", "1.0"]),
        (lambda: dn.LeakyReLU(-0.1), ["[0, 1)", "-0.1"]),
    ],
)
def test_zero_or_negative_sizes_and_rates(call, fragments):
    _raises(call, dn.InvalidValueError, "expected", *fragments)


def test_softmax_over_one_output():
    _raises(lambda: dn.mlp([4, 3, 1], output="softmax"), dn.ConfigError, "softmax", "at least 2 outputs", "1 output", "sigmoid")
    _raises(
        lambda: dn.Network([dn.Dense(4, 3), dn.ReLU(), dn.Dense(3, 1), dn.Softmax()]),
        dn.ConfigError, "softmax", "at least 2 outputs", "1 output",
    )


def test_mismatched_dense_widths():
    err = _raises(
        lambda: dn.Network([dn.Dense(4, 3), dn.ReLU(), dn.Dense(5, 2), dn.Softmax()]),
        dn.ShapeError, "n_in=3", "Dense(5, 2)",
    )
    assert isinstance(err, ValueError)
    _raises(lambda: dn.Network([dn.ReLU()]), dn.ConfigError, "at least one Dense")
    _raises(lambda: dn.Network([]), dn.ConfigError, "non-empty")
    _raises(lambda: dn.Network([dn.Dense(2, 2), "relu"]), dn.ConfigError, "item 1", "'relu'")


def test_bad_targets_for_regression_and_bce():
    reg = dn.mlp([3, 4, 2], output="identity", seed=0)
    _raises(lambda: reg.backprop(np.zeros((2, 3)), np.zeros((2, 3)), "mse"), dn.ShapeError, "(2, 2)", "(2, 3)")
    _raises(lambda: reg.backprop(np.zeros((2, 3)), np.array([[0.0, np.nan], [1, 1]]), "mse"), dn.DataError, "NaN")
    binary = dn.mlp([3, 4, 1], output="sigmoid", seed=0)
    _raises(lambda: binary.backprop(np.zeros((2, 3)), np.array([0.0, 2.0]), "bce"), dn.DataError, "[0, 1]", "0.0 to 2.0")


# ------------------------------------------------------------ model files


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_then_load_predicts_the_same_bits(tmp_path, rng, dtype):
    net = dn.mlp([7, 9, 5, 3], activation=["tanh", "leaky_relu"], output="softmax", dtype=dtype, seed=3, dropout=0.2)
    X = rng.normal(size=(20, 7))
    net.fit(X, rng.integers(0, 3, size=20), epochs=2, batch_size=8, seed=0)
    path = tmp_path / f"model-{dtype}.safetensors"
    net.save(path)
    back = dn.load(path)
    assert back.dtype == np.dtype(dtype)
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in net.layers]
    for p, q in zip(net.parameters(), back.parameters()):
        assert p.dtype == q.dtype and p.tobytes() == q.tobytes()
    P, Q = net.predict_proba(X), back.predict_proba(X)
    assert P.tobytes() == Q.tobytes()
    assert np.array_equal(net.predict(X), back.predict(X))


def test_load_missing_file_is_a_model_file_error(tmp_path):
    _raises(lambda: dn.load(tmp_path / "nope.safetensors"), dn.ModelFileError, "nope.safetensors")


# ------------------------------------------------------- buffers and dropout


def test_forward_result_is_not_overwritten_by_a_later_forward(rng):
    net = dn.mlp([5, 6, 3], seed=0)
    X1, X2 = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))  # same batch size: the layers reuse buffers
    P1 = net.forward(X1)
    kept = P1.copy()
    P2 = net.forward(X2)
    net.backprop(X2, np.array([0, 1, 2, 0]))
    net.predict_proba(X2)
    assert np.array_equal(P1, kept)
    assert not np.array_equal(P1, P2)
    proba = net.predict_proba(X1)
    net.forward(X2)
    assert np.array_equal(proba, kept)


def test_dropout_is_off_at_inference(rng):
    net = dn.mlp([5, 40, 3], activation="relu", dropout=0.5, seed=0, dtype="float64")
    plain = dn.mlp([5, 40, 3], activation="relu", seed=0, dtype="float64")
    plain.set_weights(net.copy_weights())
    X = rng.normal(size=(8, 5))
    P = net.forward(X)
    assert np.array_equal(P, net.forward(X))
    assert np.array_equal(P, plain.forward(X))
    assert np.array_equal(net.predict_proba(X), plain.predict_proba(X))
    assert not np.array_equal(net.forward(X, training=True), P)


def test_dropout_is_seeded_and_scales_what_it_keeps(rng):
    X = rng.normal(size=(50, 5))

    def training_pass(seed):
        net = dn.mlp([5, 40, 3], activation="relu", dropout=0.5, seed=seed, dtype="float64")
        net.forward(X, training=True)
        return net.layers[2].mask.copy()

    m0, m0_again, m1 = training_pass(0), training_pass(0), training_pass(1)
    assert np.array_equal(m0, m0_again)
    assert not np.array_equal(m0, m1)
    assert set(np.unique(m0)) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - p)
    assert 0.4 < (m0 == 0).mean() < 0.6
    layer = dn.Dropout(0.25, seed=5)
    x = np.ones((400, 10))
    out = layer.forward(x, training=True)
    assert np.allclose(out[out != 0], 1 / 0.75)
    assert abs(out.mean() - 1.0) < 0.05  # inverted dropout keeps the expected activation
    assert layer.forward(x) is x  # inference: the identity, no copy, no rescaling


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


def test_fused_softmax_cross_entropy_matches_the_general_formulas_even_where_p_underflows(rng):
    net = dn.Network([dn.Dense(4, 3), dn.Softmax()], seed=0, dtype="float64")
    X = rng.standard_normal((6, 4))
    net.layers[0].weights[...] = rng.standard_normal((4, 3)) * 300  # logits far apart: exp underflows
    y = np.array([0, 1, 2, 0, 1, 2])
    loss = CrossEntropy()
    Y = loss.prepare(y, 6, 3, np.float64)
    P = net._forward(net._check_X(X))
    softmax = net.layers[-1]
    value, delta = loss.value_and_delta(P, Y, head=softmax, out=np.empty((6, 3)))
    assert np.isfinite(value) and value == pytest.approx(loss.value_from_logits(softmax.z, Y), rel=1e-12)
    assert np.allclose(delta, loss.delta_logits(softmax.a, Y), rtol=0, atol=1e-15)
    assert loss.value_and_delta(P, Y, head=softmax, need_delta=False) == (value, None)


def test_the_finiteness_check_finds_every_bad_value_and_passes_huge_finite_ones(rng):
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


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("rows", [3, 300, 5000])
def test_predict_refuses_a_non_finite_input_anywhere_even_behind_zero_weights(bad, rows):
    """predict_proba checks inputs on the first layer's sums: a NaN or inf input must still be refused,
    also where its weights are 0 (inf * 0 is NaN), in any block, without a NumPy warning first."""
    net = dn.mlp([5, 4, 3], seed=0)
    X = np.random.default_rng(0).standard_normal((rows, 5)).astype(np.float32)
    net.predict_proba(X)
    for column in (1, 3):
        net.layers[0].weights[3, :] = 0.0
        Xb = X.copy()
        Xb[rows - 1, column] = bad
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(dn.InvalidValueError, match="X contains NaN or infinity"):
                net.predict_proba(Xb, batch_size=2048)
