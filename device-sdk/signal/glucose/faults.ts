/**
 * Sensor-fault flags on a glucose trace (sorted by time). These are annotations for the reader of the
 * trace, never corrections: the readings are kept as they are (STYLE rule 10).
 *
 * `gap`, `flat-line` and `compression-low` describe a continuous sensor (a CGM that stopped sending,
 * stuck, or was pressed on): they are looked for only when `sensorType` is `cgm` (the default). A
 * spot-check meter (fingersticks: a BLE Glucose profile meter, a serial-line meter) is read when the
 * patient measures, so hours between readings, equal values or a fast fall between two fingersticks
 * are not sensor faults; only `sensor-limit` applies to it, and only as the meter states it.
 *
 * - `gap`: two consecutive readings further apart than `maxGapMin`.
 * - `flat-line`: readings spanning at least `flatMin` minutes whose values differ by at most
 *   `flatRange` mg/dL: a stuck sensor or a transmitter repeating its last value.
 * - `compression-low`: a brief low typical of pressure on the sensor (lying on it at night): the
 *   trace drops at `compressionRate` mg/dL/min or faster from the level of the previous `compressionLookMin`
 *   minutes into < 70 mg/dL, stays there at most `compressionMaxMin` minutes, and recovers to within
 *   `compressionRecover` mg/dL of the previous level at the same speed within `compressionLookMin`
 *   minutes. (Physiological lows fall and recover far more slowly; Baysal et al., J Diabetes Sci
 *   Technol 8(6), 2014, describe the artefact.)
 * - `sensor-limit`: a reading at or beyond the sensor's reporting range, the true value unknown. A CGM:
 *   <= `low` (40) or >= `high` (400) mg/dL, where receivers show LO/HI, or a point the CGM itself
 *   marked out of its range (`deviceLimit`). A meter: only a point the meter marked (`deviceLimit`:
 *   its Sensor Status Annunciation said "result lower/higher than the device can process", GLS; shown
 *   as LO/HI). Meters measure from about 10-20 to 600 mg/dL, so a fingerstick of 13-40 or 400-600 mg/dL
 *   is a measured value, not a limit, and the CGM thresholds are not applied to it.
 */
import { type GlucosePoint, MS_PER_MIN } from './types.js';

/**
 * The sensor-status flags (a reading's context `sensorStatus`, comma-separated, as the BLE drivers
 * write it) by which a device says a result was beyond what it can measure: Glucose Measurement
 * (GLS Sensor Status Annunciation, `device-sdk/protocols/ble/glucose.ts`) and CGM Measurement
 * (annunciation octet 2, `device-sdk/protocols/ble/cgm.ts`).
 */
export const DEVICE_RANGE_FLAGS: Readonly<Record<'low' | 'high', readonly string[]>> = Object.freeze({
  low: Object.freeze(['resultTooLow', 'resultBelowDeviceRange']),
  high: Object.freeze(['resultTooHigh', 'resultAboveDeviceRange']),
});

/** `low`/`high` when a reading's context says the device could not measure the result (LO/HI), else undefined. */
export function deviceRangeLimit(context: Readonly<Record<string, string>> | undefined): 'low' | 'high' | undefined {
  const status = context?.sensorStatus;
  if (status === undefined) return undefined;
  const flags = status.split(',');
  if (flags.some((f) => DEVICE_RANGE_FLAGS.low.includes(f))) return 'low';
  if (flags.some((f) => DEVICE_RANGE_FLAGS.high.includes(f))) return 'high';
  return undefined;
}

export type SensorFaultKind = 'gap' | 'flat-line' | 'compression-low' | 'sensor-limit';

/** `cgm`: a continuous glucose monitor; `meter`: a spot-check (fingerstick) meter. */
export type GlucoseSensorType = 'cgm' | 'meter';

/** The faults that only a continuous sensor can have. */
export const CONTINUOUS_ONLY_FAULTS: readonly SensorFaultKind[] = Object.freeze(['gap', 'flat-line', 'compression-low']);

export interface SensorFault {
  kind: SensorFaultKind;
  /** First and last affected time (ms); for a gap the readings on either side. */
  start: number;
  end: number;
}

export interface SensorFaultOptions {
  maxGapMin: number;
  flatMin: number;
  flatRange: number;
  compressionRate: number;
  compressionMaxMin: number;
  compressionLookMin: number;
  compressionRecover: number;
  /** A CGM's reporting range (mg/dL): at or beyond it is `sensor-limit`. Never applied to a meter. */
  low: number;
  high: number;
}

