"""Training: optimizers, schedules, callbacks, metrics, the fit loop, its divergence guard and checkpoints.

Imports core and files (checkpoints are written from the loop). The modules,
from the bottom: ``optimizers`` and ``schedules`` (how the dials are turned),
``callbacks`` (History, Callback, EarlyStopping, ModelCheckpoint, CSVLogger, LearningRateScheduler),
``progress`` (what ``verbose`` shows), ``lbfgs`` (full-batch L-BFGS-B), ``metrics`` (accuracy,
certainty, evaluation, confusion matrix), ``divergence`` and ``resume``
(the loop's guard and checkpoints), ``loop`` (:func:`fit`).
"""

from .callbacks import Callback, CSVLogger, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint
from .lbfgs import LBFGS
from .loop import fit
from .metrics import confusion_matrix, evaluate_network
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop, get_optimizer
from .schedules import CosineLR, ExponentialLR, ReduceLROnPlateau, Schedule, StepLR, get_schedule

__all__ = [
    "Adam", "AdamW", "CSVLogger", "Callback", "CosineLR", "EarlyStopping", "LBFGS", "LearningRateScheduler",
    "ModelCheckpoint", "ExponentialLR", "History", "Optimizer", "RMSprop",
    "ReduceLROnPlateau", "SGD", "Schedule", "StepLR", "confusion_matrix", "evaluate_network", "fit", "get_optimizer",
    "get_schedule",
]
