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
 *
 * Historical readings raise no alert. A reading is historical when its own clock (`tMeter`: a glucose
 * meter's memory, downloaded when it connects) is more than `historical.afterMin` minutes behind the
 * device clock (`isHistoricalReading`). The same thresholds run over them with their own episodes,
 * and what crossed one is a finding `<type>-historical-out-of-range` (label: the alert kind it would
 * have been, e.g. `hyperglycaemia`) timed at the meter's clock; historical readings neither fire nor
 * re-arm the live episodes. A reading without `tMeter` (a heart-rate strap, a CGM, a derived heart rate)
 * is live. A live alert on a reading measured more than 15 minutes before it arrived (a backfill of
 * the last day) says so plainly, with the age from the corrected meter time and the meter's own clock:
 * `Glucose reading 45 mg/dL, measured 3 h 10 min ago (meter time 6 Dec 11:05), is below 54 mg/dL`
 * (`measuredWhen`); its severity is kept: a severe low of three hours ago is still clinically urgent
 * (the patient may still be low, or untreated). When the meter's time zone is unknown
 * (device-sdk/sensors/meter-time.ts) no age is given, since it may be off by the meter's UTC offset:
 * the alert gives the meter time and says its age is unknown.
 * A meter whose clock is more than `afterMin` slow has its readings treated as historical, so the first
 * historical reading of a sensor that would have been a severity-3 alert still raises one severity-2
 * `historical-severe-reading` alert (once per sensor while the runtime runs): the meter's time, and,
 * unless the time came from the meter's Current Time (then a wrong clock is already corrected), that a
 * wrong meter clock makes a current reading look old.
 *
 * A heart-rate reading whose strap reports its skin contact as not detected (`context.contact`) raises
 * no rate alert: one `heart-rate-contact-lost` (severity 2) per episode says the strap is off.
 */
import type { Alert, AlertSeverity, Finding, Reading } from '../device-sdk/records.js';
import { cgmMeasuredAt, METER_TIME_CONTEXT, meterClockText, meterTimeZoneUnknown } from '../device-sdk/sensors/meter-time.js';
import { canonicalJson, sha256Hex } from '../device-sdk/security/signing.js';

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
  historical: {
    /** A reading whose `tMeter` is more than this many minutes before its `tDevice` is historical: no live alert. */
    afterMin: number;
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
  // 24 h: a record downloaded within a day of its measurement is still clinically relevant and alerts
  // (saying how long ago it was measured); older records are a memory download. It also leaves room for
  // a meter whose time zone is unknown (its wall clock read as UTC is up to 12 h off; meter-time.ts).
  historical: Object.freeze({ afterMin: 24 * 60 }),
});

/** The id of the threshold rules, as historical findings name them. */
export const READING_RULES_ID = 'rule:reading-thresholds@1';

/**
 * Whether `r` was measured more than `afterMin` minutes before it reached the device, by its own
 * clock: a record from a meter's memory rather than a live measurement. Readings without `tMeter` are live.
 */
export function isHistoricalReading(r: Pick<Reading, 'tDevice' | 'tMeter' | 'context'>, afterMin: number = DEFAULT_RULE_OPTIONS.historical.afterMin): boolean {
  return r.tMeter !== undefined && (r.tDevice - r.tMeter > afterMin * 60_000 || meterClockAheadMs(r, afterMin) > 0);
}

/** The largest UTC offset there is (+14 h, Kiribati): a meter clock of unknown zone read as UTC can be this far ahead. */
const MAX_ZONE_AHEAD_MS = 14 * 3_600_000;

/**
 * How far (ms) a reading's meter time is ahead of the device clock beyond what can be a fresh reading, or 0:
 * more than `afterMin` (the historical limit, 24 h), plus the largest UTC offset unless the time was
 * converted by the meter's Current Time, its stated UTC offset or a configured zone (a meter that says nothing of
 * its zone: `zone-unknown`). Such a reading was not measured in the future: its meter's
 * clock is far off, and its time says nothing, so it is treated as history (no live alert;
 * `meter-clock-ahead` says so, once per sensor). A clock a little fast (a meter not set back at the end of
 * summer time: 1 h) keeps its live alerts, which say how far ahead it is (`measuredWhen`).
 */
