import { describe, expect, it } from 'vitest';
import type { Alert, Finding, Reading } from '../../device-sdk/records.js';
import { createAnalyzers } from '../../firmware/analyzers.js';
import { GLUCOSE_FALLBACK_MODEL_ID, GLUCOSE_TREND_MODEL_ID, GlucoseMonitor, loadGlucoseForecaster } from '../../firmware/glucose-monitor.js';
import { parseRuntimeConfig } from '../../firmware/config.js';

const T0 = Date.UTC(2025, 0, 1);
const MIN = 60_000;
const forecaster = loadGlucoseForecaster();

function reading(value: number, minute: number, record = minute): Reading {
  const t = T0 + minute * MIN;
  return { sensor: 'cgm', type: 'glucose', value, unit: 'mg/dL', tDevice: t + 300, tMeter: t, meterRecord: record };
}

/** Feeds values every 5 minutes; returns everything the monitor said per reading. */
function feed(monitor: GlucoseMonitor, values: number[], startMinute = 0): { findings: Finding[]; alerts: Alert[] }[] {
  return values.map((v, i) => monitor.push(reading(v, startMinute + i * 5)));
}

const falling = [...Array.from({ length: 8 }, () => 150), ...Array.from({ length: 14 }, (_, k) => 150 - 7.5 * (k + 1))]; // -1.5 mg/dL/min from minute 35

