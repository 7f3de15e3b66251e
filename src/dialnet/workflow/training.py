"""From a data set to a trained, measured model: split, preprocess, build, train, evaluate; and K-fold cross-validation.

What ``dialnet train`` does, as functions a Python user calls too::

    result = dialnet.train_model("seeds.csv")               # split, fit the Preprocessor, build, train, test
    result.net.save("seeds.safetensors", extra_metadata=result.metadata)
    cv = dialnet.cross_validate("seeds.csv", k=5)        # accuracy (or R^2 and RMSE) per fold, mean, spread

The preprocessing is fitted on the training rows only and each split is
transformed once: a table's text cells are encoded by column rules learned
on the training rows, never on a test row. Pass ``log=print`` to see the
lines the command line prints.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from .. import data as datasets
from ..data import Dataset
from ..data.preprocessing import Preprocessor
from ..data.labels import class_counts, label_warnings, labels_as_text
from ..data.splits import fold_rows, row_fingerprint, split_rows, subset
from ..diagnose.plots import GradientNormRecorder
from ..distributed import world
from ..core.memory import check_training
from ..errors import DataError, DivergenceError
from .metrics import format_regression, regression_metrics
from .recipe import DATA_DEFAULTS, DEMO, scaling_for

DEFAULT_SOURCE = "mnist-10k"
COMPILE_NOTE_S = 2.0  # a first compiled call this long compiled the kernels (loading them from the cache takes < 1 s)


def _quiet(_line):
    pass


def load_dataset(data=None, *, image_size=25, target=None, task="auto", cache=None, limit=None, seed=0) -> Dataset:
    """``data`` as a Dataset: one already loaded, or a source for :func:`dialnet.data.load` (None: the bundled digits).

    ``limit``: a CSV file is streamed and only a seeded random ``limit`` rows are kept.
    """
    if isinstance(data, Dataset):
        return data
    sources = [data] if data is None or isinstance(data, str) or not hasattr(data, "__len__") else list(data)
    sources = [s for s in sources if s is not None] or [DEFAULT_SOURCE]
    return datasets.load(sources[0] if len(sources) == 1 else sources, image_size=image_size, target=target, cache=cache,
                         task=task or "auto", limit=limit, seed=seed)


def _load_logged(data, log, **options):
    """:func:`load_dataset`, then its notes and the label warnings, a line each, to ``log``."""
    ds = load_dataset(data, **options)
    for line in ds.notes:
        log(f"Note: {line}")
    for line in label_warnings(ds):
        log(f"Warning: {line}")
    return ds


def _default_recipe(data, recipe):
    if recipe is not None:
        return recipe
    return DEMO if data is None else DATA_DEFAULTS


def _training_rows(ds):
    """A data set's training rows as the Preprocessor reads them: raw text cells for a CSV table, else numbers."""
    return ds.cells if ds.cells is not None else ds.X_train


def fit_preprocessor(dataset, X, y=None, *, scale="auto", dtype="float32"):
    """Learn a Preprocessor for ``dataset`` on its training rows ``X``; return ``(preprocessor, X transformed)``.

    ``X`` holds raw text cells when the data set is a CSV table (the column
    rules are fitted first), else numbers. For regression pass the
    training targets ``y``: their mean and std are learned too.
    """
    pre = Preprocessor(kind=dataset.kind, scaling=scaling_for(scale, dataset.kind), target=None if dataset.target is None else str(dataset.target),
                       image_size=dataset.image_size, background=dataset.background,
                       feature_names=None if dataset.cells is not None else dataset.feature_names)
    Xs = pre.fit_transform(X, dataset.column_names if dataset.cells is not None else None, dtype=dtype, where=dataset.name)
    if dataset.task == "regression" and y is not None:
        pre.fit_target(y)
    return pre, Xs


