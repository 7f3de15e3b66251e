"""Look inside one forward and one backward pass: every layer's numbers, every dial's gradient.

For Dense layer ``k`` and the activation ``f`` after it (batch first)::

    z_k = a_{k-1} @ W_k + b_k                 a_k = f(z_k)
    delta_k = dL/dz_k = dL/da_k * f'(z_k)     (chain rule through the activation)
    dL/dW_k = a_{k-1}.T @ delta_k             dL/db_k = delta_k.sum(0)
    dL/da_{k-1} = delta_k @ W_k.T             (the error handed to the layer before)

:func:`trace` records all of these as NumPy arrays and prints them as a
short report; :func:`unit_health` says which hidden units are stuck
(saturated sigmoid/tanh, dead ReLU) on a data set.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..errors import ConfigError, InvalidValueError, type_name
from ..core.layers import Dense
from ..core.network import Network
from ..data.preprocessing import image_side, preprocessor_of
from ..core.losses import get_loss

# A unit is "flat" on a sample when its activation's slope is below this
# fraction of the slope's peak (sigmoid: a(1-a) < 0.0025, i.e. |z| > 6;
# tanh: 1-a^2 < 0.01, i.e. |z| > 3): the error it passes back is cut 100x.
FLAT_SLOPE = 0.01
# A unit is "stuck" when it is flat on at least this share of the samples:
# it then learns from fewer than 1 sample in 100.
STUCK_SHARE = 0.99
_PEAK_SLOPE = {"sigmoid": 0.25, "tanh": 1.0}


def image_shape(net):
    """The (rows, cols) the input vector came from, if it is an image; else None.

    The one rule, :func:`dialnet.data.preprocessing.image_side`: the size an
    image model's Preprocessor stored; none for a table with named columns;
    else a square side when the input width is a perfect square (625 -> 25).
    """
    side = image_side(net.n_inputs, preprocessor_of(net))
    return None if side is None else (side, side)


def _blocks(net):
    """(dense index, index of the last layer before the next Dense) for each Dense."""
    dense_at = [i for i, layer in enumerate(net.layers) if isinstance(layer, Dense)]
    ends = [j - 1 for j in dense_at[1:]] + [len(net.layers) - 1]
    return list(zip(dense_at, ends))


def _activation_name(net, start, end):
    names = [net.layers[i].name for i in range(start + 1, end + 1) if net.layers[i].name != "dropout"]
    return names[-1] if names else "identity"


class LayerTrace:
    """One Dense layer and its activation, seen on a batch.

    Attributes (NumPy arrays, batch first)
    ----------------------------------------
    input : (n, n_in)   ``a_{k-1}``, what the layer received
    z : (n, n_out)      ``a_{k-1} @ W + b``
    a : (n, n_out)      the activation's output
    grad_a : (n, n_out) or None   ``dL/da`` (None for a softmax fused with cross-entropy)
    delta : (n, n_out)  ``dL/dz``, the error signal at this layer
    weights, biases, grad_weights, grad_biases : the dials and ``dL/dW``, ``dL/db``
    """

    def __init__(self, number, position, activation, **arrays):
        self.number = number  # 1-based, as in "layer 1"
        self.position = position  # index in net.layers
        self.activation = activation
        self.input = arrays["input"]
        self.z = arrays["z"]
        self.a = arrays["a"]
        self.grad_a = arrays["grad_a"]
        self.delta = arrays["delta"]
        self.weights = arrays["weights"]
        self.biases = arrays["biases"]
        self.grad_weights = arrays["grad_weights"]
        self.grad_biases = arrays["grad_biases"]

    @property
    def shape(self):
        return self.weights.shape

    def flat_fraction(self):
        """Share of (sample, unit) pairs where the activation's slope is nearly 0."""
        if self.activation in _PEAK_SLOPE:
            return float((_slope(self.activation, self.a) < FLAT_SLOPE).mean())
        if self.activation == "relu":
            return float((self.a <= 0).mean())
        return 0.0

    def top_dials(self, k=5):
        """The ``k`` weights with the largest ``|dL/dW|``: ``[(i, j, W[i, j], dL/dW[i, j]), ...]``.

        These are the dials that change the loss fastest when turned: for a
        single wrong sample, "which dials matter most for this mistake".
        """
        g = np.abs(self.grad_weights).ravel()
        k = max(0, min(int(k), g.size))
        if k == 0:
            return []
        idx = np.argpartition(-g, k - 1)[:k]
        idx = idx[np.argsort(-g[idx], kind="stable")]
        rows, cols = np.unravel_index(idx, self.grad_weights.shape)
        return [(int(i), int(j), float(self.weights[i, j]), float(self.grad_weights[i, j])) for i, j in zip(rows, cols)]

    def stats(self) -> dict:
        """Ranges and norms of everything on this layer, as plain floats."""
        out = {}
        for name in ("input", "z", "a", "delta", "grad_weights", "grad_biases", "weights"):
            arr = getattr(self, name)
            out[name] = {"min": float(arr.min()), "max": float(arr.max()), "norm": float(np.linalg.norm(arr))}
        out["flat_fraction"] = self.flat_fraction()
        return out

    def __repr__(self):
        return f"LayerTrace(layer {self.number}: Dense {self.shape[0]}->{self.shape[1]} + {self.activation})"


