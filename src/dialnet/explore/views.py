"""What the explore page shows, computed from an :class:`~dialnet.explore.session.Explorer`: plain JSON-able dicts.

- :func:`info`: the data (preview, class counts, split sizes), the network
  (sizes, activations, where each layer's dials sit in the snapshot), the recipe;
- :func:`samples`: the inputs of the test-sample grid or the preview, float32;
- :func:`evaluation`: the latest snapshot on the test rows (accuracy, confusion
  matrix, the grid's answers), per-layer gradient norms and the doctor's
  flags (stuck units, vanishing/exploding gradients, non-finite values);
- :func:`trace_sample`: one sample (a test row or a drawing) forward and
  backward: activations, deltas and certainties layer by layer.

All of them read the viewer copy (``explorer.viewer_at()``) under
``explorer.view_lock``, never the network being trained.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..core.layers import Dense
from ..diagnose.rules import check_gradients, check_units
from ..diagnose.trace import trace
from ..errors import InvalidValueError, ShapeError
from .session import finite

GRID = 120  # test samples in the page's grid
PREVIEW = 24  # training samples in the data preview
EVAL_ROWS = 2000  # test rows the accuracy and the confusion matrix are measured on
PROBE_ROWS = 256  # training rows the doctor's unit and gradient checks look at
EVAL_EVERY = 0.2  # seconds: the evaluation is computed at most this often ...
DOCTOR_EVERY = 2.0  # ... and the doctor's checks at most this often
MAX_VALUES = 4096  # a layer's activations/deltas sent per sample, at most


def _round(a, digits=5):
    a = np.asarray(a, dtype=np.float64)
    out = np.round(a, digits) if a.size else a
    return [finite(v) for v in out.ravel().tolist()]


def layer_names(net):
    """'Dense 625->20 + sigmoid' for each Dense with the activation after it."""
    names, layers = [], net.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            act = "identity"
            for nxt in layers[i + 1:]:
                if isinstance(nxt, Dense):
                    break
                if nxt.name != "dropout":
                    act = nxt.name
            names.append(act)
    return names


def layout(net):
    """Where each Dense's dials and gradients sit in the snapshot's float32 array."""
    out, offset = [], 0
    for k, (dense, act) in enumerate(zip(net.dense_layers, layer_names(net)), start=1):
        w, b = dense.weights.size, dense.biases.size
        out.append({"layer": k, "n_in": dense.n_in, "n_out": dense.n_out, "activation": act,
                    "weights": offset, "biases": offset + w})
        offset += w + b
    return {"layers": out, "total": offset, "grads": offset}


def _counts(y, k):
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=k).tolist() if k else []


def info(ex) -> dict:
    """The page's static description of the data, the network and the recipe."""
    ds, prep = ex.dataset, ex.prepared
    k = 0 if ex.regression else ds.n_classes
    n_train = len(prep.X_train)
    preview = None
    if ds.kind != "image":
        rows = min(8, n_train)
        if ds.cells is not None:
            header = list(ds.column_names)
            cells = [[str(c) for c in row] for row in ds.cells[:rows]]
        else:
            header = list(ds.feature_names or [f"x{i}" for i in range(ds.X_train.shape[1])])[:12]
            cells = [[f"{v:.4g}" for v in row[:12]] for row in np.asarray(ds.X_train[:rows], dtype=np.float64)]
        labels = ds.y_train[:rows]
        label_text = [f"{v:.4g}" for v in labels] if ex.regression else [ds.class_names[int(v)] for v in labels]
        preview = {"header": header, "rows": cells, "target": str(ds.target) if ds.target is not None else "label",
                   "labels": label_text}
    fit = ex.fit_kw
    target = None
    if ex.regression:
        values = np.asarray(prep.preprocessor.unscale_target(prep.y_train), dtype=np.float64)
        target = {"name": str(ds.target), "min": finite(values.min()), "mean": finite(values.mean()),
                  "max": finite(values.max()), "std": finite(values.std())}
    return {
        "data": {
            "name": ds.name, "kind": ds.kind, "task": ds.task, "image_size": ds.image_size if ds.kind == "image" else None,
            "background": finite(ds.background),
            "class_names": [] if ex.regression else list(ds.class_names),
            "counts": {"train": _counts(prep.y_train, k), "test": _counts(prep.y_test, k)},
            "splits": {"train": ex.n_fit, "validation": n_train - ex.n_fit, "test": len(prep.y_test)},
            "split_note": prep.split_note, "target": target, "describe": prep.describe(), "preview": preview,
            "grid_labels": _round(prep.y_test[:GRID], 6) if ex.regression else [int(v) for v in prep.y_test[:GRID]],
            "preview_labels": (_round(prep.y_train[:PREVIEW], 6) if ex.regression
                               else [int(v) for v in prep.y_train[:PREVIEW]]),
            "n_inputs": int(prep.X_train.shape[1]),
            "feature_names": None if ds.kind == "image" else list(ex.viewer.preprocessing.feature_names or [])[:MAX_VALUES],
        },
        "network": {"sizes": list(ex.net.sizes), "parameters": ex.net.count_parameters(), "dtype": ex.net.dtype.name,
                    "layout": layout(ex.net), "summary": ex.net.summary()},
        "recipe": {"describe": ex.recipe.describe(ex.net, fit), "batch_size": fit["batch_size"], "epochs": fit["epochs"],
                   "optimizer": ex.recipe.optimizer, "lr": ex.recipe.learning_rate, "l2": fit["l2"],
                   "target_certainty": fit["target_certainty"], "early_stopping": fit["early_stopping"],
                   "steps_per_epoch": ex.steps_per_epoch},
        "save": {"model": ex.out, "onnx": ex.onnx_out},
        "grid": min(GRID, len(prep.y_test)),
    }


