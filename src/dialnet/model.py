"""The network users hold: the core :class:`~dialnet.core.network.Network` plus training, files and export.

``core`` knows only the math (forward, backprop, predict); training lives in
``train``, model files and torch exchange in ``files``, and each of those
imports ``core``. So the methods that reach up into them are added here, one
layer above all three, as plain functions of the network: ``net.fit(...)``
*is* :func:`dialnet.train.loop.fit` with ``net`` as its first argument (same
signature, same docs), and nothing below imports this module.

Every constructor a user calls (``dialnet.Network``, ``dialnet.mlp``,
``dialnet.load``, ``dialnet.from_torch_state_dict``) returns this class.
"""

from __future__ import annotations

from .core import network as _core
from .files import modelfile
from .files import torch as _torch
from .train import evaluate_network, fit


class Network(_core.Network):
    __doc__ = _core.Network.__doc__

    fit = fit
    evaluate = evaluate_network
    save = modelfile.save
    to_torch_state_dict = _torch.to_torch_state_dict


def mlp(sizes, activation="relu", output="softmax", dtype="float32", seed=None, init="auto", dropout=0.0, device=None):
    return _core.mlp(sizes, activation, output, dtype, seed, init, dropout, network_class=Network, device=device)


def load(path):
    """Load a model file (or a checkpoint) saved by ``net.save``; it predicts the same bits."""
    return modelfile.load(path, network_class=Network)


def from_torch_state_dict(state_dict, activation="relu", output="softmax", dtype=None, prefix="", class_names=None):
    return _torch.from_torch_state_dict(state_dict, activation, output, dtype, prefix, class_names, network_class=Network)


def from_torch_sequential(module, dtype=None, class_names=None):
    return _torch.from_torch_sequential(module, dtype, class_names, network_class=Network)


mlp.__doc__ = _core.mlp.__doc__
from_torch_state_dict.__doc__ = _torch.from_torch_state_dict.__doc__
from_torch_sequential.__doc__ = _torch.from_torch_sequential.__doc__
