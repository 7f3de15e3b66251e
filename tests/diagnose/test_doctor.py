"""The training doctor: each pathology built on purpose must be named; a healthy run gets a clean bill."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dialnet as dn
from dialnet.cli import main
from dialnet.diagnose.doctor import Baseline, DoctorCallback, DoctorWarning, baseline_losses, check_loss_curve


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


# ------------------------------------------------------- the learning-rate rule
#
# A run whose divergence does not depend on rounding: a linear network (one Dense layer, identity
# output) fitted by squared error to exactly linear targets, on rows that come in blocks of 8 whose
# 4 columns are orthogonal with zero mean (each block's X_b.T @ X_b = 8 I). On every block the loss
# is |w - w*|^2 + (b - b*)^2 and its curvature (Hessian) is exactly 2 I, so plain SGD over the blocks
# in order (batch_size=8, shuffle=False) multiplies the error by (1 - 2 lr) at every step: stable
# below lr = 1 = 2 / lambda_max; at lr = 10 each step multiplies the loss by 19^2 = 361, so a float32
# run overflows within its first epoch (128 steps) on every machine, whatever the BLAS.


def orthogonal_blocks(n_blocks=128, seed=0):
    """Rows in blocks of 8 with orthogonal zero-mean columns, and exactly linear targets."""
    rng = np.random.default_rng(seed)
    hadamard = np.array([[1.0]])
    for _ in range(3):  # Sylvester's construction: 8 x 8, orthogonal +-1 columns
        hadamard = np.block([[hadamard, hadamard], [hadamard, -hadamard]])
    columns = hadamard[:, 1:5]  # orthogonal to the all-ones column: zero mean
    blocks = []
    for _ in range(n_blocks):
        rotation, _ = np.linalg.qr(rng.standard_normal((4, 4)))  # keeps X_b.T @ X_b = 8 I
        blocks.append(columns[rng.permutation(8)] @ rotation)
    X = np.concatenate(blocks)
    return X, X @ rng.standard_normal(4) + 0.5


def linear_fit(lr, dtype="float32", n_blocks=128, epochs=3, **options):
    X, y = orthogonal_blocks(n_blocks)
    net = dn.mlp([4, 1], output="identity", dtype=dtype, seed=0)
    history = net.fit(X, y, loss="mse", optimizer=dn.SGD(lr=lr), epochs=epochs, batch_size=8, shuffle=False, **options)
    return net, X, y, history


def lr_finding(diagnosis):
    assert "learning_rate_too_high" in diagnosis, diagnosis.report()
    return diagnosis.findings[diagnosis.codes.index("learning_rate_too_high")]


def test_the_linear_problem_is_what_the_tests_assume():
    X, _y = orthogonal_blocks(4)
    for block in np.split(X, 4):
        np.testing.assert_allclose(block.T @ block, 8 * np.eye(4), atol=1e-12)
        np.testing.assert_allclose(block.sum(axis=0), 0, atol=1e-12)
    # float64, lr 1.5: 8 steps per epoch, each multiplying the loss by (1 - 3)^2 = 4: 4^8 per epoch, exactly
    _net, _X, _y, history = linear_fit(1.5, dtype="float64", n_blocks=8, epochs=4)
    losses = np.array(history.history["loss"])
    np.testing.assert_allclose(losses[1:] / losses[:-1], 4.0**8, rtol=1e-6)


def test_learning_rate_too_high_from_an_exploding_history():
    net, X, y, history = linear_fit(1.5, dtype="float64", n_blocks=8, epochs=4)  # finite, x65536 per epoch
    finding = lr_finding(dn.doctor(net, X, y, probe=False))  # reads net.history
    assert "exploded" in finding.title
    assert "try 0.15" in finding.fix
    assert "learning_rate_too_high" in dn.doctor(net, X, y, history=history.history, probe=False)  # the dict works too


def test_learning_rate_too_high_when_fit_raises_on_divergence():
    with pytest.raises(dn.DivergenceError) as caught:
        linear_fit(10.0)
    error = caught.value
    assert error.details["epoch"] == 1  # x361 per step: the float32 loss overflows long before step 128
    X, y = orthogonal_blocks()
    net = dn.mlp([4, 1], output="identity", seed=0)
    finding = lr_finding(dn.doctor(net, X, y, history=error, probe=False))
    assert finding.title.startswith("training diverged at epoch 1") and "learning rate 10" in finding.title
    assert "try 1" in finding.fix


def test_learning_rate_too_high_when_fit_stops_on_divergence(tmp_path):
    with pytest.warns(dn.DivergenceWarning):
        net, X, y, history = linear_fit(10.0, on_divergence="stop")
    assert history.history.get("loss", []) == [] and len(history.divergences) == 1  # not one epoch finished
    assert "learning_rate_too_high" in dn.doctor(net, X, y, probe=False)  # from net.history
    # a model file keeps the stop reason (as `dialnet train` writes it): the doctor reads it back
    path = tmp_path / "m.safetensors"
    net.save(path, extra_metadata={"history": history.history, "stop_reason": history.stop_reason})
    assert "learning_rate_too_high" in dn.doctor(dn.load(path), X, y, probe=False)


def test_learning_rate_too_high_when_fit_halved_it_and_went_on():
    # lr 1.9: x2.8 error per step, the float32 run overflows in epoch 1; halved to 0.95 it contracts by 0.9 per step
    net, X, y, history = linear_fit(1.9, on_divergence="halve")
    assert len(history.divergences) == 1 and history.history["lr"][-1] == pytest.approx(0.95)
    assert check_loss_curve(history.history["loss"])[0] == []  # the curve after the halving is healthy ...
    finding = lr_finding(dn.doctor(net, X, y, probe=False))  # ... the divergence record is what counts
    assert "0.95" in finding.fix


def test_learning_rate_too_high_from_a_probe_run():
    X, y = orthogonal_blocks()
    net = dn.mlp([4, 1], output="identity", seed=0)
    before = [p.copy() for p in net.parameters()]
    optimizer = dn.SGD(lr=10.0)
    finding = lr_finding(dn.doctor(net, X, y, optimizer=optimizer, probe="learning_rate", seed=0))
    assert "probe run" in finding.title and "diverged" in finding.title
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))  # the probes train copies
    assert optimizer.t == 0  # and never step the caller's optimizer
    # shuffled batches of 32: |x|^2 = 4 bounds each batch's curvature by 8, so lr 0.1 contracts at every step
    assert "learning_rate_too_high" not in dn.doctor(net, X, y, optimizer=dn.SGD(lr=0.1), probe="learning_rate")
    with pytest.raises(dn.ConfigError):
        dn.doctor(net, X, y, probe="everything")


def test_a_healthy_probe_run_on_digits_is_not_blamed(scaled):
    X, y = scaled
    net = dn.mlp([64, 32, 10], activation="sigmoid", seed=0)
    assert "learning_rate_too_high" not in dn.doctor(net, X, y, optimizer=dn.SGD(lr=0.1), probe="learning_rate")


TEN_CLASSES = Baseline(constant=np.log(10), uninformed=np.log(10))  # balanced digits: both are ln 10 = 2.30
NAN, INF = float("nan"), float("inf")

TOO_HIGH = {
    "rises": ([1.0, 1.2, 1.5], "rose"),
    "oscillates": ([2.0, 1.0, 1.9, 0.9, 1.7], "oscillates"),
    "explodes in 2 epochs": ([1.0, 30.0], "exploded"),
    "explodes": ([0.5, 40.0, 3e3, 2e5], "exploded"),
    "ends in NaN": ([2.0, NAN], "diverged"),
    "ends in inf": ([2.0, 5.0, INF], "diverged"),
    "gives back its progress": ([2.0, 0.5, 0.4, 0.7, 0.72], "gave back"),
    # SGD lr=50 on digits, as three machines ran it: each path differs, the verdict must not
    "lr 50, path a": ([63.737, 56.519, 65.78, 68.498, 65.611, 65.555, 66.459, 62.608], ""),
    "lr 50, path b": ([23.257, 22.894, 53.883, 67.334, 61.599, 68.587, 66.218, 65.985], ""),
    "lr 50, path c": ([21.651, 38.137, 42.784, 18.486, 19.974, 18.544, 18.266, 17.648], ""),
    "lr 50, falling but far above chance": ([60.0, 50.0, 42.0, 36.0, 31.0, 28.0, 26.0, 25.0], "far above"),
}


@pytest.mark.parametrize("case", TOO_HIGH)
def test_loss_curves_of_a_learning_rate_too_high(case):
    losses, words = TOO_HIGH[case]
    found, check = check_loss_curve(losses, [50.0] * len(losses), baseline=TEN_CLASSES)
    assert [f.code for f in found] == ["learning_rate_too_high"], check
    assert words in found[0].title
    assert "try 5" in found[0].fix


def noisy_decay(seed, epochs=30, noise=0.03, floor=0.1):
    rng = np.random.default_rng(seed)
    t = np.arange(epochs)
    return list((2.2 * np.exp(-t / 6) + floor) * (1 + noise * rng.standard_normal(epochs)))


def long_noisy_plateau(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(200)
    return list(2.0 * np.exp(-t / 10) + 0.3 + 0.01 * rng.standard_normal(200))


HEALTHY = {
    "smooth": [2.0, 1.0, 0.6, 0.45, 0.4],
    "slow start": [2.303, 2.301, 2.302, 2.29, 2.1, 1.5],
    "first epoch below the second": [2.30, 2.31, 2.0, 1.5, 1.2],
    "flat (too small a learning rate)": [2.3026] * 5,
    "too short to judge": [2.0, 3.0],
    **{f"noisy but decreasing, seed {s}": noisy_decay(s) for s in range(5)},
    **{f"200 epochs, noisy plateau, seed {s}": long_noisy_plateau(s) for s in range(3)},
}


@pytest.mark.parametrize("case", HEALTHY)
@pytest.mark.parametrize("baseline", [TEN_CLASSES, None], ids=["with the data", "curve alone"])
def test_healthy_loss_curves_are_not_blamed(case, baseline):
    found, check = check_loss_curve(HEALTHY[case], baseline=baseline)
    assert found == [], check


def test_noise_on_a_converged_run_is_judged_on_the_data_s_scale():
    # a run continued from a trained network: wiggles of 0.0002 are noise next to the 2.3 of a constant guess;
    # the curve alone has no scale but its own first epoch, and so cannot tell them from a setback
    converged = [0.0102, 0.0100, 0.0101, 0.0099, 0.01005]
    assert check_loss_curve(converged, baseline=TEN_CLASSES)[0] == []


def test_divergence_records_and_stop_reasons():
    record = {"epoch": 1, "step": 3, "what": "the loss became inf", "lr": 50.0, "action": "stopped"}
    found, _ = check_loss_curve([], divergences=[record])
    assert "diverged at epoch 1, step 3 with learning rate 50" in found[0].title and "try 5" in found[0].fix
    found, _ = check_loss_curve([2.0, 1.5], stop_reason="diverged at epoch 3, step 2: the loss became nan")
    assert found[0].code == "learning_rate_too_high"
    halved = dict(record, lr=1.0, action="halved the learning rate to 0.5 and restarted epoch 1 (retry 1 of 8)")
    found, _ = check_loss_curve([2.0, 1.0, 0.5, 0.3], [0.5] * 4, divergences=[halved])
    assert "0.5" in found[0].fix
    assert check_loss_curve([2.0, 1.0, 0.5, 0.3], [0.5] * 4, stop_reason="finished 4 epochs")[0] == []
    assert check_loss_curve([]) == ([], None)


def test_falling_far_above_chance_needs_the_data():
    falling = TOO_HIGH["lr 50, falling but far above chance"][0]
    assert check_loss_curve(falling)[0] == []  # the curve alone looks like slow progress
    labels = np.arange(200) % 10
    X = np.eye(10)[labels]
    loss = dn.CrossEntropy()
    baseline = baseline_losses(loss, loss.prepare(labels, 200, 10, np.float64), 10)
    assert baseline.uninformed == pytest.approx(np.log(10)) and baseline.constant == pytest.approx(np.log(10))
    net = dn.mlp([10, 10], seed=0)
    assert "learning_rate_too_high" in dn.doctor(net, X, labels, history={"loss": falling}, probe=False)
    regression = baseline_losses(dn.MSE(), dn.MSE().prepare(np.array([0.0, 2.0]), 2, 1, np.float64), 1)
    assert regression.constant == pytest.approx(1.0) and regression.uninformed is None


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


class WarningsSeen(dn.Callback):
    """Records, after each epoch, how many DoctorWarnings had been raised so far."""

    def __init__(self, caught):
        self.caught = caught
        self.per_epoch = []

    def on_epoch_end(self, epoch, logs, net):
        self.per_epoch.append(sum(issubclass(w.category, DoctorWarning) for w in self.caught))
        return False


def test_doctor_callback_warns_during_fit():
    X, y = orthogonal_blocks(8)
    callback = DoctorCallback(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = WarningsSeen(caught)
        linear_fit(1.5, dtype="float64", n_blocks=8, epochs=4, callbacks=[callback, seen])
    assert seen.per_epoch[:2] == [0, 1]  # at the end of epoch 2, as soon as the loss has exploded
    doctor_warnings = [str(w.message) for w in caught if issubclass(w.category, DoctorWarning)]
    assert len(doctor_warnings) == 1 and "learning rate" in doctor_warnings[0]  # once, not again at the end
    assert "learning_rate_too_high" in callback.diagnosis


def test_doctor_callback_warns_when_fit_stops_or_halves_on_divergence():
    X, y = orthogonal_blocks()
    for mode, lr in (("stop", 10.0), ("halve", 1.9)):
        callback = DoctorCallback(X, y)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen = WarningsSeen(caught)
            linear_fit(lr, on_divergence=mode, callbacks=[callback, seen])
        messages = [str(w.message) for w in caught if issubclass(w.category, DoctorWarning)]
        assert any("diverged" in m for m in messages), (mode, messages)
        assert "learning_rate_too_high" in callback.diagnosis
        if mode == "halve":
            assert seen.per_epoch[0] == 1  # warned at the end of the epoch that diverged


def test_doctor_callback_is_quiet_on_a_healthy_run(scaled):
    X, y = scaled
    calm = DoctorCallback(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DoctorWarning)
        dn.mlp([64, 32, 10], activation="sigmoid", seed=0).fit(X, y, epochs=5, seed=0, callbacks=[calm])
    assert calm.diagnosis.healthy


def test_the_doctor_documents_every_rule_and_the_callback_its_use():
    for code in ("unscaled_inputs", "class_imbalance", "saturated_units", "dead_relu", "vanishing_gradients",
                 "exploding_gradients", "learning_rate_too_high", "too_small"):
        assert code in dn.doctor.__doc__
    assert "callbacks=[dn.DoctorCallback(X, y)]" in dn.DoctorCallback.__doc__


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
