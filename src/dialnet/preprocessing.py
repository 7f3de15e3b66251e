"""Input scaling that travels with the model.

The constants are learned on the training rows only and stored in
``net.preprocessing`` (a JSON-able dict saved in the model file), so
``evaluate``, ``predict`` and any other caller scale new inputs exactly
as training did:

- ``minmax``: ``x' = (x - min) / (max - min)``, each feature into [0, 1]
  on the training data (a constant feature maps to 0).
- ``standard``: ``x' = (x - mean) / std`` (a constant feature maps to 0).
- ``none``: inputs are used as they are.

For images the statistics are one number over all pixels, not one per
pixel: a border pixel that is nearly always black must not be blown up.

The dict::

    {"version": 1, "input": "table" | "image", "scaling": "minmax",
     "min": [...], "max": [...]            # or "mean"/"std"; scalars for images
     "feature_names": [...], "target": "class",        # tables
     "image_size": 25, "pixel_max": 255, "background": 0.02}  # images
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError, ModelFileError, ShapeError

SCALINGS = ("minmax", "standard", "none")
VERSION = 1
_PARAMS = {"minmax": ("min", "max"), "standard": ("mean", "std"), "none": ()}


def check_scaling(scaling) -> str:
    name = str(scaling).lower().replace("-", "")
    if name in SCALINGS:
        return name
    raise ConfigError(f"unknown scaling {scaling!r}", expected="one of " + ", ".join(SCALINGS), got=repr(scaling),
                      fix="use --scale minmax (features into [0, 1]), standard (mean 0, std 1) or none")


def fit_preprocessing(X, scaling="minmax", *, kind="table", image_size=None, feature_names=None, target=None,
                      background=None) -> dict:
    """Learn the scaling constants from training rows ``X``; return the preprocessing dict.

    Parameters
    ----------
    X : array of shape (n, features)
        Training inputs only (never the test rows).
    scaling : {"minmax", "standard", "none"}
    kind : {"table", "image"}
        Images get one constant over all pixels; tables one per feature.
    """
    scaling = check_scaling(scaling)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ShapeError("preprocessing is fitted on a table of samples", expected="shape (n >= 1, features)",
                         got=f"shape {X.shape}", fix="pass the training inputs as a 2-D array")
    pre = {"version": VERSION, "input": kind, "scaling": scaling}
    axis = None if kind == "image" else 0
    if scaling == "minmax":
        lo, hi = X.min(axis=axis), X.max(axis=axis)
        pre["min"], pre["max"] = _plain(lo), _plain(hi)
    elif scaling == "standard":
        mean, std = X.mean(axis=axis), X.std(axis=axis)
        pre["mean"], pre["std"] = _plain(mean), _plain(std)
    if feature_names is not None:
        pre["feature_names"] = [str(f) for f in feature_names]
    if target is not None:
        pre["target"] = str(target)
    if kind == "image":
        pre["image_size"] = int(image_size) if image_size is not None else int(round(math.sqrt(X.shape[1])))
        pre["pixel_max"] = 255
        if background is not None:
            pre["background"] = float(background)
    return pre


def _plain(value):
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else [float(v) for v in value]


def _params(pre):
    scaling = pre.get("scaling", "none")
    keys = _PARAMS.get(scaling, ())
    if not keys:
        return None, None
    try:
        a = np.asarray(pre[keys[0]], dtype=np.float64)
        b = np.asarray(pre[keys[1]], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"the {scaling} scaling constants are missing or not numbers",
                             expected=f"numbers under {keys[0]!r} and {keys[1]!r}", got=str(sorted(pre))[:80],
                             fix="re-train and save the model with dialnet") from None
    if scaling == "minmax":
        offset, scale = a, b - a
    else:
        offset, scale = a, b
    scale = np.where(np.abs(scale) > 1e-12, scale, 1.0)  # constant feature: shift only, maps to 0
    return offset, scale


def apply_preprocessing(pre, X, dtype=np.float32) -> np.ndarray:
    """Scale raw inputs ``X`` (n, features) as recorded in ``pre``; returns a new array.

    ``pre`` may be a Network (its ``preprocessing`` is used) or the dict.
    An empty dict means no scaling.
    """
    pre = getattr(pre, "preprocessing", pre) or {}
    X = np.asarray(X, dtype=np.float64)
    offset, scale = _params(pre)
    if offset is not None:
        if offset.ndim == 1 and X.ndim == 2 and offset.shape[0] != X.shape[1]:
            raise ShapeError("the inputs have a different number of features than the model was trained on",
                             expected=f"{offset.shape[0]} features" + _names_hint(pre), got=f"{X.shape[1]} features",
                             fix="pass the same columns as in training (the label column left out)")
        X = (X - offset) / scale
    return X.astype(dtype)


def _names_hint(pre):
    names = pre.get("feature_names")
    if not names:
        return ""
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f" ({shown})"


def validate_preprocessing(pre, n_inputs, name="the model") -> dict:
    """Check a preprocessing dict read from a model file before it is used.

    Raises
    ------
    ModelFileError
        Unknown scaling, missing or non-numeric constants, lists whose
        length differs from the network's input width, a bad image size.
    """
    if not pre:
        return {}

    def bad(what, expected, got):
        return ModelFileError(f"{name} has unusable preprocessing: {what}", expected=expected, got=str(got)[:80],
                              fix="re-train and save the model with dialnet")

    if not isinstance(pre, dict):
        raise bad("not a JSON object", "an object", type(pre).__name__)
    scaling = pre.get("scaling", "none")
    if scaling not in SCALINGS:
        raise bad("unknown scaling", " or ".join(SCALINGS), scaling)
    per_feature = pre.get("input", "table") != "image"
    for key in _PARAMS[scaling]:
        value = pre.get(key)
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise bad(f"{key!r} is not a list of finite numbers", "numbers", type(value).__name__)
        if isinstance(value, list) and len(value) != n_inputs and per_feature:
            raise bad(f"{key!r} has {len(value)} values", f"{n_inputs} (one per input)", len(value))
    if pre.get("input") == "image":
        size = pre.get("image_size")
        if not isinstance(size, int) or isinstance(size, bool) or size * size != n_inputs:
            raise bad("the image size does not match the input width", f"size*size = {n_inputs}", size)
    names = pre.get("feature_names")
    if names is not None and (not isinstance(names, list) or len(names) != n_inputs):
        raise bad("feature_names do not match the input width", f"{n_inputs} names", names)
    return pre
