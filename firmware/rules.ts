/**
 * Threshold rules that turn readings into findings and alerts on the device, without a network.
 *
 * Decision support, never a diagnosis: alert messages say what a reading crossed and ask for a
 * clinician's review. Every alert kind fires once per episode and re-arms only when a reading is
 * back on the normal side of its range (hysteresis: 70-180 mg/dL, 50-100 /min by default), so a
 * patient sitting at 50 mg/dL raises one alert, not one per reading. A level 2 hypoglycaemia
 * alert also counts as the episode's level 1 alert.
 *
 * Glucose trend, forecast, sensor faults, predicted hypoglycaemia and sustained hyperglycaemia are
 * the glucose analyzer's (firmware/glucose-monitor.ts); these rules keep the reading-level glucose
 * alerts, so that no condition is alerted twice. State is kept per sensor inside the engine; engines
 * are independent.
 */
import type { Alert, AlertSeverity, Finding, Reading } from '../device-sdk/records.js';

export interface RuleEngineOptions {
  glucose: {
    /** Level 1 hypoglycaemia below this (mg/dL). */
    lowLevel1: number;
    /** Level 2 hypoglycaemia below this (mg/dL). */
    lowLevel2: number;
    /** Hyperglycaemia above this (mg/dL). */
    high: number;
    /** Normal range (mg/dL): low alerts re-arm at a reading >= min, the high alert at a reading <= max. */
    rearm: { min: number; max: number };
  };
  heartRate: {
    /** Tachycardia above this (/min) for `tachyReadings` consecutive readings. */
    tachy: number;
    tachyReadings: number;
    /** Bradycardia below this (/min), on one reading. */
    brady: number;
    /** Normal range (/min): bradycardia re-arms at a reading >= min, tachycardia at a reading <= max. */
    rearm: { min: number; max: number };
  };
}

export type RuleEngineOptionsInput = { [K in keyof RuleEngineOptions]?: Partial<RuleEngineOptions[K]> };

export const DEFAULT_RULE_OPTIONS: Readonly<RuleEngineOptions> = Object.freeze({
  glucose: Object.freeze({
    lowLevel1: 70,
    lowLevel2: 54,
    high: 250,
    rearm: Object.freeze({ min: 70, max: 180 }),
  }),
  heartRate: Object.freeze({ tachy: 120, tachyReadings: 3, brady: 40, rearm: Object.freeze({ min: 50, max: 100 }) }),
});

/** Glucose readings in mmol/L are converted with this factor. */
const MG_DL_PER_MMOL_L = 18.016;

export interface RuleOutput {
  findings: Finding[];
  alerts: Alert[];
}

export interface RuleEngine {
  /** Evaluates one reading. Readings of types other than `glucose` and `heart-rate` give nothing. */
  onReading(r: Reading): RuleOutput;
}

interface SensorState {
  /** Alert kinds that fired and have not re-armed. */
  fired: Set<string>;
  tachyRun: number;
}

function glucoseMgDl(r: Reading): number | undefined {
  if (r.unit === 'mg/dL') return r.value;
  if (r.unit === 'mmol/L') return r.value * MG_DL_PER_MMOL_L;
  return undefined; // unknown unit: not evaluated rather than misread
}

export function createRuleEngine(options: RuleEngineOptionsInput = {}): RuleEngine {
  const o: RuleEngineOptions = {
    glucose: { ...DEFAULT_RULE_OPTIONS.glucose, ...options.glucose },
    heartRate: { ...DEFAULT_RULE_OPTIONS.heartRate, ...options.heartRate },
  };
  const states = new Map<string, SensorState>();
  const stateOf = (sensor: string): SensorState => {
    const existing = states.get(sensor);
    if (existing !== undefined) return existing;
    const created: SensorState = { fired: new Set(), tachyRun: 0 };
    states.set(sensor, created);
    return created;
  };

  /** Raises `kind` unless it already fired in this episode. */
  const raise = (s: SensorState, out: RuleOutput, r: Reading, kind: string, severity: AlertSeverity, message: string) => {
    if (s.fired.has(kind)) return;
    s.fired.add(kind);
    out.alerts.push({ kind, severity, message, t: r.tDevice, sensor: r.sensor });
  };

  function onGlucose(s: SensorState, r: Reading, out: RuleOutput): void {
    const value = glucoseMgDl(r);
    if (value === undefined || !Number.isFinite(value)) return;
    const g = o.glucose;
    if (value >= g.rearm.min) {
      s.fired.delete('hypoglycaemia-level-1');
      s.fired.delete('hypoglycaemia-level-2');
    }
    if (value <= g.rearm.max) s.fired.delete('hyperglycaemia');
    const shown = `${Math.round(value)} mg/dL`;
    if (value < g.lowLevel2) {
      s.fired.add('hypoglycaemia-level-1'); // the level 2 alert covers level 1 for this episode
      raise(s, out, r, 'hypoglycaemia-level-2', 3, `Glucose reading ${shown} is below ${g.lowLevel2} mg/dL; review by a clinician.`);
    } else if (value < g.lowLevel1) {
      raise(s, out, r, 'hypoglycaemia-level-1', 2, `Glucose reading ${shown} is below ${g.lowLevel1} mg/dL; review by a clinician.`);
    } else if (value > g.high) {
      raise(s, out, r, 'hyperglycaemia', 2, `Glucose reading ${shown} is above ${g.high} mg/dL; review by a clinician.`);
    }
  }

  function onHeartRate(s: SensorState, r: Reading, out: RuleOutput): void {
    if (!Number.isFinite(r.value)) return;
    const h = o.heartRate;
    if (r.value <= h.rearm.max) s.fired.delete('tachycardia');
    if (r.value >= h.rearm.min) s.fired.delete('bradycardia');
    s.tachyRun = r.value > h.tachy ? s.tachyRun + 1 : 0;
    if (s.tachyRun >= h.tachyReadings) {
      raise(s, out, r, 'tachycardia', 2, `Heart rate above ${h.tachy} /min for ${s.tachyRun} consecutive readings; review by a clinician.`);
    }
    if (r.value < h.brady) {
      raise(s, out, r, 'bradycardia', 3, `Heart rate reading ${Math.round(r.value)} /min is below ${h.brady} /min; review by a clinician.`);
    }
  }

  return {
    onReading(r) {
      const out: RuleOutput = { findings: [], alerts: [] };
      if (r.type === 'glucose') onGlucose(stateOf(r.sensor), r, out);
      else if (r.type === 'heart-rate') onHeartRate(stateOf(r.sensor), r, out);
      return out;
    },
  };
}
