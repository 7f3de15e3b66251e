"""Optimizers: how the dials are turned, given their gradients.

An optimizer knows parameter arrays and gradient arrays, never layers.
``step(params, grads)`` updates each parameter in place; its state (moments,
step count) is keyed by position, so the same list order must be passed on
every step (``Network.parameters()`` guarantees that). The update rules
follow ``torch.optim`` exactly so results can be compared to the bit.

When the lists carry a ``flat`` attribute (``Network.parameters()`` and
``gradients()`` do: every dial lives in one flat array), the update runs
once on the flat arrays: the same element-wise arithmetic, in a handful of
NumPy calls for the whole network instead of a handful per array. The
state is then kept flat too, and still reported per position.

Learning-rate schedules, which change ``optimizer.lr`` once per epoch, are
in :mod:`dialnet.train.schedules`.
"""

from __future__ import annotations

import math

from .. import backend
from ..errors import ConfigError, check_number, lookup


FLAT = "flat"  # the state key of the one flat parameter array


class Optimizer:
    """Base class. Subclasses implement ``_update(key, p, g)``.

    ``key`` names the slot dict in ``self.state``: a parameter's position,
    or ``FLAT`` when ``p`` and ``g`` are the flat arrays all parameters and
    gradients live in.
    """

    name = "optimizer"

    def __init__(self, lr, weight_decay=0.0):
        self.lr = check_number("lr", lr, low_open=True)
        self.weight_decay = check_number("weight_decay", weight_decay)
        self.initial_lr = self.lr
        self.state = {}
        self.t = 0
        self._flat_of = None  # the flat parameter array the FLAT state belongs to
        self._layout = None  # [(offset, shape)] of each parameter inside it

    def step(self, params, grads):
        """Turn every dial once: ``p <- p - lr * (update from g)``, in place."""
        self.t += 1
        flat_p, flat_g = getattr(params, "flat", None), getattr(grads, "flat", None)
        if flat_p is not None and flat_g is not None:
            if flat_p is not self._flat_of:
                self._make_state_flat(params, flat_p)
            self._update(FLAT, flat_p, flat_g)
        else:
            if self._flat_of is not None:
                self._make_state_positional()
            for i, (p, g) in enumerate(zip(params, grads)):
                self._update(i, p, g)

    def _update(self, key, p, g):
        raise NotImplementedError

    def _make_state_flat(self, params, flat):
        """Gather per-position state into flat arrays laid out like ``flat`` (once per network)."""
        self._make_state_positional()
        layout, offset = [], 0
        for p in params:
            layout.append((offset, tuple(p.shape)))
            offset += p.size
        if self.state:
            sizes = [math.prod(shape) for _, shape in layout]
            held = {i: {arr.size for arr in slots.values()} for i, slots in self.state.items()}
            if sorted(held) != list(range(len(layout))) or any(held[i] != {size} for i, size in enumerate(sizes)):
                raise ConfigError(
                    "the optimizer's state does not match the parameters it is given",
                    expected=f"state for {len(layout)} parameter arrays of sizes {sizes}",
                    got=f"state for positions {sorted(held)} of sizes {[sorted(held[i]) for i in sorted(held)]}",
                    fix="pass the same parameter list on every step, or call optimizer.reset()",
                )
            xp = backend.xp
            gathered = {}
            for slot in self.state[0]:
                buf = xp.empty_like(flat)
                for i, (off, shape) in enumerate(layout):
                    buf[off : off + math.prod(shape)] = xp.reshape(self.state[i][slot], (-1,))
                gathered[slot] = buf
            self.state = {FLAT: gathered}
        self._flat_of, self._layout = flat, layout

    def _positional_slots(self) -> dict:
        """The state as ``{position: {slot: array}}`` (views into the flat state when it is flat)."""
        if FLAT not in self.state:
            return self.state
        return {
            i: {slot: backend.xp.reshape(arr[off : off + math.prod(shape)], shape) for slot, arr in self.state[FLAT].items()}
            for i, (off, shape) in enumerate(self._layout)
        }

    def _make_state_positional(self):
        self.state = {i: {k: backend.copy(v) for k, v in slots.items()} for i, slots in self._positional_slots().items()}
        self._flat_of = self._layout = None

    def reset(self):
        self.state = {}
        self.t = 0
        self._flat_of = self._layout = None

    def config(self) -> dict:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def state_arrays(self) -> dict:
        """Optimizer state as a flat ``{name: array}`` dict (for checkpoints), keyed ``"{position}.{slot}"``."""
        out = {}
        for i, slots in self._positional_slots().items():
            for slot, arr in slots.items():
                out[f"{i}.{slot}"] = backend.to_numpy(arr)
        return out

    def load_state_arrays(self, arrays: dict, t: int):
        self.state = {}
        self._flat_of = self._layout = None
        for key, arr in arrays.items():
            i, slot = key.split(".", 1)
            self.state.setdefault(int(i), {})[slot] = backend.copy(backend.asarray(arr))
        self.t = int(t)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum and Nesterov as in ``torch.optim.SGD``.

    ``g <- g + wd p``; ``v <- mu v + (1 - dampening) g`` (``v = g`` on the first
    step); Nesterov uses ``g + mu v``, plain momentum ``v``; ``p <- p - lr * that``.
    """

    name = "sgd"

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = check_number("momentum", momentum, high=1.0)
        self.dampening = check_number("dampening", dampening, high=1.0 + 1e-12)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ConfigError(
                "Nesterov momentum needs momentum > 0 and dampening = 0",
                expected="momentum > 0, dampening = 0",
                got=f"momentum={self.momentum}, dampening={self.dampening}",
                fix="pass momentum=0.9 with nesterov=True",
            )

    def _update(self, i, p, g):
        xp = backend.xp
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            slots = self.state.get(i)
            if slots is None:
                buf = backend.copy(g)
                self.state[i] = {"momentum": buf}
            else:
                buf = slots["momentum"]
                buf *= self.momentum
                if self.dampening:
                    buf += (1.0 - self.dampening) * g
                else:
                    buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        slots = self.state.get(i)
        if slots is not None and "scratch" in slots:
            scratch = slots["scratch"]
        else:
            scratch = xp.empty_like(p)
            self.state.setdefault(i, {})["scratch"] = scratch
        backend.ops.multiply(g, self.lr, out=scratch)
        p -= scratch

    def state_arrays(self):
        return {k: v for k, v in super().state_arrays().items() if not k.endswith(".scratch")}

    def config(self):
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov, "dampening": self.dampening}


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``; ``decoupled=True`` is AdamW.

    ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) g^2``;
    ``p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``.
    Weight decay is added to ``g`` (L2) or, decoupled, ``p <- p (1 - lr wd)``.
    """

    name = "adam"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(lr, weight_decay)
        b1, b2 = betas
        self.betas = (check_number("beta1", b1, high=1.0), check_number("beta2", b2, high=1.0))
        self.eps = check_number("eps", eps, low_open=True)
        self.decoupled = bool(decoupled)

    def step(self, params, grads):
        b1, b2 = self.betas
        t = self.t + 1  # the step about to be taken
        self._bc1 = 1.0 - b1**t
        self._bc2_sqrt = math.sqrt(1.0 - b2**t)
        super().step(params, grads)

    def _update(self, i, p, g):
        xp, ops = backend.xp, backend.ops
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        slots = self.state.get(i)
        if slots is None:
            slots = self.state[i] = {"m": xp.zeros_like(p), "v": xp.zeros_like(p), "scratch": xp.empty_like(p)}
        m, v, scratch = slots["m"], slots["v"], slots["scratch"]
        m *= b1
        ops.multiply(g, 1.0 - b1, out=scratch)
        m += scratch
        v *= b2
        ops.multiply(g, g, out=scratch)
        scratch *= 1.0 - b2
        v += scratch
        ops.sqrt(v, out=scratch)
        scratch *= 1.0 / self._bc2_sqrt
        scratch += self.eps
        ops.divide(m, scratch, out=scratch)
        scratch *= self.lr / self._bc1
        p -= scratch

    def state_arrays(self):
        return {k: v for k, v in super().state_arrays().items() if not k.endswith(".scratch")}

    def load_state_arrays(self, arrays, t):
        super().load_state_arrays(arrays, t)
        for slots in self.state.values():
            slots["scratch"] = backend.xp.empty_like(slots["m"])

    def config(self):
        return {**super().config(), "betas": list(self.betas), "eps": self.eps, "decoupled": self.decoupled}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``."""

    name = "adamw"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr, betas, eps, weight_decay, decoupled=True)

    def config(self):
        cfg = super().config()
        cfg.pop("decoupled")
        return cfg


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    ``s <- alpha s + (1-alpha) g^2``; with ``centered``, ``s - mean(g)^2``;
    ``p <- p - lr g / (sqrt(s) + eps)`` (through a momentum buffer if momentum > 0).
    """

    name = "rmsprop"

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.alpha = check_number("alpha", alpha, high=1.0)
        self.eps = check_number("eps", eps, low_open=True)
        self.momentum = check_number("momentum", momentum, high=1.0)
        self.centered = bool(centered)

    def _update(self, i, p, g):
        xp = backend.xp
        if self.weight_decay:
            g = g + self.weight_decay * p
        slots = self.state.get(i)
        if slots is None:
            slots = self.state[i] = {"square_avg": xp.zeros_like(p)}
            if self.momentum:
                slots["momentum"] = xp.zeros_like(p)
            if self.centered:
                slots["grad_avg"] = xp.zeros_like(p)
        sq = slots["square_avg"]
        sq *= self.alpha
        sq += (1.0 - self.alpha) * g * g
        if self.centered:
            ga = slots["grad_avg"]
            ga *= self.alpha
            ga += (1.0 - self.alpha) * g
            avg = xp.sqrt(sq - ga * ga) + self.eps
        else:
            avg = xp.sqrt(sq) + self.eps
        if self.momentum:
            buf = slots["momentum"]
            buf *= self.momentum
            buf += g / avg
            p -= self.lr * buf
        else:
            p -= self.lr * (g / avg)

    def config(self):
        return {**super().config(), "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum, "centered": self.centered}


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop)}


def get_optimizer(optimizer, lr=None, **kwargs) -> Optimizer:
    """Build an optimizer from its name (or pass an instance through)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    cls = lookup(OPTIMIZERS, optimizer, "optimizer", fix="use optimizer='adam' (a robust default) or 'sgd'")
    if lr is not None:
        kwargs["lr"] = lr
    return cls(**kwargs)
