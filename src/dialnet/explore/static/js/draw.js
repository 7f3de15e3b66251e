// A drawing pad: draw a digit with the mouse (or a finger); onChange(pixels) gets it as side x side values 0..1.

// The pen is white on black, like MNIST; for images whose background is light (background > 0.5) it is black on
// white, so a drawing looks like the data the network learned from.
export class DrawPad {
  constructor(canvas, side, onChange, light = false) {
    this.canvas = canvas;
    this.paper = light ? "#fff" : "#000";
    this.ink = light ? "#000" : "#fff";
    this.side = side;
    this.onChange = onChange;
    this.ctx = canvas.getContext("2d");
    this.small = document.createElement("canvas");
    this.small.width = this.small.height = side;
    this.drawing = false;
    this.last = null;
    this.pending = null;
    this.clear(false);
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointerleave", "pointercancel"]) canvas.addEventListener(type, () => this.up());
  }

  clear(notify = true) {
    this.ctx.fillStyle = this.paper;
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty = true;
    if (notify) this.onChange(null);
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * this.canvas.width / r.width, (e.clientY - r.top) * this.canvas.height / r.height];
  }

  down(e) {
    this.drawing = true;
    this.last = this.point(e);
    try { this.canvas.setPointerCapture(e.pointerId); } catch (_) { /* synthetic events have no capture */ }
    this.stroke(this.last);
  }

  move(e) {
    if (!this.drawing) return;
    this.stroke(this.point(e));
  }

  up() {
    if (!this.drawing) return;
    this.drawing = false;
    this.emit();
  }

  stroke(p) {
    const ctx = this.ctx;
    // about 2.6 image pixels wide, like a pen stroke in MNIST at this size
    ctx.strokeStyle = this.ink;
    ctx.lineWidth = 2.6 * this.canvas.width / this.side;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(this.last[0], this.last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    this.last = p;
    this.empty = false;
    if (!this.pending) this.pending = setTimeout(() => { this.pending = null; this.emit(); }, 120);
  }

  pixels() {
    const s = this.small.getContext("2d", { willReadFrequently: true });
    s.imageSmoothingEnabled = true;
    s.imageSmoothingQuality = "high";
    s.clearRect(0, 0, this.side, this.side);
    s.drawImage(this.canvas, 0, 0, this.side, this.side);
    const data = s.getImageData(0, 0, this.side, this.side).data;
    const out = new Array(this.side * this.side);
    for (let k = 0; k < out.length; k++) out[k] = data[4 * k] / 255;
    return out;
  }

  emit() {
    if (!this.empty) this.onChange(this.pixels());
  }
}
