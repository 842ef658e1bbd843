import { describe, expect, it } from 'vitest';
import type { Reading } from '../device-sdk/records.js';
import { createRuleEngine } from './rules.js';

const T0 = Date.UTC(2025, 0, 1);
const MIN = 60_000;

function glucose(value: number, minute: number, record = minute): Reading {
  const t = T0 + minute * MIN;
  return { sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice: t + 500, tMeter: t, meterRecord: record };
}

function heartRate(value: number, second: number): Reading {
  return { sensor: 'strap', type: 'heart-rate', value, unit: '/min', tDevice: T0 + second * 1000 };
}

/** Feeds values one per 5 minutes and returns the alert kinds raised per reading. */
function alertsFor(values: number[]): string[][] {
  const engine = createRuleEngine();
  return values.map((v, i) => engine.onReading(glucose(v, i * 5)).alerts.map((a) => a.kind));
}

describe('glucose alerts', () => {
  it('raises one level 2 alert for a dip below 54 that stays low, and re-arms on recovery', () => {
    expect(alertsFor([100, 50, 48, 52, 60, 50, 95, 51])).toEqual([
      [],
      ['hypoglycaemia-level-2'],
      [],
      [],
      [], // 60 is below 70 but the episode already alerted
      [],
      [], // back in 70-180: re-armed
      ['hypoglycaemia-level-2'],
    ]);
  });

  it('escalates from level 1 to level 2 within an episode', () => {
    expect(alertsFor([90, 65, 62, 53, 66, 120, 68])).toEqual([[], ['hypoglycaemia-level-1'], [], ['hypoglycaemia-level-2'], [], [], ['hypoglycaemia-level-1']]);
  });

  it('raises hyperglycaemia once per episode', () => {
    expect(alertsFor([200, 260, 255, 240, 270, 170, 251])).toEqual([[], ['hyperglycaemia'], [], [], [], [], ['hyperglycaemia']]);
  });

  it('phrases alerts as decision support with severity and sensor', () => {
    const engine = createRuleEngine();
    const [alert] = engine.onReading(glucose(50, 0)).alerts;
    expect(alert).toEqual({
      kind: 'hypoglycaemia-level-2',
      severity: 3,
      message: 'Glucose reading 50 mg/dL is below 54 mg/dL; review by a clinician.',
      t: T0 + 500,
      sensor: 'meter',
    });
    expect(engine.onReading({ ...glucose(3.5, 5), unit: 'mmol/L' }).alerts).toEqual([]); // 63 mg/dL, same episode
  });

  it('keeps episodes per sensor', () => {
    const engine = createRuleEngine();
    expect(engine.onReading(glucose(50, 0)).alerts).toHaveLength(1);
    expect(engine.onReading({ ...glucose(50, 0), sensor: 'other' }).alerts).toHaveLength(1);
  });
});

describe('heart-rate alerts', () => {
  it('raises tachycardia after 3 consecutive readings above 120, once per episode', () => {
    const engine = createRuleEngine();
    const kinds = [110, 125, 130, 119, 125, 126, 128, 140, 135, 90, 121, 122, 123].map(
      (v, i) =>
        engine
          .onReading(heartRate(v, i))
          .alerts.map((a) => a.kind)
          .join() || '-',
    );
    expect(kinds).toEqual(['-', '-', '-', '-', '-', '-', 'tachycardia', '-', '-', '-', '-', '-', 'tachycardia']);
  });

  it('raises no rate alert on readings of a strap that reports no skin contact (the 0 /min it sends), but one contact-lost warning per episode', () => {
    const engine = createRuleEngine();
    const strap = (value: number, second: number, contact: string) => ({ ...heartRate(value, second), context: { contact } });
    expect(engine.onReading(strap(72, 0, 'detected')).alerts).toEqual([]);
    // QA: 0 /min with contact 'not-detected' raised bradycardia (3): 'Heart rate reading 0 /min is below 40 /min'.
    const off = [1, 2, 3].flatMap((second) => engine.onReading(strap(0, second, 'not-detected')).alerts);
    expect(off.map((a) => [a.kind, a.severity])).toEqual([['heart-rate-contact-lost', 2]]);
    expect(off[0]?.message).toBe('strap reports no skin contact: its heart rate (0 /min) is not evaluated until contact is back; check the strap.');
    // Back on the skin: a real low is alerted, and the next time the strap comes off is warned again.
    expect(engine.onReading(strap(35, 4, 'detected')).alerts.map((a) => a.kind)).toEqual(['bradycardia']);
    expect(engine.onReading(strap(0, 5, 'not-detected')).alerts.map((a) => a.kind)).toEqual(['heart-rate-contact-lost']);
    // Straps that cannot tell contact are evaluated as before.
    expect(createRuleEngine().onReading(strap(0, 6, 'not-supported')).alerts.map((a) => a.kind)).toEqual(['bradycardia']);
  });

  it('raises bradycardia below 40 with severity 3', () => {
    const engine = createRuleEngine();
    expect(engine.onReading(heartRate(38, 0)).alerts).toMatchObject([{ kind: 'bradycardia', severity: 3 }]);
    expect(engine.onReading(heartRate(35, 1)).alerts).toEqual([]);
    expect(engine.onReading(heartRate(45, 2)).alerts).toEqual([]);
    engine.onReading(heartRate(60, 3));
    expect(engine.onReading(heartRate(39, 4)).alerts).toHaveLength(1);
  });
});

