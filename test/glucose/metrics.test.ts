import { describe, expect, it } from 'vitest';
import { CgmCsvError, checkGlucoseRange, mgdlLike, mmolLike, parseCgmCsv, parseCgmTime, tracesById } from '../../device-sdk/signal/glucose/csv.js';
import { MedgeError } from '../../device-sdk/errors.js';
import { decodeGlucoseMeasurement } from '../../device-sdk/protocols/ble/glucose.js';
import { glucoseContext } from '../../device-sdk/sensors/ble-glucose-meter.js';
import { deviceRangeLimit, sensorFaults } from '../../device-sdk/signal/glucose/faults.js';
import { cgmMetrics, hypoEvents } from '../../device-sdk/signal/glucose/metrics.js';
import { rateOfChange, slope, TREND_ARROWS, trendLabel, trendOf } from '../../device-sdk/signal/glucose/trend.js';
import type { GlucosePoint } from '../../device-sdk/signal/glucose/types.js';

const MIN = 60_000;
const T0 = Date.UTC(2024, 0, 1);
/** Readings every 5 minutes from T0. */
const every5 = (values: number[]): GlucosePoint[] => values.map((gl, i) => ({ t: T0 + i * 5 * MIN, gl }));
/** Readings at the given minutes. */
const at = (pairs: [number, number][]): GlucosePoint[] => pairs.map(([m, gl]) => ({ t: T0 + m * MIN, gl }));

describe('consensus CGM metrics (hand-computed vectors)', () => {
  // 12 readings, 5 min apart: 60 min. < 70: 7 readings, < 54: 4, > 180: 2 (180 is in range), > 250: 1, 70-180: 3.
  const trace = every5([100, 60, 60, 60, 100, 50, 50, 50, 50, 200, 260, 180]);

  it('time in ranges, mean, SD, CV and GMI on a regular trace', () => {
    const m = cgmMetrics(trace);
    expect(m.readings).toBe(12);
    expect(m.tir).toBeCloseTo((100 * 3) / 12, 10);
    expect(m.tbr70).toBeCloseTo((100 * 7) / 12, 10);
    expect(m.tbr54).toBeCloseTo((100 * 4) / 12, 10);
    expect(m.tar180).toBeCloseTo((100 * 2) / 12, 10);
    expect(m.tar250).toBeCloseTo((100 * 1) / 12, 10);
    expect(m.mean).toBeCloseTo(1220 / 12, 10);
    expect(m.sd).toBeCloseTo(71.83735839106322, 8); // sample SD
    expect(m.cv).toBeCloseTo(70.65969677809497, 8);
    expect(m.gmi).toBeCloseTo(3.31 + 0.02392 * (1220 / 12), 10);
    expect(m.dataSufficiency).toBeCloseTo(100, 10);
    expect(m.days).toBeCloseTo(60 / 1440, 10);
  });

  it('hypoglycaemic events: >= 15 min below starts, < 15 min above does not end, >= 15 min above ends', () => {
    const m = cgmMetrics(trace);
    // Level 1: 60,60,60 (15 min) starts it at minute 5; the single 100 (5 min) does not end it; 50 x 4 extend it; 200,260,180 (15 min) end it.
    expect(hypoEvents(trace, 70, 1)).toEqual([{ level: 1, start: T0 + 5 * MIN, end: T0 + 45 * MIN, nadir: 50 }]);
    // Level 2: 50 x 4 from minute 25.
    expect(hypoEvents(trace, 54, 2)).toEqual([{ level: 2, start: T0 + 25 * MIN, end: T0 + 45 * MIN, nadir: 50 }]);
    expect([m.hypoEventsLevel1, m.hypoEventsLevel2]).toEqual([1, 1]);
    // Two readings below (10 min) are not an event; two runs separated by 15 min above are two events.
    expect(hypoEvents(every5([100, 60, 60, 100, 100]), 70, 1)).toEqual([]);
    expect(hypoEvents(every5([60, 60, 60, 90, 90, 90, 65, 65, 65]), 70, 1).map((e) => e.start)).toEqual([T0, T0 + 30 * MIN]);
  });

  it('weights readings by time on irregular sampling and treats long intervals as gaps', () => {
    // Weights: 2, 10, 1, 15 (not a gap: <= 15 min), 5 (last: nominal) = 33 min.
    const irregular = at([
      [0, 100],
      [2, 100],
      [12, 50],
      [13, 50],
      [28, 200],
    ]);
    const m = cgmMetrics(irregular);
    expect(m.tbr54).toBeCloseTo((100 * 16) / 33, 10);
    expect(m.tar180).toBeCloseTo((100 * 5) / 33, 10);
    expect(m.mean).toBeCloseTo((2 * 100 + 10 * 100 + 50 + 15 * 50 + 5 * 200) / 33, 10);
    // 16 min below 54 from minute 12: one level 2 event.
    expect(hypoEvents(irregular, 54, 2)).toEqual([{ level: 2, start: T0 + 12 * MIN, end: T0 + 28 * MIN, nadir: 50 }]);
    // A 30-minute gap: the reading before it counts 5 min, and breaks the run below 70.
    const gappy = at([
      [0, 100],
      [5, 60],
      [10, 60],
      [40, 60],
      [45, 100],
    ]);
    const g = cgmMetrics(gappy);
    expect(g.tbr70).toBeCloseTo(60, 10); // 15 of 25 min
    expect(g.dataSufficiency).toBeCloseTo(50, 10); // 25 of 50 min
    expect(g.hypoEventsLevel1).toBe(0);
  });

  it('ignores input order, duplicate times and non-finite values, and never mutates the input', () => {
    const shuffled = [...trace].reverse();
    const copy = JSON.stringify(shuffled);
    const withJunk = [...shuffled, { t: trace[0]!.t, gl: 999 }, { t: T0 + 3 * MIN, gl: Number.NaN }];
    expect(cgmMetrics(withJunk).mean).toBeCloseTo(cgmMetrics(trace).mean, 10);
    expect(JSON.stringify(shuffled)).toBe(copy);
    expect(() => cgmMetrics([])).toThrow(RangeError);
  });
});

