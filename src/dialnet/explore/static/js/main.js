// dialnet explore: the page. Reads the server's state ticks (SSE), fetches the latest snapshot when one is ready
// (never more than one request at a time, so a slow page never queues work), and draws everything from it.

import { getFloats, getJSON, openEvents, postJSON } from "./api.js";
import { DrawPad } from "./draw.js";
import { describeAt, drawNetwork, drawUnits, topDials } from "./network.js";
import { COLORS, barList, cssColor, drawImage, fit, lineChart, maxAbs } from "./plots.js";

const $ = (id) => document.getElementById(id);
const EVAL_EVERY_MS = 1000; // test predictions, confusion matrix, doctor flags ...
const EVAL_RUNNING_MS = 2000; // ... every 2 s while training runs: it takes the server's time, which is training's
const SNAPSHOT_EVERY_MS = 100; // dials and gradients: at most 10 a second, drawn as they come
const CHARTS_EVERY_MS = 200; // the curves are redrawn at most 5 times a second
const TRACE_EVERY_MS = 400; // the selected sample (or the drawing) traced again as the dials turn

const app = {
  info: null, grid: null, state: null, run: null,
  points: [], epochs: [], testAccuracy: [],
  snapshot: null, snapshotVersion: -1, fetchingSnapshot: false,
  evaluation: null, evaluating: false, lastEval: 0,
  selected: null, drawing: null, trace: null, tracing: false, lastTrace: 0,
  inputImage: document.createElement("canvas"),
  drawQueued: false, lastCharts: 0, lastSnapshot: 0, snapshotTimer: null, geometry: null, pointer: null,
};
// counters the tests and the benchmark read: ticks, snapshots, evaluations, traces received since the page loaded
const stats = { ticks: 0, snapshots: 0, evaluations: 0, traces: 0, lossPoints: 0, since: performance.now() };
window.dialnetExplore = { stats, app };

function say(text, isError = false) {
  const el = $("message");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function fmt(v, digits = 4) {
  return v === null || v === undefined || !Number.isFinite(v) ? "–" : Number(v).toPrecision(digits);
}

function pct(v) {
  return v === null || v === undefined || !Number.isFinite(v) ? "–" : (100 * v).toFixed(1) + "%";
}

function className(k) {
  const names = app.info.data.class_names;
  return names && names.length ? names[k] : String(k);
}

// ------------------------------------------------------------------ start

async function start() {
  app.info = await getJSON("/api/info");
  renderData();
  const grid = await getFloats("/api/samples?set=grid");
  app.grid = grid.values;
  renderGrid();
  if (app.info.data.kind === "image") {
    const preview = await getFloats("/api/samples?set=preview");
    renderPreview(preview.values);
  }
  setupControls();
  setupUnits();
  setupTooltips();
  setupKeys();
  watchVisibility();
  if (app.info.data.kind === "image") {
    app.pad = new DrawPad($("drawpad"), app.info.data.image_size, (pixels) => {
      app.drawing = pixels;
      if (pixels) { app.selected = null; markSelected(); traceNow(); }
    }, (app.info.data.background || 0) > 0.5);
  } else {
    $("draw-panel").hidden = true;
  }
  openEvents(onTick, (err) => say(err.message, true));
  app.state = await getJSON("/api/state");
  renderState();
  fetchSnapshot();
  fetchEvaluation();
}

// --------------------------------------------------------------- data panel

function renderData() {
  const d = app.info.data, r = app.info.recipe, n = app.info.network;
  $("data-name").textContent = d.describe;
  $("recipe").textContent = r.describe;
  $("splits").textContent = `train ${d.splits.train.toLocaleString()} · validation ${d.splits.validation.toLocaleString()} · ` +
    `test ${d.splits.test.toLocaleString()} (${d.split_note})`;
  $("net-summary").textContent = `${n.sizes.join("-")}: ${n.parameters.toLocaleString()} dials (${n.dtype})`;
  $("lr").value = r.lr;
  $("save-paths").textContent = `model → ${app.info.save.model}, ONNX → ${app.info.save.onnx}`;
  if (d.class_names.length) {
    const total = d.counts.train.reduce((a, b) => a + b, 0) || 1;
    barList($("class-counts"), d.class_names.map((name, k) => ({
      label: name, value: d.counts.train[k], color: "#4299e1",
    })), { format: (v) => `${v} (${(100 * v / total).toFixed(0)}%)` });
  } else {
    const t = d.target;
    $("counts-title").textContent = "The target";
    $("class-counts").textContent = `regression target '${t.name}': from ${fmt(t.min)} to ${fmt(t.max)}, ` +
      `mean ${fmt(t.mean)}, standard deviation ${fmt(t.std)} (training rows)`;
  }
  if (d.preview) {
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const h of [...d.preview.header, d.preview.target]) { const th = document.createElement("th"); th.textContent = h; head.append(th); }
    const body = table.createTBody();
    d.preview.rows.forEach((row, i) => {
      const tr = body.insertRow();
      for (const cell of [...row, d.preview.labels[i]]) tr.insertCell().textContent = cell;
    });
    $("preview").replaceChildren(table);
  }
}

