"""Backprop against torch autograd and against turning the dials by hand.

One property test draws random networks from the registries
(``dialnet.core.layers.LAYERS``, ``dialnet.core.losses.LOSSES``): random widths,
batch sizes from 1 up, every layer and every loss, fused and un-fused
output heads. For each one, in float64:

* torch 2.13 autograd on the same function gives the same loss value,
  the same ``dL/dW``/``dL/db`` for every Dense and the same ``dL/dX``
  (``Network.backward``) to 1e-10 relative;
* central differences (``dn.gradcheck``) agree to 1e-6 relative per
  parameter array, and element-wise; an array too small for float64
  differences to resolve is held to the rounding floor instead (see
  ``rounding_floor``; about 1 array in 2,000 cases).

The same holds with per-sample weights (``sample_weight``: the loss is the
weighted mean ``sum_i w_i l_i / sum_i w_i``, against torch's unreduced loss
weighted by hand), on fewer random cases.

A layer or loss registered without a torch reference below fails these
tests (a ``KeyError`` in the reference, and the coverage tests), it is
never skipped. ``python tests/core/test_gradients.py 200`` runs 200 fresh
random cases and prints the largest errors seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dialnet as dn
from dialnet.core import layers as L
from dialnet.core import losses as LS

TORCH_TOL = 1e-10  # float64 backprop vs autograd: only rounding differs
FD_TOL = 1e-6  # central differences: truncation ~h^2, rounding ~eps/h
FD_STEP = 1e-6  # dn.gradcheck's default h in float64


# ------------------------------------------------------- torch references
# One entry per layer class: f(layer, x, params) -> torch tensor, where
# params is an iterator over the network's parameters as torch leaves (in
# Network.parameters() order). A layer class missing here fails the tests.


def _dense(torch, layer, x, params):
    W, b = next(params), next(params)
    return x @ W + b


def _dropout(torch, layer, x, params):
    if layer.mask is None:  # inference, or p == 0: the identity
        return x
    keep = torch.from_numpy(layer.mask != 0)  # the very mask dialnet drew
    return x * keep / (1.0 - layer.p)


TORCH_LAYERS = {
    L.Dense: _dense,
    L.Sigmoid: lambda torch, layer, x, params: torch.sigmoid(x),
    L.Tanh: lambda torch, layer, x, params: torch.tanh(x),
    L.ReLU: lambda torch, layer, x, params: torch.relu(x),
    L.LeakyReLU: lambda torch, layer, x, params: torch.nn.functional.leaky_relu(x, layer.alpha),
    L.Softmax: lambda torch, layer, x, params: torch.softmax(x, dim=1),
    L.Identity: lambda torch, layer, x, params: x,
    L.Dropout: _dropout,
}


# One entry per loss class: f(torch, P, Z, y, fused) -> scalar, where P is
# the network output, Z the input of the last layer (the logits when fused)
# and y the targets as given to dialnet (labels or rows).


def _torch_targets(torch, y, n_out, one_hot_labels):
    y = np.asarray(y)
    if y.ndim == 1 and one_hot_labels:
        Y = np.zeros((y.shape[0], n_out))
        Y[np.arange(y.shape[0]), y] = 1
        return torch.from_numpy(Y)
    if y.ndim == 1 and n_out == 1:
        return torch.from_numpy(y.reshape(-1, 1).astype(np.float64))
    return torch.from_numpy(y.astype(np.int64) if y.ndim == 1 else y.astype(np.float64))


def _torch_mse(torch, P, Z, y, fused):
    return torch.nn.functional.mse_loss(P, _torch_targets(torch, y, P.shape[1], one_hot_labels=True))


def _torch_cross_entropy(torch, P, Z, y, fused):
    F = torch.nn.functional
    T = _torch_targets(torch, y, P.shape[1], one_hot_labels=False)
    if fused:  # softmax output: torch's own cross_entropy on the logits
        return F.cross_entropy(Z, T)
    if T.ndim == 1:
        return F.nll_loss(torch.log(P), T)
    return -(T * torch.log(P)).sum(dim=1).mean()


def _torch_bce(torch, P, Z, y, fused):
    F = torch.nn.functional
    T = _torch_targets(torch, y, P.shape[1], one_hot_labels=False)
    if fused:
        return F.binary_cross_entropy_with_logits(Z, T)
    return F.binary_cross_entropy(P, T)


TORCH_LOSSES = {
    LS.MSE: _torch_mse,
    LS.CrossEntropy: _torch_cross_entropy,
    LS.BinaryCrossEntropy: _torch_bce,
}


# The same losses per sample (shape (n,)), for the weighted mean.


def _torch_mse_rows(torch, P, Z, y, fused):
    T = _torch_targets(torch, y, P.shape[1], one_hot_labels=True)
    return torch.nn.functional.mse_loss(P, T, reduction="none").mean(dim=1)


def _torch_cross_entropy_rows(torch, P, Z, y, fused):
    T = _torch_targets(torch, y, P.shape[1], one_hot_labels=False)
    if fused:
        return torch.nn.functional.cross_entropy(Z, T, reduction="none")
    if T.ndim == 1:
        return -torch.log(P)[torch.arange(P.shape[0]), T]
    return -(T * torch.log(P)).sum(dim=1)


def _torch_bce_rows(torch, P, Z, y, fused):
    F = torch.nn.functional
    T = _torch_targets(torch, y, P.shape[1], one_hot_labels=False)
    if fused:
        return F.binary_cross_entropy_with_logits(Z, T, reduction="none").mean(dim=1)
    return F.binary_cross_entropy(P, T, reduction="none").mean(dim=1)


TORCH_LOSSES_PER_SAMPLE = {
    LS.MSE: _torch_mse_rows,
    LS.CrossEntropy: _torch_cross_entropy_rows,
    LS.BinaryCrossEntropy: _torch_bce_rows,
}

# Output heads each loss is tested with (layer names after the last Dense),
# and the kinds of targets it takes. ("softmax", "identity") hides the
# softmax from the fusion, so the loss works on probabilities.
HEADS = {
    LS.MSE: [()] + [(name,) for name in sorted(L.LAYERS) if L.LAYERS[name] is not L.Dense],
    LS.CrossEntropy: [("softmax",), ("softmax", "identity"), ("sigmoid",)],
    LS.BinaryCrossEntropy: [("sigmoid",), ("sigmoid", "identity"), ("softmax",)],
}
TARGETS = {
    LS.MSE: ("rows", "labels"),
    LS.CrossEntropy: ("labels", "probs"),
    LS.BinaryCrossEntropy: ("probs", "binary"),
}


def make_targets(kind, n, k, rng):
    if kind == "rows":
        return rng.normal(size=(n, k))
    if kind == "labels":
        return rng.integers(0, k, size=n)
    if kind == "probs":  # CE: rows on the simplex; BCE: one probability per output
        return rng.dirichlet(np.ones(k), size=n) if k > 1 else rng.uniform(size=(n, k))
    if kind == "binary":
        return rng.integers(0, 2, size=(n, k)).astype(np.float64)
    raise AssertionError(kind)


def _registered_layer_classes():
    return set(L.LAYERS.values()) | set(L.ACTIVATIONS.values())


def _registered_loss_classes():
    return set(LS.LOSSES.values())


# ---------------------------------------------------------------- one case


@dataclass
class Case:
    layers: list
    loss: str
    target: str
    n: int
    seed: int


def build(case):
    """The network (float64, dials drawn from ``case.seed``), its input and targets."""
    rng = np.random.default_rng(case.seed)
    net = dn.Network(case.layers, seed=case.seed, dtype="float64")  # seeds the dropout masks
    for layer in net.dense_layers:  # bounded dials, variance 0.5 / n_in: nothing saturates, no kink hit by chance
        layer.weights[...] = rng.uniform(-1.0, 1.0, size=layer.weights.shape) * np.sqrt(1.5 / layer.n_in)
        layer.biases[...] = rng.normal(size=layer.biases.shape) * 0.2
    # inputs away from 0: a near-zero input makes its row of dL/dW tiny, and then finite
    # differences measure mostly rounding, not the gradient
    X = rng.uniform(0.5, 1.5, size=(case.n, net.n_inputs)) * rng.choice([-1.0, 1.0], size=(case.n, net.n_inputs))
    y = make_targets(case.target, case.n, net.n_outputs, rng)
    return net, X, y


def torch_reference(torch, net, loss, X, y, sample_weight=None):
    """Loss, parameter gradients and dL/dX from torch autograd on the same function.

    With ``sample_weight``: torch's per-sample losses, weighted by hand,
    ``sum_i w_i l_i / sum_i w_i``.
    """
    Xt = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    leaves = [torch.tensor(np.asarray(p), dtype=torch.float64, requires_grad=True) for p in net.parameters()]
    params = iter(leaves)
    out, logits = Xt, None
    for layer in net.layers:
        logits = out
        out = TORCH_LAYERS[type(layer)](torch, layer, out, params)
    fused = loss.fuses(net.layers[-1])
    if sample_weight is None:
        value = TORCH_LOSSES[type(loss)](torch, out, logits, y, fused)
    else:
        w = torch.from_numpy(np.asarray(sample_weight, dtype=np.float64))
        value = (w * TORCH_LOSSES_PER_SAMPLE[type(loss)](torch, out, logits, y, fused)).sum() / w.sum()
    value.backward()
    return value.item(), [leaf.grad.numpy() for leaf in leaves], Xt.grad.numpy()


def assert_matches(name, got, ref, tol):
    """Element-wise, relative to the array's largest entry (exact zeros must match exactly)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, name
    scale = np.abs(ref).max(initial=0.0)
    err = np.abs(got - ref).max(initial=0.0)
    assert err <= tol * scale or err == 0.0, f"{name}: max |dialnet - reference| = {err:.3g}, scale {scale:.3g}"
    return err / scale if scale else 0.0