describe('rate of change and trend arrows', () => {
  it('least-squares slope in mg/dL/min on irregular times', () => {
    expect(slope(at([[0, 100], [5, 110], [10, 120]]))).toBeCloseTo(2, 10);
    expect(slope(at([[0, 100], [1, 99], [7, 88]]))).toBeCloseTo(-151 / 86, 10); // sxy -151/3, sxx 86/3
    expect(slope(at([[0, 100]]))).toBeUndefined();
  });

  it('uses only the last 15 minutes and stops at a gap', () => {
    const trace = at([[0, 300], [20, 100], [25, 95], [30, 90]]);
    expect(rateOfChange(trace)).toBeCloseTo(-1, 10);
    expect(rateOfChange(at([[0, 100], [20, 90]]))).toBeUndefined(); // 20 min apart: no 15-min window
  });

  it('bands as CGM receivers show them, edges in the slower band', () => {
    expect([3.5, 3, 2.5, 2, 1.5, 1, 0, -1, -1.5, -2, -2.5, -3, -3.5].map(trendLabel)).toEqual([
      'rising-rapidly',
      'rising',
      'rising',
      'rising-slowly',
      'rising-slowly',
      'steady',
      'steady',
      'steady',
      'falling-slowly',
      'falling-slowly',
      'falling',
      'falling',
      'falling-rapidly',
    ]);
    expect(trendOf(at([[0, 100], [5, 90], [10, 80]]))).toEqual({ rate: -2, label: 'falling-slowly', arrow: TREND_ARROWS['falling-slowly'] });
  });
});

