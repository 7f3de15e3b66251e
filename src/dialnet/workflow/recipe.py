"""A Recipe: how to build and train a network for a data set, and the three presets the command line starts from.

``DATA_DEFAULTS`` (any DATA): one ReLU layer of 100 (He init; scikit-learn's
MLP default), no certainty target, and the optimizer by the size of the data:

- up to ``SMALL_ROWS`` (3,000) training rows: L-BFGS (full batch, as
  scikit-learn advises for small data) on every row, no hold-out, an L2
  penalty ``0.5 * l2 * sum(W**2)`` on the mean loss of 1e-2 for classes and
  3e-2 for regression (squared error on standardized targets fits their
  noise sooner), at most 200 iterations (it stops once the gradient is below
  1e-4). Measured on scikit-learn's bundled tables and three built ones
  (``python -m benchmarks --sections tables``): as accurate as
  scikit-learn's MLP or more, in less time.
- above: Adam, a held-out 10% with early stopping on the validation loss
  (best weights kept) and a plateau schedule, L2 1e-4.

Chosen to generalize to tables and images nobody here has seen, not tuned
per data set: every "auto" field resolves by this rule in :meth:`Recipe.fit_options`.

``DEMO`` (no DATA: the articles' demo on the bundled digits): the
625-20-20-10 sigmoid network, Adam lr 0.003, L2 0.0003, trained until the
mean certainty of the true class on held-out digits reaches 0.9.

``CLASSIC`` (the from-scratch recipe of the articles): one hidden layer of
5 sigmoid units, sigmoid outputs with one-hot targets and squared error,
online SGD at lr 0.3 for 500 epochs, min-max scaling, no validation split,
early stopping, schedule or L2.

With a mini-batch optimizer, "auto" epochs and patience count epochs but
allow at least ``MIN_STEPS`` (``MIN_PATIENCE_STEPS``) optimizer steps, so a
small set given ``optimizer="adam"`` trains as long as a big set does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..backend import resolve_dtype
from ..core.layers import get_activation
from ..core.losses import get_loss
from ..core.network import OUTPUTS
from ..data.preprocessing import check_scaling
from ..errors import ConfigError, InvalidValueError, check_positive_int
from ..model import mlp
from ..train import LBFGS, CosineLR, ReduceLROnPlateau, get_optimizer, get_schedule
from ..train.optimizers import OPTIMIZERS

DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "sgd": 0.1, "lbfgs": 1.0}  # lbfgs: its line search sets the steps
MIN_EPOCHS, MIN_STEPS = 100, 20_000
MIN_PATIENCE, MIN_PATIENCE_STEPS = 10, 2_000
MAX_AUTO_EPOCHS = 10_000
AUTO = "auto"
SMALL_ROWS = 3_000  # optimizer "auto": L-BFGS on up to this many training rows, Adam above
LBFGS_ITERATIONS = 200  # epochs "auto" with L-BFGS: its iterations (scikit-learn's max_iter)
LBFGS_PATIENCE = 20  # early_stopping "auto" with L-BFGS and a hold-out, in iterations
LBFGS_L2 = {"classification": 1e-2, "regression": 3e-2}  # l2 "auto" with L-BFGS
MINIBATCH_L2, MINIBATCH_VALIDATION = 1e-4, 0.1  # l2 and validation_split "auto" with a mini-batch optimizer


def _whole(value, name, low, example):
    if value == AUTO:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidValueError(f"{name} must be a whole number >= {low} or 'auto'", expected=f"an int >= {low}",
                                got=repr(value), fix=f"pass e.g. {name}={example}")
    return value


def scaling_for(scale, kind) -> str:
    """``scale``, or for "auto": standard scaling for tables, none for images (pixels are already 0..1)."""
    return check_scaling(scale) if scale != AUTO else ("none" if kind == "image" else "standard")


@dataclass
class Recipe:
    """The network and the training, as one value (what ``dialnet train``'s options say).

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths (empty: no hidden layer).
    activation : str
        Hidden activation.
    output : str, optional
        Output activation for any task. None: ``class_output`` for classes, identity for regression.
    class_output : str
        The output activation for classification when ``output`` is None.
    loss : str, optional
        None: the output's natural loss for classes, squared error for regression.
    dropout, dtype, lr, batch_size, seed :
        As for ``mlp`` and ``Network.fit``; ``lr`` None is ``DEFAULT_LR[optimizer]``.
    optimizer : str
        "auto" (L-BFGS on small data, Adam above: the module docstring),
        "lbfgs", "adam", "adamw", "rmsprop" or "sgd".
    l2 : float or "auto"
        L2 penalty; "auto": 1e-2 (3e-2 for regression) with L-BFGS, 1e-4 otherwise.
    epochs, early_stopping : int or "auto"
        "auto": with L-BFGS 200 iterations, and a patience of 20 when rows
        are held out; otherwise 100 epochs and a patience of 10, raised on
        small data (see the module docstring); ``early_stopping=0`` is off.
    target_certainty : float, optional
        Stop at this mean certainty of the true class on held-out rows (classification only).
    validation_split : float or "auto"
        Share of the training rows held out to watch (0: none); "auto": none
        with L-BFGS (every row trains), 0.1 otherwise.
    lr_schedule : str, optional
        "plateau", "cosine" (over all the epochs), "step", "exponential", or None.
    scale : str
        "minmax", "standard", "none", or "auto" (standard for tables, none for images).
    """

    hidden: tuple = (100,)
    activation: str = "relu"
    output: str | None = None
    class_output: str = "softmax"
    loss: str | None = None
    dropout: float = 0.0
    dtype: str = "float32"
    optimizer: str = AUTO
    lr: float | None = None
    batch_size: int = 32
    epochs: int | str = AUTO
    target_certainty: float | None = None
    validation_split: float | str = AUTO
    early_stopping: int | str = AUTO
    lr_schedule: str | None = "plateau"
    l2: float | str = AUTO
    scale: str = AUTO
    seed: int = 0

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        get_activation(self.activation)
        for name in ("output", "class_output"):
            value = getattr(self, name)
            if value is not None and str(value).lower() not in OUTPUTS:
                raise ConfigError(f"unknown output activation {value!r}", expected="one of " + ", ".join(OUTPUTS),
                                  got=repr(value), fix="use --output softmax (certainty per class) or sigmoid")
        if self.loss is not None:
            get_loss(self.loss)
        if str(self.optimizer).lower() not in (*OPTIMIZERS, "lbfgs", AUTO):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}", expected="one of " + ", ".join(sorted([*OPTIMIZERS, "lbfgs", AUTO])),
                              got=repr(self.optimizer), fix="use --optimizer adam or sgd")
        self.optimizer = str(self.optimizer).lower()
        if self.lr_schedule is not None and str(self.lr_schedule).lower() in ("none", "off", ""):
            self.lr_schedule = None
        get_schedule(self.lr_schedule)
        if self.scale != AUTO:
            self.scale = check_scaling(self.scale)
        resolve_dtype(self.dtype)
        self.batch_size = check_positive_int(self.batch_size, "batch_size", fix="pass e.g. batch_size=32")
        _whole(self.epochs, "epochs", 1, 100)
        _whole(self.early_stopping, "early_stopping", 0, 10)
        if self.l2 != AUTO and (isinstance(self.l2, bool) or not isinstance(self.l2, (int, float)) or not 0 <= self.l2 < math.inf):
            raise InvalidValueError("l2 must be a number >= 0 or 'auto'", expected="e.g. 1e-4", got=repr(self.l2),
                                    fix="pass l2=1e-4, or leave it out")
        v = self.validation_split
        if v != AUTO and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1):
            raise InvalidValueError("validation_split must be in [0, 1) or 'auto'", expected="e.g. 0.1", got=repr(v),
                                    fix="pass validation_split=0.1, or 0 to hold nothing out")

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default (Adam's for "auto": the one with a learning rate)."""
        return self.lr if self.lr is not None else DEFAULT_LR["adam" if self.optimizer == AUTO else self.optimizer]

    def optimizer_for(self, n_rows, stepwise=False) -> str:
        """The optimizer's name for ``n_rows`` rows: ``optimizer``, or for "auto" the small-data rule.

        "auto" is L-BFGS (full batch) when at most ``SMALL_ROWS`` rows are
        trained on, Adam above, and Adam whenever ``stepwise`` (a caller that
        steps through mini-batches, such as ``dialnet explore``).
        """
        if self.optimizer != AUTO:
            return self.optimizer
        return "lbfgs" if n_rows <= SMALL_ROWS and not stepwise else "adam"

    def validation_for(self, optimizer) -> float:
        """``validation_split``, or for "auto" none with L-BFGS and ``MINIBATCH_VALIDATION`` otherwise."""
        if self.validation_split != AUTO:
            return float(self.validation_split)
        return 0.0 if optimizer == "lbfgs" else MINIBATCH_VALIDATION

    def l2_for(self, optimizer, task="classification") -> float:
        """``l2``, or for "auto" ``LBFGS_L2`` (by task) with L-BFGS and ``MINIBATCH_L2`` otherwise."""
        if self.l2 != AUTO:
            return float(self.l2)
        return LBFGS_L2["regression" if task == "regression" else "classification"] if optimizer == "lbfgs" else MINIBATCH_L2

    def output_for(self, task) -> str:
        """The output activation for ``task``."""
        if self.output is not None:
            return self.output
        return "identity" if task == "regression" else self.class_output

    def loss_for(self, task):
        """The loss for ``task`` (None: the network's default for its output)."""
        if self.loss is None and task == "regression":
            return "mse"
        return self.loss

    def scaling_for(self, kind) -> str:
        """The input scaling for a data set of ``kind`` ("table" or "image")."""
        return scaling_for(self.scale, kind)

    def build_network(self, n_inputs, n_outputs, task="classification"):
        """The seeded MLP ``n_inputs``-hidden-``n_outputs`` (a ``dialnet.Network``)."""
        net = mlp([n_inputs, *self.hidden, n_outputs], activation=self.activation, output=self.output_for(task),
                  dtype=self.dtype, seed=self.seed, dropout=self.dropout)
        if task == "regression":
            net.task = "regression"
        return net

    def fit_options(self, n_rows, task="classification", *, stepwise=False) -> dict:
        """The keyword arguments for ``Network.fit`` on ``n_rows`` training rows.

        With L-BFGS (see :meth:`optimizer_for`), "auto" epochs are
        ``LBFGS_ITERATIONS`` iterations and "auto" patience ``LBFGS_PATIENCE``
        iterations. With a mini-batch optimizer, "auto" epochs and patience
        allow at least ``MIN_STEPS`` (``MIN_PATIENCE_STEPS``) optimizer
        steps; the plateau schedule waits half as long as early stopping;
        cosine anneals over all the epochs.
        """
        optimizer = self.optimizer_for(n_rows, stepwise)
        validation = self.validation_for(optimizer)
        n_fit = n_rows - int(round(n_rows * validation))
        steps = max(1, math.ceil(max(n_fit, 1) / self.batch_size))
        epochs = self.epochs
        if epochs == AUTO:
            epochs = LBFGS_ITERATIONS if optimizer == "lbfgs" else min(MAX_AUTO_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps)))
        patience = self.early_stopping
        if patience == AUTO:
            if optimizer == "lbfgs":  # without a hold-out the training loss only falls: nothing to stop on
                patience = LBFGS_PATIENCE if validation else 0
            else:
                patience = max(MIN_PATIENCE, math.ceil(MIN_PATIENCE_STEPS / steps))
        name = None if self.lr_schedule is None else str(self.lr_schedule).lower()
        if optimizer == "lbfgs":  # full batch, no learning rate: a schedule has nothing to change
            name, schedule = None, None
        elif name == "cosine":
            schedule = CosineLR(t_max=epochs)
        elif name == "plateau":
            schedule = ReduceLROnPlateau(patience=max(5, (patience or MIN_PATIENCE) // 2))
        else:
            schedule = get_schedule(self.lr_schedule)
        return {
            "loss": self.loss_for(task),
            "optimizer": LBFGS() if optimizer == "lbfgs" else get_optimizer(optimizer, lr=self.learning_rate),
            "epochs": epochs,
            "batch_size": self.batch_size,
            "validation_split": validation or None,
            "seed": self.seed,
            "target_certainty": self.target_certainty,
            "early_stopping": patience or None,
            "lr_schedule": schedule,
            "l2": self.l2_for(optimizer, task),
        }

    def describe(self, net, fit_options) -> str:
        """One line: the network's sizes, dials, loss, optimizer and when training stops."""
        loss = fit_options["loss"] or net.default_loss().name
        hidden = f"{self.activation} hidden, " if self.hidden else ""
        output = net.layers[-1].name if net.task == "regression" else self.output_for(net.task)
        return (f"Network {'-'.join(map(str, net.sizes))} ({hidden}{output} output): {net.count_parameters():,} dials; "
                f"loss {loss}, " + ("L-BFGS (full batch), " if isinstance(fit_options["optimizer"], (LBFGS, str)) else
                                    f"{fit_options['optimizer'].name} lr {self.learning_rate:g}, batch {self.batch_size}, ") +
                f"L2 {fit_options['l2']:g}, "
                + (f"{fit_options['validation_split']:.0%} held out, " if fit_options["validation_split"] else "no hold-out, ")
                + f"at most {fit_options['epochs']} "
                + ("iterations" if isinstance(fit_options["optimizer"], (LBFGS, str)) else "epochs")
                + (f", early stopping after {fit_options['early_stopping']}" if fit_options["early_stopping"] else "")
                + (f", target certainty {self.target_certainty:g}" if self.target_certainty is not None else ""))


DATA_DEFAULTS = Recipe()
DEMO = Recipe(hidden=(20, 20), activation="sigmoid", optimizer="adam", lr=3e-3, target_certainty=0.9, l2=3e-4)
CLASSIC = Recipe(hidden=(5,), activation="sigmoid", class_output="sigmoid", loss="mse", optimizer="sgd", lr=0.3,
                 batch_size=1, epochs=500, validation_split=0.0, early_stopping=0, lr_schedule=None, l2=0.0, scale="minmax")
