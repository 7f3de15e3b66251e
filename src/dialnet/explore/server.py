"""The explore page's local web server: the standard library's ThreadingHTTPServer, a token, and a small JSON API.

Routes (every one checks the ``Host`` header and any ``Origin``; every
``/api/`` route needs the token, as ``?token=`` or ``Authorization: Bearer``)::

    GET  /                      the page (static/index.html); /static/... its modules and CSS
    GET  /api/state             step, epoch, running, loss, val_accuracy, lr, ...
    POST /api/control           {"action": "play"|"pause"|"step"|"epoch"|"reset"|"set_lr"|"set_speed", ...} -> state
    GET  /api/events            Server-Sent Events: a tick with the state and new curve points, up to 20 a second
    GET  /api/snapshot          the latest dials then their gradients, raw little-endian float32
    GET  /api/info              the data, the network (with the snapshot's layout) and the recipe
    GET  /api/curves?since=N&epochs_since=M    loss points and epoch logs
    GET  /api/samples?set=grid|preview         test-grid or preview inputs, raw float32 rows
    GET  /api/evaluation        test accuracy, confusion matrix, grid answers, gradient norms, doctor flags
    POST /api/trace             {"index": i} or {"pixels": [...]} -> activations and deltas per layer, certainties
    POST /api/save              {"format": "model"|"onnx"} -> where it was written

Security: a request whose ``Host`` is not an IP address or ``localhost`` with
the server's port (DNS rebinding), or whose ``Origin`` is not the page's own,
gets 403; so does an API call without the token. The server reads only its
own static files (listed once at start) and writes only where "save" asks.
"""

from __future__ import annotations

import collections
import hmac
import ipaddress
import json
import pathlib
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..errors import DialnetError
from . import views

STATIC = pathlib.Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
TICK = 0.05  # seconds between two SSE ticks at most: up to 20 state updates a second
HEARTBEAT = 1.0  # an unchanged state is still sent this often (keeps the connection and the page's clock alive)
MAX_BODY = 4 * 1024 * 1024


def static_files(root=STATIC) -> dict:
    """URL path -> file path, for every file shipped under ``static/`` (the only files the server reads)."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in TYPES:
            files["/static/" + path.relative_to(root).as_posix()] = path
    if (root / "index.html").is_file():
        files["/"] = files["/index.html"] = root / "index.html"
    return files


class Refused(Exception):  # noqa: N818
    """A request turned away: ``status`` and a message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ExploreServer(ThreadingHTTPServer):
    """Serves one :class:`~dialnet.explore.session.Explorer` on ``host:port`` (port 0: a free one)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, explorer, host="127.0.0.1", port=0, token=None):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)
        self.explorer = explorer
        self.token = token or secrets.token_urlsafe(24)
        self.host = host
        self.closing = threading.Event()
        self.static = static_files()
        self.thread = None
        # CPU time the request handlers used (thread_time, counted when each request ends; an event stream's when it
        # closes): what serving the page costs the process
        self.cpu_seconds = 0.0
        self.cpu_by_path = collections.Counter()
        self._cpu_lock = threading.Lock()

    def count_cpu(self, path, seconds):
        with self._cpu_lock:
            self.cpu_seconds += seconds
            self.cpu_by_path[path] += seconds

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/?token={self.token}"

    def start(self):
        """Serve in a background thread; returns self."""
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="dialnet-explore-http",
                                       daemon=True)
        self.thread.start()
        return self

    def close(self):
        """Stop serving (open event streams end within a tick) and close the socket."""
        self.closing.set()
        if self.thread is not None:
            self.shutdown()
            self.thread.join(5)
        self.server_close()

    def host_allowed(self, value) -> bool:
        """``Host`` must be an IP address or localhost, with this server's port: a rebound domain name is refused."""
        if not value:
            return False
        try:
            parts = urlsplit("//" + value)
            name, port = parts.hostname, parts.port
        except ValueError:
            return False
        if port != self.port or name is None:
            return False
        if name == "localhost":
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


