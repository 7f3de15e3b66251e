"""The explore server on port 0: the state and control API, SSE ticks, the snapshot format, and the refusals.

Every test polls for the condition it needs with a generous timeout and
asserts nothing about speed: a loaded machine only makes them slower.
"""

from __future__ import annotations

import http.client
import json
import time

import numpy as np
import pytest

import dialnet as dn
from dialnet.errors import ConfigError
from dialnet.explore import Explorer

WAIT = 60.0  # seconds, as in conftest.py: generous for a loaded machine


def snapshot_arrays(client):
    status, headers, payload = client.call("GET", "/api/snapshot")
    assert status == 200
    assert headers["Content-Type"] == "application/octet-stream"
    values = np.frombuffer(payload, dtype="<f4")
    info = client.json("GET", "/api/info")
    total = info["network"]["layout"]["total"]
    assert values.size == 2 * total
    return values[:total], values[total:], info, int(headers["X-Snapshot-Step"])


def test_state_starts_paused_on_fresh_dials(client):
    state = client.state()
    assert state["step"] == 0 and state["epoch"] == 0
    assert state["running"] is False
    assert state["loss"] is None and state["val_accuracy"] is None
    assert state["lr"] == pytest.approx(0.003)  # the demo's learning rate
    time.sleep(0.5)
    assert client.state()["step"] == 0  # paused means paused


def test_step_advances_by_exactly_one(client):
    state = client.control("step")
    assert state["step"] == 1
    assert state["running"] is False
    assert isinstance(state["loss"], float) and np.isfinite(state["loss"])
    time.sleep(0.5)
    assert client.state()["step"] == 1
    assert client.control("step")["step"] == 2
    assert client.control("step")["step"] == 3
    time.sleep(0.3)
    assert client.state()["step"] == 3


def test_pause_really_stops_the_step_counter(client):
    assert client.control("play")["running"] is True
    client.wait_for(lambda s: s["step"] >= 5, "training to take steps")
    paused = client.control("pause")
    assert paused["running"] is False
    time.sleep(0.6)
    later = client.state()
    assert later["step"] == paused["step"]
    assert later["running"] is False


def test_one_epoch_stops_at_the_end_of_the_epoch(client):
    info = client.json("GET", "/api/info")
    client.control("epoch")
    state = client.wait_for(lambda s: s["epoch"] == 1 and not s["running"], "one epoch")
    time.sleep(0.3)
    state = client.state()
    assert state["step"] == info["recipe"]["steps_per_epoch"]
    assert state["epoch"] == 1
    assert 0.0 <= state["val_accuracy"] <= 1.0
    curves = client.json("GET", "/api/curves")
    assert len(curves["epochs"]) == 1 and curves["epochs"][0]["step"] == state["step"]
    assert curves["points"] and curves["points"][-1][0] <= state["step"]


def test_set_lr_changes_the_learning_rate_and_refuses_nonsense(client):
    assert client.control("set_lr", lr=0.0125)["lr"] == pytest.approx(0.0125)
    client.control("step")
    assert client.state()["lr"] == pytest.approx(0.0125)
    for bad in (0, -1, "fast", None, float("inf")):
        status, _h, payload = client.call("POST", "/api/control", {"action": "set_lr", "lr": bad} if bad != float("inf")
                                          else b'{"action": "set_lr", "lr": 1e999}')
        assert status == 400, bad
        body = json.loads(payload)
        assert "lr must be a number > 0" in body["error"] and "Traceback" not in payload.decode()
    assert client.state()["lr"] == pytest.approx(0.0125)


