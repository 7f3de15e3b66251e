"""Exchange weights with PyTorch: state_dicts of the equivalent ``nn.Sequential``.

A dialnet network ``[Dense, act, Dense, act, ..., Dense, out]`` is the
``nn.Sequential`` with one module per dialnet layer, in the same order:
Dense -> ``nn.Linear``, Sigmoid/Tanh/ReLU/LeakyReLU/Identity -> the torch
module of that name, Softmax -> ``nn.Softmax(dim=1)``, Dropout ->
``nn.Dropout``. So the state_dict keys are the layer positions:
``0.weight``, ``0.bias``, ``2.weight``, ``2.bias``, ... (``3.weight`` after
a Dropout, and so on).

torch stores ``weight`` as ``(out, in)`` and computes ``x @ W.T + b``;
dialnet stores ``W`` as ``(in, out)`` and computes ``X @ W + b``. Both
directions transpose, which moves numbers without rounding them, so a
round trip is bit-exact. torch is optional: a state_dict may hold torch
tensors or NumPy arrays, and ``as_numpy=True`` needs no torch at all.
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict

import numpy as np

from .. import backend
from ..core.layers import Dense, Dropout, Identity, Layer, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, get_activation
from ..core.network import OUTPUTS, Network
from ..errors import ConfigError, InvalidValueError, ShapeError, type_name
from .modelfile import atomic_write_bytes, network_metadata, pack

_KEY = re.compile(r"^(\d+)\.(weight|bias)$")


def _require_torch(what):
    try:
        import torch  # noqa: PLC0415  (optional, heavy)
    except ImportError as exc:
        raise ConfigError(
            f"{what} needs PyTorch",
            expected="an importable torch package",
            got=str(exc),
            fix="pip install torch, or pass as_numpy=True to get NumPy arrays",
        ) from None
    return torch


def to_torch_state_dict(net, as_numpy=False):
    """The state_dict of the equivalent ``nn.Sequential`` (see the module docstring).

    Parameters
    ----------
    net : Network
    as_numpy : bool
        False (default): torch tensors, ready for ``load_state_dict``.
        True: NumPy arrays with the same keys and shapes (no torch needed).

    Returns
    -------
    OrderedDict
        ``{"0.weight": W0.T, "0.bias": b0, ...}``, weights ``(out, in)``,
        copies in the network's dtype.
    """
    torch = None if as_numpy else _require_torch("to_torch_state_dict")
    state = OrderedDict()
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            W = np.ascontiguousarray(backend.to_numpy(layer.weights).T)  # (in, out) -> torch's (out, in)
            b = np.array(backend.to_numpy(layer.biases))
            state[f"{i}.weight"] = W if torch is None else torch.from_numpy(W)
            state[f"{i}.bias"] = b if torch is None else torch.from_numpy(b)
    return state


def _as_array(value, key):
    """A torch tensor or array-like as a float NumPy array (bfloat16/float16 widened to float32)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(
            f"state_dict entry {key!r} is not an array",
            expected="a torch tensor or NumPy array",
            got=str(exc)[:120],
            fix="pass model.state_dict() of an nn.Sequential of Linear layers",
        ) from None
    if array.dtype.kind != "f":
        raise InvalidValueError(
            f"state_dict entry {key!r} is not floating point",
            expected="float16, bfloat16, float32 or float64",
            got=f"dtype {array.dtype}",
            fix="convert the tensors to float: {k: v.float() for k, v in state_dict.items()}",
        )
    if not np.isfinite(array).all():
        raise InvalidValueError(
            f"state_dict entry {key!r} contains NaN or infinity",
            expected="finite weights",
            got=f"{int((~np.isfinite(array)).sum())} non-finite values",
            fix="load weights from a model that trained without diverging",
        )
    return array