def samples(ex, which="grid") -> np.ndarray:
    """The network inputs of the grid's test samples (``"grid"``) or the preview's training samples, float32."""
    prep = ex.prepared
    if which == "grid":
        X = prep.X_test[:GRID]
    elif which == "preview":
        X = prep.X_train[:PREVIEW]
    else:
        raise InvalidValueError(f"unknown sample set {which!r}", expected="'grid' or 'preview'", got=repr(which),
                                fix="GET /api/samples?set=grid")
    return np.ascontiguousarray(np.asarray(X, dtype="<f4"))


def _stale(ex, name, every):
    """The cached view ``name`` if it is for the latest snapshot or younger than ``every`` seconds, else None."""
    cached = ex.views.get(name)
    if cached is None:
        return None
    version, at, value = cached
    if version == ex.snapshot().version or time.monotonic() - at < every:
        return value
    return None


def evaluation(ex) -> dict:
    """The latest snapshot measured on the test rows, with gradient norms and the doctor's flags."""
    cached = _stale(ex, "evaluation", EVAL_EVERY)
    if cached is not None:
        return cached
    prep = ex.prepared
    with ex.view_lock, np.errstate(all="ignore"):  # dials that overflowed are reported as flags, not as warnings
        snap = ex.snapshot()
        net = ex.viewer_at(snap)
        X, y = prep.X_test[:EVAL_ROWS], prep.y_test[:EVAL_ROWS]
        finite_dials = bool(np.isfinite(snap.params).all())
        P = net.predict_proba(X) if finite_dials else np.full((len(X), net.n_outputs), np.nan)
        out = {"snapshot": snap.version, "step": snap.step, "rows": int(len(X))}
        grid = min(GRID, len(y))
        if ex.regression:
            pre = prep.preprocessor
            values = pre.unscale_target(P[:, 0])
            err = values - y
            rmse = float(np.sqrt(np.mean(err**2)))
            spread = float(np.std(y)) or 1.0
            out.update(rmse=finite(rmse), r2=finite(1 - np.mean(err**2) / spread**2), accuracy=None,
                       grid_pred=_round(values[:grid], 6), grid_right=[bool(v) for v in (np.abs(err[:grid]) <= 0.25 * spread)])
        else:
            pred = P.argmax(axis=1) if net.n_outputs > 1 else (P[:, 0] >= 0.5).astype(np.int64)
            k = ex.n_outputs
            confusion = np.bincount(y.astype(np.int64) * k + pred, minlength=k * k).reshape(k, k)
            certainty = P[np.arange(len(P)), pred] if net.n_outputs > 1 else np.where(pred == 1, P[:, 0], 1 - P[:, 0])
            out.update(accuracy=finite((pred == y).mean()), confusion=confusion.tolist(),
                       grid_pred=[int(v) for v in pred[:grid]], grid_right=[bool(v) for v in pred[:grid] == y[:grid]],
                       grid_certainty=_round(certainty[:grid], 3))
        out["layers"] = _layer_norms(ex, snap)
        out["flags"] = _doctor(ex, net, finite_dials)
    ex.views["evaluation"] = (snap.version, time.monotonic(), out)
    return out


def _layer_norms(ex, snap):
    rows = []
    for entry in layout(ex.net)["layers"]:
        w0, b0 = entry["weights"], entry["biases"]
        end = b0 + entry["n_out"]
        W, dW = snap.params[w0:b0], snap.grads[w0:b0]
        rows.append({"layer": entry["layer"], "weight_norm": finite(np.linalg.norm(W)),
                     "grad_norm": finite(np.linalg.norm(dW)), "bias_grad_norm": finite(np.linalg.norm(snap.grads[b0:end])),
                     "grad_max": finite(np.abs(dW).max()) if dW.size else None})
    return rows


