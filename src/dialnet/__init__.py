"""dialnet: fully connected neural networks trained by backpropagation, by hand, on NumPy.

Weights and biases are the dials; gradient descent turns them; backprop
finds which way by the chain rule, layer by layer from the output back.
The package is a stack of layers that import only downward (see the
README's Architecture section); this module re-exports the public names.

The names are loaded on first use (PEP 562): ``import dialnet`` imports
nothing but this file and ``_version``, ``dialnet.mlp`` imports the model
layer and what it needs, and ``dialnet --help`` imports neither NumPy nor
the library. ``_LAZY`` says where each public name lives; the
``TYPE_CHECKING`` block imports the same names for type checkers, IDEs and
the layering test (tests/test_startup.py checks that the two agree).
"""

from __future__ import annotations

import importlib

from ._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (5 ms); type checkers read it as True
if TYPE_CHECKING:
    from . import backend, data, errors, workflow
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
    from .train import (
        LBFGS,
        SGD,
        Adam,
        AdamW,
        Callback,
        CosineLR,
        CSVLogger,
        EarlyStopping,
        ExponentialLR,
        History,
        LearningRateScheduler,
        ModelCheckpoint,
        ReduceLROnPlateau,
        RMSprop,
        StepLR,
    )
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


def _names(module, *names):
    return {name: (module, name) for name in names}


# public name -> (module, attribute in it; None: the module itself)
_LAZY = {
    "backend": ("dialnet.backend", None),
    "data": ("dialnet.data", None),
    "datasets": ("dialnet.data", None),  # the name before the redesign: dn.datasets.load("mnist-10k")
    "errors": ("dialnet.errors", None),
    "preprocessing": ("dialnet.data.preprocessing", None),
    "plots": ("dialnet.diagnose.plots", None),
    "inspect": ("dialnet.diagnose.trace", None),  # dn.inspect.trace(...), as before the move to diagnose/
    "workflow": ("dialnet.workflow", None),
    **_names("dialnet.core.gradcheck", "gradcheck"),
    **_names("dialnet.core.layers", "Dense", "Dropout", "Identity", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh"),
    **_names("dialnet.core.losses", "MSE", "BinaryCrossEntropy", "CrossEntropy"),
    **_names("dialnet.data.preprocessing", "Preprocessor"),
    **_names("dialnet.diagnose.doctor", "DoctorCallback", "doctor"),
    **_names("dialnet.diagnose.trace", "trace"),
    **_names("dialnet.errors", "ConfigError", "DataError", "DialnetError", "DivergenceError", "DivergenceWarning",
             "InvalidValueError", "ModelFileError", "ShapeError", "TrainingInterrupted"),
    **_names("dialnet.files.onnx", "export_onnx"),
    **_names("dialnet.model", "Network", "from_torch_sequential", "from_torch_state_dict", "load", "mlp"),
    **_names("dialnet.train", "SGD", "Adam", "AdamW", "Callback", "CosineLR", "EarlyStopping", "ExponentialLR",
             "History", "ReduceLROnPlateau", "RMSprop", "StepLR", "LBFGS", "CSVLogger", "LearningRateScheduler",
             "ModelCheckpoint"),
    **_names("dialnet.workflow", "Recipe", "cross_validate", "evaluate_model", "model_data", "model_inputs",
             "prepare_data", "regression_metrics", "train_model"),
}


def __getattr__(name):
    """Load a public name (or a sub-package: ``dialnet.core``, ``dialnet.sklearn``) on first access."""
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
    elif name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the sub-module exists and something it imports is missing: say so
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # the next access is a plain attribute lookup
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
