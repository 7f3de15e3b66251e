"""Plots: every figure renders to a real PNG with content; the gradient-norm recorder measures what it says."""

from __future__ import annotations

import numpy as np
import pytest

import dialnet as dn
from dialnet.diagnose import plots
from dialnet.cli import main


def assert_real_png(path, min_bytes=5_000):
    from PIL import Image

    assert path.stat().st_size >= min_bytes
    with Image.open(path) as img:
        assert img.format == "PNG"
        rgb = np.asarray(img.convert("RGB"), dtype=np.int32)
    assert rgb.shape[0] >= 200 and rgb.shape[1] >= 200
    inked = (np.abs(rgb - 255).sum(axis=2) > 30).mean()  # share of pixels that are not (near) white
    assert 0.02 < inked < 0.95
    colors = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert colors.size > 20


@pytest.fixture(scope="module")
def trained():
    """A 36-8-3 sigmoid net on 6x6 'images' of three stripe directions, trained with validation."""
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 3, size=n)
    img = rng.random((n, 6, 6)) * 0.3
    for i, k in enumerate(y):
        if k == 0:
            img[i, 2:4, :] += 0.7
        elif k == 1:
            img[i, :, 2:4] += 0.7
        else:
            img[i, np.arange(6), np.arange(6)] += 0.7
    X = img.reshape(n, -1)
    net = dn.mlp([36, 8, 3], activation="sigmoid", seed=0)
    recorder = plots.GradientNormRecorder(X[:64], y[:64])
    history = net.fit(X[:240], y[:240], epochs=6, validation_data=(X[240:], y[240:]), seed=0, callbacks=[recorder])
    return net, X, y, history, recorder


def test_history_plot(trained, tmp_path):
    _net, _X, _y, history, _rec = trained
    fig = plots.plot_history(history, tmp_path / "h.png")
    assert len(fig.axes) == 2  # loss, accuracy
    assert_real_png(tmp_path / "h.png")
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "training loss" in labels and "validation loss" in labels
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), history.history["loss"])


def test_confusion_matrix_counts_and_plot(trained, tmp_path):
    net, X, y, _h, _rec = trained
    pred = net.predict(X)
    C = plots.confusion_matrix(y, pred, 3)
    assert C.sum() == len(y) and np.trace(C) == (pred == y).sum()
    assert C[1, 2] == ((y == 1) & (pred == 2)).sum()
    assert plots.confusion_matrix is dn.train.confusion_matrix  # one confusion matrix, importable from both places
    plots.plot_confusion_matrix(y, pred, class_names=["rows", "columns", "diagonal"], path=tmp_path / "c.png")
    assert_real_png(tmp_path / "c.png")


def test_first_layer_weights_as_images(trained, tmp_path):
    net, *_ = trained
    fig = plots.plot_first_layer(net, tmp_path / "w.png")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 8
    np.testing.assert_allclose(images[3].get_array(), net.layers[0].weights[:, 3].reshape(6, 6))
    assert_real_png(tmp_path / "w.png")
    with pytest.raises(dn.ConfigError):
        plots.plot_first_layer(dn.mlp([7, 3, 2], seed=0))


def test_certainty_bars(trained, tmp_path):
    net, X, y, _h, _rec = trained
    fig = plots.plot_certainty(net, X[0], tmp_path / "p.png", label=int(y[0]))
    bars = fig.axes[-1].patches
    np.testing.assert_allclose([b.get_width() for b in bars], net.predict_proba(X[:1])[0], rtol=1e-6)
    assert_real_png(tmp_path / "p.png")
    with pytest.raises(dn.ShapeError):
        plots.plot_certainty(net, X[:2])


def test_gradient_norm_recorder_and_plot(trained, tmp_path):
    net, X, y, history, recorder = trained
    assert recorder.epochs == list(range(7))  # before training, then after each of 6 epochs
    assert set(recorder.norms) == {1, 2} and all(len(v) == 7 for v in recorder.norms.values())
    assert history.history["grad_norm_1"] == recorder.norms[1][1:]
    net.backprop(X[:64], y[:64])  # the last value is ||dL/dW|| on the recorder's rows after training
    assert recorder.norms[2][-1] == pytest.approx(float(np.linalg.norm(net.layers[2].grad_weights)), rel=1e-5)
    plots.plot_gradient_norms(recorder, tmp_path / "g.png")
    assert_real_png(tmp_path / "g.png")
    fig = plots.plot_gradient_norms(history)  # the same numbers from the history
    assert fig.axes[0].get_yscale() == "log"


def test_missing_history_is_a_clear_error(tmp_path):
    with pytest.raises(dn.DataError):
        plots.plot_history(dn.mlp([4, 3, 2], seed=0))
    with pytest.raises(dn.DataError):
        plots.plot_gradient_norms({"loss": [1.0, 0.5]})
    with pytest.raises(dn.ConfigError):
        plots.plot_history({"loss": [1.0, 0.5]}, tmp_path / "no" / "such" / "folder.png")


def test_plot_command_writes_every_png(trained, tmp_path, capsys):
    net, X, y, history, _rec = trained
    model = tmp_path / "m.safetensors"
    net.save(model, extra_metadata={"history": history.history})
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=y)
    out = tmp_path / "figs"
    assert main(["plot", str(model), str(data), "--out", str(out), "--index", "3"]) == 0
    printed = capsys.readouterr().out
    for kind in ("history", "confusion", "weights", "certainty", "gradients"):
        assert f"wrote {out / kind}.png" in printed
        assert_real_png(out / f"{kind}.png")


def test_plot_command_without_data_or_history(tmp_path, capsys):
    model = tmp_path / "fresh.safetensors"
    dn.mlp([36, 5, 3], activation="sigmoid", seed=0).save(model)
    assert main(["plot", str(model), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "weights.png" in printed
    assert "skipped history.png" in printed and "skipped confusion.png" in printed
    assert main(["plot", str(model), "--only", "history", "--out", str(tmp_path)]) == 2
    assert "no training history" in capsys.readouterr().err
    assert main(["plot", str(model), "--only", "bogus"]) == 2


def test_recorder_state_survives_a_checkpoint(trained):
    _net, _X, _y, _h, recorder = trained
    state, arrays = recorder.checkpoint_state()
    fresh = plots.GradientNormRecorder()
    fresh.restore_state(state, arrays, None)
    assert fresh.epochs == recorder.epochs and fresh.norms == recorder.norms
