// The network: units and dials drawn from the latest snapshot, the hidden units' incoming weights as images or
// bars with their gradients beside them, and the dials whose gradients are largest.

import { cssColor, drawImage, fit, maxAbs } from "./plots.js";

export const MAX_UNITS = 20; // units drawn per layer; a wider layer shows its top units and says how many are left out

// The views of one Dense layer inside the snapshot: W[i * n_out + j], b[j], and their gradients.
export function layerViews(snapshot, layout, k) {
  const L = layout.layers[k];
  const g = layout.grads;
  return {
    ...L,
    W: snapshot.subarray(L.weights, L.biases),
    b: snapshot.subarray(L.biases, L.biases + L.n_out),
    dW: snapshot.subarray(g + L.weights, g + L.biases),
    db: snapshot.subarray(g + L.biases, g + L.biases + L.n_out),
  };
}

// Per unit j of a layer: the norm of its incoming weights and of their gradients.
export function unitNorms(view) {
  const { n_in, n_out, W, dW } = view;
  const w = new Float64Array(n_out), g = new Float64Array(n_out);
  for (let i = 0; i < n_in; i++) {
    const row = i * n_out;
    for (let j = 0; j < n_out; j++) { w[j] += W[row + j] * W[row + j]; g[j] += dW[row + j] * dW[row + j]; }
  }
  return { w: Array.from(w, Math.sqrt), g: Array.from(g, Math.sqrt) };
}

// The units to show: all of them when few, else the `max` ranked first by `score`, in index order.
export function topUnits(score, max = MAX_UNITS) {
  const idx = score.map((_, j) => j);
  if (idx.length <= max) return idx;
  return idx.sort((a, b) => (score[b] || 0) - (score[a] || 0)).slice(0, max).sort((a, b) => a - b);
}

// Outgoing weight norms of the inputs (for a table's input column).
function inputNorms(view) {
  const { n_in, n_out, W } = view;
  const out = new Array(n_in).fill(0);
  for (let i = 0; i < n_in; i++) { let s = 0; for (let j = 0; j < n_out; j++) s += W[i * n_out + j] ** 2; out[i] = Math.sqrt(s); }
  return out;
}

