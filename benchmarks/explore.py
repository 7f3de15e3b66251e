"""``python -m benchmarks.explore``: does the explore page keep up, and what does it cost training?

Two measurements, side by side in one process on one machine:

1. **Slowdown.** The demo (625-20-20-10 on the bundled digits, the DEMO
   recipe, seed 0) trained by ``dialnet.train_model`` (what ``dialnet
   train`` runs) and by ``dialnet explore`` at full speed with a real page
   (Chromium, headless) connected, receiving every tick, fetching every
   snapshot, the evaluation and the trace of a selected sample. Both runs
   take the very same steps (same fit, same seed) to the same stop; the
   rounds alternate and the median steps/s of each are compared.
2. **Updates.** With training running at full speed (no stopping rule), the
   state updates (SSE ticks) and snapshots the page *received* per second,
   counted by the page itself (``window.dialnetExplore.stats``).

Needs Playwright for Python and Debian's Chromium (``shutil.which("chromium")``).
"""

from __future__ import annotations

import argparse
import collections
import glob
import http.client
import json
import os
import shutil
import statistics
import threading
import time
from dataclasses import replace

import numpy as np

from dialnet import workflow
from dialnet.explore import Explorer, serve

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def train_steps_per_second(recipe, engine="numpy"):
    """What ``dialnet train`` runs (``train_model``): optimizer steps per second of fit's own training time.

    On the NumPy path by default, the path explore trains on (its gate wraps
    each optimizer step), so that the comparison is explore's own cost.
    """
    before = os.environ.get("DIALNET_ENGINE")
    os.environ["DIALNET_ENGINE"] = engine
    try:
        result = workflow.train_model(None, recipe)
    finally:
        if before is None:
            del os.environ["DIALNET_ENGINE"]
        else:
            os.environ["DIALNET_ENGINE"] = before
    n = len(result.data.X_train)
    options = recipe.fit_options(n, result.data.dataset.task)
    n_fit = n - int(round(n * (options["validation_split"] or 0.0)))
    steps = len(result.history.epochs) * -(-n_fit // options["batch_size"])
    return steps / result.history.train_time, len(result.history.epochs)


def _wait(predicate, timeout=600.0, every=0.005):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the explorer did not get there in time")
        time.sleep(every)


def open_page(context, server):
    page = context.new_page()
    page.goto(server.url)
    for _ in range(2400):
        if page.evaluate("() => Boolean(window.dialnetExplore && window.dialnetExplore.stats.snapshots > 0 && "
                         "window.dialnetExplore.stats.evaluations > 0)"):
            break
        page.wait_for_timeout(25)
    page.locator("#grid .sample").nth(0).click()  # a selected sample is traced again as training goes
    return page


class PythonPage:
    """What the page asks of the server, without a browser: the SSE stream read in full, the latest snapshot at
    most 10 times a second, the evaluation and one sample's trace every 2 s (the page's own rates while training runs)."""

    def __init__(self, server):
        self.server, self.stop, self.counts = server, threading.Event(), collections.Counter()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._events, self._poll)]
        for t in self.threads:
            t.start()

    def _conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)

    def _call(self, conn, method, path, body=None):
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {self.server.token}"})
        response = conn.getresponse()
        data = response.read()
        json.loads(data) if response.getheader("Content-Type") == "application/json" else np.frombuffer(data, "<f4")
        return data

    def _events(self):
        conn = self._conn()
        conn.request("GET", f"/api/events?token={self.server.token}")
        response = conn.getresponse()
        while not self.stop.is_set():
            line = response.fp.readline()
            if line.startswith(b"data: "):
                json.loads(line[6:])
                self.counts["ticks"] += 1

    def _poll(self):
        conn, last_eval = self._conn(), 0.0
        while not self.stop.is_set():
            self._call(conn, "GET", "/api/snapshot")
            self.counts["snapshots"] += 1
            if time.monotonic() - last_eval > 2.0:
                self._call(conn, "GET", "/api/evaluation")
                self._call(conn, "POST", "/api/trace", b'{"index": 0}')
                last_eval = time.monotonic()
            time.sleep(0.1)

    def close(self):
        self.stop.set()


