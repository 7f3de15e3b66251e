"""Optimizers and learning-rate schedules against ``torch.optim``, step by step, in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dialnet as dn
from dialnet.train.optimizers import FLAT, get_optimizer
from dialnet.train.schedules import get_schedule

STEPS = 20
TOL = 1e-12

# (dialnet optimizer, torch.optim class name, torch keyword arguments)
CASES = {
    "sgd": (lambda: dn.SGD(lr=0.1), "SGD", dict(lr=0.1)),
    "sgd-momentum": (lambda: dn.SGD(lr=0.05, momentum=0.9), "SGD", dict(lr=0.05, momentum=0.9)),
    "sgd-momentum-dampening": (
        lambda: dn.SGD(lr=0.05, momentum=0.8, dampening=0.3),
        "SGD",
        dict(lr=0.05, momentum=0.8, dampening=0.3),
    ),
    "sgd-nesterov": (lambda: dn.SGD(lr=0.05, momentum=0.9, nesterov=True), "SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    "sgd-weight-decay": (
        lambda: dn.SGD(lr=0.1, momentum=0.5, weight_decay=0.01),
        "SGD",
        dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    ),
    "adam": (lambda: dn.Adam(lr=0.01), "Adam", dict(lr=0.01)),
    "adam-betas-eps": (
        lambda: dn.Adam(lr=0.003, betas=(0.8, 0.95), eps=1e-6),
        "Adam",
        dict(lr=0.003, betas=(0.8, 0.95), eps=1e-6),
    ),
    "adam-l2": (lambda: dn.Adam(lr=0.01, weight_decay=0.1), "Adam", dict(lr=0.01, weight_decay=0.1)),
    "adamw": (lambda: dn.AdamW(lr=0.01, weight_decay=0.1), "AdamW", dict(lr=0.01, weight_decay=0.1)),
    "adam-decoupled": (lambda: dn.Adam(lr=0.01, weight_decay=0.05, decoupled=True), "AdamW", dict(lr=0.01, weight_decay=0.05)),
    "rmsprop": (lambda: dn.RMSprop(lr=0.01), "RMSprop", dict(lr=0.01)),
    "rmsprop-momentum": (lambda: dn.RMSprop(lr=0.01, momentum=0.9), "RMSprop", dict(lr=0.01, momentum=0.9)),
    "rmsprop-centered": (lambda: dn.RMSprop(lr=0.01, centered=True), "RMSprop", dict(lr=0.01, centered=True)),
    "rmsprop-centered-momentum-wd": (
        lambda: dn.RMSprop(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
        "RMSprop",
        dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
    ),
}


def _start_and_gradients(seed=0):
    """Dials shaped like a small network's, and a gradient sequence for them."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (3, 2), (2,)]
    params = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) * 10.0 ** rng.uniform(-3, 1) for s in shapes] for _ in range(STEPS)]
    return params, grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_twenty_steps_match_torch_optim(torch64, name):
    torch = torch64
    make, torch_name, torch_kwargs = CASES[name]
    start, grads = _start_and_gradients()

    ours = [p.copy() for p in start]
    opt = make()
    theirs = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start]
    topt = getattr(torch.optim, torch_name)(theirs, **torch_kwargs)
    for step, g in enumerate(grads, 1):
        opt.step(ours, [gi.copy() for gi in g])
        for t, gi in zip(theirs, g):
            t.grad = torch.tensor(gi, dtype=torch.float64)
        topt.step()
        for k, (a, t) in enumerate(zip(ours, theirs)):
            t = t.detach().numpy()
            err = np.abs(a - t).max()
            assert err <= TOL * max(1.0, np.abs(t).max()), f"{name}: parameter {k} after step {step} off by {err:.3g}"
    assert opt.t == STEPS
    # the dials actually moved: the comparison is not between two untouched copies
    assert all(not np.allclose(a, s) for a, s in zip(ours, start))


def test_step_leaves_the_gradients_alone():
    params, grads = _start_and_gradients()
    for name in sorted(CASES):
        opt = CASES[name][0]()
        g = [gi.copy() for gi in grads[0]]
        opt.step([p.copy() for p in params], g)
        for before, after in zip(grads[0], g):
            assert np.array_equal(before, after), name


def test_state_arrays_round_trip_continues_bit_for_bit():
    """Checkpoint-style: save state after 10 steps, load into a fresh optimizer, same result."""
    start, grads = _start_and_gradients(1)
    for name in sorted(CASES):
        a = [p.copy() for p in start]
        opt = CASES[name][0]()
        for g in grads:
            opt.step(a, g)
        b = [p.copy() for p in start]
        first = CASES[name][0]()
        for g in grads[:10]:
            first.step(b, g)
        second = CASES[name][0]()
        second.load_state_arrays(first.state_arrays(), first.t)
        for g in grads[10:]:
            second.step(b, g)
        for x, y in zip(a, b):
            assert np.array_equal(x, y), name


# ------------------------------------------------------------ schedules


class _Holder:
    """Only what a schedule touches: ``lr`` and ``initial_lr``."""

    def __init__(self, lr):
        self.lr = self.initial_lr = lr