def check_case(torch, case, sample_weight=None):
    """Run one case through every check; return (worst torch error, gradcheck error)."""
    net, X, y = build(case)
    loss = LS.get_loss(case.loss)
    dropouts = [layer for layer in net.layers if isinstance(layer, L.Dropout)]
    mask_states = [d.rng.bit_generator.state for d in dropouts]

    # dialnet: forward, loss, backward (training mode: dropout masks are drawn)
    value = net.backprop(X, y, loss, training=True, sample_weight=sample_weight)
    grads = [g.copy() for g in net.gradients()]
    ref_value, ref_grads, ref_dX = torch_reference(torch, net, loss, X, y, sample_weight)

    worst = abs(value - ref_value) / abs(ref_value) if ref_value else abs(value)
    assert worst <= TORCH_TOL, f"loss value {value!r} vs torch {ref_value!r}"
    for k, (g, r) in enumerate(zip(grads, ref_grads)):
        worst = max(worst, assert_matches(f"gradient of parameter {k}", g, r, TORCH_TOL))
    if sample_weight is not None:
        return worst, _check_finite_differences(net, loss, X, y, sample_weight)

    # dL/dX through Network.backward, with the same masks
    for d, state in zip(dropouts, mask_states):
        d.rng.bit_generator.state = state
    P = net.forward(X, training=True)
    Y = loss.prepare(y, X.shape[0], net.n_outputs, net.dtype)
    dX = net.backward(loss.delta(P, Y))
    worst = max(worst, assert_matches("dL/dX", dX, ref_dX, TORCH_TOL))
    for k, (g, r) in enumerate(zip(net.gradients(), ref_grads)):  # the un-fused chain gives them too
        worst = max(worst, assert_matches(f"gradient of parameter {k} via backward()", g, r, TORCH_TOL))

    return worst, _check_finite_differences(net, loss, X, y)


