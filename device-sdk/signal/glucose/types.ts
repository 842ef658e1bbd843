/** One glucose reading: time (ms, any epoch; only differences matter) and value in mg/dL. */
export interface GlucosePoint {
  t: number;
  gl: number;
}

export const MS_PER_MIN = 60_000;