@dataclass
class PreparedData:
    """A data set split and preprocessed for training.

    ``X_train``/``X_test`` are network inputs; ``y_train`` is standardized
    for regression (``preprocessor.unscale_target`` undoes it) while
    ``y_test`` stays in the target's units.
    """

    dataset: Dataset
    preprocessor: Preprocessor
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    split_note: str
    notes: list = field(default_factory=list)
    split_info: dict | None = None

    def describe(self, n_test=None) -> str:
        """One line: where the rows come from, how many, what the inputs are, and the task."""
        ds, pre = self.dataset, self.preprocessor
        n_test = len(self.y_test) if n_test is None else n_test
        return describe_data(ds, pre, len(self.y_train), n_test, self.X_train.shape[1])


def describe_data(ds, pre, n_train, n_test, n_inputs) -> str:
    if ds.kind == "image":
        what = f"{ds.image_size}x{ds.image_size} images"
    elif pre.columns is not None:
        used = [rule for rule in pre.columns if rule.kind != "dropped"]
        n_text = sum(rule.kind == "categorical" for rule in used)
        what = f"from {len(used)} columns" + (f", {n_text} of them text, one-hot encoded" if n_text else "")
    else:
        what = "columns"
    if ds.task == "regression":
        goal = f"regression target {ds.target!r}"
    else:  # name the label column and what it holds: a wrong default column (a year, an ID) shows at once
        y = ds.y_train if ds.y_test is None else np.concatenate([ds.y_train, ds.y_test])
        where = f" in label column {ds.target!r}" if ds.target is not None else ""
        goal = f"{ds.n_classes} classes{where} ({class_counts(ds.class_names, y)})"
    test = f" / {n_test:,} test" if n_test else ""
    return f"Data: {ds.name}: {n_train:,} training{test} samples, {n_inputs} inputs ({what}), {goal}"


def prepare_data(dataset, *, scale="auto", test_split=0.2, limit=None, seed=0, dtype="float32") -> PreparedData:
    """Limit, split, fit the preprocessing on the training rows, transform both splits once.

    Data without a test split get one: ``test_split`` of the rows,
    stratified for classes, seeded. ``limit`` keeps at most that many
    training and test rows (a seeded random subset).
    """
    ds = dataset
    regression = ds.task == "regression"
    Xtr, ytr = subset(_training_rows(ds), ds.y_train, limit, seed)
    Xte, yte = subset(ds.X_test, ds.y_test, limit, seed + 1)
    note = "test split from the data set"
    split_info = None
    if Xte is None:
        # what `evaluate --split test` needs to find these very rows again: the seed, the fraction, and the rows' digest
        split_info = {"seed": int(seed), "test_split": float(test_split), "limit": limit, "stratified": not regression,
                      "n_rows": int(len(ytr)), "fingerprint": row_fingerprint(Xtr, labels_as_text(ds, ytr))}
        tr, te = split_rows(ytr, test_split, seed, stratify=not regression)
        Xtr, ytr, Xte, yte = Xtr[tr], ytr[tr], Xtr[te], ytr[te]
        how = "" if regression else "stratified, "
        note = f"{test_split:g} of the rows held out for testing ({how}seed {seed})"
    if len(Xte) == 0:
        raise DataError(f"no rows left over for testing in {ds.name}", expected="a class with at least 2 rows",
                        got=f"{len(ytr):,} rows, {len(set(ytr.tolist())):,} classes",
                        fix="use more rows per class, or --task regression if the label is a quantity")
    pre, Xtr_s = fit_preprocessor(ds, Xtr, ytr, scale=scale, dtype=dtype)
    notes = list(pre.notes)
    if pre.columns and ds.cells is not None:
        Xte, imputed = pre.encode(Xte)
        if imputed:
            notes.append(f"imputed {imputed:,} missing cells in the test rows with the training values")
    if regression:
        ytr = pre.scale_target(ytr)
    return PreparedData(ds, pre, Xtr_s, ytr, pre.scale(Xte, dtype), yte, note, notes, split_info)



@dataclass
class TrainResult:
    """What :func:`train_model` returns: the trained network (preprocessing and class names set), its history, the test metrics.

    ``metrics`` holds ``accuracy`` and ``correct`` for classes, or
    ``rmse``, ``mae``, ``r2`` and ``baseline_rmse`` (in the target's units)
    for regression; ``metadata`` is what ``dialnet train`` saves with the
    model (``net.save(path, extra_metadata=result.metadata)``).
    """

    net: object
    history: object
    data: PreparedData
    metrics: dict
    metadata: dict