def _run_against_torch(torch, schedule, make_torch, epochs, lr=0.1, losses=None):
    holder = _Holder(lr)
    schedule.attach(holder)
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.SGD([param], lr=lr)
    tsched = make_torch(topt)
    ours, theirs = [], []
    for epoch in range(epochs):
        logs = {"loss": losses[epoch]} if losses is not None else {}
        schedule.on_epoch_end(epoch, logs)
        topt.step()
        if losses is not None:
            tsched.step(losses[epoch])
        else:
            tsched.step()
        ours.append(holder.lr)
        theirs.append(topt.param_groups[0]["lr"])
    return np.array(ours), np.array(theirs)


def test_step_lr_matches_torch(torch64):
    ours, theirs = _run_against_torch(
        torch64, dn.StepLR(step_size=3, gamma=0.5), lambda o: torch64.optim.lr_scheduler.StepLR(o, 3, gamma=0.5), 12
    )
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=0)
    assert ours[2] == pytest.approx(0.05) and ours[-1] == pytest.approx(0.1 * 0.5**4)


def test_exponential_lr_matches_torch(torch64):
    ours, theirs = _run_against_torch(
        torch64, dn.ExponentialLR(gamma=0.9), lambda o: torch64.optim.lr_scheduler.ExponentialLR(o, gamma=0.9), 15
    )
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=0)


def test_cosine_lr_matches_torch_cosine_annealing_then_stays_at_min(torch64):
    t_max, min_lr = 10, 0.001
    ours, theirs = _run_against_torch(
        torch64,
        dn.CosineLR(t_max=t_max, min_lr=min_lr),
        lambda o: torch64.optim.lr_scheduler.CosineAnnealingLR(o, T_max=t_max, eta_min=min_lr),
        t_max + 5,
    )
    np.testing.assert_allclose(ours[:t_max], theirs[:t_max], rtol=1e-12, atol=1e-15)
    assert ours[t_max - 1] == pytest.approx(min_lr, abs=1e-15)
    # torch's cosine climbs back up after T_max; dialnet's anneals once and stays at the floor
    assert np.all(ours[t_max:] == ours[t_max - 1])


def test_reduce_on_plateau_matches_torch(torch64):
    # improves, stalls 4 epochs (patience 2 -> one cut), improves, stalls long (cuts down to min_lr)
    losses = [1.0, 0.9, 0.8, 0.85, 0.8, 0.81, 0.9, 0.5, 0.4] + [0.45] * 12
    kwargs = dict(factor=0.5, patience=2, min_lr=0.02)
    ours, theirs = _run_against_torch(
        torch64,
        dn.ReduceLROnPlateau(monitor="loss", min_delta=1e-4, **kwargs),
        lambda o: torch64.optim.lr_scheduler.ReduceLROnPlateau(o, threshold=1e-4, threshold_mode="abs", **kwargs),
        len(losses),
        losses=losses,
    )
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=0)
    assert ours[2] == 0.1 and ours[5] == 0.05  # the first cut comes after patience + 1 bad epochs
    assert ours[-1] == 0.02  # never below min_lr


def test_reduce_on_plateau_watches_validation_loss_first():
    sched = dn.ReduceLROnPlateau(factor=0.5, patience=0, min_delta=0.0)
    holder = _Holder(1.0)
    sched.attach(holder)
    sched.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    sched.on_epoch_end(1, {"loss": 0.1, "val_loss": 2.0})  # training improves, validation does not
    assert holder.lr == 0.5


def test_schedule_inside_fit_sets_the_optimizer_lr_each_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)), rng.integers(0, 2, size=16)
    net = dn.mlp([3, 4, 2], seed=0, dtype="float64")
    opt = dn.SGD(lr=0.4)
    net.fit(X, y, optimizer=opt, epochs=3, batch_size=8, lr_schedule=dn.StepLR(step_size=1, gamma=0.5), seed=0)
    assert opt.lr == pytest.approx(0.4 * 0.5**3)
    assert isinstance(get_schedule("cosine"), dn.CosineLR)


# ------------------------------------------------------------ bad settings


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: dn.SGD(lr=0), "lr"),
        (lambda: dn.SGD(lr=-0.1), "lr"),
        (lambda: dn.SGD(lr=math.nan), "lr"),
        (lambda: dn.SGD(momentum=1.0), "momentum"),
        (lambda: dn.Adam(betas=(0.9, 1.0)), "beta2"),
        (lambda: dn.Adam(eps=0.0), "eps"),
        (lambda: dn.RMSprop(alpha=-0.1), "alpha"),
        (lambda: dn.AdamW(weight_decay=-1.0), "weight_decay"),
        (lambda: dn.StepLR(step_size=0), "step_size"),
        (lambda: dn.ReduceLROnPlateau(factor=1.0), "factor"),
    ],
)
def test_out_of_range_settings_are_refused(make, fragment):
    with pytest.raises(dn.InvalidValueError) as info:
        make()
    assert fragment in str(info.value) and "expected" in str(info.value) and "got" in str(info.value)


def test_nesterov_needs_momentum():
    with pytest.raises(dn.ConfigError, match="momentum > 0"):
        dn.SGD(lr=0.1, nesterov=True)


def test_unknown_optimizer_and_schedule_names():
    with pytest.raises(dn.ConfigError) as info:
        get_optimizer("adagrad")
    assert "'adagrad'" in str(info.value) and "adam" in str(info.value) and "sgd" in str(info.value)
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'"):
        get_schedule("linear")
    assert get_optimizer("sgd", lr=0.3).lr == 0.3


def _net():
    return dn.mlp([6, 5, 4, 3], activation="sigmoid", seed=0, dtype="float64")


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