describe('sensor-fault flags', () => {
  it('flags gaps, flat lines and sensor limits', () => {
    const flat = every5(Array.from({ length: 20 }, () => 100)); // 95 min of 100
    const trace = [...flat, { t: T0 + 200 * MIN, gl: 40 }, { t: T0 + 205 * MIN, gl: 120 }];
    expect(sensorFaults(trace)).toEqual([
      { kind: 'flat-line', start: T0, end: T0 + 95 * MIN },
      { kind: 'gap', start: T0 + 95 * MIN, end: T0 + 200 * MIN },
      { kind: 'sensor-limit', start: T0 + 200 * MIN, end: T0 + 200 * MIN },
    ]);
    // 60 min of 100 is not a flat line yet; a steady physiological trace is not flagged.
    expect(sensorFaults(every5(Array.from({ length: 13 }, () => 100)))).toEqual([]);
    expect(sensorFaults(every5(Array.from({ length: 30 }, (_, i) => 100 + 10 * Math.sin(i / 4))))).toEqual([]);
  });

  it("keeps only the sensor limits the meter itself states on a spot-check meter's trace (LO/HI), not the CGM's 40/400 thresholds", () => {
    const flat = every5(Array.from({ length: 20 }, () => 100));
    // Fingersticks of 13, 40 and 450 mg/dL are measured values (meters read about 10-600 mg/dL): no fault.
    const measured = [...flat, { t: T0 + 200 * MIN, gl: 40 }, { t: T0 + 205 * MIN, gl: 13 }, { t: T0 + 210 * MIN, gl: 450 }, { t: T0 + 215 * MIN, gl: 120 }];
    expect(sensorFaults(measured, {}, 'meter')).toEqual([]);
    expect(sensorFaults(every5([120, 120, 120, 80, 55, 52, 60, 110, 118, 120]), {}, 'meter')).toEqual([]);
    // The meter said LO (result lower than it can process) twice in a row, later HI.
    const limits: GlucosePoint[] = [...flat, { t: T0 + 200 * MIN, gl: 20, deviceLimit: 'low' }, { t: T0 + 205 * MIN, gl: 20, deviceLimit: 'low' }, { t: T0 + 240 * MIN, gl: 90 }, { t: T0 + 300 * MIN, gl: 600, deviceLimit: 'high' }];
    expect(sensorFaults(limits, {}, 'meter')).toEqual([
      { kind: 'sensor-limit', start: T0 + 200 * MIN, end: T0 + 205 * MIN },
      { kind: 'sensor-limit', start: T0 + 300 * MIN, end: T0 + 300 * MIN },
    ]);
  });

  it('flags a CGM reading its own status marks out of range, as well as its 40/400 thresholds', () => {
    const trace: GlucosePoint[] = [{ t: T0, gl: 100 }, { t: T0 + 5 * MIN, gl: 45, deviceLimit: 'low' }, { t: T0 + 10 * MIN, gl: 100 }, { t: T0 + 15 * MIN, gl: 400 }];
    expect(sensorFaults(trace).filter((f) => f.kind === 'sensor-limit')).toEqual([
      { kind: 'sensor-limit', start: T0 + 5 * MIN, end: T0 + 5 * MIN },
      { kind: 'sensor-limit', start: T0 + 15 * MIN, end: T0 + 15 * MIN },
    ]);
  });

  it("reads a device's LO/HI from the sensor status a BLE driver writes into the reading context", () => {
    // Glucose Measurement 0x2A18: flags 0x0A (concentration, kg/L, status), seq 7, 2026-12-06 23:30:00,
    // 20 mg/dL (SFLOAT 0xB014 = 20e-5 kg/L), capillary whole blood from a finger, status 0x0040 (bit 6).
    const lo = decodeGlucoseMeasurement(Uint8Array.of(0x0a, 0x07, 0x00, 0xea, 0x07, 12, 6, 23, 30, 0, 0x14, 0xb0, 0x11, 0x40, 0x00));
    expect(deviceRangeLimit(glucoseContext(lo, undefined))).toBe('low');
    const hi = decodeGlucoseMeasurement(Uint8Array.of(0x0a, 0x07, 0x00, 0xea, 0x07, 12, 6, 23, 30, 0, 0x14, 0xb0, 0x11, 0x21, 0x00)); // bit 5 + battery low
    expect(deviceRangeLimit(glucoseContext(hi, undefined))).toBe('high');
    expect(deviceRangeLimit({ sensorStatus: 'batteryLow,sampleSizeInsufficient' })).toBeUndefined();
    expect(deviceRangeLimit({ source: 'cgm', sensorStatus: 'sessionStopped,resultAboveDeviceRange' })).toBe('high');
    expect(deviceRangeLimit(undefined)).toBeUndefined();
  });

  it('flags a fast drop and recovery as a compression low, not a slow physiological low', () => {
    const compression = every5([120, 120, 120, 80, 55, 52, 60, 110, 118, 120]);
    expect(sensorFaults(compression)).toEqual([{ kind: 'compression-low', start: T0 + 20 * MIN, end: T0 + 30 * MIN }]);
    const slow = every5([100, 96, 92, 88, 84, 80, 76, 72, 68, 65, 63, 62, 64, 67, 70, 74, 78]);
    expect(sensorFaults(slow)).toEqual([]);
  });
});

