"""PyTorch state_dict exchange: bit-exact round trips, torch-trained models, clear errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import dialnet as dn
from dialnet.cli import main

torch = pytest.importorskip("torch")
nn = torch.nn

from dialnet.files.torch import from_torch_sequential, save_torch_state_dict, to_torch_sequential  # noqa: E402

NETS = [
    ([4, 8, 3], "relu", "softmax", "float32", 0.0),
    ([6, 5, 5, 1], "tanh", "sigmoid", "float64", 0.0),
    ([3, 7, 2], "leaky_relu", "identity", "float32", 0.25),
    ([10, 4, 4, 4, 6], ["sigmoid", "identity", "relu"], "softmax", "float64", 0.0),
]


@pytest.mark.parametrize(("sizes", "activation", "output", "dtype", "dropout"), NETS)
def test_dialnet_torch_dialnet_round_trip_is_bit_exact(sizes, activation, output, dtype, dropout):
    net = dn.mlp(sizes, activation=activation, output=output, dtype=dtype, dropout=dropout, seed=5)
    sd = net.to_torch_state_dict()
    step = 3 if dropout else 2
    assert list(sd) == [f"{step * k}.{p}" for k in range(len(sizes) - 1) for p in ("weight", "bias")]
    for k, dense in enumerate(net.dense_layers):
        assert sd[f"{step * k}.weight"].shape == (dense.n_out, dense.n_in)  # torch's (out, in)
        assert sd[f"{step * k}.weight"].dtype == getattr(torch, dtype)
    back = dn.from_torch_state_dict(sd, activation=activation, output=output)
    assert back.dtype == net.dtype
    for a, b in zip(net.parameters(), back.parameters()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    X = np.random.default_rng(0).standard_normal((50, sizes[0]))
    assert np.array_equal(net.predict_proba(X), back.predict_proba(X))  # dropout is off at inference
    # the equivalent Sequential loads the same dict and computes the same function
    seq = to_torch_sequential(net)
    with torch.no_grad():
        got = seq(torch.from_numpy(X.astype(dtype))).numpy()
    np.testing.assert_allclose(got, net.predict_proba(X), rtol=0, atol=1e-5 if dtype == "float32" else 1e-12)
    again = from_torch_sequential(seq)
    assert [type(layer) for layer in again.layers] == [type(layer) for layer in net.layers]
    assert all(np.array_equal(a, b) for a, b in zip(net.parameters(), again.parameters()))


def test_numpy_state_dict_needs_no_torch_and_round_trips():
    net = dn.mlp([3, 4, 2], activation="sigmoid", output="softmax", seed=1)
    sd = net.to_torch_state_dict(as_numpy=True)
    assert all(type(v) is np.ndarray for v in sd.values())
    assert np.array_equal(sd["0.weight"], net.layers[0].weights.T)
    back = dn.from_torch_state_dict(sd, activation="sigmoid")
    assert all(np.array_equal(a, b) for a, b in zip(net.parameters(), back.parameters()))
    code = "import dialnet, sys; bad = [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules]; sys.exit(str(bad) if bad else 0)"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_trained_model_predicts_the_same_in_dialnet(dtype):
    torch.manual_seed(0)
    tdtype = getattr(torch, dtype)
    seq = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)).to(tdtype)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)).astype(dtype)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    opt = torch.optim.Adam(seq.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(seq(torch.from_numpy(X)), torch.from_numpy(y))
        loss.backward()
        opt.step()
    net = dn.from_torch_state_dict(seq.state_dict(), activation=["tanh", "relu"], output="softmax")
    assert net.dtype == np.dtype(dtype)
    with torch.no_grad():
        want = torch.softmax(seq(torch.from_numpy(X)), dim=1).numpy()
    got = net.predict_proba(X)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 if dtype == "float32" else 1e-13)
    assert np.array_equal(net.predict(X), want.argmax(axis=1))
    logits = dn.from_torch_state_dict(seq.state_dict(), activation=["tanh", "relu"], output="identity")
    assert np.array_equal(logits.predict_proba(X).argmax(1), got.argmax(1))


def test_prefix_half_precision_and_class_names():
    inner = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    sd = {f"module.{k}": v.to(torch.bfloat16) for k, v in inner.state_dict().items()}
    with pytest.raises(dn.ConfigError, match="prefix='module.'"):
        dn.from_torch_state_dict(sd)
    net = dn.from_torch_state_dict(sd, prefix="module.", class_names=["no", "yes"])
    assert net.dtype == np.float32 and net.class_names == ["no", "yes"]
    assert np.array_equal(net.layers[0].weights, sd["module.0.weight"].float().numpy().T)
    with pytest.raises(dn.ConfigError, match="class_names"):
        dn.from_torch_state_dict(sd, prefix="module.", class_names=["a", "b", "c"])


def _sd():
    return {"0.weight": np.ones((4, 3)), "0.bias": np.zeros(4), "2.weight": np.ones((2, 4)), "2.bias": np.zeros(2)}


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (lambda sd: sd.pop("2.bias"), dn.ConfigError, "no '2.bias'"),
        (lambda sd: sd.pop("0.weight"), dn.ConfigError, "no '0.weight'"),
        (lambda sd: sd.update({"2.weight": np.ones((2, 5))}), dn.ShapeError, "do not fit together"),
        (lambda sd: sd.update({"0.bias": np.zeros(3)}), dn.ShapeError, "inconsistent shapes"),
        (lambda sd: sd.update({"0.weight": np.ones(12)}), dn.ShapeError, "inconsistent shapes"),
        (lambda sd: sd.update({"1.running_mean": np.zeros(4)}), dn.ConfigError, "'1.running_mean'"),
        (lambda sd: sd.update({"0.weight": np.ones((4, 3), dtype=np.int64)}), dn.InvalidValueError, "not floating point"),
        (lambda sd: sd.update({"2.bias": np.array([0.0, np.nan])}), dn.InvalidValueError, "NaN"),
        (lambda sd: sd.update({"0.bias": "zeros"}), dn.InvalidValueError, "not floating point"),
        (lambda sd: sd.clear(), dn.ConfigError, "no Linear layers"),
    ],
    ids=["missing-bias", "missing-weight", "sizes-do-not-chain", "bias-length", "weight-1d", "batchnorm-key", "int", "nan", "string", "empty"],
)
def test_bad_state_dicts_raise_clear_errors(change, error, words):
    sd = _sd()
    change(sd)
    with pytest.raises(error, match=words):
        dn.from_torch_state_dict(sd)


def test_bad_options():
    with pytest.raises(dn.ConfigError, match="mapping"):
        dn.from_torch_state_dict([np.ones((2, 2))])
    with pytest.raises(dn.ConfigError, match="one activation per hidden layer"):
        dn.from_torch_state_dict(_sd(), activation=["relu", "tanh"])
    with pytest.raises(dn.ConfigError, match="unknown output"):
        dn.from_torch_state_dict(_sd(), output="gelu")
    with pytest.raises(dn.ConfigError, match="unknown activation"):
        dn.from_torch_state_dict(_sd(), activation="swish")
    adjacent = {"0.weight": np.ones((4, 3)), "0.bias": np.zeros(4), "1.weight": np.ones((2, 4)), "1.bias": np.zeros(2)}
    with pytest.raises(dn.ConfigError, match="adjacent"):
        dn.from_torch_state_dict(adjacent, activation="relu")
    assert dn.from_torch_state_dict(adjacent, activation="identity").sizes == [3, 4, 2]
    one_out = {"0.weight": np.ones((1, 3)), "0.bias": np.zeros(1)}
    with pytest.raises(dn.ConfigError, match="softmax over one output"):
        dn.from_torch_state_dict(one_out)
    assert dn.from_torch_state_dict(one_out, output="sigmoid").task == "binary"


def test_unsupported_torch_modules():
    with pytest.raises(dn.ConfigError, match=r"module 1 \(GELU\)"):
        from_torch_sequential(nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 2)))
    with pytest.raises(dn.ConfigError, match="module 1 \\(BatchNorm1d\\)"):
        from_torch_sequential(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))
    with pytest.raises(dn.ConfigError, match="no '0.bias'"):
        from_torch_sequential(nn.Sequential(nn.Linear(2, 3, bias=False)))
    with pytest.raises(dn.ConfigError, match="nn.Sequential"):
        from_torch_sequential(nn.Linear(2, 3))


def test_saved_state_dict_loads_in_torch_and_cli(tmp_path, capsys):
    from safetensors.torch import load_file

    net = dn.mlp([5, 6, 3], activation="leaky_relu", output="softmax", seed=2)
    model_path = tmp_path / "m.safetensors"
    net.save(model_path)
    out = tmp_path / "m.torch.safetensors"
    assert main(["export", str(model_path), "--state-dict", str(out)]) == 0
    assert "keys 0.weight, 0.bias, 2.weight, 2.bias" in capsys.readouterr().out
    seq = nn.Sequential(nn.Linear(5, 6), nn.LeakyReLU(0.01), nn.Linear(6, 3), nn.Softmax(dim=1))
    seq.load_state_dict(load_file(str(out)))
    X = np.random.default_rng(3).standard_normal((20, 5)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(seq(torch.from_numpy(X)).numpy(), net.predict_proba(X), rtol=0, atol=1e-6)
    with pytest.raises(dn.ModelFileError, match="folder"):
        save_torch_state_dict(net, tmp_path)
    assert main(["export", str(tmp_path / "missing.safetensors"), "--state-dict", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dialnet: error:") and "Traceback" not in err and len(err.strip().splitlines()) == 2


def test_activation_instance_is_copied_per_hidden_layer():
    sd = dn.mlp([3, 4, 4, 2], seed=0).to_torch_state_dict(as_numpy=True)
    net = dn.from_torch_state_dict(sd, activation=dn.LeakyReLU(0.2))
    first, second = net.layers[1], net.layers[3]
    assert first is not second and first.alpha == second.alpha == 0.2
    X = np.random.default_rng(0).standard_normal((4, 3))
    assert dn.gradcheck(net.astype("float64"), "cross_entropy", X, np.array([0, 1, 1, 0])) < 1e-6