function renderPreview(values) {
  const d = app.info.data, side = d.image_size, n = side * side;
  const items = [];
  for (let k = 0; k * n < values.length; k++) {
    const fig = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.className = "thumb";
    drawImage(canvas, values, side, { start: k * n });
    const cap = document.createElement("figcaption");
    cap.textContent = className(d.preview_labels[k]);
    fig.append(canvas, cap);
    items.push(fig);
  }
  $("preview").replaceChildren(...items);
}

function renderGrid() {
  const d = app.info.data, count = app.info.grid, n = d.n_inputs;
  const items = [];
  for (let k = 0; k < count; k++) {
    let el;
    if (d.kind === "image") {
      el = document.createElement("canvas");
      drawImage(el, app.grid, d.image_size, { start: k * n });
    } else {
      el = document.createElement("div");
      el.textContent = d.class_names.length ? className(d.grid_labels[k]) : fmt(d.grid_labels[k], 3);
    }
    el.className = "sample";
    el.dataset.index = String(k);
    el.title = `test sample ${k}: ${d.class_names.length ? className(d.grid_labels[k]) : d.grid_labels[k]}`;
    el.addEventListener("click", () => select(k));
    items.push(el);
  }
  $("grid").replaceChildren(...items);
}

function markSelected() {
  for (const el of $("grid").children) el.classList.toggle("selected", Number(el.dataset.index) === app.selected);
}

function select(k) {
  app.selected = k;
  app.drawing = null;
  markSelected();
  traceNow();
}

// ------------------------------------------------------------------- ticks

function onTick({ state, curves }) {
  stats.ticks++;
  if (state.run !== app.run) {
    app.run = state.run;
    app.points = []; app.epochs = []; app.testAccuracy = [];
  }
  if (curves.run === state.run) {
    for (const p of curves.points) app.points.push(p);
    for (const e of curves.epochs) app.epochs.push(e);
    stats.lossPoints = app.points.length;
  }
  app.state = state;
  renderState();
  if (state.snapshot !== app.snapshotVersion) fetchSnapshot();
  if (performance.now() - app.lastEval > (state.running ? EVAL_RUNNING_MS : EVAL_EVERY_MS)) fetchEvaluation();
  queueDraw();
}

function renderState() {
  const s = app.state;
  $("state-step").textContent = s.step.toLocaleString();
  $("state-epoch").textContent = `${s.epoch}` + (s.running ? ` (+${Math.round(100 * s.epoch_progress)}%)` : "");
  $("loss").textContent = fmt(s.loss);
  $("val-acc").textContent = pct(s.val_accuracy);
  $("lr-now").textContent = fmt(s.lr, 3);
  $("rate").textContent = s.running ? `${Math.round(s.steps_per_second).toLocaleString()} steps/s` : "paused";
  $("seed-now").textContent = s.seed;
  $("play").disabled = s.running;
  $("pause").disabled = !s.running;
  document.body.classList.toggle("running", s.running);
  let note = s.error ? `Stopped by an error: ${s.error}` : s.stop_reason ? `Stopped: ${s.stop_reason} (play, step or epoch goes on)` : "";
  if (s.saved.length) note += (note ? " · " : "") + `saved ${s.saved.join(", ")}`;
  $("stop-reason").textContent = note;
}

