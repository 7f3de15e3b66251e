"""Every Python example in the README runs, as written, in the order it is written.

The blocks share one namespace, as they would in a notebook, starting from
``X, y``: 600 of the bundled digits at 25x25 (the articles' 625 inputs).
A renamed function, a moved module or a changed signature fails here first.
"""

from __future__ import annotations

import pathlib
import re
import warnings

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_the_readme_has_python_examples():
    assert len(python_blocks()) >= 5


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    pytest.importorskip("onnx")
    import dialnet as dn

    ds = dn.data.load("mnist-10k", image_size=25)
    rows = np.random.default_rng(0).permutation(len(ds.X_train))[:600]
    namespace = {"X": ds.X_train[rows], "y": ds.y_train[rows], "__name__": "readme"}
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the divergence and doctor examples warn on purpose
        for number, block in enumerate(python_blocks(), 1):
            try:
                exec(compile(block, f"README.md python block {number}", "exec"), namespace)  # noqa: S102
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"README python block {number} failed: {type(exc).__name__}: {exc}\n{block}")
    assert (tmp_path / "model.safetensors").exists()