describe('glucose findings', () => {
  it('leaves trend and forecast findings to the glucose analyzer (firmware/glucose-monitor.ts)', () => {
    const engine = createRuleEngine();
    expect(engine.onReading(glucose(100, 0)).findings).toEqual([]);
    expect(engine.onReading(glucose(130, 5)).findings).toEqual([]);
  });
});

describe('historical readings (a meter memory downloaded months later)', () => {
  const NOW = Date.UTC(2026, 11, 1);
  /** A record measured `hoursAgo` before it is downloaded, received at NOW + ms. */
  function backfilled(value: number, record: number, hoursAgo: number, ms = record): Reading {
    return { sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice: NOW + ms, tMeter: NOW - hoursAgo * 3600_000, meterRecord: record };
  }

  it('raises no live alert for a backfill; crossings become findings timed at the meter clock, once per historical episode', () => {
    const engine = createRuleEngine();
    // Records 3 h apart, from about 11 months ago, delivered within milliseconds (the QA demo's burst).
    const values = [145, 277, 253, 190, 259, 170, 40, 50, 120];
    const outs = values.map((v, i) => engine.onReading(backfilled(v, i + 1, 8000 - 3 * i)));
    // Only the old severe low says anything live: once, at severity 2, in case the meter's clock is wrong.
    const alerts = outs.flatMap((o) => o.alerts);
    expect(alerts.map((a) => [a.kind, a.severity])).toEqual([['historical-severe-reading', 2]]);
    expect(alerts[0]!.message).toMatch(/measured .*, 333 days before it was received, would have been a severity-3 alert: Glucose reading 40 mg\/dL is below.*If it was just measured, the meter's clock is wrong/);
    const findings = outs.flatMap((o) => o.findings);
    // 190 stays above 180, so 259 is the same episode; 170 re-arms, 40 is a level 2 low.
    expect(findings.map((f) => [f.kind, f.label, f.value])).toEqual([
      ['glucose-historical-out-of-range', 'hyperglycaemia', 277],
      ['glucose-historical-out-of-range', 'hypoglycaemia-level-2', 40],
    ]);
    const [high] = findings;
    expect(high).toMatchObject({ t: NOW - (8000 - 3) * 3600_000, modelId: 'rule:reading-thresholds@1', probability: 1, qualityFlags: ['historical'] });
    expect(high!.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(high!.evidence).toContain('record 2, measured ');
    expect(high!.evidence).toContain('no live alert');
  });

  it('keeps live episodes apart from historical readings, and alerts on a fresh reading', () => {
    const engine = createRuleEngine();
    const live = (value: number, ms: number): Reading => ({ sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice: NOW + ms, tMeter: NOW + ms - 60_000, meterRecord: 100 + ms });
    expect(engine.onReading(live(260, 0)).alerts.map((a) => a.kind)).toEqual(['hyperglycaemia']);
    // An old in-range record downloaded now does not re-arm the live episode ...
    expect(engine.onReading(backfilled(120, 1, 48, 1)).alerts).toEqual([]);
    expect(engine.onReading(live(265, 2)).alerts).toEqual([]);
    // ... and a day-old severe low raises only the one clock warning, while one measured 5 h before it was
    // downloaded is live and says plainly that it is past.
    expect(engine.onReading(backfilled(45, 2, 30, 3)).alerts.map((a) => a.kind)).toEqual(['historical-severe-reading']);
    const late = engine.onReading({ ...live(45, 4), tMeter: NOW + 4 - 5 * 3_600_000 }).alerts;
    expect(late.map((a) => [a.kind, a.t])).toEqual([['hypoglycaemia-level-2', NOW + 4]]);
    expect(late[0]!.message).toBe('Glucose reading 45 mg/dL, measured 5 h ago (meter time 30 Nov 19:00 UTC), is below 54 mg/dL; review by a clinician.');
    expect(engine.onReading(backfilled(40, 5, 40, 5)).alerts).toEqual([]);
  });

  it("says how long ago a backfilled reading was measured, by the corrected time and with the meter's own clock, keeping its severity", () => {
    const engine = createRuleEngine();
    // A New York meter read through its Current Time: measured 3 h 10 min before the download, at 11:05 on its clock.
    const tMeter = NOW - (3 * 60 + 10) * 60_000;
    const context = { meterClock: '2026-11-30T15:50:00', meterTimeBasis: 'current-time-service', meterClockOffsetS: '-18000' };
    const out = engine.onReading({ sensor: 'meter', type: 'glucose', value: 45, unit: 'mg/dL', tDevice: NOW, tMeter, meterRecord: 7, context });
    expect(out.alerts.map((a) => [a.kind, a.severity, a.t])).toEqual([['hypoglycaemia-level-2', 3, NOW]]);
    expect(out.alerts[0]!.message).toBe('Glucose reading 45 mg/dL, measured 3 h 10 min ago (meter time 30 Nov 15:50), is below 54 mg/dL; review by a clinician.');
    // Measured 10 minutes ago: nothing to say about the time.
    const fresh = createRuleEngine().onReading({ sensor: 'meter', type: 'glucose', value: 45, unit: 'mg/dL', tDevice: NOW, tMeter: NOW - 10 * 60_000, context });
    expect(fresh.alerts[0]!.message).toBe('Glucose reading 45 mg/dL is below 54 mg/dL; review by a clinician.');
  });

  it('gives no age for a reading whose meter time zone is unknown, but the meter time and that its age is unknown', () => {
    const engine = createRuleEngine();
    // Its wall clock read as UTC is 5 h behind: a meter west of UTC measuring now, or a reading 5 h old.
    const context = { meterClock: '2026-11-30T19:00:00', meterTimeBasis: 'zone-unknown' };
    const out = engine.onReading({ sensor: 'meter', type: 'glucose', value: 45, unit: 'mg/dL', tDevice: NOW, tMeter: NOW - 5 * 3_600_000, context });
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([['hypoglycaemia-level-2', 3]]);
    expect(out.alerts[0]!.message).toBe(
      "Glucose reading 45 mg/dL, measured at meter time 30 Nov 19:00 (the meter's time zone is unknown, so how long ago is not known: it may be hours old), is below 54 mg/dL; review by a clinician.",
    );
    expect(out.alerts[0]!.message).not.toMatch(/5 h/);
  });

  it('leaves out the wrong-clock advice for an old severe reading dated by the meter\'s Current Time', () => {
    const engine = createRuleEngine();
    const context = { meterClock: '2026-11-28T13:00:00', meterTimeBasis: 'current-time-service', meterClockOffsetS: '-18000' };
    const out = engine.onReading({ ...backfilled(40, 1, 54), context });
    expect(out.alerts.map((a) => a.kind)).toEqual(['historical-severe-reading']);
    expect(out.alerts[0]!.message).toContain('measured 2026-11-28T18:00:00.000Z (meter time 28 Nov 13:00), 2 days before it was received');
    expect(out.alerts[0]!.message).not.toMatch(/clock is wrong/);
    expect(out.findings[0]!.evidence).toMatch(/^historical reading \(record 1, measured 2026-11-28T18:00:00.000Z \(meter time 28 Nov 13:00\), received /);
  });

  it('applies to heart-rate readings with a meter clock too; readings without one are live', () => {
    const engine = createRuleEngine();
    const old: Reading = { sensor: 'strap', type: 'heart-rate', value: 35, unit: '/min', tDevice: NOW, tMeter: NOW - 30 * 3_600_000 };
    const out = engine.onReading(old);
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([['historical-severe-reading', 2]]);
    expect(out.findings.map((f) => [f.kind, f.label, f.t])).toEqual([['heart-rate-historical-out-of-range', 'bradycardia', NOW - 30 * 3_600_000]]);
    expect(engine.onReading({ sensor: 'strap', type: 'heart-rate', value: 35, unit: '/min', tDevice: NOW + 1000 }).alerts.map((a) => a.kind)).toEqual(['bradycardia']);
  });
});

describe('a CGM reading sent late (a burst after a link loss)', () => {
  it('says how long ago it was measured, from the time the driver dated it', () => {
    const NOW2 = Date.UTC(2026, 11, 6, 20, 0, 0);
    const cgm = (value: number, agoMin: number): Reading => ({ sensor: 'cgm', type: 'glucose', value, unit: 'mg/dL', tDevice: NOW2, meterRecord: 100 - agoMin, context: { source: 'cgm', measuredAt: new Date(NOW2 - agoMin * 60_000).toISOString() } });
    expect(createRuleEngine().onReading(cgm(50, 30)).alerts[0]?.message).toBe('Glucose reading 50 mg/dL, measured 30 min ago (sent late by the CGM), is below 54 mg/dL; review by a clinician.');
    expect(createRuleEngine().onReading(cgm(50, 5)).alerts[0]?.message).toBe('Glucose reading 50 mg/dL is below 54 mg/dL; review by a clinician.');
  });
});

