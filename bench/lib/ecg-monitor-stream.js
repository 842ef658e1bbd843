// Streams a signal through the ECG monitor as the runtime does (100 ms chunks), and the signals the ECG
// monitor benches build their cases from.

import { join } from 'node:path';
import { EcgMonitor } from '../../dist/firmware/ecg-monitor.js';
import { readWfdbRecord } from '../../dist/simulator/sources/wfdb-files.js';

export const FS = 360;
export const GAIN = 200;

export const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** @param {number[]} xs @param {number} q */
export const quantile = (xs, q) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/**
 * `x` (MIT-BIH units, `GAIN` per mV, at `FS`) as a front end sampling at `fs` with `gain` ADC units per mV
 * gives it: linearly interpolated, then rounded to whole ADC units (`x` itself when the format is MIT-BIH's).
 * @param {Int16Array} x @param {{ fs: number, gain: number }} format
 */
export function inFormat(x, { fs, gain }) {
  if (fs === FS && gain === GAIN) return x;
  return Int16Array.from({ length: Math.floor((x.length * fs) / FS) }, (_, i) => {
    const p = (i * FS) / fs;
    const k = Math.floor(p);
    const v = (x[k] ?? 0) * (1 - (p - k)) + (x[k + 1] ?? x[k] ?? 0) * (p - k);
    return Math.round((v * gain) / GAIN);
  });
}

/**
 * Streams `x` (MIT-BIH units, `GAIN` per mV, at `FS`) through a new monitor with the rule classifier, with
 * `second` as lead 2 (channel 1) when given (same length and units); with `format` the monitor gets both as a
 * front end at `format.fs` with `format.gain` ADC units per mV would give them (`inFormat`), in 100 ms chunks.
 * Returns the alerts, readings and findings, the detections (report time, R peak time, credible,
 * evidence) and the times at which the monitor acquired.
 * @param {Int16Array} x @param {Int16Array} [second] @param {object} [options] EcgMonitor options
 * @param {{ fs: number, gain: number }} [format]
 */
export function streamThroughMonitor(x, second, options = {}, format = { fs: FS, gain: GAIN }) {
  const fs = format.fs;
  const gain = format.gain;
  x = inFormat(x, format);
  if (second) second = inFormat(second, format);
  const chunkSize = Math.round(fs / 10);
  const monitor = new EcgMonitor('ecg', options);
  const detections = [];
  const acquiredAt = [];
  let endMs = 0;
  // The monitor does not publish its detections: the bench looks at what each one was judged.
  const onDetected = monitor.onDetected;
  monitor.onDetected = function (d) {
    const credibility = this.credibility;
    const credible = credibility.credible(d);
    const evidence = credible || credibility.credible(d, credibility.options.minEvidenceProminence);
    detections.push({ reportMs: endMs, rMs: this.timeOf(this.firstSample + d), credible, evidence });
    onDetected.call(this, d);
  };
  const alerts = [];
  const readings = [];
  const findings = [];
  let acquired = false;
  for (let i = 0; i < x.length; i += chunkSize) {
    endMs = ((i + Math.min(chunkSize, x.length - i)) * 1000) / fs;
    const o = monitor.push({ sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / fs, rateHz: fs, unit: 'mV', gain, samples: x.slice(i, i + chunkSize) });
    if (second) o.alerts.push(...monitor.push({ sensor: 'ecg', channel: 1, firstSample: i, t0: (i * 1000) / fs, rateHz: fs, unit: 'mV', gain, samples: second.slice(i, i + chunkSize) }).alerts);
    alerts.push(...o.alerts);
    readings.push(...o.readings);
    findings.push(...o.findings);
    if (monitor.acquired && !acquired) acquiredAt.push(endMs);
    acquired = monitor.acquired;
  }
  return { alerts, readings, findings, detections, acquiredAt };
}

/**
 * The MIT-BIH noise stress test's muscle artefact `ma` (`channel`, default 0, in `dir`) in mV, and its RMS.
 * @param {string} dir @param {number} [channel]
 */
export function muscleNoiseMv(dir, channel = 0) {
  const ma = readWfdbRecord(join(dir, 'ma'));
  const mv = Float64Array.from(ma.signals[channel], (v) => (v - (ma.header.signals[channel]?.baseline ?? 0)) / (ma.header.signals[channel]?.gain || GAIN));
  return { mv, rms: Math.sqrt(mv.reduce((s, v) => s + v * v, 0) / mv.length) };
}

/**
 * `seconds` of MIT-BIH record `name` (in `dir`, signal `channel`, default the first) from `fromS`, its baseline taken off.
 * @param {string} dir @param {string} name @param {number} [channel]
 */
export function recordSlicer(dir, name, channel = 0) {
  const record = readWfdbRecord(join(dir, name));
  const baseline = record.header.signals[channel]?.baseline ?? 0;
  return (fromS, seconds) => Int16Array.from(record.signals[channel].subarray(fromS * FS, (fromS + seconds) * FS), (v) => v - baseline);
}
