"""The doctor's class-imbalance finding points at class_weight, and following it raises the rare class's recall."""

from __future__ import annotations

import numpy as np

import dialnet as dn


def test_imbalance_finding_suggests_class_weight_and_the_advice_helps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2200, 2))
    y = (X[:, 0] + 0.3 * rng.normal(size=2200) > 1.6).astype(np.int64)  # about 5% ones
    diagnosis = dn.doctor(dn.mlp([2, 8, 2], seed=0), X, y, probe=False)
    finding = diagnosis.findings[diagnosis.codes.index("class_imbalance")]
    assert "class_weight='balanced'" in finding.fix and "--class-weight balanced" in finding.fix
    recall = {}
    for cw in (None, "balanced"):
        net = dn.mlp([2, 8, 2], seed=0)
        net.fit(X, y, epochs=15, seed=0, class_weight=cw)
        recall[cw] = float((net.predict(X)[y == 1] == 1).mean())
    assert recall["balanced"] > recall[None] + 0.1