describe('glucose monitor', () => {
  it('labels the trend in the five screen bands, with the CGM arrow and provenance', () => {
    const m = new GlucoseMonitor('cgm', forecaster);
    const out = feed(m, [100, 112.5, 125, 137.5, 137.5, 137.5, 137.5, 130, 122.5, 115]);
    const trends = out.map((o) => o.findings.filter((f) => f.kind === 'glucose-trend').map((f) => f.label).join() || '-');
    expect(trends).toEqual(['-', 'rising-fast', 'rising-fast', 'rising-fast', 'rising', 'stable', 'stable', 'stable', 'falling', 'falling']);
    const f = out[2]!.findings.find((x) => x.kind === 'glucose-trend')!;
    expect(f).toMatchObject({ value: 2.5, modelId: GLUCOSE_TREND_MODEL_ID, inputQuality: 1, probability: 1 });
    expect(f.evidence).toMatch(/least squares over 3 readings.*↑ \(rising\)/);
    expect(f.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    // Readings 30 min apart: a two-point rate with half the input quality.
    const sparse = new GlucoseMonitor('meter');
    sparse.push(reading(100, 0));
    expect(sparse.push(reading(130, 30)).findings.find((x) => x.kind === 'glucose-trend')).toMatchObject({ label: 'stable', value: 1, inputQuality: 0.5, qualityFlags: ['readings-far-apart'] });
    // Readings hours apart give no trend (a slope over 4 h says nothing about where glucose is heading).
    const fingersticks = new GlucoseMonitor('meter');
    fingersticks.push(reading(100, 0));
    expect(fingersticks.push(reading(140, 240)).findings.filter((x) => x.kind === 'glucose-trend')).toEqual([]);
    // Duplicates and out-of-order readings say nothing.
    expect(sparse.push(reading(130, 30)).findings).toEqual([]);
    expect(sparse.push(reading(90, 10, 5)).findings).toEqual([]);
    // A newer record (higher number) dated earlier is a meter clock set back: it is live, and what the fast
    // clock dated after it leaves the trace.
    expect(sparse.push(reading(95, 20, 99)).findings.find((x) => x.kind === 'glucose-trend')).toBeDefined();
    // A new CGM sensor restarts its record numbers: the same number in another session is a new reading.
    const cgm = new GlucoseMonitor('cgm');
    const session = (value: number, minute: number, sessionStart: string): Reading => ({ ...reading(value, minute, 7), context: { source: 'cgm', sessionStart } });
    cgm.push(session(100, 0, '2026-01-05T08:00:00Z'));
    expect(cgm.push(session(100, 5, '2026-01-05T08:00:00Z')).findings).toEqual([]);
    expect(cgm.push(session(110, 10, '2026-01-05T08:10:00Z')).findings.find((x) => x.kind === 'glucose-trend')).toBeDefined();
  });

  it('forecasts 30 minutes ahead once 30 minutes of history exist, with the model id and hash', () => {
    const m = new GlucoseMonitor('cgm', forecaster);
    const out = feed(m, Array.from({ length: 8 }, () => 120));
    const forecasts = out.map((o) => o.findings.filter((f) => f.kind === 'glucose-forecast'));
    expect(forecasts.slice(0, 6).every((f) => f.length === 0)).toBe(true); // 0..25 min of history
    const f = forecasts[6]![0]!;
    expect(f).toMatchObject({ label: 'forecast-in-range', modelId: 'glucose-forecast@1.1.0', modelSha256: forecaster.sha256, intervalEnd: f.t + 30 * MIN });
    expect(f.value).toBeGreaterThan(100);
    expect(f.value).toBeLessThan(140);
    expect(f.probability).toBeGreaterThanOrEqual(0);
    expect(f.probability).toBeLessThanOrEqual(1);
  });

  it('raises one predicted-low alert (severity 2) ahead of a fast fall, none once below 70, and re-arms after 30 min', () => {
    const m = new GlucoseMonitor('cgm', forecaster);
    const out = feed(m, [...falling, 62, 60, 75, 95, 120, 140, 150, 150, 150, 150, 150, 150, ...falling]);
    const alerts = out.flatMap((o, i) => o.alerts.map((a) => ({ i, a })));
    expect(alerts.map(({ a }) => a.kind)).toEqual(['glucose-predicted-low', 'glucose-predicted-low']);
    const [first, second] = alerts;
    expect(first!.a).toMatchObject({ severity: 2, sensor: 'cgm' });
    expect(first!.a.message).toMatch(/predicted to fall below 70 mg\/dL.*decision support/);
    // Before the reading itself is below 70 (index 18 is 67.5 mg/dL).
    expect(falling[first!.i]!).toBeGreaterThanOrEqual(70);
    expect(second!.i).toBeGreaterThan(falling.length + 12);
  });

  it('raises no predicted-low alert while a low is going on (a bounce to 70-75 inside an event), with the detector probability in the findings', () => {
    const m = new GlucoseMonitor('cgm', forecaster);
    const out = feed(m, [...falling, 62, 60, 58, 72, 74, 66, 64, 73, 75]);
    const firstAlert = out.findIndex((o) => o.alerts.some((a) => a.kind === 'glucose-predicted-low'));
    expect(firstAlert).toBeGreaterThanOrEqual(0);
    const firstLow = falling.findIndex((v) => v < 70);
    expect(firstAlert).toBeLessThan(firstLow);
    // From the first reading below 70 on (the event is under way): no further predicted-low alert.
    expect(out.slice(firstLow).flatMap((o) => o.alerts).filter((a) => a.kind === 'glucose-predicted-low')).toEqual([]);
    const alert = out[firstAlert]!.alerts.find((a) => a.kind === 'glucose-predicted-low')!;
    expect(alert.message).toMatch(/probability \d+ % of a low starting within 10 to 60 minutes/);
    const finding = out[firstAlert]!.findings.find((f) => f.kind === 'glucose-forecast')!;
    expect(finding.probability).toBeGreaterThanOrEqual(forecaster.policy.probability);
    expect(finding.evidence).toMatch(/10 to 60 min/);
  });

  it('falls back to trend extrapolation without a model, saying so', () => {
    const m = new GlucoseMonitor('cgm');
    const out = feed(m, falling);
    const alerts = out.flatMap((o) => o.alerts);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.message).toMatch(/trend extrapolation \(no forecast model\)/);
    expect(out.flatMap((o) => o.findings).find((f) => f.kind === 'glucose-forecast')).toMatchObject({ modelId: GLUCOSE_FALLBACK_MODEL_ID, qualityFlags: ['no-forecast-model'] });
  });

  it('raises sustained hyperglycaemia after 2 h above 250 without a gap, once per episode', () => {
    const m = new GlucoseMonitor('cgm', forecaster);
    const high = Array.from({ length: 26 }, () => 270);
    const out = feed(m, [...high, 170, ...high]);
    const at = out.flatMap((o, i) => o.alerts.filter((a) => a.kind === 'hyperglycaemia-sustained').map(() => i));
    expect(at).toEqual([24, 27 + 24]); // 120 min after the first reading above 250; re-armed at 170
    // A gap restarts the clock.
    const g = new GlucoseMonitor('cgm');
    feed(g, Array.from({ length: 20 }, () => 270));
    expect(feed(g, Array.from({ length: 10 }, () => 270), 140).flatMap((o) => o.alerts)).toEqual([]);
  });

  it('restore: a stored alert keeps its episode open after a restart even where the replayed readings would not (the readings that raised it were evicted)', () => {
    // A predicted low of the fallback at reading k; readings k and k+1 no longer in the ledger (acknowledged readings are evicted over the disk budget before acknowledged alerts).
    const readings = falling.map((v, i) => reading(v, i * 5));
    const first = new GlucoseMonitor('cgm');
    const out = readings.map((r) => first.push(r));
    const k = out.findIndex((o) => o.alerts.length > 0);
    const alert = out[k]!.alerts[0]!;
    expect(alert.kind).toBe('glucose-predicted-low');
    const afterRestart = (stored: Alert[]) => {
      const m = new GlucoseMonitor('cgm');
      m.restore(readings.slice(0, k), stored);
      return readings.slice(k + 2).flatMap((r) => m.push(r).alerts.map((a) => a.kind));
    };
    expect(afterRestart([alert])).toEqual([]);
    // Without the stored alert the replay has no episode open: the same low alerted a second time.
    expect(afterRestart([])).toEqual(['glucose-predicted-low']);
    // Another sensor's alert keeps nothing open.
    expect(afterRestart([{ ...alert, sensor: 'other' }])).toEqual(['glucose-predicted-low']);
    // The sustained high: alerted at reading 24 (120 min), that reading lost; the high goes on.
    const high = Array.from({ length: 30 }, (_, i) => reading(270, i * 5));
    const h = new GlucoseMonitor('cgm', forecaster);
    const hyper = high.map((r) => h.push(r).alerts).flat();
    expect(hyper.map((a) => a.kind)).toEqual(['hyperglycaemia-sustained']);
    const restarted = (stored: Alert[]) => {
      const m = new GlucoseMonitor('cgm', forecaster);
      m.restore(high.slice(0, 24), stored);
      return high.slice(25).flatMap((r) => m.push(r).alerts.map((a) => a.kind));
    };
    expect(restarted(hyper)).toEqual([]);
    expect(restarted([])).toEqual(['hyperglycaemia-sustained']);
  });

  it('says plainly that a predicted low and a sustained high were measured hours ago when the readings arrive late', () => {
    // A CGM's last hours downloaded 3 h 10 min after each reading was measured (a receiver read at the clinic).
    const late = (value: number, minute: number): Reading => {
      const t = T0 + minute * MIN;
      return { sensor: 'cgm', type: 'glucose', value, unit: 'mg/dL', tDevice: t + 190 * MIN, tMeter: t, meterRecord: minute, context: { meterClock: new Date(t).toISOString().slice(0, 19), meterTimeBasis: 'current-time-service' } };
    };
    const low = new GlucoseMonitor('cgm');
    const alerts = falling.flatMap((v, i) => low.push(late(v, i * 5)).alerts);
    expect(alerts.map((a) => [a.kind, a.severity])).toEqual([['glucose-predicted-low', 2]]);
    expect(alerts[0]!.message).toMatch(/^Glucose \d+ mg\/dL, measured 3 h 10 min ago \(meter time 1 Jan \d\d:\d\d\), was predicted to fall below 70 mg\/dL within about 30 minutes of it .*; check the patient now/);
    const high = new GlucoseMonitor('cgm');
    const highs = Array.from({ length: 26 }, (_, i) => high.push(late(270, i * 5)).alerts).flat();
    expect(highs.map((a) => a.message)).toEqual(['Glucose has stayed above 250 mg/dL for 120 minutes (last reading 270 mg/dL, measured 3 h 10 min ago (meter time 1 Jan 02:00)); review by a clinician.']);
  });

  it('reports a gap and a flat line as sensor-fault findings, once each (a 5-hour flat line is one fault)', () => {
    const m = new GlucoseMonitor('cgm', forecaster);
    const out = [...feed(m, Array.from({ length: 60 }, () => 100)), ...feed(m, [110, 115], 340)];
    const faults = out.flatMap((o) => o.findings.filter((f) => f.kind === 'glucose-sensor-fault').map((f) => f.label));
    expect(faults).toEqual(['flat-line', 'gap']);
  });
});

