"""The network: layers in order, with the forward pass, backpropagation and bookkeeping.

This is the math only. Training, files and export sit in higher layers;
``dialnet.Network`` (in :mod:`dialnet.model`) is this class with ``fit``,
``evaluate``, ``save`` and ``to_torch_state_dict`` added on top.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import backend
from ..errors import ConfigError, InvalidValueError, ShapeError, check_seed, type_name
from .layers import Dense, Dropout, Layer, auto_init_for, get_activation
from .memory import check_network
from .losses import check_sample_weight, get_loss

TASKS = ("classification", "binary", "multilabel", "regression")


class ArrayList(list):
    """A list of arrays that knows the one flat array they are all views of: ``flat`` (None if they are not)."""

    def __init__(self, arrays, flat=None):
        super().__init__(arrays)
        self.flat = flat


def all_finite(X) -> bool:
    """True when no value of the 2-D array ``X`` is NaN or infinite.

    NaN and inf survive a sum, so for a large ``X`` one BLAS pass (the
    column sums, ``1.T @ X``) settles the usual case without a boolean
    array as big as ``X``; only a non-finite sum (a bad value, or finite
    values adding up past the float range) is looked at element by element.
    """
    xp = backend.xp
    if X.size > 4096:
        with np.errstate(over="ignore", invalid="ignore"):  # the verdict is the point, not a warning
            sums = backend.dot(xp.ones(X.shape[0], dtype=X.dtype), X)
        if bool(backend.all_true(xp.isfinite(sums))):
            return True
    return bool(backend.all_true(xp.isfinite(X)))


def _non_finite(X, what):
    bad = int((~np.isfinite(backend.to_numpy(X))).sum())
    raise InvalidValueError(
        f"{what} contains NaN or infinity",
        expected="finite numbers",
        got=f"{bad} non-finite values",
        fix="fill or drop missing values before training or predicting",
    )


def _same_arrays(a, b) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


class Summary(str):
    """The text of :meth:`Network.summary` (a ``str``), shown as a table: plain at a prompt, HTML in a notebook.

    ``rows`` holds the table's cells (a header row, then one per layer); the
    first line of the text is the title and the last the totals.
    """

    def __new__(cls, text, rows):
        self = super().__new__(cls, text)
        self.rows = [tuple(r) for r in rows]
        return self

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))

    def _repr_html_(self):
        def esc(text):
            return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        lines = str(self).splitlines()
        head = "".join(f"<th>{esc(c)}</th>" for c in self.rows[0])
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in self.rows[1:])
        return (f"<p><b>{esc(lines[0])}</b></p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table><p>{esc(lines[-1])}</p>")

    def __reduce__(self):
        return (Summary, (str(self), self.rows))


class Network:
    """A stack of layers trained by backpropagation.

    Parameters
    ----------
    layers : list of Layer
        In order from input to output; must hold at least one :class:`Dense`,
        and each Dense's ``n_in`` must equal the previous Dense's ``n_out``.
    seed : int, optional
        When given, every dial is set afresh from this seed (same seed, same
        bits) and every Dropout gets a seeded mask generator. When left out,
        the layers keep the values they were built with.
    dtype : {"float32", "float64"}
        float32 (default) is fast; float64 is for exact gradient checks.
    """

    def __init__(self, layers, seed=None, dtype="float32"):
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ConfigError(
                "a Network needs a non-empty list of layers",
                expected="e.g. [Dense(4, 8), ReLU(), Dense(8, 3), Softmax()]",
                got=type_name(layers),
                fix="use dialnet.mlp([n_in, hidden, n_out]) to build one",
            )
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(
                    f"item {i} of the layer list is not a dialnet layer",
                    expected="instances of dialnet.Dense, dialnet.ReLU, ...",
                    got=type_name(layer),
                    fix="build layers with dialnet.Dense(n_in, n_out) and the activation classes",
                )
        self.layers = list(layers)
        self.dtype = backend.resolve_dtype(dtype)
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        if not dense:
            raise ConfigError(
                "a Network needs at least one Dense layer",
                expected="at least one dialnet.Dense",
                got=", ".join(type(layer).__name__ for layer in self.layers),
                fix="add a Dense layer",
            )
        for prev, cur in zip(dense, dense[1:]):
            if prev.n_out != cur.n_in:
                raise ShapeError(
                    "consecutive Dense layers do not fit together",
                    expected=f"n_in={prev.n_out} after a layer with n_out={prev.n_out}",
                    got=f"Dense({cur.n_in}, {cur.n_out})",
                    fix="make each Dense's n_in equal to the previous Dense's n_out",
                )
        self.n_inputs = dense[0].n_in
        self.n_outputs = dense[-1].n_out
        if self.layers[-1].name == "softmax" and self.n_outputs == 1:
            raise ConfigError(
                "a softmax over one output is always 1",
                expected="at least 2 outputs for softmax",
                got="1 output",
                fix="end with Sigmoid() for a yes/no problem, or use 2 softmax outputs",
            )
        self._first_dense = self.layers.index(dense[0])
        self._flat = None
        self.seed = seed
        self.class_names = None
        self.task = self._default_task()
        self.preprocessing = None  # what turns raw inputs into these inputs (a data.Preprocessor), when known
        self.loss = None
        self.history = None
        if seed is not None:
            self.reset_parameters(seed)
        for layer in dense:
            if backend.numpy_dtype(layer.weights.dtype) != self.dtype:
                layer.astype(self.dtype)
        self._pack()

    # ------------------------------------------------------------ structure

    def reset_parameters(self, seed=None):
        """Set every dial to a fresh random value (seeded), and reseed dropout masks."""
        rng = np.random.default_rng(seed)
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
                init = auto_init_for(nxt) if layer.init == "auto" else layer.init
                layer.reset_parameters(rng, self.dtype, init=init)
            elif isinstance(layer, Dropout):
                layer.rng = np.random.default_rng(rng.integers(2**63))
        self._pack()

    def _pack(self):
        """Move every dial into one flat array, and every gradient into another.

        Each Dense keeps its ``weights``, ``biases``, ``grad_weights`` and
        ``grad_biases`` (now views), so nothing else changes; but
        :meth:`parameters` and :meth:`gradients` hand the flat arrays along
        (``.flat``), and an optimizer then updates the whole network in a few
        array operations instead of a few per layer.
        """
        owners = [layer for layer in self.layers if layer.parameters()]
        if not all(isinstance(layer, Dense) for layer in owners):
            self._flat = None
            return
        xp = backend.xp
        total = sum(p.size for layer in owners for p in layer.parameters())
        dtype = backend.native_dtype(self.dtype)
        flat_params = xp.empty(total, dtype=dtype)
        flat_grads = xp.zeros(total, dtype=dtype)
        offset = 0
        for layer in owners:
            param_views, grad_views = [], []
            for p in layer.parameters():
                end = offset + p.size
                # a contiguous slice reshaped is a view in NumPy, CuPy and the standard's reference library
                param_views.append(xp.reshape(flat_params[offset:end], p.shape))
                grad_views.append(xp.reshape(flat_grads[offset:end], p.shape))
                offset = end
            layer.use_storage(param_views, grad_views)
        self._flat = (flat_params, flat_grads, self._layer_arrays("parameters"), self._layer_arrays("gradients"))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_flat"] = None  # the layers hold the values; copies and pickles need them once
        return state

    def __setstate__(self, state):
        """A copied or unpickled network gets its own flat storage again."""
        self.__dict__.update(state)
        self._pack()

    def _layer_arrays(self, kind):
        return [a for layer in self.layers for a in getattr(layer, kind)()]

    def _default_task(self):
        last = self.layers[-1].name
        if last == "softmax":
            return "classification"
        if last == "sigmoid":
            return "binary" if self.n_outputs == 1 else "classification"
        return "regression"

    @property
    def dense_layers(self):
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    @property
    def sizes(self):
        """Layer widths, e.g. [625, 20, 20, 10]."""
        dense = self.dense_layers
        return [dense[0].n_in] + [d.n_out for d in dense]

    def parameters(self):
        """Every dial array, in a fixed order: [W0, b0, W1, b1, ...].

        An :class:`ArrayList`: ``.flat`` is the one array they are all views
        of (None if a layer's arrays were replaced since).
        """
        arrays = self._layer_arrays("parameters")
        flat = self._flat
        return ArrayList(arrays, flat[0] if flat is not None and _same_arrays(arrays, flat[2]) else None)

    def gradients(self):
        """The gradient arrays matching :meth:`parameters`, filled by :meth:`backprop` (``.flat`` likewise)."""
        arrays = self._layer_arrays("gradients")
        flat = self._flat
        return ArrayList(arrays, flat[1] if flat is not None and _same_arrays(arrays, flat[3]) else None)

    def count_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def summary(self) -> Summary:
        """A table: per layer its type, output width, weights and biases; then the totals.

        A :class:`Summary`: the text itself (a ``str``: ``print(net.summary())``),
        shown as that table at an interactive prompt and as an HTML table in
        a notebook.
        """
        rows = [("#", "layer", "output", "weights", "biases")]
        width = self.n_inputs
        n_w = n_b = 0
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                width = layer.n_out
                w, b = layer.weights.size, layer.biases.size
                n_w += w
                n_b += b
                rows.append((str(i), f"Dense {layer.n_in}->{layer.n_out}", str(width), f"{w:,}", f"{b:,}"))
            else:
                label = type(layer).__name__ + (f"(p={layer.p})" if isinstance(layer, Dropout) else "")
                rows.append((str(i), label, str(width), "", ""))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        lines = [f"Network {'-'.join(map(str, self.sizes))} ({self.dtype.name}), input width {self.n_inputs}"]
        for r in rows:
            lines.append("  ".join(r[c].ljust(widths[c]) if c < 2 else r[c].rjust(widths[c]) for c in range(5)))
        lines.append(f"Total: {n_w:,} weights + {n_b:,} biases = {n_w + n_b:,} parameters")
        return Summary("\n".join(lines), rows)

    def __repr__(self):
        return f"Network({self.layers!r}, dtype={self.dtype.name!r})"

    # ---------------------------------------------------------- validation

    def _check_X(self, X, what="X", finite=True):
        """Validate and convert an input batch once, at the public boundary.

        ``finite=False`` leaves out the NaN/infinity check, for a caller that
        makes it another way (:meth:`predict_proba`: :meth:`_check_inputs_finite`).
        """
        if not hasattr(X, "shape") or not hasattr(X, "dtype"):
            try:
                X = np.asarray(X)
            except (ValueError, TypeError) as exc:
                raise ShapeError(
                    f"{what} cannot be read as a table of numbers",
                    expected="a 2-D array-like of numbers",
                    got=str(exc)[:120],
                    fix="pass a NumPy array of shape (n_samples, n_features)",
                ) from None
        if X.ndim != 2:
            fix = "for one sample use X.reshape(1, -1)" if X.ndim == 1 else "flatten each sample: X.reshape(len(X), -1)"
            raise ShapeError(
                f"{what} must be 2-D (samples x features)",
                expected=f"shape (n, {self.n_inputs})",
                got=type_name(X),
                fix=fix,
            )
        if X.shape[1] != self.n_inputs:
            raise ShapeError(
                f"{what} has the wrong number of features",
                expected=f"{self.n_inputs} columns (the first layer's width)",
                got=f"{X.shape[1]} columns",
                fix="pass the same features the network was built for, or build it with sizes[0] = X.shape[1]",
            )
        if X.shape[0] == 0:
            raise ShapeError(
                f"{what} has no rows",
                expected="at least one sample",
                got=type_name(X),
                fix="pass at least one sample",
            )
        if backend.numpy_dtype(X.dtype).kind not in "fiub":
            raise InvalidValueError(
                f"{what} is not numeric",
                expected="numbers (float or int)",
                got=f"dtype {X.dtype}",
                fix="convert text columns to numbers first (the CSV loader does this)",
            )
        X = backend.asarray(X, dtype=self.dtype)
        if finite and not all_finite(X):
            _non_finite(X, what)
        return X

    def _check_inputs_finite(self, X):
        """After a forward pass of ``X``: refuse it if it held NaN or infinity, reading the first layer's sums.

        A NaN or an infinity among a row's inputs makes every sum ``z = x W + b``
        of that row non-finite (``inf * w`` is infinite, or NaN where ``w = 0``),
        so finite first-layer sums, a few numbers a row, vouch for the inputs
        without a pass over all of them. Non-finite sums (a bad input, or finite
        inputs so large that the sums overflow) are settled on ``X`` itself.
        """
        dense = self.layers[self._first_dense]
        z = dense._buffers.get("z") if self._first_dense == 0 else None
        if z is not None and z.shape[0] == X.shape[0] and all_finite(z):
            return
        if not all_finite(X):
            _non_finite(X, "X")

    # -------------------------------------------------------------- passes

    def _forward(self, X, training=False):
        out = X
        for layer in self.layers:
            out = layer.forward(out, training)
        return out

    def forward(self, X, training=False):
        """Run the input through every layer; return the outputs (certainties for softmax)."""
        return backend.copy(self._forward(self._check_X(X), training))

    def backward(self, grad_output):
        """Send ``dL/d(output)`` back through every layer (after a forward).

        Fills ``grad_weights``/``grad_biases`` of every Dense and returns ``dL/dX``.
        """
        d = backend.asarray(grad_output, dtype=self.dtype)
        for layer in reversed(self.layers):
            d = layer.backward(d, need_dx=True)
        return backend.copy(d)

    def _loss_step(self, P, Y, loss, sample_weight=None, need_delta=True):
        """The loss step after a forward pass that returned ``P``: ``(value, delta, last)``.

        The one place the network meets :meth:`Loss.value_and_delta
        <dialnet.core.losses.Loss.value_and_delta>`: ``delta`` is ``dL/dP``,
        or ``dL/dz`` at the output layer's input when the loss fuses with
        that layer (softmax + cross-entropy, sigmoid + binary cross-entropy);
        ``last`` is the index of the layer the backward pass starts at (the
        output layer, or the one before it when fused).
        """
        head = self.layers[-1]
        out = head._buffer("loss_delta", P.shape, P.dtype) if need_delta else None
        value, delta = loss.value_and_delta(P, Y, sample_weight, head=head, out=out, need_delta=need_delta)
        return value, delta, len(self.layers) - (2 if loss.fuses(head) else 1)

    def _backprop(self, X, Y, loss, training, sample_weight=None):
        """Forward, loss, backward on validated arrays; returns the loss value and the outputs.

        The outputs are the last layer's buffer: valid until the next forward pass.
        """
        P = self._forward(X, training)
        value, d, last = self._loss_step(P, Y, loss, sample_weight)
        layers, first = self.layers, self._first_dense
        for i in range(last, first - 1, -1):
            d = layers[i].backward(d, need_dx=i > first)
        return value, P

    def backprop(self, X, y, loss="cross_entropy", training=False, sample_weight=None):
        """Forward pass, loss, and the backward pass by the chain rule.

        Returns the loss value and leaves ``dL/dW`` and ``dL/db`` in every
        Dense's ``grad_weights`` and ``grad_biases``. ``training=True`` turns
        dropout on. ``sample_weight`` (one number >= 0 per row) makes the
        loss the weighted mean ``sum_i w_i l_i / sum_i w_i``.
        """
        loss = get_loss(loss)
        X = self._check_X(X)
        Y = loss.prepare(y, X.shape[0], self.n_outputs, self.dtype)
        w = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        return self._backprop(X, Y, loss, training, w)[0]

    # ---------------------------------------------------------- prediction

    def predict_proba(self, X, batch_size=4096):
        """The network's outputs: certainties per class for a softmax output."""
        X = self._check_X(X, finite=False)  # checked after each block's forward pass, on its first-layer sums
        parts = []
        for i in range(0, X.shape[0], batch_size):
            block = X[i : min(i + batch_size, X.shape[0]), ...]  # the standard: stop <= n, and "..." for the rest
            with np.errstate(invalid="ignore", over="ignore"):  # a NaN or inf input is refused just below
                out = self._forward(block)
            self._check_inputs_finite(block)
            parts.append(backend.to_numpy(backend.copy(out)))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def predict(self, X, batch_size=4096):
        """Class indices (classification), 0/1 per output (binary, multi-label), or values (regression)."""
        P = self.predict_proba(X, batch_size)
        if self.task == "classification":
            return P.argmax(axis=1)
        if self.task in ("binary", "multilabel"):
            out = (P >= 0.5).astype(np.int64)
            return out[:, 0] if self.task == "binary" and out.shape[1] == 1 else out
        return P[:, 0] if P.shape[1] == 1 else P

    def default_loss(self):
        if self.loss is not None:
            return get_loss(self.loss)
        last = self.layers[-1].name
        if last == "softmax":
            return get_loss("cross_entropy")
        if last == "sigmoid" and self.task in ("binary", "multilabel"):
            return get_loss("binary_cross_entropy")
        return get_loss("mse")

    def copy_weights(self):
        """A copy of every dial (for restoring the best weights later)."""
        return [backend.copy(p) for p in self.parameters()]

    def set_weights(self, arrays):
        params = self.parameters()
        if len(arrays) != len(params):
            raise ShapeError(
                "wrong number of weight arrays",
                expected=str(len(params)),
                got=str(len(arrays)),
                fix="pass the list from copy_weights() of the same architecture",
            )
        for p, a in zip(params, arrays):
            if tuple(p.shape) != tuple(np.shape(a)):
                raise ShapeError(
                    "a weight array has the wrong shape",
                    expected=str(tuple(p.shape)),
                    got=str(tuple(np.shape(a))),
                    fix="pass weights from a network of the same architecture",
                )
            p[...] = backend.asarray(a, dtype=p.dtype)

    def clear_cache(self):
        for layer in self.layers:
            layer.clear_cache()

    @property
    def device(self) -> str:
        """Where the dials live: ``"cpu"`` (NumPy or another CPU library) or ``"cuda"`` (CuPy)."""
        return "cuda" if type(self.layers[self._first_dense].weights).__module__.startswith("cupy") else "cpu"

    def to(self, device):
        """Move every dial to ``device`` (``"cpu"`` or ``"cuda"``), selecting its backend; returns the network.

        The backend is process-wide (:func:`dialnet.backend.use`): other
        networks should be moved too before they are used. Values are copied
        through the host, so they keep their bits.
        """
        host = [np.array(backend.to_numpy(p)) for p in self.parameters()]
        backend.use_device(device)
        self.clear_cache()
        for layer in self.dense_layers:
            layer.reset_storage()
        self._pack()
        self.set_weights(host)
        return self

    def astype(self, dtype):
        """A copy of this network with every dial converted to ``dtype``."""
        clone = copy.deepcopy(self)
        clone.clear_cache()
        clone.dtype = backend.resolve_dtype(dtype)
        for layer in clone.dense_layers:
            layer.astype(clone.dtype)
        clone._pack()
        return clone


OUTPUTS = ("softmax", "sigmoid", "identity", "linear", "tanh", "relu", "leaky_relu")


def mlp(sizes, activation="relu", output="softmax", dtype="float32", seed=None, init="auto", dropout=0.0, network_class=Network,
        device=None):
    """Build a multilayer perceptron: Dense layers with an activation between them.

    Parameters
    ----------
    sizes : list of int
        Widths from input to output, e.g. ``[625, 20, 20, 10]``.
    activation : str or list of str
        Hidden activation (one name, or one per hidden layer): relu,
        sigmoid, tanh, leaky_relu, identity.
    output : str
        Output activation: softmax (certainty per class), sigmoid (one
        certainty per label, or the classic recipe), identity (regression).
    init : str
        'auto' (He for ReLU, Glorot otherwise), or any name in
        ``dialnet.init.INITIALIZERS`` ('uniform' is the articles' U(0, 1)).
    dropout : float
        Dropout rate after each hidden activation (0 = none).
    network_class : type
        The class built: this core :class:`Network`, or a subclass such as
        ``dialnet.Network`` (which adds ``fit``, ``evaluate`` and ``save``).
    device : {"cpu", "cuda"}, optional
        Where the dials live: ``"cuda"`` selects the CuPy backend (an NVIDIA
        GPU; ``pip install dialnet[gpu]``), ``"cpu"`` NumPy. Left out: the
        current backend (NumPy unless :func:`dialnet.backend.use` chose
        another). The same seed gives the same starting dials on either.
    """
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ConfigError(
            "mlp needs at least an input and an output size",
            expected="a list like [625, 20, 20, 10]",
            got=type_name(sizes),
            fix="pass sizes=[n_inputs, hidden..., n_outputs]",
        )
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0:
            raise InvalidValueError(
                "layer sizes must be positive integers",
                expected="ints >= 1",
                got=repr(list(sizes)),
                fix="e.g. sizes=[625, 20, 20, 10]",
            )
    seed = check_seed(seed)
    check_network(sizes, dtype)  # a size mistake is a ConfigError now, not a MemoryError after gigabytes
    n_hidden = len(sizes) - 2
    acts = [activation] * n_hidden if isinstance(activation, str) or isinstance(activation, Layer) else list(activation)
    if n_hidden == 0 and isinstance(activation, str):
        get_activation(activation)  # unused without hidden layers, but a misspelt name must not pass
    if len(acts) != n_hidden:
        raise ConfigError(
            "one activation per hidden layer is needed",
            expected=f"{n_hidden} activation names",
            got=repr(activation),
            fix="pass one name for all hidden layers, or a list with one per hidden layer",
        )
    if str(output).lower() not in OUTPUTS:
        raise ConfigError(
            f"unknown output activation {output!r}",
            expected="one of " + ", ".join(OUTPUTS),
            got=repr(output),
            fix="use 'softmax' for classes, 'sigmoid' for labels, 'identity' for numbers",
        )
    if str(output).lower() == "softmax" and sizes[-1] == 1:
        raise ConfigError(
            "a softmax over one output is always 1",
            expected="at least 2 outputs for softmax",
            got="1 output",
            fix="use output='sigmoid' for a yes/no problem, or 2 softmax outputs",
        )
    if device is not None:
        backend.use_device(device)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(Dense(int(n_in), int(n_out), init=init))
        if i < n_hidden:
            act = acts[i]
            layers.append(copy.deepcopy(act) if isinstance(act, Layer) else get_activation(act))
            if dropout:
                layers.append(Dropout(dropout))
        else:
            layers.append(get_activation(output))
    return network_class(layers, seed=seed if seed is not None else np.random.SeedSequence().entropy, dtype=dtype)