// Draw the network on a canvas. trace (optional): one sample's activations and deltas per layer.
export function drawNetwork(canvas, info, snapshot, { trace = null, rankBy = "grad", inputImage = null } = {}) {
  const { ctx, w, h } = fit(canvas);
  const layout = info.network.layout;
  const sizes = info.network.sizes;
  const views = layout.layers.map((_, k) => layerViews(snapshot, layout, k));
  const columns = [];
  const image = info.data.kind === "image" && info.data.image_size;
  // the input column: an image, or the inputs with the largest outgoing weights
  if (image) columns.push({ units: [], image: true, n: sizes[0] });
  else columns.push({ units: topUnits(inputNorms(views[0])), n: sizes[0] });
  views.forEach((view) => {
    const norms = unitNorms(view);
    columns.push({ units: topUnits(rankBy === "grad" ? norms.g : norms.w), n: view.n_out });
  });
  const padX = 70, padY = 26;
  const colX = (c) => padX + (w - 2 * padX) * c / (columns.length - 1);
  const unitY = (col, r) => padY + (h - 2 * padY) * (col.units.length === 1 ? 0.5 : r / (col.units.length - 1));
  const imgSize = Math.min(120, (h - 2 * padY) * 0.8);
  const geometry = { edges: [], units: [] }; // for the tooltips: every dial and unit drawn, where it is
  // dials: one line per shown pair, width and colour by the weight, dashed when its gradient is large
  views.forEach((view, k) => {
    const from = columns[k], to = columns[k + 1];
    const m = maxAbs(view.W) || 1, mg = maxAbs(view.dW) || 1;
    const sources = from.image ? [] : from.units;
    for (const [r, i] of sources.entries()) for (const [s, j] of to.units.entries()) {
      const wv = view.W[i * view.n_out + j];
      ctx.strokeStyle = cssColor(wv / m);
      ctx.globalAlpha = 0.25 + 0.75 * Math.min(1, Math.abs(wv) / m);
      ctx.lineWidth = 0.5 + 3 * Math.abs(wv) / m;
      ctx.setLineDash(Math.abs(view.dW[i * view.n_out + j]) / mg > 0.5 ? [4, 3] : []);
      ctx.beginPath(); ctx.moveTo(colX(k), unitY(from, r)); ctx.lineTo(colX(k + 1), unitY(to, s)); ctx.stroke();
      geometry.edges.push({ x1: colX(k), y1: unitY(from, r), x2: colX(k + 1), y2: unitY(to, s), layer: k, i, j });
    }
    if (from.image) {
      ctx.globalAlpha = 0.15; ctx.strokeStyle = "#718096"; ctx.lineWidth = 0.6; ctx.setLineDash([]);
      for (const [s] of to.units.entries()) {
        ctx.beginPath(); ctx.moveTo(colX(0) + imgSize / 2, h / 2); ctx.lineTo(colX(1), unitY(to, s)); ctx.stroke();
      }
    }
  });
  ctx.globalAlpha = 1; ctx.setLineDash([]);
  // the input image (the selected sample or the drawing)
  if (image && inputImage) {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(inputImage, colX(0) - imgSize / 2, h / 2 - imgSize / 2, imgSize, imgSize);
    ctx.strokeStyle = "#a0aec0"; ctx.strokeRect(colX(0) - imgSize / 2, h / 2 - imgSize / 2, imgSize, imgSize);
  } else if (image) {
    ctx.fillStyle = "#edf2f7"; ctx.fillRect(colX(0) - imgSize / 2, h / 2 - imgSize / 2, imgSize, imgSize);
  }
  // units: filled by the sample's activation, ringed by its delta (red: the loss wants it lower, blue: higher)
  ctx.font = "10px system-ui, sans-serif";
  columns.forEach((col, c) => {
    const layerTrace = trace && c > 0 ? trace.layers[c - 1] : null;
    const inputs = trace && c === 0 ? trace.input : null;
    const dm = layerTrace ? maxAbs(layerTrace.delta) || 1 : 1;
    col.units.forEach((j, r) => {
      const x = colX(c), y = unitY(col, r);
      const a = layerTrace ? layerTrace.a[j] : inputs ? inputs[j] : null;
      geometry.units.push({ x, y, column: c, j, a, delta: layerTrace ? layerTrace.delta[j] : null });
      ctx.beginPath(); ctx.arc(x, y, 8, 0, 2 * Math.PI);
      const shade = a === null ? 230 : Math.round(255 * (1 - Math.max(0, Math.min(1, Math.abs(a)))));
      ctx.fillStyle = `rgb(${shade},${shade},${shade})`;
      ctx.fill();
      ctx.lineWidth = 3;
      ctx.strokeStyle = layerTrace ? cssColor(-layerTrace.delta[j] / dm) : "#a0aec0";
      ctx.stroke();
      ctx.fillStyle = "#2d3748";
      const names = info.data.class_names;
      const label = c === columns.length - 1 && names.length ? names[j] : c === 0 && info.data.feature_names ? (info.data.feature_names[j] || `x${j}`) : `${j}`;
      const text = c === columns.length - 1 && trace && trace.certainties ? `${label} ${trace.certainties[j].toFixed(2)}` : label;
      if (c === 0) ctx.fillText(text.slice(0, 10), x - 12 - ctx.measureText(text.slice(0, 10)).width, y + 3);
      else ctx.fillText(text, x + 11, y + 3);
    });
    ctx.fillStyle = "#4a5568";
    const title = c === 0 ? `input ${col.n}` : c === columns.length - 1 ? `output ${col.n}` : `hidden ${col.n}`;
    ctx.fillText(title, colX(c) - ctx.measureText(title).width / 2, 12);
    if (!col.image && col.units.length < col.n) {
      const more = `top ${col.units.length} of ${col.n}`;
      ctx.fillText(more, colX(c) - ctx.measureText(more).width / 2, h - 8);
    }
  });
  return geometry;
}

// What is under the pointer on the network drawing: a unit (its bias, activation and delta) or a dial (its weight and
// gradient), as one line of text; null when nothing is near.
export function describeAt(geometry, snapshot, layout, info, x, y) {
  if (!geometry) return null;
  for (const u of geometry.units) {
    if ((u.x - x) ** 2 + (u.y - y) ** 2 > 100) continue;
    if (u.column === 0) return `input ${u.j}${u.a !== null ? `: value ${u.a.toPrecision(3)}` : ""}`;
    const view = layerViews(snapshot, layout, u.column - 1);
    const g = layout.grads;
    const bias = view.b[u.j], dbias = snapshot[g + view.biases + u.j];
    return `layer ${u.column} unit ${u.j}: bias ${bias.toPrecision(3)}, dL/db ${dbias.toPrecision(2)}` +
      (u.a !== null ? `; this sample: a ${u.a.toPrecision(3)}, delta ${u.delta.toPrecision(2)}` : "");
  }
  let best = null, bestD = 16;
  for (const e of geometry.edges) {
    const dx = e.x2 - e.x1, dy = e.y2 - e.y1;
    const t = Math.max(0, Math.min(1, ((x - e.x1) * dx + (y - e.y1) * dy) / (dx * dx + dy * dy || 1)));
    const d = (e.x1 + t * dx - x) ** 2 + (e.y1 + t * dy - y) ** 2;
    if (d < bestD) { bestD = d; best = e; }
  }
  if (!best) return null;
  const view = layerViews(snapshot, layout, best.layer);
  const w = view.W[best.i * view.n_out + best.j], dw = view.dW[best.i * view.n_out + best.j];
  const names = info.data.class_names;
  const to = best.layer === layout.layers.length - 1 && names.length ? names[best.j] : `unit ${best.j}`;
  const from = best.layer === 0 ? (info.data.feature_names ? info.data.feature_names[best.i] || `input ${best.i}` : `input ${best.i}`) : `unit ${best.i}`;
  return `dial ${from} → ${to} (layer ${best.layer + 1}): w ${w.toPrecision(3)}, dL/dw ${dw.toPrecision(2)} ` +
    `(gradient descent turns it ${dw > 0 ? "down" : dw < 0 ? "up" : "nowhere"})`;
}