describe('sensor faults of a spot-check meter and of a CGM', () => {
  // A patient's fingersticks every 3 hours, downloaded in one burst 20 h after the first: equal values twice.
  const fingersticks = [145, 141, 141, 188, 205, 246, 229];
  const received = T0 + 20 * 60 * MIN;
  const stick = (value: number, i: number): Reading => ({ sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice: received + i, tMeter: T0 + i * 180 * MIN, meterRecord: i + 1 });

  it("reports no gap, flat line or compression low for fingersticks, and no sensor limit for a measured 13-40 or 400-600 mg/dL (the CGM's LO/HI thresholds)", () => {
    const m = new GlucoseMonitor('meter', undefined, { sensorType: 'meter' });
    const findings = [...fingersticks, 35, 13, 40, 450].flatMap((v, i) => m.push(stick(v, i)).findings).filter((f) => f.kind === 'glucose-sensor-fault');
    expect(findings).toEqual([]);
    const cgm = new GlucoseMonitor('cgm', undefined, { sensorType: 'cgm' });
    const cgmLimits = [100, 35].flatMap((v, i) => cgm.push({ ...stick(v, i), sensor: 'cgm', tMeter: T0 + i * 5 * MIN }).findings).filter((f) => f.label === 'sensor-limit');
    expect(cgmLimits.map((f) => f.t)).toEqual([T0 + 5 * MIN]);
  });

  it('reports sensor-limit for a meter reading whose Sensor Status Annunciation says the result was lower/higher than the meter can process', () => {
    const m = new GlucoseMonitor('meter', undefined, { sensorType: 'meter' });
    const marked = (v: number, i: number, status?: string): Reading => ({ ...stick(v, i), ...(status ? { context: { sensorStatus: status } } : {}) });
    const limits = [marked(145, 0), marked(20, 1, 'resultTooLow'), marked(141, 2), marked(600, 3, 'stripInsufficient,resultTooHigh')].flatMap((r) => m.push(r).findings).filter((f) => f.label === 'sensor-limit');
    expect(limits.map((f) => f.t)).toEqual([T0 + 180 * MIN, T0 + 3 * 180 * MIN]);
    expect(limits.every((f) => f.modelId === 'algo:glucose-sensor-faults@3')).toBe(true);
  });

  it("dates a CGM's gap by the CGM times it lies between, not by when the readings arrived", () => {
    const m = new GlucoseMonitor('cgm', undefined, { sensorType: 'cgm' });
    const gaps = fingersticks.flatMap((v, i) => m.push({ ...stick(v, i), sensor: 'cgm' }).findings).filter((f) => f.label === 'gap');
    expect(gaps).toHaveLength(1); // one gap going on, reported once
    expect(gaps[0]).toMatchObject({ kind: 'glucose-sensor-fault', t: T0 + 180 * MIN, intervalStart: T0, intervalEnd: T0 + 180 * MIN });
    expect(gaps[0]!.evidence).toBe('no reading between 2025-01-01T00:00:00.000Z and 2025-01-01T03:00:00.000Z (CGM time)');
  });

  it('gives the CGM flags only to sensors whose driver is a CGM', () => {
    const config = parseRuntimeConfig(
      {
        deviceId: 'd',
        dataDir: '/tmp/x',
        sources: [
          { type: 'device', sensor: 'meter', driver: 'ble-glucose-meter', options: {} },
          { type: 'device', sensor: 'cgm', driver: 'ble-cgm', options: {} },
          { type: 'sim-glucose', sensor: 'serial-meter' },
        ],
      },
      '/tmp',
    );
    const glucose = createAnalyzers(config, { meter: 'glucose-meter', cgm: 'cgm' }).find((a) => a.name === 'glucose')!;
    const gapsOf = (sensor: string) =>
      fingersticks.flatMap((v, i) => glucose.onReading!({ ...stick(v, i), sensor })?.findings ?? []).filter((f) => f.kind === 'glucose-sensor-fault' && f.label === 'gap').length;
    expect([gapsOf('meter'), gapsOf('serial-meter'), gapsOf('cgm')]).toEqual([0, 0, 1]);
  });
});