def chromium_cpu_seconds():
    """User + system CPU seconds of every running chromium process (Linux /proc)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as fh:
                fields = fh.read().rsplit(")", 1)
            if "chrom" not in fields[0]:
                continue
            parts = fields[1].split()
            total += (int(parts[11]) + int(parts[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def explore_steps_per_second(context, recipe):
    """Steps/s of the demo in explore, with a real page (context) or the Python stand-in (context None)."""
    explorer = Explorer(None, recipe)
    server = serve(explorer)
    page = open_page(context, server) if context is not None else PythonPage(server)
    closed = False
    try:
        clock = time.pthread_getcpuclockid(explorer.thread.ident)  # the training thread's own CPU time
        train0, cpu = time.clock_gettime(clock), chromium_cpu_seconds()
        started = time.perf_counter()
        explorer.control("play")
        _wait(lambda: explorer.finished and explorer.gate.waiting, every=0.02)
        seconds = time.perf_counter() - started
        train_cpu = time.clock_gettime(clock) - train0
        browser = (chromium_cpu_seconds() - cpu) / seconds
        page.close()
        server.close()
        closed = True
        time.sleep(0.3)  # the event stream's handler ends and counts its CPU time
        by_path = ", ".join(f"{path} {cpu / train_cpu:.1%}" for path, cpu in server.cpu_by_path.most_common(4))
        return explorer.gate.steps / seconds, explorer.epochs_done, browser, server.cpu_seconds / train_cpu, by_path
    finally:
        if not closed:
            page.close()
            server.close()
        explorer.close()


def page_rates(context, recipe, seconds):
    explorer = Explorer(None, replace(recipe, target_certainty=None, early_stopping=0, epochs=10_000))
    server = serve(explorer)
    page = open_page(context, server)
    try:
        explorer.control("play")
        time.sleep(1.0)  # warm: the page's first fetches are done
        before, steps0, t0 = page.evaluate("() => ({...window.dialnetExplore.stats})"), explorer.gate.steps, time.perf_counter()
        time.sleep(seconds)
        after, steps1, t1 = page.evaluate("() => ({...window.dialnetExplore.stats})"), explorer.gate.steps, time.perf_counter()
        dt = t1 - t0
        return {key: (after[key] - before[key]) / dt for key in ("ticks", "snapshots", "evaluations", "traces")} | {
            "steps_per_second": (steps1 - steps0) / dt}
    finally:
        page.close()
        server.close()
        explorer.close()


def screenshot(context, path, epochs=10):
    """The demo after a few epochs, a test sample selected and a digit drawn: the picture in the README."""
    explorer = Explorer(None, workflow.DEMO)
    server = serve(explorer)
    page = open_page(context, server)
    try:
        for _ in range(epochs):
            explorer.control("epoch")
            _wait(lambda: not explorer.state()["running"])
        page.locator("#grid .sample").nth(7).click()
        pad = page.locator("#drawpad")
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()
        page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.25 * box["height"])
        page.mouse.down()
        for x, y in ((0.7, 0.25), (0.62, 0.45), (0.48, 0.8)):  # a "7"
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()
        page.wait_for_timeout(1500)
        print(page.locator("#sample-title").inner_text())
        page.evaluate("() => window.scrollTo(0, 0)")
        height = page.evaluate("() => Math.ceil(document.querySelector('footer').getBoundingClientRect().bottom + 12)")
        page.screenshot(path=path, clip={"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height})
        from PIL import Image  # noqa: PLC0415  (Pillow: dialnet's image reader needs it anyway)

        # 256 colours, no dithering: a third of the bytes, and a UI's flat colours look the same
        with Image.open(path) as shot:
            quantized = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        quantized.save(path, optimize=True)
    finally:
        page.close()
        server.close()
        explorer.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of train / explore (default: 3)")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long the page's update rates are counted")
    parser.add_argument("--screenshot", default=None, metavar="PNG", help="only write a screenshot of the page here")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's Chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (optional: only this benchmark)

    recipe = workflow.DEMO
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        if args.screenshot:  # a window as tall as the page: every panel is in view, so every panel is drawn
            screenshot(browser.new_context(viewport={"width": 1400, "height": 3000}), args.screenshot)
            print(f"wrote {args.screenshot}")
            browser.close()
            return
        train, served, browsed, browser_cpu, server_share = [], [], [], [], []
        for r in range(args.rounds):
            runs = {"train": lambda: train_steps_per_second(recipe), "python": lambda: explore_steps_per_second(None, recipe),
                    "chromium": lambda: explore_steps_per_second(context, recipe)}
            order = list(runs)[r % 3:] + list(runs)[:r % 3]  # each variant goes first, second and last in turn
            got = {name: runs[name]() for name in order}
            (t, epochs_t), (s, epochs_s, *_), (e, epochs_e, cpu, share, by_path) = got["train"], got["python"], got["chromium"]
            server_share.append(share)
            assert epochs_t == epochs_s == epochs_e, (epochs_t, epochs_s, epochs_e)  # the very same run
            train.append(t)
            served.append(s)
            browsed.append(e)
            browser_cpu.append(cpu)
            print(f"round {r + 1}: dialnet train {t:,.0f} steps/s; explore with the page's requests from Python "
                  f"{s:,.0f} steps/s; explore with Chromium {e:,.0f} steps/s (Chromium used {cpu:.2f} CPU cores; the "
                  f"server's request handlers {share:.1%} of the training thread's CPU time: {by_path}); {epochs_t} epochs each")
        t, s, e = statistics.median(train), statistics.median(served), statistics.median(browsed)
        print(f"median steps/s: train (NumPy path) {t:,.0f}; explore serving the page's requests {s:,.0f} ({s / t:.1%} of train's, "
              f"slowdown {1 - s / t:.1%}); explore with Chromium on this machine {e:,.0f} ({e / t:.1%}, slowdown "
              f"{1 - e / t:.1%}; Chromium itself used {statistics.median(browser_cpu):.2f} CPU cores of {os.cpu_count()}); serving the page took "
              f"{statistics.median(server_share):.1%} of the training thread's CPU time (request handlers' CPU, page open "
              "from before play to the end: an upper bound)")
        default = statistics.median(train_steps_per_second(recipe, "auto")[0] for _ in range(args.rounds))
        print(f"dialnet train on its default engine (the compiled step where numba is installed): {default:,.0f} steps/s; "
              "explore trains on the NumPy path, the reference above")
        rates = page_rates(context, recipe, args.seconds)
        print(f"page at full speed ({rates['steps_per_second']:,.0f} steps/s): {rates['ticks']:.1f} state updates/s, "
              f"{rates['snapshots']:.1f} snapshots/s, {rates['evaluations']:.1f} evaluations/s, "
              f"{rates['traces']:.1f} sample traces/s")
        browser.close()


if __name__ == "__main__":
    main()
