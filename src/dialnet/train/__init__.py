"""Training: optimizers and schedules, callbacks, metrics, the fit loop and its divergence guard.

Imports core, data and files (checkpoints are written from the loop).
"""

from .loop import Callback, EarlyStopping, History, evaluate_network, fit
from .optimizers import SGD, Adam, AdamW, CosineLR, ExponentialLR, ReduceLROnPlateau, RMSprop, StepLR, get_optimizer, get_schedule

__all__ = [
    "Adam", "AdamW", "Callback", "CosineLR", "EarlyStopping", "ExponentialLR", "History", "RMSprop",
    "ReduceLROnPlateau", "SGD", "StepLR", "evaluate_network", "fit", "get_optimizer", "get_schedule",
]
