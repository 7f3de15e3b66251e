"""Reliability: the divergence guard, checkpoints that resume to the same bits (SIGKILL, Ctrl-C), resume checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import dialnet as dn
from dialnet.files import checkpoint as ckpt
from dialnet.files import modelfile
from dialnet.errors import DivergenceWarning, TrainingInterrupted


def _blobs(n=64, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def _weights(net):
    return [p.copy() for p in net.parameters()]


def _same_bits(a, b):
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


# ------------------------------------------------------------------ divergence


def test_lr_1e6_is_caught_in_the_step_it_appears_with_last_good_weights():
    X, y = _blobs()
    net = dn.mlp([4, 16, 16, 2], activation="relu", seed=0)
    with pytest.raises(dn.DivergenceError) as info:
        net.fit(X, y, optimizer="sgd", lr=1e6, epochs=5, batch_size=8, shuffle=False, seed=0)
    exc = info.value
    d = exc.details
    assert d["epoch"] == 1 and d["step"] >= 1
    assert d["cause"] == "learning rate too high"
    assert "learning rate 1e+06" in str(exc) and "step" in str(exc)
    assert exc.history.stop_reason.startswith("diverged at epoch 1")
    assert all(np.isfinite(p).all() for p in net.parameters())
    # the weights kept are exactly those after the steps before the bad one
    good_steps = d["step"] - 1
    ref = dn.mlp([4, 16, 16, 2], activation="relu", seed=0)
    if good_steps:
        ref.fit(X[: good_steps * 8], y[: good_steps * 8], optimizer="sgd", lr=1e6, epochs=1, batch_size=8, shuffle=False)
    assert _same_bits(_weights(net), _weights(ref))


class _InfGradientAt(dn.SGD):
    """SGD that turns one gradient entry into +inf on its ``bad_step``-th step (a simulated overflow)."""

    bad_step = 5

    def step(self, params, grads):
        if self.t + 1 == self.bad_step:
            grads[0][0, 0] = np.inf
        super().step(params, grads)


def test_non_finite_gradient_is_traced_to_its_step_even_when_the_loss_stays_finite():
    X, y = _blobs()
    net = dn.mlp([4, 8, 2], activation="sigmoid", seed=1)
    with pytest.raises(dn.DivergenceError, match="non-finite") as info:
        net.fit(X, y, optimizer=_InfGradientAt(lr=0.1), epochs=2, batch_size=8, shuffle=False)
    assert (info.value.details["epoch"], info.value.details["step"]) == (1, 5)
    ref = dn.mlp([4, 8, 2], activation="sigmoid", seed=1)
    ref.fit(X[:32], y[:32], optimizer=dn.SGD(lr=0.1), epochs=1, batch_size=8, shuffle=False, engine="numpy")
    assert _same_bits(_weights(net), _weights(ref))  # (the optimizer of its own trains on the NumPy path)


def test_stop_returns_history_with_reason_and_warns():
    X, y = _blobs()
    net = dn.mlp([4, 16, 16, 2], activation="relu", seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = net.fit(X, y, optimizer="sgd", lr=1e6, epochs=5, batch_size=8, seed=0, on_divergence="stop")
    assert [w.category for w in caught] == [DivergenceWarning]
    assert history.stop_reason.startswith("diverged at epoch") and "learning rate too high" in history.stop_reason
    assert len(history.divergences) == 1 and history.stopped_epoch == history.divergences[0]["epoch"] - 1
    assert len(history.epochs) == history.stopped_epoch  # the epoch cut short is not logged
    assert all(np.isfinite(p).all() for p in net.parameters())


def test_halve_retries_from_the_epoch_start_and_matches_a_run_at_the_halved_rate():
    X, _ = _blobs()
    target = X[:, :1] * 2 + 1
    net = dn.mlp([4, 16, 1], activation="relu", output="identity", seed=0)
    history = net.fit(X, target, loss="mse", optimizer="sgd", lr=0.4, epochs=6, batch_size=8, seed=0, on_divergence="halve")
    assert len(history.divergences) == 1 and "halved the learning rate to 0.2" in history.divergences[0]["action"]
    assert history.history["lr"][-1] == 0.2 and np.isfinite(history.history["loss"]).all()
    # restarting epoch 1 at lr 0.2 is the same run as starting at lr 0.2
    ref = dn.mlp([4, 16, 1], activation="relu", output="identity", seed=0)
    ref.fit(X, target, loss="mse", optimizer="sgd", lr=0.2, epochs=6, batch_size=8, seed=0)
    assert _same_bits(_weights(net), _weights(ref))


def test_halve_is_bounded_then_raises():
    X, y = _blobs()
    net = dn.mlp([4, 16, 16, 2], activation="relu", seed=0)
    with pytest.raises(dn.DivergenceError, match="after 2 halvings"):
        net.fit(X, y, optimizer="sgd", lr=1e6, epochs=3, batch_size=8, seed=0, on_divergence="halve", divergence_retries=2)


def test_unscaled_inputs_are_named_as_the_cause():
    X, y = _blobs()
    net = dn.mlp([4, 16, 2], activation="relu", seed=0)
    with pytest.raises(dn.DivergenceError, match="unscaled inputs") as info:
        net.fit(X * 1e4, y, optimizer="sgd", lr=0.1, epochs=5, batch_size=8, seed=0)
    assert "largest |input| 3.11e+04" in str(info.value)


def test_divergence_options_are_checked():
    X, y = _blobs()
    net = dn.mlp([4, 3, 2], seed=0)
    with pytest.raises(dn.ConfigError, match="on_divergence"):
        net.fit(X, y, on_divergence="ignore")
    with pytest.raises(dn.InvalidValueError, match="divergence_retries"):
        net.fit(X, y, on_divergence="halve", divergence_retries=-1)
    with pytest.raises(dn.ConfigError, match="checkpoint_every needs"):
        net.fit(X, y, checkpoint_every=3)


# ----------------------------------------------------------------- checkpoints

SETUP = dict(epochs=5, batch_size=16, validation_split=0.2, seed=3, early_stopping=3, lr_schedule="plateau")


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    y = (X[:, :3].sum(1) > 0).astype(np.int64) + (X[:, 3] > 1)
    return X, y


def _net():
    return dn.mlp([8, 16, 3], activation="tanh", dropout=0.2, seed=1)


@pytest.fixture(scope="module")
def reference():
    X, y = _data()
    net = _net()
    history = net.fit(X, y, optimizer=dn.Adam(lr=0.01), **SETUP)
    return _weights(net), history.history


class _SigintAt(dn.Adam):
    """Adam that sends this process a SIGINT (a Ctrl-C) right after its ``fire_at``-th step."""

    fire_at = 0

    def step(self, params, grads):
        super().step(params, grads)
        if self.t == self.fire_at:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("fire_at", [7, 23])
def test_ctrl_c_finishes_the_step_saves_and_resumes_to_the_same_bits(tmp_path, reference, fire_at):
    X, y = _data()
    path = tmp_path / "run.ckpt.safetensors"
    opt = _SigintAt(lr=0.01)
    opt.fire_at = fire_at
    with pytest.raises(TrainingInterrupted) as info:
        _net().fit(X, y, optimizer=opt, checkpoint=path, checkpoint_every=4, **SETUP)
    assert info.value.checkpoint == os.fspath(path) and "resume" in str(info.value)
    _, state, _ = ckpt.load(path)
    assert state["global_step"] == fire_at  # the step in flight was finished, no more
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler given back
    net = _net()
    history = net.fit(X, y, optimizer=dn.Adam(lr=0.01), checkpoint=path, checkpoint_every=4, resume=path, **SETUP)
    weights, ref_history = reference
    assert _same_bits(_weights(net), weights)
    assert history.history == ref_history


class _SigtermAt(_SigintAt):
    """Adam that sends this process a SIGTERM (a scheduler's, `docker stop`'s) after its ``fire_at``-th step."""

    def step(self, params, grads):
        dn.Adam.step(self, params, grads)
        if self.t == self.fire_at:
            signal.raise_signal(signal.SIGTERM)


def test_sigterm_is_handled_like_ctrl_c_and_resumes_to_the_same_bits(tmp_path, reference):
    X, y = _data()
    path = tmp_path / "run.ckpt.safetensors"
    opt = _SigtermAt(lr=0.01)
    opt.fire_at = 11
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as info:
        _net().fit(X, y, optimizer=opt, checkpoint=path, checkpoint_every=4, **SETUP)
    assert info.value.signal_name == "SIGTERM" and "(SIGTERM)" in str(info.value)
    _, state, _ = ckpt.load(path)
    assert state["global_step"] == 11
    assert signal.getsignal(signal.SIGTERM) is previous  # handler given back
    net = _net()
    net.fit(X, y, optimizer=dn.Adam(lr=0.01), checkpoint=path, checkpoint_every=4, resume=path, **SETUP)
    assert _same_bits(_weights(net), reference[0])


def test_a_checkpoint_from_before_the_running_metrics_still_resumes(tmp_path, reference):
    X, y = _data()
    path = tmp_path / "run.ckpt.safetensors"
    opt = _SigintAt(lr=0.01)
    opt.fire_at = 7  # mid-epoch: the running metrics of epoch 1 are in the checkpoint
    with pytest.raises(TrainingInterrupted):
        _net().fit(X, y, optimizer=opt, checkpoint=path, checkpoint_every=4, **SETUP)
    net, state, arrays = ckpt.load(path)
    assert state["metrics"]["rows"] == 7 * 16 and state["step"] == 7
    del state["metrics"]  # as written before the running metrics existed
    tensors = {**modelfile.network_tensors(net), **{"checkpoint." + k: v for k, v in arrays.items()}}
    path.write_bytes(modelfile.pack(tensors, dict(modelfile.network_metadata(net), checkpoint=state)))
    resumed = _net()
    history = resumed.fit(X, y, optimizer=dn.Adam(lr=0.01), resume=path, **SETUP)
    weights, ref_history = reference
    assert _same_bits(_weights(resumed), weights) and history.history["loss"] == ref_history["loss"]
    assert history.history["accuracy"][1:] == ref_history["accuracy"][1:]  # epoch 1 counts the rows after the resume
    assert 0.0 <= history.history["accuracy"][0] <= 1.0


def test_checkpointing_does_not_change_the_result_and_a_finished_checkpoint_resumes_at_once(tmp_path, reference):
    X, y = _data()
    path = tmp_path / "ck.safetensors"
    net = _net()
    net.fit(X, y, optimizer=dn.Adam(lr=0.01), checkpoint=path, **SETUP)  # one checkpoint per epoch
    weights, ref_history = reference
    assert _same_bits(_weights(net), weights)
    again = _net()
    history = again.fit(X, y, optimizer=dn.Adam(lr=0.01), resume=path, **SETUP)
    assert _same_bits(_weights(again), weights) and history.history == ref_history
    # a checkpoint is also a model file
    model = dn.load(path)
    assert np.array_equal(model.predict_proba(X), net.predict_proba(X))


def test_resume_refuses_a_different_run(tmp_path):
    X, y = _data()
    path = tmp_path / "ck.safetensors"
    _net().fit(X, y, optimizer=dn.Adam(lr=0.01), checkpoint=path, epochs=1, batch_size=16, seed=0)
    with pytest.raises(dn.ConfigError, match="training data differs"):
        _net().fit(X + 1, y, optimizer=dn.Adam(lr=0.01), resume=path, epochs=1, batch_size=16)
    with pytest.raises(dn.ConfigError, match="batch_size differs"):
        _net().fit(X, y, optimizer=dn.Adam(lr=0.01), resume=path, epochs=1, batch_size=8)
    with pytest.raises(dn.ConfigError, match="optimizer differs"):
        _net().fit(X, y, optimizer=dn.SGD(lr=0.01), resume=path, epochs=1, batch_size=16)
    with pytest.raises(dn.ConfigError, match=r"learning rate differs.*lr 0\.01.*lr 0\.5"):
        _net().fit(X, y, optimizer=dn.Adam(lr=0.5), resume=path, epochs=1, batch_size=16)
    with pytest.raises(dn.ConfigError, match="different network"):
        dn.mlp([8, 4, 3], seed=0).fit(X, y, resume=path, epochs=1, batch_size=16)
    model = tmp_path / "model.safetensors"
    _net().save(model)
    with pytest.raises(dn.ModelFileError, match="not a training checkpoint"):
        _net().fit(X, y, resume=model)
    with pytest.raises(dn.ModelFileError, match="does not exist"):
        _net().fit(X, y, resume=tmp_path / "missing.safetensors")


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import dialnet as dn
    from dialnet.files import modelfile as io

    path, out, kill_step, kill_write = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    y = (X[:, :3].sum(1) > 0).astype(np.int64) + (X[:, 3] > 1)
    net = dn.mlp([8, 16, 3], activation="tanh", dropout=0.2, seed=1)


    class KillAt(dn.Adam):
        def step(self, params, grads):
            super().step(params, grads)
            if self.steps_here == kill_step:
                os.kill(os.getpid(), signal.SIGKILL)
            self.steps_here += 1


    opt = KillAt(lr=0.01)
    opt.steps_here = 1
    if kill_write:  # die inside the kill_write-th checkpoint write: temp file written, not yet renamed
        real_replace, writes = os.replace, [0]

        def replace(src, dst):
            writes[0] += 1
            if writes[0] == kill_write:
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(src, dst)

        io.os.replace = replace
    resume = path if os.path.exists(path) else None
    history = net.fit(X, y, optimizer=opt, epochs=5, batch_size=16, validation_split=0.2, seed=3,
                      early_stopping=3, lr_schedule="plateau", checkpoint=path, checkpoint_every=3, resume=resume)
    np.savez(out, *[p for p in net.parameters()], loss=np.array(history.history["loss"]))
    """
)