describe('createAnalyzers', () => {
  it('runs the glucose analyzer for glucose sources and raises its alerts from readings', () => {
    const config = parseRuntimeConfig({ deviceId: 'd', dataDir: '/tmp/x', sources: [{ type: 'sim-glucose' }] }, '/tmp');
    const glucose = createAnalyzers(config).find((a) => a.name === 'glucose');
    expect(glucose).toBeDefined();
    const outs = falling.map((v, i) => glucose!.onReading!({ ...reading(v, i * 5), sensor: 'glucose-meter' }));
    expect(outs.flatMap((o) => o?.alerts ?? []).map((a) => a.kind)).toEqual(['glucose-predicted-low']);
    expect(glucose!.onReading!({ sensor: 'hr', type: 'heart-rate', value: 60, unit: '/min', tDevice: 0 })).toBeUndefined();
    expect(createAnalyzers(parseRuntimeConfig({ deviceId: 'd', dataDir: '/tmp/x', sources: [{ type: 'sim-hr' }] }, '/tmp')).some((a) => a.name === 'glucose')).toBe(false);
  });
});

describe('glucose monitor on a meter memory downloaded months later', () => {
  const NOW = Date.UTC(2026, 11, 1);
  /** Minute `minute` of a day ~300 days ago, received at NOW + the record number in ms (a backfill burst). */
  function old(value: number, minute: number, record: number): Reading {
    return { sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice: NOW + record, tMeter: NOW - 300 * 1440 * MIN + minute * MIN, meterRecord: record };
  }

  it('raises no live alert from historical readings (sustained high, predicted low), but alerts on a live reading after them', () => {
    for (const model of [forecaster, undefined]) {
      const m = new GlucoseMonitor('meter', model);
      // 3 h above 250, then a fast fall: both alert when live (see above); here they are history.
      const values = [...Array.from({ length: 36 }, () => 280), ...Array.from({ length: 20 }, (_, k) => 260 - 10 * k)];
      const outs = values.map((v, i) => m.push(old(v, i * 5, i + 1)));
      expect(outs.flatMap((o) => o.alerts)).toEqual([]);
      // Trends of historical readings are kept, timed on the meter clock; no forecast of the past is made.
      const findings = outs.flatMap((o) => o.findings);
      expect(findings.filter((f) => f.kind === 'glucose-trend').length).toBe(values.length - 1);
      expect(findings.filter((f) => f.kind === 'glucose-forecast')).toEqual([]);
      // A live high after the history: the sustained-high alert is raised, timed now.
      const live = m.push({ sensor: 'meter', type: 'glucose', value: 300, unit: 'mg/dL', tDevice: NOW + 1000, tMeter: NOW + 1000 - 30_000, meterRecord: 999 });
      expect(live.alerts.map((a) => a.kind)).toEqual([]); // the history ended far from now: a gap, no 2 h run
    }
  });
});

