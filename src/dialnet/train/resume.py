"""Stopping and continuing a training run: the trainer's state into a checkpoint and back, and Ctrl-C.

:mod:`dialnet.files.checkpoint` owns the file (a model file plus training
state, written atomically, every field checked on reading). This module
decides what of the fit loop goes into it and puts it back: position in the
run (epoch, step, running loss and metrics), optimizer moments, random
generators (shuffle order, dropout masks), schedule and callback state, the
history, the epoch-start snapshot a divergence replay begins from, and a
fingerprint of the data and settings a resumed run must share. A run
resumed from it gives the same bits as one never interrupted.
"""

from __future__ import annotations

import math
import os
import signal
import threading

from .. import backend
from ..errors import ConfigError, TrainingInterrupted, type_name
from ..files import checkpoint as ckpt
from ..files.modelfile import network_metadata


def check_path(path, what):
    """``path`` as a str (None passes through), or a ConfigError naming ``what``."""
    if path is None:
        return None
    try:
        return os.fspath(path)
    except TypeError:
        raise ConfigError(
            f"{what} must be a file path",
            expected="a str or pathlib.Path",
            got=type_name(path),
            fix=f"pass {what}='run.ckpt.safetensors'",
        ) from None


def check_same_network(net, stored, path):
    mine, theirs = network_metadata(net), network_metadata(stored)
    if mine["architecture"] != theirs["architecture"] or mine["dtype"] != theirs["dtype"]:
        raise ConfigError(
            f"the checkpoint {path} holds a different network",
            expected=f"{'-'.join(map(str, net.sizes))} ({net.dtype.name}) like the network being trained",
            got=f"{'-'.join(map(str, stored.sizes))} ({stored.dtype.name})",
            fix="build the same network (sizes, activations, dropout, dtype) before resuming",
        )


def run_info(X, Y, Xv, Yv, batch_size, shuffle, loss, l2, W=None, Wv=None):
    """The settings a resumed run must share with the run that wrote the checkpoint, and a data fingerprint."""
    # sample weights join the fingerprint only when given, so checkpoints of unweighted runs keep theirs
    fingerprint = backend.array_digest(X, Y, Xv, Yv, *(a for a in (W, Wv) if a is not None))
    return {
        "n_samples": int(X.shape[0]),
        "n_validation": None if Xv is None else int(Xv.shape[0]),
        "batch_size": batch_size,
        "shuffle": bool(shuffle),
        "loss": loss.name,
        "l2": l2,
        "fingerprint": fingerprint,
    }