def _check_finite_differences(net, loss, X, y, sample_weight=None):
    """Turn each dial by hand (inference mode: dropout is the identity); return gradcheck's error."""
    err = dn.gradcheck(net, loss, X, y, eps=FD_STEP, sample_weight=sample_weight)
    floor = rounding_floor(net.backprop(X, y, loss, sample_weight=sample_weight))
    for k, (a, n) in enumerate(zip(err.analytic, err.numeric)):
        gap = np.linalg.norm(a - n)
        assert err.errors[k] <= FD_TOL or gap <= floor * np.sqrt(a.size), (
            f"gradcheck: parameter {k} relative error {err.errors[k]:.3g} (all: {err.errors}), "
            f"|backprop - numeric| = {gap:.3g} above the rounding floor {floor:.3g} per dial"
        )
        scale = np.abs(n).max(initial=0.0)
        assert np.all(np.abs(a - n) <= 1e-5 * scale + floor), f"finite differences of parameter {k}, element-wise"
    return float(err)


def rounding_floor(loss_value):
    """How far a central difference can be off from rounding alone: ``c * eps * max(1, |L|) / h``.

    ``L(w + h)`` and ``L(w - h)`` each carry a rounding error of a few
    ``eps`` times the size of the numbers summed into them: ``|L|``, or
    about 1 when a small loss is a difference of O(1) terms (the fused
    ``logsumexp(z) - z_true`` of a confident, correct softmax). The
    difference divides that by ``2h``. A gradient array smaller than this
    (a dial behind several squashing layers, a nearly perfect prediction)
    cannot be checked to 1e-6 relative by any ``h`` without also growing the
    truncation error, so for it the check is this absolute bound,
    ~2e-9 max(1, |L|) per dial, not a looser relative one.
    """
    return 8 * np.finfo(np.float64).eps * max(1.0, abs(loss_value)) / FD_STEP


