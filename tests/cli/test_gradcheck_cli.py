"""`dialnet gradcheck`: turning every dial by hand agrees with backprop, and backprop is much faster."""

from __future__ import annotations

import re

import numpy as np

import dialnet as dn
from dialnet.cli import main
from dialnet.core.layers import Sigmoid


def test_every_dial_agrees_and_backprop_is_faster(capsys):
    assert main(["gradcheck", "--layers", "12,6,5,3", "--samples", "4", "--compare-time", "--repeats", "5"]) == 0
    out = capsys.readouterr().out
    total = dn.mlp([12, 6, 5, 3], seed=0).count_parameters()
    assert f"{total} dials turned by hand" in out and "they agree" in out
    assert out.count("agree") >= 6  # one line per weight and bias array
    assert f"{2 * total} forward passes" in out
    speedup = float(re.search(r"Backprop is ([\d,]+)x faster", out).group(1).replace(",", ""))
    assert speedup > 1


def test_the_articles_network_with_a_sample_of_dials(capsys):
    assert main(["gradcheck", "--max-dials", "3", "--samples", "2", "--compare-time", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "Network 625-20-20-10" in out and "13,150 dials" in out
    assert "all 13,150 dials by hand would take about" in out


def test_a_wrong_backward_pass_is_caught(monkeypatch, capsys):
    def wrong_backward(self, da, need_dx=True):  # forgets the factor a: da * (1 - a)
        return da * (1 - self.a)

    monkeypatch.setattr(Sigmoid, "backward", wrong_backward)
    assert main(["gradcheck", "--layers", "5,4,3", "--samples", "3"]) == 1
    out = capsys.readouterr().out
    assert "DIFFER" in out and "they DIFFER" in out


def test_model_file_and_errors(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    dn.mlp([6, 4, 1], activation="tanh", output="sigmoid", seed=1).save(model)
    assert main(["gradcheck", str(model), "--samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "Network 6-4-1 from" in out and "they agree" in out
    assert main(["gradcheck", str(model), "--layers", "3,2"]) == 2
    assert main(["gradcheck", "--layers", "3,2", "--samples", "0"]) == 2
    assert main(["gradcheck", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("hint:") == 3


def test_regression_networks_get_real_valued_targets(capsys):
    assert main(["gradcheck", "--layers", "3,4,2", "--output", "identity", "--samples", "3"]) == 0
    assert "mse loss" in capsys.readouterr().out
    net = dn.mlp([3, 4, 2], output="identity", seed=0)
    from dialnet.cli.gradcheck import random_batch

    X, y = random_batch(net, 5, 0)
    assert X.shape == (5, 3) and y.shape == (5, 2) and y.dtype == np.float64
