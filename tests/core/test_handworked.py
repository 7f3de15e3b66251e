"""A 2-2-1 sigmoid network worked out on paper, number by number.

The articles' recipe: forward pass, then the output error
``delta_o = (expected - output) x output (1 - output)`` (the sigmoid's
slope), the hidden errors ``delta_h = (delta_o x v_h) x a_h (1 - a_h)``
passed back through the output weights, and the update
``w <- w + rate x delta x input``.

dialnet differentiates ``L = mean((P - Y)**2)`` over all ``n x k`` output
elements (here ``n = k = 1``), so

    dL/dz_o = 2 (o - y) o (1 - o) / (n k) = -2 delta_o,
    dL/dz_h = -2 delta_h,

and SGD ``w <- w - lr dL/dw`` with ``lr = 0.25`` is the articles' update
with ``rate = 2 x 0.25 = 0.5``. Every literal below was computed by hand
(exp values to 16 digits from a table / calculator), not by dialnet.
"""

from __future__ import annotations

import numpy as np
import pytest

import dialnet as dn

TOL = 1e-12  # float64 throughout; the literals carry 16-17 significant digits

# The network: inputs x1, x2 -> hidden h1, h2 (sigmoid) -> output o (sigmoid).
# dialnet's W is (n_in, n_out): W1[i, j] is the dial from input i to hidden j.
X = np.array([[0.5, 1.0]])
Y = np.array([[1.0]])  # expected output
W1 = np.array([[0.1, 0.3],
               [0.2, 0.4]])
B1 = np.array([0.1, 0.2])
W2 = np.array([[0.6],
               [-0.4]])
B2 = np.array([0.1])
LR = 0.25

# ---- forward
# z_h1 = 0.5*0.1 + 1.0*0.2 + 0.1 = 0.05 + 0.2 + 0.1 = 0.35
# z_h2 = 0.5*0.3 + 1.0*0.4 + 0.2 = 0.15 + 0.4 + 0.2 = 0.75
Z_H = [0.35, 0.75]
# a_h1 = 1 / (1 + e^-0.35) = 1 / (1 + 0.7046880897187134) = 1 / 1.7046880897187134 = 0.5866175789173301
# a_h2 = 1 / (1 + e^-0.75) = 1 / (1 + 0.4723665527410147) = 1 / 1.4723665527410147 = 0.6791786991753930
A_H = [0.5866175789173301, 0.6791786991753930]
# z_o = 0.6*0.5866175789173301 - 0.4*0.6791786991753930 + 0.1
#     = 0.35197054735039806 - 0.2716714796701572 + 0.1 = 0.18029906768024087
Z_O = 0.18029906768024087
# o = 1 / (1 + e^-0.18029906768024087) = 1 / (1 + 0.8350204464369483) = 0.544953055940982
O = 0.544953055940982
# cost = (o - y)^2 = (-0.455046944059018)^2 = 0.20706772129745107 (mean over 1 x 1 element)
COST = 0.20706772129745107

# ---- the articles' deltas
# slope at the output: o (1 - o) = 0.544953055940982 * 0.455046944059018 = 0.24797922276156695
# delta_o = (expected - output) x slope = 0.455046944059018 * 0.24797922276156695 = 0.11284218750778152
DELTA_O = 0.11284218750778152
# slopes at the hidden units: a (1 - a)
#   h1: 0.5866175789173301 * 0.4133824210826699 = 0.2424973950225001
#   h2: 0.6791786991753930 * 0.3208213008246070 = 0.21789499376181404
# delta_h = (delta_o x v_h) x slope_h
#   h1: (0.11284218750778152 *  0.6) * 0.2424973950225001  =  0.06770531250466891 * 0.2424973950225001 =  0.01641836191156651
#   h2: (0.11284218750778152 * -0.4) * 0.21789499376181404 = -0.04513687500311261 * 0.21789499376181404 = -0.009835099097231003
DELTA_H = [0.01641836191156651, -0.009835099097231003]

# ---- dialnet's gradients: dL/dz = -2 delta (MSE is the mean of (o - y)^2, whose slope is 2 (o - y))
# dL/db2 = -2 * 0.11284218750778152 = -0.22568437501556304
# dL/dW2 = dL/dz_o * a_h = -0.22568437501556304 * [0.5866175789173301, 0.6791786991753930]
#        = [-0.13239042167110038, -0.15328002024728166]
GRAD_B2 = [-0.22568437501556304]
GRAD_W2 = [[-0.13239042167110038], [-0.15328002024728166]]
# dL/db1 = -2 * delta_h = [-0.03283672382313302, 0.019670198194462005]
# dL/dW1[i, j] = x_i * dL/dz_hj:  row x1 = 0.5 * that, row x2 = 1.0 * that
GRAD_B1 = [-0.03283672382313302, 0.019670198194462005]
GRAD_W1 = [[-0.01641836191156651, 0.009835099097231003],
           [-0.03283672382313302, 0.019670198194462005]]

