"""scikit-learn estimators backed by dialnet networks.

``DialnetClassifier`` and ``DialnetRegressor`` follow scikit-learn's
conventions (``fit``/``partial_fit``/``predict``/``score``, parameters
checked through ``_parameter_constraints``, ``clone``-able, usable in a
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``) while the training
itself is dialnet's: :func:`dialnet.mlp` builds the network and
:meth:`dialnet.Network.fit` runs the mini-batch backpropagation loop.
They do not scale inputs: put a ``StandardScaler`` in front, as with
scikit-learn's own ``MLPClassifier``.

This module holds the two public estimators (their targets, scores and
documentation); what they share (errors, parameters, the fit driver) is in
``dialnet._sklearn_base``. Only these two modules import scikit-learn (the
``sklearn`` extra). Bad input raises a :class:`dialnet.DialnetError` that is
also the exception scikit-learn would raise (``InvalidParameterError``,
``NotFittedError``, ``ValueError``, ``TypeError``) with scikit-learn's
message, so code written for either library keeps working.

Both take every constructor parameter of scikit-learn's ``MLPClassifier`` /
``MLPRegressor`` with the same meaning (``DialnetClassifier(**MLPClassifier()
.get_params())`` works), ``solver="lbfgs"`` included, plus dialnet's extras
(``optimizer``, ``dropout``, ``target_certainty``, ``class_weight``, ``dtype``).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from ._sklearn_base import (
    DialnetEstimator,
    HalfPoisson,
    InputTypeError,
    NotFittedError,
    ParameterError,
    _dialnet_errors,
    _parameter_error,
)
from .errors import ConfigError, DataError

__all__ = ["DialnetClassifier", "DialnetRegressor", "ParameterError", "NotFittedError", "InputTypeError"]


_COMMON_DOC = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; ``()`` gives no hidden layer.
    activation : str or list of str, default="relu"
        Hidden activation, one name for all hidden layers or one per layer:
        "identity", "sigmoid" (alias "logistic"), "tanh", "relu", "leaky_relu".
    solver : {"adam", "sgd", "lbfgs", "rmsprop"}, default="adam"
        The optimizer that turns the dials. "sgd" uses momentum ``momentum``
        (Nesterov's with ``nesterovs_momentum``; plain SGD when
        ``momentum=0``). "lbfgs" is scipy's L-BFGS-B on all rows at once
        (``dialnet.LBFGS``): often the best and fastest on small data sets,
        as scikit-learn advises; ``max_iter`` then counts its iterations,
        and ``batch_size``, ``early_stopping`` and ``n_iter_no_change`` do
        not apply (as in scikit-learn).
    optimizer : dialnet Optimizer or LBFGS, default=None
        A configured optimizer, e.g. ``dialnet.Adam(lr=3e-3, betas=(0.9, 0.99))``;
        overrides ``solver`` and its settings. A copy is used, so the
        instance passed is never changed.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        scikit-learn's learning-rate schedule, for ``solver="sgd"``:
        "invscaling" is ``learning_rate_init / (t + 1) ** power_t`` after
        every epoch (``t``: samples seen), "adaptive" divides the rate by 5
        each time the loss stops improving (see ``n_iter_no_change``) and
        stops once it is below 1e-6.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
        The exponent of "invscaling".
    batch_size : int or "auto", default="auto"
        Samples per gradient step; "auto" is ``min(200, n_samples)``.
    max_iter : int, default=200
        Maximum number of epochs (passes over the data); for "lbfgs", of
        iterations.
    max_fun : int, default=15000
        For "lbfgs": at most this many loss-and-gradient evaluations.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of its moment estimates.
    epsilon : float, default=1e-8
        Adam's (and RMSprop's) numerical-stability term.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for "sgd" (when ``momentum > 0``).
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
        Progress as ``fit(verbose=...)`` shows it: 1 (or True) a live bar on
        a terminal, a line per epoch in a log or a notebook; 2 a line per epoch.
    dtype : {"float64", "float32"}, default="float64"
        Float type of the network. float64 is the default because it makes
        the estimator exact where scikit-learn's checks compare at
        ``rtol=1e-7`` (a weight of 2 against a repeated row; one row against
        many rows through BLAS), so ``check_estimator`` passes on the
        defaults; scikit-learn's MLP computes in float64 too. "float32" is
        about twice as fast on large data and agrees to ~1e-6."""

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