function queueDraw() {
  if (app.drawQueued) return;
  app.drawQueued = true;
  const wait = Math.max(0, app.lastCharts + CHARTS_EVERY_MS - performance.now());
  setTimeout(() => requestAnimationFrame(() => {
    app.drawQueued = false;
    app.lastCharts = performance.now();
    drawCharts();
  }), wait);
}

// ---------------------------------------------------------------- snapshot

// The latest snapshot, when one is newer than the one drawn: one request at a time, at most every
// SNAPSHOT_EVERY_MS; whatever was published meanwhile is skipped, never queued.
async function fetchSnapshot() {
  if (app.fetchingSnapshot || app.snapshotTimer) return;
  const wait = app.lastSnapshot + SNAPSHOT_EVERY_MS - performance.now();
  if (wait > 0) {
    app.snapshotTimer = setTimeout(() => { app.snapshotTimer = null; fetchSnapshot(); }, wait);
    return;
  }
  app.fetchingSnapshot = true;
  app.lastSnapshot = performance.now();
  try {
    const { values, headers } = await getFloats("/api/snapshot");
    app.snapshot = values;
    app.snapshotVersion = Number(headers.get("X-Snapshot-Version"));
    stats.snapshots++;
    drawDials();
  } catch (err) {
    say(`snapshot: ${err.message}`, true);
  } finally {
    app.fetchingSnapshot = false;
  }
  if (app.state && app.state.snapshot !== app.snapshotVersion) setTimeout(fetchSnapshot, 0);
}

// Panels scrolled out of sight are not redrawn (the browser's time is the machine's time too); they are drawn again
// the moment they come back into view.
const visible = new Set();
function watchVisibility() {
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) visible.add(entry.target.id); else visible.delete(entry.target.id);
    }
    drawDials();
    queueDraw();
  });
  for (const id of ["network", "units", "top-dials", "loss-chart", "acc-chart"]) observer.observe($(id));
}

function drawDials() {
  if (!app.snapshot) return;
  if (visible.has("network")) {
    app.geometry = drawNetwork($("network"), app.info, app.snapshot,
      { trace: app.trace, rankBy: $("rank-by").value, inputImage: app.trace ? app.inputImage : null });
    showTooltip();
  }
  if (visible.has("units")) drawUnits($("units"), app.info, app.snapshot, Number($("unit-layer").value));
  if (!visible.has("top-dials")) return;
  const rows = topDials(app.snapshot, app.info.network.layout, 10).map((d) => {
    const li = document.createElement("li");
    const side = d.layer === 1 && app.info.data.kind === "image" ? app.info.data.image_size : 0;
    const source = side ? `pixel (${Math.floor(d.i / side)}, ${d.i % side})` : d.layer === 1 && app.info.data.feature_names ? (app.info.data.feature_names[d.i] || `input ${d.i}`) : `unit ${d.i}`;
    const target = d.layer === app.info.network.layout.layers.length ? className(d.j) : `unit ${d.j}`;
    li.textContent = `layer ${d.layer}: ${source} → ${target}: w ${fmt(d.w, 3)}, dL/dw ${fmt(d.grad, 2)} (turns ${d.grad > 0 ? "down" : "up"})`;
    li.style.borderLeftColor = cssColor(-d.grad / (Math.abs(d.grad) || 1));
    return li;
  });
  $("top-dials").replaceChildren(...rows);
}

// -------------------------------------------------------------- evaluation

