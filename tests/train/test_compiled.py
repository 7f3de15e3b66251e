"""The compiled training step (numba) against the NumPy path it must reproduce.

Every covered combination of hidden activation, output and loss, and every
optimizer setting, trains a few steps both ways in float64: the dials, the
gradients, the optimizer state and the history agree to float64 rounding
(a few steps only: training amplifies rounding differences, and after a few
hundred steps two correct paths part). float32 agrees to float32 rounding,
and the compiled step gives the same bits run after run. Then the parts of
``fit`` it plugs into: shuffling, schedules, checkpoints and resume,
divergence, and the choice of engine.
"""

from __future__ import annotations

import signal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dialnet as dn
from dialnet.errors import ConfigError, DivergenceError, TrainingInterrupted
from dialnet.files import checkpoint as ckpt

pytest.importorskip("numba")

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
HEADS = [  # (output activation, loss, targets)
    ("softmax", "cross_entropy", "labels"),
    ("sigmoid", "binary_cross_entropy", "multilabel"),
    ("sigmoid", "mse", "onehot"),
    ("identity", "mse", "values"),
    ("softmax", "mse", "onehot"),
    ("tanh", "mse", "values"),
    ("relu", "mse", "values"),
    ("leaky_relu", "mse", "values"),
]
OPTIMIZERS = {
    "sgd": lambda: dn.SGD(lr=0.05),
    "sgd-momentum": lambda: dn.SGD(lr=0.05, momentum=0.9),
    "sgd-nesterov-decay": lambda: dn.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd-dampening": lambda: dn.SGD(lr=0.05, momentum=0.5, dampening=0.3),
    "adam": lambda: dn.Adam(lr=0.01),
    "adam-l2": lambda: dn.Adam(lr=0.01, weight_decay=1e-2),
    "adamw": lambda: dn.AdamW(lr=0.01),
    "rmsprop": lambda: dn.RMSprop(lr=0.01),
    "rmsprop-centered-momentum-decay": lambda: dn.RMSprop(lr=0.01, momentum=0.5, centered=True, weight_decay=1e-3),
}


