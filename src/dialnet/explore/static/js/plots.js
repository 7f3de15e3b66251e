// Small Canvas 2D drawings: line charts, bars, a diverging colour scale, images of weights.

export const COLORS = { train: "#2b6cb0", trainEpoch: "#1a365d", val: "#dd6b20", test: "#2f855a", grid: "#e2e8f0", text: "#4a5568" };

// A canvas sized for the screen's pixel density; returns its 2D context in CSS pixels.
export function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

// Blue for positive, red for negative, white for zero; v in [-1, 1] (clipped).
const POSITIVE = [33, 102, 172], NEGATIVE = [178, 24, 43];
export function diverging(v) {
  const t = Math.max(-1, Math.min(1, Number.isFinite(v) ? v : 0));
  const target = t >= 0 ? POSITIVE : NEGATIVE, a = Math.abs(t);
  return target.map((c) => Math.round(255 + a * (c - 255)));
}

export function cssColor(v) {
  const [r, g, b] = diverging(v);
  return `rgb(${r},${g},${b})`;
}

export function maxAbs(values, start = 0, end = values.length) {
  let m = 0;
  for (let i = start; i < end; i++) { const a = Math.abs(values[i]); if (a > m && Number.isFinite(a)) m = a; }
  return m;
}

// Draw `side` x `side` values (row by row, every `stride`-th starting at `start`) as an image.
// mode "gray": 0..1 (or min..max when normalize) as black..white; mode "signed": diverging colours around 0.
export function drawImage(canvas, values, side, { start = 0, stride = 1, mode = "gray", scale = null } = {}) {
  canvas.width = side; canvas.height = side;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(side, side);
  let lo = 0, hi = 1, m = scale;
  if (mode === "gray") {
    lo = Infinity; hi = -Infinity;
    for (let k = 0; k < side * side; k++) { const v = values[start + k * stride]; if (v < lo) lo = v; if (v > hi) hi = v; }
    if (lo >= 0 && hi <= 1) { lo = 0; hi = 1; }
    if (!(hi > lo)) { hi = lo + 1; }
  } else if (m === null) {
    m = 0;
    for (let k = 0; k < side * side; k++) { const a = Math.abs(values[start + k * stride]); if (a > m) m = a; }
    m = m || 1;
  }
  for (let k = 0; k < side * side; k++) {
    const v = values[start + k * stride];
    let rgb;
    if (mode === "gray") { const g = Math.round(255 * (v - lo) / (hi - lo)); rgb = [g, g, g]; }
    else rgb = diverging(v / m);
    img.data[4 * k] = rgb[0]; img.data[4 * k + 1] = rgb[1]; img.data[4 * k + 2] = rgb[2]; img.data[4 * k + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// series: [{name, color, points: [[x, y], ...], dots: bool}]; returns how many points were drawn.
export function lineChart(canvas, series, { yLabel = "", yMin = null, yMax = null, xLabel = "step", log = false } = {}) {
  const { ctx, w, h } = fit(canvas);
  const pad = { l: 46, r: 10, t: 10, b: 30 };
  const tf = (y) => (log ? Math.log10(Math.max(y, 1e-6)) : y);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, count = 0;
  for (const s of series) for (const [x, y] of s.points) {
    if (y === null || !Number.isFinite(y)) continue;
    count++;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, tf(y)); y1 = Math.max(y1, tf(y));
  }
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = COLORS.text;
  if (!count) { ctx.fillText("no points yet: press play, step or epoch", pad.l, h / 2); return 0; }
  if (yMin !== null) y0 = tf(yMin);
  if (yMax !== null) y1 = tf(yMax);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += 0.5; y0 -= 0.5; }
  const X = (x) => pad.l + (w - pad.l - pad.r) * (x - x0) / (x1 - x0);
  const Y = (y) => h - pad.b - (h - pad.t - pad.b) * (tf(y) - y0) / (y1 - y0);
  ctx.strokeStyle = COLORS.grid; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const yy = y0 + (y1 - y0) * i / 4, py = h - pad.b - (h - pad.t - pad.b) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad.l, py); ctx.lineTo(w - pad.r, py); ctx.stroke();
    const label = log ? Math.pow(10, yy).toPrecision(2) : yy.toPrecision(3);
    ctx.fillText(label, 2, py + 4);
  }
  ctx.fillText(`${xLabel} ${Math.round(x0)}`, pad.l, h - 8);
  const right = `${Math.round(x1)}`;
  ctx.fillText(right, w - pad.r - ctx.measureText(right).width, h - 8);
  if (yLabel) ctx.fillText(yLabel, pad.l + 4, pad.t + 10);
  let legendX = pad.l + 80;
  for (const s of series) {
    const pts = s.points.filter(([, y]) => y !== null && Number.isFinite(y));
    ctx.strokeStyle = ctx.fillStyle = s.color;
    ctx.lineWidth = s.width || 1.5;
    // at most ~1500 segments: a long run is thinned, never truncated
    const every = Math.max(1, Math.floor(pts.length / 1500));
    ctx.beginPath();
    pts.forEach(([x, y], i) => {
      if (i % every && i !== pts.length - 1) return;
      if (i === 0) ctx.moveTo(X(x), Y(y)); else ctx.lineTo(X(x), Y(y));
    });
    ctx.stroke();
    if (s.dots) for (const [x, y] of pts.slice(-200)) { ctx.beginPath(); ctx.arc(X(x), Y(y), 2.5, 0, 2 * Math.PI); ctx.fill(); }
    ctx.fillText(s.name, legendX, pad.t + 10);
    legendX += ctx.measureText(s.name).width + 14;
  }
  return count;
}

// Horizontal bars with labels: rows [{label, value, color}], values in [0, max].
export function barList(container, rows, { max = null, format = (v) => v.toFixed(2) } = {}) {
  container.replaceChildren();
  const top = max ?? Math.max(1e-12, ...rows.map((r) => r.value || 0));
  for (const r of rows) {
    const row = document.createElement("div");
    row.className = "bar-row" + (r.className ? " " + r.className : "");
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = r.label;
    const track = document.createElement("span");
    track.className = "bar-track";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(0, Math.min(100, 100 * (r.value || 0) / top))}%`;
    if (r.color) bar.style.background = r.color;
    track.append(bar);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = format(r.value || 0);
    row.append(label, track, value);
    container.append(row);
  }
}
