import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RaisedAlert } from '../../device-sdk/records.js';
import { EcgMonitor } from '../../firmware/ecg-monitor.js';
import { readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { gaussian } from '../helpers/ecg-chunks.js';
import { MITDB, missingNote, sharedDataRuns } from '../helpers/shared-data.js';

// EcgMonitor fed as a low-rate front end with a coarse ADC feeds it: MIT-BIH 101 (360 Hz) linearly interpolated
// to 128 or 250 Hz and rounded to 20 ADC units per mV (0.05 mV steps; an Arduino with an AD8232 gives about 30).
// QA's last check: a lead put back on a stopped heart raised ecg-no-beats 15.4 s after it instead of about 4, and
// an arrest while the contact flapped, under 0.5 mV of baseline wander, 16-27 s after it (10-15 s at 360 Hz).
// Rule classifier: the asystole clock does not depend on the beat classes.

const SOURCE_FS = 360;
const GAIN = 20;

/** 101 from 0 s in mV (baseline taken off) at time `t` (s), linearly interpolated. */
const record = (() => {
  let cached: ((t: number) => number) | undefined;
  return () => {
    if (cached) return cached;
    const r = readWfdbRecord(join(MITDB, '101'));
    const x = r.signals[0]!;
    const base = r.header.signals[0]?.baseline ?? 0;
    const gain = r.header.signals[0]?.adcGain || 200;
    cached = (t: number) => {
      const p = t * SOURCE_FS;
      const k = Math.floor(p);
      return ((x[k]! * (1 - (p - k)) + (x[k + 1] ?? x[k]!) * (p - k)) - base) / gain;
    };
    return cached;
  };
})();

/** Streams `x` at `fs` (ADC units, `GAIN` per mV) in 100 ms chunks; `off[i]`: the front end reports the lead off at sample i. */
function stream(x: Int16Array, fs: number, off?: Uint8Array): RaisedAlert[] {
  const monitor = new EcgMonitor('ecg');
  const alerts: RaisedAlert[] = [];
  const size = Math.round(fs / 10);
  for (let i = 0; i < x.length; ) {
    let j = i + 1;
    while (j < x.length && j - i < size && (off?.[j] ?? 0) === (off?.[i] ?? 0)) j++;
    const chunk = { sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / fs, rateHz: fs, unit: 'mV', gain: GAIN, samples: x.slice(i, j) };
    alerts.push(...monitor.push(off?.[i] ? { ...chunk, leadOff: true, saturated: true } : chunk).alerts);
    i = j;
  }
  return alerts;
}

/**
 * 101 for 30 s, the lead off (0 V) for 10 s, then 30 s of a stopped heart: `noiseMv` SD of noise, `wanderMv` of 0.3 Hz
 * wander and `humMv` of 50 Hz hum.
 */
function leadBackOntoStoppedHeart(fs: number, seed: number, noiseMv: number, wanderMv: number, humMv = 0): Int16Array {
  const ecg = record();
  const noise = gaussian(seed);
  return Int16Array.from({ length: 70 * fs }, (_, i) => {
    const t = i / fs;
    if (t < 30) return Math.round(ecg(t) * GAIN);
    if (t < 40) return 0;
    const k = i - 40 * fs;
    return Math.round((noiseMv * noise() + wanderMv * Math.sin((2 * Math.PI * 0.3 * k) / fs) + humMv * Math.sin((2 * Math.PI * 50 * k) / fs)) * GAIN);
  });
}

describe.skipIf(!sharedDataRuns(MITDB))(`EcgMonitor at 128 and 250 Hz with a coarse ADC (20 units per mV)${missingNote(MITDB)}`, () => {
  it('raises ecg-no-beats about 4 s after a lead is put back on a stopped heart (0.03 mV of noise, with or without 0.1 mV of wander)', () => {
    // Before (these seeds): 7.4-23.3 s after the lead-back, or none in 30 s. The detector learning the noise found
    // a detection spanning 4 units against 2 around it ("credible", prominence 2), which dropped the quiet-lead
    // check; detections of 3 units against 2 then held the clock. Over 880 seeded cases (these and more seeds,
    // 0.02-0.05 mV of noise) at 128 Hz 105 late, now 1 (seed 79190 without wander: two noise detections
    // correlating 0.80, as a repeated QRS shape would); at 250 Hz 52, now none.
    for (const [fs, noiseMv, wanderMv, seeds] of [
      [128, 0.03, 0, [55433, 182137, 261327, 308841]],
      [128, 0.03, 0.1, [55433, 79190, 174218, 182137]],
      [250, 0.03, 0, [47514, 55433, 229651, 300922]],
      [250, 0.03, 0.1, [47514, 182137]],
    ] as const) {
      for (const seed of seeds) {
        const label = `${fs} Hz, ${noiseMv} mV noise, ${wanderMv} mV wander, seed ${seed}`;
        const alerts = stream(leadBackOntoStoppedHeart(fs, seed, noiseMv, wanderMv), fs);
        const first = alerts.find((a) => a.kind === 'ecg-no-beats' && a.t >= 40_000);
        expect(first, label).toBeDefined();
        expect((first as RaisedAlert).t - 40_000, label).toBeLessThanOrEqual(4_200);
        expect((first as RaisedAlert).message, label).toMatch(/^No QRS complex detected for 4 s on a connected lead/);
      }
    }
  });

  it('raises ecg-no-beats 4 s after a lead is put back on a stopped heart under 1 mV of 50 Hz hum', () => {
    // Before: 6 s in 40 of 40 seeds (the 4 s of a quiet lead missed): the quiet-lead check had no notch at 128 Hz,
    // where the hum averages leave 6 % of 50 Hz. (Under 0.5 mV of wander it still takes 6 s: the quiet-lead measure
    // takes the wander's slope; taking it off was reverted, README "ECG".)
    for (const [humMv, wanderMv] of [[1, 0]] as const) {
      for (const seed of [7919, 15838]) {
        const label = `${humMv} mV of hum, ${wanderMv} mV of wander, seed ${seed}`;
        const first = stream(leadBackOntoStoppedHeart(128, seed, 0.03, wanderMv, humMv), 128).find((a) => a.kind === 'ecg-no-beats' && a.t >= 40_000);
        expect(first, label).toBeDefined();
        expect((first as RaisedAlert).t - 40_000, label).toBeLessThanOrEqual(4_200);
      }
    }
  });

  it('raises ecg-no-beats 10-12 s after an arrest while the electrode flaps (no baseline wander), as at 360 Hz', () => {
    // 101 with the front end reporting the lead off for OFF s in every EVERY s from 15 s; at 45 s the heart stops
    // (0.03 mV of noise). A guard for the held value over a bridged report, which the deflection no longer measures.
    // Under 0.5 mV of 0.3 Hz wander this still takes 18.5 s or more at 128 Hz (the wander's slope is measured; README).
    for (const fs of [128, 250]) {
      for (const [offS, everyS] of [
        [1.5, 3],
        [2, 5],
        [1.2, 2.5],
        [0.5, 1.5],
      ] as const) {
        const ecg = record();
        const noise = gaussian(5);
        const n = 105 * fs;
        const x = new Int16Array(n);
        const off = new Uint8Array(n);
        for (let i = 0; i < n; i++) {
          const t = i / fs;
          const v = t < 45 ? ecg(t) : 0.03 * noise();
          off[i] = t >= 15 && (t - 15) % everyS < offS ? 1 : 0;
          x[i] = off[i] ? 32767 : Math.round(v * GAIN);
        }
        const label = `${fs} Hz, ${offS} s off every ${everyS} s`;
        const alerts = stream(x, fs, off);
        expect(alerts.filter((a) => a.kind === 'ecg-no-beats' && a.t < 45_000), label).toEqual([]);
        const first = alerts.find((a) => a.kind === 'ecg-no-beats');
        expect(first, label).toBeDefined();
        expect((first as RaisedAlert).t - 45_000, label).toBeLessThanOrEqual(12_200);
        expect((first as RaisedAlert).message, label).toMatch(/electrode contact was lost \d+ times/);
      }
    }
  });
});