class SigintGuard:
    """While active (and asked for), Ctrl-C (SIGINT) and SIGTERM set ``hit`` instead of ending the process.

    SIGTERM is what a scheduler, ``docker stop`` or ``kill`` sends: it is
    handled like Ctrl-C (the step finishes, the checkpoint is written).
    ``signal_name`` says which came. A second signal raises at once.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, enabled):
        self.enabled = enabled
        self.hit = False
        self.signal_name = None
        self.previous = {}

    def _handler(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True
        self.signal_name = signal.Signals(signum).name

    def __enter__(self):
        self.installed = self.enabled and threading.current_thread() is threading.main_thread()
        if self.installed:
            for name in self.SIGNALS:
                number = getattr(signal, name)
                self.previous[number] = signal.getsignal(number)
                signal.signal(number, self._handler)
        return self

    def __exit__(self, *exc):
        if self.installed:
            for number, previous in self.previous.items():
                signal.signal(number, previous if previous is not None else signal.SIG_DFL)
        return False


def interrupted(trainer):
    """Ctrl-C or SIGTERM arrived: write a checkpoint and raise TrainingInterrupted."""
    path = save_checkpoint(trainer)
    how = getattr(trainer.interrupt, "signal_name", None) or "SIGINT"
    raise TrainingInterrupted(
        f"training interrupted ({how}) at epoch {trainer.epoch + 1}, step {trainer.step}; checkpoint saved to {path}; "
        f"resume with fit(..., resume={path!r})",
        checkpoint=path,
        epoch=trainer.epoch + 1,
        step=trainer.step,
        signal_name=how,
    )


def save_checkpoint(trainer):
    """Write where ``trainer`` stands to its checkpoint path (atomically); return the path."""
    opt = trainer.optimizer
    arrays = {f"optimizer.{k}": v for k, v in opt.state_arrays().items()}
    snapshot = None
    if trainer.epoch_started:  # mid-epoch: keep the epoch's start too, so a replay or retry after resuming begins there
        snap = trainer.snapshot
        arrays.update({f"snapshot.params.{i}": backend.to_numpy(p) for i, p in enumerate(snap["params"])})
        arrays.update({f"snapshot.optimizer.{k}": v for k, v in snap["optimizer"].items()})
        snapshot = {"t": snap["t"], "dropout_rng_states": snap["dropout"], "position": list(snap["position"])}
    callbacks = []
    for k, cb in enumerate(trainer.callbacks):
        state, cb_arrays = cb.checkpoint_state()
        callbacks.append({"type": type(cb).__name__, "state": state})
        arrays.update({f"callback.{k}.{name}": a for name, a in cb_arrays.items()})
    schedule = None
    if trainer.schedule is not None:
        schedule = {"name": type(trainer.schedule).__name__, "base_lr": trainer.schedule.base_lr,
                    "state": trainer.schedule.state()}
    state = {
        "epoch": trainer.epoch,
        "step": trainer.step,
        "global_step": trainer.global_step,
        "total": trainer.total,
        "metrics": trainer.metrics.state(),
        "retries": trainer.retries,
        "finished": trainer.finished,
        "train_time": trainer.train_time,
        "initial_rng_state": trainer.initial_rng_state,
        # the shuffle order of a part-done epoch is drawn again from the generator's state at its start
        "epoch_rng_state": trainer.epoch_rng_state if trainer.epoch_started else trainer.rng.bit_generator.state,
        "epoch_started": trainer.epoch_started,
        "snapshot": snapshot,
        "dropout_rng_states": [d.rng.bit_generator.state for d in trainer.dropouts],
        "optimizer": {"name": opt.name, "config": opt.config(), "t": opt.t, "lr": opt.lr, "initial_lr": opt.initial_lr},
        "schedule": schedule,
        "callbacks": callbacks,
        "history": trainer.history.to_state(),
        "run": trainer.run_info,
    }
    ckpt.save(trainer.checkpoint, trainer.net, state, arrays)
    return trainer.checkpoint


def load_checkpoint(trainer, stored, state, arrays, name):
    """Continue ``trainer`` from a checkpoint read by :func:`dialnet.files.checkpoint.load` (already type-checked)."""
    _check_same_run(trainer, state, name)
    opt = trainer.optimizer
    saved = state["optimizer"]
    if len(state["dropout_rng_states"]) != len(trainer.dropouts):
        raise ckpt.bad(name, "its dropout generator states do not match the network", str(len(trainer.dropouts)),
                       str(len(state["dropout_rng_states"])))

    params_np = [backend.to_numpy(p) for p in trainer.params]
    slots = ckpt.check_arrays_like(arrays, "optimizer.", params_np, name)
    trainer.net.set_weights(stored.copy_weights())
    opt.load_state_arrays(slots, saved["t"])
    opt.lr, opt.initial_lr = float(saved["lr"]), float(saved["initial_lr"])
    saved_schedule = state["schedule"]
    if trainer.schedule is not None:
        trainer.schedule.base_lr = float(saved_schedule["base_lr"])
        try:
            trainer.schedule.load_state(saved_schedule["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ckpt.bad(name, f"its schedule state is invalid ({exc})") from None
    for k, (cb, saved_cb) in enumerate(zip(trainer.callbacks, state["callbacks"])):
        prefix = f"callback.{k}."
        cb.restore_state(saved_cb["state"], {key[len(prefix):]: a for key, a in arrays.items() if key.startswith(prefix)},
                         trainer.net)
    for d, s in zip(trainer.dropouts, state["dropout_rng_states"]):
        d.rng = ckpt.make_generator(s, name, "a dropout generator")
    trainer.rng = ckpt.make_generator(state["epoch_rng_state"], name, "the shuffle generator")
    trainer.initial_rng_state = state["initial_rng_state"]
    trainer.epoch, trainer.step, trainer.global_step = state["epoch"], state["step"], state["global_step"]
    trainer.total, trainer.retries = float(state["total"]), state["retries"]
    # a checkpoint from before the running metrics existed: the resumed epoch's metrics cover the rows after it
    trainer.metrics.load_state(state.get("metrics"), trainer.step * trainer.batch_size)
    trainer.finished, trainer.train_time = state["finished"], float(state["train_time"])
    if trainer.step > trainer.n_steps:
        raise ckpt.bad(name, "its step is past the end of the epoch", f"at most {trainer.n_steps}", str(trainer.step))
    if state.get("epoch_started"):
        trainer.resumed_snapshot = _load_snapshot(trainer, state.get("snapshot"), arrays, params_np, name)
    trainer.history.load_state(state["history"])


def _check_same_run(trainer, state, name):
    """Refuse a checkpoint of a run with other data or settings than ``trainer``'s."""
    mismatch = [k for k, v in trainer.run_info.items() if state["run"].get(k) != v]
    if mismatch:
        k = mismatch[0]
        what = "the training data" if k == "fingerprint" else k
        raise ConfigError(
            f"cannot resume from {name}: {what} differs from the run that wrote it",
            expected=f"{k} = {state['run'].get(k)!r}",
            got=repr(trainer.run_info[k]),
            fix="resume with the same data, batch_size, shuffle, loss, l2 and validation setting, or start again without resume",
        )
    opt = trainer.optimizer
    saved = state["optimizer"]
    mine = {k: v for k, v in opt.config().items() if k != "lr"}
    theirs = {k: v for k, v in saved["config"].items() if k != "lr"}
    if saved["name"] != opt.name or mine != theirs:
        raise ConfigError(
            f"cannot resume from {name}: the optimizer differs from the run that wrote it",
            expected=f"{saved['name']} with {theirs}",
            got=f"{opt.name} with {mine}",
            fix="pass the same optimizer settings as the interrupted run",
        )
    mine_lr, their_lr = getattr(opt, "initial_lr", None), saved.get("initial_lr")
    if mine_lr is not None and their_lr is not None and not math.isclose(float(mine_lr), float(their_lr), rel_tol=1e-12):
        raise ConfigError(
            f"cannot resume from {name}: the learning rate differs from the run that wrote it",
            expected=f"lr {float(their_lr):g} (the checkpoint's; it continues with its own schedule)",
            got=f"lr {float(mine_lr):g}",
            fix=f"resume with lr={float(their_lr):g} (--lr {float(their_lr):g}), or start a new run with the new "
            "learning rate without resume",
        )
    schedule_name = type(trainer.schedule).__name__ if trainer.schedule is not None else None
    saved_schedule = state["schedule"]
    if schedule_name != (saved_schedule or {}).get("name"):
        raise ConfigError(
            f"cannot resume from {name}: the learning-rate schedule differs from the run that wrote it",
            expected=repr((saved_schedule or {}).get("name")),
            got=repr(schedule_name),
            fix="pass the same lr_schedule as the interrupted run",
        )
    kinds = [type(cb).__name__ for cb in trainer.callbacks]
    if kinds != [cb["type"] for cb in state["callbacks"]]:
        raise ConfigError(
            f"cannot resume from {name}: the callbacks differ from the run that wrote it",
            expected=repr([cb["type"] for cb in state["callbacks"]]),
            got=repr(kinds),
            fix="pass the same callbacks and early_stopping as the interrupted run",
        )


def _load_snapshot(trainer, snap, arrays, params_np, name):
    ok = (
        isinstance(snap, dict)
        and isinstance(snap.get("t"), int)
        and isinstance(snap.get("dropout_rng_states"), list)
        and len(snap["dropout_rng_states"]) == len(trainer.dropouts)
        and isinstance(snap.get("position"), list)
        and len(snap["position"]) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in snap["position"])
    )
    params = ckpt.check_arrays_like(arrays, "snapshot.params.", params_np, name) if ok else {}
    if not ok or len(params) != len(params_np):
        raise ckpt.bad(name, "its epoch-start snapshot is missing or invalid", "t, dropout states, position and the weights")
    for s in snap["dropout_rng_states"]:
        ckpt.make_generator(s, name, "a dropout generator")  # check it before it is needed
    step, total, global_step = snap["position"]
    return {
        "params": [backend.xp.asarray(params[str(i)]).copy() for i in range(len(params_np))],
        "optimizer": ckpt.check_arrays_like(arrays, "snapshot.optimizer.", params_np, name),
        "t": snap["t"],
        "dropout": snap["dropout_rng_states"],
        "position": (int(step), float(total), int(global_step)),
        "metrics": None,  # the snapshot is taken at the start of an epoch: nothing counted yet
    }
