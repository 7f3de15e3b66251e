"""Training metrics: running means from the forward passes training made, evaluation, the confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

import dialnet as dn
from dialnet.train import confusion_matrix
from dialnet.train.metrics import RunningMetrics, output_metrics


def _blobs(n=64, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] > 0).astype(int) + (classes > 2) * (X[:, 1] > 0.5)
    return X, y


class _CountForwards(dn.Callback):
    """Counts the network's forward passes during training (the loop's own ones)."""

    def on_train_begin(self, net, history):
        self.calls = 0
        real = net._forward

        def counted(X, training=False):
            self.calls += 1
            return real(X, training)

        net._forward = counted

    def on_train_end(self, net, history):
        del net._forward


def test_training_metrics_cost_no_forward_pass_of_their_own():
    X, y = _blobs(64)
    net = dn.mlp([4, 8, 3], seed=0)
    counter = _CountForwards()
    history = net.fit(X, y, epochs=3, batch_size=16, callbacks=[counter], seed=0)
    assert {"accuracy", "certainty"} <= history.history.keys()
    assert counter.calls == 3 * 4  # one per training step, none for the metrics
    counter = _CountForwards()
    net.fit(X, y, epochs=3, batch_size=16, callbacks=[counter], seed=0, validation_data=(X[:10], y[:10]))
    assert counter.calls == 3 * 4 + 3  # plus one pass over the validation rows per epoch


def test_training_metrics_are_the_running_mean_of_what_each_step_saw():
    # One batch per epoch: the step's forward pass is the network *before* that step's update.
    X, y = _blobs(40)
    net = dn.mlp([4, 8, 3], seed=1, dtype="float64")
    before = []
    for _ in range(3):
        before.append(output_metrics("classification", net.forward(X), y))
        net.fit(X, y, optimizer=dn.SGD(lr=0.5), epochs=1, batch_size=40, shuffle=False)
        after = net.history.history
        assert after["accuracy"][0] == before[-1]["accuracy"]
        assert after["certainty"][0] == pytest.approx(before[-1]["certainty"], rel=1e-9)  # counted in 2**-32 units
    # Several batches: the mean over the batches, weighted by their rows (the last batch is short).
    net = dn.mlp([4, 8, 3], seed=2, dtype="float64")
    probe = dn.mlp([4, 8, 3], seed=2, dtype="float64")
    history = net.fit(X, y, optimizer=dn.SGD(lr=0.5), epochs=1, batch_size=16, shuffle=False)
    hits = certainty = 0.0
    for start in range(0, 40, 16):
        Xb, yb = X[start : start + 16], y[start : start + 16]
        P = probe.forward(Xb)
        hits += (P.argmax(1) == yb).sum()
        certainty += P[np.arange(len(yb)), yb].sum()
        probe.fit(Xb, yb, optimizer=dn.SGD(lr=0.5), epochs=1, batch_size=16, shuffle=False)
    assert history.history["accuracy"][0] == hits / 40
    assert history.history["certainty"][0] == pytest.approx(certainty / 40, rel=1e-9)


def test_running_metrics_of_sigmoid_outputs_count_every_label():
    Y = np.array([[1, 0], [0, 1], [1, 1.0]])
    P1 = np.array([[0.9, 0.2], [0.4, 0.3]])  # row 1 right, row 2 wrong on its second label
    P2 = np.array([[0.6, 0.7]])
    expected = output_metrics("multilabel", np.vstack([P1, P2]), Y)
    assert expected == pytest.approx({"accuracy": 2 / 3, "certainty": np.mean([0.9, 0.8, 0.6, 0.3, 0.6, 0.7])})
    for capacity in (2, 3):  # a block of two rows is compared twice, one of three rows once
        metrics = RunningMetrics("multilabel", n_outputs=2, batch_size=2, dtype=np.float64)
        metrics.capacity = capacity
        metrics.follow(metrics.truth(Y))
        metrics.update(P1)
        metrics.update(P2)
        assert metrics.logs() == pytest.approx(expected, rel=1e-9)
    metrics.reset()
    assert metrics.logs() == {} and RunningMetrics("regression", 1, 4, np.float32).logs() == {}


def test_running_sums_do_not_depend_on_where_the_blocks_are_cut():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(5), size=1000).astype(np.float32)
    y = rng.integers(0, 5, 1000)
    results = []
    for capacity, cut in [(1000, 1000), (7, 1000), (64, 300)]:
        metrics = RunningMetrics("classification", 5, 1, np.float32)
        metrics.capacity = capacity
        metrics.follow(y)
        for i in range(1000):
            if i == cut:  # as a checkpoint does: take the sums, start a new counter from them
                state = metrics.state()
                metrics = RunningMetrics("classification", 5, 1, np.float32)
                metrics.capacity = capacity
                metrics.follow(y)
                metrics.load_state(state, offset=cut)
            metrics.update(P[i : i + 1])
        results.append(metrics.logs())
    assert results[0] == results[1] == results[2]
    assert results[0] == pytest.approx(output_metrics("classification", P, y), rel=1e-6)


def test_regression_has_no_accuracy_and_a_weighted_epoch_loss():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    w = rng.uniform(0.5, 2.0, 30)
    net = dn.mlp([3, 4, 1], output="identity", seed=0, dtype="float64")
    before = net.evaluate(X, y, loss="mse", sample_weight=w)["loss"]
    history = net.fit(X, y, loss="mse", epochs=2, batch_size=30, shuffle=False, sample_weight=w)
    assert set(history.history) == {"loss", "lr"}
    assert history.history["loss"][0] == pytest.approx(before, rel=1e-12)  # the one batch's weighted mean


def test_confusion_matrix_counts_pairs_and_checks_its_input():
    C = confusion_matrix([0, 1, 2, 2, 1], [0, 2, 2, 1, 1])
    assert C.tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert confusion_matrix([0, 1], [1, 1], n_classes=4).shape == (4, 4)
    assert confusion_matrix([], []).shape == (1, 1)
    with pytest.raises(dn.ShapeError, match="differ in length"):
        confusion_matrix([0, 1], [0])
    with pytest.raises(dn.DataError, match=">= 0"):
        confusion_matrix([0, -1], [0, 0])
    with pytest.raises(dn.DataError, match="n_classes"):
        confusion_matrix([0, 3], [0, 0], n_classes=3)
