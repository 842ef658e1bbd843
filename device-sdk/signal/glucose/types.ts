/** One glucose reading: time (ms, any epoch; only differences matter) and value in mg/dL. */
export interface GlucosePoint {
  t: number;
  gl: number;
  /**
   * The device said this result was beyond what it can measure (a meter's LO/HI): `low` below its
   * range, `high` above it (`deviceRangeLimit` in faults.ts reads it from a reading's context).
   */
  deviceLimit?: 'low' | 'high';
}

export const MS_PER_MIN = 60_000;
