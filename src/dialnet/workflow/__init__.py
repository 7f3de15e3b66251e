"""The pipeline the command line runs, as functions: load, split, preprocess, build, train, evaluate, cross-validate.

The top layer of the library (it may use data, files, train, diagnose and
the model). ``dialnet train`` is :func:`train_model`, ``dialnet train --cv K`` is
:func:`cross_validate`; ``evaluate``, ``predict``, ``inspect``, ``doctor``
and ``plot`` prepare a saved model's inputs with :mod:`.inputs`.

- :mod:`.recipe`: :class:`Recipe` (network + training settings) and the presets DATA_DEFAULTS, DEMO, CLASSIC.
- :mod:`.training`: :func:`prepare_data`, :func:`train_model`, :func:`cross_validate`.
- :mod:`.metrics`: :func:`evaluate_model`, :func:`regression_metrics`, :func:`classification_metrics`.
- :mod:`.inputs`: :func:`model_data`, :func:`model_inputs`, :func:`model_rows` for saved models.
"""

from .inputs import (
    ModelData,
    ModelInputs,
    class_index,
    csv_rows,
    first_mistake,
    image_rows,
    inline_row,
    model_data,
    model_inputs,
    model_rows,
    pick_row,
    prepare_rows,
)
from ..data.preprocessing import preprocessor_of
from .metrics import classification_metrics, evaluate_model, format_regression, predict_targets, regression_metrics
from .recipe import CLASSIC, DATA_DEFAULTS, DEFAULT_LR, DEMO, Recipe
from .training import (
    CrossValidation,
    FoldResult,
    PreparedData,
    TrainResult,
    cross_validate,
    fit_preprocessor,
    load_dataset,
    prepare_data,
    record_gradient_norms,
    train_model,
)

__all__ = [
    "CLASSIC", "CrossValidation", "DATA_DEFAULTS", "DEFAULT_LR", "DEMO", "FoldResult", "ModelData", "ModelInputs",
    "PreparedData", "Recipe", "TrainResult", "class_index", "classification_metrics", "cross_validate", "csv_rows",
    "evaluate_model", "first_mistake", "fit_preprocessor", "format_regression", "image_rows", "inline_row",
    "load_dataset", "model_data", "model_inputs", "model_rows", "pick_row", "predict_targets", "prepare_data",
    "prepare_rows", "preprocessor_of", "record_gradient_norms", "regression_metrics", "train_model",
]
