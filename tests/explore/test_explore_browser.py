"""The explore page in a real browser: Debian's Chromium driven by Playwright for Python.

Skipped, with the reason, where Chromium or Playwright is missing; CI has
both. Every wait polls the page for a condition with a generous timeout;
nothing is timed. Screenshots go under the test's tmp dir.
"""

from __future__ import annotations

import re
import shutil

import pytest

pytestmark = pytest.mark.browser

WAIT_MS = 60_000  # generous, for a loaded 2-core machine
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("browser tests need Debian's Chromium (apt-get install -y chromium); .ci/run installs it")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415  (optional, test-only)
    except ImportError:
        pytest.skip("browser tests need Playwright for Python (pip install playwright); .ci/run installs it")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=chromium, args=ARGS, headless=True,
                                                       viewport={"width": 1400, "height": 1000})
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    yield page
    page.close()


def wait_until(page, condition, timeout_ms=WAIT_MS):
    """Poll ``condition`` (a JS expression) until it is true. Playwright's wait_for_function evaluates strings with
    eval(), which the page's Content-Security-Policy forbids, so the polling happens here."""
    for _ in range(timeout_ms // 50):
        if page.evaluate(f"() => Boolean({condition})"):
            return
        page.wait_for_timeout(50)
    pytest.fail(f"timed out waiting for {condition}")


def stat(page, name):
    return page.evaluate(f"window.dialnetExplore.stats.{name}")


def open_page(page, client):
    page.goto(client.server.url)
    wait_until(page, "window.dialnetExplore && window.dialnetExplore.stats.snapshots > 0 "
                           "&& window.dialnetExplore.stats.evaluations > 0")


def test_page_loads_trains_and_pauses(page, client, tmp_path):
    open_page(page, client)
    page.screenshot(path=str(tmp_path / "1-loaded.png"), full_page=True)
    assert page.locator("#state-step").inner_text() == "0"
    assert page.locator("#grid .sample").count() > 0
    page.locator("#units-panel").scroll_into_view_if_needed()  # drawn when it comes into view
    wait_until(page, "document.querySelectorAll('#units .unit').length === 20")  # every unit of the 20-unit layer
    assert page.locator("#confusion table").count() == 1
    page.locator("#loss-chart").scroll_into_view_if_needed()  # panels out of sight are not redrawn
    page.click("#play")
    wait_until(page, "Number(document.querySelector('#loss-chart').dataset.points || 0) > 3")
    first = int(page.locator("#loss-chart").get_attribute("data-points"))
    wait_until(page, f"Number(document.querySelector('#loss-chart').dataset.points) > {first}")
    page.screenshot(path=str(tmp_path / "2-training.png"), full_page=True)
    page.click("#pause")
    wait_until(page, "window.dialnetExplore.app.state && !window.dialnetExplore.app.state.running")
    ticks = stat(page, "ticks")
    wait_until(page, f"window.dialnetExplore.stats.ticks > {ticks}")  # a tick after the pause
    shown = page.locator("#state-step").inner_text()
    step = client.state()["step"]
    assert step > 0 and shown.replace(",", "") == str(step)
    page.wait_for_timeout(800)
    assert client.state()["step"] == step  # pause from the page stopped the step counter
    assert page.locator("#state-step").inner_text() == shown
    page.screenshot(path=str(tmp_path / "3-paused.png"), full_page=True)
    assert page.problems == []
    assert all((tmp_path / name).stat().st_size > 10_000 for name in ("1-loaded.png", "2-training.png", "3-paused.png"))


def test_one_step_from_the_page_moves_the_counter_by_one(page, client):
    open_page(page, client)
    page.click("#step")
    wait_until(page, "document.querySelector('#state-step').textContent === '1'")
    page.click("#step")
    wait_until(page, "document.querySelector('#state-step').textContent === '2'")
    assert client.state()["step"] == 2
    page.keyboard.press("s")  # the key for one step
    wait_until(page, "document.querySelector('#state-step').textContent === '3'")
    assert client.state()["step"] == 3
    # live tooltips: point at a hidden unit, then at a dial
    canvas = page.locator("#network")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    unit = page.evaluate("() => window.dialnetExplore.app.geometry.units.find((u) => u.column === 1)")
    page.mouse.move(box["x"] + unit["x"], box["y"] + unit["y"])
    wait_until(page, "!document.querySelector('#tooltip').hidden")
    assert page.locator("#tooltip").inner_text().startswith(f"layer 1 unit {unit['j']}: bias")
    edge = page.evaluate("() => window.dialnetExplore.app.geometry.edges.find((e) => e.layer === 1)")
    page.mouse.move(box["x"] + (edge["x1"] + edge["x2"]) / 2, box["y"] + (edge["y1"] + edge["y2"]) / 2)
    wait_until(page, "document.querySelector('#tooltip').textContent.startsWith('dial ')")
    text = page.locator("#tooltip").inner_text()
    # the dial nearest the pointer (lines cross, so maybe not `edge`): its weight, as the paused network holds it
    match = re.match(r"dial unit (\d+) → unit (\d+) \(layer 2\): w (\S+), dL/dw (\S+) ", text)
    assert match, text
    i, j, w, dw = int(match[1]), int(match[2]), float(match[3]), float(match[4])
    dense = client.server.explorer.net.dense_layers[1]
    assert w == pytest.approx(float(dense.weights[i, j]), rel=5e-3)
    assert dw == pytest.approx(float(dense.grad_weights[i, j]), rel=5e-2, abs=1e-12)
    assert page.problems == []


def test_clicking_a_sample_shows_its_deltas_and_drawing_changes_the_certainties(page, client, tmp_path):
    open_page(page, client)
    client.control("epoch")  # a trained-for-an-epoch network answers drawings with some conviction
    page.locator("#grid .sample").nth(3).click()
    wait_until(page, "document.querySelectorAll('#deltas .layer').length === 3")
    assert page.locator("#deltas canvas.deltas").count() == 3
    assert "test sample 3" in page.locator("#sample-title").inner_text()
    page.screenshot(path=str(tmp_path / "4-sample.png"), full_page=True)
    pad = page.locator("#drawpad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()

    def stroke(points):
        page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=6)
        page.mouse.up()

    def certainties_after_trace():
        traces = stat(page, "traces")
        wait_until(page, f"window.dialnetExplore.stats.traces > {traces}")
        wait_until(page, "!window.dialnetExplore.app.tracing")
        return page.locator("#certainties").get_attribute("data-values")

    before = page.locator("#certainties").get_attribute("data-values")
    stroke([(0.5, 0.15), (0.5, 0.85)])  # a "1"
    one = certainties_after_trace()
    assert "your drawing" in page.locator("#sample-title").inner_text()
    assert one != before
    stroke([(0.25, 0.2), (0.75, 0.2), (0.35, 0.85)])  # a "7" over it
    seven = certainties_after_trace()
    assert seven != one
    page.screenshot(path=str(tmp_path / "5-drawing.png"), full_page=True)
    assert page.problems == []
