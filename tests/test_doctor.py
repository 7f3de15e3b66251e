"""The training doctor: each pathology built on purpose must be named; a healthy run gets a clean bill."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dialnet as dn
from dialnet.cli import main
from dialnet.diagnose.doctor import DoctorCallback, DoctorWarning, check_loss_curve


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target  # raw pixels 0..16, 1,797 rows, 10 classes


@pytest.fixture(scope="module")
def scaled(digits):
    X, y = digits
    return X / 16.0, y


def xor(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def test_healthy_sigmoid_run_gets_a_clean_bill(scaled):
    X, y = scaled
    net = dn.mlp([64, 32, 10], activation="sigmoid", seed=0)
    net.fit(X, y, epochs=15, seed=0)
    diagnosis = dn.doctor(net, X, y)  # with the probes, on the run's own history
    assert diagnosis.healthy, diagnosis.report()
    report = str(diagnosis)
    assert report.startswith("Clean bill of health")
    for topic in ("input scale", "classes", "stuck units", "error signal", "loss over 15 epochs", "capacity probe"):
        assert topic in report


def test_healthy_relu_run_on_standardized_inputs(digits):
    X, y = digits
    X = (X - X.mean(0)) / (X.std(0) + 1e-12)
    net = dn.mlp([64, 32, 10], activation="relu", seed=1)
    history = net.fit(X, y, epochs=10, seed=1)
    assert dn.doctor(net, X, y, history=history, probe=False).healthy


def test_unscaled_inputs(digits):
    X, y = digits  # pixels 0..16: RMS about 7.7, the initializers assume about 1
    diagnosis = dn.doctor(dn.mlp([64, 32, 10], activation="sigmoid", seed=0), X, y, probe=False)
    assert "unscaled_inputs" in diagnosis
    finding = diagnosis.findings[diagnosis.codes.index("unscaled_inputs")]
    assert finding.numbers["rms"] == pytest.approx(np.sqrt((X.astype(np.float64) ** 2).mean()), rel=1e-6)
    assert "standardize" in finding.fix


def test_one_feature_on_another_scale(scaled):
    X, y = scaled
    X = X.copy()
    X[:, 5] *= 1000.0  # one column in thousands, the rest in [0, 1]
    diagnosis = dn.doctor(dn.mlp([64, 16, 10], seed=0), X, y, probe=False)
    assert "unscaled_inputs" in diagnosis
    assert diagnosis.findings[0].numbers["largest_feature"] == 5


def test_class_imbalance(scaled):
    X, y = scaled
    zeros, ones = np.where(y == 0)[0], np.where(y == 1)[0][:9]
    rows = np.concatenate([zeros, ones])
    diagnosis = dn.doctor(dn.mlp([64, 16, 2], activation="sigmoid", seed=0), X[rows], y[rows], probe=False)
    finding = diagnosis.findings[diagnosis.codes.index("class_imbalance")]
    assert finding.numbers["counts"] == [len(zeros), 9]
    assert finding.numbers["ratio"] == pytest.approx(len(zeros) / 9)


def test_a_class_with_no_rows(scaled):
    X, y = scaled
    keep = y != 3
    diagnosis = dn.doctor(dn.mlp([64, 16, 10], activation="sigmoid", seed=0), X[keep], y[keep], probe=False)
    assert "class_imbalance" in diagnosis
    assert "never appear" in diagnosis.findings[diagnosis.codes.index("class_imbalance")].detail


def test_saturated_sigmoid_units(scaled):
    X, y = scaled
    net = dn.mlp([64, 32, 10], activation="sigmoid", seed=0)
    net.layers[0].weights *= 25  # z spreads far past |z| = 6, where the slope is under 1% of its peak
    diagnosis = dn.doctor(net, X, y, probe=False)
    finding = diagnosis.findings[diagnosis.codes.index("saturated_units")]
    assert finding.numbers["layer"] == 1
    assert finding.numbers["flat_share"] >= 0.5
    assert "saturated_units" not in dn.doctor(dn.mlp([64, 32, 10], activation="sigmoid", seed=0), X, y, probe=False)


def test_dead_relus(scaled):
    X, y = scaled
    net = dn.mlp([64, 20, 10], activation="relu", seed=0)
    net.layers[0].biases[:12] = -50.0  # z < 0 for every input in [0, 1]: 12 units never fire
    diagnosis = dn.doctor(net, X, y, probe=False)
    finding = diagnosis.findings[diagnosis.codes.index("dead_relu")]
    assert finding.numbers["dead"] >= 12 and finding.numbers["units"] == 20


def test_vanishing_gradients_in_a_deep_sigmoid_net(scaled):
    X, y = scaled
    deep = dn.mlp([64] + [32] * 9 + [10], activation="sigmoid", seed=0)
    diagnosis = dn.doctor(deep, X, y, probe=False)
    assert "vanishing_gradients" in diagnosis
    finding = diagnosis.findings[diagnosis.codes.index("vanishing_gradients")]
    assert finding.numbers["ratio"] < 1e-3 and len(finding.numbers["rms"]) == 10
    shallow = dn.mlp([64, 20, 20, 10], activation="sigmoid", seed=0)
    assert "vanishing_gradients" not in dn.doctor(shallow, X, y, probe=False)


def test_exploding_gradients_in_an_over_scaled_deep_net(scaled):
    X, y = scaled
    net = dn.mlp([64] + [32] * 9 + [10], activation="relu", seed=0)
    for layer in net.dense_layers:
        layer.weights *= 3.0  # each layer multiplies the backward signal by ~3
    diagnosis = dn.doctor(net, X, y, probe=False)
    finding = diagnosis.findings[diagnosis.codes.index("exploding_gradients")]
    assert finding.numbers["ratio"] > 1e3


def test_learning_rate_too_high_from_the_history(scaled):
    X, y = scaled
    net = dn.mlp([64, 32, 10], activation="sigmoid", seed=0)
    with np.errstate(all="ignore"):
        net.fit(X, y, optimizer=dn.SGD(lr=50.0), epochs=8, seed=0)
    diagnosis = dn.doctor(net, X, y, probe=False)  # reads net.history
    finding = diagnosis.findings[diagnosis.codes.index("learning_rate_too_high")]
    assert "try 5" in finding.fix


def test_learning_rate_too_high_from_a_probe_run(scaled):
    X, y = scaled
    net = dn.mlp([64, 32, 10], activation="sigmoid", seed=0)
    before = [p.copy() for p in net.parameters()]
    optimizer = dn.SGD(lr=50.0)
    diagnosis = dn.doctor(net, X, y, optimizer=optimizer, probe="learning_rate", seed=0)
    assert "learning_rate_too_high" in diagnosis
    assert "probe run" in diagnosis.findings[diagnosis.codes.index("learning_rate_too_high")].title
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))  # the probes train copies
    assert optimizer.t == 0  # and never step the caller's optimizer
    assert "learning_rate_too_high" not in dn.doctor(net, X, y, optimizer=dn.SGD(lr=0.1), probe="learning_rate", seed=0)
    with pytest.raises(dn.ConfigError):
        dn.doctor(net, X, y, probe="everything")


def test_loss_curve_rules():
    assert check_loss_curve([2.0, 1.0, 0.6, 0.45, 0.4])[0] == []
    assert check_loss_curve([2.0, 1.0, 1.9, 0.9, 1.7])[0][0].code == "learning_rate_too_high"  # oscillates
    assert "rose" in check_loss_curve([1.0, 1.2, 1.5])[0][0].title
    assert "gave back" in check_loss_curve([2.0, 0.5, 0.4, 0.7, 0.72])[0][0].title
    assert "diverged" in check_loss_curve([2.0, float("nan")])[0][0].title
    assert check_loss_curve([2.0, 3.0])[0] == []  # too short to judge


def test_network_too_small_to_fit():
    X, y = xor()
    diagnosis = dn.doctor(dn.mlp([2, 1, 2], activation="tanh", seed=0), X, y)
    finding = diagnosis.findings[diagnosis.codes.index("too_small")]
    assert finding.numbers["wide"] - finding.numbers["small"] >= 0.10  # training accuracy, 10 points apart
    assert "widen" in finding.fix
    assert "too_small" not in dn.doctor(dn.mlp([2, 8, 2], activation="tanh", seed=0), X, y)


def test_regression_network_too_small_to_fit():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(400, 1))
    wave = np.sin(3 * x)  # four bends: one tanh unit can follow one
    finding = dn.doctor(dn.mlp([1, 1, 1], activation="tanh", output="identity", seed=0), x, wave, probe="capacity")
    assert "too_small" in finding
    X = rng.standard_normal((300, 4))
    linear = X @ rng.standard_normal((4, 2)) + 0.1 * rng.standard_normal((300, 2))
    assert "too_small" not in dn.doctor(dn.mlp([4, 16, 2], activation="tanh", output="identity", seed=0), X, linear,
                                        probe="capacity")


def test_doctor_callback_warns_during_fit(scaled):
    X, y = scaled
    net = dn.mlp([64, 32, 10], activation="sigmoid", seed=0)
    callback = DoctorCallback(X, y)
    with pytest.warns(DoctorWarning, match="learning rate"), np.errstate(all="ignore"):
        net.fit(X, y, optimizer=dn.SGD(lr=50.0), epochs=6, seed=0, callbacks=[callback])
    assert "learning_rate_too_high" in callback.diagnosis

    calm = DoctorCallback(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DoctorWarning)
        dn.mlp([64, 32, 10], activation="sigmoid", seed=0).fit(X, y, epochs=5, seed=0, callbacks=[calm])
    assert calm.diagnosis.healthy


def test_bad_arguments_raise_dialnet_errors(scaled):
    X, y = scaled
    net = dn.mlp([64, 8, 10], seed=0)
    with pytest.raises(dn.ConfigError):
        dn.doctor("not a network", X, y)
    with pytest.raises(dn.ShapeError):
        dn.doctor(net, X[:, :10], y)
    with pytest.raises(dn.DataError):
        dn.doctor(net, X, y + 20)
    with pytest.raises(dn.InvalidValueError):
        dn.doctor(net, X, y, max_samples=0)


def test_doctor_command(tmp_path, scaled, capsys):
    X, y = scaled
    net = dn.mlp([64, 32, 10], activation="sigmoid", seed=0)
    history = net.fit(X, y, epochs=5, seed=0)
    model = tmp_path / "m.safetensors"
    net.save(model, extra_metadata={"history": history.history})
    data = tmp_path / "d.npz"
    np.savez(data, X=X * 16, y=y)  # raw pixels: the doctor must say so
    assert main(["doctor", str(model), str(data), "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "unscaled_inputs" in out and "loss over 5 epochs" in out
    assert main(["doctor", str(model), str(tmp_path / "missing.csv")]) == 2
    assert "hint:" in capsys.readouterr().err


def test_a_hostile_history_in_a_model_file_is_ignored(tmp_path, scaled):
    X, y = scaled
    model = tmp_path / "m.safetensors"
    dn.mlp([64, 8, 10], activation="sigmoid", seed=0).save(model, extra_metadata={"history": {"loss": ["a", None], "lr": 3}})
    diagnosis = dn.doctor(dn.load(model), X, y, probe=False)
    assert any("no training history" in s for s in diagnosis.skipped)