class Handler(BaseHTTPRequestHandler):
    server_version = "dialnet-explore"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass

    # -------------------------------------------------------------- checks

    def _check(self, api):
        server = self.server
        host = self.headers.get("Host", "")
        if not server.host_allowed(host):
            raise Refused(403, "Host not allowed: open the URL dialnet explore printed")
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{host}":
            raise Refused(403, "cross-origin request refused")
        if api:
            query = parse_qs(urlsplit(self.path).query)
            given = (query.get("token") or [""])[0]
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                given = auth[len("Bearer "):].strip()
            if not hmac.compare_digest(given.encode(), server.token.encode()):
                raise Refused(403, "missing or wrong token: open the URL dialnet explore printed")

    # ----------------------------------------------------------- responses

    def _send(self, status, body: bytes, content_type, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status=200):
        self._send(status, json.dumps(obj, allow_nan=False, separators=(",", ":")).encode(), "application/json")

    def _error(self, status, message, fix=None):
        self._json({"error": message, **({"fix": fix} if fix else {})}, status)

    def _body(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            raise Refused(400, f"the request body must be JSON of at most {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise Refused(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "the request body must be a JSON object")
        return body

    # -------------------------------------------------------------- routes

    def do_HEAD(self):  # noqa: N802
        self.do_GET()

    def do_GET(self):  # noqa: N802
        self._handle(self._get)

    def do_POST(self):  # noqa: N802
        self._handle(self._post)

    def _handle(self, route):
        started = time.thread_time()
        try:
            self._route(route)
        finally:
            self.server.count_cpu(urlsplit(self.path).path, time.thread_time() - started)

    def _route(self, route):
        path = urlsplit(self.path).path
        try:
            self._check(api=path.startswith("/api/"))
            route(path, parse_qs(urlsplit(self.path).query))
        except Refused as exc:
            self._error(exc.status, str(exc))
        except DialnetError as exc:
            self._error(400, str(exc), getattr(exc, "fix", None))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001  (a bug: answer it, never a traceback on the terminal)
            try:
                self._error(500, f"internal error: {type(exc).__name__}: {exc}")
            except OSError:
                self.close_connection = True

    def _get(self, path, query):
        ex = self.server.explorer
        if path in self.server.static:
            file = self.server.static[path]
            extra = {"Content-Security-Policy": CSP} if file.suffix == ".html" else {}
            self._send(200, file.read_bytes(), TYPES[file.suffix], extra)
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        elif path == "/api/state":
            self._json(ex.state())
        elif path == "/api/info":
            self._json(views.info(ex))
        elif path == "/api/curves":
            self._json(ex.curves(_int(query, "since"), _int(query, "epochs_since")))
        elif path == "/api/evaluation":
            self._json(views.evaluation(ex))
        elif path == "/api/snapshot":
            snap = ex.snapshot()
            self._send(200, snap.to_bytes(), "application/octet-stream",
                       {"X-Snapshot-Version": str(snap.version), "X-Snapshot-Step": str(snap.step)})
        elif path == "/api/samples":
            X = views.samples(ex, (query.get("set") or ["grid"])[0])
            self._send(200, X.tobytes(), "application/octet-stream", {"X-Rows": str(X.shape[0]), "X-Columns": str(X.shape[1])})
        elif path == "/api/events":
            self._events(query)
        else:
            raise Refused(404, f"no such page: {path}")

    def _post(self, path, query):
        ex = self.server.explorer
        body = self._body()
        if path == "/api/control":
            action = body.get("action")
            self._json(ex.control(action, lr=body.get("lr"), seed=body.get("seed"),
                                  steps_per_second=body.get("steps_per_second")))
        elif path == "/api/trace":
            self._json(views.trace_sample(ex, index=body.get("index"), pixels=body.get("pixels"), inputs=body.get("inputs")))
        elif path == "/api/save":
            where = ex.save(body.get("format", "model"))
            self._json({"path": where, "format": body.get("format", "model"), "state": ex.state()})
        else:
            raise Refused(404, f"no such action: {path}")

    def _events(self, query):
        """A Server-Sent Events stream: ``data: {"state": ..., "curves": ...}`` whenever something changed."""
        ex, closing = self.server.explorer, self.server.closing
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            return
        since, epochs_since, run = _int(query, "since"), _int(query, "epochs_since"), None
        last_key, last_sent = None, 0.0
        while not closing.is_set():
            state = ex.state()
            if state["run"] != run:
                if run is not None:
                    since = epochs_since = 0
                run = state["run"]
            key = (state["step"], state["snapshot"], state["running"], state["run"], state["epoch"], state["lr"],
                   state["finished"], state["error"], state["mode"], len(state["saved"]))
            now = time.monotonic()
            if key != last_key or now - last_sent >= HEARTBEAT:
                curves = ex.curves(since, epochs_since)
                since, epochs_since = curves["next"], curves["epochs_next"]
                data = json.dumps({"state": state, "curves": curves}, allow_nan=False, separators=(",", ":"))
                try:
                    self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()
                except OSError:
                    return
                last_key, last_sent = key, now
            closing.wait(TICK)


def _int(query, name):
    try:
        return max(0, int((query.get(name) or ["0"])[0]))
    except ValueError:
        raise Refused(400, f"{name} must be a whole number") from None


def serve(explorer, host="127.0.0.1", port=0, token=None) -> ExploreServer:
    """Start the explorer's training thread and a server for it (in a background thread); returns the server."""
    explorer.start()
    return ExploreServer(explorer, host, port, token).start()
