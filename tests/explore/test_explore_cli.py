"""`dialnet explore` as a user runs it: the URL printed and flushed, --play, Ctrl-C and SIGTERM end it with exit 0."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

WAIT = 90.0  # seconds: a loaded 2-core machine may take long to import and load the digits


def start(args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="0")  # the URL must be flushed by dialnet itself
    proc = subprocess.Popen([sys.executable, "-m", "dialnet", "explore", "--no-open", "--limit", "200", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    found = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "token=" in line:
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(WAIT):
        proc.kill()
        pytest.fail(f"no URL printed within {WAIT} s: {''.join(lines)} {proc.stderr.read()}")
    url = next(line for line in lines if "token=" in line)
    match = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_\-]+)", url)
    assert match, url
    return proc, lines, int(match.group(1)), match.group(2)


def get_state(port, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/api/state?token={token}")
    response = conn.getresponse()
    assert response.status == 200
    state = json.loads(response.read())
    conn.close()
    return state


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_the_url_serves_and_stops_cleanly_on_a_signal(tmp_path, sig):
    proc, lines, port, token = start([], tmp_path)
    try:
        state = get_state(port, token)
        assert state["running"] is False and state["step"] == 0  # starts paused
        proc.send_signal(sig)
        assert proc.wait(WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert "Stopped at step 0" in out and "nothing saved" in out
    assert "Traceback" not in proc.stderr.read()
    assert not list(tmp_path.iterdir())  # nothing written unless the page asks


def test_play_trains_at_once_and_the_stop_line_names_the_saved_model(tmp_path):
    proc, lines, port, token = start(["--play", "--out", "digits.safetensors"], tmp_path)
    try:
        deadline = time.monotonic() + WAIT
        while get_state(port, token)["step"] == 0:
            assert time.monotonic() < deadline, "--play did not start training"
            time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/save", body=b'{"format": "model"}', headers={"Authorization": f"Bearer {token}"})
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "digits.safetensors").is_file()
    assert "saved digits.safetensors" in "".join(lines)


def test_bad_options_are_one_line_errors_with_exit_2(tmp_path):
    for args in (["--port", "70000"], ["--lr", "-1"], ["no-such-file.csv"]):
        proc = subprocess.run([sys.executable, "-m", "dialnet", "explore", "--no-open", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=WAIT)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("dialnet: error:"), proc.stderr


def test_help_lists_the_server_and_train_options():
    proc = subprocess.run([sys.executable, "-m", "dialnet", "explore", "--help"], capture_output=True, text=True, timeout=WAIT)
    assert proc.returncode == 0
    for option in ("--port", "--host", "--no-open", "--play", "--layers", "--lr", "--batch-size", "--limit", "--out"):
        assert option in proc.stdout