async function fetchEvaluation() {
  if (app.evaluating) return;
  app.evaluating = true;
  app.lastEval = performance.now();
  try {
    const ev = await getJSON("/api/evaluation");
    app.evaluation = ev;
    stats.evaluations++;
    if (ev.accuracy !== null && ev.accuracy !== undefined) {
      const last = app.testAccuracy[app.testAccuracy.length - 1];
      if (!last || last[0] !== ev.step) app.testAccuracy.push([ev.step, ev.accuracy]);
    }
    renderEvaluation();
    if ((app.selected !== null || app.drawing) && performance.now() - app.lastTrace > TRACE_EVERY_MS) traceNow();
  } catch (err) {
    say(`evaluation: ${err.message}`, true);
  } finally {
    app.evaluating = false;
  }
}

function renderEvaluation() {
  const ev = app.evaluation;
  $("test-acc").textContent = ev.accuracy !== null && ev.accuracy !== undefined ? pct(ev.accuracy) : ev.r2 !== undefined ? `R² ${fmt(ev.r2, 3)}` : "–";
  const cells = $("grid").children;
  ev.grid_right.forEach((right, k) => {
    const el = cells[k];
    if (!el) return;
    el.classList.toggle("right", right);
    el.classList.toggle("wrong", !right);
    const said = app.info.data.class_names.length ? className(ev.grid_pred[k]) : fmt(ev.grid_pred[k], 3);
    el.title = `test sample ${k}: true ${app.info.data.class_names.length ? className(app.info.data.grid_labels[k]) : app.info.data.grid_labels[k]}, network says ${said}` +
      (ev.grid_certainty ? ` (${ev.grid_certainty[k].toFixed(2)})` : "");
  });
  if (ev.confusion) renderConfusion(ev.confusion);
  renderNorms(ev.layers, ev.flags);
}

function renderConfusion(m) {
  const table = document.createElement("table");
  table.className = "confusion";
  const head = table.createTHead().insertRow();
  head.insertCell().textContent = "true \\ said";
  m.forEach((_, j) => { const th = document.createElement("th"); th.textContent = className(j); head.append(th); });
  const body = table.createTBody();
  const top = Math.max(1, ...m.flat());
  m.forEach((row, i) => {
    const tr = body.insertRow();
    const th = document.createElement("th"); th.textContent = className(i); tr.append(th);
    row.forEach((v, j) => {
      const td = tr.insertCell();
      td.textContent = v;
      const a = v / top;
      td.style.background = i === j ? `rgba(47,133,90,${0.1 + 0.8 * a})` : v ? `rgba(197,48,48,${0.15 + 0.85 * a})` : "";
      if (a > 0.5) td.style.color = "#fff";
    });
  });
  $("confusion").replaceChildren(table);
}

function renderNorms(layers, flags) {
  const rows = layers.map((L, k) => {
    const meta = app.info.network.layout.layers[k];
    const tr = document.createElement("tr");
    const mine = flags.filter((f) => f.layer === L.layer);
    const cells = [`layer ${L.layer} (${meta.n_in}→${meta.n_out} ${meta.activation})`, fmt(L.weight_norm, 3), fmt(L.grad_norm, 3)];
    for (const text of cells) tr.insertCell().textContent = text;
    const barCell = tr.insertCell();
    const bar = document.createElement("span");
    bar.className = "norm-bar";
    // log scale: 1e-6 .. 1e2
    const g = L.grad_norm === null ? 0 : Math.max(0, Math.min(1, (Math.log10(Math.max(L.grad_norm, 1e-6)) + 6) / 8));
    bar.style.width = `${Math.round(100 * g)}%`;
    barCell.append(bar);
    const flagCell = tr.insertCell();
    for (const f of mine) { const b = document.createElement("span"); b.className = "flag"; b.textContent = f.code; b.title = `${f.title}\n${f.detail}\nfix: ${f.fix}`; flagCell.append(b); }
    if (L.grad_norm === null || L.weight_norm === null) { const b = document.createElement("span"); b.className = "flag"; b.textContent = "NaN"; flagCell.append(b); }
    return tr;
  });
  $("norms").replaceChildren(...rows);
  const list = flags.map((f) => {
    const li = document.createElement("li");
    li.textContent = `${f.layer ? `layer ${f.layer}: ` : ""}${f.title}. Fix: ${f.fix}`;
    li.title = f.detail;
    return li;
  });
  if (!list.length) { const li = document.createElement("li"); li.className = "ok"; li.textContent = "no doctor's flags on the latest dials"; list.push(li); }
  $("flags").replaceChildren(...list);
}