def test_reset_starts_fresh_dials_from_the_seed(client):
    first, _grads, _info, _step = snapshot_arrays(client)
    for _ in range(3):
        client.control("step")
    stepped, _g, _i, step = snapshot_arrays(client)
    assert step == 3 and not np.array_equal(first, stepped)
    state = client.control("reset", seed=5)
    assert state["step"] == 0 and state["seed"] == 5 and state["running"] is False
    params, _g, _i, _s = snapshot_arrays(client)
    want = dn.workflow.DEMO.build_network(625, 10)
    want.reset_parameters(5)
    fresh = dn.mlp([625, 20, 20, 10], activation="sigmoid", output="softmax", seed=5)
    assert np.array_equal(params, np.concatenate([p.ravel() for p in fresh.parameters()]).astype("<f4"))
    client.control("reset", seed=0)  # back to the first seed: the very same starting dials
    again, _g, _i, _s = snapshot_arrays(client)
    assert np.array_equal(again, first)
    assert client.control("reset")["seed"] == 1  # no seed: the next one


def test_snapshot_is_the_dials_then_their_gradients_in_float32(client):
    client.control("step")
    params, grads, info, step = snapshot_arrays(client)
    assert step == 1
    layout = info["network"]["layout"]
    assert [(L["n_in"], L["n_out"]) for L in layout["layers"]] == [(625, 20), (20, 20), (20, 10)]
    assert layout["total"] == 13150  # 13,100 weights + 50 biases
    # paused: the training thread is blocked, so its dials are exactly what the snapshot holds
    explorer = client.server.explorer
    for L, dense in zip(layout["layers"], explorer.net.dense_layers):
        W = params[L["weights"]:L["biases"]].reshape(L["n_in"], L["n_out"])
        b = params[L["biases"]:L["biases"] + L["n_out"]]
        assert np.array_equal(W, dense.weights.astype("<f4"))
        assert np.array_equal(b, dense.biases.astype("<f4"))
        dW = grads[L["weights"]:L["biases"]].reshape(L["n_in"], L["n_out"])
        assert np.array_equal(dW, dense.grad_weights.astype("<f4"))  # the pending batch's gradients, L2 included
    assert np.abs(grads).sum() > 0


