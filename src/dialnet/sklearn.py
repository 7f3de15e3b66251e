"""scikit-learn estimators backed by dialnet networks.

``DialnetClassifier`` and ``DialnetRegressor`` follow scikit-learn's
conventions (``fit``/``partial_fit``/``predict``/``score``, parameters
checked through ``_parameter_constraints``, ``clone``-able, usable in a
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``) while the training
itself is dialnet's: :func:`dialnet.mlp` builds the network and
:meth:`dialnet.Network.fit` runs the mini-batch backpropagation loop.
They do not scale inputs: put a ``StandardScaler`` in front, as with
scikit-learn's own ``MLPClassifier``.

This is the only dialnet module that imports scikit-learn (the ``sklearn``
extra). Bad input raises a :class:`dialnet.DialnetError` that is also the
exception scikit-learn would raise (``InvalidParameterError``,
``NotFittedError``, ``ValueError``, ``TypeError``) with scikit-learn's
message, so code written for either library keeps working.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from . import backend
from .errors import ConfigError, DataError, DialnetError
from .core.losses import Loss, get_loss
from .model import mlp
from .train.optimizers import SGD, Adam, Optimizer, RMSprop
from .train.loop import Callback

__all__ = ["DialnetClassifier", "DialnetRegressor", "ParameterError", "NotFittedError", "InputTypeError"]

ACTIVATIONS = ("identity", "sigmoid", "logistic", "tanh", "relu", "leaky_relu")
SOLVERS = ("sgd", "adam", "rmsprop")

_X_FIX = "pass X as a 2-D array of finite numbers (n_samples, n_features) with the same columns as in fit"


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


# ----------------------------------------------------------- weighted losses


class _SampleWeighted(Loss):
    """A dialnet loss whose targets carry one weight per sample in their last column.

    ``L = mean_i w_i l_i``, so ``dL/dz_i = w_i * dl_i/dz_i``: the base loss's
    gradient scaled row by row (the weight is a constant in the chain rule).
    The weights ride in the target array so that the fit loop's shuffle keeps
    each weight with its row. The name is not one :meth:`Network.fit` knows,
    so it treats the task as regression and skips its per-epoch accuracy
    pass; the estimator keeps its own scores (``_EpochMonitor``).
    """

    def __init__(self, base):
        self.base = get_loss(base)
        if self.base.name not in ("cross_entropy", "binary_cross_entropy", "mse"):
            raise ConfigError(
                f"no sample-weighted form of loss {self.base.name!r}",
                expected="cross_entropy, binary_cross_entropy or mse",
                got=repr(self.base.name),
                fix="use one of those losses",
            )
        self.name = f"sample_weighted_{self.base.name}"
        self.fuses_with = self.base.fuses_with

    def prepare(self, y, n, n_out, dtype):
        Y = backend.xp.asarray(y, dtype=dtype)
        if Y.shape != (n, n_out + 1):
            raise DataError(
                "weighted targets do not match the network output",
                expected=f"shape ({n}, {n_out + 1}): targets plus a weight column",
                got=f"shape {tuple(Y.shape)}",
                fix="build them with the estimator (this class is internal)",
            )
        return Y

    def per_sample(self, P, T, Z=None):
        """One loss value per row, whose mean is the base loss (from logits ``Z`` when given)."""
        xp = backend.xp
        name = self.base.name
        if name == "cross_entropy":
            if Z is not None:  # log-sum-exp(z) - z[true]
                m = Z.max(axis=1, keepdims=True)
                out = xp.log(xp.exp(Z - m).sum(axis=1))
                out += m[:, 0]
                out -= xp.einsum("ij,ij->i", Z, T)
                return out
            return -(T * xp.log(xp.maximum(P, np.finfo(P.dtype).tiny))).sum(axis=1)
        if name == "binary_cross_entropy":
            if Z is not None:  # max(z, 0) - z y + log(1 + exp(-|z|))
                return (xp.maximum(Z, 0) - Z * T + xp.log1p(xp.exp(-xp.abs(Z)))).mean(axis=1)
            eps = np.finfo(P.dtype).eps
            Pc = xp.clip(P, eps, 1 - eps)
            return -(T * xp.log(Pc) + (1 - T) * xp.log1p(-Pc)).mean(axis=1)
        diff = P - T
        return (diff * diff).mean(axis=1)

    def value_from_logits(self, Z, Y):
        return float(self.per_sample(None, Y[:, :-1], Z) @ Y[:, -1]) / Z.shape[0]

    def delta_logits(self, P, Y, out=None):
        out = self.base.delta_logits(P, Y[:, :-1], out=out)
        out *= Y[:, -1:]
        return out

    def value(self, P, Y):
        return float(self.per_sample(P, Y[:, :-1]) @ Y[:, -1]) / P.shape[0]

    def delta(self, P, Y, out=None):
        out = self.base.delta(P, Y[:, :-1], out=out)
        out *= Y[:, -1:]
        return out


# ------------------------------------------------------------- epoch monitor


class _EpochMonitor(Callback):
    """scikit-learn's per-epoch bookkeeping, as a dialnet callback.

    Appends to ``loss_curve_`` (training loss plus the L2 penalty
    ``0.5 * l2 * sum(W**2)``), and with early stopping to
    ``validation_loss_curve_`` and ``validation_scores_``. Stops when the
    monitored loss (validation loss with early stopping, training loss
    otherwise) has not improved by ``tol`` for more than ``n_iter_no_change``
    epochs, or when ``target_certainty`` is reached; with early stopping the
    dials of the best validation epoch are restored at the end.
    """

    def __init__(self, est, l2, X_train, T_train, val):
        self.est = est
        self.l2 = l2
        self.X_train, self.T_train = X_train, T_train
        self.val = val  # (X_val, T_val, w_val) or None

    def on_train_begin(self, net, history):
        self.best = math.inf
        self.best_weights = None
        self.no_improvement = 0
        self.reason = None

    def on_epoch_end(self, epoch, logs, net):
        est = self.est
        penalty = 0.0
        if self.l2:
            penalty = 0.5 * self.l2 * sum(float((d.weights * d.weights).sum()) for d in net.dense_layers)
        loss = logs["loss"] + penalty
        est.loss_curve_.append(loss)
        est.best_loss_ = min(est.best_loss_, loss)
        P_val = None
        if self.val is not None:
            X_val, T_val, w_val = self.val
            P_val = backend.to_numpy(net._forward(X_val))
            monitored = logs["val_loss"]
            est.validation_loss_curve_.append(monitored)
            est.validation_scores_.append(est._score_outputs(P_val, T_val, w_val))
        else:
            monitored = loss
        self.no_improvement = self.no_improvement + 1 if monitored > self.best - est.tol else 0
        if monitored < self.best:
            self.best = monitored
            if self.val is not None:
                self.best_weights = net.copy_weights()
                est.best_validation_score_ = est.validation_scores_[-1]
        if self.no_improvement > est.n_iter_no_change:
            what = "validation loss" if self.val is not None else "training loss"
            self.reason = (
                f"{what} did not improve by more than tol={est.tol:g} for {est.n_iter_no_change} consecutive epochs"
            )
            return True
        target = getattr(est, "target_certainty", None)
        if target is not None:
            if P_val is None:
                P, T = backend.to_numpy(net._forward(self.X_train[:4096])), self.T_train[:4096]
            else:
                P, T = P_val, self.val[1]
            certainty = est._certainty(P, T)
            if certainty >= target:
                where = "validation" if P_val is not None else "training"
                self.reason = (
                    f"target certainty {target:g} reached at epoch {epoch + 1} "
                    f"(mean certainty of the true class {certainty:.3f} on {where} data)"
                )
                return True
        return False

    def on_train_end(self, net, history):
        if self.best_weights is not None:
            net.set_weights(self.best_weights)
            history.best_epoch = int(np.argmin(self.est.validation_loss_curve_[-len(history.epochs):]))


# ------------------------------------------------------------------ the base


class _DialnetEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, the fit driver, prediction."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS)), list, tuple],
        "solver": [StrOptions(set(SOLVERS))],
        "optimizer": [None, Optimizer],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
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
        if self.optimizer is not None:
            opt = copy.deepcopy(self.optimizer)  # never change the parameter itself
            opt.reset()
            opt.lr = opt.initial_lr
            return opt
        lr = self.learning_rate_init
        if self.solver == "sgd":
            return SGD(lr=lr, momentum=self.momentum, nesterov=self.momentum > 0)
        if self.solver == "rmsprop":
            return RMSprop(lr=lr)
        return Adam(lr=lr)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "network_")

    def _check_fitted(self):
        with _dialnet_errors("call fit(X, y) first"):
            check_is_fitted(self)

    # ------------------------------------------------------------------- fit

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        hidden = self._hidden_sizes()
        activation = self._hidden_activations(len(hidden))
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        if self.early_stopping and incremental:
            raise ConfigError(
                "partial_fit does not support early_stopping=True",
                expected="early_stopping=False with partial_fit",
                got="early_stopping=True",
                fix="use fit() for early stopping, or set early_stopping=False",
            )
        dtype = np.dtype(self.dtype)
        with _dialnet_errors(_X_FIX):
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
        if weights is None:
            weights = np.ones(X.shape[0])

        if first_pass or not hasattr(self, "_random_state") or not incremental:
            self._random_state = check_random_state(self.random_state)
        rs = self._random_state
        if first_pass:
            self.network_ = mlp([X.shape[1], *hidden, T.shape[1]], activation=activation, output=self._output,
                                dtype=self.dtype, seed=int(rs.randint(np.iinfo(np.int32).max)), dropout=self.dropout)
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

        val = None
        if self.early_stopping:
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
        mean_weight = float(weights.mean())
        # Weights are normalised to mean 1 over the training rows so the learning rate means
        # the same with or without them. alpha is scikit-learn's: it joins the summed
        # (weighted) gradient of a batch before the division by the batch's total weight.
        l2 = self.alpha / (batch_size * mean_weight)
        loss = _SampleWeighted(self._base_loss)
        Y = np.hstack([T, (weights / mean_weight)[:, None]]).astype(dtype, copy=False)
        validation = None
        if val is not None:
            validation = (X_val, np.hstack([T_val, (w_val / mean_weight)[:, None]]).astype(dtype, copy=False))
        monitor = _EpochMonitor(self, l2, X, T, val)
        net = self.network_
        try:
            history = net.fit(
                X, Y, loss=loss, optimizer=self._optimizer, epochs=1 if incremental else self.max_iter,
                batch_size=batch_size, validation_data=validation, shuffle=self.shuffle,
                seed=int(rs.randint(np.iinfo(np.int32).max)), callbacks=[monitor], progress=bool(self.verbose), l2=l2,
            )
        finally:
            net.task, net.loss = self._task, self._base_loss
            net.clear_cache()  # drop batch buffers and the cached view of the training data
        self.n_iter_ = len(history.epochs)
        self.t_ += n * self.n_iter_
        self.loss_ = self.loss_curve_[-1]
        self.stop_reason_ = history.stop_reason
        if not incremental and monitor.reason is None and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

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
        with _dialnet_errors(_X_FIX):
            X = validate_data(self, X, reset=False, dtype=self.network_.dtype)
        try:
            return self.network_.predict_proba(X)
        finally:
            self.network_.clear_cache()

    def to_network(self):
        """The trained dialnet :class:`~dialnet.Network` (a copy), to save, inspect or export.

        Its ``task``, ``loss`` and (for classifiers) ``class_names`` are set,
        so ``net.save("model.safetensors")`` gives a file that ``dialnet
        predict`` can label. Changing the copy does not change the estimator.
        """
        self._check_fitted()
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


_COMMON_DOC = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; ``()`` gives no hidden layer.
    activation : str or list of str, default="relu"
        Hidden activation, one name for all hidden layers or one per layer:
        "identity", "sigmoid" (alias "logistic"), "tanh", "relu", "leaky_relu".
    solver : {"adam", "sgd", "rmsprop"}, default="adam"
        The optimizer that turns the dials. "sgd" uses Nesterov momentum
        ``momentum`` (plain SGD when ``momentum=0``).
    optimizer : dialnet Optimizer, default=None
        A configured optimizer, e.g. ``dialnet.Adam(lr=3e-3, betas=(0.9, 0.99))``;
        overrides ``solver`` and ``learning_rate_init``. A copy is used, so
        the instance passed is never changed.
    learning_rate_init : float, default=0.001
    batch_size : int or "auto", default="auto"
        Samples per gradient step; "auto" is ``min(200, n_samples)``.
    max_iter : int, default=200
        Maximum number of epochs (passes over the data).
    alpha : float, default=1e-4
        L2 penalty with scikit-learn's scaling: ``alpha * W / (batch weight)``
        joins each weight gradient, ``0.5 * alpha * ||W||^2`` the objective.
    dropout : float, default=0.0
        Dropout rate after each hidden activation while training.
    momentum : float, default=0.9
        Momentum of the "sgd" solver.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified for
        single-label classification), stop when the validation loss has not
        improved by ``tol`` for more than ``n_iter_no_change`` epochs, and
        restore the dials of the best validation epoch.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
        Patience in epochs, on the validation loss with early stopping and
        on the training loss otherwise.
    tol : float, default=1e-4
        Smallest decrease of the monitored loss that counts as improvement.
    shuffle : bool, default=True
        Reshuffle the rows every epoch.
    random_state : int, RandomState or None, default=None
        Seeds the initial dials, the dropout masks, the shuffles and the
        validation split; an int gives the same bits on every fit.
    warm_start : bool, default=False
        Continue from the current dials on the next ``fit`` (new optimizer).
    verbose : bool or int, default=False
        Show a progress bar over epochs.
    dtype : {"float32", "float64"}, default="float32"
        Float type of the network: float32 is fast, float64 exact."""

