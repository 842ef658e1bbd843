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