describe('a CGM whose missed readings come in one burst after a link loss', () => {
  it('places them at the times the driver dated them: no false gap, no absurd trend or forecast', () => {
    // QA: 35 min without link, then 7 readings 50 ms apart, all timed at the reconnect: a false gap, a trend of
    // -4,800 mg/dL/min and a predicted low quoting -143,858 mg/dL.
    const T = Date.UTC(2026, 11, 6, 20, 0, 0);
    const m = new GlucoseMonitor('cgm', undefined, { sensorType: 'cgm' });
    const findings: Finding[] = [];
    const alerts: string[] = [];
    const push = (tDevice: number, measured: number, value: number, offset: number) => {
      const out = m.push({ sensor: 'cgm', type: 'glucose', value, unit: 'mg/dL', tDevice, meterRecord: offset, context: { source: 'cgm', measuredAt: new Date(measured).toISOString() } });
      findings.push(...out.findings);
      alerts.push(...out.alerts.map((a) => a.kind));
    };
    for (let i = 0; i < 8; i++) push(T + i * 5 * MIN + 2000, T + i * 5 * MIN + 2000, 150, i * 5);
    const back = T + 70 * MIN;
    for (let i = 1; i <= 7; i++) push(back + i * 50, T + (35 + i * 5) * MIN + 2000, 150 - i * 4, 35 + i * 5);
    expect(findings.filter((f) => f.label === 'gap')).toEqual([]);
    for (const f of findings.filter((x) => x.kind === 'glucose-trend')) expect(Math.abs(f.value as number)).toBeLessThan(5);
    expect(alerts).toEqual([]);
  });
});

