import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RaisedAlert } from '../../device-sdk/records.js';
import { EcgMonitor } from '../../firmware/ecg-monitor.js';
import { readWfdbAnnotations, readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { isQrsCode } from '../../device-sdk/protocols/wfdb.js';
import { MITDB, missingNote, sharedDataRuns } from '../helpers/shared-data.js';

// Lead-backs under mains hum on a living low-voltage patient: MIT-BIH lead 1 scaled down, resampled to 250 Hz
// (200 ADC units per mV), 0.3 mV of 60 Hz hum and 0.01 mV of noise added, the electrode reported off 3 s in
// every 20 s. On 193a37a the credibility check measured each QRS against the hum's 0.6 mV span (prominence
// 1.1-1.5), so no QRS after a lead-back counted and urgent ecg-no-beats came on a beating heart.

const FS = 250;
const GAIN = 200;

function seeded(seed: number): () => number {
  let s = seed;
  const u = () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** Record lead 1 in mV at time `t` (s), linear between its 360 Hz samples; and its beat times (s). */
function record(name: string): { mv: (t: number) => number; beats: number[] } {
  const r = readWfdbRecord(join(MITDB, name));
  const sp = r.header.signals[0]!;
  const x = r.signals[0]!;
  const g = sp.adcGain || 200;
  const mv = (t: number) => {
    const p = t * 360;
    const k = Math.min(Math.floor(p), x.length - 2);
    return ((x[k]! - sp.baseline) * (1 - (p - k)) + (x[k + 1]! - sp.baseline) * (p - k)) / g;
  };
  const beats = readWfdbAnnotations(join(MITDB, name)).annotations.filter((a) => isQrsCode(a.code)).map((a) => a.sample / 360);
  return { mv, beats };
}

/** Streams `sig` (mV at t s) for `seconds` at `fs`, the front end reporting the lead off where `off(t)`. */
function stream(sig: (t: number) => number, seconds: number, off: (t: number) => boolean, fs = FS): RaisedAlert[] {
  const monitor = new EcgMonitor('ecg');
  const alerts: RaisedAlert[] = [];
  const n = seconds * fs;
  const size = Math.round(fs / 10);
  for (let i = 0; i < n; ) {
    const isOff = off(i / fs);
    let j = i + 1;
    while (j < n && j - i < size && off(j / fs) === isOff) j++;
    const samples = Int16Array.from({ length: j - i }, (_, k) => (isOff ? 32767 : Math.round(sig((i + k) / fs) * GAIN)));
    const chunk = { sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / fs, rateHz: fs, unit: 'mV' as const, gain: GAIN, samples };
    alerts.push(...monitor.push(isOff ? { ...chunk, leadOff: true, saturated: true } : chunk).alerts);
    i = j;
  }
  return alerts;
}

const leadBacks = (t: number) => t >= 5 && (t - 5) % 20 < 3;
const hum = (t: number) => 0.3 * Math.sin(2 * Math.PI * 60 * t);

describe.skipIf(!sharedDataRuns(MITDB))(`EcgMonitor: lead-backs under 0.3 mV of mains hum${missingNote(MITDB)}`, () => {
  it.each([
    ['205', 0.3],
    ['114', 0.5],
  ])('MIT-BIH %s x%s, beating throughout, 10 lead-backs in 200 s: no ecg-no-beats', (name, scale) => {
    const { mv, beats } = record(name);
    const noise = seeded(12345);
    const alerts = stream((t) => scale * mv(t) + hum(t) + 0.01 * noise(), 200, leadBacks);
    expect(beats.filter((b) => b < 200).length).toBeGreaterThan(150);
    // 193a37a: 205 x0.3 eight alarms, 114 x0.5 ten (one after each lead-back).
    expect(alerts.filter((a) => a.kind === 'ecg-no-beats').map((a) => a.t)).toEqual([]);
  });

  it('the heart stopped, the lead put back on under the same hum: ecg-no-beats 4 s after the lead-back', () => {
    const { mv } = record('101');
    const noise = seeded(7);
    const alerts = stream((t) => (t < 30 ? mv(t) : 0.03 * noise()) + hum(t), 50, (t) => t >= 30 && t < 40);
    const urgent = alerts.filter((a) => a.kind === 'ecg-no-beats');
    expect(urgent.length).toBe(1);
    expect(urgent[0]!.t).toBeGreaterThanOrEqual(44_000);
    expect(urgent[0]!.t).toBeLessThanOrEqual(44_100);
  });

  it('the heart stops while the lead stays on under the same hum: ecg-no-beats 4-4.1 s after the last beat', () => {
    const { mv, beats } = record('101');
    // Cut 0.48 s after a beat of 101, its level held under the noise.
    const cut = 29.9;
    const last = Math.max(...beats.filter((b) => b < cut));
    const noise = seeded(11);
    const alerts = stream((t) => (t < cut ? mv(t) : mv(cut) + 0.03 * noise()) + hum(t), 45, () => false);
    const urgent = alerts.filter((a) => a.kind === 'ecg-no-beats');
    expect(urgent.length).toBe(1);
    expect(urgent[0]!.t / 1000 - last).toBeGreaterThanOrEqual(4);
    expect(urgent[0]!.t / 1000 - last).toBeLessThanOrEqual(4.1);
  });
});

// Mains is not exactly 50 or 60 Hz: it drifts by up to 0.2 Hz. The hum fit (QrsCredibility.fitHum) places its sinusoids
// at the nominal frequencies, and 0.2 Hz off it leaves about half of the hum's span over a 2.3 s stretch
// (bench/ecg-hum-lead-back.js: living lead-backs at 128 Hz under 0.3 mV of 59.8/60.2 Hz got 19/21 false ecg-no-beats
// against 8 at 60 Hz); a stopped heart is alarmed as at the nominal frequency.
describe.skipIf(!sharedDataRuns(MITDB))(`EcgMonitor: a stopped heart under mains hum 0.2 Hz off 50 or 60 Hz${missingNote(MITDB)}`, () => {
  it.each([
    [128, 60.2],
    [128, 49.8],
    [250, 59.8],
  ])('at %s Hz under 0.3 mV of %s Hz: ecg-no-beats 4-4.1 s after a lead-back onto it, and after the last beat while locked on', (fs, hz) => {
    const { mv, beats } = record('101');
    const drifted = (t: number) => 0.3 * Math.sin(2 * Math.PI * hz * t + 1);
    const noise = seeded(3);
    const afterLeadBack = stream((t) => (t < 30 ? mv(t) : 0.03 * noise()) + drifted(t), 50, (t) => t >= 30 && t < 40, fs).filter((a) => a.kind === 'ecg-no-beats');
    // At 128 Hz chunks of 13 samples end every 101.6 ms, and the monitor's R peak is a few ms off the reference's.
    expect(afterLeadBack.map((a) => a.t / 1000 - 40).every((d) => d >= 3.95 && d <= 4.1)).toBe(true);
    expect(afterLeadBack.length).toBe(1);
    const cut = 29.9;
    const last = Math.max(...beats.filter((b) => b < cut));
    const lockedOn = stream((t) => (t < cut ? mv(t) : mv(cut) + 0.03 * noise()) + drifted(t), 45, () => false, fs).filter((a) => a.kind === 'ecg-no-beats');
    expect(lockedOn.length).toBe(1);
    expect(lockedOn[0]!.t / 1000 - last).toBeGreaterThanOrEqual(3.95);
    expect(lockedOn[0]!.t / 1000 - last).toBeLessThanOrEqual(4.1);
  });
});
