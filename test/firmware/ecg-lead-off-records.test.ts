import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RaisedAlert, Reading, StreamChunk } from '../../device-sdk/records.js';
import { EcgMonitor } from '../../firmware/ecg-monitor.js';
import { readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { MITDB, missingNote, sharedDataRuns } from '../helpers/shared-data.js';

// EcgMonitor with a front end that reports lead-off, on MIT-BIH records. The first two are a QA re-check's
// reproductions, both failing on b5205b6 (every report restarted the lead and its asystole clock; the clock
// 1 s after a lead-back raised a false no-beats on 108). Rule classifier: the asystole clock does not depend
// on the beat classes.

const FS = 360;
const GAIN = 200;
const CHUNK = FS / 10;
const RAIL = 32767;

interface Part {
  x: Int16Array;
  leadOff?: boolean;
}

function stream(parts: Part[]): RaisedAlert[] {
  const monitor = new EcgMonitor('ecg');
  const alerts: RaisedAlert[] = [];
  let i = 0;
  for (const p of parts) {
    for (let k = 0; k < p.x.length; k += CHUNK) {
      const samples = p.x.slice(k, k + CHUNK);
      const c: StreamChunk = { sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / FS, rateHz: FS, unit: 'mV', gain: GAIN, samples };
      if (p.leadOff) Object.assign(c, { leadOff: true, saturated: true });
      alerts.push(...monitor.push(c).alerts);
      i += samples.length;
    }
  }
  return alerts;
}

/** As `stream`, with the heart-rate readings too. */
function streamWithRates(parts: Part[]): { alerts: RaisedAlert[]; rates: Reading[] } {
  const monitor = new EcgMonitor('ecg');
  const alerts: RaisedAlert[] = [];
  const rates: Reading[] = [];
  let i = 0;
  for (const p of parts) {
    for (let k = 0; k < p.x.length; k += CHUNK) {
      const samples = p.x.slice(k, k + CHUNK);
      const out = monitor.push({ sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / FS, rateHz: FS, unit: 'mV', gain: GAIN, samples, ...(p.leadOff ? { leadOff: true, saturated: true } : {}) });
      alerts.push(...out.alerts);
      rates.push(...out.readings.filter((r) => r.type === 'heart-rate'));
      i += samples.length;
    }
  }
  return { alerts, rates };
}

function ecg(record: string, fromS: number, seconds: number): Part {
  const r = readWfdbRecord(join(MITDB, record));
  const base = r.header.signals[0]?.baseline ?? 0;
  return { x: Int16Array.from(r.signals[0]!.subarray(fromS * FS, (fromS + seconds) * FS), (v) => v - base) };
}

/** The front end reports the electrodes off: samples at the positive rail with the lead-off bit. */
const off = (seconds: number): Part => ({ x: new Int16Array(Math.round(seconds * FS)).fill(RAIL), leadOff: true });

/**
 * A front end's flapping contact on `record`: reported off for `offS` at the start of every `everyS` s from
 * `fromS` until `toS`, the record between. Returns the parts and the times (ms) the reports begin.
 */
function flapping(record: string, fromS: number, toS: number, offS: number, everyS: number): { parts: Part[]; offsAt: number[] } {
  const parts: Part[] = [];
  const offsAt: number[] = [];
  for (let t = fromS; t < toS - 1e-9; t += everyS) {
    offsAt.push(t * 1000);
    parts.push(off(offS), ecg(record, t + offS, everyS - offS));
  }
  return { parts, offsAt };
}

/** No heartbeat on a connected lead: 0.03 mV of seeded Gaussian baseline noise. */
function noHeartbeat(seconds: number, seed = 3): Part {
  let s = seed;
  const u = () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  return { x: Int16Array.from({ length: Math.round(seconds * FS) }, () => Math.round(Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()) * 0.03 * GAIN)) };
}

/** `part` with a sine of `hz` and `mv` amplitude added (mains hum, or baseline wander), its phase that of a sine from 0 s at `fromS`. */
function withSine(part: Part, hz: number, mv: number, fromS: number): Part {
  return { ...part, x: Int16Array.from(part.x, (v, i) => v + Math.round(mv * GAIN * Math.sin(2 * Math.PI * hz * (fromS + i / FS)))) };
}

