"""dialnet: fully connected neural networks trained by backpropagation, by hand, on NumPy.

Weights and biases are the dials; gradient descent turns them; backprop
finds which way by the chain rule, layer by layer from the output back.
The package is a stack of layers that import only downward (see the
README's Architecture section); this module re-exports the public names.
Only NumPy is imported eagerly, so ``import dialnet`` is fast.
"""

from __future__ import annotations

from . import backend
from . import data
from ._version import __version__
from .core.gradcheck import gradcheck
from .core.layers import Dense, Dropout, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .core.losses import MSE, BinaryCrossEntropy, CrossEntropy
from .data import preprocessing
from .data.preprocessing import Preprocessor
from .diagnose import plots
from .diagnose import trace as inspect  # dn.inspect.trace(...), as before the move to diagnose/
from .diagnose.doctor import DoctorCallback, doctor
from .diagnose.trace import trace
from .errors import (
    ConfigError,
    DataError,
    DialnetError,
    DivergenceError,
    DivergenceWarning,
    InvalidValueError,
    ModelFileError,
    ShapeError,
    TrainingInterrupted,
)
from .files.onnx import export_onnx
from .model import Network, from_torch_sequential, from_torch_state_dict, load, mlp
from .train import SGD, Adam, AdamW, Callback, CosineLR, EarlyStopping, ExponentialLR, History, ReduceLROnPlateau, RMSprop, StepLR
from .train import LBFGS, CSVLogger, LearningRateScheduler, ModelCheckpoint
from . import workflow
from .workflow import (
    Recipe,
    cross_validate,
    evaluate_model,
    model_data,
    model_inputs,
    prepare_data,
    regression_metrics,
    train_model,
)

datasets = data  # the name before the redesign: dn.datasets.load("mnist-10k")

__all__ = [
    "__version__",
    "backend",
    "data",
    "datasets",
    "preprocessing",
    "plots",
    "workflow",
    "Preprocessor",
    "Recipe",
    "cross_validate",
    "evaluate_model",
    "model_data",
    "model_inputs",
    "prepare_data",
    "regression_metrics",
    "train_model",
    "inspect",
    "trace",
    "BinaryCrossEntropy",
    "Callback",
    "CSVLogger",
    "LBFGS",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ConfigError",
    "CosineLR",
    "CrossEntropy",
    "DataError",
    "Dense",
    "DialnetError",
    "DivergenceError",
    "DivergenceWarning",
    "TrainingInterrupted",
    "DoctorCallback",
    "Dropout",
    "EarlyStopping",
    "ExponentialLR",
    "History",
    "Identity",
    "InvalidValueError",
    "LeakyReLU",
    "MSE",
    "ModelFileError",
    "Network",
    "ReLU",
    "RMSprop",
    "ReduceLROnPlateau",
    "SGD",
    "Adam",
    "AdamW",
    "ShapeError",
    "Sigmoid",
    "Softmax",
    "StepLR",
    "Tanh",
    "export_onnx",
    "from_torch_state_dict",
    "from_torch_sequential",
    "doctor",
    "gradcheck",
    "load",
    "mlp",
]
