// Canvas drawings of the clinic screen: the ECG strip on the standard grid, the glucose trend and
// the phonocardiogram. No library; sizes in CSS pixels, scaled for the device pixel ratio.
/* global window, requestAnimationFrame */

/**
 * CSS pixels per millimetre. A CSS pixel is 1/96 inch by definition, so 96 / 25.4. The physical size
 * on a given panel depends on how the browser maps CSS pixels to it; calibrate the display (or its
 * device scale factor) for a strip that measures true on paper.
 */
export const PX_PER_MM = 96 / 25.4;
/** Standard ECG paper speed and gain. */
export const ECG_MM_PER_S = 25;
export const ECG_MM_PER_MV = 10;

function fit(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(rect.width));
  const h = Math.max(1, Math.round(rect.height));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h };
}

function drawEcgGrid(ctx, w, h) {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  for (const [step, color, width] of [
    [PX_PER_MM, '#f4c7c7', 0.5],
    [5 * PX_PER_MM, '#e08c8c', 1],
  ]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    for (let x = 0; x <= w; x += step) {
      ctx.moveTo(Math.round(x) + 0.5, 0);
      ctx.lineTo(Math.round(x) + 0.5, h);
    }
    for (let y = 0; y <= h; y += step) {
      ctx.moveTo(0, Math.round(y) + 0.5);
      ctx.lineTo(w, Math.round(y) + 0.5);
    }
    ctx.stroke();
  }
}

/**
 * A sweeping ECG strip: samples are queued as chunks arrive and drawn at the signal's own rate
 * (25 mm/s), left to right, overwriting the oldest trace just ahead of the sweep, like a bedside
 * monitor. A queue longer than 1.5 s is caught up at once so the trace never lags far behind.
 */
export class EcgStrip {
  constructor(canvas) {
    this.canvas = canvas;
    this.queue = [];
    this.rateHz = 0;
    this.x = 0;
    this.lastY = undefined;
    this.lastFrame = undefined;
    this.carry = 0;
    this.running = false;
    this.grid = undefined;
    this.samplesDrawn = 0;
  }

  /** `samples` in ADC units; `gain` ADC units per mV. */
  push(samples, gain, rateHz) {
    this.rateHz = rateHz;
    for (const s of samples) this.queue.push(s / gain);
    const max = Math.round(rateHz * 1.5);
    if (this.queue.length > max) this.queue.splice(0, this.queue.length - Math.round(rateHz * 0.3));
    if (!this.running) this.start();
  }