def train_model(data=None, recipe=None, *, image_size=25, target=None, task="auto", cache=None, test_split=0.2, limit=None,
          progress=False, callbacks=None, checkpoint=None, checkpoint_every=None, resume=None, log=None,
          distributed=None, class_weight=None) -> TrainResult:
    """Load, split, preprocess, build, train and test, in one call: what ``dialnet train DATA`` does.

    Parameters
    ----------
    data : Dataset, str or list of str, optional
        A loaded data set or a source for :func:`dialnet.data.load`; None:
        the bundled mnist-10k digits.
    recipe : Recipe, optional
        The network and training settings. Default: ``DEMO`` (the 625-20-20-10
        sigmoid net) without ``data``, ``DATA_DEFAULTS`` with it.
    image_size, target, task, cache :
        How to read ``data`` (see :func:`dialnet.data.load`).
    test_split : float
        For data without a test split: the share of rows held out (stratified for classes, seeded).
    limit : int, optional
        At most this many training and test rows (a seeded random subset).
    progress, callbacks, checkpoint, checkpoint_every, resume :
        Passed to ``Network.fit``. A gradient-norm recorder is always added,
        so the history holds ``grad_norm_1, ...`` for ``dialnet plot``.
    log : callable, optional
        Called with each line the command line prints (e.g. ``print``).
    distributed : optional
        Passed to ``Network.fit`` (data-parallel on MPI): every rank loads
        ``data`` and prepares it the same way; pass ``log`` on rank 0 only.
    class_weight : "balanced" or dict, optional
        Passed to ``Network.fit`` (``dialnet train --class-weight balanced``).

    Returns
    -------
    TrainResult
    """
    log = log or _quiet
    recipe = _default_recipe(data, recipe)
    ds = _load_logged(data, log, image_size=image_size, target=target, task=task, cache=cache, limit=limit, seed=recipe.seed)
    prepared = prepare_data(ds, scale=recipe.scale, test_split=test_split, limit=limit, seed=recipe.seed, dtype=recipe.dtype)
    Xtr, ytr, Xte, yte, pre = prepared.X_train, prepared.y_train, prepared.X_test, prepared.y_test, prepared.preprocessor
    if len(Xtr) < 2:
        raise DataError("too few training samples", expected="at least 2", got=str(len(Xtr)), fix="use more data or a larger --limit")
    for line in prepared.notes:
        log(f"Note: {line}")
    regression = ds.task == "regression"
    log(prepared.describe())
    check_recipe_memory(recipe, Xtr.shape[1], 1 if regression else ds.n_classes)
    net = recipe.build_network(Xtr.shape[1], 1 if regression else ds.n_classes, ds.task)
    # data-parallel steps and checkpoints are mini-batches: "auto" then picks Adam, not full-batch L-BFGS
    stepwise = world(distributed) is not None or checkpoint is not None or resume is not None
    fit_kw = recipe.fit_options(len(Xtr), ds.task, stepwise=stepwise)
    if class_weight is not None:
        fit_kw["class_weight"] = class_weight
    log(recipe.describe(net, fit_kw) + (f"; class weights {class_weight}" if isinstance(class_weight, str) else ""))
    # gradient norms per layer go into the history, so `dialnet plot` can draw them later
    recorder = GradientNormRecorder(Xtr, ytr, seed=recipe.seed)
    try:
        history = net.fit(Xtr, ytr, progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                          callbacks=[recorder, *(callbacks or [])], distributed=distributed, **fit_kw)
    except DivergenceError as exc:
        # the network holds its last good weights (from before the bad step): hand it over, ready to save
        net.preprocessing = pre
        net.class_names = None if regression else list(ds.class_names)
        exc.network = net
        raise
    net.preprocessing = pre
    net.class_names = None if regression else list(ds.class_names)
    log(f"Stopped: {history.stop_reason}")
    if history.best_epoch is not None and history.best_epoch + 1 != len(history.epochs):
        log(f"Kept the weights of epoch {history.best_epoch + 1} (lowest validation loss)")
    engine = {"compiled": " (compiled step)", "numpy": " (NumPy layers)"}[history.engine]
    if history.engine_load_time > COMPILE_NOTE_S:
        engine = f" (compiled step; {history.engine_load_time:.1f} s of it compiling it for this machine, once)"
    log(f"Trained {len(history.epochs)} epochs in {history.train_time:.1f} s{engine}")
    meta = {"data": ds.name, "epochs": len(history.epochs), "stop_reason": history.stop_reason, "seed": recipe.seed,
            "history": history.history}
    if prepared.split_info is not None:
        meta["split"] = prepared.split_info
    if regression:
        metrics = regression_metrics(yte, pre.unscale_target(net.predict(Xte)), pre.target_mean)
        log(f"Test {format_regression(metrics)}; {len(yte):,} rows, {prepared.split_note}")
        meta.update(test_r2=metrics["r2"], test_rmse=metrics["rmse"], test_mae=metrics["mae"])
    else:
        correct = int((net.predict(Xte) == yte).sum())
        metrics = {"accuracy": correct / len(yte), "correct": correct}
        log(f"Test accuracy: {100 * metrics['accuracy']:.2f}% ({correct:,} of {len(yte):,}; {prepared.split_note})")
        meta["test_accuracy"] = metrics["accuracy"]
    return TrainResult(net, history, prepared, metrics, meta)


