import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RaisedAlert, Reading } from '../../device-sdk/records.js';
import { EcgMonitor, type EcgMonitorOptions } from '../../firmware/ecg-monitor.js';
import { blankPacePulse, DEFAULT_PACE_PULSE_OPTIONS } from '../../firmware/pace-pulses.js';
import { readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { MITDB, missingNote, sharedDataRuns } from '../helpers/shared-data.js';

// Pacemaker pulses on the ECG lead (IEC 60601-2-27's pulse range: 2-700 mV, 0.1-2 ms): a pacemaker firing
// without capture on a stopped heart, and a paced rhythm that captures. A pulse reaches the samples through the
// front end's low-pass filter (one pole at `fcHz`), sampled at 360 Hz as MIT-BIH is (gain 200 per mV).

const FS = 360;
const GAIN = 200;
const CHUNK = FS / 10;

/** A rectangular pulse of `mv` and `widthMs` through a one-pole low-pass at `fcHz`, `tMs` after its onset (mV). */
function filteredPulse(mv: number, widthMs: number, fcHz: number, tMs: number): number {
  const tau = 1000 / (2 * Math.PI * fcHz);
  if (tMs < 0) return 0;
  if (tMs <= widthMs) return mv * (1 - Math.exp(-tMs / tau));
  return mv * (1 - Math.exp(-widthMs / tau)) * Math.exp(-(tMs - widthMs) / tau);
}

/** Seeded Gaussian noise (mV), one value per call. */
function gaussian(seed: number): () => number {
  let s = seed;
  const rnd = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  return () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
}

interface Pulses {
  mv: number;
  widthMs: number;
  fcHz: number;
  perMin: number;
}

/**
 * `seconds` of lead in ADC units: 0.03 mV of baseline noise, pacing pulses, and (`capture`) a wide paced QRS 10 ms after
 * each; with `atrial`, each ventricular pulse comes `atrial.avMs` after an atrial pulse of `atrial.mv` (dual-chamber pacing).
 */
function pacedLead(seconds: number, pulses: Pulses, capture: boolean, seed = 7, atrial?: { mv: number; avMs: number }): Int16Array {
  const noise = gaussian(seed);
  const periodMs = 60_000 / pulses.perMin;
  const firstMs = 137.3;
  return Int16Array.from({ length: seconds * FS }, (_, i) => {
    const tMs = (i * 1000) / FS;
    let mv = 0.03 * noise();
    const k = Math.floor((tMs - firstMs) / periodMs);
    for (const j of [k, k - 1]) {
      if (j < 0) continue;
      const since = tMs - firstMs - j * periodMs;
      mv += filteredPulse(pulses.mv, pulses.widthMs, pulses.fcHz, since);
      if (atrial) mv += filteredPulse(atrial.mv, pulses.widthMs, pulses.fcHz, since + atrial.avMs);
      // A paced ventricular complex: wide (140 ms), biphasic, 1.2 mV, starting 10 ms after the pulse.
      if (capture && since >= 10 && since < 150) mv += 1.2 * Math.sin((2 * Math.PI * (since - 10)) / 140) * Math.exp(-(since - 10) / 90);
    }
    return Math.max(-32768, Math.min(32767, Math.round(mv * GAIN)));
  });
}

function record101(fromS: number, seconds: number): Int16Array {
  const r = readWfdbRecord(join(MITDB, '101'));
  const baseline = r.header.signals[0]?.baseline ?? 0;
  return Int16Array.from(r.signals[0]!.subarray(fromS * FS, (fromS + seconds) * FS), (v) => v - baseline);
}

function joined(a: Int16Array, b: Int16Array): Int16Array {
  const x = new Int16Array(a.length + b.length);
  x.set(a);
  x.set(b, a.length);
  return x;
}

function stream(lead1: Int16Array, lead2?: Int16Array, options: Partial<EcgMonitorOptions> = {}): { alerts: RaisedAlert[]; rates: Reading[]; monitor: EcgMonitor } {
  const monitor = new EcgMonitor('ecg', options);
  const alerts: RaisedAlert[] = [];
  const rates: Reading[] = [];
  for (let i = 0; i < lead1.length; i += CHUNK) {
    const chunk = { sensor: 'ecg', firstSample: i, t0: (i * 1000) / FS, rateHz: FS, unit: 'mV', gain: GAIN };
    const out = monitor.push({ ...chunk, channel: 0, samples: lead1.slice(i, i + CHUNK) });
    if (lead2) out.alerts.push(...monitor.push({ ...chunk, channel: 1, samples: lead2.slice(i, i + CHUNK) }).alerts);
    alerts.push(...out.alerts);
    rates.push(...out.readings.filter((r) => r.type === 'heart-rate'));
  }
  return { alerts, rates, monitor };
}

const OFF: Partial<EcgMonitorOptions> = { pacePulse: { ...DEFAULT_PACE_PULSE_OPTIONS, minStepMvPerMs: 0 } };

describe('blankPacePulse', () => {
  it('finds a narrow pulse starting with a one-sample step at least minStepMvPerMs steep, and holds the level before it from two samples before the step to blankMs after it', () => {
    // 360 Hz: 2 mV/ms is a step of 5.56 mV from one sample to the next; 20 ms is 7 samples.
    const window = Float64Array.from([0.1, 0.1, 0.12, 9.0, 4.5, 1.2, 0.6, 0.3, 0.2, 0.15, 0.1, 0.4, 0.9, 0.4]);
    const found = blankPacePulse(window, FS, DEFAULT_PACE_PULSE_OPTIONS);
    expect(found).toMatchObject({ step: 3 });
    expect(found?.stepMv).toBeCloseTo(8.88, 6);
    expect(Array.from(found?.blanked ?? [])).toEqual([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4, 0.9, 0.4]);
    // A rise sampled over two samples: the steepest step is the fall, and the blank still takes the whole pulse.
    const late = blankPacePulse(Float64Array.from([0.01, 0.0, 3.1, 9.04, 0.39, 0.01, 0.0, 0.02, 0.01, 0.0, 0.3, 0.8]), FS, DEFAULT_PACE_PULSE_OPTIONS);
    expect(late?.step).toBe(4);
    expect(Array.from(late?.blanked ?? [])).toEqual([0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8]);
    // Not pulses: a QRS upstroke of 0.23 mV/ms (MIT-BIH's steepest), 0.64 mV a sample; a 5 mV R wave over 20 ms
    // at 1000 Hz (0.5 mV/ms); a step of 6 mV that stays (an electrode put back: no narrow excursion); a step past
    // the search range.
    expect(blankPacePulse(Float64Array.from([0, 0.64, 1.28, 1.92, 1.2, 0.4]), FS, DEFAULT_PACE_PULSE_OPTIONS)).toBeUndefined();
    const tallR = Float64Array.from({ length: 60 }, (_, i) => Math.max(0, 5 - Math.abs(i - 30) / 2));
    expect(blankPacePulse(tallR, 1000, DEFAULT_PACE_PULSE_OPTIONS)).toBeUndefined();
    expect(blankPacePulse(Float64Array.from([0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6]), FS, DEFAULT_PACE_PULSE_OPTIONS)).toBeUndefined();
    expect(blankPacePulse(window, FS, DEFAULT_PACE_PULSE_OPTIONS, 5)).toBeUndefined();
    expect(blankPacePulse(window, FS, { ...DEFAULT_PACE_PULSE_OPTIONS, minStepMvPerMs: 0 })).toBeUndefined();
  });
});

describe.skipIf(!sharedDataRuns(MITDB))(`ECG monitor: pacemaker pulses${missingNote(MITDB)}`, () => {
  // Pulse shapes the rejection covers at 360 Hz (a narrow pulse, a one-sample step of 5.6 mV or more, a tail under 0.15 mV 20 ms on).
  const shapes: Pulses[] = [
    { mv: 100, widthMs: 0.5, fcHz: 150, perMin: 100 },
    { mv: 700, widthMs: 0.1, fcHz: 150, perMin: 70 },
    { mv: 700, widthMs: 0.5, fcHz: 150, perMin: 60 },
    { mv: 10, widthMs: 2, fcHz: 1000, perMin: 70 },
    { mv: 100, widthMs: 2, fcHz: 1000, perMin: 70 },
    { mv: 100, widthMs: 0.5, fcHz: 40, perMin: 70 },
  ];

  it('raises ecg-no-beats when the heart stops and the pacemaker fires without capture (before: no alarm in 20 s)', () => {
    const before = record101(60, 30);
    for (const pulses of shapes) {
      const lead = joined(before, pacedLead(20, pulses, false));
      const { alerts, rates, monitor } = stream(lead);
      const noBeats = alerts.filter((a) => a.kind === 'ecg-no-beats');
      // A pulse now and then that is not recognised (its sampling phase) is a sign of a heartbeat and re-arms the alarm, which comes again 4 s later.
      expect(noBeats.length, JSON.stringify(pulses)).toBeGreaterThanOrEqual(1);
      const delayS = ((noBeats[0]?.t ?? 0) - 30_000) / 1000;
      expect(delayS, JSON.stringify(pulses)).toBeLessThan(6);
      expect(noBeats[0]?.message, JSON.stringify(pulses)).toMatch(/^No QRS complex detected for \d+ s on a connected lead, though \d+ sharp spikes \(pacemaker pulses or artefact\) came without a QRS after them; check the patient now/);
      expect(monitor.pacePulsesRejected, JSON.stringify(pulses)).toBeGreaterThanOrEqual(4);
      // No heart rate from the pulses once the heart stopped.
      expect(rates.filter((r) => r.tDevice > 36_000), JSON.stringify(pulses)).toEqual([]);
      // With the rejection off the pulses hold the alarm back (the defect).
      expect(stream(lead, undefined, OFF).alerts.filter((a) => a.kind === 'ecg-no-beats'), JSON.stringify(pulses)).toEqual([]);
    }
  });

  it('counts a paced rhythm that captures: its rate, no ecg-no-beats', () => {
    for (const pulses of shapes) {
      const { alerts, rates, monitor } = stream(pacedLead(40, pulses, true));
      expect(alerts.filter((a) => a.kind === 'ecg-no-beats'), JSON.stringify(pulses)).toEqual([]);
      expect(monitor.pacePulsesRejected, JSON.stringify(pulses)).toBe(0);
      const late = rates.filter((r) => r.tDevice > 15_000);
      expect(late.length, JSON.stringify(pulses)).toBeGreaterThanOrEqual(4);
      for (const r of late) expect(Math.abs(r.value - pulses.perMin), JSON.stringify(pulses)).toBeLessThanOrEqual(3);
    }
  });

  it('counts dual-chamber pacing (atrial pulse, ventricular pulse and its QRS 150 ms later): the detector may lock on the atrial pulse, whose window shows the QRS', () => {
    for (const atrialMv of [20, 40]) {
      const { alerts, rates, monitor } = stream(pacedLead(40, { mv: 20, widthMs: 0.5, fcHz: 150, perMin: 70 }, true, 7, { mv: atrialMv, avMs: 150 }));
      expect(alerts.filter((a) => a.kind === 'ecg-no-beats'), String(atrialMv)).toEqual([]);
      expect(monitor.pacePulsesRejected, String(atrialMv)).toBe(0);
      const late = rates.filter((r) => r.tDevice > 15_000);
      expect(late.length).toBeGreaterThanOrEqual(4);
      for (const r of late) expect(Math.abs(r.value - 70)).toBeLessThanOrEqual(3);
    }
  });

  it('does not let pulses on lead 2 hold ecg-no-beats back while lead 1 shows the stopped heart', () => {
    const pulses = shapes[1] as Pulses;
    const lead1 = joined(record101(60, 30), pacedLead(20, { ...pulses, mv: 0 }, false, 11));
    const lead2 = joined(record101(60, 30).map((v) => Math.round(v / 2)), pacedLead(20, pulses, false, 13));
    const noBeats = stream(lead1, lead2).alerts.filter((a) => a.kind === 'ecg-no-beats');
    expect(noBeats).toHaveLength(1);
    expect(((noBeats[0]?.t ?? 0) - 30_000) / 1000).toBeLessThan(6);
    expect(stream(lead1, lead2, OFF).alerts.filter((a) => a.kind === 'ecg-no-beats')).toEqual([]);
  });
});