describe('CGM CSV', () => {
  it('reads GlucoBench rows, NA values, CRLF, and groups by subject sorted by time', () => {
    // Every time with its instant (a UTC offset, Z or epoch ms): a file does not mix them with local times.
    const rows = parseCgmCsv('"id","time","gl"\r\n"a",2024-01-01 00:05:00Z,110\r\n"a",2024-01-01 00:00:00+00:00,100\r\n"b",2024-01-01T00:00:00Z,NA\r\n"b",1704067500000,90\r\n');
    expect(rows.map((r) => [r.id, r.t, r.gl])).toEqual([
      ['a', T0 + 5 * MIN, 110],
      ['a', T0, 100],
      ['b', T0, Number.NaN],
      ['b', T0 + 5 * MIN, 90],
    ]);
    const traces = tracesById(rows);
    expect(traces.get('a')).toEqual([
      { t: T0, gl: 100 },
      { t: T0 + 5 * MIN, gl: 110 },
    ]);
    expect(traces.get('b')).toEqual([{ t: T0 + 5 * MIN, gl: 90 }]);
    expect(() => parseCgmCsv('id,when,gl\n')).toThrow(/id,time,gl/);
    expect(() => parseCgmCsv('id,time,gl\na,yesterday,1\n')).toThrow(/line 2/);
  });

  it('reads ISO 8601 times strictly (offsets, fractions, epoch ms) and refuses anything else with the line', () => {
    const t = (s: string) => parseCgmTime(s);
    expect(t('2024-01-01 00:00')).toBe(T0);
    expect(t('2024-01-01T00:00:00.500Z')).toBe(T0 + 500);
    expect(t('2024-01-01T01:30:00+01:30')).toBe(T0);
    expect(t('2023-12-31T19:00:00-0500')).toBe(T0);
    expect(t('1704067200000')).toBe(T0);
    for (const bad of ['notadate-3 03:42:12', '2014-02-30 10:00:00', '2024-13-01 00:00', '2024-01-01 24:00', '2024-01-01 10:60', '01/02/2024 10:00', '2024-01-01', '1704067200', '-5', '2024-01-01T00:00:00+25:00', 'Mon, 01 Jan 2024 00:00:00 GMT']) {
      expect(t(bad), bad).toBeNaN();
    }
    expect(() => parseCgmCsv('id,time,gl\na,2024-01-01 00:00,100\na,notadate-3 03:42:12,100\n')).toThrow(/line 3: unreadable time "notadate-3 03:42:12"/);
  });

  it('refuses non-positive, non-finite and malformed values, and conflicting duplicates naming both lines', () => {
    const csv = (gl: string) => `id,time,gl\na,2024-01-01 00:00,100\na,2024-01-01 00:05,${gl}\n`;
    for (const [gl, why] of [['-50', /line 3: glucose "-50" is not positive/], ['0', /not positive/], ['1e400', /not a finite number/], ['Infinity', /unreadable glucose/], ['0x5A', /unreadable glucose/], ['12 mg', /unreadable glucose/]] as const) {
      expect(() => parseCgmCsv(csv(gl)), gl).toThrow(why);
    }
    const error = (() => {
      try {
        parseCgmCsv('id,time,gl\na,2024-01-01 00:00Z,100\nb,2024-01-01 00:00Z,50\na,2024-01-01T00:00:00Z,NA\n');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(CgmCsvError);
    expect(error).toBeInstanceOf(MedgeError);
    expect(error).toMatchObject({ line: 4, otherLine: 2 });
    // Exact duplicates (also written differently) are one reading; another subject at the same time is not a duplicate.
    const rows = parseCgmCsv('id,time,gl\na,2024-01-01 00:00Z,100\na,1704067200000,100\nb,2024-01-01T00:00:00Z,50\n');
    expect(rows.map((r) => r.line)).toEqual([2, 3, 4]);
    expect(tracesById(rows).get('a')).toEqual([{ t: T0, gl: 100 }]);
  });

  it('bounds readings to 10-1000 mg/dL in the file\'s unit, and tells mg/dL from mmol/L both ways', () => {
    const rows = (...gl: number[]) => gl.map((g, i) => ({ id: 'a', time: '', t: T0 + i * 5 * MIN, gl: g, line: i + 2 }));
    expect(() => checkGlucoseRange(rows(100, 10, 1000, Number.NaN), 'mg/dL')).not.toThrow();
    expect(() => checkGlucoseRange(rows(9.9, 9.5), 'mg/dL')).toThrow(/line 2: subject "a": glucose 9\.9 mg\/dL is outside 10-1000 mg\/dL.*if the file is in mmol\/L give --units mmol\/L/);
    // Next to a reading that is not in doubt, it is a mmol/L reading mixed in: --units mmol/L for the file would be wrong.
    expect(() => checkGlucoseRange(rows(100, 9.9), 'mg/dL')).toThrow(/line 3: subject "a": .*outside 10-1000 mg\/dL.*its other readings are 35 mg\/dL or more: it looks like a mmol\/L reading \(178 mg\/dL\) mixed in; convert it to mg\/dL \(x 18\.016\) or write NA$/);
    expect(() => checkGlucoseRange(rows(5, 1001), 'mmol/L')).toThrow(/line 3: .*outside/);
    expect(() => checkGlucoseRange(rows(5, 0.6, 55), 'mmol/L')).not.toThrow();
    expect(() => checkGlucoseRange(rows(5, 100), 'mmol/L')).toThrow(/line 3: subject "a": glucose 100 mmol\/L is outside 0\.56-55\.5 mmol\/L.*leave out --units mmol\/L/);
    const mg = Array.from({ length: 20 }, (_, i) => 90 + i);
    expect(mgdlLike(mg)).toEqual({ median: 100, max: 109 });
    expect(mgdlLike(mg.map((v) => v / 18.016))).toBeUndefined();
    // Severe hyperglycaemia in mmol/L (median 27.8, but nothing above what a meter reads) is not mistaken for mg/dL.
    expect(mgdlLike(Array.from({ length: 20 }, (_, i) => 25 + i * 0.3))).toBeUndefined();
    expect(mgdlLike(mg.slice(0, 2))).toBeUndefined();
  });

  it('tells the units of a short meter log from 3 readings on, both ways', () => {
    // Nine mmol/L meter readings of 11-22 were read as mg/dL ("100 % below 54 mg/dL").
    const meter = [11, 13, 14.5, 16, 17, 18.2, 19, 20.5, 22];
    expect(mmolLike(meter)).toEqual({ median: 17, max: 22 });
    expect(mmolLike([5.2, 6.1, 4.8])).toEqual({ median: 5.2, max: 6.1 });
    expect(mgdlLike([90, 140, 210])).toEqual({ median: 140, max: 210 });
    // Not judged below 3 readings (a single check in a severe low is real); mg/dL logs with a low are not mmol/L.
    expect(mmolLike([20, 30])).toBeUndefined();
    expect(mgdlLike([90, 140])).toBeUndefined();
    expect(mmolLike([30, 45, 60])).toBeUndefined();
    expect(mmolLike([Number.NaN, 5.2, Number.NaN, 6.1])).toBeUndefined();
  });
});

describe('CGM CSV: exports that are not the GlucoBench layout', () => {
  const error = (text: string): CgmCsvError => {
    try {
      parseCgmCsv(text);
    } catch (e) {
      return e as CgmCsvError;
    }
    throw new Error('not refused');
  };

  it('refuses a row with more or fewer fields than the header, hinting at a decimal comma for one more', () => {
    // `5,3` is 5.3 mmol/L with a decimal comma; it was read as 5.
    expect(() => parseCgmCsv('id,time,gl\na,2024-01-01 10:05,5.1\na,2024-01-01 10:10,5,3\n')).toThrow(/^line 3: expected 3 fields as in the header, got 4: .*decimal comma.*5,3 for 5\.3.*semicolons/);
    expect(error('id,time,gl\na,2024-01-01 10:10,5,3,1\n').message).not.toMatch(/decimal comma/);
    expect(error('id,time,gl\na,2024-01-01 10:10\n').message).toMatch(/^line 2: expected 3 fields as in the header, got 2$/);
    // A comma inside a quoted field does not split it.
    expect(parseCgmCsv('"id","time","gl"\n"a,b",2024-01-01 00:00,100\n').map((r) => [r.id, r.gl])).toEqual([['a,b', 100]]);
  });

  it('names local time at a clock change as the likely cause of a conflicting duplicate, and still refuses it', () => {
    const local = error('id,time,gl\na,2024-10-27 02:30,100\na,2024-10-27 02:30,120\n');
    expect(local).toMatchObject({ line: 3, otherLine: 2 });
    expect(local.message).toMatch(/two different readings at "2024-10-27 02:30": 120 here and 100 on line 2; likely cause: an export in local time without a UTC offset repeats an hour at the autumn clock change or after time-zone travel; export the times with a UTC offset .*, or remove one of the two rows/);
    // With offsets on both rows the clock change is not the cause.
    const fixed = error('id,time,gl\na,2024-10-27T02:30:00+02:00,100\na,2024-10-27T00:30:00Z,120\n');
    expect(fixed.message).toMatch(/120 here and 100 on line 2; remove the wrong one of the two rows/);
    expect(fixed.message).not.toMatch(/clock change/);
  });

  it('reads a one-digit hour, a lowercase t and a zero-fraction epoch; refuses slash, year-last and AM/PM dates with the accepted format', () => {
    const t = (s: string) => parseCgmTime(s);
    const at805 = Date.UTC(2023, 0, 15, 8, 5);
    expect(t('2023-01-15 8:05')).toBe(at805);
    expect(t('2023-01-15t08:05')).toBe(at805);
    expect(t('2023-01-15t08:05:00z')).toBe(at805);
    expect(t('1673769900000.0')).toBe(at805);
    for (const bad of ['2023-01-15 8:5', '2023-01-15 108:05', '2023-01-15 8', '1673769900000.5', '2023-01-15x08:05']) expect(t(bad), bad).toBeNaN();
    const refusal = (time: string) => error(`id,time,gl\na,${time},100\n`).message;
    const FORMAT = /medge reads YYYY-MM-DD HH:MM\[:SS\] on a 24-hour clock with an optional UTC offset \(Z or \+HH:MM\)/;
    expect(refusal('2023/01/15 08:05:00')).toMatch(/^line 2: unreadable time "2023\/01\/15 08:05:00": slashes or dots in the date; /);
    expect(refusal('1/15/2023 8:05')).toMatch(/unreadable time "1\/15\/2023 8:05": a date with the year last \(day and month order depend on the locale/);
    expect(refusal('01-15-2023 08:05 AM')).toMatch(/a date with the year last .* and a 12-hour clock \(AM\/PM\)/);
    // A two-digit year is not taken for "year last" (23-01-15 reads as 2023-01-15 more often than as 23 January 2015).
    expect(refusal('23-01-15 08:05')).toMatch(/unreadable time "23-01-15 08:05": a two-digit year \(which number is the year, and which the day, is a guess: 23-01-15 may be 2023-01-15 or 23 January 2015\);/);
    expect(refusal('1/2/23 08:05')).toMatch(/a two-digit year/);
    expect(refusal('23-01-15T08:05')).toMatch(/a two-digit year/);
    expect(refusal('15.01.23 08:05')).toMatch(/a two-digit year/);
        expect(refusal('2023-01-15 8:05 pm')).toMatch(/unreadable time "2023-01-15 8:05 pm": a 12-hour clock \(AM\/PM\)/);
    for (const time of ['2023/01/15 08:05:00', '1/15/2023 8:05', '01-15-2023 08:05 AM']) expect(refusal(time), time).toMatch(FORMAT);
    expect(refusal('1673769900000.5')).toMatch(/epoch milliseconds with a fraction/);
    expect(refusal('1673769900.0')).toMatch(/looks like epoch seconds/);
  });

  it('reads NaN and null as missing readings, and refuses Low/High with the sensor limits', () => {
    const rows = parseCgmCsv('id,time,gl\na,2024-01-01 00:00,NaN\na,2024-01-01 00:05,null\na,2024-01-01 00:10,NULL\na,2024-01-01 00:15,nan\na,2024-01-01 00:20,"null"\na,2024-01-01 00:25,100\n');
    expect(rows.map((r) => r.gl)).toEqual([Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN, 100]);
    expect(tracesById(rows).get('a')).toEqual([{ t: T0 + 25 * MIN, gl: 100 }]);
    for (const mark of ['Low', 'High', 'HIGH', 'lo']) {
      expect(error(`id,time,gl\na,2024-01-01 00:00,${mark}\n`).message, mark).toMatch(new RegExp(`^line 2: unreadable glucose "${mark}": a CGM writes Low/High .*sensor's limit \\(a Dexcom's: Low 40, High 400 mg/dL.*or NA`));
    }
  });
});