def _slope(activation, a):
    """The activation's slope from its output, divided by its peak slope."""
    if activation == "sigmoid":
        return a * (1 - a) / 0.25
    return 1 - a * a  # tanh


class Trace:
    """Everything one forward + backward pass computed, layer by layer.

    Attributes
    ----------
    layers : list of LayerTrace, input side first
    loss : float            the loss value on the batch
    loss_name : str
    output : (n, n_out)     the network's output (certainties for softmax)
    target : the targets used (labels or rows)
    target_source : "given" or "predicted" (no labels: the network's own answer)
    input_gradient : (n, n_in)  ``dL/dX``, which inputs (pixels) matter
    """

    def __init__(self, net, layers, loss, loss_name, output, target, target_source, input_gradient):
        self.net_sizes = list(net.sizes)
        self.task = net.task
        self.class_names = list(net.class_names) if getattr(net, "class_names", None) else None
        self.image_shape = image_shape(net)
        self.layers = layers
        self.loss = loss
        self.loss_name = loss_name
        self.output = output
        self.target = target
        self.target_source = target_source
        self.input_gradient = input_gradient

    def __len__(self):
        return self.output.shape[0]

    def error_flow(self):
        """``||dL/dz||`` per layer, output layer first: how the error shrinks or grows going back."""
        return [float(np.linalg.norm(t.delta)) for t in reversed(self.layers)]

    def top_dials(self, k=10):
        """The ``k`` weights of the whole network with the largest ``|dL/dW|``.

        Returns ``[(layer_number, i, j, W[i, j], dL/dW[i, j]), ...]``.
        """
        found = [(t.number, *d) for t in self.layers for d in t.top_dials(k)]
        found.sort(key=lambda d: -abs(d[4]))
        return found[:k]

    def arrays(self) -> dict:
        """Every traced array under a flat name (``layer1.z``, ``layer1.grad_weights``...), e.g. for ``np.savez``."""
        out = {"output": self.output, "input_gradient": self.input_gradient, "target": np.asarray(self.target)}
        for t in self.layers:
            for name in ("input", "z", "a", "delta", "weights", "biases", "grad_weights", "grad_biases"):
                out[f"layer{t.number}.{name}"] = getattr(t, name)
            if t.grad_a is not None:
                out[f"layer{t.number}.grad_a"] = t.grad_a
        return out

    def _label(self, k):
        if self.class_names and 0 <= k < len(self.class_names):
            return f"{k} ({self.class_names[k]})"
        return str(k)

    def _dial_name(self, number, i, j):
        if number == 1 and self.image_shape is not None:
            r, c = divmod(i, self.image_shape[1])
            source = f"pixel ({r},{c})"
        else:
            source = f"input {i}" if number == 1 else f"unit {i}"
        last = number == len(self.layers) and self.task == "classification" and self.output.shape[1] > 1
        return f"W{number}[{source} -> {'class ' + self._label(j) if last else f'unit {j}'}]"

    def report(self, top=5, max_samples=5) -> str:
        """A readable summary: per layer ranges and norms, then the dials that matter most."""
        n = len(self)
        lines = [
            f"Trace of {n} sample{'s' if n != 1 else ''} through {'-'.join(map(str, self.net_sizes))}: "
            f"{self.loss_name} loss {self.loss:.4f}"
        ]
        if self.task in ("classification",) and self.output.shape[1] > 1:
            labels = np.asarray(self.target)
            labels = labels if labels.ndim == 1 else labels.argmax(axis=1)
            pred = self.output.argmax(axis=1)
            for s in range(min(n, max_samples)):
                p = self.output[s]
                word = "label" if self.target_source == "given" else "target (its own answer, no label given)"
                verdict = "right" if pred[s] == labels[s] else "WRONG"
                lines.append(
                    f"  sample {s}: {word} {self._label(int(labels[s]))}, predicted {self._label(int(pred[s]))} "
                    f"with certainty {p[pred[s]]:.3f}; certainty of the {word.split()[0]} {p[labels[s]]:.3f} [{verdict}]"
                )
            if n > max_samples:
                lines.append(f"  ... and {n - max_samples} more (accuracy {float((pred == labels).mean()):.3f})")
        flow = self.error_flow()
        lines.append("Error signal ||dL/dz|| by layer, output first (backprop's order): " + " -> ".join(f"{v:.3g}" for v in flow))
        for t in self.layers:
            s = t.stats()
            d_in, d_out = t.shape
            flat = t.flat_fraction()
            flat_word = {"relu": "zero (dead on these samples)", "sigmoid": "saturated", "tanh": "saturated"}.get(t.activation)
            lines.append(f"Layer {t.number}: Dense {d_in}->{d_out} + {t.activation}")
            lines.append(f"  input   range [{s['input']['min']:.3g}, {s['input']['max']:.3g}]  norm {s['input']['norm']:.3g}")
            lines.append(f"  z       range [{s['z']['min']:.3g}, {s['z']['max']:.3g}]  norm {s['z']['norm']:.3g}")
            extra = f"  {flat:.0%} {flat_word}" if flat_word else ""
            lines.append(f"  a       range [{s['a']['min']:.3g}, {s['a']['max']:.3g}]  norm {s['a']['norm']:.3g}{extra}")
            lines.append(f"  dL/dz   norm {s['delta']['norm']:.3g}   (delta: the error arriving at this layer)")
            lines.append(
                f"  dL/dW   norm {s['grad_weights']['norm']:.3g}, largest |.| "
                f"{max(abs(s['grad_weights']['min']), abs(s['grad_weights']['max'])):.3g};  dL/db norm {s['grad_biases']['norm']:.3g}"
            )
            if top:
                dials = ", ".join(f"{self._dial_name(t.number, i, j)}={w:+.3f} (dL/dW {g:+.2e})" for i, j, w, g in t.top_dials(top))
                lines.append(f"  top dials by |dL/dW|: {dials}")
        if top:
            lines.append("Dials that matter most for this loss (whole network, by |dL/dW|):")
            for number, i, j, w, g in self.top_dials(top):
                move = "down" if g > 0 else "up"
                lines.append(f"  {self._dial_name(number, i, j)} = {w:+.4f}, dL/dW = {g:+.3e}: gradient descent turns it {move}")
        return "\n".join(lines)

    def __str__(self):
        return self.report()

    def __repr__(self):
        return f"Trace(samples={len(self)}, layers={len(self.layers)}, loss={self.loss:.4g})"