describe('a CGM whose driver could not read its session start', () => {
  it('analyses a new sensor session whose time offsets start again (they are not meter record numbers)', () => {
    const T = Date.UTC(2026, 11, 6, 8, 0, 0);
    const m = new GlucoseMonitor('cgm', undefined, { sensorType: 'cgm' });
    const cgm = (offset: number, minute: number, value: number): Reading => ({ sensor: 'cgm', type: 'glucose', value, unit: 'mg/dL', tDevice: T + minute * MIN + 2000, meterRecord: offset, context: { source: 'cgm', measuredAt: new Date(T + minute * MIN + 2000).toISOString() } });
    // One day into a sensor, then a new sensor: offsets 1440.. then 0, 5, 10, ...
    for (let i = 0; i < 6; i++) m.push(cgm(1440 + i * 5, i * 5, 120));
    const after = [0, 5, 10, 15].map((o, i) => m.push(cgm(o, 60 + i * 5, 120 - i * 10)));
    expect(after.slice(1).every((o) => o.findings.some((f) => f.kind === 'glucose-trend'))).toBe(true);
  });
});

describe("a meter's record numbers that start again (the meter replaced under the sensor's name, or reset)", () => {
  const live = (record: number, minute: number, value: number, context: Record<string, string>): Reading => ({ sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice: T0 + minute * MIN + 500, tMeter: T0 + minute * MIN, meterRecord: record, context });

  it('takes record 1 of a new numbering, later than the trace, as the live reading it is (before: dropped as an older record)', () => {
    const m = new GlucoseMonitor('meter', undefined, { sensorType: 'meter', meterRecordBits: 16 });
    m.push(live(500, 0, 120, { meter: 'C0:FF:EE:00:00:01' }));
    m.push(live(501, 10, 100, { meter: 'C0:FF:EE:00:00:01' }));
    const reset = m.push(live(1, 20, 70, { meter: 'C0:FF:EE:00:00:01', meterEpoch: '2025-01-01T00:19:00.000Z' }));
    expect(reset.findings.filter((f) => f.kind === 'glucose-trend').map((f) => f.t)).toEqual([T0 + 20 * MIN]);
    const replaced = m.push(live(1, 30, 50, { meter: 'C0:FF:EE:00:00:02' }));
    expect(replaced.findings.filter((f) => f.kind === 'glucose-trend').map((f) => f.t)).toEqual([T0 + 30 * MIN]);
    // Within a numbering, an older record dated after the trace's end still stays out of it.
    expect(m.push(live(65_000, 40, 200, { meter: 'C0:FF:EE:00:00:02' })).findings).toEqual([]);
  });
});