def _stochastic(est):
    """partial_fit exists for the stochastic solvers only (as in scikit-learn): not for "lbfgs"."""
    if est._full_batch:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {est.solver!r} is not stochastic.")
    return True


# ---------------------------------------------------------------- classifier


class DialnetClassifier(ClassifierMixin, DialnetEstimator):
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
        value (on the validation rows with early stopping, else the running
        mean over the epoch's training batches). The dials that reached it
        are kept, even with early stopping.

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
        **DialnetEstimator._parameter_constraints,
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
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        batch_size="auto",
        max_iter=200,
        max_fun=15000,
        alpha=0.0001,
        dropout=0.0,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
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
        dtype="float64",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.max_fun = max_fun
        self.alpha = alpha
        self.dropout = dropout
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
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

    def _fit_targets(self, T):
        """Class indices for a softmax output (its fused cross-entropy takes the fast path), else ``T``."""
        return T.argmax(axis=1) if self._output == "softmax" else T

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
            Each row's share of the loss (multiplied by ``class_weight``):
            every batch's loss is the weighted mean of its rows' losses.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight)

    @available_if(_stochastic)
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
        """Certainty per class, shape (n_samples, n_classes) (per label for multi-label).

        A sigmoid's certainty is kept strictly between 0 and 1 (a saturated
        output is one float step inside), as scikit-learn's checks require.
        """
        P = self._outputs(X)
        if self._output == "sigmoid":
            eps = np.finfo(P.dtype).eps
            P = np.clip(P, eps, 1 - eps)
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


class DialnetRegressor(RegressorMixin, DialnetEstimator):
    __doc__ = f"""A multilayer perceptron regressor trained by dialnet's backpropagation.

    Identity outputs, one per target column, and the mean squared error.
    Targets are not scaled: scale them (e.g. with
    ``TransformedTargetRegressor``) when they are far from unit size.

    Parameters
    ----------
    loss : {{"squared_error", "poisson"}}, default="squared_error"
        "squared_error" trains identity outputs on the mean squared error;
        "poisson" (counts, rates: targets >= 0) trains on half the Poisson
        deviance with a log link: predictions are ``exp`` of the outputs.{_COMMON_DOC}

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

    _parameter_constraints: dict = {
        **DialnetEstimator._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }
    _y_numeric = True
    _output = "identity"
    _task = "regression"

    @property
    def _base_loss(self):
        return "poisson" if self.loss == "poisson" else "mse"

    @property
    def _train_loss(self):
        return HalfPoisson() if self.loss == "poisson" else "mse"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="squared_error",
        solver="adam",
        optimizer=None,
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        batch_size="auto",
        max_iter=200,
        max_fun=15000,
        alpha=0.0001,
        dropout=0.0,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        shuffle=True,
        random_state=None,
        warm_start=False,
        verbose=False,
        dtype="float64",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.solver = solver
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.max_fun = max_fun
        self.alpha = alpha
        self.dropout = dropout
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
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
        if self.loss == "poisson" and (T < 0).any():
            raise DataError(
                "Some value(s) of y are negative which is not allowed for Poisson regression",
                expected="targets >= 0 (counts, rates)",
                got=f"minimum {float(T.min()):g}",
                fix="use loss='squared_error' for targets that can be negative",
            )
        if first_pass:
            self.n_outputs_ = T.shape[1]
            self.out_activation_ = "identity"
        return T, None

    def _score_outputs(self, P, T, weights):
        P = np.exp(P) if self.loss == "poisson" else P
        return float(r2_score(T, P, sample_weight=weights if weights.sum() > 0 else None))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's share of the loss: every batch's loss is the weighted
            mean of its rows' losses.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight)

    @available_if(_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current dials and optimizer state."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values: shape (n_samples,) for one target, else (n_samples, n_targets)."""
        P = self._outputs(X).astype(np.float64)  # scikit-learn's regressors answer in float64
        if self.loss == "poisson":
            P = np.exp(P)
        return P[:, 0] if self.n_outputs_ == 1 else P

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