// ------------------------------------------------------------------ charts

function drawCharts() {
  if (!visible.has("loss-chart") && !visible.has("acc-chart")) return;
  const train = app.points.map(([step, loss]) => [step, loss]);
  const epochs = app.epochs;
  const n = lineChart($("loss-chart"), [
    { name: "training loss", color: COLORS.train, points: train },
    { name: "epoch mean", color: COLORS.trainEpoch, points: epochs.map((e) => [e.step, e.loss]), dots: true },
    { name: "validation", color: COLORS.val, points: epochs.map((e) => [e.step, e.val_loss]), dots: true },
  ], { yLabel: "loss", log: true });
  $("loss-chart").dataset.points = String(n);
  const accSeries = [
    { name: "training (epoch)", color: COLORS.trainEpoch, points: epochs.map((e) => [e.step, e.accuracy]), dots: true },
    { name: "validation", color: COLORS.val, points: epochs.map((e) => [e.step, e.val_accuracy]), dots: true },
    { name: "test (live)", color: COLORS.test, points: app.testAccuracy },
  ];
  const m = lineChart($("acc-chart"), accSeries, { yLabel: "accuracy", yMin: 0, yMax: 1 });
  $("acc-chart").dataset.points = String(m);
}

// ------------------------------------------------------------------- trace

async function traceNow() {
  if (app.tracing) return;
  const body = app.drawing ? { pixels: app.drawing } : app.selected !== null ? { index: app.selected } : null;
  if (!body) return;
  app.tracing = true;
  app.lastTrace = performance.now();
  try {
    app.trace = await postJSON("/api/trace", body);
    stats.traces++;
    renderTrace();
    drawDials();
  } catch (err) {
    say(`trace: ${err.message}`, true);
  } finally {
    app.tracing = false;
  }
}

function renderTrace() {
  const t = app.trace, d = app.info.data;
  const title = app.drawing ? "your drawing" : `test sample ${app.selected}`;
  const truth = t.label !== undefined ? `, true ${d.class_names.length ? className(t.label) : fmt(t.label, 4)}` : "";
  const said = t.certainties ? `network says ${className(t.predicted)} (${t.certainties[t.predicted].toFixed(2)})` : `network says ${fmt(t.value, 4)}`;
  $("sample-title").textContent = `${title}${truth}: ${said}; loss ${fmt(t.loss, 3)}` + (t.target === "predicted" ? " (target: its own answer)" : "");
  if (d.kind === "image") {
    drawImage(app.inputImage, t.input, d.image_size);
    const view = $("sample-image");
    view.hidden = false;
    drawImage(view, t.input, d.image_size);
  }
  if (t.certainties) {
    barList($("certainties"), t.certainties.map((p, k) => ({
      label: className(k), value: p,
      className: (k === t.predicted ? "predicted" : "") + (k === t.label ? " truth" : ""),
      color: k === t.label ? "#2f855a" : k === t.predicted ? "#c53030" : "#718096",
    })), { max: 1, format: (v) => v.toFixed(3) });
    $("certainties").dataset.values = t.certainties.map((p) => p.toFixed(4)).join(",");
  }
  const rows = t.layers.map((L) => {
    const row = document.createElement("div");
    row.className = "trace-layer layer";
    const label = document.createElement("div");
    label.className = "trace-label";
    const dmax = maxAbs(L.delta);
    label.textContent = `layer ${L.layer} (${L.activation}, ${L.units} units): activations a, then deltas dL/dz (max |δ| ${fmt(dmax, 2)})`;
    const a = strip(L.a, "activations", L.activation === "softmax" || L.activation === "sigmoid" ? 1 : null);
    const delta = strip(L.delta, "deltas", null);
    row.append(label, a, delta);
    return row;
  });
  $("deltas").replaceChildren(...rows);
}

