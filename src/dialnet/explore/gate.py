"""The gate every optimizer step of an explored run passes: play, pause, one step, one epoch, stop.

``fit`` calls ``optimizer.step(params, grads)`` exactly once per mini-batch,
after the batch's forward and backward passes and before the dials turn. The
gate wraps that one call on the run's optimizer instance, so the library's
own ``fit`` trains, unchanged, while the page steers it:

- ``before`` blocks while the run is paused (the dials hold still, the
  pending batch's gradients wait beside them), lets one step through for
  "step", and raises the run's :class:`Stop` for "reset" or "close";
- ``after`` counts the step and its loss (read from a :class:`LossTap` on the
  run's loss), and every ``tick`` seconds the gate publishes: it flushes the
  loss chunk to the curve and hands the dials and gradients to ``publish``.

At full speed the extra work per step is a flag test, a clock read and two
additions; copies happen only once per ``tick``.
"""

from __future__ import annotations

import threading
import time

PLAY, EPOCH, PAUSED = "play", "epoch", "paused"
MODES = (PLAY, EPOCH, PAUSED)


class Stop(Exception):  # noqa: N818  (control flow, not an error)
    """Raised inside ``fit`` (from the optimizer step) to end the run: ``Reset`` or ``Close``."""


class Reset(Stop):
    """End this run and start a fresh one (a new seed)."""


class Close(Stop):
    """End this run for good: the explorer is shutting down."""


class LossTap:
    """Wraps a loss instance's ``value_and_delta`` so the last training batch's loss value can be read.

    ``fit`` computes the batch loss, then steps the optimizer: when the gate's
    ``after`` runs, ``value`` is that step's loss.
    """

    def __init__(self, loss):
        self.loss = loss
        self.value = float("nan")
        inner = loss.value_and_delta

        def value_and_delta(*args, **kwargs):
            value, delta = inner(*args, **kwargs)
            self.value = value
            return value, delta

        loss.value_and_delta = value_and_delta


class StepGate:
    """Play / pause / step / epoch for one explorer, across its runs (a reset keeps the gate).

    ``publish(params, grads)`` is called with the live arrays (the callee
    copies what it keeps) and ``flush(steps, loss_sum, n)`` with the loss chunk
    since the last flush; both run in the training thread.
    """

    def __init__(self, publish, flush, tick=0.04):
        self.cond = threading.Condition()
        self.publish, self.flush, self.tick = publish, flush, float(tick)
        self.mode = PAUSED
        self.budget = 0  # steps allowed while paused ("step")
        self.stop = None  # a Stop subclass to raise at the next gate
        self.delay = 0.0  # seconds between steps (0: full speed)
        self.free = False  # fast path: playing at full speed, nothing pending
        self.waiting = False  # the training thread is blocked, with a fresh snapshot published
        self.steps = 0  # optimizer steps through the gate, over all runs since the last reset
        self.tap = None
        self._next_tick = 0.0
        self._last_step = 0.0
        self._sum = 0.0
        self._n = 0

    # ------------------------------------------------- the training thread

    def wrap(self, optimizer, tap):
        """Route ``optimizer.step`` through the gate (on this instance only)."""
        real = optimizer.step
        self.tap = tap

        def step(params, grads):
            self.before(params, grads)
            real(params, grads)
            self.after()

        optimizer.step = step

    def before(self, params, grads):
        if self.free:
            now = time.perf_counter()
            if now >= self._next_tick:
                self._flush_and_publish(params, grads, now)
            return
        with self.cond:
            while True:
                if self.stop is not None:
                    raise self.stop()
                if self.mode != PAUSED:
                    wait = self._last_step + self.delay - time.perf_counter() if self.delay else 0.0
                    if wait <= 0:
                        break
                    self._flush_and_publish(params, grads, time.perf_counter())
                    self.cond.wait(wait)
                    continue
                if self.budget > 0:
                    self.budget -= 1
                    break
                if not self.waiting:
                    self._flush_and_publish(params, grads, time.perf_counter())
                    self.waiting = True
                    self.cond.notify_all()
                self.cond.wait()
            self.waiting = False
            self._last_step = time.perf_counter()

    def after(self):
        self.steps += 1
        self._sum += self.tap.value
        self._n += 1

    def _flush_and_publish(self, params, grads, now):
        self._next_tick = now + self.tick
        if self._n:
            self.flush(self.steps, self._sum, self._n)
            self._sum, self._n = 0.0, 0
        self.publish(params, grads)

    def end_of_run(self, params, grads):
        """The run returned (or stopped): flush, publish, and mark the thread as waiting."""
        with self.cond:
            self._flush_and_publish(params, grads, time.perf_counter())
            self.mode, self.budget = PAUSED, 0
            self._refresh()
            self.waiting = True
            self.cond.notify_all()

    def wait_for_go(self):
        """Block until play, epoch or step is asked (returns) or a stop (raises); for a finished run."""
        with self.cond:
            while True:
                if self.stop is not None:
                    raise self.stop()
                if self.mode != PAUSED or self.budget > 0:
                    self.waiting = False
                    return
                self.waiting = True
                self.cond.notify_all()
                self.cond.wait()

    def epoch_ended(self):
        """Called at the end of every epoch: "one epoch" pauses here."""
        with self.cond:
            if self.mode == EPOCH:
                self.mode = PAUSED
                self._refresh()

    def started(self):
        """A fresh run begins: its stop request (if any) was served."""
        with self.cond:
            self.stop = None
            self.steps = 0
            self._sum, self._n = 0.0, 0
            self._refresh()

    # --------------------------------------------------- the server threads

    def _refresh(self):
        self.free = self.mode != PAUSED and self.stop is None and not self.delay

    def set_mode(self, mode):
        with self.cond:
            self.mode = mode
            if mode != PAUSED:
                self.budget = 0
            self._refresh()
            self.cond.notify_all()

    def grant(self, steps=1):
        """Let ``steps`` more steps through while paused; returns the step count to wait for."""
        with self.cond:
            self.mode = PAUSED
            self.budget += steps
            self._refresh()
            self.cond.notify_all()
            return self.steps + self.budget

    def set_delay(self, seconds):
        with self.cond:
            self.delay = max(0.0, float(seconds))
            self._refresh()
            self.cond.notify_all()

    def request(self, stop):
        with self.cond:
            self.stop = stop
            self.waiting = False
            self._refresh()
            self.cond.notify_all()

    def wait_until(self, predicate, timeout):
        """Wait (up to ``timeout`` s) until ``predicate()`` holds; True if it did."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.05))
            return True