# ----------------------------------------------------------- random cases


def _make_layer(draw, name, width):
    """A layer of the registered class ``name``; returns (layer, output width)."""
    cls = L.LAYERS[name]
    if cls is L.Dense:
        n_out = draw(st.integers(1, 5))
        return cls(width, n_out), n_out
    if cls is L.LeakyReLU:
        return cls(alpha=draw(st.sampled_from([0.0, 0.01, 0.3]))), width
    if cls is L.Dropout:
        return cls(p=draw(st.sampled_from([0.0, 0.25, 0.5]))), width
    return cls(), width  # a new parameterless activation is picked up as is


@st.composite
def cases(draw):
    n_in = draw(st.integers(1, 5))
    width = draw(st.integers(1, 5))
    layers = [L.Dense(n_in, width)]
    for name in draw(st.lists(st.sampled_from(sorted(L.LAYERS)), max_size=4)):
        layer, width = _make_layer(draw, name, width)
        layers.append(layer)
    loss_name = draw(st.sampled_from(sorted(LS.LOSSES)))
    loss_cls = type(LS.get_loss(loss_name))
    head = draw(st.sampled_from(HEADS[loss_cls]))
    target = draw(st.sampled_from(TARGETS[loss_cls]))
    needs_two = "softmax" in head or loss_cls is LS.CrossEntropy or target == "labels"
    n_out = draw(st.integers(2 if needs_two else 1, 4))
    layers.append(L.Dense(width, n_out))
    for name in head:
        layers.append(_make_layer(draw, name, n_out)[0])
    n = draw(st.sampled_from([1, 2, 3, 7]))
    return Case(layers, loss_name, target, n, draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_backprop_matches_torch_and_finite_differences_on_random_networks(torch64, case):
    check_case(torch64, case)


def sample_weights(n, seed):
    """Weights >= 0 with some zeros and a spread of sizes, never all zero."""
    rng = np.random.default_rng(seed)
    w = rng.choice([0.0, 0.25, 1.0, 2.5, 7.0], size=n)
    w[rng.integers(n)] = rng.uniform(0.5, 3.0)
    return w


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), weight_seed=st.integers(0, 2**32 - 1))
def test_weighted_backprop_matches_torch_and_finite_differences_on_random_networks(torch64, case, weight_seed):
    check_case(torch64, case, sample_weight=sample_weights(case.n, weight_seed))


# ------------------------------------------------- the cases the issue names