// One row of coloured cells, one per unit (blue positive, red negative), with its value on hover.
function strip(values, cls, scale) {
  const canvas = document.createElement("canvas");
  canvas.className = "strip " + cls;
  const n = values.length;
  canvas.style.height = "16px";
  canvas.style.width = `${Math.min(100, Math.max(10, n * 2.2))}%`;
  requestAnimationFrame(() => {
    const { ctx, w, h } = fit(canvas);
    const m = scale || maxAbs(values) || 1;
    const cw = w / n;
    values.forEach((v, k) => { ctx.fillStyle = cssColor(v / m); ctx.fillRect(k * cw, 0, Math.max(1, cw - (cw > 4 ? 1 : 0)), h); });
  });
  canvas.title = `${cls}: ` + values.slice(0, 40).map((v) => fmt(v, 2)).join(" ") + (n > 40 ? " ..." : "");
  return canvas;
}

// ---------------------------------------------------------------- controls

async function control(body) {
  try {
    app.state = await postJSON("/api/control", body);
    renderState();
    if (app.state.snapshot !== app.snapshotVersion) fetchSnapshot();
    fetchEvaluation();
    say("");
  } catch (err) {
    say(err.message, true);
  }
}

function setupControls() {
  $("play").addEventListener("click", () => control({ action: "play" }));
  $("pause").addEventListener("click", () => control({ action: "pause" }));
  $("step").addEventListener("click", () => control({ action: "step" }));
  $("epoch").addEventListener("click", () => control({ action: "epoch" }));
  $("reset").addEventListener("click", () => {
    const text = $("seed").value.trim();
    control(text === "" ? { action: "reset" } : { action: "reset", seed: Number(text) });
  });
  $("set-lr").addEventListener("click", () => control({ action: "set_lr", lr: Number($("lr").value) }));
  $("speed").addEventListener("change", () => control({ action: "set_speed", steps_per_second: Number($("speed").value) }));
  for (const [id, format] of [["save-model", "model"], ["save-onnx", "onnx"]]) {
    $(id).addEventListener("click", async () => {
      try {
        const out = await postJSON("/api/save", { format });
        say(`saved ${out.path}`);
      } catch (err) {
        say(err.message, true);
      }
    });
  }
  $("clear-drawing").addEventListener("click", () => { if (app.pad) app.pad.clear(); });
  $("rank-by").addEventListener("change", drawDials);
  window.addEventListener("resize", () => { queueDraw(); drawDials(); });
}

// Live tooltips on the network: the dial or unit under the pointer, updated as the snapshots arrive.
function showTooltip() {
  const tip = $("tooltip");
  const text = app.pointer && app.snapshot
    ? describeAt(app.geometry, app.snapshot, app.info.network.layout, app.info, app.pointer.x, app.pointer.y) : null;
  tip.hidden = !text;
  if (!text) return;
  tip.textContent = text;
  tip.style.left = `${app.pointer.pageX + 12}px`;
  tip.style.top = `${app.pointer.pageY + 12}px`;
}

function setupTooltips() {
  const canvas = $("network");
  canvas.addEventListener("pointermove", (e) => {
    const r = canvas.getBoundingClientRect();
    app.pointer = { x: e.clientX - r.left, y: e.clientY - r.top, pageX: e.pageX, pageY: e.pageY };
    showTooltip();
  });
  canvas.addEventListener("pointerleave", () => { app.pointer = null; showTooltip(); });
}

// Space: play / pause; "s" or ".": one step; "e": one epoch (not while typing in a field).
function setupKeys() {
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === " ") { e.preventDefault(); control({ action: app.state && app.state.running ? "pause" : "play" }); }
    else if (e.key === "s" || e.key === ".") control({ action: "step" });
    else if (e.key === "e") control({ action: "epoch" });
  });
}

function setupUnits() {
  const select = $("unit-layer");
  select.replaceChildren(...app.info.network.layout.layers.map((L, k) => {
    const o = document.createElement("option");
    o.value = String(k);
    o.textContent = `layer ${L.layer}: ${L.n_in}→${L.n_out} ${L.activation}`;
    return o;
  }));
  select.addEventListener("change", drawDials);
}

start().catch((err) => say(`could not start: ${err.message}`, true));