def _linear_params(state_dict, prefix):
    """Parse ``{prefix}N.weight`` / ``{prefix}N.bias`` keys into ``[(N, W, b), ...]`` sorted by N."""
    if not hasattr(state_dict, "items"):
        raise ConfigError(
            "a state_dict must be a mapping of names to tensors",
            expected="e.g. model.state_dict() of an nn.Sequential",
            got=type_name(state_dict),
            fix="pass model.state_dict(), or a dict like {'0.weight': ..., '0.bias': ...}",
        )
    found, unexpected = {}, []
    for key, value in state_dict.items():
        match = _KEY.match(key[len(prefix):]) if isinstance(key, str) and key.startswith(prefix) else None
        if match is None:
            unexpected.append(key)
        else:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = (key, value)
    if unexpected:
        nested = [k for k in unexpected if isinstance(k, str) and _KEY.match(k.split(".", 1)[-1])]
        hint = f"; for keys like {nested[0]!r} pass prefix={nested[0].split('.', 1)[0] + '.'!r}" if nested and not prefix else ""
        raise ConfigError(
            "the state_dict has keys that are not Linear weights or biases",
            expected=f"only '{prefix}N.weight' and '{prefix}N.bias' (an nn.Sequential of Linear layers and activations)",
            got=", ".join(map(repr, unexpected[:5])) + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""),
            fix="drop other modules' entries (normalization layers have no dialnet equivalent)" + hint,
        )
    if not found:
        raise ConfigError(
            "the state_dict holds no Linear layers",
            expected=f"keys like '{prefix}0.weight', '{prefix}0.bias'",
            got="an empty mapping",
            fix="pass model.state_dict() of a trained nn.Sequential",
        )
    params = []
    for index in sorted(found):
        entry = found[index]
        for part in ("weight", "bias"):
            if part not in entry:
                other = f"{prefix}{index}.{'bias' if part == 'weight' else 'weight'}"
                missing = f"{prefix}{index}.{part}"
                raise ConfigError(
                    f"the state_dict has {other!r} but no {missing!r}",
                    expected="a weight and a bias for every Linear layer",
                    got=f"only {other!r}",
                    fix=f"use nn.Linear(..., bias=True), or add a zero bias: sd['{prefix}{index}.bias'] = torch.zeros(out)"
                    if part == "bias" else "pass the complete state_dict",
                )
        (wkey, W), (bkey, b) = entry["weight"], entry["bias"]
        W, b = _as_array(W, wkey), _as_array(b, bkey)
        if W.ndim != 2 or b.ndim != 1 or b.shape[0] != W.shape[0] or 0 in W.shape:
            raise ShapeError(
                f"Linear layer {prefix}{index} has inconsistent shapes",
                expected="weight (out, in) and bias (out,) with out, in >= 1",
                got=f"weight {W.shape}, bias {b.shape}",
                fix="pass the state_dict of nn.Linear layers unchanged (torch stores weight as (out, in))",
            )
        params.append((index, W, b))
    for (i0, W0, _), (i1, W1, _) in zip(params, params[1:]):
        if W1.shape[1] != W0.shape[0]:
            raise ShapeError(
                f"Linear layers {prefix}{i0} and {prefix}{i1} do not fit together",
                expected=f"{prefix}{i1}.weight of shape (out, {W0.shape[0]}) after {W0.shape[0]} outputs",
                got=f"{prefix}{i1}.weight of shape {W1.shape}",
                fix="pass the complete state_dict of one network, in order",
            )
    return params


