"""dn.inspect.trace: every layer's z, a, delta = dL/dz, dL/dW, dL/db, checked against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest

import dialnet as dn
from dialnet.cli import main
from dialnet.diagnose.trace import trace, unit_health


def small_net(hidden="sigmoid", output="softmax", sizes=(16, 7, 5, 3), seed=0):
    return dn.mlp(list(sizes), activation=hidden, output=output, dtype="float64", seed=seed)


def batch(n=6, n_in=16, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, size=n)


def torch_reference(torch, net, X, y, loss):
    """z, a and dL/dz of every Dense layer, and dL/dW, dL/db, by torch autograd."""
    acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}
    a = torch.tensor(X)
    zs, As, Ws, bs = [], [], [], []
    dense = net.dense_layers
    names = [net.layers[net.layers.index(d) + 1].name for d in dense]
    for d, name in zip(dense, names):
        W = torch.tensor(d.weights, requires_grad=True)
        b = torch.tensor(d.biases, requires_grad=True)
        z = a @ W + b
        z.retain_grad()
        a = torch.softmax(z, dim=1) if name == "softmax" else acts[name](z)
        zs.append(z), As.append(a), Ws.append(W), bs.append(b)
    if loss == "cross_entropy":
        L = torch.nn.functional.cross_entropy(zs[-1], torch.tensor(y))
    else:
        L = torch.nn.functional.mse_loss(a, torch.tensor(y))
    L.backward()
    return float(L.detach()), zs, As, Ws, bs


@pytest.mark.parametrize(
    "hidden,output,loss,targets",
    [("sigmoid", "softmax", "cross_entropy", "labels"), ("tanh", "identity", "mse", "rows"), ("relu", "softmax", "cross_entropy", "labels")],
)
def test_trace_matches_torch_autograd(torch64, hidden, output, loss, targets):
    net = small_net(hidden, output)
    X, y = batch()
    if targets == "rows":
        y = np.random.default_rng(1).standard_normal((len(X), 3))
    t = trace(net, X, y, loss)
    L, zs, As, Ws, bs = torch_reference(torch64, net, X, y, loss)
    assert t.loss == pytest.approx(L, rel=1e-10)
    assert len(t.layers) == 3
    for lt, z, a, W, b in zip(t.layers, zs, As, Ws, bs):
        np.testing.assert_allclose(lt.z, z.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(lt.a, a.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(lt.delta, z.grad.numpy(), rtol=1e-8, atol=1e-14)
        np.testing.assert_allclose(lt.grad_weights, W.grad.numpy(), rtol=1e-8, atol=1e-14)
        np.testing.assert_allclose(lt.grad_biases, b.grad.numpy(), rtol=1e-8, atol=1e-14)


def test_chain_rule_holds_between_the_traced_arrays():
    net = small_net("sigmoid")
    X, y = batch()
    t = trace(net, X, y)
    for k, lt in enumerate(t.layers):
        np.testing.assert_allclose(lt.z, lt.input @ lt.weights + lt.biases, rtol=1e-12)
        np.testing.assert_allclose(lt.grad_weights, lt.input.T @ lt.delta, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(lt.grad_biases, lt.delta.sum(0), rtol=1e-10, atol=1e-15)
        if k + 1 < len(t.layers):  # a sigmoid hidden layer: delta = dL/da * a (1 - a)
            nxt = t.layers[k + 1]
            np.testing.assert_allclose(lt.grad_a, nxt.delta @ nxt.weights.T, rtol=1e-10, atol=1e-15)
            np.testing.assert_allclose(lt.delta, lt.grad_a * lt.a * (1 - lt.a), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(t.input_gradient, t.layers[0].delta @ t.layers[0].weights.T, rtol=1e-10, atol=1e-15)
    # trace leaves the same gradients in the network as backprop does
    for lt, dense in zip(t.layers, net.dense_layers):
        np.testing.assert_array_equal(lt.grad_weights, dense.grad_weights)
    assert net.backprop(X, y) == pytest.approx(t.loss, rel=1e-12)


def test_top_dials_are_the_largest_gradients():
    net = small_net()
    X, y = batch()
    t = trace(net, X, y)
    for lt in t.layers:
        dials = lt.top_dials(4)
        grads = [abs(g) for *_ij, _w, g in dials]
        assert grads == sorted(grads, reverse=True)
        assert grads[0] == pytest.approx(np.abs(lt.grad_weights).max())
        i, j, w, g = dials[0]
        assert lt.weights[i, j] == w and lt.grad_weights[i, j] == g
    best = t.top_dials(3)
    assert abs(best[0][4]) == max(np.abs(lt.grad_weights).max() for lt in t.layers)


def test_one_sample_without_a_label_uses_the_networks_answer():
    net = small_net()
    x = batch(1)[0][0]  # a 1-D sample
    t = trace(net, x)
    assert len(t) == 1 and t.target_source == "predicted"
    assert t.target[0] == t.output[0].argmax()
    report = t.report(top=2)
    assert "its own answer" in report and "Layer 3: Dense 5->3 + softmax" in report
    assert report.count("top dials by |dL/dW|") == 3


def test_report_names_a_mistake_and_pixels_of_an_image_input():
    net = small_net(sizes=(16, 6, 3))  # 16 inputs = a 4x4 image
    X, y = batch(1)
    wrong = (net.predict(X)[0] + 1) % 3
    report = trace(net, X, [wrong]).report()
    assert "[WRONG]" in report and "pixel (" in report
    assert "gradient descent turns it" in report


def test_regression_needs_targets_and_bad_input_is_refused():
    net = small_net("tanh", "identity")
    with pytest.raises(dn.ConfigError):
        trace(net, batch()[0])
    with pytest.raises(dn.ShapeError):
        trace(small_net(), np.zeros((2, 5)))
    with pytest.raises(dn.ConfigError):
        trace("net", np.zeros((1, 16)))


def test_unit_health_finds_dead_and_saturated_units():
    X, _ = batch(50)
    relu = small_net("relu", sizes=(16, 8, 3))
    relu.layers[0].biases[:3] = -100.0
    [h] = unit_health(relu, X)
    assert h.activation == "relu" and h.stuck[:3].all() and h.n_stuck == 3
    sig = small_net("sigmoid", sizes=(16, 8, 3))
    sig.layers[0].biases[:] = 40.0  # a = 1 everywhere: slope ~ 0
    [h] = unit_health(sig, X)
    assert h.n_stuck == 8 and (h.high == 1).all()


@pytest.fixture()
def model_and_data(tmp_path):
    net = dn.mlp([16, 6, 3], activation="sigmoid", seed=0)
    X, y = batch(40)
    net.fit(X, y, epochs=3, seed=0)
    model = tmp_path / "m.safetensors"
    net.save(model)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=y)
    return net, model, data, X, y


def test_inspect_command_prints_layers_and_dials(model_and_data, tmp_path, capsys):
    net, model, data, X, y = model_and_data
    out_npz = tmp_path / "trace.npz"
    assert main(["inspect", str(model), str(data), "--index", "2", "--top", "3", "--save-arrays", str(out_npz)]) == 0
    out = capsys.readouterr().out
    assert "row 2 of d.npz" in out and f"label {y[2]}" in out
    assert "Layer 1: Dense 16->6 + sigmoid" in out and "Layer 2: Dense 6->3 + softmax" in out
    assert "Dials that matter most" in out
    with np.load(out_npz) as saved:
        t = trace(net, X[2:3], y[2:3])
        np.testing.assert_allclose(saved["layer1.grad_weights"], t.layers[0].grad_weights, rtol=1e-6)


def test_inspect_command_reads_an_image_and_a_npy_row(model_and_data, tmp_path, capsys):
    from PIL import Image

    _net, model, _data, X, _y = model_and_data
    png = tmp_path / "x.png"
    Image.fromarray((X[0].reshape(4, 4) * 255).astype(np.uint8)).resize((40, 40)).save(png)
    assert main(["inspect", str(model), str(png), "--label", "1"]) == 0
    assert "label 1" in capsys.readouterr().out
    row = tmp_path / "x.npy"
    np.save(row, X[1])
    assert main(["inspect", str(model), str(row), "--top", "0"]) == 0
    assert "its own answer" in capsys.readouterr().out


def test_inspect_command_finds_a_mistake(model_and_data, capsys):
    net, model, data, X, y = model_and_data
    first = int(np.flatnonzero(net.predict(X) != y)[0])
    assert main(["inspect", str(model), str(data), "--wrong"]) == 0
    out = capsys.readouterr().out
    assert f"row {first} of d.npz" in out and "[WRONG]" in out and "-> class " in out


def test_inspect_command_errors(model_and_data, capsys):
    _net, model, data, _X, _y = model_and_data
    assert main(["inspect", str(model), str(data), "--index", "99"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["inspect", str(model), str(data), "--label", "7"]) == 2
    assert "hint:" in capsys.readouterr().err
