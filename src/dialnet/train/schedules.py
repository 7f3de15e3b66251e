"""Learning-rate schedules: how ``optimizer.lr`` changes from one epoch to the next.

A schedule is attached to an optimizer (``attach``) and sets its ``lr`` at the
end of every epoch (``on_epoch_end(epoch, logs)``); ``state``/``load_state``
carry what a checkpoint must keep. It knows nothing of layers or gradients.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, check_number, lookup


class Schedule:
    """Sets ``optimizer.lr`` at the end of each epoch: ``on_epoch_end(epoch, logs)``."""

    def __init__(self):
        self.optimizer = None

    def attach(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.initial_lr

    def on_epoch_end(self, epoch, logs):
        raise NotImplementedError

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict):
        pass


class StepLR(Schedule):
    """``lr = base * gamma ** (epochs_done // step_size)``."""

    def __init__(self, step_size=10, gamma=0.1):
        super().__init__()
        self.step_size = int(check_number("step_size", step_size, low=1))
        self.gamma = check_number("gamma", gamma, low_open=True)

    def on_epoch_end(self, epoch, logs):
        self.optimizer.lr = self.base_lr * self.gamma ** ((epoch + 1) // self.step_size)


class ExponentialLR(Schedule):
    """``lr = base * gamma ** epochs_done``."""

    def __init__(self, gamma=0.95):
        super().__init__()
        self.gamma = check_number("gamma", gamma, low_open=True)

    def on_epoch_end(self, epoch, logs):
        self.optimizer.lr = self.base_lr * self.gamma ** (epoch + 1)


class CosineLR(Schedule):
    """Cosine annealing from ``base`` to ``min_lr`` over ``t_max`` epochs."""

    def __init__(self, t_max=50, min_lr=0.0):
        super().__init__()
        self.t_max = int(check_number("t_max", t_max, low=1))
        self.min_lr = check_number("min_lr", min_lr)

    def on_epoch_end(self, epoch, logs):
        t = min(epoch + 1, self.t_max)
        self.optimizer.lr = self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t / self.t_max))


class ReduceLROnPlateau(Schedule):
    """Multiply lr by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    Keras' arguments too: ``mode`` ("auto": higher is better for accuracy,
    certainty and score, lower otherwise; "min"; "max"), ``cooldown``
    (epochs to wait after a reduction before counting again) and
    ``verbose`` (1 prints each reduction). It may be given as ``lr_schedule``
    or in fit's ``callbacks`` list.
    """

    def __init__(self, monitor="val_loss", factor=0.5, patience=5, min_lr=1e-6, min_delta=1e-4, mode="auto", cooldown=0,
                 verbose=0):
        super().__init__()
        self.monitor = monitor
        self.factor = check_number("factor", factor, low_open=True, high=1.0)
        self.patience = int(check_number("patience", patience))
        self.min_lr = check_number("min_lr", min_lr)
        self.min_delta = check_number("min_delta", min_delta)
        if mode not in ("auto", "min", "max"):
            raise ConfigError(f"unknown mode {mode!r}", expected="'auto', 'min' or 'max'", got=repr(mode),
                              fix="use mode='max' for a metric where higher is better, or leave mode out")
        higher = mode == "max" or (mode == "auto" and any(w in str(monitor) for w in ("acc", "certainty", "score", "auc", "r2")))
        self.sign = -1.0 if higher else 1.0
        self.mode = mode
        self.cooldown = int(check_number("cooldown", cooldown))
        self.verbose = verbose
        self.best = np.inf
        self.wait = 0
        self.cooling = 0

    def on_epoch_end(self, epoch, logs):
        value = logs.get(self.monitor)
        sign = self.sign
        if value is None:
            value, sign = logs.get("loss"), 1.0
        if value is None:
            return
        value = sign * value
        if self.cooling:
            self.cooling -= 1
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return
        if self.cooling:
            return
        self.wait += 1
        if self.wait > self.patience:
            old = self.optimizer.lr
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.wait, self.cooling = 0, self.cooldown
            if self.verbose and self.optimizer.lr < old:
                print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing the learning rate to {self.optimizer.lr:g}")

    def state(self):
        return {"best": float(self.best), "wait": self.wait, "cooling": self.cooling}

    def load_state(self, state):
        self.best, self.wait = float(state["best"]), int(state["wait"])
        self.cooling = int(state.get("cooling", 0))


SCHEDULES = {"step": StepLR, "exponential": ExponentialLR, "cosine": CosineLR, "plateau": ReduceLROnPlateau}


def get_schedule(schedule):
    """Build a schedule from its name ('step', 'exponential', 'cosine', 'plateau'), or pass one through (None: none)."""
    if schedule is None or isinstance(schedule, Schedule):
        return schedule
    return lookup(SCHEDULES, schedule, "learning-rate schedule", fix="use lr_schedule='cosine' or leave it out")()
