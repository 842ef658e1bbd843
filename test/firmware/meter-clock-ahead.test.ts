// A meter whose clock is ahead of the device's (QA re-check of the meter-time change, reproductions on
// branch qa-glu): its memory raised live severity-3 alerts for months-old readings, and one reading dated in
// the future made the glucose monitor take every later reading for a backfill. Both fail on e92fd32.
import { describe, expect, it } from 'vitest';
import type { Alert, Reading } from '../../device-sdk/records.js';
import { GlucoseMonitor } from '../../firmware/glucose-monitor.js';
import { createRuleEngine, meterClockAheadMs } from '../../firmware/rules.js';

const NOW = Date.UTC(2026, 11, 6, 23, 30, 0);
const H = 3600_000;
const YEAR = 365 * 24 * H;

function meterReading(seq: number, truthMs: number, value: number, clockErrorMs: number, basis: 'zone-unknown' | 'configured-zone', tDevice = NOW): Reading {
  const tMeter = truthMs + clockErrorMs;
  return { sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice, tMeter, meterRecord: seq, context: { meterClock: new Date(tMeter).toISOString().slice(0, 19), meterTimeBasis: basis, ...(basis === 'configured-zone' ? { meterTimeZone: 'UTC' } : {}) } };
}

describe('a meter whose clock is far ahead of the device', () => {
  it('raises no live severity-3 alert for months-old records from its memory: one meter-clock-ahead and one severe-reading notice instead', () => {
    // Records measured 11 months ago, 12 h apart, alternating 40 and 120 mg/dL; the meter clock a year fast, no Current Time.
    for (const basis of ['zone-unknown', 'configured-zone'] as const) {
      const rules = createRuleEngine();
      const alerts: Alert[] = [];
      const findings = [];
      for (let i = 0; i < 10; i++) {
        const out = rules.onReading(meterReading(i + 1, NOW - 330 * 24 * H + i * 12 * H, i % 2 === 0 ? 40 : 120, YEAR, basis));
        alerts.push(...out.alerts);
        findings.push(...out.findings);
      }
      expect(alerts.map((a) => [a.kind, a.severity]), basis).toEqual([
        ['meter-clock-ahead', 2],
        ['historical-severe-reading', 2],
      ]);
      expect(alerts[0]!.message).toMatch(/^The clock of meter is 3[45] days ahead of this device's \(a reading dated 2027-01-10T23:30:00\.000Z \(meter time 10 Jan 2027 23:30[,)]/);
      expect(alerts[1]!.message).toMatch(/days ahead of this device's clock, would have been a severity-3 alert: Glucose reading 40 mg\/dL is below 54 mg\/dL; review by a clinician\. It may be a current reading: treat it as current, and set the meter's clock\./);
      // Every low is kept as a historical finding at its meter time.
      expect(findings.filter((f) => f.kind === 'glucose-historical-out-of-range')).toHaveLength(5);
    }
  });

  it('takes a reading for a clock fault only when it is dated more than the 24 h history limit ahead (plus the largest UTC offset, 14 h, when the zone is not known)', () => {
    const r = (aheadMs: number, basis: 'zone-unknown' | 'configured-zone', value = 100) => meterReading(1, NOW, value, aheadMs, basis);
    expect(meterClockAheadMs(r(37 * H, 'zone-unknown'))).toBe(0);
    expect(meterClockAheadMs(r(39 * H, 'zone-unknown'))).toBe(39 * H);
    expect(meterClockAheadMs(r(23 * H, 'configured-zone'))).toBe(0);
    expect(meterClockAheadMs(r(25 * H, 'configured-zone'))).toBe(25 * H);
    // QA: a meter 20 min or 1 h fast (not set back at the end of summer time) lost every live alert. It keeps them, saying so.
    for (const ahead of [20 * 60_000, H]) {
      const live = createRuleEngine().onReading(r(ahead, 'configured-zone', 45)).alerts;
      expect(live.map((a) => [a.kind, a.severity])).toEqual([['hypoglycaemia-level-2', 3]]);
      expect(live[0]!.message).toMatch(/ahead of this device's clock \(check the meter's clock\)/);
    }
  });
});

describe('glucose monitor after one reading with a future time', () => {
  it('keeps giving trend findings and predicted-low alerts once the meter clock is right again', () => {
    const m = new GlucoseMonitor('meter', undefined, { sensorType: 'meter' });
    const first = m.push(meterReading(1, NOW, 120, YEAR, 'configured-zone')); // clock a year fast, then set right
    expect(first).toEqual({ findings: [], alerts: [] });
    const outs = [];
    for (let i = 1; i <= 6; i++) outs.push(m.push(meterReading(1 + i, NOW + i * 10 * 60_000, 200 - (i - 1) * 25, 0, 'configured-zone', NOW + i * 10 * 60_000 + 1000)));
    const control = new GlucoseMonitor('meter', undefined, { sensorType: 'meter' });
    const expected = [];
    for (let i = 1; i <= 6; i++) expected.push(control.push(meterReading(1 + i, NOW + i * 10 * 60_000, 200 - (i - 1) * 25, 0, 'configured-zone', NOW + i * 10 * 60_000 + 1000)));
    expect(expected.flatMap((o) => o.alerts.map((a) => a.kind))).toEqual(['glucose-predicted-low']);
    expect(outs).toEqual(expected);
  });
});

describe('glucose monitor after a meter clock that was fast is set right', () => {
  it('drops the points the fast clock dated after the corrected time: trend and forecast come back at the next reading', () => {
    // QA: 2 h fast, set right at 60 min, glucose falling: no trend or forecast for 2 h, then a false falling-fast.
    const m = new GlucoseMonitor('meter', undefined, { sensorType: 'meter' });
    const kinds: string[][] = [];
    for (let i = 0; i <= 20; i++) {
      const truth = NOW + i * 10 * 60_000;
      const fast = i <= 6 ? 2 * H : 0;
      const out = m.push(meterReading(i + 1, truth, 110 - i * 3.5, fast, 'configured-zone', truth + 1000));
      kinds.push(out.findings.map((f) => f.kind));
    }
    // Every reading after the clock was set right (i = 7 on) gives a trend again.
    for (const k of kinds.slice(8)) expect(k).toContain('glucose-trend');
  });

  it('keeps older records that the fast clock dated out of the trace when they come after the correction (a backfill)', () => {
    // QA: 1 h fast; records 7-9 live at the right time (falling to 60), then records 4-6, dated by the fast
    // clock after them, arrived: record 4 was taken as live, with a rising-fast trend and a predicted low quoting 105 mg/dL.
    const m = new GlucoseMonitor('meter', undefined, { sensorType: 'meter' });
    const live = [7, 8, 9].map((n, i) => m.push(meterReading(n, NOW + i * 10 * 60_000, 80 - i * 10, 0, 'configured-zone', NOW + i * 10 * 60_000 + 1000)));
    expect(live[2]!.findings.some((f) => f.kind === 'glucose-trend')).toBe(true);
    const late = [4, 5, 6].map((n, i) => m.push(meterReading(n, NOW - (40 - i * 10) * 60_000, 105 + i, H, 'configured-zone', NOW + 25 * 60_000)));
    expect(late).toEqual([0, 1, 2].map(() => ({ findings: [], alerts: [] })));
    // Record 10 follows 9 in the trace: a falling trend, not one against the late records.
    const next = m.push(meterReading(10, NOW + 30 * 60_000, 52, 0, 'configured-zone', NOW + 30 * 60_000 + 1000));
    expect(next.findings.find((f) => f.kind === 'glucose-trend')?.value).toBeLessThan(0);
  });
});