// Each unit of layer k: its incoming weights (an image for the first layer of image data, else bars) and their
// gradients beside them. Wide layers show the units whose dials turn the most.
export function drawUnits(container, info, snapshot, k, { max = 20 } = {}) {
  const layout = info.network.layout;
  const view = layerViews(snapshot, layout, k);
  const norms = unitNorms(view);
  const units = topUnits(norms.g, max);
  const side = k === 0 && info.data.kind === "image" ? info.data.image_size : 0;
  const mw = maxAbs(view.W) || 1, mg = maxAbs(view.dW) || 1;
  if (container.childElementCount !== units.length || container.dataset.layer !== String(k)) {
    container.replaceChildren(...units.map(() => unitCard(side)));
    container.dataset.layer = String(k);
  }
  units.forEach((j, n) => {
    const card = container.children[n];
    const [wCanvas, gCanvas] = card.querySelectorAll("canvas");
    if (side) {
      drawImage(wCanvas, view.W, side, { start: j, stride: view.n_out, mode: "signed", scale: mw });
      drawImage(gCanvas, view.dW, side, { start: j, stride: view.n_out, mode: "signed", scale: mg });
    } else {
      drawBars(wCanvas, view.W, view.n_in, j, view.n_out, mw);
      drawBars(gCanvas, view.dW, view.n_in, j, view.n_out, mg);
    }
    card.querySelector(".unit-caption").textContent =
      `unit ${j}: |w| ${norms.w[j].toPrecision(3)}, |dL/dw| ${norms.g[j].toPrecision(2)}, b ${view.b[j].toPrecision(3)}`;
  });
  return units;
}

function unitCard(side) {
  const card = document.createElement("div");
  card.className = "unit";
  const pair = document.createElement("div");
  pair.className = "unit-pair";
  for (const title of ["weights", "gradient"]) {
    const fig = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.className = side ? "unit-image" : "unit-bars";
    if (!side) { canvas.width = 120; canvas.height = 48; }
    const caption = document.createElement("figcaption");
    caption.textContent = title;
    fig.append(canvas, caption);
    pair.append(fig);
  }
  const text = document.createElement("div");
  text.className = "unit-caption";
  card.append(pair, text);
  return card;
}

function drawBars(canvas, values, n_in, j, n_out, scale) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  // at most 60 bars: the incoming dials with the largest weights
  let rows = Array.from({ length: n_in }, (_, i) => i);
  if (n_in > 60) rows = rows.sort((a, b) => Math.abs(values[b * n_out + j]) - Math.abs(values[a * n_out + j])).slice(0, 60).sort((a, b) => a - b);
  const bw = w / rows.length;
  ctx.fillStyle = "#cbd5e0"; ctx.fillRect(0, h / 2, w, 1);
  rows.forEach((i, r) => {
    const v = values[i * n_out + j] / scale;
    ctx.fillStyle = cssColor(v);
    const bh = Math.max(1, Math.abs(v) * (h / 2 - 1));
    ctx.fillRect(r * bw, v >= 0 ? h / 2 - bh : h / 2 + 1, Math.max(1, bw - 1), bh);
  });
}

// The dials with the largest |dL/dw| over the whole network: [{layer, i, j, w, grad}], largest first.
export function topDials(snapshot, layout, count = 10) {
  const best = [];
  layout.layers.forEach((L, k) => {
    const view = layerViews(snapshot, layout, k);
    let floor = best.length < count ? 0 : Math.abs(best[best.length - 1].grad);
    for (let idx = 0; idx < view.dW.length; idx++) {
      const g = Math.abs(view.dW[idx]);
      if (!(g > floor)) continue;
      best.push({ layer: L.layer, i: Math.floor(idx / L.n_out), j: idx % L.n_out, w: view.W[idx], grad: view.dW[idx] });
      best.sort((a, b) => Math.abs(b.grad) - Math.abs(a.grad));
      if (best.length > count) best.pop();
      floor = best.length < count ? 0 : Math.abs(best[best.length - 1].grad);
    }
  });
  return best;
}
