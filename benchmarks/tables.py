"""Small tables, 5-fold: dialnet's defaults against scikit-learn's MLP, gradient boosting and a linear model.

Every table is a CSV file written from data that ships with scikit-learn
(iris, wine, breast_cancer, digits; diabetes for regression) or built here
from a seed, like the UCI tables practitioners meet: ``synth_class`` (1,000
rows, 20 numbers, 3 classes, 5% flipped labels), ``friedman`` (1,000 rows,
Friedman's #1 regression with noise) and ``adultlike`` (2,000 rows: an ID,
numbers with blanks, text columns with blanks, a 14% minority class).

- dialnet: ``dialnet.cross_validate(path, k=5)``, what ``dialnet train
  DATA --cv 5`` runs (reading the CSV, the encoding and scaling per fold,
  ``DATA_DEFAULTS``).
- scikit-learn, on the same folds (dialnet's seeded, stratified folds of
  the same rows), reading the same CSV with pandas: numbers imputed with
  the median and standardized, text imputed as "(missing)" and one-hot
  encoded (unknown values ignored), the ID column left out; then
  ``MLPClassifier()`` / ``MLPRegressor()`` (defaults; the regressor's
  target standardized too, as dialnet's is, without which its R^2 on
  diabetes is below 0), ``HistGradientBoosting*()`` (defaults), and
  ``LogisticRegression(max_iter=1000)`` / ``Ridge()``.

Scores are the 5-fold means (accuracy, or R^2); times are wall seconds for
the whole 5-fold run, reading the CSV included, tools run one after the
other on one table before the next table. Nothing is tuned per table.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
import warnings

import numpy as np

K = 5
CLASSIFICATION, REGRESSION = "classification", "regression"
BUNDLED = (("iris", CLASSIFICATION), ("wine", CLASSIFICATION), ("breast_cancer", CLASSIFICATION),
           ("digits", CLASSIFICATION), ("diabetes", REGRESSION))
BUILT = (("synth_class", CLASSIFICATION), ("friedman", REGRESSION), ("adultlike", CLASSIFICATION))
QUICK = ("iris", "diabetes")  # --quick: one table of each task
PEERS = ("sklearn MLP", "HGB", "linear")


def _write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_tables(folder, names=None):
    """Write the tables as CSV files in ``folder``; return ``[(name, path, task)]``."""
    from sklearn import datasets  # noqa: PLC0415

    out = []
    for name, task in BUNDLED + BUILT:
        if names is not None and name not in names:
            continue
        path = os.path.join(folder, f"{name}.csv")
        if name in dict(BUNDLED):
            b = getattr(datasets, f"load_{name}")()
            cols = [str(c).replace(" ", "_") for c in getattr(b, "feature_names", range(b.data.shape[1]))]
            labels = ([repr(float(t)) for t in b.target] if task == REGRESSION
                      else [f"class_{b.target_names[t]}" for t in b.target])
            _write(path, [*cols, "target"], ([*map(repr, map(float, r)), t] for r, t in zip(b.data, labels)))
        elif name == "synth_class":
            X, y = datasets.make_classification(n_samples=1000, n_features=20, n_informative=6, n_redundant=4,
                                                n_classes=3, flip_y=0.05, random_state=0)
            _write(path, [f"f{i}" for i in range(20)] + ["target"], ([*map(repr, map(float, r)), f"c{t}"] for r, t in zip(X, y)))
        elif name == "friedman":
            X, y = datasets.make_friedman1(n_samples=1000, noise=1.0, random_state=0)
            _write(path, [f"f{i}" for i in range(X.shape[1])] + ["target"],
                   ([*map(repr, map(float, r)), repr(float(t))] for r, t in zip(X, y)))
        else:
            _write(path, ["id", "age", "hours", "education", "job", "sex", "target"], _adultlike_rows())
        out.append((name, path, task))
    return out


def _adultlike_rows(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    age, hours = rng.integers(18, 80, n), np.clip(rng.normal(40, 12, n), 5, 90).round()
    edu = rng.choice(["HS", "Some-college", "Bachelors", "Masters", "Doctorate"], n, p=[0.35, 0.25, 0.25, 0.1, 0.05])
    job = rng.choice(["Sales", "Tech", "Admin", "Craft", "Service", "Exec"], n)
    sex = rng.choice(["M", "F"], n)
    score = (0.04 * (age - 40) - 0.006 * (age - 40) ** 2 + 0.03 * (hours - 40)
             + np.select([edu == "HS", edu == "Some-college", edu == "Bachelors", edu == "Masters"], [-1, -0.5, 0.5, 1], 1.5)
             + np.select([job == "Exec", job == "Tech", job == "Service"], [1, 0.6, -0.8], 0) + 0.3 * (sex == "M")
             + rng.normal(0, 1, n))
    label = np.where(score > 0.6, ">50K", "<=50K")
    blank = lambda: rng.random() < 0.05  # noqa: E731
    for i in range(n):
        yield [i, "" if blank() else int(age[i]), "" if blank() else int(hours[i]), edu[i], "" if blank() else job[i],
               sex[i], label[i]]


def _sklearn_models(task):
    from sklearn.compose import TransformedTargetRegressor  # noqa: PLC0415
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression, Ridge  # noqa: PLC0415
    from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    if task == REGRESSION:
        return {"sklearn MLP": TransformedTargetRegressor(MLPRegressor(random_state=0), transformer=StandardScaler()),
                "HGB": HistGradientBoostingRegressor(random_state=0), "linear": Ridge()}
    return {"sklearn MLP": MLPClassifier(random_state=0), "HGB": HistGradientBoostingClassifier(random_state=0),
            "linear": LogisticRegression(max_iter=1000)}


def _sklearn_cv(path, task, folds, model):
    """Read the CSV with pandas, then fit and score ``model`` behind the usual preprocessing on each fold."""
    import pandas as pd  # noqa: PLC0415
    from sklearn.base import clone  # noqa: PLC0415
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.impute import SimpleImputer  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: PLC0415

    frame = pd.read_csv(path)
    y = frame.pop("target").to_numpy()
    frame = frame.drop(columns=[c for c in frame.columns if c.lower() == "id"])
    numbers = [c for c in frame.columns if frame[c].dtype.kind in "fi"]
    texts = [c for c in frame.columns if c not in numbers]
    parts = [("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers)]
    if texts:
        parts.append(("texts", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                             OneHotEncoder(handle_unknown="ignore", sparse_output=False)), texts))
    scores = []
    for test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        pipe = make_pipeline(ColumnTransformer(parts), clone(model))
        pipe.fit(frame.iloc[train], y[train])
        scores.append(pipe.score(frame.iloc[test], y[test]))
    return float(np.mean(scores))


def _folds(path, task, seed):
    """dialnet's folds of the CSV's rows (what cross_validate uses), so every tool is scored on the same splits."""
    import dialnet as dn  # noqa: PLC0415
    from dialnet.data.splits import fold_rows  # noqa: PLC0415

    ds = dn.data.load(path, target="target", task=task)
    return list(fold_rows(ds.y_train, K, seed, stratify=task != REGRESSION))


def measure(quick=False, names=None, recipe=None, folder=None):
    """Score and time every tool on every table; ``{"tables": [...]}``, one dict per table."""
    import dialnet as dn  # noqa: PLC0415

    recipe = recipe or dn.workflow.DATA_DEFAULTS
    names = names or (QUICK if quick else None)
    own = folder is None
    folder = folder or tempfile.mkdtemp(prefix="dialnet-tables-")
    results = []
    try:
        for name, path, task in write_tables(folder, names):
            folds = _folds(path, task, recipe.seed)
            row = {"table": name, "task": task, "rows": int(sum(len(f) for f in folds)), "score": {}, "seconds": {}}
            t = time.perf_counter()
            cv = dn.cross_validate(path, recipe, K, target="target", task=task)
            row["seconds"]["dialnet"], row["score"]["dialnet"] = time.perf_counter() - t, float(cv.mean)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the MLPs' ConvergenceWarning at max_iter
                for peer, model in _sklearn_models(task).items():
                    t = time.perf_counter()
                    row["score"][peer] = _sklearn_cv(path, task, folds, model)
                    row["seconds"][peer] = time.perf_counter() - t
            results.append(row)
    finally:
        if own:
            for name in os.listdir(folder):
                os.remove(os.path.join(folder, name))
            os.rmdir(folder)
    return {"k": K, "recipe": repr(recipe), "tables": results}


def format_report(report) -> str:
    head = ("table", "rows", "metric", "dialnet", *PEERS, "dialnet s", *(f"{p} s" for p in PEERS), "time vs MLP")
    rows = []
    for r in report["tables"]:
        s, t = r["score"], r["seconds"]
        metric = "R^2" if r["task"] == REGRESSION else "accuracy"
        rows.append((r["table"], f"{r['rows']:,}", metric, f"{s['dialnet']:.4f}", *(f"{s[p]:.4f}" for p in PEERS),
                     f"{t['dialnet']:.2f}", *(f"{t[p]:.2f}" for p in PEERS), f"{t['dialnet'] / t['sklearn MLP']:.2f}x"))
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    line = lambda row: "  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(row))  # noqa: E731
    out = [f"small tables, {report['k']}-fold cross-validation (means; same folds for every tool; seconds for all folds)",
           line(head), "  ".join("-" * w for w in widths), *map(line, rows)]
    better = sum(r["score"]["dialnet"] >= r["score"]["sklearn MLP"] - 0.005 for r in report["tables"])
    ratio = [r["seconds"]["dialnet"] / r["seconds"]["sklearn MLP"] for r in report["tables"]]
    out.append(f"dialnet matches (within 0.005) or beats scikit-learn's MLP on {better} of {len(rows)} tables; "
               f"time vs its MLP: {min(ratio):.2f}x to {max(ratio):.2f}x")
    return "\n".join(out)


if __name__ == "__main__":
    print(format_report(measure()))
