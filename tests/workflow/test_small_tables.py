"""The small-data rule of DATA_DEFAULTS: L-BFGS with L2 on small tables, Adam with a hold-out above, and the tables benchmark."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import dialnet as dn
from dialnet.workflow import recipe as recipes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_auto_picks_lbfgs_on_small_data_and_adam_above():
    r = recipes.DATA_DEFAULTS
    small = r.fit_options(recipes.SMALL_ROWS, "classification")
    assert isinstance(small["optimizer"], dn.LBFGS)
    assert (small["epochs"], small["validation_split"], small["early_stopping"], small["lr_schedule"]) == (200, None, None, None)
    assert small["l2"] == 1e-2 and r.fit_options(500, "regression")["l2"] == 3e-2
    big = r.fit_options(recipes.SMALL_ROWS + 1, "classification")
    assert isinstance(big["optimizer"], dn.Adam) and big["validation_split"] == 0.1 and big["l2"] == 1e-4
    assert big["early_stopping"] >= recipes.MIN_PATIENCE and big["lr_schedule"] is not None
    stepwise = r.fit_options(200, "classification", stepwise=True)  # a caller that steps (explore, checkpoints)
    assert isinstance(stepwise["optimizer"], dn.Adam) and stepwise["validation_split"] == 0.1
    assert r.hidden == (100,) and r.optimizer == "auto"


def test_explicit_settings_win_over_auto():
    r = dn.Recipe(optimizer="adam", l2=0.0, validation_split=0.2, early_stopping=5)
    kw = r.fit_options(150, "classification")
    assert isinstance(kw["optimizer"], dn.Adam) and kw["l2"] == 0.0 and kw["validation_split"] == 0.2
    assert kw["early_stopping"] == 5
    held = dn.Recipe(optimizer="lbfgs", validation_split=0.1).fit_options(10_000, "classification")
    assert isinstance(held["optimizer"], dn.LBFGS) and held["early_stopping"] == recipes.LBFGS_PATIENCE
    assert recipes.DEMO.fit_options(100)["optimizer"].name == "adam"  # the demo keeps its recipe
    for bad in (dict(l2=-1.0), dict(l2="lots"), dict(validation_split=1.0), dict(optimizer="newton")):
        with pytest.raises(dn.DialnetError):
            dn.Recipe(**bad)


def test_describe_says_what_runs():
    r = recipes.DATA_DEFAULTS
    net = r.build_network(4, 3)
    line = r.describe(net, r.fit_options(150))
    assert "Network 4-100-3" in line and "L-BFGS (full batch), L2 0.01, no hold-out, at most 200 iterations" in line
    line = r.describe(net, r.fit_options(10_000))
    assert "adam lr 0.001, batch 32, L2 0.0001, 10% held out, at most" in line and "epochs" in line


def test_defaults_on_iris_cross_validate_well(tmp_path):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    iris = sklearn_datasets.load_iris()
    path = tmp_path / "iris.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("a,b,c,d,species\n")
        for row, t in zip(iris.data, iris.target):
            fh.write(",".join(map(str, row)) + f",{iris.target_names[t]}\n")
    cv = dn.cross_validate(str(path), k=5)
    assert cv.mean >= 0.93  # scikit-learn's MLPClassifier scores 0.93-0.95 here
    assert all("L-BFGS" in f.stop_reason or "iterations" in f.stop_reason for f in cv.folds)


def test_tables_benchmark_runs_quick(tmp_path):
    pytest.importorskip("pandas")
    sys.path.insert(0, ROOT)
    from benchmarks import tables  # noqa: PLC0415

    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1):  # tiny products: threads only wait on each other on a busy machine
        report = tables.measure(quick=True, folder=str(tmp_path))
    assert [r["table"] for r in report["tables"]] == list(tables.QUICK)
    text = tables.format_report(report)
    assert "iris" in text and "diabetes" in text and "time vs its MLP" in text
    for r in report["tables"]:
        assert set(r["score"]) == {"dialnet", *tables.PEERS} and np.isfinite(list(r["score"].values())).all()
    os.makedirs(tmp_path / "all")
    written = tables.write_tables(str(tmp_path / "all"))
    assert len(written) == 8 and all(os.path.getsize(p) > 0 for _, p, _ in written)