def read_events(client, count, timeout=WAIT, query=""):
    """The first ``count`` SSE ``data:`` payloads of ``/api/events``."""
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=timeout)
    conn.request("GET", f"/api/events?token={client.token}{query}", headers={"Host": f"127.0.0.1:{client.port}"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        line = response.fp.readline()
        if line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
    conn.close()
    return events


def test_server_sent_events_tick_with_the_state_and_new_curve_points(client):
    first = read_events(client, 1)[0]
    assert first["state"]["step"] == 0 and first["curves"]["points"] == []
    client.control("play")
    events = read_events(client, 8)
    client.control("pause")
    steps = [e["state"]["step"] for e in events]
    assert steps == sorted(steps) and steps[-1] > 0
    points = [p for e in events for p in e["curves"]["points"]]
    assert points, "ticks carry the new loss points"
    assert all(np.isfinite(loss) for _step, loss in points)
    assert [p[0] for p in points] == sorted(p[0] for p in points)


@pytest.mark.parametrize("path,method", [("/api/state", "GET"), ("/api/snapshot", "GET"), ("/api/info", "GET"),
                                         ("/api/evaluation", "GET"), ("/api/control", "POST"), ("/api/trace", "POST"),
                                         ("/api/save", "POST"), ("/api/events", "GET")])
def test_api_without_the_right_token_is_refused(client, path, method):
    body = {"action": "step"} if method == "POST" else None
    assert client.call(method, path, body, token=False)[0] == 403
    assert client.call(method, path, body, token="wrong-token")[0] == 403
    assert client.call(method, client.query(path, token="wrong"), body, token=False)[0] == 403
    assert client.state()["step"] == 0  # a refused step did nothing
    assert not client.server.explorer.saved


def test_token_in_the_query_or_as_bearer_and_the_page_without_it(client):
    assert client.call("GET", client.query("/api/state", token=client.token), token=False)[0] == 200
    assert client.call("GET", "/api/state")[0] == 200
    status, headers, page = client.call("GET", "/", token=False)
    assert status == 200 and b"<script type=\"module\"" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert client.call("GET", "/static/js/main.js", token=False)[0] == 200
    assert client.call("GET", "/static/../session.py", token=False)[0] == 404  # only the shipped static files
    assert client.call("GET", "/static/js/../../server.py", token=False)[0] == 404


def test_foreign_host_and_origin_are_refused(client):
    port = client.port
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", f"127.0.0.1:{port + 1}", ""):
        assert client.call("GET", "/api/state", host=host)[0] == 403, host
        assert client.call("GET", "/", host=host, token=False)[0] == 403, host
    assert client.call("GET", "/api/state", host=f"localhost:{port}")[0] == 200
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"http://127.0.0.1:{port + 1}"):
        status, _h, _b = client.call("POST", "/api/control", {"action": "step"}, headers={"Origin": origin})
        assert status == 403, origin
    assert client.state()["step"] == 0
    status, _h, _b = client.call("POST", "/api/control", {"action": "step"}, headers={"Origin": f"http://127.0.0.1:{port}"})
    assert status == 200 and client.state()["step"] == 1


def test_bad_requests_get_a_message_not_a_traceback(client):
    for body in (b"{not json", b"[1, 2]", json.dumps({"action": "dance"}).encode()):
        status, _h, payload = client.call("POST", "/api/control", body)
        assert status == 400
        assert json.loads(payload)["error"]
    status, _h, payload = client.call("POST", "/api/trace", {"index": 10**6})
    assert status == 400 and "index" in json.loads(payload)["error"]
    status, _h, payload = client.call("POST", "/api/trace", {"pixels": [0.5] * 7})
    assert status == 400 and "625" in json.loads(payload)["error"]
    assert client.call("GET", "/api/nothing")[0] == 404


def test_a_clicked_sample_shows_activations_deltas_and_certainties(client):
    client.control("step")
    t = client.json("POST", "/api/trace", {"index": 4})
    assert [len(L["a"]) for L in t["layers"]] == [20, 20, 10]
    assert [len(L["delta"]) for L in t["layers"]] == [20, 20, 10]
    assert sum(t["certainties"]) == pytest.approx(1.0, abs=1e-3)
    assert t["label"] == int(client.server.explorer.prepared.y_test[4])
    assert t["target"] == "given"
    # the output delta of softmax + cross-entropy is p - onehot(label)
    onehot = np.eye(10)[t["label"]]
    assert np.allclose(t["layers"][-1]["delta"], np.array(t["certainties"]) - onehot, atol=2e-4)


def test_a_drawing_is_traced_against_the_networks_own_answer(client):
    pixels = np.zeros((25, 25))
    pixels[4:21, 11:14] = 1.0  # a "1"
    t = client.json("POST", "/api/trace", {"pixels": pixels.ravel().tolist()})
    assert t["target"] == "predicted" and "label" not in t
    assert t["predicted"] == int(np.argmax(t["certainties"]))
    assert t["input"][11 + 25 * 10] == 1.0


def test_evaluation_measures_the_latest_dials_on_the_test_rows(client):
    ev = client.json("GET", "/api/evaluation")
    confusion = np.array(ev["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == ev["rows"]
    assert ev["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert len(ev["grid_right"]) == len(ev["grid_pred"]) > 0
    assert [L["layer"] for L in ev["layers"]] == [1, 2, 3]
    assert all(L["grad_norm"] > 0 for L in ev["layers"])
    assert isinstance(ev["flags"], list)


def test_saturated_units_are_flagged_where_they_happen(make_server, tmp_path):
    client = make_server(out=str(tmp_path / "m.safetensors"))
    explorer = client.server.explorer
    with explorer.view_lock:  # blow up layer 2's dials on the viewer's snapshot: its sigmoids saturate
        snap = explorer.snapshot()
        layout = client.json("GET", "/api/info")["network"]["layout"]["layers"][1]
        snap.params[layout["weights"]:layout["biases"]] *= 400
        explorer.viewer_version = -1
    ev = client.json("GET", "/api/evaluation")
    codes = {(f["code"], f["layer"]) for f in ev["flags"]}
    assert ("saturated_units", 2) in codes


def test_save_model_and_onnx_from_the_page(client, tmp_path):
    for _ in range(2):
        client.control("step")
    out = client.json("POST", "/api/save", {"format": "model"})
    assert out["path"] == str(tmp_path / "model.safetensors")
    net = dn.load(out["path"])
    explorer = client.server.explorer
    X = explorer.prepared.X_test[:16]
    assert np.array_equal(net.predict_proba(X), explorer.net.predict_proba(X))
    assert net.class_names == explorer.dataset.class_names
    assert client.state()["saved"] == [out["path"]]
    pytest.importorskip("onnx")
    onnx_out = client.json("POST", "/api/save", {"format": "onnx"})
    assert onnx_out["path"] == str(tmp_path / "model.onnx")
    assert (tmp_path / "model.onnx").stat().st_size > 13150 * 4
    status, _h, payload = client.call("POST", "/api/save", {"format": "pickle"})
    assert status == 400 and "format" in json.loads(payload)["error"]


def write_blobs(path, rows=120, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0, 0], [3, 3, 0], [0, 3, 3]])
    y = rng.integers(0, 3, rows)
    X = centers[y] + rng.normal(0, 0.7, (rows, 3))
    names = np.array(["north", "east", "west"])
    with open(path, "w") as fh:
        fh.write("width,height,depth,kind\n")
        for row, label in zip(X, y):
            fh.write(",".join(f"{v:.4f}" for v in row) + f",{names[label]}\n")
    return path


def test_a_csv_table_works_the_same_way(make_server, tmp_path):
    data = write_blobs(tmp_path / "blobs.csv")
    client = make_server(str(data), out=str(tmp_path / "blobs.safetensors"))
    info = client.json("GET", "/api/info")
    assert info["data"]["kind"] == "table" and info["data"]["image_size"] is None
    assert info["data"]["preview"]["header"] == ["width", "height", "depth"]
    assert sorted(info["data"]["class_names"]) == ["east", "north", "west"]
    assert sum(info["data"]["counts"]["train"]) + sum(info["data"]["counts"]["test"]) == 120
    hidden = list(dn.workflow.DATA_DEFAULTS.hidden)
    assert info["network"]["sizes"] == [3, *hidden, 3]  # the DATA defaults, as for dialnet train
    assert client.control("step")["step"] == 1
    t = client.json("POST", "/api/trace", {"index": 0})
    assert [len(L["a"]) for L in t["layers"]] == [*hidden, 3]
    status, _h, payload = client.call("POST", "/api/trace", {"pixels": [0.0, 0.0, 0.0]})
    assert status == 400 and "image" in json.loads(payload)["error"]
    client.control("play")
    client.wait_for(lambda s: s["epoch"] >= 3, "three epochs")
    client.control("pause")


def test_an_output_path_that_is_the_data_is_refused(tmp_path):
    data = write_blobs(tmp_path / "blobs.csv")
    with pytest.raises(ConfigError, match="input"):
        Explorer(str(data), out=str(data))


def write_image_folder(root, per_class=12, side=16, seed=0):
    """Two classes of tiny PNGs: a bright horizontal bar or a bright vertical bar, with noise."""
    from PIL import Image  # noqa: PLC0415  (Pillow: dialnet's image reader uses it)

    rng = np.random.default_rng(seed)
    for name, axis in (("across", 0), ("down", 1)):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 40, (side, side)).astype(np.uint8)
            k = rng.integers(3, side - 3)
            if axis == 0:
                img[k - 1:k + 2, :] = 255
            else:
                img[:, k - 1:k + 2] = 255
            Image.fromarray(img).save(folder / f"{i}.png")
    return root


def test_an_image_folder_works_the_same_way(make_server, tmp_path):
    data = write_image_folder(tmp_path / "bars")
    client = make_server(str(data), image_size=12, out=str(tmp_path / "bars.safetensors"))
    info = client.json("GET", "/api/info")
    assert info["data"]["kind"] == "image" and info["data"]["image_size"] == 12
    assert info["data"]["class_names"] == ["across", "down"]
    assert info["network"]["sizes"] == [144, *dn.workflow.DATA_DEFAULTS.hidden, 2]
    status, headers, payload = client.call("GET", "/api/samples?set=grid")
    assert status == 200 and int(headers["X-Columns"]) == 144
    assert np.frombuffer(payload, "<f4").size == int(headers["X-Rows"]) * 144
    client.control("epoch")
    client.wait_for(lambda s: s["epoch"] == 1 and not s["running"], "one epoch")
    t = client.json("POST", "/api/trace", {"pixels": [0.0] * 144})
    assert len(t["certainties"]) == 2


def test_a_regression_target_explores_without_certainties(make_server, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 2))
    path = tmp_path / "houses.csv"
    with open(path, "w") as fh:
        fh.write("rooms,age,price\n")
        for a, b in X:
            fh.write(f"{a:.4f},{b:.4f},{3.5 * a - 2 * b + 100 + rng.normal(0, 0.1):.4f}\n")
    client = make_server(str(path), out=str(tmp_path / "houses.safetensors"))
    info = client.json("GET", "/api/info")
    assert info["data"]["task"] == "regression" and info["data"]["class_names"] == []
    client.control("epoch")
    state = client.wait_for(lambda s: s["epoch"] == 1 and not s["running"], "one epoch")
    assert state["val_accuracy"] is None
    ev = client.json("GET", "/api/evaluation")
    assert ev["accuracy"] is None and np.isfinite(ev["rmse"]) and "confusion" not in ev
    t = client.json("POST", "/api/trace", {"index": 0})
    assert "certainties" not in t and np.isfinite(t["value"])
    assert [len(L["a"]) for L in t["layers"]] == [*dn.workflow.DATA_DEFAULTS.hidden, 1]


