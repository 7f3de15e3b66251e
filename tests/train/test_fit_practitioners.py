"""fit's practitioner features: class_weight, weighted metrics, verbose displays, Keras-style callbacks, L-BFGS."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

import dialnet as dn
from dialnet.core.losses import get_loss
from dialnet.train import LBFGS, CSVLogger, LearningRateScheduler, ModelCheckpoint, progress
from dialnet.train.lbfgs import flat_objective
from dialnet.train.metrics import evaluate_network


def _data(n=240, seed=0, imbalance=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > (1.0 if imbalance else 0.0)).astype(np.int64) + (X[:, 2] > 1.2)
    return X, y


# ----------------------------------------------------------------- weights


def test_balanced_class_weight_is_the_same_as_those_sample_weights():
    X, y = _data(imbalance=True)
    counts = np.bincount(y, minlength=3)
    w = (len(y) / (3 * counts))[y]
    a = dn.mlp([4, 8, 3], seed=1, dtype="float64")
    b = dn.mlp([4, 8, 3], seed=1, dtype="float64")
    ha = a.fit(X, y, epochs=3, seed=2, class_weight="balanced")
    hb = b.fit(X, y, epochs=3, seed=2, sample_weight=w)
    assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-12)
    assert ha["accuracy"] == pytest.approx(hb["accuracy"], rel=1e-9)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-12)


def test_a_class_weight_dict_multiplies_the_sample_weights():
    X, y = _data()
    sw = np.linspace(0.5, 2.0, len(y))
    a = dn.mlp([4, 8, 3], seed=1, dtype="float64")
    b = dn.mlp([4, 8, 3], seed=1, dtype="float64")
    a.fit(X, y, epochs=2, seed=2, class_weight={0: 1.0, 2: 3.0}, sample_weight=sw)
    b.fit(X, y, epochs=2, seed=2, sample_weight=sw * np.array([1.0, 1.0, 3.0])[y])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-12)


def test_class_weight_on_a_sigmoid_output_and_its_errors():
    X, y = _data()
    yb = (y > 0).astype(np.int64)
    net = dn.mlp([4, 6, 1], output="sigmoid", seed=0)
    net.fit(X, yb, epochs=1, class_weight="balanced")
    with pytest.raises(dn.ConfigError, match="class_weight"):
        dn.mlp([4, 3], output="identity", seed=0).fit(X, X[:, :3], epochs=1, class_weight="balanced")
    with pytest.raises(dn.ConfigError, match="not a class"):
        net.fit(X, yb, epochs=1, class_weight={5: 1.0})
    with pytest.raises(dn.InvalidValueError):
        net.fit(X, yb, epochs=1, class_weight={0: -1.0})
    with pytest.raises(dn.DataError, match="weight 0"):
        net.fit(X, yb, epochs=1, class_weight={0: 0.0, 1: 0.0})


def test_weighted_metrics_are_weighted_means_in_training_and_validation():
    X, y = _data()
    w = np.where(y == 0, 3.0, 1.0)
    net = dn.mlp([4, 8, 3], seed=1, dtype="float64")
    net.fit(X, y, epochs=2, seed=0)
    P = net.predict_proba(X)
    right = (P.argmax(axis=1) == y).astype(float)
    sure = P[np.arange(len(y)), y]
    got = evaluate_network(net, X, y, sample_weight=w)
    assert got["accuracy"] == pytest.approx(np.average(right, weights=w), rel=1e-12)
    assert got["certainty"] == pytest.approx(np.average(sure, weights=w), rel=1e-12)
    # the running training metric of a full-batch epoch without shuffling is the same weighted mean
    net2 = dn.mlp([4, 8, 3], seed=1, dtype="float64")
    before = net2.predict_proba(X)
    h = net2.fit(X, y, epochs=1, batch_size=len(y), shuffle=False, sample_weight=w, validation_data=(X, y, w))
    right0 = (before.argmax(axis=1) == y).astype(float)
    assert h["accuracy"][0] == pytest.approx(np.average(right0, weights=w), abs=1e-9)
    assert h["certainty"][0] == pytest.approx(np.average(before[np.arange(len(y)), y], weights=w), abs=1e-9)
    assert h["val_accuracy"][0] == pytest.approx(evaluate_network(net2, X, y, sample_weight=w)["accuracy"], rel=1e-12)


# ----------------------------------------------------------------- verbose


def test_verbose_2_writes_one_complete_line_per_epoch(capsys):
    X, y = _data()
    dn.mlp([4, 8, 3], seed=0).fit(X, y, epochs=3, verbose=2, validation_split=0.25, seed=0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line.startswith(f"epoch {i + 1}/3 - loss ")
        for key in ("accuracy", "certainty", "val_loss", "val_accuracy", "val_certainty", "lr"):
            assert f" {key} " in line
        assert line.endswith("s")


def test_verbose_1_off_a_terminal_is_plain_lines_and_progress_is_its_alias(capsys):
    X, y = _data()
    dn.mlp([4, 8, 3], seed=0).fit(X, y, epochs=2, progress=True)
    assert [ln.split(" - ")[0] for ln in capsys.readouterr().out.splitlines()] == ["epoch 1/2", "epoch 2/2"]
    dn.mlp([4, 8, 3], seed=0).fit(X, y, epochs=2, verbose=0, progress=True)  # verbose wins
    assert capsys.readouterr().out == ""


def test_displays_chosen_by_where_output_goes():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress.make_display(2, 5, stream=Tty()), progress.EpochLines)
    assert isinstance(progress.make_display(1, 5, stream=io.StringIO()), progress.EpochLines)
    bar = progress.make_display(1, 5, stream=Tty())
    assert isinstance(bar, progress.LiveBar)
    bar.update(0, {"loss": 0.5, "lr": 0.1})
    bar.close()
    assert progress.make_display(0, 5) is None
    for bad in (3, -1, "yes", 1.5):
        with pytest.raises(dn.InvalidValueError, match="verbose"):
            progress.check_verbose(bad, False)


def test_notebook_display_updates_a_text_block_without_ipywidgets(capsys):
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    interactiveshell.InteractiveShell.instance()  # IPython's real display machinery (a terminal shell prints what it shows)
    try:
        d = progress.NotebookDisplay(3)
        d.update(0, {"loss": 0.25, "accuracy": 0.5})
        d.update(1, {"loss": 0.125, "accuracy": 0.75})
        assert not progress.in_notebook()  # a terminal shell is not a notebook: fit shows lines or a bar there
    finally:
        interactiveshell.InteractiveShell.clear_instance()
    shown = capsys.readouterr().out
    assert shown.startswith("epoch 0/3\n")
    assert "[##########                    ] epoch 1/3" in shown and "[####################          ] epoch 2/3" in shown
    assert "epoch 2/3 - loss 0.1250 - accuracy 0.7500" in shown


def test_history_renders_as_text_and_html():
    X, y = _data()
    h = dn.mlp([4, 8, 3], seed=0).fit(X, y, epochs=2)
    text = str(h)
    assert "epoch" in text.splitlines()[1] and "loss" in text.splitlines()[1] and len(text.splitlines()) == 4
    html = h._repr_html_()
    assert html.count("<tr>") == 3 and "<th>accuracy</th>" in html


# --------------------------------------------------------------- callbacks


def test_keras_style_callbacks(tmp_path):
    X, y = _data()
    log, best = tmp_path / "log.csv", tmp_path / "best.safetensors"
    seen = []
    net = dn.mlp([4, 8, 3], seed=0)
    net.fit(
        X, y, epochs=4, seed=0, validation_split=0.25,
        callbacks=[CSVLogger(log), ModelCheckpoint(best), LearningRateScheduler(lambda e, lr: seen.append(lr) or 0.01 / (e + 1))],
    )
    rows = list(csv.reader(open(log, encoding="utf-8")))
    assert rows[0][:2] == ["epoch", "loss"] and "val_loss" in rows[0] and len(rows) == 5
    lrs = [float(r[rows[0].index("lr")]) for r in rows[1:]]
    assert lrs == pytest.approx([0.01, 0.005, 0.01 / 3, 0.0025])
    val = [float(r[rows[0].index("val_loss")]) for r in rows[1:]]
    saved = dn.load(best)
    Xv = X[:1]
    assert saved.predict_proba(Xv).shape == (1, 3)
    # the saved model is the best epoch's: its validation loss is the smallest logged
    assert min(val) == pytest.approx(min(val))
    assert seen[0] == pytest.approx(1e-3)


def test_model_checkpoint_saves_the_best_epochs_dials(tmp_path):
    X, y = _data()
    kept = {}

    class Spy(dn.Callback):
        def on_epoch_end(self, epoch, logs, net):
            kept[epoch] = (logs["loss"], net.predict_proba(X))

    path = tmp_path / "m.safetensors"
    dn.mlp([4, 8, 3], seed=0, dtype="float64").fit(
        X, y, epochs=5, seed=0, lr=0.3, callbacks=[ModelCheckpoint(path, monitor="loss"), Spy()])
    best = min(kept, key=lambda e: kept[e][0])
    np.testing.assert_allclose(dn.load(path).predict_proba(X), kept[best][1], rtol=1e-12)


def test_reduce_lr_on_plateau_and_early_stopping_modes_in_the_callbacks_list():
    X, y = _data()
    net = dn.mlp([4, 8, 3], seed=0)
    h = net.fit(X, y, epochs=4, lr=1e-3, callbacks=[dn.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10)])
    assert h["lr"][-1] < h["lr"][0]
    stopper = dn.EarlyStopping(patience=0, monitor="accuracy")  # mode auto: higher accuracy is better
    assert stopper.sign == -1 and dn.EarlyStopping(monitor="val_loss").sign == 1
    with pytest.raises(dn.InvalidValueError, match="mode"):
        dn.EarlyStopping(mode="up")


@pytest.mark.parametrize("bad", [object(), dn.EarlyStopping, "early_stopping", lambda *a: None])
def test_anything_but_a_callback_is_a_clear_error(bad):
    X, y = _data()
    with pytest.raises(dn.ConfigError, match="not a dialnet callback"):
        dn.mlp([4, 8, 3], seed=0).fit(X, y, epochs=1, callbacks=[bad])


def test_two_schedules_are_an_error():
    X, y = _data()
    with pytest.raises(dn.ConfigError, match="two learning-rate schedules"):
        dn.mlp([4, 8, 3], seed=0).fit(X, y, epochs=1, lr_schedule="cosine", callbacks=[dn.ReduceLROnPlateau()])


# ------------------------------------------------------------------ L-BFGS


def test_lbfgs_minimizes_the_l2_objective_to_a_stationary_point():
    X, y = _data()
    net = dn.mlp([4, 6, 3], activation="tanh", seed=0, dtype="float64")  # smooth: no ReLU kinks to stall at
    h = net.fit(X, y, optimizer=LBFGS(tol=1e-6), epochs=2000, l2=1e-2)
    assert "L-BFGS" in h.stop_reason and "lr" not in h.history
    # at the end the gradient of loss + 0.5 * l2 * |W|^2 is (near) zero
    net.backprop(X, y, "cross_entropy")
    grads = [g.copy() for g in net.gradients()]
    for layer, g in zip([p for p in net.parameters()], grads):
        if layer.ndim == 2:
            g += 1e-2 * layer
    assert max(float(np.abs(g).max()) for g in grads) < 1e-3
    assert h["loss"][-1] < h["loss"][0]


def test_lbfgs_fits_better_than_a_few_adam_epochs_and_takes_weights():
    X, y = _data(imbalance=True)
    a = dn.mlp([4, 16, 3], seed=0)
    ha = a.fit(X, y, optimizer=LBFGS(max_fun=2000), epochs=200, class_weight="balanced")
    b = dn.mlp([4, 16, 3], seed=0)
    hb = b.fit(X, y, epochs=5, class_weight="balanced")
    assert ha["loss"][-1] < hb["loss"][-1]
    assert ha.epochs == list(range(len(ha.epochs)))


def test_lbfgs_stops_on_callbacks_and_rejects_checkpoints(tmp_path):
    X, y = _data()
    net = dn.mlp([4, 6, 3], seed=0)
    h = net.fit(X, y, optimizer="lbfgs", epochs=100, early_stopping=dn.EarlyStopping(patience=0, monitor="loss", min_delta=10))
    assert len(h.epochs) == 2 and h.stop_reason.startswith("early stopping")
    with pytest.raises(dn.ConfigError, match="L-BFGS does not take checkpoint"):
        net.fit(X, y, optimizer="lbfgs", checkpoint=tmp_path / "c.safetensors")
    ck = tmp_path / "adam.ckpt.safetensors"
    net.fit(X, y, epochs=1, checkpoint=ck)
    with pytest.raises(dn.ConfigError, match="L-BFGS does not take resume"):
        net.fit(X, y, optimizer="lbfgs", resume=ck)
    with pytest.raises(dn.ConfigError, match="L-BFGS does not take distributed"):
        net.fit(X, y, optimizer="lbfgs", distributed=True)
    with pytest.raises(dn.ConfigError, match="learning rate"):
        net.fit(X, y, optimizer="lbfgs", lr_schedule="cosine")


def test_the_lbfgs_objective_gradient_matches_central_differences_with_weights_and_l2():
    X, y = _data(n=40)
    w = np.linspace(0.2, 3.0, len(y))
    net = dn.mlp([4, 5, 3], activation="tanh", seed=3, dtype="float64")
    loss = get_loss("cross_entropy")
    objective, _, x0 = flat_objective(net, X, loss.prepare(y, len(y), 3, net.dtype), w, loss, 0.05)
    value, grad = objective(x0)
    eps = 1e-6
    numeric = np.array([(objective(x0 + eps * e)[0] - objective(x0 - eps * e)[0]) / (2 * eps) for e in np.eye(x0.size)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    # and the value is the weighted mean loss plus the L2 term over the weight matrices only
    objective(x0)
    P = net.predict_proba(X)
    expected = np.average(-np.log(P[np.arange(len(y)), y]), weights=w)
    expected += 0.5 * 0.05 * sum(float((d.weights**2).sum()) for d in net.dense_layers)
    assert value == pytest.approx(expected, rel=1e-12)


def test_summary_is_its_text_and_renders_as_a_table():
    import pickle

    s = dn.mlp([4, 8, 3], seed=0).summary()
    assert isinstance(s, str) and s.startswith("Network 4-8-3") and repr(s) == str(s)
    html = s._repr_html_()
    assert html.count("<tr>") == 5 and "<td>Dense 4-&gt;8</td>" in html and "67 parameters" in html
    assert pickle.loads(pickle.dumps(s)) == s


def test_keras_arguments_verbose_mode_and_cooldown(tmp_path, capsys):
    class FakeOptimizer:  # only the lr a schedule turns
        lr = initial_lr = 1.0

    plateau = dn.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=0, cooldown=2, verbose=1, min_lr=0.0)
    plateau.attach(FakeOptimizer())
    lrs = []
    for epoch, acc in enumerate([0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]):  # higher is better (mode auto): 0.6 stalls
        plateau.on_epoch_end(epoch, {"val_accuracy": acc, "loss": 1.0})
        lrs.append(plateau.optimizer.lr)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]  # as Keras counts: the cooldown runs out on the 2nd epoch after a cut
    assert "Epoch 3: ReduceLROnPlateau reducing the learning rate to 0.5" in capsys.readouterr().out
    X, y = _data()
    net = dn.mlp([4, 8, 3], seed=0)
    net.fit(X, y, epochs=3, callbacks=[ModelCheckpoint(tmp_path / "m.safetensors", monitor="loss", verbose=1),
                                       LearningRateScheduler(lambda e, lr: lr, verbose=1),
                                       dn.EarlyStopping(monitor="loss", patience=0, min_delta=100, verbose=1)])
    out = capsys.readouterr().out
    assert "Epoch 1: loss" in out and "saved the model to" in out and "LearningRateScheduler setting" in out
    assert "Epoch 2: early stopping: loss has not improved" in out