def test_sigkill_at_many_points_then_resume_gives_the_same_bits(tmp_path, reference):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path, out = tmp_path / "run.ckpt.safetensors", tmp_path / "final.npz"
    # (optimizer steps in this process before SIGKILL, checkpoint write to die in): each run resumes the last
    plan = [(2, 0), (8, 0), (0, 2), (12, 0), (3, 0), (0, 1), (0, 0)]
    for kill_step, kill_write in plan:
        proc = subprocess.run([sys.executable, str(script), str(path), str(out), str(kill_step), str(kill_write)],
                              capture_output=True, text=True, timeout=120)
        if (kill_step, kill_write) == (0, 0):
            assert proc.returncode == 0, proc.stderr
        else:
            assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".dialnet-")]
    assert leftovers, "the kill inside a write should have left its temp file behind"
    final = np.load(out)
    weights, ref_history = reference
    assert _same_bits([final[f"arr_{i}"] for i in range(len(weights))], weights)
    assert final["loss"].tolist() == ref_history["loss"]


def test_corrupt_checkpoint_fields_are_refused(tmp_path):
    X, y = _data()
    path = tmp_path / "ck.safetensors"
    _net().fit(X, y, optimizer=dn.Adam(lr=0.01), checkpoint=path, checkpoint_every=2, epochs=1, batch_size=16, seed=0)
    net, state, arrays = ckpt.load(path)
    tensors = {**modelfile.network_tensors(net), **{"checkpoint." + k: v for k, v in arrays.items()}}
    meta = modelfile.network_metadata(net)
    for field, value in [("epoch_rng_state", {"bit_generator": "os.system"}), ("total", float("nan")),
                         ("optimizer", {"name": "adam"}), ("history", {"history": {"loss": ["x"]}, "epochs": []}),
                         ("version", 99), ("dropout_rng_states", [{"bit_generator": "PCG64", "state": "junk"}]),
                         ("metrics", {"rows": -1, "correct": 0, "certainty_units": 0}),
                         ("metrics", {"rows": 3, "correct": 1, "certainty_units": 0.5})]:
        bad = dict(state, **{field: value})
        bad_path = tmp_path / f"bad-{field}.safetensors"
        bad_path.write_bytes(modelfile.pack(tensors, dict(meta, checkpoint=bad)))
        with pytest.raises(dn.ModelFileError):
            _net().fit(X, y, optimizer=dn.Adam(lr=0.01), resume=bad_path, epochs=1, batch_size=16)


