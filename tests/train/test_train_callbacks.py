"""EarlyStopping's rule, its two small hooks, and the shared checks of counts and settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dialnet as dn
from dialnet.errors import check_number, check_positive_int
from dialnet.train import History


class _Dials:
    """Stands in for a network: one number as its weights, set to the epoch it was trained to."""

    def __init__(self):
        self.weights = None

    def copy_weights(self):
        return [self.weights]

    def set_weights(self, arrays):
        self.weights = arrays[0]


def _run(stopper, values, key="val_loss"):
    """Feed one monitored value per epoch; return the epoch it stopped at (or None) and the dials kept."""
    net, history = _Dials(), History()
    stopper.on_train_begin(net, history)
    stopped = None
    for epoch, value in enumerate(values):
        net.weights = epoch
        if stopper.on_epoch_end(epoch, {"loss": 99.0, key: value}, net):
            stopped = epoch
            break
    stopper.on_train_end(net, history)
    return stopped, net.weights, history


def test_stops_after_more_than_patience_epochs_without_improvement_and_restores_the_best():
    stopped, kept, history = _run(dn.EarlyStopping(patience=2), [5, 4, 4.5, 4.2, 4.1, 3])
    assert stopped == 4 and kept == 1 and history.best_epoch == 1
    assert _run(dn.EarlyStopping(patience=2, restore_best_weights=False), [5, 4, 4.5, 4.2, 4.1])[1] == 4


def test_min_delta_decides_what_counts_as_better():
    # 3.95 is lower, but not by 0.1: it neither resets the wait nor becomes the best
    stopped, kept, _ = _run(dn.EarlyStopping(patience=1, min_delta=0.1), [4, 3.95, 3.92])
    assert stopped == 2 and kept == 0


def test_infinite_patience_never_stops_but_keeps_the_best():
    stopped, kept, _ = _run(dn.EarlyStopping(patience=math.inf), [3, 1, 2, 5, 4, 6, 7, 8])
    assert stopped is None and kept == 1


def test_a_subclass_can_change_the_rule():
    class FollowEveryDrop(dn.EarlyStopping):  # scikit-learn's: the best follows every drop, the wait does not
        def is_new_best(self, value):
            return value < self.best

    stopped, kept, _ = _run(FollowEveryDrop(patience=1, min_delta=0.1), [4, 3.95, 3.92])
    assert stopped == 2 and kept == 2


def test_missing_monitor_falls_back_to_the_training_loss():
    stopper = dn.EarlyStopping(patience=0, monitor="val_loss")
    net, history = _Dials(), History()
    stopper.on_train_begin(net, history)
    assert not stopper.on_epoch_end(0, {"loss": 1.0}, net)
    assert stopper.on_epoch_end(1, {"loss": 1.5}, net)
    assert "loss has not improved for 0 epochs" in stopper.reason


@pytest.mark.parametrize("patience", [-1, 2.5, "3", True, math.nan])
def test_bad_patience_is_refused(patience):
    with pytest.raises(dn.InvalidValueError, match="patience"):
        dn.EarlyStopping(patience=patience)


def test_early_stopping_inside_fit_ends_with_the_best_validation_dials():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    y = (X[:, 0] + 0.8 * rng.standard_normal(200) > 0).astype(int)  # noisy: validation loss turns up
    net = dn.mlp([6, 64, 2], seed=0)
    stopper = dn.EarlyStopping(patience=3)
    history = net.fit(X[:60], y[:60], epochs=200, lr=0.05, validation_data=(X[60:], y[60:]), early_stopping=stopper, seed=0)
    assert "early stopping" in history.stop_reason and len(history.epochs) < 200
    assert history.best_epoch == int(np.argmin(history.history["val_loss"]))
    assert net.evaluate(X[60:], y[60:])["loss"] == pytest.approx(min(history.history["val_loss"]), rel=1e-5)


def test_shared_checks_of_counts_and_settings():
    assert check_positive_int(np.int64(3), "epochs") == 3
    for bad in (0, -2, 1.0, True, "4", None):
        with pytest.raises(dn.InvalidValueError, match="epochs must be a positive integer") as info:
            check_positive_int(bad, "epochs")
        assert info.value.fix
    assert check_number("lr", 0.1, low_open=True) == 0.1
    for bad, kwargs in [(0.0, dict(low_open=True)), (-1, {}), (1.0, dict(high=1.0)), (math.inf, {}), ("x", {})]:
        with pytest.raises(dn.InvalidValueError, match="lr is out of range"):
            check_number("lr", bad, **kwargs)
