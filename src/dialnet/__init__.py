"""dialnet: fully connected neural networks trained by backpropagation, by hand, on NumPy.

Weights and biases are the dials; gradient descent turns them; backprop
finds which way by the chain rule, layer by layer from the output back.
Only NumPy is imported here, so ``import dialnet`` is fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import backend, inspect, plots  # inspect: dn.inspect.trace(...); plots imports matplotlib only when drawing
from . import datasets, preprocessing  # dn.datasets.load("mnist-10k"); scaling stored with the model
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
from .doctor import DoctorCallback, doctor
from .gradcheck import gradcheck
from .io import load
from .layers import Dense, Dropout, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .losses import MSE, BinaryCrossEntropy, CrossEntropy
from .network import Network, mlp
from .onnx import export_onnx
from .optimizers import SGD, Adam, AdamW, CosineLR, ExponentialLR, ReduceLROnPlateau, RMSprop, StepLR
from .training import Callback, EarlyStopping, History
from .torch_interop import from_torch_state_dict

__all__ = [
    "__version__",
    "backend",
    "datasets",
    "preprocessing",
    "BinaryCrossEntropy",
    "Callback",
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
    "doctor",
    "gradcheck",
    "load",
    "mlp",
]