@dataclass
class FoldResult:
    """One fold of :func:`cross_validate`: its score (accuracy, or R^2 for regression) on the held-out rows."""

    fold: int
    n_test: int
    score: float
    rmse: float | None
    epochs: int
    seconds: float
    stop_reason: str


@dataclass
class CrossValidation:
    """What :func:`cross_validate` returns: one :class:`FoldResult` per fold, and their mean and spread.

    ``scores`` are accuracies for classes, R^2 for regression (then
    ``rmses`` too); ``std`` is the population standard deviation over folds.
    """

    task: str
    folds: list

    @property
    def k(self) -> int:
        return len(self.folds)

    @property
    def scores(self) -> np.ndarray:
        return np.array([f.score for f in self.folds])

    @property
    def rmses(self):
        return None if self.task != "regression" else np.array([f.rmse for f in self.folds])

    @property
    def mean(self) -> float:
        return float(self.scores.mean())

    @property
    def std(self) -> float:
        return float(self.scores.std())

    def summary(self) -> str:
        """``Mean accuracy: 93.33% (+/- 2.10) over 5 folds``, or mean R^2 and RMSE for regression."""
        if self.task == "regression":
            return (f"Mean R^2: {self.mean:.4f} (+/- {self.std:.4f}), mean RMSE {np.mean(self.rmses):.4g} "
                    f"over {self.k} folds")
        return f"Mean accuracy: {100 * self.mean:.2f}% (+/- {100 * self.std:.2f}) over {self.k} folds"