export const DEFAULT_SENSOR_FAULT_OPTIONS: Readonly<SensorFaultOptions> = Object.freeze({
  maxGapMin: 15,
  flatMin: 90,
  flatRange: 1,
  compressionRate: 1.5,
  compressionMaxMin: 60,
  compressionLookMin: 30,
  compressionRecover: 20,
  low: 40,
  high: 400,
});

export function sensorFaults(trace: readonly GlucosePoint[], options: Partial<SensorFaultOptions> = {}, sensorType: GlucoseSensorType = 'cgm'): SensorFault[] {
  const all = continuousAndLimitFaults(trace, { ...DEFAULT_SENSOR_FAULT_OPTIONS, ...options }, sensorType);
  return sensorType === 'cgm' ? all : all.filter((f) => !CONTINUOUS_ONLY_FAULTS.includes(f.kind));
}

/** At the sensor's limit: marked so by the device, or (a CGM only) at or beyond its reporting range. */
function atLimit(p: GlucosePoint, o: SensorFaultOptions, sensorType: GlucoseSensorType): boolean {
  if (p.deviceLimit !== undefined) return true;
  return sensorType === 'cgm' && (p.gl <= o.low || p.gl >= o.high);
}

function continuousAndLimitFaults(trace: readonly GlucosePoint[], o: SensorFaultOptions, sensorType: GlucoseSensorType): SensorFault[] {
  const faults: SensorFault[] = [];
  const at = (i: number) => trace[i] as GlucosePoint;
  const n = trace.length;
  // Gaps.
  for (let i = 1; i < n; i++) if (at(i).t - at(i - 1).t > o.maxGapMin * MS_PER_MIN) faults.push({ kind: 'gap', start: at(i - 1).t, end: at(i).t });
  // Sensor limits, merged over consecutive readings.
  for (let i = 0; i < n; i++) {
    if (!atLimit(at(i), o, sensorType)) continue;
    const last = faults[faults.length - 1];
    if (last?.kind === 'sensor-limit' && last.end === at(i - 1)?.t) last.end = at(i).t;
    else faults.push({ kind: 'sensor-limit', start: at(i).t, end: at(i).t });
  }
  // Flat lines: maximal runs without a gap whose range stays within flatRange.
  let a = 0;
  while (a < n) {
    let lo = at(a).gl;
    let hi = lo;
    let b = a;
    while (b + 1 < n) {
      const next = at(b + 1);
      if (next.t - at(b).t > o.maxGapMin * MS_PER_MIN) break;
      const nlo = Math.min(lo, next.gl);
      const nhi = Math.max(hi, next.gl);
      if (nhi - nlo > o.flatRange) break;
      lo = nlo;
      hi = nhi;
      b++;
    }
    if (at(b).t - at(a).t >= o.flatMin * MS_PER_MIN) {
      faults.push({ kind: 'flat-line', start: at(a).t, end: at(b).t });
      a = b + 1;
    } else {
      a++;
    }
  }
  // Compression lows: short runs below 70 entered and left fast.
  const look = o.compressionLookMin * MS_PER_MIN;
  for (let i = 0; i < n; i++) {
    if (at(i).gl >= 70 || (i > 0 && at(i - 1).gl < 70 && at(i).t - at(i - 1).t <= o.maxGapMin * MS_PER_MIN)) continue;
    let j = i;
    while (j + 1 < n && at(j + 1).gl < 70 && at(j + 1).t - at(j).t <= o.maxGapMin * MS_PER_MIN) j++;
    if (at(j).t - at(i).t > o.compressionMaxMin * MS_PER_MIN) continue;
    let nadir = i;
    for (let k = i; k <= j; k++) if (at(k).gl < at(nadir).gl) nadir = k;
    let before: GlucosePoint | undefined;
    for (let k = i - 1; k >= 0 && at(i).t - at(k).t <= look; k--) if (before === undefined || at(k).gl > before.gl) before = at(k);
    let after: GlucosePoint | undefined;
    for (let k = j + 1; k < n && at(k).t - at(j).t <= look; k++) if (after === undefined || at(k).gl > after.gl) after = at(k);
    if (before === undefined || after === undefined) continue;
    const fall = (before.gl - at(nadir).gl) / ((at(nadir).t - before.t) / MS_PER_MIN);
    const rise = (after.gl - at(nadir).gl) / ((after.t - at(nadir).t) / MS_PER_MIN);
    if (fall >= o.compressionRate && rise >= o.compressionRate && after.gl >= before.gl - o.compressionRecover) {
      faults.push({ kind: 'compression-low', start: at(i).t, end: at(j).t });
    }
    i = j;
  }
  return faults.sort((x, y) => x.start - y.start || x.kind.localeCompare(y.kind));
}