def _data(kind, n=24, n_in=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    labels = rng.integers(0, k, n)
    if kind == "labels":
        return X, labels
    if kind in ("onehot", "multilabel"):
        return X, np.eye(k)[labels] if kind == "onehot" else (rng.random((n, k)) > 0.5).astype(float)
    return X, rng.standard_normal((n, k))


def _net(hidden, head, dtype="float64", sizes=(6, 5, 4, 3)):
    return dn.mlp(list(sizes), activation=hidden, output=head, seed=1, dtype=dtype)


def _train(engine, hidden, head, loss, targets, optimizer, dtype="float64", **kw):
    X, y = _data(targets)
    net = _net(hidden, head, dtype)
    settings = dict(loss=loss, optimizer=optimizer, epochs=1, batch_size=8, shuffle=False, engine=engine)
    history = net.fit(X.astype(dtype), y, **{**settings, **kw})
    return net, history


def _state(net, history):
    opt = history.optimizer if hasattr(history, "optimizer") else None
    return [np.array(p) for p in net.parameters()] + [np.array(g) for g in net.gradients()], opt


def _close(a, b, rtol, atol):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("head,loss,targets", HEADS)
def test_every_stack_matches_the_numpy_path_in_float64(hidden, head, loss, targets):
    nets, histories = [], []
    for engine in ("numpy", "compiled"):
        net, history = _train(engine, hidden, head, loss, targets, dn.Adam(lr=0.01), l2=1e-3)
        nets.append(_state(net, history)[0])
        histories.append(history)
    assert histories[1].engine == "compiled" and histories[0].engine == "numpy"
    _close(nets[0], nets[1], rtol=1e-12, atol=1e-14)
    for key, values in histories[0].history.items():
        np.testing.assert_allclose(histories[1].history[key], values, rtol=1e-12, err_msg=key)


@pytest.mark.parametrize("head,loss,targets", HEADS[:4])
def test_sample_and_class_weights_match_the_numpy_path(head, loss, targets):
    X, y = _data(targets)
    w = np.random.default_rng(4).uniform(0.0, 3.0, size=len(X))
    w[:8] = 0.0  # the first batch weighs nothing: value 0, no step
    extra = {"class_weight": "balanced"} if targets == "labels" else {}
    nets, histories = [], []
    for engine in ("numpy", "compiled"):
        net = _net("tanh", head)
        histories.append(net.fit(X, y, loss=loss, optimizer=dn.Adam(lr=0.01), epochs=2, batch_size=8, seed=2,
                                 sample_weight=w, validation_data=(X, y, w), engine=engine, **extra))
        nets.append(net)
    assert histories[1].engine == "compiled"
    _close(nets[0].parameters(), nets[1].parameters(), rtol=1e-11, atol=1e-13)
    for key, values in histories[0].history.items():
        np.testing.assert_allclose(histories[1].history[key], values, rtol=1e-11, err_msg=key)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_setting_matches_the_numpy_path_and_leaves_the_same_state(name):
    results = []
    for engine in ("numpy", "compiled"):
        opt = OPTIMIZERS[name]()
        net, history = _train(engine, "tanh", "softmax", "cross_entropy", "labels", opt, epochs=2)
        results.append((net, opt, history))
    (a, opt_a, _), (b, opt_b, _) = results
    _close(a.parameters(), b.parameters(), rtol=1e-12, atol=1e-14)
    _close(a.gradients(), b.gradients(), rtol=1e-12, atol=1e-14)
    assert opt_a.t == opt_b.t == 6
    state_a, state_b = opt_a.state_arrays(), opt_b.state_arrays()
    assert sorted(state_a) == sorted(state_b)
    _close([state_a[k] for k in sorted(state_a)], [state_b[k] for k in sorted(state_b)], rtol=1e-12, atol=1e-14)


def test_float32_agrees_to_float32_rounding_and_the_bits_repeat():
    runs = {}
    for engine in ("numpy", "compiled", "compiled"):
        net, history = _train(engine, "sigmoid", "softmax", "cross_entropy", "labels", dn.SGD(lr=0.1, momentum=0.9),
                              dtype="float32", epochs=3)
        runs.setdefault(engine, []).append((np.concatenate([p.ravel() for p in net.parameters()]), history))
    (ref, _), = runs["numpy"]
    (first, h1), (second, h2) = runs["compiled"]
    assert first.dtype == np.float32
    np.testing.assert_allclose(first, ref, rtol=1e-4, atol=1e-5)
    assert first.tobytes() == second.tobytes() and h1.history == h2.history


def test_online_learning_batch_of_one_matches():
    nets = [_train(engine, "sigmoid", "softmax", "cross_entropy", "labels", dn.SGD(lr=0.1), batch_size=1)[0]
            for engine in ("numpy", "compiled")]
    _close(nets[0].parameters(), nets[1].parameters(), rtol=1e-11, atol=1e-13)


def test_shuffled_epochs_a_last_short_batch_and_a_schedule_match():
    X, y = _data("labels", n=30)
    nets, histories = [], []
    for engine in ("numpy", "compiled"):
        net = _net("relu", "softmax")
        histories.append(net.fit(X, y, optimizer=dn.SGD(lr=0.1, momentum=0.9), epochs=3, batch_size=8, seed=5,
                                 lr_schedule="cosine", validation_split=0.2, engine=engine))
        nets.append(net)
    _close(nets[0].parameters(), nets[1].parameters(), rtol=1e-11, atol=1e-13)
    for key in ("loss", "accuracy", "val_loss", "lr"):
        np.testing.assert_allclose(histories[1].history[key], histories[0].history[key], rtol=1e-11)


class _CtrlCAfterEpoch(dn.Callback):
    """Sends this process a SIGINT (a Ctrl-C) at the end of epoch ``at``: fit saves and stops."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, epoch, logs, net):
        if epoch == self.at:
            signal.raise_signal(signal.SIGINT)
        return False


def test_a_run_interrupted_and_resumed_gives_the_bits_of_one_never_stopped(tmp_path):
    X, y = _data("labels", n=40)
    settings = dict(epochs=4, batch_size=8, seed=3, engine="compiled")
    whole = _net("tanh", "softmax")
    reference = whole.fit(X, y, optimizer=dn.Adam(lr=0.01), callbacks=[_CtrlCAfterEpoch(None)], **settings)
    path = tmp_path / "run.ckpt.safetensors"
    with pytest.raises(TrainingInterrupted):
        _net("tanh", "softmax").fit(X, y, optimizer=dn.Adam(lr=0.01), checkpoint=path, callbacks=[_CtrlCAfterEpoch(1)],
                                    **settings)
    _, state, _ = ckpt.load(path)
    assert state["global_step"] == 10
    resumed = _net("tanh", "softmax")
    history = resumed.fit(X, y, optimizer=dn.Adam(lr=0.01), checkpoint=path, resume=path,
                          callbacks=[_CtrlCAfterEpoch(None)], **settings)
    assert history.engine == "compiled" and history.history == reference.history
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert np.array_equal(a, b)


def test_a_checkpoint_written_by_one_engine_resumes_on_the_other(tmp_path):
    X, y = _data("labels", n=40)
    path = tmp_path / "run.ckpt.safetensors"
    settings = dict(epochs=3, batch_size=8, seed=3)
    with pytest.raises(TrainingInterrupted):
        _net("tanh", "softmax").fit(X, y, optimizer=dn.SGD(lr=0.1, momentum=0.9), checkpoint=path,
                                    callbacks=[_CtrlCAfterEpoch(0)], engine="compiled", **settings)
    numpy_end = _net("tanh", "softmax")
    numpy_end.fit(X, y, optimizer=dn.SGD(lr=0.1, momentum=0.9), checkpoint=path, resume=path,
                  callbacks=[_CtrlCAfterEpoch(None)], engine="numpy", **settings)
    reference = _net("tanh", "softmax")
    reference.fit(X, y, optimizer=dn.SGD(lr=0.1, momentum=0.9), engine="numpy", **settings)
    _close(numpy_end.parameters(), reference.parameters(), rtol=1e-11, atol=1e-13)


def test_divergence_keeps_the_weights_from_before_the_bad_step():
    X, y = _data("values", n=64)
    X, y = X * 100, y * 100  # unscaled: the squared error blows up within a few steps
    settings = dict(loss="mse", optimizer=None, epochs=3, batch_size=8, seed=0)
    net = dn.mlp([6, 5, 4, 3], activation="identity", output="identity", seed=1, dtype="float32")
    with pytest.raises(DivergenceError) as info:
        net.fit(X, y, **{**settings, "optimizer": dn.SGD(lr=0.5)}, engine="compiled")
    assert all(np.isfinite(p).all() for p in net.parameters())
    assert info.value.details["cause"] == "unscaled inputs" and info.value.details["step"] >= 2
    net = dn.mlp([6, 5, 4, 3], activation="identity", output="identity", seed=1, dtype="float32")
    history = net.fit(X, y, **{**settings, "optimizer": dn.SGD(lr=0.5)}, on_divergence="halve", divergence_retries=60,
                      engine="compiled")
    assert history.engine == "compiled" and history.divergences[0]["action"].startswith("halved")
    assert all(np.isfinite(p).all() for p in net.parameters())


@pytest.mark.parametrize("make,reason", [
    (lambda: (dn.mlp([6, 5, 3], dropout=0.2, seed=0), {}), "Dropout"),
    (lambda: (dn.mlp([6, 5, 3], seed=0), {"optimizer": type("MySGD", (dn.SGD,), {})(lr=0.1)}), "MySGD"),
    (lambda: (dn.mlp([6, 5, 3], seed=0), {"y": np.eye(3)[np.arange(24) % 3]}), "target rows"),
])
def test_engine_compiled_says_what_it_does_not_cover(make, reason):
    X, y = _data("labels")
    net, kw = make()
    y = kw.pop("y", y)
    with pytest.raises(ConfigError, match="does not cover") as info:
        net.fit(X, y, epochs=1, engine="compiled", **kw)
    assert reason in str(info.value)
    assert net.fit(X, y, epochs=1, engine="auto", **kw).engine == "numpy"


def test_auto_compiles_what_it_covers_and_the_environment_sets_the_default(monkeypatch):
    X, y = _data("labels", n=64)
    assert _net("relu", "softmax").fit(X, y, epochs=1, batch_size=8).engine == "compiled"
    assert _net("relu", "softmax").fit(X, y, epochs=1, batch_size=8, engine="numpy").engine == "numpy"
    monkeypatch.setenv("DIALNET_ENGINE", "numpy")
    assert _net("relu", "softmax").fit(X, y, epochs=1, batch_size=8).engine == "numpy"
    assert _net("relu", "softmax").fit(X, y, epochs=1, batch_size=8, engine="compiled").engine == "compiled"
    monkeypatch.setenv("DIALNET_ENGINE", "fastest")
    with pytest.raises(ConfigError, match="DIALNET_ENGINE"):
        _net("relu", "softmax").fit(X, y, epochs=1)


def test_inputs_in_fortran_order_or_strided_train_the_same():
    X, y = _data("labels", n=40)
    nets = []
    for inputs in (X, np.asfortranarray(X), np.repeat(X, 2, axis=1)[:, ::2]):
        net = _net("sigmoid", "softmax")
        net.fit(inputs, y, optimizer=dn.SGD(lr=0.1), epochs=2, batch_size=8, shuffle=False, engine="compiled")
        nets.append(net)
    for net in nets[1:]:
        for a, b in zip(nets[0].parameters(), net.parameters()):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_nothing_left_in_the_work_area_leaks_into_a_step(monkeypatch, batch_size):
    """The work area is np.empty: a step must write every number it reads (here it starts full of NaN)."""
    from dialnet.train import compiled

    made = compiled.CompiledStep.__init__

    def poisoned(self, module, trainer):
        made(self, module, trainer)
        self.work[...] = np.nan

    monkeypatch.setattr(compiled.CompiledStep, "__init__", poisoned)
    for hidden, head, loss, targets in (("sigmoid", "softmax", "cross_entropy", "labels"),
                                        ("tanh", "sigmoid", "binary_cross_entropy", "multilabel"),
                                        ("relu", "softmax", "mse", "onehot")):
        nets = [_train(engine, hidden, head, loss, targets, dn.SGD(lr=0.1, momentum=0.5), batch_size=batch_size,
                       shuffle=True, seed=1)[0] for engine in ("numpy", "compiled")]
        _close(nets[0].parameters(), nets[1].parameters(), rtol=1e-10, atol=1e-12)


def test_without_numba_auto_trains_on_numpy_and_compiled_says_how_to_get_it(monkeypatch):
    from dialnet.train import compiled

    monkeypatch.setattr(compiled, "_kernels", [(None, f"numba is not installed ({compiled.INSTALL}): No module named 'numba'")])
    X, y = _data("labels")
    assert _net("relu", "softmax").fit(X, y, epochs=1).engine == "numpy"
    with pytest.raises(ConfigError, match=r"numba is not installed \(pip install 'dialnet\[fast\]'\)"):
        _net("relu", "softmax").fit(X, y, epochs=1, engine="compiled")


def test_importing_dialnet_and_training_on_numpy_never_import_numba():
    import subprocess
    import sys

    code = ("import sys, numpy as np, dialnet as dn; X = np.zeros((8, 3)); "
            "dn.mlp([3, 2], seed=0).fit(X, np.arange(8) % 2, epochs=1, engine='numpy'); "
            "print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("engine,shown", [("auto", "(compiled step)"), ("numpy", "(NumPy layers)")])
def test_dialnet_train_says_which_engine_trained(tmp_path, engine, shown):
    import os
    import subprocess
    import sys

    env = dict(os.environ, DIALNET_ENGINE=engine)
    done = subprocess.run([sys.executable, "-m", "dialnet.cli", "train", "--limit", "300", "--epochs", "2",
                           "--optimizer", "adam", "--out", str(tmp_path / "m.safetensors")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("Trained "))
    assert line.endswith(shown)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    widths=st.lists(st.integers(1, 9), min_size=0, max_size=3),
    hidden=st.sampled_from(HIDDEN),
    head=st.sampled_from(range(len(HEADS))),
    optimizer=st.sampled_from(sorted(OPTIMIZERS)),
    batch_size=st.integers(1, 13),
    shuffle=st.booleans(),
    weighted=st.booleans(),
    l2=st.sampled_from([0.0, 1e-2]),
)
def test_any_covered_network_trains_as_on_the_numpy_path(widths, hidden, head, optimizer, batch_size, shuffle, weighted,
                                                           l2):
    """Random depths and widths (1 unit included), batch sizes that leave a short last batch, every head and
    optimizer: two epochs on each engine end with the same dials (float64)."""
    out, loss, targets = HEADS[head]
    X, y = _data(targets, n=21, n_in=4, k=2)
    w = np.random.default_rng(1).uniform(0.1, 2.0, size=21) if weighted else None
    nets = []
    for engine in ("numpy", "compiled"):
        net = dn.mlp([4, *widths, 2], activation=hidden, output=out, seed=3, dtype="float64")
        history = net.fit(X, y, loss=loss, optimizer=OPTIMIZERS[optimizer](), epochs=2, batch_size=batch_size,
                          shuffle=shuffle, seed=5, l2=l2, sample_weight=w, engine=engine)
        assert history.engine == engine
        nets.append(net)
    _close(nets[0].parameters(), nets[1].parameters(), rtol=1e-9, atol=1e-11)


def test_the_first_compiled_run_in_a_process_times_loading_the_kernels():
    import subprocess
    import sys

    code = ("import numpy as np, dialnet as dn; X = np.zeros((10, 5)); y = np.arange(10) % 2; "
            "a = dn.mlp([5, 3, 2], seed=0).fit(X, y, epochs=1); b = dn.mlp([5, 3, 2], seed=0).fit(X, y, epochs=1); "
            "print(a.engine, a.engine_load_time > 0, b.engine_load_time == 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.split() == ["compiled", "True", "True"]