_COMMON_ATTRIBUTES = """
    loss_curve_ : list of float
        Training loss (plus the L2 penalty) after every epoch, across
        ``partial_fit`` and ``warm_start`` calls.
    loss_ : float
        The last value of ``loss_curve_``.
    best_loss_ : float
        The smallest value of ``loss_curve_``.
    validation_loss_curve_, validation_scores_ : list of float or None
        With ``early_stopping``: validation loss and ``score`` per epoch.
    best_validation_score_ : float or None
        Validation score of the epoch whose dials were kept.
    n_iter_ : int
        Epochs run by the last call to ``fit``/``partial_fit``.
    t_ : int
        Training samples seen, summed over epochs.
    stop_reason_ : str
        Why training stopped.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names (a DataFrame).
    network_ : dialnet.Network
        The network being trained; ``to_network()`` gives a labelled copy.
    coefs_, intercepts_ : list of ndarray
        The weights and biases of every Dense layer."""


# ---------------------------------------------------------------- classifier


class DialnetClassifier(ClassifierMixin, _DialnetEstimator):
    __doc__ = f"""A multilayer perceptron classifier trained by dialnet's backpropagation.

    Two classes get one sigmoid output (binary cross-entropy), more get a
    softmax (cross-entropy); a binary indicator matrix ``y`` is multi-label
    classification with one sigmoid per label.

    Parameters
    ----------{_COMMON_DOC}
    class_weight : dict, "balanced" or None, default=None
        Weight per class label, multiplying ``sample_weight``; "balanced" is
        ``n_samples / (n_classes * count(class))``. Single-label targets only.
    target_certainty : float in (0, 1], default=None
        Stop once the mean certainty given to the true class reaches this
        value (on the validation rows with early stopping, else on up to
        4096 training rows).

    Attributes
    ----------
    classes_ : ndarray
        Class labels (``arange(n_labels)`` for multi-label targets).
    n_outputs_ : int
        Output units of the network.
    out_activation_ : str
        "softmax" or "sigmoid".{_COMMON_ATTRIBUTES}

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from dialnet.sklearn import DialnetClassifier
    >>> clf = make_pipeline(StandardScaler(), DialnetClassifier((20, 20), random_state=0))
    >>> clf.fit(X, y).score(X_test, y_test)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        **_DialnetEstimator._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "target_certainty": [Interval(Real, 0, 1, closed="right"), None],
    }
    _y_numeric = False

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        optimizer=None,
        learning_rate_init=0.001,
        batch_size="auto",
        max_iter=200,
        alpha=0.0001,
        dropout=0.0,
        momentum=0.9,
        class_weight=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        target_certainty=None,
        shuffle=True,
        random_state=None,
        warm_start=False,
        verbose=False,
        dtype="float32",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.dropout = dropout
        self.momentum = momentum
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.target_certainty = target_certainty
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.dtype = dtype

    # -------------------------------------------------------------- targets

    @property
    def _multilabel(self):
        return self._target_kind == "multilabel-indicator"

    @property
    def _output(self):
        return "softmax" if self.n_outputs_ > 1 and not self._multilabel else "sigmoid"

    @property
    def _base_loss(self):
        return "cross_entropy" if self._output == "softmax" else "binary_cross_entropy"

    @property
    def _task(self):
        if self._multilabel:
            return "multilabel"
        return "binary" if self.n_outputs_ == 1 else "classification"

    def _encode_targets(self, y, first_pass, incremental, classes):
        """Class labels -> network targets ``T`` (0/1 column, one-hot rows or indicators), class weights."""
        with _dialnet_errors("pass class labels (1-D) or a 0/1 indicator matrix (multi-label)"):
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            kind = type_of_target(y)
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise DataError(
                f"{kind} targets are not supported",
                expected="class labels (1-D) or a 0/1 indicator matrix (multi-label)",
                got=kind,
                fix="encode each output separately, or use one classifier per output",
            )
        if first_pass:
            if kind == "multilabel-indicator":
                found = np.arange(y.shape[1])
            elif incremental:
                if classes is None:
                    raise DataError(
                        "classes must be passed on the first call to partial_fit",
                        expected="classes=np.unique(y_all)",
                        got="classes=None",
                        fix="pass every class label of the whole data set on the first call",
                    )
                found = np.unique(np.asarray(classes))
            else:
                found = np.unique(y)
            if kind != "multilabel-indicator" and len(found) < 2:
                raise DataError(
                    f"a classifier needs samples of at least 2 classes, but y has {len(found)} class",
                    expected="at least two distinct labels",
                    got=f"only the label {found[0]!r}" if len(found) else "no labels",
                    fix="check the labels (a split or a filter may have removed a class)",
                )
            self.classes_ = found
            self._target_kind = "multilabel-indicator" if kind == "multilabel-indicator" else "multiclass"
            self.n_outputs_ = 1 if len(found) == 2 and kind != "multilabel-indicator" else len(found)
            self.out_activation_ = self._output
        else:
            self._check_same_classes(y, kind, incremental, classes)

        if self._multilabel:
            if self.class_weight is not None:
                raise ConfigError(
                    "class_weight applies to single-label targets",
                    expected="class_weight=None for multi-label y",
                    got=f"class_weight={self.class_weight!r}",
                    fix="pass per-row weights through fit(..., sample_weight=...)",
                )
            return y.astype(self.dtype), None
        index = np.searchsorted(self.classes_, y)
        if self.n_outputs_ == 1:
            T = (index == 1).astype(self.dtype)[:, None]
        else:
            T = np.zeros((len(y), self.n_outputs_), dtype=self.dtype)
            T[np.arange(len(y)), index] = 1
        return T, self._class_weights(index, incremental)

    def _check_same_classes(self, y, kind, incremental, classes):
        n_labels = len(self.classes_)
        if (kind == "multilabel-indicator") != self._multilabel or (self._multilabel and y.shape[1] != n_labels):
            raise DataError(
                "y is not the same kind of target as in the previous fit",
                expected=f"a 0/1 indicator matrix with {n_labels} columns" if self._multilabel else "class labels",
                got=f"{kind} targets" + (f" with {y.shape[1]} columns" if y.ndim == 2 else ""),
                fix="pass targets like the first ones, or set warm_start=False to start over",
            )
        if self._multilabel:
            return
        if incremental and classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise DataError(
                "classes differ from the first call to partial_fit",
                expected=repr(self.classes_.tolist()),
                got=repr(np.unique(np.asarray(classes)).tolist()),
                fix="pass the same classes (or leave classes out after the first call)",
            )
        present = np.unique(y)
        unknown = np.setdiff1d(present, self.classes_)
        if len(unknown) or (not incremental and len(present) != len(self.classes_)):
            raise DataError(
                "y has other classes than the fitted model" if not incremental else "y has classes not in classes_",
                expected=repr(self.classes_.tolist()),
                got=repr(present.tolist()),
                fix="with warm_start, fit on the same classes; with partial_fit, declare every class on the first call",
            )

    def _class_weights(self, index, incremental):
        cw = self.class_weight
        if cw is None:
            return None
        k = len(self.classes_)
        if isinstance(cw, str):  # "balanced"
            if incremental:
                raise ConfigError(
                    "class_weight='balanced' needs the whole data set, which partial_fit never sees",
                    expected="a dict {label: weight}",
                    got="class_weight='balanced'",
                    fix="compute it once: sklearn.utils.class_weight.compute_class_weight('balanced', ...)",
                )
            counts = np.bincount(index, minlength=k)
            return (len(index) / (k * counts))[index]
        per_class = np.ones(k)
        position = {label: i for i, label in enumerate(self.classes_.tolist())}
        for label, weight in cw.items():
            key = label.item() if isinstance(label, np.generic) else label
            if key not in position:
                raise _parameter_error(self, "class_weight", f"a dict keyed by class labels {self.classes_.tolist()}",
                                       cw, "use the labels found in y as keys")
            if isinstance(weight, bool) or not isinstance(weight, Real) or not (0 <= weight < math.inf):
                raise _parameter_error(self, "class_weight", "a dict of finite weights >= 0", cw,
                                       "give every class a weight such as 1.0 or 5.0")
            per_class[position[key]] = float(weight)
        return per_class[index]

    def _check_weighted_targets(self, T, weights):
        labels = self._stratify_labels(T) if not self._multilabel else None
        if labels is not None and len(np.unique(labels[weights > 0])) < 2:
            raise DataError(
                "only 1 class has non-zero weight, and a classifier needs at least 2 classes to learn from",
                expected="positive weights on rows of at least two classes",
                got="weights that leave a single class",
                fix="check sample_weight and class_weight",
            )

    def _stratify_labels(self, T):
        if self._multilabel:
            return None
        return T[:, 0].astype(np.int64) if T.shape[1] == 1 else T.argmax(axis=1)

    def _score_outputs(self, P, T, weights):
        """Accuracy (subset accuracy for multi-label) of network outputs against encoded targets."""
        if self._multilabel:
            hit = ((P > 0.5) == (T > 0.5)).all(axis=1)
        elif P.shape[1] == 1:
            hit = (P[:, 0] > 0.5) == (T[:, 0] > 0.5)
        else:
            hit = P.argmax(axis=1) == T.argmax(axis=1)
        return float(np.average(hit, weights=weights if weights.sum() > 0 else None))

    def _certainty(self, P, T):
        """Mean certainty given to the true class (per label for sigmoid outputs)."""
        if self._output == "softmax":
            return float((P * T).sum(axis=1).mean())
        return float(np.where(T > 0.5, P, 1 - P).mean())

    def _class_names(self):
        return [str(c) for c in self.classes_]

    # ------------------------------------------------------------ public API

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix for multi-label.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's share of the loss (multiplied by ``class_weight``).

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current dials and optimizer state.

        Parameters
        ----------
        X, y : as in :meth:`fit`
        classes : array-like, default=None
            Every class label of the whole data set; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Certainty per class, shape (n_samples, n_classes) (per label for multi-label)."""
        P = self._outputs(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - P, P])
        return P

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P)

    def predict(self, X):
        """Class labels (a 0/1 matrix for multi-label)."""
        P = self._outputs(X)
        if self._multilabel:
            return (P > 0.5).astype(np.int64)
        index = (P[:, 0] > 0.5).astype(np.int64) if self.n_outputs_ == 1 else P.argmax(axis=1)
        return self.classes_[index]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


