/**
 * Pacemaker pulses on the ECG lead (pure: no I/O, no timers). A pacemaker's stimulus reaches the front
 * end as a pulse of 2-700 mV lasting 0.1-2 ms (the range IEC 60601-2-27 tests heart rate meters with);
 * after the front end's low-pass filter it is sampled as a step far steeper than any QRS, decaying within
 * a few ms. The QRS detector takes it for a QRS complex, so a pacemaker that fires without capturing the
 * ventricles (no QRS follows) kept the asystole alarm silent: MIT-BIH 101 stopped after 30 s with pulses of
 * 2-700 mV, 0.1-2 ms at 60-100 /min (front-end bandwidth 40 Hz, 150 Hz or none) got no `ecg-no-beats` in 20 s
 * in 229 of 292 cases at 360 Hz (129 with this check; 250 Hz: 209 -> 153 of 257; 128 Hz: 253 -> 197 of 295).
 *
 * A detection is a pacing pulse and not a heartbeat when its QRS window holds a narrow pulse (`blankPacePulse`: a
 * one-sample step of at least `minStepMvPerMs`, ten times the steepest QRS upstroke MIT-BIH stores, and half its
 * height within `maxHalfWidthMs`) and, once the pulse is blanked, what is left up to `captureWindowMs` after the
 * detection is no QRS (`QrsCredibility.pacePulseOnly`). A paced beat keeps its QRS after the blank and counts; so
 * does an atrial pulse whose QRS follows 120-250 ms later (the detector may lock on the atrial pulse and hold its
 * refractory period over the QRS). A first version (0.4 mV/ms, no width test, 60 ms after the detection) rejected
 * tall narrow R waves and captured paced beats in a QA re-check; this one rejected none of them.
 *
 * Limits: a pulse whose step after the front-end filter is below `minStepMvPerMs` x the sample interval is not
 * found; nor is one with a slow recharge overshoot (IEC 60601-2-27's test pulses, 25-100 ms) or a tail outlasting
 * `blankMs` above the QRS threshold. A front end with its own pace detection output is the reliable way.
 */

export interface PacePulseOptions {
  /** Smallest one-sample step of a pacing pulse (mV per ms of sample interval); 0: no pulse rejection. */
  minStepMvPerMs: number;
  /** Length of the blank after the step (ms): the filtered pulse's decay. */
  blankMs: number;
  /** A pulse is narrow: its samples more than half its height from the level before it span at most this (ms; at least one sample). */
  maxHalfWidthMs: number;
  /** How far after the detection the window looks for a captured QRS (ms): an atrial pulse's QRS comes 120-250 ms later. */
  captureWindowMs: number;
  /**
   * What is left once the pulse is blanked is no QRS when it spans less than `minQrsMv` (the credibility option),
   * or less than this (mV) while standing out of its background less than `minEvidenceProminence` times.
   */
  maxUnprominentMv: number;
}

/** How far before its steepest step a pulse is blanked (ms; at least two samples). */
const PULSE_LEAD_MS = 6;

export const DEFAULT_PACE_PULSE_OPTIONS: Readonly<PacePulseOptions> = Object.freeze({
  minStepMvPerMs: 2,
  blankMs: 20,
  maxHalfWidthMs: 5,
  captureWindowMs: 240,
  maxUnprominentMv: 0.5,
});

/**
 * In `window` (mV, sampled at `fs`), the steepest one-sample step among samples [`from`, `to`) when it starts a
 * pacing pulse: at least `options.minStepMvPerMs` steep and narrow (`maxHalfWidthMs`); and the window with the
 * pulse blanked (held, from `PULSE_LEAD_MS` (two samples or more) before the step to `options.blankMs` after it, at
 * the value before that). Undefined when there is no such pulse.
 */
export function blankPacePulse(window: Float64Array, fs: number, options: PacePulseOptions, from = 1, to = window.length): { step: number; stepMv: number; blanked: Float64Array } | undefined {
  if (!(options.minStepMvPerMs > 0) || window.length < 2) return undefined;
  let step = -1;
  let stepMv = 0;
  for (let i = Math.max(1, from); i < Math.min(to, window.length); i++) {
    const d = Math.abs((window[i] as number) - (window[i - 1] as number));
    if (d > stepMv) {
      stepMv = d;
      step = i;
    }
  }
  if (step < 0 || stepMv < (options.minStepMvPerMs * 1000) / fs) return undefined;
  // The steepest step may be the pulse's fall when its rise was sampled over two samples ([0, 1.1, 5.0, 0.4] mV):
  // the blank starts `PULSE_LEAD_MS` (at least two samples) before it, held at the value before that.
  const start = Math.max(1, step - Math.max(2, Math.round((PULSE_LEAD_MS * fs) / 1000)));
  const held = window[start - 1] as number;
  const end = Math.min(window.length, step + Math.max(1, Math.round((options.blankMs * fs) / 1000)));
  // Narrow: a QRS complex rises and falls over tens of ms; a pulse, even through a 40 Hz front-end filter, over a few.
  let peak = 0;
  for (let i = start; i < end; i++) peak = Math.max(peak, Math.abs((window[i] as number) - held));
  let wide = 0;
  for (let i = start; i < end; i++) if (Math.abs((window[i] as number) - held) > peak / 2) wide += 1;
  if (wide > Math.max(1, Math.round((options.maxHalfWidthMs * fs) / 1000))) return undefined;
  const blanked = Float64Array.from(window);
  for (let i = start; i < end; i++) blanked[i] = held;
  return { step, stepMv, blanked };
}
