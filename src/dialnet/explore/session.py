"""One explored training run: the data, the network, the training thread, and what the page reads.

:class:`Explorer` loads and prepares the data the way ``dialnet train`` does
(:func:`dialnet.workflow.prepare_data`, the same recipes), builds the network
from the recipe, and trains it in a background thread through the library's
own ``Network.fit``. The page steers it through :meth:`Explorer.control` (a
:class:`~dialnet.explore.gate.StepGate` on the optimizer's step) and reads:

- :meth:`state`: step, epoch, running, last loss, validation accuracy, lr ...;
- :meth:`snapshot`: the dials and their gradients as one float32 array,
  published by the training thread at most every ``tick`` seconds, so a slow
  page reads the latest and nothing queues;
- :meth:`evaluation`, :meth:`trace_sample` (in :mod:`.views`): test
  predictions, confusion matrix, gradient norms with the doctor's flags, one
  sample's activations and deltas. They run on a *viewer* copy of the network
  set to the latest snapshot, never on the network being trained.
"""

from __future__ import annotations

import collections
import copy
import math
import os
import threading
import time
from dataclasses import replace

import numpy as np

from .. import backend
from ..core.losses import get_loss
from ..errors import ConfigError, DataError, DialnetError, InvalidValueError, ModelFileError
from ..files.onnx import export_onnx
from ..train import Callback
from ..workflow import DATA_DEFAULTS, DEMO, load_dataset, prepare_data
from .gate import EPOCH, PAUSED, PLAY, Close, LossTap, Reset, StepGate

ACTIONS = ("play", "pause", "step", "epoch", "reset", "set_lr", "set_speed")
# How long a control request waits for the training thread to reach the state it asked for.
SETTLE_SECONDS = 10.0


def finite(value):
    """A float for JSON, or None when it is missing, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class Snapshot:
    """The dials and their gradients at one moment: ``params`` and ``grads`` flat, in ``Network.parameters()`` order."""

    def __init__(self, version, step, params, grads):
        self.version, self.step, self.params, self.grads = version, step, params, grads
        self._bytes = None

    def to_bytes(self) -> bytes:
        """``params`` then ``grads``, little-endian float32 (what ``GET /api/snapshot`` sends)."""
        if self._bytes is None:
            self._bytes = np.concatenate([self.params, self.grads]).astype("<f4").tobytes()
        return self._bytes


def _flat(arrays):
    flat = getattr(arrays, "flat", None)
    if flat is not None:
        return backend.to_numpy(flat).copy()
    return np.concatenate([backend.to_numpy(a).ravel() for a in arrays])


class _Watch(Callback):
    """Records every epoch's logs and lets "one epoch" pause at its end."""

    def __init__(self, explorer):
        self.explorer = explorer

    def on_epoch_end(self, epoch, logs, net):
        self.explorer._epoch_done(logs)
        return False