# ---- one SGD step, lr = 0.25: w - 0.25 * dL/dw  ==  w + 0.5 * delta * input (the articles' form)
# W2: 0.6 + 0.5 * 0.11284218750778152 * 0.5866175789173301 = 0.6 + 0.033097605417775 = 0.633097605417775
#    -0.4 + 0.5 * 0.11284218750778152 * 0.6791786991753930 = -0.4 + 0.0383200050618204 = -0.3616799949381796
# b2: 0.1 + 0.5 * 0.11284218750778152 = 0.15642109375389076
NEW_W2 = [[0.633097605417775], [-0.3616799949381796]]
NEW_B2 = [0.15642109375389076]
# W1: 0.1 + 0.5 * 0.01641836191156651 * 0.5 = 0.1 + 0.0041045904778916 = 0.1041045904778916
#     0.3 + 0.5 * -0.009835099097231003 * 0.5 = 0.3 - 0.0024587747743078 = 0.2975412252256922
#     0.2 + 0.5 * 0.01641836191156651 * 1.0 = 0.2 + 0.0082091809557833 = 0.2082091809557833
#     0.4 + 0.5 * -0.009835099097231003 * 1.0 = 0.4 - 0.0049175495486155 = 0.3950824504513845
# b1: 0.1 + 0.0082091809557833 = 0.1082091809557833;  0.2 - 0.0049175495486155 = 0.1950824504513845
NEW_W1 = [[0.1041045904778916, 0.2975412252256922],
          [0.2082091809557833, 0.3950824504513845]]
NEW_B1 = [0.1082091809557833, 0.1950824504513845]


def paper_network():
    net = dn.Network([dn.Dense(2, 2), dn.Sigmoid(), dn.Dense(2, 1), dn.Sigmoid()], dtype="float64")
    net.set_weights([W1, B1, W2, B2])
    return net


def test_forward_pass_matches_the_paper():
    net = paper_network()
    out = net.forward(X)
    hidden_dense, hidden_sigmoid, out_dense = net.layers[0], net.layers[1], net.layers[2]
    np.testing.assert_allclose(out, [[O]], rtol=0, atol=TOL)
    # the caches the backward pass uses hold the same numbers
    np.testing.assert_allclose(hidden_dense.weights.T @ X[0] + hidden_dense.biases, Z_H, rtol=0, atol=TOL)
    np.testing.assert_allclose(hidden_sigmoid.a[0], A_H, rtol=0, atol=TOL)
    np.testing.assert_allclose(out_dense.x[0], A_H, rtol=0, atol=TOL)
    np.testing.assert_allclose(net.layers[3].z[0], [Z_O], rtol=0, atol=TOL)


def test_backprop_gives_minus_two_times_the_articles_deltas():
    net = paper_network()
    cost = net.backprop(X, Y, dn.MSE())
    assert cost == pytest.approx(COST, abs=TOL)
    hidden, output = net.dense_layers
    # with one sample dL/db is dL/dz itself: the delta, scaled by -2 (see the module docstring)
    np.testing.assert_allclose(output.grad_biases, [-2 * DELTA_O], rtol=0, atol=TOL)
    np.testing.assert_allclose(hidden.grad_biases, [-2 * d for d in DELTA_H], rtol=0, atol=TOL)
    np.testing.assert_allclose(output.grad_biases, GRAD_B2, rtol=0, atol=TOL)
    np.testing.assert_allclose(output.grad_weights, GRAD_W2, rtol=0, atol=TOL)
    np.testing.assert_allclose(hidden.grad_biases, GRAD_B1, rtol=0, atol=TOL)
    np.testing.assert_allclose(hidden.grad_weights, GRAD_W1, rtol=0, atol=TOL)


def test_one_sgd_step_turns_the_dials_as_on_paper():
    net = paper_network()
    net.backprop(X, Y, dn.MSE())
    dn.SGD(lr=LR).step(net.parameters(), net.gradients())
    for got, want in zip(net.parameters(), [NEW_W1, NEW_B1, NEW_W2, NEW_B2]):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_fit_one_online_step_is_the_same_step():
    """The training loop (one sample, one epoch, batch size 1) makes exactly that update."""
    net = paper_network()
    history = net.fit(X, Y, loss="mse", optimizer=dn.SGD(lr=LR), epochs=1, batch_size=1, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(COST, abs=TOL)
    for got, want in zip(net.parameters(), [NEW_W1, NEW_B1, NEW_W2, NEW_B2]):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_mean_over_the_batch_divides_the_gradient_by_n():
    """Two copies of the sample: the mean over n*k = 2 elements leaves the gradient unchanged,
    the sum of per-sample errors the articles accumulate would double it."""
    net = paper_network()
    net.backprop(np.vstack([X, X]), np.vstack([Y, Y]), dn.MSE())
    np.testing.assert_allclose(net.dense_layers[0].grad_weights, GRAD_W1, rtol=0, atol=TOL)
    np.testing.assert_allclose(net.dense_layers[1].grad_biases, GRAD_B2, rtol=0, atol=TOL)