export function meterClockAheadMs(r: Pick<Reading, 'tDevice' | 'tMeter' | 'context'>, afterMin: number = DEFAULT_RULE_OPTIONS.historical.afterMin): number {
  if (r.tMeter === undefined) return 0;
  const ahead = r.tMeter - r.tDevice;
  const basis = r.context?.[METER_TIME_CONTEXT.basis];
  const zoneKnown = basis === 'current-time-service' || basis === 'stated-offset' || basis === 'configured-zone';
  return ahead > afterMin * 60_000 + (zoneKnown ? 0 : MAX_ZONE_AHEAD_MS) ? ahead : 0;
}

/** A duration as "3 h" or "12 days". */
function ago(ms: number): string {
  const h = ms / 3_600_000;
  return h < 48 ? `${Math.round(h * 10) / 10} h` : `${Math.round(h / 24)} days`;
}

/** A duration as "45 min", "3 h 10 min", "2 h", "365 days". */
function duration(ms: number): string {
  if (Math.abs(ms) >= 48 * 3_600_000) return `${Math.round(Math.abs(ms) / 86_400_000)} days`;
  const minutes = Math.round(Math.abs(ms) / 60_000);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h === 0 ? `${m} min` : m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** A reading measured this long (ms) before it arrived, or longer, is said to be past in alert texts. */
export const LATE_READING_MS = 15 * 60_000;

/**
 * When a reading was measured, for the text of a live alert raised as it arrives: empty for a reading
 * without a meter time or measured within `LATE_READING_MS` of its arrival; otherwise
 * `measured 3 h 10 min ago (meter time 6 Dec 11:05)` (the age from the corrected meter time, the meter's
 * own wall clock), or, when the meter's time zone is unknown, the meter time and that its age is unknown.
 */
export function measuredWhen(r: Pick<Reading, 'tDevice' | 'tMeter' | 'context'>): string {
  if (r.tMeter === undefined) {
    // A CGM record this device dated from its time offset (ble-cgm.ts CgmRecordClock): a burst after a link loss.
    const measured = cgmMeasuredAt(r);
    return measured !== undefined && r.tDevice - measured > LATE_READING_MS ? `measured ${duration(r.tDevice - measured)} ago (sent late by the CGM)` : '';
  }
  const age = r.tDevice - r.tMeter;
  if (Math.abs(age) <= LATE_READING_MS) return '';
  const meterTime = meterClockText(r, r.tDevice) ?? new Date(r.tMeter).toISOString();
  if (meterTimeZoneUnknown(r)) return `measured at meter time ${meterTime} (the meter's time zone is unknown, so how long ago is not known: it may be hours old)`;
  if (age < 0) return `measured at meter time ${meterTime}, ${duration(age)} ahead of this device's clock (check the meter's clock)`;
  return `measured ${duration(age)} ago (meter time ${meterTime})`;
}

/** `2026-01-01T10:00:00.000Z (meter time 1 Jan 05:00)`, with `time zone unknown` when it is: a historical reading's time. */
function meterDated(r: Pick<Reading, 'context' | 'tDevice'>, tMeter: number): string {
  const wall = r.context?.[METER_TIME_CONTEXT.clock] !== undefined ? meterClockText(r, r.tDevice) : undefined;
  const notes = [...(wall !== undefined ? [`meter time ${wall}`] : []), ...(meterTimeZoneUnknown(r) ? ['time zone unknown: read as UTC'] : [])];
  return `${new Date(tMeter).toISOString()}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
}

/** Glucose readings in mmol/L are converted with this factor. */
const MG_DL_PER_MMOL_L = 18.016;

export interface RuleOutput {
  findings: Finding[];
  alerts: Alert[];
}

export interface RuleEngine {
  /** Evaluates one reading. Readings of types other than `glucose` and `heart-rate` give nothing; historical readings give findings, never alerts. */
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

/** The alert (severity 2) of a heart-rate strap that reports no skin contact; its readings raise no rate alert meanwhile. */
export const HEART_RATE_CONTACT_LOST = 'heart-rate-contact-lost';

export function createRuleEngine(options: RuleEngineOptionsInput = {}): RuleEngine {
  const o: RuleEngineOptions = {
    glucose: { ...DEFAULT_RULE_OPTIONS.glucose, ...options.glucose },
    heartRate: { ...DEFAULT_RULE_OPTIONS.heartRate, ...options.heartRate },
    historical: { ...DEFAULT_RULE_OPTIONS.historical, ...options.historical },
  };
  const rulesSha256 = sha256Hex(canonicalJson({ id: READING_RULES_ID, ...o }));
  /** Live episodes per sensor, and separately the episodes of historical readings. */
  const states = new Map<string, SensorState>();
  const historicalStates = new Map<string, SensorState>();
  const stateOf = (r: Reading): SensorState => {
    const map = isHistoricalReading(r, o.historical.afterMin) ? historicalStates : states;
    const existing = map.get(r.sensor);
    if (existing !== undefined) return existing;
    const created: SensorState = { fired: new Set(), tachyRun: 0 };
    map.set(r.sensor, created);
    return created;
  };

  /** Sensors that already raised their `historical-severe-reading` alert, and their `meter-clock-ahead` alert. */
  const severeHistory = new Set<string>();
  const clockAhead = new Set<string>();

  /**
   * Raises `kind` unless it already fired in this episode; for a historical reading, a finding instead
   * of an alert. `message(when)` is the text, `when` what `measuredWhen` says of a live reading ('' for history).
   */
  const raise = (s: SensorState, out: RuleOutput, r: Reading, kind: string, severity: AlertSeverity, message: (when: string) => string) => {
    if (s.fired.has(kind)) return;
    s.fired.add(kind);
    if (r.tMeter === undefined || !isHistoricalReading(r, o.historical.afterMin)) {
      out.alerts.push({ kind, severity, message: message(measuredWhen(r)), t: r.tDevice, sensor: r.sensor });
      return;
    }
    if (severity === 3 && !severeHistory.has(r.sensor)) {
      severeHistory.add(r.sensor);
      const ahead = meterClockAheadMs(r, o.historical.afterMin);
      // With the meter's Current Time the age is measured against the meter's own clock: a wrong clock cannot make a fresh reading look old.
      const clockAdvice =
        ahead > 0
          ? ' It may be a current reading: treat it as current, and set the meter\'s clock.'
          : r.context?.[METER_TIME_CONTEXT.basis] === 'current-time-service'
            ? ''
            : " If it was just measured, the meter's clock is wrong: treat it as current and set the clock.";
      const when = ahead > 0 ? `dated ${meterDated(r, r.tMeter)}, ${duration(ahead)} ahead of this device's clock` : `measured ${meterDated(r, r.tMeter)}, ${ago(r.tDevice - r.tMeter)} before it was received`;
      out.alerts.push({
        kind: 'historical-severe-reading',
        severity: 2,
        t: r.tDevice,
        sensor: r.sensor,
        message: `A reading from the memory of ${r.sensor}, ${when}, would have been a severity-3 alert: ${message('')}${clockAdvice} Further old readings are stored as history without alerts.`,
      });
    }
    const record = r.meterRecord !== undefined ? `record ${r.meterRecord}, ` : '';
    out.findings.push({
      kind: `${r.type}-historical-out-of-range`,
      label: kind,
      value: r.value,
      probability: 1,
      t: r.tMeter,
      evidence: `historical reading (${record}measured ${meterDated(r, r.tMeter)}, received ${new Date(r.tDevice).toISOString()}); no live alert (would have been severity ${severity}): ${message('')}`,
      modelId: READING_RULES_ID,
      modelSha256: rulesSha256,
      inputQuality: 1,
      qualityFlags: ['historical'],
    });
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
    // `Glucose reading 45 mg/dL, measured 3 h 10 min ago (meter time 6 Dec 11:05), is below ...` for a late reading.
    const shown = (when: string) => `${Math.round(value)} mg/dL${when ? `, ${when},` : ''}`;
    if (value < g.lowLevel2) {
      s.fired.add('hypoglycaemia-level-1'); // the level 2 alert covers level 1 for this episode
      raise(s, out, r, 'hypoglycaemia-level-2', 3, (when) => `Glucose reading ${shown(when)} is below ${g.lowLevel2} mg/dL; review by a clinician.`);
    } else if (value < g.lowLevel1) {
      raise(s, out, r, 'hypoglycaemia-level-1', 2, (when) => `Glucose reading ${shown(when)} is below ${g.lowLevel1} mg/dL; review by a clinician.`);
    } else if (value > g.high) {
      raise(s, out, r, 'hyperglycaemia', 2, (when) => `Glucose reading ${shown(when)} is above ${g.high} mg/dL; review by a clinician.`);
    }
  }

  function onHeartRate(s: SensorState, r: Reading, out: RuleOutput): void {
    if (!Number.isFinite(r.value)) return;
    if (r.context?.contact === 'not-detected') {
      // A strap that reports its sensor contact as not detected (HRS flags bits 1-2 = 2) is off the skin:
      // what it sends (often 0) is not the patient's heart rate. Warned once per episode, as an ECG lead-off.
      s.tachyRun = 0;
      raise(s, out, r, HEART_RATE_CONTACT_LOST, 2, () => `${r.sensor} reports no skin contact: its heart rate (${Math.round(r.value)} /min) is not evaluated until contact is back; check the strap.`);
      return;
    }
    s.fired.delete(HEART_RATE_CONTACT_LOST);
    const h = o.heartRate;
    if (r.value <= h.rearm.max) s.fired.delete('tachycardia');
    if (r.value >= h.rearm.min) s.fired.delete('bradycardia');
    s.tachyRun = r.value > h.tachy ? s.tachyRun + 1 : 0;
    if (s.tachyRun >= h.tachyReadings) {
      raise(s, out, r, 'tachycardia', 2, (when) => `Heart rate above ${h.tachy} /min for ${s.tachyRun} consecutive readings${when ? `, the last ${when}` : ''}; review by a clinician.`);
    }
    if (r.value < h.brady) {
      raise(s, out, r, 'bradycardia', 3, (when) => `Heart rate reading ${Math.round(r.value)} /min${when ? `, ${when},` : ''} is below ${h.brady} /min; review by a clinician.`);
    }
  }

  /** The first reading of a sensor whose meter clock is ahead: one `meter-clock-ahead` alert (severity 2). */
  function checkClock(r: Reading, out: RuleOutput): void {
    const ahead = meterClockAheadMs(r, o.historical.afterMin);
    if (ahead === 0 || clockAhead.has(r.sensor) || r.tMeter === undefined) return;
    clockAhead.add(r.sensor);
    out.alerts.push({
      kind: 'meter-clock-ahead',
      severity: 2,
      t: r.tDevice,
      sensor: r.sensor,
      message: `The clock of ${r.sensor} is ${duration(ahead)} ahead of this device's (a reading dated ${meterDated(r, r.tMeter)}): its readings cannot be placed in time, so they are stored as history and raise no live alert. Set the meter's clock, and ask when a reading was taken before acting on it.`,
    });
  }

  return {
    onReading(r) {
      const out: RuleOutput = { findings: [], alerts: [] };
      checkClock(r, out);
      if (r.type === 'glucose') onGlucose(stateOf(r), r, out);
      else if (r.type === 'heart-rate') onHeartRate(stateOf(r), r, out);
      return out;
    },
  };
}