def _as_batch(net, x):
    arr = np.asarray(x) if not hasattr(x, "shape") else x
    if getattr(arr, "ndim", None) == 1:
        arr = arr.reshape(1, -1)
    return net._check_X(arr, "input")


def _default_targets(net, P):
    """No labels given: use the network's own answer, so the gradient says what would make it surer."""
    if net.task == "classification" and P.shape[1] > 1:
        return P.argmax(axis=1)
    if net.task in ("binary", "multilabel"):
        return (P >= 0.5).astype(P.dtype)
    raise ConfigError(
        "tracing a regression network needs targets",
        expected="y: the true values for the input rows",
        got="y=None",
        fix="pass y (the wanted outputs) to trace",
    )


def trace(net, x, y=None, loss=None) -> Trace:
    """Run one forward and one backward pass and keep every intermediate array.

    Parameters
    ----------
    net : Network
    x : array-like, (n_inputs,) for one sample or (n, n_inputs) for a batch
    y : labels or target rows, optional
        Without them the network's own prediction is the target, so the
        gradients show which dials would make it more certain of its answer.
    loss : str or Loss, optional
        Default: the network's training loss (cross-entropy for softmax).

    Returns
    -------
    Trace
        Per layer ``input``, ``z``, ``a``, ``delta = dL/dz``, ``dL/dW``,
        ``dL/db``; ``str(trace)`` is a readable report. The network's own
        ``grad_weights``/``grad_biases`` are left as after :meth:`Network.backprop`.
    """
    if not isinstance(net, Network):
        raise ConfigError(
            "trace needs a dialnet Network",
            expected="a Network (dialnet.mlp(...) or dialnet.load(path))",
            got=type_name(net),
            fix="pass the network first: trace(net, x, y)",
        )
    loss = get_loss(loss) if loss is not None else net.default_loss()
    X = _as_batch(net, x)
    layers = net.layers

    outputs = []
    out = X
    for layer in layers:
        out = layer.forward(out, training=False)
        outputs.append(backend.to_numpy(out).copy())
    P = outputs[-1]
    target_source = "given"
    if y is None:
        y = _default_targets(net, P)
        target_source = "predicted"
    Y = loss.prepare(y, X.shape[0], net.n_outputs, net.dtype)

    # grad_out[i] = dL/d(output of layer i); the loss step is the one backprop takes
    grad_out = [None] * len(layers)
    value, d, last = net._loss_step(out, Y, loss)
    if not math.isfinite(value):
        raise InvalidValueError(
            "the loss is not finite on this input",
            expected="a finite loss",
            got=str(value),
            fix="check the model's weights and the input's scale (run `dialnet doctor`)",
        )
    dense_grads = {}
    for i in range(last, net._first_dense - 1, -1):
        grad_out[i] = backend.to_numpy(d).copy()
        d = layers[i].backward(d, need_dx=True)
        if isinstance(layers[i], Dense):
            dense_grads[i] = (backend.to_numpy(layers[i].grad_weights).copy(), backend.to_numpy(layers[i].grad_biases).copy())
    input_gradient = backend.to_numpy(d).copy()

    traces = []
    for number, (start, end) in enumerate(_blocks(net), start=1):
        dense = layers[start]
        gW, gb = dense_grads[start]
        traces.append(
            LayerTrace(
                number,
                start,
                _activation_name(net, start, end),
                input=backend.to_numpy(X).copy() if start == 0 else outputs[start - 1],
                z=outputs[start],
                a=outputs[end],
                grad_a=grad_out[end],
                delta=grad_out[start],
                weights=backend.to_numpy(dense.weights).copy(),
                biases=backend.to_numpy(dense.biases).copy(),
                grad_weights=gW,
                grad_biases=gb,
            )
        )
    return Trace(net, traces, float(value), loss.name, P, backend.to_numpy(Y), target_source, input_gradient)


