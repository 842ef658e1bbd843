import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeForecast, forecastFeatures } from '../../device-sdk/signal/glucose/forecast.js';
import { DETECTOR_SPEC, detectorFeatures, HypoAlertLogic, type HypoAlertPolicy, hypoAlertStates } from '../../device-sdk/signal/glucose/hypo-detector.js';
import type { GlucosePoint } from '../../device-sdk/signal/glucose/types.js';
import { gatedRuleAlertTimes, ruleAlertTimes, scoreAlerts, sumScores } from '../../models/glucose-forecast/evaluate.js';

const MIN = 60_000;
const policy: HypoAlertPolicy = { probability: 0.5, release: 0.3, holdoffMin: 30, rearmLevel: 80, rearmAfterMin: 120 };

/** A regular 5-minute trace of `values`, starting at minute `start`. */
const trace = (values: number[], start = 0): GlucosePoint[] => values.map((gl, k) => ({ t: (start + 5 * k) * MIN, gl }));

describe('predicted-hypo alert logic (device side)', () => {
  it('turns on at the probability threshold and stays on down to the release level (hysteresis)', () => {
    const l = new HypoAlertLogic(policy);
    const probs = [0.2, 0.49, 0.5, 0.4, 0.31, 0.3, 0.29, 0.45, 0.55];
    expect(probs.map((p, k) => l.step(k * 5 * MIN, 100, p))).toEqual([false, false, true, true, true, true, false, false, true]);
  });

  it('never alerts at a reading below 70, nor during an ongoing event, nor in the hold-off after it until a reading >= the re-arm level', () => {
    const l = new HypoAlertLogic(policy);
    // minute: 0    5    10   15   20   25   30   35   40   45   50   55   60   65   70   75   80
    const gl = [90, 75, 68, 66, 65, 72, 74, 69, 72, 73, 74, 75, 76, 78, 79, 85, 85];
    const on = gl.map((g, k) => l.step(k * 5 * MIN, g, 0.9));
    // 68, 66, 65 (15 min below 70) start an event; 72/74 then 69 keep it going; 72, 73, 74 (15 min) end it at minute 50.
    expect(on.slice(0, 2)).toEqual([true, true]);
    expect(on.slice(2, 11)).toEqual(Array(9).fill(false));
    expect(l.eventOngoing).toBe(false);
    // Hold-off of 30 min after minute 50 and no reading >= 80 yet: still off; at 85 (minute 75), 25 min after the end: still held off; minute 80 is 30 min.
    expect(on.slice(11)).toEqual([false, false, false, false, false, true]);
  });

  it('a brief dip below 70 (shorter than 15 min) is not an event and does not disarm', () => {
    const l = new HypoAlertLogic(policy);
    const on = [80, 68, 66, 75, 76].map((g, k) => l.step(k * 5 * MIN, g, 0.9));
    expect(on).toEqual([true, false, false, true, true]);
  });

  it('a gap of more than 15 minutes ends an ongoing event; re-arms after rearmAfterMin whatever the level', () => {
    const l = new HypoAlertLogic(policy);
    [65, 64, 63, 62].forEach((g, k) => l.step(k * 5 * MIN, g, 0.9));
    expect(l.eventOngoing).toBe(true);
    expect(l.step(60 * MIN, 72, 0.9)).toBe(false); // after a 45-minute gap: event over, hold-off running
    expect(l.eventOngoing).toBe(false);
    expect(l.step(100 * MIN, 72, 0.9)).toBe(false); // 40 min later but never >= 80
    expect(l.step(15 * 60 * MIN, 72, 0.9)).toBe(true); // hours later
  });

  it('hypoAlertStates gives the same states as stepping reading by reading, with NaN as "detector did not run"', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 40, max: 200 }), fc.oneof(fc.constant(Number.NaN), fc.double({ min: 0, max: 1, noNaN: true }))), { maxLength: 80 }), (rows) => {
        const tr = trace(rows.map((r) => r[0]));
        const states = hypoAlertStates(tr, rows.map((r) => r[1]), policy);
        const l = new HypoAlertLogic(policy);
        rows.forEach((r, k) => {
          expect(states[k]).toBe(l.step(tr[k]!.t, r[0], Number.isNaN(r[1]) ? undefined : r[1]) ? 1 : 0);
          if (r[0] < 70 || Number.isNaN(r[1])) expect(states[k]).toBe(0);
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe('detector features', () => {
  it('use no reading after the reading itself', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -10, max: 10 }), { minLength: 12, maxLength: 80 }), fc.nat(), fc.integer({ min: -40, max: 40 }), (steps, pick, shift) => {
        let g = 110;
        const tr = trace(steps.map((d) => (g = Math.max(40, Math.min(300, g + d)))));
        const i = 11 + (pick % (tr.length - 11));
        const f = forecastFeatures(tr, i)!;
        const fcst = decodeForecast(tr[i]!.gl, [0.1, -2]);
        const x = detectorFeatures(tr, i, f, fcst);
        expect(x).toHaveLength(DETECTOR_SPEC.features);
        const altered = tr.map((p, k) => (k > i ? { t: p.t, gl: p.gl + shift } : p));
        expect(detectorFeatures(altered, i, forecastFeatures(altered, i)!, fcst)).toEqual(x);
      }),
      { numRuns: 200 },
    );
  });

  it('see the last reading below 70 and the lows of the last hours', () => {
    const tr = trace([100, 66, 100, ...Array(20).fill(110)]);
    const i = tr.length - 1;
    const x = detectorFeatures(tr, i, forecastFeatures(tr, i)!, { predGl: 110, hypoProbability: 0.5 });
    expect(x[10]).toBeCloseTo((tr[i]!.t - tr[1]!.t) / (24 * 60 * MIN), 6);
    expect(x[8]).toBeCloseTo((66 - 100) / 30, 6); // lowest of the last 3 h
    expect(x[7]).toBeCloseTo((110 - 100) / 30, 6); // lowest of the last hour
    expect(x[6]).toBeCloseTo(0, 6); // logit 0 at probability 0.5
  });
});

