"""How good a model is on labelled rows: accuracy, per-class precision and recall, confusion matrix; RMSE, MAE, R^2."""

from __future__ import annotations

import numpy as np

from ..data.preprocessing import preprocessor_of
from ..train import confusion_matrix


def regression_metrics(y, pred, train_mean=None) -> dict:
    """RMSE, MAE, R^2 = 1 - SSE/SST, and the RMSE of always predicting the training mean (``y``'s mean if not given)."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    err = pred - y
    sst = float(((y - y.mean()) ** 2).sum())
    mean = float(y.mean()) if train_mean is None else train_mean
    return {
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
        "r2": 1.0 - float((err**2).sum()) / sst if sst > 0 else float("nan"),
        "baseline_rmse": float(np.sqrt(((y - mean) ** 2).mean())),
    }


def format_regression(metrics) -> str:
    """``RMSE 0.31, MAE 0.24, R^2 0.9712 (predicting the training mean: RMSE 1.83)``."""
    m = metrics
    return (f"RMSE {m['rmse']:.4g}, MAE {m['mae']:.4g}, R^2 {m['r2']:.4f} "
            f"(predicting the training mean: RMSE {m['baseline_rmse']:.4g})")


def classification_metrics(y, pred, n_classes) -> dict:
    """Accuracy, the confusion matrix, and per class precision, recall (NaN where undefined) and support."""
    C = confusion_matrix(y, pred, n_classes)
    predicted, support = C.sum(axis=0), C.sum(axis=1)
    hits = np.diag(C).astype(np.float64)
    correct = int(hits.sum())
    n = int(C.sum())
    return {
        "accuracy": correct / n if n else float("nan"),
        "correct": correct,
        "n": n,
        "confusion": C,
        "precision": np.divide(hits, predicted, out=np.full(len(C), np.nan), where=predicted > 0),
        "recall": np.divide(hits, support, out=np.full(len(C), np.nan), where=support > 0),
        "support": support,
    }


def predict_targets(net, X):
    """What the model answers for inputs ``X``: class indices, or values in the target's units (regression)."""
    out = net.predict(X)
    if net.task != "regression":
        return out
    pre = preprocessor_of(net)
    return pre.unscale_target(out) if pre is not None else np.asarray(out, dtype=np.float64)


def evaluate_model(net, X, y) -> dict:
    """A model's scores on preprocessed inputs ``X`` and labels ``y`` (what ``dialnet evaluate`` prints).

    Classification: :func:`classification_metrics` plus the mean ``loss``.
    Regression: :func:`regression_metrics` in the target's units (``y`` in
    those units too), the baseline being the training mean stored with the model.
    """
    if net.task == "regression":
        pre = preprocessor_of(net)
        return {**regression_metrics(y, predict_targets(net, X), None if pre is None else pre.target_mean), "n": len(y)}
    pred = net.predict_proba(X).argmax(axis=1)
    return {**classification_metrics(y, pred, net.n_outputs), "loss": net.evaluate(X, y)["loss"]}