class Explorer:
    """A network training on a data set in a background thread, steered and watched by the explore page.

    Parameters
    ----------
    data : str, list of str or Dataset, optional
        As for :func:`dialnet.train_model`; None: the bundled mnist-10k digits
        and the articles' 625-20-20-10 demo network.
    recipe : Recipe, optional
        Default ``DEMO`` without ``data``, ``DATA_DEFAULTS`` with it.
    image_size, target, task, cache, test_split, limit :
        How to read and split ``data`` (as for ``dialnet train``).
    class_weight : "balanced" or dict, optional
        Passed to ``Network.fit`` (``--class-weight balanced``; classification only).
    out, onnx_out : str
        Where the page's "save model" and "export ONNX" write (nothing is
        written until the page asks).
    tick : float
        Seconds between snapshots while training runs at full speed.

    The run starts paused on freshly initialized dials (call :meth:`start`
    first); ``control("play")`` trains.
    """

    def __init__(self, data=None, recipe=None, *, image_size=25, target=None, task="auto", cache=None, test_split=0.2,
                 limit=None, class_weight=None, out="model.safetensors", onnx_out="model.onnx", tick=0.04, log=None):
        log = log or (lambda _line: None)
        self.recipe = recipe if recipe is not None else (DEMO if data is None else DATA_DEFAULTS)
        self.sources = [str(s) for s in ([data] if isinstance(data, (str, os.PathLike)) else list(data or []))
                        if isinstance(s, (str, os.PathLike)) and os.path.exists(s)]
        ds = load_dataset(data, image_size=image_size, target=target, task=task, cache=cache)
        for line in ds.notes:
            log(f"Note: {line}")
        self.dataset = ds
        self.prepared = prepare_data(ds, scale=self.recipe.scale, test_split=test_split, limit=limit, seed=self.recipe.seed,
                                     dtype=self.recipe.dtype)
        if len(self.prepared.X_train) < 2:
            raise DataError("too few training samples", expected="at least 2", got=str(len(self.prepared.X_train)),
                            fix="use more data or a larger --limit")
        for line in self.prepared.notes:
            log(f"Note: {line}")
        self.regression = ds.task == "regression"
        self.n_outputs = 1 if self.regression else ds.n_classes
        self.out, self.onnx_out = str(out), str(onnx_out)
        self._check_outputs()
        self.seed = self.recipe.seed
        self.gate = StepGate(self._publish, self._flush, tick=tick)
        self.net = self._build(self.seed)
        self.fit_kw = self._fit_options()
        if class_weight is not None:
            if self.regression:
                raise ConfigError("class weights apply to classification only", expected="class labels",
                                  got=f"a regression target ({ds.target!r})", fix="drop --class-weight")
            self.fit_kw["class_weight"] = class_weight
        if not hasattr(self.fit_kw["optimizer"], "step"):
            raise ConfigError("dialnet explore steps through mini-batches, one optimizer step at a time",
                              expected="a step-wise optimizer (adam, adamw, rmsprop, sgd)",
                              got=f"optimizer {self.recipe.optimizer!r} (full batch)", fix="pass --optimizer adam")
        log(self.prepared.describe())
        log(self.recipe.describe(self.net, self.fit_kw))
        self.viewer = copy.deepcopy(self.net)
        self.viewer.preprocessing = self.prepared.preprocessor
        self.viewer.class_names = None if self.regression else list(ds.class_names)
        self.view_lock = threading.Lock()
        self.viewer_version = -1
        self.views = {}  # what views.py caches, keyed by name
        self._reset_records()
        self._snapshot = Snapshot(0, 0, _flat(self.net.parameters()), np.zeros_like(_flat(self.net.gradients())))
        self._version = 0
        self.thread = None
        self.saved = []  # paths the page asked to write
        self.error = None
        self.finished = False
        self.stop_reason = None
        self.optimizer = self.schedule = None
        self.run_id = 0

    # ------------------------------------------------------------ building

    def _build(self, seed):
        return replace(self.recipe, seed=seed).build_network(self.prepared.X_train.shape[1], self.n_outputs, self.dataset.task)

    def _fit_options(self):
        # stepwise: the recipe's "auto" optimizer picks Adam, never full-batch L-BFGS, which has no step to pause at
        return self.recipe.fit_options(len(self.prepared.X_train), self.dataset.task, stepwise=True)

    def _reset_records(self):
        self.loss_points = []  # (step, mean training loss over the steps since the previous point)
        self.epoch_logs = []  # one dict per finished epoch: epoch, step, and fit's logs
        self.divergences = []
        self.epochs_done = 0
        self.rates = collections.deque(maxlen=25)  # (time, step) at each flush: steps/s

    def _check_outputs(self):
        for path in (self.out, self.onnx_out):
            for source in self.sources:
                same = os.path.exists(path) and os.path.samefile(path, source)
                if same or os.path.abspath(path) == os.path.abspath(source):
                    raise ConfigError("an output path is one of the input files", expected="a new file name",
                                      got=f"{path} (also the data {source})", fix="pass --out model.safetensors")

    # ------------------------------------------------------ the train thread

    def start(self):
        """Start the training thread: it builds the run and waits, paused, before the first step."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._main, name="dialnet-explore-train", daemon=True)
            self.thread.start()
            self.gate.wait_until(lambda: self.gate.waiting, SETTLE_SECONDS)
        return self

    def close(self, timeout=10.0):
        """Stop training for good and wait for the thread."""
        self.gate.request(Close)
        if self.thread is not None:
            self.thread.join(timeout)

    def _main(self):
        first = True
        while True:
            try:
                self._new_run(first)
                first = False
                self._fit(self.fit_kw)
                while True:
                    self.gate.wait_for_go()
                    # the user asks for more after a stopping rule fired: go on, without the rules
                    self._fit(dict(self.fit_kw, target_certainty=None, early_stopping=None))
            except Reset:
                continue
            except Close:
                return
            except Exception as exc:  # noqa: BLE001  (shown on the page; the thread waits for a reset)
                self.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, DialnetError) else str(exc)
                self.finished = True
                self.gate.end_of_run(self.net.parameters(), self.net.gradients())
                try:
                    while True:
                        self.gate.wait_for_go()
                        self.gate.end_of_run(self.net.parameters(), self.net.gradients())
                except Reset:
                    continue
                except Close:
                    return

    def _new_run(self, first):
        if not first:
            self.net = self._build(self.seed)
        self._reset_records()
        self.error, self.finished, self.stop_reason = None, False, None
        self.optimizer = self.schedule = None
        self.run_id += 1
        self.gate.started()

    def _fit(self, kw):
        kw = dict(kw)
        loss = get_loss(kw.pop("loss")) if kw.get("loss") else self.net.default_loss()
        tap = LossTap(loss)
        if self.optimizer is None:  # a new run: a fresh optimizer and schedule; going on after a stop keeps them
            fresh = self._fit_options()
            self.optimizer, self.schedule = fresh["optimizer"], fresh["lr_schedule"]
            self.gate.wrap(self.optimizer, tap)
        else:
            self.gate.tap = tap
        kw.update(optimizer=self.optimizer, lr_schedule=self.schedule, loss=loss)
        self.finished = False
        self.stop_reason = None
        history = self.net.fit(self.prepared.X_train, self.prepared.y_train, callbacks=[_Watch(self)], progress=False,
                               on_divergence="stop", **kw)
        self.divergences.extend(history.divergences)
        self.stop_reason = history.stop_reason
        self.finished = True
        self.gate.end_of_run(self.net.parameters(), self.net.gradients())

    def _publish(self, params, grads):
        self._version += 1
        self._snapshot = Snapshot(self._version, self.gate.steps, _flat(params), _flat(grads))

    def _flush(self, steps, loss_sum, n):
        self.loss_points.append((steps, finite(loss_sum / n)))
        self.rates.append((time.perf_counter(), steps))

    def _epoch_done(self, logs):
        self.epochs_done += 1
        entry = {"epoch": self.epochs_done, "step": self.gate.steps}
        entry.update({k: finite(v) for k, v in logs.items()})
        self.epoch_logs.append(entry)
        self.gate.epoch_ended()

    # ------------------------------------------------------------- control

    def control(self, action, lr=None, seed=None, steps_per_second=None) -> dict:
        """Do one of ``ACTIONS`` and return the new :meth:`state` (a step or a pause first takes effect)."""
        gate = self.gate
        if action == "play":
            gate.set_mode(PLAY)
        elif action == "epoch":
            gate.set_mode(EPOCH)
        elif action == "pause":
            gate.set_mode(PAUSED)
            gate.wait_until(lambda: gate.waiting, SETTLE_SECONDS)
        elif action == "step":
            target = gate.grant(1)
            gate.wait_until(lambda: gate.steps >= target and gate.waiting or self.error is not None, SETTLE_SECONDS)
        elif action == "reset":
            self.seed = self.seed + 1 if seed is None else _whole(seed, "seed")
            run = self.run_id
            gate.set_mode(PAUSED)
            gate.request(Reset)
            gate.wait_until(lambda: self.run_id != run and gate.waiting, SETTLE_SECONDS)
        elif action == "set_lr":
            value = _positive(lr, "lr")
            if self.optimizer is not None:
                self.optimizer.lr = value
            if self.schedule is not None and hasattr(self.schedule, "base_lr"):
                self.schedule.base_lr = value
        elif action == "set_speed":
            value = 0.0 if steps_per_second in (None, 0, "0", "full") else _positive(steps_per_second, "steps_per_second")
            gate.set_delay(0.0 if not value else 1.0 / value)
        else:
            raise ConfigError(f"unknown action {action!r}", expected="one of " + ", ".join(ACTIONS), got=repr(action),
                              fix='send {"action": "play"}')
        return self.state()

    # --------------------------------------------------------------- reads

    @property
    def n_fit(self):
        n = len(self.prepared.X_train)
        return n - int(round(n * (self.fit_kw["validation_split"] or 0.0)))

    @property
    def steps_per_epoch(self):
        return -(-self.n_fit // self.fit_kw["batch_size"])

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def steps_per_second(self) -> float:
        if self.gate.mode == PAUSED and self.gate.waiting:
            return 0.0
        rates = list(self.rates)
        if len(rates) < 2 or time.perf_counter() - rates[-1][0] > 1.0:
            return 0.0
        (t0, s0), (t1, s1) = rates[0], rates[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def state(self) -> dict:
        """What ``GET /api/state`` answers (JSON-able)."""
        gate, last = self.gate, (self.epoch_logs[-1] if self.epoch_logs else {})
        loss = self.loss_points[-1][1] if self.loss_points else None
        lr = self.optimizer.lr if self.optimizer is not None else self.recipe.learning_rate
        since_epoch = gate.steps - (last.get("step", 0) if last else 0)
        return {
            "step": gate.steps,
            "epoch": self.epochs_done,
            "running": gate.mode != PAUSED and not (self.finished and gate.waiting),
            "mode": gate.mode,
            "loss": loss,
            "val_loss": last.get("val_loss"),
            "val_accuracy": last.get("val_accuracy"),
            "accuracy": last.get("accuracy"),
            "lr": finite(lr),
            "seed": self.seed,
            "run": self.run_id,
            "finished": bool(self.finished),
            "stop_reason": self.stop_reason,
            "error": self.error,
            "snapshot": self._snapshot.version,
            "steps_per_second": round(self.steps_per_second(), 1),
            "steps_per_epoch": self.steps_per_epoch,
            "epoch_progress": min(1.0, since_epoch / self.steps_per_epoch),
            "steps_per_second_limit": (1.0 / gate.delay) if gate.delay else None,
            "curve_points": len(self.loss_points),
            "epochs_logged": len(self.epoch_logs),
            "divergences": len(self.divergences),
            "saved": list(self.saved),
        }

    def curves(self, since=0, epochs_since=0) -> dict:
        """The loss points from index ``since`` and the epoch logs from index ``epochs_since``."""
        points, logs = self.loss_points, self.epoch_logs
        since, epochs_since = max(0, int(since)), max(0, int(epochs_since))
        return {"run": self.run_id, "points": points[since:], "next": len(points), "epochs": logs[epochs_since:],
                "epochs_next": len(logs)}

    # ----------------------------------------------------- the viewer copy

    def viewer_at(self, snap=None):
        """The viewer network set to ``snap`` (default: the latest snapshot); call with ``view_lock`` held."""
        snap = snap or self._snapshot
        if self.viewer_version != snap.version:
            params = self.viewer.parameters()
            offset = 0
            for p in params:
                p[...] = backend.xp.asarray(snap.params[offset:offset + p.size].reshape(p.shape), dtype=p.dtype)
                offset += p.size
            self.viewer.task, self.viewer.loss = self.net.task, self.net.loss
            self.viewer_version = snap.version
        return self.viewer

    # ---------------------------------------------------------------- save

    def metadata(self) -> dict:
        history = {}
        for entry in self.epoch_logs:
            for key, value in entry.items():
                if key not in ("epoch", "step"):
                    history.setdefault(key, []).append(value)
        return {"data": self.dataset.name, "epochs": self.epochs_done, "steps": self.gate.steps, "seed": self.seed,
                "stop_reason": self.stop_reason or f"saved from dialnet explore at step {self.gate.steps}",
                "history": history}

    def save(self, what="model") -> str:
        """Write the latest snapshot's network: ``what="model"`` to ``out`` (safetensors), ``"onnx"`` to ``onnx_out``."""
        if what not in ("model", "onnx"):
            raise ConfigError(f"unknown save format {what!r}", expected="'model' or 'onnx'", got=repr(what),
                              fix='send {"format": "model"}')
        self._check_outputs()
        path = self.out if what == "model" else self.onnx_out
        with self.view_lock:
            net = copy.deepcopy(self.viewer_at())
        net.clear_cache()
        try:
            if what == "model":
                net.save(path, extra_metadata=self.metadata())
            else:
                export_onnx(net, path)
        except OSError as exc:
            raise ModelFileError(f"cannot write {path}", expected="a writable path", got=str(exc),
                                 fix="pass another --out / --onnx-out to dialnet explore") from None
        self.saved.append(path)
        return path


def _positive(value, name):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (math.isfinite(number) and number > 0):
        raise InvalidValueError(f"{name} must be a number > 0", expected="e.g. 0.001", got=repr(value),
                                fix=f'send {{"action": "set_lr", "{name}": 0.001}}')
    return number


def _whole(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError(f"{name} must be a whole number >= 0", expected="e.g. 1", got=repr(value),
                                fix=f'send {{"action": "reset", "{name}": 1}}')
    return value