describe('alert scoring (issue 5 definitions)', () => {
  // Onset at minute 60: 15 min below 70 (minutes 60, 65, 70), back up from minute 75.
  const values = [90, 88, 86, 84, 82, 80, 78, 76, 75, 74, 72, 71, 68, 66, 65, 75, 80, 85, 90, ...Array(60).fill(100)];
  const tr = trace(values);
  const onset = 60 * MIN;

  it('an event is caught by an alert 10 to 60 min before its onset, not by a later one', () => {
    expect(scoreAlerts(tr, [onset - 60 * MIN]).caught).toBe(1);
    expect(scoreAlerts(tr, [onset - 10 * MIN]).caught).toBe(1);
    expect(scoreAlerts(tr, [onset - 5 * MIN]).caught).toBe(0);
    expect(scoreAlerts(tr, [onset - 65 * MIN]).caught).toBe(0);
    expect(scoreAlerts(tr, []).events).toBe(1);
  });

  it('alerts less than 30 min apart are one episode, false when no onset follows within 60 min of any of them', () => {
    const late = 200 * MIN; // no onset after it
    const s = scoreAlerts(tr, [onset - 30 * MIN, late, late + 25 * MIN, late + 55 * MIN]);
    expect(s.episodes).toBe(3); // the alert at +55 is 30 min after +25: its own episode
    expect(s.falseEpisodes).toBe(2);
    expect(scoreAlerts(tr, [onset - 80 * MIN]).falseEpisodes).toBe(1);
    expect(scoreAlerts(tr, [onset - 80 * MIN, onset - 55 * MIN]).falseEpisodes).toBe(0); // one episode; its second alert has the onset within 60 min
  });

  it('alerts during an ongoing event (until 15 min at or above 70 after it) are not scored', () => {
    // The last low reading's interval ends at minute 75; 15 min at or above 70 end the event at minute 90.
    expect(scoreAlerts(tr, [75 * MIN, 85 * MIN])).toMatchObject({ episodes: 0, falseEpisodes: 0 });
    expect(scoreAlerts(tr, [90 * MIN]).falseEpisodes).toBe(1);
  });

  it('subject-days are the covered time: a week without readings adds nothing', () => {
    const day = Array.from({ length: 288 }, () => 100);
    const split = [...trace(day), ...trace(day, 8 * 24 * 60)];
    expect(scoreAlerts(split, []).subjectDays).toBeCloseTo(2, 6);
    expect(sumScores([scoreAlerts(split, [3 * 60 * MIN])]).falsePerDay).toBeCloseTo(0.5, 6);
  });

  it('the plain rule alerts at every reading in [70, level); the gated rule stops during and after an event', () => {
    expect(ruleAlertTimes(tr, 85).map((t) => t / MIN)).toEqual([15, 20, 25, 30, 35, 40, 45, 50, 55, 75, 80]);
    expect(gatedRuleAlertTimes(tr, 85, policy).map((t) => t / MIN)).toEqual([15, 20, 25, 30, 35, 40, 45, 50, 55]);
  });
});
