"""Fixtures for the explorer's tests: a served Explorer on a free port, and plain HTTP calls to it."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest

from dialnet.explore import Explorer, serve

# A small slice of the bundled digits: the demo network, quick to build and to step on a loaded machine.
LIMIT = 300
WAIT = 60.0  # seconds: generous, for a loaded 2-core machine; every wait polls a condition


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives Debian's Chromium through Playwright (skipped without them)")


class Client:
    """HTTP calls to one explore server: ``call(method, path, body, token=True, headers=None) -> (status, headers, body)``."""

    def __init__(self, server):
        self.server = server
        self.port = server.port
        self.token = server.token

    def call(self, method, path, body=None, token=True, headers=None, host=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        hdrs = {"Host": host if host is not None else f"127.0.0.1:{self.port}"}
        if token is True:
            hdrs["Authorization"] = f"Bearer {self.token}"
        elif token:
            hdrs["Authorization"] = f"Bearer {token}"
        hdrs.update(headers or {})
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        response = conn.getresponse()
        payload = response.read()
        result = response.status, dict(response.getheaders()), payload
        conn.close()
        return result

    def json(self, method, path, body=None, **kw):
        status, _headers, payload = self.call(method, path, body, **kw)
        assert status == 200, (status, payload[:300])
        return json.loads(payload)

    def state(self):
        return self.json("GET", "/api/state")

    def control(self, action, **kw):
        return self.json("POST", "/api/control", {"action": action, **kw})

    def wait_for(self, predicate, what, timeout=WAIT):
        """Poll the state until ``predicate(state)``; fail with ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; last state {state}")
            time.sleep(0.05)

    def query(self, path, **params):
        return path + "?" + urllib.parse.urlencode(params)


@pytest.fixture
def make_server():
    """``make_server(**explorer_options)`` -> a Client on a started server; everything is closed afterwards."""
    made = []

    def make(data=None, **options):
        options.setdefault("limit", LIMIT)
        explorer = Explorer(data, **options)
        server = serve(explorer)
        made.append((server, explorer))
        return Client(server)

    yield make
    for server, explorer in made:
        server.close()
        explorer.close()


@pytest.fixture
def client(make_server, tmp_path):
    """The demo (625-20-20-10 on the bundled digits, LIMIT rows), served, paused; saves go under tmp_path."""
    return make_server(out=str(tmp_path / "model.safetensors"), onnx_out=str(tmp_path / "model.onnx"))