def from_torch_state_dict(state_dict, activation="relu", output="softmax", dtype=None, prefix="", class_names=None,
                          network_class=Network):
    """Build a dialnet network from the state_dict of an ``nn.Sequential`` of Linear layers.

    Parameters
    ----------
    state_dict : mapping
        ``{"0.weight": (out, in), "0.bias": (out,), "2.weight": ...}``; torch
        tensors or NumPy arrays. Linear layers are taken in index order.
    activation : str or list of str
        Hidden activation between Linear layers (one name, or one per gap),
        as in :func:`dialnet.mlp`. Adjacent indices (``0``, ``1``) mean no
        module between the layers: pass ``"identity"`` there.
    output : str
        Activation after the last Linear: ``"softmax"`` turns a torch
        classifier's logits (trained with ``nn.CrossEntropyLoss``) into
        certainties; ``"identity"`` keeps the raw outputs.
    dtype : {None, "float32", "float64"}
        None: float64 if every tensor is float64, else float32.
    prefix : str
        Key prefix to read, e.g. ``"net."`` or ``"module."`` (DataParallel).
    class_names : list of str, optional

    Returns
    -------
    Network
        Its Dense ``W`` is the torch ``weight`` transposed; the values are
        copied without rounding when the dtypes agree.
    """
    params = _linear_params(state_dict, prefix)
    if dtype is None:
        dtype = "float64" if all(W.dtype == np.float64 and b.dtype == np.float64 for _, W, b in params) else "float32"
    dtype = backend.resolve_dtype(dtype)
    n_hidden = len(params) - 1
    acts = [activation] * n_hidden if isinstance(activation, str) or not hasattr(activation, "__len__") else list(activation)
    if len(acts) != n_hidden:
        raise ConfigError(
            "one activation per hidden layer is needed",
            expected=f"{n_hidden} activation names (the state_dict has {len(params)} Linear layers)",
            got=repr(activation),
            fix="pass one name for all hidden layers, or a list with one per hidden layer",
        )
    if not isinstance(output, str) or output.lower() not in OUTPUTS:
        raise ConfigError(
            f"unknown output activation {output!r}",
            expected="one of " + ", ".join(OUTPUTS),
            got=repr(output),
            fix="use 'softmax' for a classifier's logits, 'identity' for raw outputs",
        )
    layers = []
    for k, (index, W, b) in enumerate(params):
        dense = Dense(W.shape[1], W.shape[0], seed=0, dtype=dtype)
        dense.weights[...] = backend.xp.asarray(W.T.astype(dtype))  # torch (out, in) -> dialnet (in, out)
        dense.biases[...] = backend.xp.asarray(b.astype(dtype))
        layers.append(dense)
        spec = acts[k] if k < n_hidden else output
        act = copy.deepcopy(spec) if isinstance(spec, Layer) else get_activation(spec)  # one instance per place
        if k < n_hidden and params[k + 1][0] == index + 1 and act.name != "identity":
            raise ConfigError(
                f"Linear layers {prefix}{index} and {prefix}{index + 1} are adjacent: no activation sits between them",
                expected=f"activation 'identity' for hidden layer {k}",
                got=repr(acts[k]),
                fix="pass a list of activations with 'identity' in that place",
            )
        if act.name == "softmax" and W.shape[0] == 1:
            raise ConfigError(
                "a softmax over one output is always 1",
                expected="at least 2 outputs for softmax",
                got=f"{prefix}{index}.weight of shape {W.shape}",
                fix="use output='sigmoid' for a one-logit (BCEWithLogitsLoss) model",
            )
        layers.append(act)
    return _with_class_names(network_class(layers, dtype=dtype), class_names)


def _with_class_names(net, class_names):
    if class_names is not None:
        names = [str(c) for c in class_names]
        if len(names) != net.n_outputs:
            raise ConfigError(
                "class_names do not match the output layer",
                expected=f"{net.n_outputs} names",
                got=f"{len(names)} names",
                fix="pass one name per output unit",
            )
        net.class_names = names
    return net


def to_torch_sequential(net):
    """The equivalent ``torch.nn.Sequential`` with this network's weights, in eval mode.

    Same dtype as the network; ``seq(torch.from_numpy(X))`` gives
    ``net.predict_proba(X)`` up to float rounding.
    """
    torch = _require_torch("to_torch_sequential")
    nn = torch.nn
    simple = {Sigmoid: nn.Sigmoid, Tanh: nn.Tanh, ReLU: nn.ReLU, Identity: nn.Identity}
    modules = []
    for i, layer in enumerate(net.layers):
        kind = type(layer)
        if kind is Dense:
            modules.append(nn.Linear(layer.n_in, layer.n_out, dtype=getattr(torch, net.dtype.name)))
        elif kind in simple:
            modules.append(simple[kind]())
        elif kind is LeakyReLU:
            modules.append(nn.LeakyReLU(layer.alpha))
        elif kind is Softmax:
            modules.append(nn.Softmax(dim=1))
        elif kind is Dropout:
            modules.append(nn.Dropout(layer.p))
        else:
            raise ConfigError(
                f"layer {i} ({type(layer).__name__}) has no torch equivalent here",
                expected="Dense, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, Identity or Dropout",
                got=type(layer).__module__ + "." + type(layer).__qualname__,
                fix="build the network from dialnet's own layers",
            )
    seq = nn.Sequential(*modules)
    seq.load_state_dict(to_torch_state_dict(net))
    return seq.eval()


