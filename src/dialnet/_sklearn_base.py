"""What DialnetClassifier and DialnetRegressor share: scikit-learn's errors, parameters, the fit driver.

The estimators in :mod:`dialnet.sklearn` add their targets (class labels or
values), scores and documentation to :class:`DialnetEstimator`. Training is
dialnet's own: :func:`dialnet.mlp` builds the network, and
:meth:`dialnet.Network.fit` trains it with its one loss step (the sample
weights are its ``sample_weight``) and its callbacks: scikit-learn's
``n_iter_no_change``/``tol`` rule and the ``loss_curve_``/``validation_*``
bookkeeping are :class:`ScikitLearnStopping`, an :class:`~dialnet.EarlyStopping`.

Like :mod:`dialnet.sklearn`, this module imports scikit-learn (the
``sklearn`` extra), and nothing outside these two imports it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import backend
from .core.losses import Loss, _as_2d_targets
from .errors import ConfigError, DataError, DialnetError
from .model import mlp
from .train import LBFGS, SGD, Adam, EarlyStopping, Optimizer, RMSprop

ACTIVATIONS = ("identity", "sigmoid", "logistic", "tanh", "relu", "leaky_relu")
SOLVERS = ("lbfgs", "sgd", "adam", "rmsprop")
LEARNING_RATES = ("constant", "invscaling", "adaptive")

X_FIX = "pass X as a 2-D array of finite numbers (n_samples, n_features) with the same columns as in fit"


# --------------------------------------------------------------------- errors


class ParameterError(ConfigError, InvalidParameterError):
    """A constructor parameter has a bad type or value (scikit-learn's InvalidParameterError)."""


class NotFittedError(DialnetError, _SklearnNotFittedError):
    """The estimator was used before ``fit`` (scikit-learn's NotFittedError)."""


class InputTypeError(DataError, TypeError):
    """Input of a kind the estimator does not take, such as a sparse matrix."""


def _what(exc) -> str:
    return str(exc).rstrip().rstrip(".")


@contextlib.contextmanager
def _dialnet_errors(fix):
    """Re-raise scikit-learn's validation errors as DialnetErrors of the same type and message."""
    try:
        yield
    except DialnetError:
        raise
    except InvalidParameterError as exc:
        raise ParameterError(_what(exc), fix=fix) from exc
    except _SklearnNotFittedError as exc:
        raise NotFittedError(_what(exc), fix="call fit(X, y) first") from exc
    except ValueError as exc:
        raise DataError(_what(exc), fix=fix) from exc
    except TypeError as exc:
        raise InputTypeError(_what(exc), fix=fix) from exc


def _parameter_error(est, name, expected, value, fix):
    """An error worded like scikit-learn's own parameter messages."""
    return ParameterError(
        f"The {name!r} parameter of {type(est).__name__} must be {expected}. Got {value!r} instead",
        fix=fix,
    )



# ---------------------------------------------------------------- Poisson


class HalfPoisson(Loss):
    """scikit-learn's ``loss="poisson"``: half the Poisson deviance, on a log link.

    The network's (identity) output ``z`` is the log of the predicted mean,
    ``exp(z)`` the prediction: ``L = mean(exp(z) - y * z)`` (the deviance
    without its terms in ``y`` alone), ``dL/dz = (exp(z) - y) / size``.
    """

    name = "poisson"

    def prepare(self, y, n, n_out, dtype):
        return backend.asarray(_as_2d_targets(np.asarray(y), n, n_out, dtype, "poisson"))

    def per_sample(self, P, Y):
        xp = backend.xp
        return xp.mean(xp.exp(P) - Y * P, axis=1)

    def value(self, P, Y):
        xp = backend.xp
        return float(xp.mean(xp.exp(P) - Y * P))

    def delta(self, P, Y, out=None):
        xp = backend.xp
        out = xp.exp(P, out=out)
        out -= Y
        out /= P.size
        return out


# ------------------------------------------------------------- epoch monitor


class ScikitLearnStopping(EarlyStopping):
    """scikit-learn's per-epoch bookkeeping and its ``n_iter_no_change`` rule, as a dialnet EarlyStopping.

    Appends to ``loss_curve_`` (training loss plus the L2 penalty
    ``0.5 * l2 * sum(W**2)``), and with early stopping to
    ``validation_loss_curve_`` and ``validation_scores_``. It watches the
    validation loss with early stopping, the training loss otherwise, and
    stops when that has not dropped by ``tol`` for more than
    ``n_iter_no_change`` epochs. scikit-learn's rule differs from
    EarlyStopping's in one point: the best value (and with early stopping its
    dials, restored at the end) follows every drop, while only a drop of at
    least ``tol`` starts the count over.

    With ``solver="sgd"`` it also runs scikit-learn's ``learning_rate``
    schedule: "invscaling" sets ``lr = learning_rate_init / (t + 1) **
    power_t`` after every epoch (``t``: samples seen), and "adaptive"
    divides the learning rate by 5 where "constant" would stop, stopping
    only once it is below 1e-6. With L-BFGS only the bookkeeping runs (as
    in scikit-learn, ``n_iter_no_change`` applies to the stochastic solvers).
    """

    def __init__(self, est, l2, validation, n_rows=0, schedule="constant", full_batch=False):
        super().__init__(patience=math.inf if full_batch else est.n_iter_no_change,
                         monitor="val_loss" if validation else "loss",
                         min_delta=est.tol, restore_best_weights=validation is not None)
        self.est = est
        self.l2 = l2
        self.validation = validation  # (X_val, T_val, w_val) or None
        self.n_rows = n_rows
        self.schedule = schedule
        self.t0 = getattr(est, "t_", 0)

    def track(self, epoch, value, what, net):
        stop = super().track(epoch, value, what, net)
        if stop and self.schedule == "adaptive" and self.optimizer is not None and self.optimizer.lr > 1e-6:
            self.optimizer.lr /= 5.0  # scikit-learn's adaptive rate: a smaller step instead of stopping
            self.wait, self.reason = 0, None
            return False
        return stop

    def resets_patience(self, value):
        return not value > self.best - self.min_delta

    def is_new_best(self, value):
        return value < self.best

    def on_epoch_end(self, epoch, logs, net):
        est = self.est
        if self.schedule == "invscaling" and self.optimizer is not None:
            t = self.t0 + self.n_rows * (epoch + 1)
            self.optimizer.lr = est.learning_rate_init / (t + 1) ** est.power_t
        penalty = 0.0
        if self.l2:
            penalty = 0.5 * self.l2 * sum(float((d.weights * d.weights).sum()) for d in net.dense_layers)
        loss = logs["loss"] + penalty
        est.loss_curve_.append(loss)
        est.best_loss_ = min(est.best_loss_, loss)
        if self.validation is None:
            return self.track(epoch, loss, "training loss", net)
        X_val, T_val, w_val = self.validation
        est.validation_loss_curve_.append(logs["val_loss"])
        est.validation_scores_.append(est._score_outputs(backend.to_numpy(net._forward(X_val)), T_val, w_val))
        stop = self.track(epoch, logs["val_loss"], "validation loss", net)
        if self.best_epoch == epoch:
            est.best_validation_score_ = est.validation_scores_[-1]
        return stop

    def stop_message(self, what):
        return f"{what} did not improve by more than tol={self.min_delta:g} for {self.patience} consecutive epochs"

    def on_train_end(self, net, history):
        super().on_train_end(net, history)
        if self.validation is not None and history.reached_target:  # the dials that reached it are kept
            self.est.best_validation_score_ = self.est.validation_scores_[-1]


# ------------------------------------------------------------------ the base


class DialnetEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, the fit driver, prediction."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS)), list, tuple],
        "solver": [StrOptions(set(SOLVERS))],
        "optimizer": [None, Optimizer, LBFGS],
        "learning_rate": [StrOptions(set(LEARNING_RATES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    # ------------------------------------------------------------ parameters

    def _validate_params(self):
        with _dialnet_errors(f"pass a value the parameter allows (see help({type(self).__name__}))"):
            super()._validate_params()

    def set_params(self, **params):
        with _dialnet_errors("use a name listed by get_params()"):
            return super().set_params(**params)

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(np.asarray(sizes, dtype=object).ravel())
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise _parameter_error(self, "hidden_layer_sizes", "an int >= 1 or a sequence of ints >= 1",
                                   self.hidden_layer_sizes, "e.g. hidden_layer_sizes=(20, 20)")
        return [int(s) for s in sizes]

    def _hidden_activations(self, n_hidden):
        acts = self.activation
        if isinstance(acts, str):
            return acts
        acts = list(acts)
        if len(acts) != n_hidden or not all(isinstance(a, str) and a in ACTIVATIONS for a in acts):
            raise _parameter_error(
                self, "activation", f"one of {ACTIVATIONS} or a list of {n_hidden} of them (one per hidden layer)",
                self.activation, "pass one name for every hidden layer, or one name per hidden layer")
        return acts

    def _make_optimizer(self):
        if isinstance(self.optimizer, LBFGS):
            return copy.deepcopy(self.optimizer)
        if self.optimizer is not None:
            opt = copy.deepcopy(self.optimizer)  # never change the parameter itself
            opt.reset()
            opt.lr = opt.initial_lr
            return opt
        lr = self.learning_rate_init
        if self.solver == "lbfgs":
            return LBFGS(max_fun=self.max_fun, tol=self.tol)
        if self.solver == "sgd":
            return SGD(lr=lr, momentum=self.momentum, nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)
        if self.solver == "rmsprop":
            return RMSprop(lr=lr, eps=self.epsilon)
        return Adam(lr=lr, betas=(self.beta_1, self.beta_2), eps=self.epsilon)

    @property
    def _full_batch(self):
        """True for L-BFGS (``solver="lbfgs"`` or an ``LBFGS`` optimizer): all rows per step."""
        return isinstance(self.optimizer, LBFGS) or (self.optimizer is None and self.solver == "lbfgs")

    def __sklearn_is_fitted__(self):
        return hasattr(self, "network_")

    def _check_fitted(self):
        with _dialnet_errors("call fit(X, y) first"):
            check_is_fitted(self)

    # ------------------------------------------------------------------- fit

    # ------------------------------------------------------------------- fit

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        hidden = self._hidden_sizes()
        activation = self._hidden_activations(len(hidden))
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        if incremental and self._full_batch:
            raise ConfigError(
                "partial_fit needs a stochastic solver",
                expected="solver='adam', 'sgd' or 'rmsprop' with partial_fit",
                got="solver='lbfgs'",
                fix="use fit() with L-BFGS, or another solver for partial_fit",
            )
        if self.early_stopping and incremental:
            raise ConfigError(
                "partial_fit does not support early_stopping=True",
                expected="early_stopping=False with partial_fit",
                got="early_stopping=True",
                fix="use fit() for early stopping, or set early_stopping=False",
            )
        dtype = np.dtype(self.dtype)
        with _dialnet_errors(X_FIX):
            X, y = validate_data(
                self, X, y, dtype=dtype, multi_output=True, y_numeric=self._y_numeric, reset=first_pass
            )
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if hasattr(y, "toarray"):  # validate_data lets a sparse (CSR) y through
            y = y.toarray()
        T, weights = self._encode_targets(y, first_pass, incremental, classes)
        if sample_weight is not None:
            weights = sample_weight if weights is None else weights * sample_weight
        if weights is not None and not weights.sum() > 0:
            raise DataError(
                "all sample weights are zero",
                expected="sample weights with at least one non-zero number",
                got=f"{len(weights)} zero weights",
                fix="give the rows to learn from a positive weight",
            )
        if weights is not None and not incremental:
            self._check_weighted_targets(T, weights)

        if first_pass or not hasattr(self, "_random_state") or not incremental:
            self._random_state = check_random_state(self.random_state)
        rs = self._random_state
        if first_pass:
            self.network_ = mlp([X.shape[1], *hidden, T.shape[1]], activation=activation, output=self._output,
                                dtype=self.dtype, seed=int(rs.randint(np.iinfo(np.int32).max)), dropout=self.dropout,
                                init=_sklearn_init(activation))
            self.loss_curve_ = []
            self.best_loss_ = math.inf
            self.t_ = 0
        elif self.network_.sizes[1:-1] != hidden:
            raise ConfigError(
                "warm_start cannot change the hidden layers of a fitted network",
                expected=f"hidden_layer_sizes={tuple(self.network_.sizes[1:-1])}",
                got=f"hidden_layer_sizes={tuple(hidden)}",
                fix="set warm_start=False to train a new network",
            )
        if self.network_.n_outputs != T.shape[1]:
            raise DataError(
                "y has a different number of outputs than in the previous fit",
                expected=f"{self.network_.n_outputs} output columns",
                got=f"{T.shape[1]}",
                fix="pass targets of the same width, or set warm_start=False to start over",
            )
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        return self._train(X, T, weights, incremental, rs)

    def _train(self, X, T, weights, incremental, rs):
        """Run :meth:`dialnet.Network.fit` on the encoded targets ``T`` and per-row ``weights`` (or None)."""
        weighted = weights is not None
        if not weighted:
            weights = np.ones(X.shape[0])
        val = None
        full_batch = self._full_batch
        if self.early_stopping and not full_batch:  # as in scikit-learn, L-BFGS ignores early_stopping
            X, X_val, T, T_val, weights, w_val = self._split(X, T, weights, rs)
            if not weights.sum() > 0:
                raise DataError("the training rows left after the validation split all have zero weight",
                                expected="a positive total weight", got="0",
                                fix="use another random_state or a smaller validation_fraction")
            val = (X_val, T_val, w_val)
            self.validation_loss_curve_, self.validation_scores_ = [], []
            self.best_validation_score_ = None
        else:
            self.validation_loss_curve_ = self.validation_scores_ = self.best_validation_score_ = None

        n = X.shape[0]
        batch_size = min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)
        if full_batch:
            batch_size = n
        mean_weight = float(weights.mean())
        # Each batch's loss is its weighted mean, as in scikit-learn. alpha is scikit-learn's too: it
        # joins the summed (weighted) gradient of a batch before the division by the batch's total
        # weight, here taken as batch_size * mean_weight, so it is one constant for the whole run.
        l2 = self.alpha / (batch_size * mean_weight)
        validation = None
        if val is not None:
            # a validation set whose rows all weigh 0 is measured unweighted (as its score is)
            validation = (X_val, self._fit_targets(T_val)) + ((w_val,) if weighted and w_val.sum() > 0 else ())
        schedule = self.learning_rate if self.optimizer is None and self.solver == "sgd" else "constant"
        monitor = ScikitLearnStopping(self, l2, val, n_rows=n, schedule=schedule, full_batch=full_batch)
        net = self.network_
        try:
            history = net.fit(
                X, self._fit_targets(T), loss=self._train_loss, optimizer=self._optimizer,
                epochs=1 if incremental else self.max_iter, batch_size=batch_size, validation_data=validation,
                shuffle=self.shuffle, seed=int(rs.randint(np.iinfo(np.int32).max)), callbacks=[monitor],
                verbose=min(int(self.verbose), 2), l2=l2, target_certainty=getattr(self, "target_certainty", None),
                sample_weight=weights / mean_weight if weighted else None,
            )
        finally:
            net.task, net.loss = self._task, self._base_loss
            net.clear_cache()  # drop batch buffers and the cached view of the training data
        self.n_iter_ = len(history.epochs)
        self.t_ += n * self.n_iter_
        self.loss_ = self.loss_curve_[-1]
        self.stop_reason_ = history.stop_reason
        if not incremental and history.stopped_epoch is None and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"lbfgs failed to converge after {self.max_iter} iteration(s) (max_iter reached): "
                "increase max_iter or scale the data" if full_batch else
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return self

    def _fit_targets(self, T):
        """The targets handed to the network's fit (class indices for a softmax, which takes its fast path)."""
        return T

    def _split(self, X, T, weights, rs):
        stratify = self._stratify_labels(T)
        n_val = math.ceil(self.validation_fraction * X.shape[0])
        if stratify is not None and (n_val < len(np.unique(stratify)) or np.bincount(stratify).min() < 2):
            stratify = None
        fix = "use more data, a validation_fraction that leaves rows on both sides, or early_stopping=False"
        with _dialnet_errors(fix):
            X, X_val, T, T_val, weights, w_val = train_test_split(
                X, T, weights, test_size=self.validation_fraction, random_state=rs, stratify=stratify)
        if X_val.shape[0] < 2 or X.shape[0] < 1:
            raise DataError(
                "the validation set for early stopping is too small",
                expected="at least 2 validation rows and 1 training row",
                got=f"{X_val.shape[0]} validation rows from validation_fraction={self.validation_fraction}",
                fix="use more data, a larger validation_fraction, or early_stopping=False",
            )
        return X, X_val, T, T_val, weights, w_val

    def _check_weighted_targets(self, T, weights):
        """Hook for the classifier (at least two classes must keep some weight)."""

    def _stratify_labels(self, T):
        return None

    # ------------------------------------------------------------- predict

    def _outputs(self, X):
        """The network's outputs for validated ``X`` (certainties or values)."""
        self._check_fitted()
        with _dialnet_errors(X_FIX):
            X = validate_data(self, X, reset=False, dtype=self.network_.dtype)
        try:
            return self.network_.predict_proba(X)
        finally:
            self.network_.clear_cache()

    @property
    def _train_loss(self):
        """The loss handed to fit: its name, or a Loss instance (the regressor's Poisson)."""
        return self._base_loss

    def to_network(self):
        """The trained dialnet :class:`~dialnet.Network` (a copy), to save, inspect or export.

        Its ``task``, ``loss`` and (for classifiers) ``class_names`` are set,
        so ``net.save("model.safetensors")`` gives a file that ``dialnet
        predict`` can label. Changing the copy does not change the estimator.
        """
        self._check_fitted()
        if self._base_loss == "poisson":
            raise ConfigError(
                "a Poisson regressor's network outputs the log of its prediction",
                expected="loss='squared_error' for a network that predicts the values itself",
                got="loss='poisson'",
                fix="use the estimator's predict (exp of the network's outputs), or train with loss='squared_error'",
            )
        net = copy.deepcopy(self.network_)
        net.clear_cache()
        net.task, net.loss = self._task, self._base_loss
        net.class_names = self._class_names()
        return net

    def _class_names(self):
        return None

    @property
    def coefs_(self):
        """Weight matrices ``W`` of shape (n_in, n_out), one per Dense layer (the live dials)."""
        self._check_fitted()
        return [d.weights for d in self.network_.dense_layers]

    @property
    def intercepts_(self):
        """Bias vectors ``b``, one per Dense layer (the live dials)."""
        self._check_fitted()
        return [d.biases for d in self.network_.dense_layers]

    def __getstate__(self):
        if hasattr(self, "network_"):
            self.network_.clear_cache()
        return super().__getstate__()


def _sklearn_init(activation):
    """scikit-learn's MLP initialization, so a drop-in starts from dials drawn the same way: Glorot uniform,
    U(-a, a) with a = sqrt(6 / (n_in + n_out)), narrowed to sqrt(2 / (n_in + n_out)) for logistic units.

    (dialnet's own default is He for ReLU; on unscaled inputs, where scikit-learn users often start, He's wider
    first layer left iris stuck at 66% for one seed in eight where this initialization reached 97% for all eight.)
    """
    names = [activation] if isinstance(activation, str) else list(activation)
    return "glorot_uniform_sigmoid" if all(a in ("logistic", "sigmoid") for a in names) else "glorot_uniform"
