"""Model files written by dialnet 0.1.0, before the redesign, still load and answer the same.

``tests/files/fixtures/v0.1.0/`` holds two files that version wrote with `dialnet
train` (a CSV model with an ID column, a text column and blanks; a digits
model) and, in ``expected.json``, the encoded inputs and certainties that
version computed. Nothing here is regenerated: these bytes are the contract.
"""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pytest

import dialnet as dn
from dialnet.cli import main

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "v0.1.0"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("name", ["table", "digits"])
def test_old_model_files_load_and_predict_the_same(name):
    net = dn.load(FIXTURES / f"{name}_model.safetensors")
    want = EXPECTED[name]
    assert net.class_names == want["class_names"]
    X = np.asarray(want["X"], dtype=np.float32)
    np.testing.assert_allclose(net.predict_proba(X), np.asarray(want["proba"]), rtol=1e-5, atol=1e-6)


def _accuracy_line(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return re.search(r"Accuracy: [0-9.]+% \([0-9,]+ of [0-9,]+\)", out).group(0)


def test_old_table_model_evaluates_raw_csv_rows_as_before(capsys):
    """The stored column rules (ID dropped, one-hot, median for blanks, scaling) still prepare raw rows."""
    argv = ["evaluate", str(FIXTURES / "table_model.safetensors"), str(FIXTURES / "table.csv"), "--target", "label"]
    assert _accuracy_line(argv, capsys) == "Accuracy: 61.67% (74 of 120)"


def test_old_digits_model_evaluates_the_bundled_test_digits_as_before(capsys):
    argv = ["evaluate", str(FIXTURES / "digits_model.safetensors"), "mnist-10k"]
    assert _accuracy_line(argv, capsys) == "Accuracy: 22.55% (451 of 2,000)"


def test_old_table_model_encodes_raw_cells_as_before():
    """ID dropped, text one-hot, blank -> the stored median, standard scaling: the same inputs as 0.1.0 computed."""
    net = dn.load(FIXTURES / "table_model.safetensors")
    want = EXPECTED["table"]
    assert any(cell == "" for row in want["cells"] for cell in row), "the fixture rows must include a blank cell"
    X = net.preprocessing.transform(np.asarray(want["cells"], dtype=object))
    np.testing.assert_allclose(X, np.asarray(want["X"]), rtol=1e-6, atol=1e-6)