class UnitHealth:
    """How many units of one hidden layer are stuck on a data set.

    Attributes
    ----------
    layer : int          1-based Dense layer number the activation follows
    activation : str
    units : int
    flat_share : ndarray (units,)  share of samples where each unit is flat
        (slope below ``FLAT_SLOPE`` of its peak; for ReLU: output exactly 0)
    stuck : ndarray of bool  units flat on at least ``STUCK_SHARE`` of the
        samples (ReLU: on every sample, i.e. dead)
    low, high : ndarray (units,) share of samples saturated at the low / high
        end (sigmoid near 0 / 1, tanh near -1 / 1); zeros for ReLU
    """

    def __init__(self, layer, activation, flat_share, low, high, stuck):
        self.layer = layer
        self.activation = activation
        self.flat_share = flat_share
        self.low = low
        self.high = high
        self.stuck = stuck
        self.units = flat_share.size

    @property
    def n_stuck(self):
        return int(self.stuck.sum())

    @property
    def share_stuck(self):
        return self.n_stuck / self.units

    def __repr__(self):
        return f"UnitHealth(layer {self.layer} {self.activation}: {self.n_stuck}/{self.units} stuck)"


def unit_health(net, X) -> list:
    """For every hidden sigmoid, tanh or ReLU layer: which units are stuck on ``X``.

    A sigmoid/tanh unit is stuck (saturated) when its slope is below 1% of
    its peak on at least 99% of the samples; a ReLU unit is stuck (dead)
    when it outputs 0 on every sample, so no gradient reaches its dials.
    """
    X = _as_batch(net, X)
    out = X
    results = []
    blocks = dict(_blocks(net))
    dense_number = {start: k for k, (start, _end) in enumerate(_blocks(net), start=1)}
    last_start = _blocks(net)[-1][0]
    current = None
    for i, layer in enumerate(net.layers):
        out = layer.forward(out, training=False)
        if i in blocks:
            current = i
        name = layer.name
        if current is None or current == last_start or name not in ("sigmoid", "tanh", "relu"):
            continue
        a = backend.to_numpy(out)
        if name == "relu":
            flat = a <= 0
            low = flat.mean(axis=0)
            high = np.zeros_like(low)
            stuck = flat.all(axis=0)
        else:
            flat = _slope(name, a) < FLAT_SLOPE
            mid = 0.5 if name == "sigmoid" else 0.0
            low = (flat & (a < mid)).mean(axis=0)
            high = (flat & (a > mid)).mean(axis=0)
            stuck = flat.mean(axis=0) >= STUCK_SHARE
        results.append(UnitHealth(dense_number[current], name, flat.mean(axis=0), low, high, stuck))
    return results
