"""Checkpoints: everything needed to continue training to the same bits, in one file.

A checkpoint is a dialnet model file (so ``dialnet.load`` and every command
that takes a model read it too) with two additions:

- tensors named ``checkpoint.*``: the optimizer's moments
  (``checkpoint.optimizer.{i}.{slot}``) and callbacks' arrays such as the
  early-stopping best weights (``checkpoint.callback.{k}.{name}``);
- a ``"checkpoint"`` entry in the metadata: where training stands (epoch,
  step within the epoch, global step, the epoch's running loss and
  metrics so far), the shuffle generator's state at the
  start of the epoch (so the epoch's order is drawn again, identically),
  every Dropout generator's state, the learning rate and schedule state,
  callback state, the history so far, and a fingerprint of the data and
  settings it must be resumed with.

Files are written by :func:`dialnet.files.modelfile.atomic_write_bytes` (temp file,
fsync, rename), so a crash or SIGKILL leaves the previous checkpoint or the
new one, never half of one. Reading goes through the hardened model loader
and then checks every checkpoint field before anything is applied.
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import modelfile
from ..errors import ModelFileError

CHECKPOINT_VERSION = 1
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def save(path, net, state: dict, arrays: dict):
    """Write ``net``'s dials, the JSON-able training ``state`` and extra ``arrays`` to ``path``, atomically."""
    tensors = modelfile.network_tensors(net)
    for key, arr in arrays.items():
        tensors[modelfile.CHECKPOINT_PREFIX + key] = np.asarray(arr)
    meta = modelfile.network_metadata(net)
    meta["checkpoint"] = {"version": CHECKPOINT_VERSION, **state}
    modelfile.atomic_write_bytes(path, modelfile.pack(tensors, meta))
    return path