def from_torch_sequential(module, dtype=None, class_names=None, network_class=Network):
    """Build a dialnet network from an ``nn.Sequential`` of Linear layers and activations.

    The activations are read from the modules themselves (Sigmoid, Tanh,
    ReLU, LeakyReLU, Softmax(dim=1 or -1), Identity, Dropout), so no names
    need passing. A Sequential that ends in Linear gets an Identity output.
    """
    torch = _require_torch("from_torch_sequential")
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise ConfigError(
            "from_torch_sequential needs an nn.Sequential",
            expected="torch.nn.Sequential(Linear, activation, ...)",
            got=type(module).__name__,
            fix="for other modules, pass module.state_dict() to dialnet.from_torch_state_dict",
        )
    simple = {nn.Sigmoid: Sigmoid, nn.Tanh: Tanh, nn.ReLU: ReLU, nn.Identity: Identity}
    known = (nn.Linear, nn.LeakyReLU, nn.Softmax, nn.Dropout, *simple)
    for i, child in enumerate(module):  # check the modules first: their names make the clearest message
        if type(child) not in known or (type(child) is nn.Softmax and child.dim not in (1, -1)):
            raise ConfigError(
                f"module {i} ({type(child).__name__}) has no dialnet equivalent",
                expected="Linear (with bias), Sigmoid, Tanh, ReLU, LeakyReLU, Softmax(dim=1), Identity or Dropout",
                got=repr(child)[:120],
                fix="rebuild the model from those modules, or load its Linear weights with from_torch_state_dict",
            )
    params = {index: (W, b) for index, W, b in _linear_params(module.state_dict(), "")}
    if dtype is None:
        dtype = "float64" if all(W.dtype == np.float64 for W, _ in params.values()) else "float32"
    dtype = backend.resolve_dtype(dtype)
    layers = []
    for i, child in enumerate(module):
        kind = type(child)
        if kind is nn.Linear:
            W, b = params[i]
            dense = Dense(W.shape[1], W.shape[0], seed=0, dtype=dtype)
            dense.weights[...] = backend.xp.asarray(W.T.astype(dtype))
            dense.biases[...] = backend.xp.asarray(b.astype(dtype))
            layers.append(dense)
        elif kind is nn.LeakyReLU:
            layers.append(LeakyReLU(child.negative_slope))
        elif kind is nn.Softmax:
            layers.append(Softmax())
        elif kind is nn.Dropout:
            layers.append(Dropout(child.p))
        else:
            layers.append(simple[kind]())
    if isinstance(layers[-1], Dense):  # a model that ends in Linear gives raw outputs
        layers.append(Identity())
    return _with_class_names(network_class(layers, dtype=dtype), class_names)


def save_torch_state_dict(net, path):
    """Write the state_dict as a ``.safetensors`` file (atomically; no torch, no pickle).

    PyTorch reads it with ``safetensors.torch.load_file(path)``, ready for
    ``seq.load_state_dict``; the dialnet architecture rides along in the
    file's metadata. Returns the path.
    """
    meta = network_metadata(net)
    meta["layout"] = "torch.nn.Sequential state_dict: weight (out, in)"
    atomic_write_bytes(path, pack(to_torch_state_dict(net, as_numpy=True), meta))  # ModelFileError on a bad path
    return path