def cross_validate(data=None, recipe=None, k=5, *, image_size=25, target=None, task="auto", cache=None, limit=None,
                   log=None, distributed=None, class_weight=None) -> CrossValidation:
    """Seeded K-fold cross-validation (stratified for classes): train on K-1 folds, score the held-out one, K times.

    Every fold's encoding and scaling are fitted on its training folds only,
    and its network starts from the seed ``recipe.seed + fold``. A test split
    the data set comes with joins the rows. Arguments as for :func:`train_model`;
    nothing is saved. ``distributed=True`` under ``mpirun`` spreads the folds
    over the ranks (rank r trains folds r, r + N, ...; each fold in one
    process, so its score is the single-process one) and every rank returns
    all folds; pass ``log`` on rank 0 only.

    Returns
    -------
    CrossValidation
        Accuracy per fold (R^2 and RMSE for regression), mean and spread.
    """
    log = log or _quiet
    recipe = _default_recipe(data, recipe)
    ds = _load_logged(data, log, image_size=image_size, target=target, task=task, cache=cache, limit=limit, seed=recipe.seed)
    X, y = _training_rows(ds), ds.y_train
    if ds.X_test is not None:
        X, y = np.concatenate([X, ds.X_test]), np.concatenate([y, ds.y_test])
    X, y = subset(X, y, limit, recipe.seed)
    if k > len(y):
        raise DataError("more folds than samples", expected=f"--cv at most {len(y)}", got=str(k), fix="use --cv 5 or 10")
    regression = ds.task == "regression"
    how = "" if regression else "stratified, "
    folds = []
    spread = world(distributed)
    for fold, test in enumerate(fold_rows(y, k, recipe.seed, stratify=not regression)):
        if spread is not None and fold % spread.size != spread.rank:
            continue
        t0 = time.perf_counter()
        train_rows = np.setdiff1d(np.arange(len(y)), test, assume_unique=True)
        # encoding and scaling constants come from the training folds only: the held-out fold stays unseen
        pre, Xtr = fit_preprocessor(ds, X[train_rows], y[train_rows], scale=recipe.scale, dtype=recipe.dtype)
        ytr = pre.scale_target(y[train_rows]) if regression else y[train_rows]
        if fold == 0:
            check_recipe_memory(recipe, Xtr.shape[1], 1 if regression else ds.n_classes)
        net = recipe.build_network(Xtr.shape[1], 1 if regression else ds.n_classes, ds.task)
        net.reset_parameters(recipe.seed + fold)
        fit_kw = recipe.fit_options(len(train_rows), ds.task)
        if class_weight is not None:
            fit_kw["class_weight"] = class_weight
        if fold == 0:
            log(describe_data(ds, pre, len(y), 0, Xtr.shape[1]) + f"; {k}-fold cross-validation ({how}seed {recipe.seed})")
            log(recipe.describe(net, fit_kw))
        history = net.fit(Xtr, ytr, progress=False, **fit_kw)
        out = net.predict(pre.transform(X[test], recipe.dtype))
        if regression:
            m = regression_metrics(y[test], pre.unscale_target(out), pre.target_mean)
            score, rmse = m["r2"], m["rmse"]
        else:
            score, rmse = float((out == y[test]).mean()), None
        result = FoldResult(fold, len(test), score, rmse, len(history.epochs), time.perf_counter() - t0, history.stop_reason)
        folds.append(result)
        if spread is None:
            log(_fold_line(result, k))
    if spread is not None:  # every rank's folds, in fold order, on every rank
        folds = sorted((f for part in spread.gather(folds) for f in part), key=lambda f: f.fold)
        for result in folds:
            log(_fold_line(result, k))
    cv = CrossValidation(ds.task, folds)
    log(cv.summary())
    return cv


def _fold_line(result, k) -> str:
    score = f"R^2 {result.score:.4f}, RMSE {result.rmse:.4g}" if result.rmse is not None else f"accuracy {100 * result.score:.2f}%"
    return (f"fold {result.fold + 1}/{k}: {score} on {result.n_test} rows "
            f"({result.epochs} epochs, {result.seconds:.1f} s; {result.stop_reason})")


def check_recipe_memory(recipe, n_inputs, n_outputs):
    """Refuse, before anything is allocated, a recipe whose network, optimizer state, copies and batch exceed the
    available memory (a ``ConfigError`` naming the need; see :mod:`dialnet.core.memory`)."""
    return check_training([n_inputs, *recipe.hidden, n_outputs], recipe.dtype, recipe.batch_size, recipe.optimizer)


def record_gradient_norms(net, X, y, epochs=5, seed=0, max_rows=2000):
    """Train a fresh, seeded copy of ``net``'s architecture on (a sample of) ``X`` while recording ``||dL/dW||``.

    For models whose file holds no recorded gradient norms. Returns the
    :class:`~dialnet.diagnose.plots.GradientNormRecorder` and how many rows it trained on.
    """
    fresh = copy.deepcopy(net)
    fresh.clear_cache()
    fresh.history = None
    fresh.reset_parameters(seed)
    rows = np.sort(np.random.default_rng(seed).choice(len(X), size=min(len(X), max_rows), replace=False))
    recorder = GradientNormRecorder(X[rows], y[rows], seed=seed)
    fresh.fit(X[rows], y[rows], loss=net.default_loss(), epochs=epochs, seed=seed, callbacks=[recorder])
    return recorder, len(rows)