def test_small_data_trains_step_by_step_and_full_batch_lbfgs_is_refused(tmp_path):
    data = write_blobs(tmp_path / "blobs.csv")
    explorer = Explorer(str(data))  # 120 rows: `dialnet train` would pick L-BFGS; explore steps with Adam
    assert hasattr(explorer.fit_kw["optimizer"], "step")
    with pytest.raises(ConfigError, match="mini-batches"):
        Explorer(str(data), dn.workflow.Recipe(optimizer="lbfgs"))


@pytest.mark.filterwarnings("ignore::dialnet.errors.DivergenceWarning")  # the training thread says it too
def test_a_diverging_run_stops_and_is_flagged(make_server, tmp_path):
    data = write_blobs(tmp_path / "blobs.csv")
    recipe = dn.workflow.Recipe(hidden=(8,), optimizer="sgd", lr=1e30, lr_schedule=None, early_stopping=0)
    client = make_server(str(data), recipe=recipe, out=str(tmp_path / "m.safetensors"))
    client.control("play")
    state = client.wait_for(lambda s: s["finished"], "the run to stop on its divergence")
    assert "diverged" in state["stop_reason"] and state["divergences"] >= 1
    assert state["running"] is False
    ev = client.json("GET", "/api/evaluation")
    assert "nan" in {f["code"] for f in ev["flags"]}
    params, _grads, _info, _step = snapshot_arrays(client)
    assert np.isfinite(params).all()  # the weights from before the bad step, as fit keeps them


def test_balanced_class_weights_reach_fit(tmp_path):
    data = write_blobs(tmp_path / "blobs.csv", rows=160)
    losses = {}
    for weights in (None, "balanced"):
        explorer = Explorer(str(data), class_weight=weights).start()
        try:
            losses[weights] = explorer.control("step")["loss"]  # the first batch's loss, the same dials
        finally:
            explorer.close()
    assert losses[None] != pytest.approx(losses["balanced"], rel=1e-6)  # the weighted mean of the same losses