def _doctor(ex, net, finite_dials):
    """The doctor's findings on the latest dials, each tied to its layer where it has one (cached ``DOCTOR_EVERY`` s)."""
    cached = _stale(ex, "doctor", DOCTOR_EVERY)
    if cached is not None:
        return cached
    flags = []
    for record in ex.divergences:
        flags.append({"code": "nan", "layer": None, "title": "the loss or a gradient became NaN or infinite",
                      "detail": f"{record.get('what', '')}; likely cause: {record.get('cause', '')}"[:400],
                      "fix": record.get("fix") or "lower the learning rate (set lr) and reset"})
    if not finite_dials:
        flags.append({"code": "nan", "layer": None, "title": "some dials are NaN or infinite",
                      "detail": "the weights overflowed", "fix": "lower the learning rate and reset"})
    else:
        prep = ex.prepared
        rows = np.random.default_rng(0).permutation(len(prep.X_train))[:PROBE_ROWS]
        X, y = prep.X_train[np.sort(rows)], prep.y_train[np.sort(rows)]
        findings = []
        with np.errstate(all="ignore"):
            for check in (lambda: check_units(net, X), lambda: check_gradients(net, X, y, net.default_loss())):
                try:
                    findings.extend(check()[0])
                except (ValueError, ArithmeticError):  # a check that cannot run on these dials says nothing
                    continue
        for f in findings:
            layer = f.numbers.get("layer")
            flags.append({"code": f.code, "layer": layer, "title": f.title, "detail": f.detail, "fix": f.fix})
    ex.views["doctor"] = (ex.snapshot().version, time.monotonic(), flags)
    return flags


def _input_row(ex, index=None, pixels=None, inputs=None):
    prep, n = ex.prepared, ex.prepared.X_train.shape[1]
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(prep.y_test):
            raise InvalidValueError("index is not a test sample", expected=f"0..{len(prep.y_test) - 1}", got=repr(index),
                                    fix='send {"index": 0}')
        return prep.X_test[index:index + 1], prep.y_test[index:index + 1]
    values = pixels if pixels is not None else inputs
    try:
        row = np.asarray(values, dtype=np.float64).reshape(1, -1)
    except (TypeError, ValueError):
        row = np.zeros((1, 0))
    if row.shape[1] != n or not np.isfinite(row).all():
        raise ShapeError("the sample has the wrong number of values", expected=f"{n} finite numbers",
                         got=f"{row.shape[1]} values", fix="send one value per network input")
    if pixels is not None:
        if ex.dataset.kind != "image":
            raise InvalidValueError("pixels apply to image data only", expected="image data", got=ex.dataset.kind,
                                    fix='send {"index": 0} to look at a test row')
        row = prep.preprocessor.scale(np.clip(row, 0.0, 1.0), ex.net.dtype)
    return np.asarray(row, dtype=ex.net.dtype), None


def trace_sample(ex, index=None, pixels=None, inputs=None) -> dict:
    """One sample forward and backward on the latest dials: per layer ``a`` and ``delta``; the certainties.

    ``index``: a test sample (its true label is the target); ``pixels``: a
    drawing, values 0..1 row by row (the network's own answer is the target,
    so the deltas show what would make it surer).
    """
    x, y = _input_row(ex, index, pixels, inputs)
    target = y if y is None or not ex.regression else ex.prepared.preprocessor.scale_target(y)
    with ex.view_lock:
        net = ex.viewer_at()
        with np.errstate(all="ignore"):
            t = trace(net, x, target)
    P = t.output[0]
    out = {"snapshot": ex.snapshot().version, "loss": finite(t.loss), "target": t.target_source,
           "input": _round(x[0], 4)[:MAX_VALUES],
           "layers": [{"layer": lt.number, "activation": lt.activation, "a": _round(lt.a[0])[:MAX_VALUES],
                       "delta": _round(lt.delta[0])[:MAX_VALUES], "units": int(lt.a.shape[1])} for lt in t.layers]}
    if ex.regression:
        out["value"] = finite(ex.prepared.preprocessor.unscale_target(P[:1])[0])
    else:
        out["certainties"] = _round(P, 5)
        out["predicted"] = int(np.argmax(P)) if P.size > 1 else int(P[0] >= 0.5)
    if y is not None:
        out["label"] = finite(y[0]) if ex.regression else int(y[0])
    out["top_dials"] = [{"layer": t.layers[k - 1].number, "i": i, "j": j, "w": finite(w), "grad": finite(g)}
                        for k, i, j, w, g in _top(t)]
    return out


def _top(t, k=8):
    rows = []
    for lt in t.layers:
        for i, j, w, g in lt.top_dials(k):
            rows.append((lt.number, i, j, w, g))
    rows.sort(key=lambda r: -abs(r[4]) if math.isfinite(r[4]) else 0)
    return rows[:k]