NAMED = {
    "sigmoid-mse-rows": ([L.Dense(3, 4), L.Sigmoid(), L.Dense(4, 2), L.Sigmoid()], "mse", "rows", 5),
    "tanh-mse-labels-n1": ([L.Dense(4, 3), L.Tanh(), L.Dense(3, 3), L.Identity()], "mse", "labels", 1),
    "relu-dense-output-mse": ([L.Dense(2, 5), L.ReLU(), L.Dense(5, 1)], "mse", "rows", 6),
    "leaky-relu-softmax-ce-labels": ([L.Dense(3, 4), L.LeakyReLU(0.1), L.Dense(4, 3), L.Softmax()], "cross_entropy", "labels", 4),
    "softmax-ce-probs-n1": ([L.Dense(3, 4), L.Tanh(), L.Dense(4, 3), L.Softmax()], "cross_entropy", "probs", 1),
    "softmax-mse-unfused": ([L.Dense(3, 4), L.Sigmoid(), L.Dense(4, 3), L.Softmax()], "mse", "labels", 5),
    "hidden-softmax": ([L.Dense(2, 3), L.Softmax(), L.Dense(3, 2), L.Sigmoid()], "mse", "rows", 3),
    "ce-on-probabilities-labels": ([L.Dense(3, 4), L.ReLU(), L.Dense(4, 3), L.Softmax(), L.Identity()], "cross_entropy", "labels", 4),
    "ce-on-probabilities-probs": ([L.Dense(3, 3), L.Dense(3, 4), L.Softmax(), L.Identity()], "cross_entropy", "probs", 3),
    "ce-on-sigmoid": ([L.Dense(3, 4), L.Tanh(), L.Dense(4, 3), L.Sigmoid()], "cross_entropy", "labels", 4),
    "bce-fused": ([L.Dense(3, 4), L.Tanh(), L.Dense(4, 2), L.Sigmoid()], "binary_cross_entropy", "binary", 5),
    "bce-fused-n1": ([L.Dense(3, 4), L.ReLU(), L.Dense(4, 1), L.Sigmoid()], "bce", "probs", 1),
    "bce-unfused": ([L.Dense(3, 4), L.Sigmoid(), L.Dense(4, 2), L.Sigmoid(), L.Identity()], "binary_cross_entropy", "probs", 5),
    "dropout-fixed-mask": ([L.Dense(4, 6), L.ReLU(), L.Dropout(0.5), L.Dense(6, 3), L.Softmax()], "cross_entropy", "labels", 6),
    "dropout-p0": ([L.Dense(2, 3), L.Tanh(), L.Dropout(0.0), L.Dense(3, 2), L.Identity()], "mse", "rows", 2),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_case(torch64, name):
    layers, loss, target, n = NAMED[name]
    check_case(torch64, Case(layers, loss, target, n, seed=sorted(NAMED).index(name)))


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_case_with_sample_weights(torch64, name):
    layers, loss, target, n = NAMED[name]
    seed = sorted(NAMED).index(name)
    check_case(torch64, Case(layers, loss, target, n, seed=seed), sample_weight=sample_weights(n, seed))


def test_every_registered_layer_and_loss_has_a_torch_reference():
    missing = sorted(c.__name__ for c in _registered_layer_classes() if c not in TORCH_LAYERS)
    missing += sorted(c.__name__ for c in _registered_loss_classes() if c not in TORCH_LOSSES)
    missing += sorted(f"{c.__name__} (per sample)" for c in _registered_loss_classes() if c not in TORCH_LOSSES_PER_SAMPLE)
    missing += sorted(f"{c.__name__} (output heads / targets)" for c in _registered_loss_classes() if c not in HEADS or c not in TARGETS)
    assert not missing, f"registered without a torch reference in tests/core/test_gradients.py: {missing}"


def test_named_cases_cover_every_layer_and_both_paths_of_every_fusing_loss():
    layer_classes = {type(layer) for layers, *_ in NAMED.values() for layer in layers}
    assert _registered_layer_classes() <= layer_classes
    seen = set()
    for layers, loss, *_ in NAMED.values():
        loss = LS.get_loss(loss)
        seen.add((type(loss), layers[-1].name == loss.fuses_with))
    for cls in _registered_loss_classes():
        assert (cls, False) in seen, f"{cls.__name__} never tested un-fused"
        if cls.fuses_with is not None:
            assert (cls, True) in seen, f"{cls.__name__} never tested fused with {cls.fuses_with}"


# ------------------------------------------------------- targeted checks


def test_dropout_matches_finite_differences_with_its_mask_held_fixed():
    """Training mode: turn dials by hand while the same mask is replayed every pass."""
    net = dn.Network([L.Dense(3, 5), L.Tanh(), L.Dropout(0.4), L.Dense(5, 2), L.Identity()], seed=3, dtype="float64")
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    dropout = net.layers[2]
    start = dropout.rng.bit_generator.state
    loss = dn.MSE()

    def loss_value():
        dropout.rng.bit_generator.state = start  # same draw, same mask
        return loss.value(net._forward(net._check_X(X), training=True), Y)

    dropout.rng.bit_generator.state = start
    net.backprop(X, Y, loss, training=True)
    assert 0 < (dropout.mask == 0).sum() < dropout.mask.size  # some units dropped, some kept
    h = 1e-6
    for p, g in zip(net.parameters(), net.gradients()):
        flat, analytic = p.reshape(-1), g.reshape(-1).copy()
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            up = loss_value()
            flat[i] = old - h
            down = loss_value()
            flat[i] = old
            assert abs((up - down) / (2 * h) - analytic[i]) <= 1e-7 * max(1.0, abs(analytic[i]))


def test_gradcheck_catches_a_wrong_gradient():
    """The checker itself can fail: break Sigmoid's slope and it must notice."""

    class WrongSigmoid(L.Sigmoid):
        def backward(self, da, need_dx=True):
            return da * self.a  # forgot the (1 - a) factor

    net = dn.Network([L.Dense(3, 4), WrongSigmoid(), L.Dense(4, 2), L.Identity()], seed=0, dtype="float64")
    X = np.random.default_rng(0).normal(size=(5, 3))
    Y = np.random.default_rng(1).normal(size=(5, 2))
    assert dn.gradcheck(net, "mse", X, Y) > 1e-2


def test_gradcheck_float32_network_is_checked_in_float64_copy():
    net = dn.mlp([4, 6, 3], activation="tanh", output="softmax", seed=1)
    X = np.random.default_rng(2).normal(size=(5, 4))
    err = dn.gradcheck(net, "cross_entropy", X, np.array([0, 1, 2, 1, 0]))
    assert err <= FD_TOL
    assert net.dtype == np.float32  # the user's network is left as it was
    assert err.dials == net.count_parameters()


def measure(n_cases):
    """Largest errors over ``n_cases`` fresh random cases (not derandomized): ``python tests/core/test_gradients.py 200``."""
    import torch  # noqa: PLC0415
    from hypothesis import Phase  # noqa: PLC0415

    torch.set_num_threads(1)
    seen = {"cases": 0, "torch": 0.0, "gradcheck": 0.0, "arrays": 0, "over": 0, "floor_used": 0.0}
    spy_result = []
    real_gradcheck = dn.gradcheck

    def spy(*args, **kwargs):
        spy_result.append(real_gradcheck(*args, **kwargs))
        return spy_result[-1]

    @settings(max_examples=n_cases, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def run(case):
        worst_torch, worst_fd = check_case(torch, case)
        net, X, y = build(case)
        floor = rounding_floor(net.backprop(X, y, case.loss))
        seen["cases"] += 1
        seen["torch"] = max(seen["torch"], worst_torch)
        seen["gradcheck"] = max(seen["gradcheck"], worst_fd)
        for e, a, n in zip(spy_result[-1].errors, spy_result[-1].analytic, spy_result[-1].numeric):
            seen["arrays"] += 1
            if e > FD_TOL:  # accepted by the rounding floor: how much of it was used
                seen["over"] += 1
                seen["floor_used"] = max(seen["floor_used"], np.linalg.norm(a - n) / (floor * np.sqrt(a.size)))

    dn.gradcheck = spy
    try:
        run()
    finally:
        dn.gradcheck = real_gradcheck
    print(f"random cases: {seen['cases']} ({seen['arrays']} parameter arrays)")
    print(f"largest torch discrepancy (max |dialnet - torch| / max |torch| per array; loss relative): {seen['torch']:.2e}")
    print(f"largest dn.gradcheck error: {seen['gradcheck']:.2e}")
    print(f"arrays over {FD_TOL:g}: {seen['over']}, largest |backprop - numeric| among them = {seen['floor_used']:.2f} x the rounding floor")

if __name__ == "__main__":
    import sys

    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