def test_cli_ctrl_c_exits_130_and_resume_gives_the_same_model(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    lines = ["a,b,c,d,label"] + [",".join(f"{v:.5f}" for v in row) + f",{label}" for row, label in zip(X, y)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "dialnet.cli", "train", "data.csv", "--layers", "8", "--batch-size", "1", "--epochs", "30",
           "--optimizer", "adam", "--target-certainty", "none", "--early-stopping", "0", "--dropout", "0.1", "--no-progress"]
    ckpt_args = ["--checkpoint", "ck.safetensors", "--checkpoint-every", "500", "--out", "resumed.safetensors"]
    ref = subprocess.run([*cmd, "--out", "ref.safetensors"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen([*cmd, *ckpt_args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (tmp_path / "ck.safetensors").exists() and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)  # after the first checkpoint (step 500 of ~6,500)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "interrupted at epoch" in err and "--resume ck.safetensors" in err and "Traceback" not in err
    resumed = subprocess.run([*cmd, *ckpt_args, "--resume", "ck.safetensors"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = dn.load(tmp_path / "ref.safetensors"), dn.load(tmp_path / "resumed.safetensors")
    assert _same_bits(_weights(a), _weights(b))


def test_target_certainty_keeps_the_weights_that_reached_it():
    # Early stopping would restore the epoch with the lowest validation loss; when the run stops because the
    # target certainty was reached, the network must end with the weights that reached it.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=300) > 0).astype(int)
    Xv = rng.normal(size=(100, 4))
    yv = (Xv[:, 0] + 0.5 * Xv[:, 1] + 0.3 * rng.normal(size=100) > 0).astype(int)
    stopper = dn.EarlyStopping(patience=100)
    net = dn.mlp([4, 32, 2], seed=0)
    history = net.fit(X, y, epochs=300, validation_data=(Xv, yv), seed=0, target_certainty=0.85,
                      early_stopping=stopper, lr=0.01)
    assert history.reached_target and "target certainty" in history.stop_reason
    last = len(history.epochs) - 1
    assert stopper.best_epoch != last  # the lowest validation loss came earlier: restoring it would undo the target
    assert net.evaluate(Xv, yv)["certainty"] == pytest.approx(history.history["val_certainty"][-1], rel=1e-6)
    assert net.evaluate(Xv, yv)["certainty"] >= 0.85