  start() {
    this.running = true;
    const frame = (now) => {
      if (!this.running) return;
      this.draw(now);
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  stop() {
    this.running = false;
  }

  reset() {
    this.grid = undefined;
    this.x = 0;
    this.lastY = undefined;
  }

  draw(now = performance.now()) {
    const { ctx, w, h } = fit(this.canvas);
    if (this.grid === undefined || this.grid.w !== w || this.grid.h !== h) {
      drawEcgGrid(ctx, w, h);
      this.grid = { w, h };
      this.x = 0;
      this.lastY = undefined;
    }
    const dt = this.lastFrame === undefined ? 0 : Math.min(0.25, (now - this.lastFrame) / 1000);
    this.lastFrame = now;
    if (this.rateHz <= 0 || this.queue.length === 0) return;
    this.carry += dt * this.rateHz;
    let n = Math.min(this.queue.length, Math.floor(this.carry));
    this.carry -= n;
    if (n === 0) return;
    const pxPerSample = (ECG_MM_PER_S * PX_PER_MM) / this.rateHz;
    const pxPerMv = ECG_MM_PER_MV * PX_PER_MM;
    const mid = h / 2;
    ctx.strokeStyle = '#111';
    ctx.lineWidth = 1.4;
    ctx.lineJoin = 'round';
    while (n > 0) {
      // erase a band ahead of the sweep (re-drawing the grid there)
      const clearW = Math.min(12, w - this.x);
      ctx.save();
      ctx.beginPath();
      ctx.rect(this.x + 1, 0, clearW, h);
      ctx.clip();
      drawEcgGrid(ctx, w, h);
      ctx.restore();
      ctx.beginPath();
      let started = false;
      while (n > 0 && this.x < w) {
        const mv = this.queue.shift();
        n -= 1;
        this.samplesDrawn += 1;
        const y = Math.max(1, Math.min(h - 1, mid - mv * pxPerMv));
        if (!started) {
          ctx.moveTo(this.x, this.lastY ?? y);
          started = true;
        }
        this.x += pxPerSample;
        ctx.lineTo(this.x, y);
        this.lastY = y;
      }
      ctx.stroke();
      if (this.x >= w) {
        this.x = 0;
        this.lastY = undefined;
      }
    }
  }
}

/**
 * Glucose trend: readings (mg/dL) against device time, the 70-180 target band, and the forecast
 * point when there is one.
 */
export function drawGlucose(canvas, readings, forecast, labels) {
  const { ctx, w, h } = fit(canvas);
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  const left = 40;
  const right = 12;
  const top = 8;
  const bottom = 22;
  const lo = 40;
  const hi = 320;
  const y = (v) => top + ((hi - Math.max(lo, Math.min(hi, v))) / (hi - lo)) * (h - top - bottom);
  ctx.fillStyle = 'rgba(29, 122, 58, 0.14)';
  ctx.fillRect(left, y(180), w - left - right, y(70) - y(180));
  ctx.strokeStyle = 'rgba(29, 122, 58, 0.6)';
  ctx.lineWidth = 1;
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#5b6673';
  for (const v of [54, 70, 180, 250]) {
    ctx.beginPath();
    ctx.setLineDash(v === 70 || v === 180 ? [] : [3, 3]);
    ctx.moveTo(left, Math.round(y(v)) + 0.5);
    ctx.lineTo(w - right, Math.round(y(v)) + 0.5);
    ctx.stroke();
    ctx.fillText(String(v), 4, y(v) + 4);
  }
  ctx.setLineDash([]);
  if (readings.length === 0) return;
  const t0 = readings[0].tDevice;
  const tEnd = Math.max(readings[readings.length - 1].tDevice, forecast ? forecast.tTarget : 0);
  const span = Math.max(1, tEnd - t0);
  const x = (t) => left + ((t - t0) / span) * (w - left - right);
  ctx.strokeStyle = '#0b5fae';
  ctx.lineWidth = 2;
  ctx.beginPath();
  readings.forEach((r, i) => (i === 0 ? ctx.moveTo(x(r.tDevice), y(r.value)) : ctx.lineTo(x(r.tDevice), y(r.value))));
  ctx.stroke();
  ctx.fillStyle = '#0b5fae';
  for (const r of readings.slice(-60)) {
    ctx.beginPath();
    ctx.arc(x(r.tDevice), y(r.value), 2.5, 0, 2 * Math.PI);
    ctx.fill();
  }
  const last = readings[readings.length - 1];
  if (forecast) {
    ctx.strokeStyle = '#a35200';
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    ctx.moveTo(x(last.tDevice), y(last.value));
    ctx.lineTo(x(forecast.tTarget), y(forecast.value));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = '#a35200';
    ctx.beginPath();
    ctx.arc(x(forecast.tTarget), y(forecast.value), 4, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.fillStyle = '#5b6673';
  ctx.fillText(labels.start, left, h - 6);
  const endText = labels.end;
  ctx.fillText(endText, w - right - ctx.measureText(endText).width, h - 6);
}

/**
 * Phonocardiogram: min/max envelope per pixel column of `samples`, S1 and S2 marks (sample indices)
 * and a play cursor (fraction 0..1, or undefined).
 */
export function drawPcg(canvas, samples, marks, cursor) {
  const { ctx, w, h } = fit(canvas);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = '#e4e7eb';
  ctx.beginPath();
  ctx.moveTo(0, h / 2 + 0.5);
  ctx.lineTo(w, h / 2 + 0.5);
  ctx.stroke();
  if (samples.length === 0) return;
  let peak = 1;
  for (const s of samples) peak = Math.max(peak, Math.abs(s));
  const perPx = samples.length / w;
  ctx.strokeStyle = '#16202a';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let px = 0; px < w; px++) {
    let min = Infinity;
    let max = -Infinity;
    const end = Math.min(samples.length, Math.floor((px + 1) * perPx));
    for (let i = Math.floor(px * perPx); i < end; i++) {
      if (samples[i] < min) min = samples[i];
      if (samples[i] > max) max = samples[i];
    }
    if (min === Infinity) continue;
    ctx.moveTo(px + 0.5, h / 2 - (max / peak) * (h / 2 - 14));
    ctx.lineTo(px + 0.5, h / 2 - (min / peak) * (h / 2 - 14) + 1);
  }
  ctx.stroke();
  ctx.font = 'bold 12px system-ui, sans-serif';
  for (const [name, color, list] of [
    ['S1', '#b3001b', marks.s1],
    ['S2', '#0b5fae', marks.s2],
  ]) {
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    for (const index of list) {
      const px = (index / samples.length) * w;
      ctx.beginPath();
      ctx.moveTo(px + 0.5, 12);
      ctx.lineTo(px + 0.5, h);
      ctx.stroke();
      ctx.fillText(name, px + 2, 11);
    }
  }
  if (cursor !== undefined) {
    ctx.strokeStyle = '#f0a500';
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(cursor * w, 0);
    ctx.lineTo(cursor * w, h);
    ctx.stroke();
  }
}