describe.skipIf(!sharedDataRuns(MITDB))(`QA: EcgMonitor with front-end lead-off reports${missingNote(MITDB)}`, () => {
  it('asystole with an intermittent electrode (0.1 s reported off every 4 s) still raises ecg-no-beats', () => {
    // 101 for 30 s, then no heartbeat for 60 s while one electrode loses contact for one frame every 4 s.
    const parts: Part[] = [ecg('101', 0, 30)];
    for (let t = 0; t < 60; t += 4) parts.push(off(0.1), noHeartbeat(3.9, t + 1));
    const alerts = stream(parts);
    // Today: 15 ecg-lead-off (2) and no severity 3 at all in 60 s of asystole (each lead-back restarts the
    // 5 s clock). Without the front end's flag (flat 0.2 s instead) ecg-no-beats comes at 34 s.
    const urgent = alerts.filter((a) => a.severity === 3);
    expect(urgent.map((a) => `${a.kind}@${a.t}`)).not.toEqual([]);
    expect(urgent[0]!.t).toBeLessThanOrEqual(40_000);
  });

  it('a contact loss shorter than 1 s is bridged: no lead-off alert, no restart, and the heart rate goes on', () => {
    const monitor = new EcgMonitor('ecg');
    const alerts: RaisedAlert[] = [];
    const rates: number[] = [];
    let i = 0;
    for (const p of [ecg('101', 0, 20), off(0.5), ecg('101', 20.5, 20)]) {
      for (let k = 0; k < p.x.length; k += CHUNK) {
        const samples = p.x.slice(k, k + CHUNK);
        const c: StreamChunk = { sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / FS, rateHz: FS, unit: 'mV', gain: GAIN, samples, ...(p.leadOff ? { leadOff: true, saturated: true } : {}) };
        const out = monitor.push(c);
        alerts.push(...out.alerts);
        rates.push(...out.readings.filter((r) => r.type === 'heart-rate' && r.tDevice >= 20_000 && r.tDevice <= 30_000).map((r) => r.value));
        i += samples.length;
      }
    }
    expect(alerts).toEqual([]);
    expect(monitor['generation']).toBe(1);
    // 101's rate is about 70 /min; readings come every 5 s and go on across the bridged half second.
    expect(rates.length).toBe(3);
    for (const r of rates) expect(Math.abs(r - 70)).toBeLessThanOrEqual(10);
  });

  it('asystole with contact lost for 1.5 s every 4 s: lead-off warnings, then ecg-no-beats (severity 3) naming the contact losses', () => {
    const parts: Part[] = [ecg('101', 0, 30)];
    for (let t = 0; t < 40; t += 4) parts.push(off(1.5), noHeartbeat(2.5, t + 1));
    const alerts = stream(parts);
    const urgent = alerts.filter((a) => a.severity === 3);
    expect(urgent.map((a) => a.kind)).toEqual(['ecg-no-beats']);
    // The last beat of 101 is just before 30 s; the fourth contact loss (42.5 s) is the first 10 s after it.
    expect(urgent[0]!.t).toBeGreaterThan(40_000);
    expect(urgent[0]!.t).toBeLessThanOrEqual(43_000);
    expect(urgent[0]!.message).toMatch(/^No QRS complex detected for 1[0-4] s, and the electrode contact was lost [34] times meanwhile; between the losses the lead showed nothing as large as a QRS complex \(largest deflection 0\.\d\d mV\): check the patient and the electrodes now/);
    // One warning for the flapping electrode (QA: one per flap before, 10 a minute); the urgent alarm is not held back.
    expect(alerts.filter((a) => a.kind === 'ecg-lead-off').length).toBe(1);
  });

  it('a living patient whose electrode flaps for 40 s gets the contact warning (severity 2, about the electrodes), not ecg-no-beats', () => {
    // QA: 101 between the flaps; contact lost too often for the detector to learn raised "No QRS complex
    // detected for 10 s" (severity 3) on each of these front-end sequences (0.9 s off every 2 s does not: every
    // other loss is bridged, and the detector learns the lead in between).
    for (const [offS, everyS] of [
      [1.5, 3],
      [1.2, 2.5],
      [1, 3],
      [2, 4],
      [3, 5],
    ] as const) {
      const alerts = stream([ecg('101', 0, 15), ...flapping('101', 15, 55, offS, everyS).parts]);
      const label = `${offS} s off every ${everyS} s`;
      expect(alerts.filter((a) => a.severity === 3).map((a) => a.message), label).toEqual([]);
      const contact = alerts.filter((a) => a.kind === 'ecg-intermittent-contact');
      // Once per stretch without a believed heartbeat (1 s off every 3 s: one came in between, so twice).
      expect(contact.length, label).toBeGreaterThanOrEqual(1);
      expect(new Set(contact.map((a) => a.severity)), label).toEqual(new Set([2]));
      expect(contact[0]!.t, label).toBeLessThanOrEqual(32_100);
      expect(contact[0]!.message, label).toMatch(/^ECG electrode contact lost \d+ times in 1\d s, too often for heart rate and rhythm analysis: .*Reattach or replace the electrodes\. This is a contact alarm/);
      expect(contact[0]!.message, label).not.toMatch(/QRS|heartbeat|beats/);
    }
  });

  it('a heart that stops while the electrode flaps: the contact warning, then ecg-no-beats (severity 3) once the lead is quiet between the losses', () => {
    // 101 with 1.5 s off every 3 s from 15 s; at 45 s no heartbeat (0.03 mV of baseline noise) between the same flaps.
    const parts: Part[] = [ecg('101', 0, 15)];
    for (let t = 15; t < 45 - 1e-9; t += 3) parts.push(off(1.5), ecg('101', t + 1.5, 1.5));
    for (let t = 45; t < 75 - 1e-9; t += 3) parts.push(off(1.5), noHeartbeat(1.5, t));
    const alerts = stream(parts).filter((a) => a.kind !== 'ecg-lead-off');
    expect(alerts.map((a) => [a.kind, a.severity])).toEqual([
      ['ecg-intermittent-contact', 2],
      ['ecg-no-beats', 3],
    ]);
    // Quiet between the losses for 10 s: the loss at 54 s, raised 1 s into it (55 s), when it is no longer
    // bridged (before, the value held while it was bridged measured as a deflection: 58 s).
    expect(alerts[1]!.t).toBeGreaterThanOrEqual(55_000);
    expect(alerts[1]!.t).toBeLessThanOrEqual(58_100);
  });

  it('a heart that stops under mains hum or baseline wander while the electrode flaps still raises ecg-no-beats (severity 3)', () => {
    // QA: as above with 50 Hz hum of 0.1 or 0.2 mV, 60 Hz hum of 0.3 mV or 0.5 mV of 0.3 Hz wander on the
    // stopped heart: only the contact warning (2) at 25 s, no urgent alarm in 30 s of arrest. The hum measured
    // as a QRS-sized deflection, and so did the step from the hum to the value held while a report was bridged.
    for (const [hz, mv] of [
      [50, 0.1],
      [50, 0.2],
      [60, 0.3],
      [0.3, 0.5],
    ] as const) {
      const parts: Part[] = [ecg('101', 0, 15)];
      for (let t = 15; t < 45 - 1e-9; t += 3) parts.push(off(1.5), ecg('101', t + 1.5, 1.5));
      for (let t = 45; t < 75 - 1e-9; t += 3) parts.push(off(1.5), withSine(noHeartbeat(1.5, t), hz, mv, t + 1.5));
      const label = `${hz} Hz of ${mv} mV`;
      const alerts = stream(parts).filter((a) => a.kind !== 'ecg-lead-off');
      expect(alerts.map((a) => [a.kind, a.severity]), label).toEqual([
        ['ecg-intermittent-contact', 2],
        ['ecg-no-beats', 3],
      ]);
      expect(alerts[1]!.t, label).toBeGreaterThanOrEqual(55_000);
      expect(alerts[1]!.t, label).toBeLessThanOrEqual(58_100);
    }
  });

  it('a lead put back on a stopped heart under 50 or 60 Hz hum raises ecg-no-beats 4 s after the lead-back', () => {
    // QA: hum of 0.1 mV or more made the lead never quiet: 6 s after the lead-back instead of 4.
    for (const [hz, mv] of [
      [50, 0.1],
      [50, 0.3],
      [60, 0.2],
    ] as const) {
      const alerts = stream([ecg('101', 0, 30), off(10), withSine(noHeartbeat(20), hz, mv, 40)]);
      const urgent = alerts.filter((a) => a.severity === 3);
      expect(urgent.map((a) => `${a.kind}@${a.t}`), `${hz} Hz of ${mv} mV`).toEqual(['ecg-no-beats@44000']);
    }
  });

  it('a stream that starts with a short lead-off report is not bridged from the rail: lead-off at once, then the heart rate', () => {
    // QA: 0.1 s at the rail flagged off, then 101 for 60 s, gave no heart rate and no alert at all for 600 s.
    const { alerts, rates } = streamWithRates([off(0.1), ecg('101', 0.1, 60)]);
    expect(alerts.map((a) => [a.kind, a.severity])).toEqual([['ecg-lead-off', 2]]);
    expect(rates.length).toBeGreaterThanOrEqual(8);
    for (const r of rates) expect(Math.abs(r.value - 70)).toBeLessThanOrEqual(10);
  });

  it('a stream that opens at the rail without a lead-off report (saturated, or no flag) takes its level from the first signal: heart rate, then the asystole alarm', () => {
    // QA: 0.1 s at the rail, then 101: no heart rate, no finding and no alarm for 1500 s, an asystole included.
    for (const flags of [{ saturated: true }, {}]) {
      const monitor = new EcgMonitor('ecg');
      const alerts: RaisedAlert[] = [];
      const rates: Reading[] = [];
      let i = 0;
      const rail: Part = { x: new Int16Array(Math.round(0.1 * FS)).fill(RAIL) };
      for (const [p, f] of [[rail, flags], [ecg('101', 0.1, 60), {}], [noHeartbeat(10), {}]] as [Part, object][]) {
        for (let k = 0; k < p.x.length; k += CHUNK) {
          const samples = p.x.slice(k, k + CHUNK);
          const out = monitor.push({ sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / FS, rateHz: FS, unit: 'mV', gain: GAIN, samples, ...f });
          alerts.push(...out.alerts);
          rates.push(...out.readings.filter((r) => r.type === 'heart-rate'));
          i += samples.length;
        }
      }
      expect(rates.length).toBeGreaterThanOrEqual(8);
      for (const r of rates) expect(Math.abs(r.value - 70)).toBeLessThanOrEqual(10);
      expect(alerts.map((a) => [a.kind, a.severity])).toEqual([['ecg-no-beats', 3]]);
    }
  });

  it('a new stream after a gap that opens 0.5 s at the rail: no false no-beats, the heart rate comes back', () => {
    // QA: 101, 20 s without data, 0.5 s at the rail, 101 again: a false ecg-no-beats 6 s after, then no heart
    // rate for 600 s (the first ECG chunk of 0.1 s was flatter than 0.05 mV and left the rail as the level).
    const monitor = new EcgMonitor('ecg');
    const alerts: RaisedAlert[] = [];
    const rates: Reading[] = [];
    let i = 0;
    const rail: Part = { x: new Int16Array(Math.round(0.5 * FS)).fill(RAIL) };
    for (const [p, jump] of [[ecg('101', 0, 30), 0], [rail, 20 * FS], [ecg('101', 52, 60), 0]] as [Part, number][]) {
      i += jump;
      for (let k = 0; k < p.x.length; k += CHUNK) {
        const out = monitor.push({ sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / FS, rateHz: FS, unit: 'mV', gain: GAIN, samples: p.x.slice(k, k + CHUNK) });
        alerts.push(...out.alerts);
        rates.push(...out.readings.filter((r) => r.type === 'heart-rate' && r.tDevice > 52_000));
        i += Math.min(CHUNK, p.x.length - k);
      }
    }
    expect(alerts).toEqual([]);
    expect(rates.length).toBeGreaterThanOrEqual(10);
  });

  it('contact lost 0.9 s in every 2 s is a lead-off, not bridged: no halved heart rate', () => {
    // QA: bridged with a held value, these flaps hid the beats in them: rates of 34-39 /min on 101 (about 70).
    const parts: Part[] = [ecg('101', 0, 15)];
    for (let t = 15; t < 55; t += 2) parts.push(off(0.9), ecg('101', t + 0.9, 1.1));
    const { alerts, rates } = streamWithRates(parts);
    expect(rates.filter((r) => r.value < 50)).toEqual([]);
    // 20 flaps in 40 s: one lead-off warning (there were 20, each sounding the bedside alarm).
    expect(alerts.filter((a) => a.kind === 'ecg-lead-off').length).toBe(1);
  });

  it('a lead flapping for 130 s gets one lead-off warning a minute, giving the count; episodes 20 s apart are each warned', () => {
    const parts: Part[] = [ecg('101', 0, 15)];
    for (let t = 15; t < 145; t += 2) parts.push(off(0.9), ecg('101', t + 0.9, 1.1));
    parts.push(ecg('101', 145, 30), off(2), ecg('101', 177, 20), off(2), ecg('101', 199, 10));
    const leadOff = stream(parts).filter((a) => a.kind === 'ecg-lead-off');
    expect(leadOff.map((a) => Math.round(a.t / 1000))).toEqual([17, 77, 137, 176, 198]);
    // 30 flaps reported after the warning at 17 s (19 ... 77 s): every other one was bridged, and the count
    // left those out (QA: "15 times").
    expect(leadOff[1]?.message).toMatch(/ The lead came off 30 times in the last 60 s: an electrode is loose or its cable is pulled\.$/);
    // The warning after the flapping counts the flaps it did not warn of (139, 141, 143 s) and its own; the
    // next, 22 s later, stands alone.
    expect(leadOff[3]?.message).toMatch(/ The lead came off 4 times in the last 39 s/);
    expect(leadOff[4]?.message).not.toMatch(/The lead came off/);
  });

  it('a flapping lead\'s warning counts every lead-off the front end reported since the last warning, bridged ones (under 1 s) included', () => {
    // Front-end sequences: OFF s reported off every EVERY s on 101 for 130 s after 15 s of contact.
    for (const [offS, everyS] of [
      [0.4, 1],
      [0.9, 2],
      [0.2, 1.5],
      [0.5, 2.5],
      [1.2, 3],
    ] as const) {
      const { parts, offsAt } = flapping('101', 15, 145, offS, everyS);
      const leadOff = stream([ecg('101', 0, 15), ...parts]).filter((a) => a.kind === 'ecg-lead-off');
      const counted = leadOff.slice(1).map((a, k) => {
        const m = / The lead came off (\d+) times in the last (\d+) s/.exec(a.message);
        const since = leadOff[k]!.t;
        return { said: m ? Number(m[1]) : 1, seconds: m ? Number(m[2]) : undefined, reported: offsAt.filter((t) => t > since && t <= a.t).length, lasted: Math.round((a.t - since) / 1000) };
      });
      // One warning a minute while it flaps, each saying how often the front end reported the lead off.
      expect(counted.length, `${offS} s off every ${everyS} s`).toBe(2);
      for (const c of counted) expect({ said: c.said, seconds: c.seconds }, `${offS} s off every ${everyS} s`).toEqual({ said: c.reported, seconds: c.lasted });
    }
  });

  it('MIT-BIH 108: a lead-back at 1652 s onto a regular rhythm raises no ecg-no-beats', () => {
    // 108 from 1635 s, the lead reported off 1650-1652 s, back on 108 for 12 s. Reference beats after the
    // lead-back at 1652.97, 1653.93, 1654.83, 1655.78, 1656.81 s. Today: ecg-no-beats (3) at 1657.0 s,
    // "for 5 s" (with the clock 2 s after the lead-back, as before 2568bf9: none).
    const alerts = stream([ecg('108', 1635, 15), off(2), ecg('108', 1652, 12)]);
    expect(alerts.filter((a) => a.kind === 'ecg-no-beats').map((a) => `${(a.t / 1000 + 1635).toFixed(1)} s: ${a.message}`)).toEqual([]);
  });
});