# ----------------------------------------------------------------- regressor


class DialnetRegressor(RegressorMixin, _DialnetEstimator):
    __doc__ = f"""A multilayer perceptron regressor trained by dialnet's backpropagation.

    Identity outputs, one per target column, and the mean squared error.
    Targets are not scaled: scale them (e.g. with
    ``TransformedTargetRegressor``) when they are far from unit size.

    Parameters
    ----------{_COMMON_DOC}

    Attributes
    ----------
    n_outputs_ : int
        Number of target columns.
    out_activation_ : str
        "identity".{_COMMON_ATTRIBUTES}

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from dialnet.sklearn import DialnetRegressor
    >>> reg = make_pipeline(StandardScaler(), DialnetRegressor((32,), random_state=0))
    >>> reg.fit(X, y).score(X_test, y_test)  # doctest: +SKIP
    """

    _y_numeric = True
    _output = "identity"
    _base_loss = "mse"
    _task = "regression"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        optimizer=None,
        learning_rate_init=0.001,
        batch_size="auto",
        max_iter=200,
        alpha=0.0001,
        dropout=0.0,
        momentum=0.9,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        shuffle=True,
        random_state=None,
        warm_start=False,
        verbose=False,
        dtype="float32",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.dropout = dropout
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.dtype = dtype

    def _encode_targets(self, y, first_pass, incremental, classes):
        T = np.asarray(y, dtype=self.dtype)
        T = T.reshape(-1, 1) if T.ndim == 1 else T
        if first_pass:
            self.n_outputs_ = T.shape[1]
            self.out_activation_ = "identity"
        return T, None

    def _score_outputs(self, P, T, weights):
        return float(r2_score(T, P, sample_weight=weights if weights.sum() > 0 else None))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's share of the loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current dials and optimizer state."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values: shape (n_samples,) for one target, else (n_samples, n_targets)."""
        P = self._outputs(X).astype(np.float64)  # scikit-learn's regressors answer in float64
        return P[:, 0] if self.n_outputs_ == 1 else P

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