def load(path):
    """Read a checkpoint: return ``(net, state, arrays)``, every field checked.

    ``net`` is the network stored in it; ``state`` the training state dict
    (see :func:`check_state`); ``arrays`` the ``checkpoint.*`` tensors with
    that prefix removed. Only ``ModelFileError`` escapes on a bad file.
    """
    name = modelfile._fspath(path, "resume")
    if not os.path.lexists(name):
        raise ModelFileError(
            f"checkpoint {name} does not exist",
            expected="the file written by fit(checkpoint=...) or `dialnet train --checkpoint`",
            got=name,
            fix="pass the checkpoint path of the interrupted run, or leave resume out to start afresh",
        )
    tensors, meta = modelfile.read_file(name)
    state = meta.get("checkpoint")
    if not isinstance(state, dict):
        raise bad(name, "it is a model file, not a training checkpoint", "a file written by fit(checkpoint=...)", "no checkpoint entry")
    net = modelfile.build_network(tensors, meta, name)
    check_state(state, name)
    arrays = {k[len(modelfile.CHECKPOINT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(modelfile.CHECKPOINT_PREFIX)}
    return net, state, arrays


def bad(name, what, expected=None, got=None):
    return ModelFileError(
        f"{name} is not a usable checkpoint: {what}",
        expected=expected,
        got=got,
        fix="resume from a checkpoint written by this run (fit(checkpoint=...) or `dialnet train --checkpoint`), or start again without resume",
    )


def _is_int(value, low=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _need(state, key, ok, name, expected):
    value = state.get(key)
    if not ok(value):
        raise bad(name, f"its {key!r} entry is invalid", expected, modelfile._short(value))
    return value


def check_state(state, name="<checkpoint>"):
    """Check the types and ranges of every field of a checkpoint's state dict."""
    version = state.get("version")
    if not _is_int(version, 1) or version > CHECKPOINT_VERSION:
        raise bad(name, "its checkpoint version is not one this dialnet can read", f"1..{CHECKPOINT_VERSION}", modelfile._short(version))
    for key in ("epoch", "step", "global_step", "retries"):
        _need(state, key, _is_int, name, "a whole number >= 0")
    _need(state, "finished", lambda v: isinstance(v, bool), name, "true or false")
    _need(state, "total", lambda v: _is_number(v) and math.isfinite(v), name, "a finite number")
    _need(state, "train_time", lambda v: _is_number(v) and v >= 0, name, "a number >= 0")
    metrics = state.get("metrics")  # absent in checkpoints written before the running training metrics
    if metrics is not None and not (
        isinstance(metrics, dict)
        and _is_int(metrics.get("rows"))
        and _is_int(metrics.get("correct"))
        and _is_int(metrics.get("certainty_units"))
    ):
        raise bad(name, "its running metrics are invalid", "whole numbers rows, correct and certainty_units",
                  modelfile._short(metrics))
    for key in ("initial_rng_state", "epoch_rng_state"):
        _need(state, key, lambda v: isinstance(v, dict), name, "a generator state")
    _need(state, "dropout_rng_states", lambda v: isinstance(v, list) and all(isinstance(s, dict) for s in v), name, "a list of generator states")
    opt = _need(state, "optimizer", lambda v: isinstance(v, dict), name, "an object")
    ok = (
        isinstance(opt.get("name"), str)
        and isinstance(opt.get("config"), dict)
        and _is_int(opt.get("t"))
        and all(_is_number(opt.get(k)) and math.isfinite(opt[k]) and opt[k] > 0 for k in ("lr", "initial_lr"))
    )
    if not ok:
        raise bad(name, "its optimizer entry is invalid", "name, config, t, lr, initial_lr", modelfile._short(opt))
    schedule = state.get("schedule")
    if schedule is not None and not (
        isinstance(schedule, dict)
        and isinstance(schedule.get("name"), str)
        and _is_number(schedule.get("base_lr"))
        and isinstance(schedule.get("state"), dict)
    ):
        raise bad(name, "its schedule entry is invalid", "name, base_lr, state", modelfile._short(schedule))
    callbacks = _need(state, "callbacks", lambda v: isinstance(v, list), name, "a list")
    for cb in callbacks:
        if not (isinstance(cb, dict) and isinstance(cb.get("type"), str) and isinstance(cb.get("state"), dict)):
            raise bad(name, "a callback entry is invalid", "type and state", modelfile._short(cb))
    run = _need(state, "run", lambda v: isinstance(v, dict), name, "an object")
    if not isinstance(run.get("fingerprint"), str):
        raise bad(name, "its data fingerprint is missing", "a string", modelfile._short(run.get("fingerprint")))
    hist = _need(state, "history", lambda v: isinstance(v, dict), name, "an object")
    series = hist.get("history")
    epochs = hist.get("epochs")
    ok = (
        isinstance(series, dict)
        and all(isinstance(v, list) and len(v) <= len(epochs or []) and all(_is_number(x) for x in v) for v in series.values())
        and isinstance(epochs, list)
        and all(_is_int(e) for e in epochs)
        and (hist.get("stop_reason") is None or isinstance(hist.get("stop_reason"), str))
        and all(hist.get(k) is None or _is_int(hist.get(k)) for k in ("stopped_epoch", "best_epoch"))
        and isinstance(hist.get("divergences", []), list)
    )
    if not ok:
        raise bad(name, "its history entry is invalid", "per-epoch lists of numbers", modelfile._short(hist))
    return state


def generator_state(rng) -> dict:
    """A generator's state as a JSON-able dict (``rng.bit_generator.state``)."""
    return rng.bit_generator.state


def make_generator(state, name="<checkpoint>", what="a random generator"):
    """Rebuild a ``numpy.random.Generator`` from :func:`generator_state`, refusing anything odd."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise bad(name, f"the state of {what} names an unknown bit generator", "one of " + ", ".join(_BIT_GENERATORS), modelfile._short(kind))
    try:
        bitgen = getattr(np.random, kind)()
        bitgen.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise bad(name, f"the state of {what} is invalid ({exc})", "a state saved by numpy", modelfile._short(state)) from None
    return np.random.Generator(bitgen)


def check_arrays_like(arrays: dict, prefix: str, reference: list, name="<checkpoint>"):
    """The arrays under ``prefix`` as ``{index: array}``, each as shaped and typed as ``reference[index]``."""
    out = {}
    for key, arr in arrays.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        head = rest.split(".", 1)[0]
        if not head.isdigit() or int(head) >= len(reference):
            raise bad(name, f"tensor {modelfile._short(key)} does not belong to this network", f"indices 0..{len(reference) - 1}", modelfile._short(key))
        ref = reference[int(head)]
        if tuple(arr.shape) != tuple(ref.shape) or arr.dtype != ref.dtype:
            raise bad(name, f"tensor {modelfile._short(key)} has the wrong shape or dtype", f"{tuple(ref.shape)} {ref.dtype}", f"{tuple(arr.shape)} {arr.dtype}")
        if not np.isfinite(arr).all():
            raise bad(name, f"tensor {modelfile._short(key)} contains NaN or infinity", "finite numbers", "non-finite values")
        out[rest] = arr
    return out
