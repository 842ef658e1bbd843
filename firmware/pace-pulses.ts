/**
 * Pacemaker pulses on the ECG lead (pure: no I/O, no timers). A pacemaker's stimulus reaches the front
 * end as a pulse of 2-700 mV lasting 0.1-2 ms (the range IEC 60601-2-27 tests heart rate meters with);
 * after the front end's low-pass filter it is sampled as a step far steeper than any QRS, decaying within
 * a few ms. The QRS detector takes it for a QRS complex, so a pacemaker that fires without capturing the
 * ventricles (no QRS follows) kept the asystole alarm silent: MIT-BIH 101 stopped after 30 s with pulses of
 * 2-700 mV, 0.1-2 ms at 60-100 /min (front-end bandwidth 40 Hz, 150 Hz or none) got no `ecg-no-beats` in 20 s
 * in 229 of 292 cases at 360 Hz (48 with this check; 250 Hz: 209 -> 77 of 257; 128 Hz: 253 -> 132 of 295).
 *
 * A detection is a pacing pulse and not a heartbeat when its QRS window holds a one-sample step of at
 * least `minStepMvPerMs` and, once the pulse is blanked (from two samples or 6 ms before the step to `blankMs`
 * after it), what is left of the window does not stand out of its background as a QRS would
 * (`QrsCredibility`'s evidence test). A paced beat (pulse, then the captured QRS) keeps its QRS after the
 * blank and counts. Measured on the 26 MIT-BIH records at 360 Hz (stored with first differences limited
 * to 0.23 mV/ms): no one-sample step reaches 0.25 mV/ms; QRS upstrokes of adults rarely exceed 0.2 mV/ms.
 *
 * Limits: a pulse whose step after the front-end filter is below `minStepMvPerMs` x the sample interval
 * (small pulses through a 40 Hz monitoring filter) is not found; nor is a pulse whose tail outlasts
 * `blankMs` above the QRS threshold (pulses that saturate the front end). A front end with its own pace
 * detection output is the reliable way; see README, "ECG alarms".
 */

export interface PacePulseOptions {
  /** Smallest one-sample step of a pacing pulse (mV per ms of sample interval); 0: no pulse rejection. */
  minStepMvPerMs: number;
  /** Length of the blank after the step (ms): the filtered pulse's decay. */
  blankMs: number;
}


/** How far before its steepest step a pulse is blanked (ms; at least two samples). */
const PULSE_LEAD_MS = 6;

export const DEFAULT_PACE_PULSE_OPTIONS: Readonly<PacePulseOptions> = Object.freeze({ minStepMvPerMs: 0.4, blankMs: 20 });

/**
 * In `window` (mV, sampled at `fs`), the steepest one-sample step when it is steep enough for a pacing
 * pulse (`options.minStepMvPerMs`), and the window with the pulse blanked (held, from `PULSE_LEAD_MS` (two samples or more) before
 * the step to `options.blankMs` after it, at the value before that); undefined when no step is that steep.
 */
export function blankPacePulse(window: Float64Array, fs: number, options: PacePulseOptions): { step: number; stepMv: number; blanked: Float64Array } | undefined {
  if (!(options.minStepMvPerMs > 0) || window.length < 2) return undefined;
  let step = -1;
  let stepMv = 0;
  for (let i = 1; i < window.length; i++) {
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
  const blanked = Float64Array.from(window);
  const held = window[start - 1] as number;
  const end = Math.min(window.length, step + Math.max(1, Math.round((options.blankMs * fs) / 1000)));
  for (let i = start; i < end; i++) blanked[i] = held;
  return { step, stepMv, blanked };
}
