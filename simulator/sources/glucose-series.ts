/**
 * Glucose series: what a simulated glucose meter holds in memory or a CGM measures, as timed
 * values in mg/dL. Sources: CGM CSV replay (`cgm-csv.ts`) and the UVA/Padova generator
 * (`uva-padova.ts`). The BLE peers turn them into Glucose Measurement (0x2A18) records or CGM
 * Measurement (0x2AA7) notifications.
 */

export interface GlucoseSample {
  /** Time since the start of the series (ms). */
  tMs: number;
  /** Glucose concentration (mg/dL). */
  mgdl: number;
}

export interface GlucoseSeries {
  /** What it is, e.g. `hall2018 subject 3` or `uva-padova adult#001`: never a patient identifier. */
  name: string;
  /** Nominal interval between samples (ms). */
  periodMs: number;
  samples: GlucoseSample[];
}

/** The first `count` samples, repeating the series (shifted in time by its span) when it is shorter. */
export function takeSamples(series: GlucoseSeries, count: number): GlucoseSample[] {
  const n = series.samples.length;
  if (n === 0) return [];
  const span = ((series.samples[n - 1] as GlucoseSample).tMs - (series.samples[0] as GlucoseSample).tMs) + series.periodMs;
  return Array.from({ length: count }, (_, i) => {
    const s = series.samples[i % n] as GlucoseSample;
    return { tMs: s.tMs + Math.floor(i / n) * span, mgdl: s.mgdl };
  });
}
