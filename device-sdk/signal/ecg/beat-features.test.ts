import { describe, expect, it } from 'vitest';
import { AAMI_WFDB_CODE, aamiClassOf, BeatFeatureExtractor, type BeatFeatureOptions, FEATURE_NAMES, featureLength } from './beat-features.js';

const FS = 360;
const at = (name: (typeof FEATURE_NAMES)[number]) => FEATURE_NAMES.indexOf(name);

/** A synthetic lead with beats at `peaks` (samples): narrow QRS, or a wide inverted one for `wide` peaks. */
function lead(length: number, peaks: number[], wide: Set<number>): Int16Array {
  const x = new Float64Array(length);
  for (const p of peaks) {
    const half = wide.has(p) ? 40 : 12;
    const amp = wide.has(p) ? -300 : 250;
    for (let k = -half; k <= half; k++) if (p + k >= 0 && p + k < length) x[p + k] = (x[p + k] as number) + amp * (1 - Math.abs(k) / half);
  }
  return Int16Array.from(x, (v) => Math.round(v));
}

describe('beat features', () => {
  it('maps WFDB beat codes to AAMI classes and back', () => {
    expect(['N', 'L', 'R', 'e', 'j'].map((_, i) => aamiClassOf([1, 2, 3, 34, 11][i] as number))).toEqual(['N', 'N', 'N', 'N', 'N']);
    expect([8, 4, 7, 9].map(aamiClassOf)).toEqual(['S', 'S', 'S', 'S']);
    expect([5, 10, 6, 12, 38, 13, 28].map(aamiClassOf)).toEqual(['V', 'V', 'F', 'Q', 'Q', 'Q', undefined]);
    expect(AAMI_WFDB_CODE).toEqual({ N: 1, S: 8, V: 5, F: 6, Q: 13 });
  });

  it('measures prematurity against the local rhythm and a wide ectopic beat against the template', () => {
    const rr = Math.round(0.8 * FS);
    const peaks: number[] = [];
    for (let t = FS; t < 40 * FS; t += rr) peaks.push(t);
    // Beat 30 comes 40 % early, is wide and inverted; the next keeps the sinus timing (compensatory pause).
    const early = (peaks[30] as number) - Math.round(0.4 * rr);
    peaks[30] = early;
    const signal = lead(41 * FS, peaks, new Set([early]));
    const fx = new BeatFeatureExtractor({ fs: FS });
    const out = [];
    for (let i = 0; i < signal.length; i += FS) {
      fx.pushSamples(signal.subarray(i, i + FS));
      for (const p of peaks) if (p >= i && p < i + FS) fx.pushBeat(p);
      out.push(...fx.take());
    }
    fx.flush();
    out.push(...fx.take());
    expect(out).toHaveLength(peaks.length);
    expect(out.every((b) => b.features.length === featureLength())).toBe(true);
    const normal = out[20]?.features as Float32Array;
    const ectopic = out[30]?.features as Float32Array;
    expect(normal[at('rrPreLocal')]).toBeCloseTo(1, 1);
    expect(normal[at('templateCorr')]).toBeGreaterThan(0.99);
    expect(normal[at('templateDist')]).toBeLessThan(0.05);
    expect(ectopic[at('rrPreLocal')]).toBeLessThan(0.7);
    expect(ectopic[at('rrPostPre')]).toBeGreaterThan(2);
    expect(ectopic[at('templateCorr')]).toBeLessThan(0.5);
    expect(ectopic[at('qrsWidth')]).toBeGreaterThan(1.5);
    // The ectopic beat does not enter the template: the beat after it still matches it.
    expect(out[32]?.features[at('templateCorr')]).toBeGreaterThan(0.99);
    // Prematurity against the dominant rhythm, a regular context, QRS unlike the template's.
    expect(normal[at('rrPreNormal')]).toBeCloseTo(1, 1);
    expect(ectopic[at('rrPreNormal')]).toBeLessThan(0.7);
    expect(ectopic[at('rrPostNormal')]).toBeGreaterThan(1.3);
    expect(ectopic[at('rrSpread')]).toBeLessThan(0.05);
    expect(normal[at('qrsCorr')]).toBeGreaterThan(0.99);
    expect(ectopic[at('qrsCorr')]).toBeLessThan(0.5);
  });

  it('gives the same features for a lead recorded with its polarity reversed (canonical polarity)', () => {
    const rr = Math.round(0.8 * FS);
    const peaks: number[] = [];
    for (let t = FS; t < 40 * FS; t += rr) peaks.push(t);
    const wide = new Set([peaks[25] as number, peaks[31] as number]);
    const signal = lead(41 * FS, peaks, wide);
    const reversed = Int16Array.from(signal, (v) => -v);
    const features = (x: Int16Array, polarity: BeatFeatureOptions['polarity']) => {
      const fx = new BeatFeatureExtractor({ fs: FS, polarity });
      const out: Float32Array[] = [];
      for (let i = 0; i < x.length; i += FS) {
        fx.pushSamples(x.subarray(i, i + FS));
        for (const p of peaks) if (p >= i && p < i + FS) fx.pushBeat(p);
        out.push(...fx.take().map((b) => b.features));
      }
      fx.flush();
      out.push(...fx.take().map((b) => b.features));
      return out;
    };
    const morph = (f: Float32Array | undefined) => Array.from((f as Float32Array).subarray(FEATURE_NAMES.length));
    const [a, b] = [features(signal, 'canonical'), features(reversed, 'canonical')];
    expect(b).toHaveLength(peaks.length);
    // The ectopic beats differ from the template in both runs, and identically.
    expect(Math.max(...morph(a[25]).map(Math.abs))).toBeGreaterThan(0.5);
    for (let i = 0; i < peaks.length; i++) Array.from(b[i] as Float32Array).forEach((v, j) => expect(v, `beat ${i} column ${j}`).toBeCloseTo((a[i] as Float32Array)[j] as number, 5));
    // Here the largest deflection is positive: the lead as recorded is already canonical, and with the
    // lead's own sign (`as-recorded`, models up to 1.3.0) the reversed lead's morphology is negated.
    const c = features(reversed, 'as-recorded');
    morph(c[25]).forEach((v, j) => expect(v).toBeCloseTo(-(morph(a[25])[j] as number), 5));
  });

  it('tells a premature beat in a regular rhythm from the short intervals of an irregular one', () => {
    const run = (rrs: number[], wide: Set<number>) => {
      const peaks: number[] = [];
      let t = FS;
      for (const rr of rrs) peaks.push((t += Math.round(rr * FS)));
      const signal = lead(peaks[peaks.length - 1] as number + 2 * FS, peaks, new Set([...wide].map((i) => peaks[i] as number)));
      const fx = new BeatFeatureExtractor({ fs: FS });
      const out = [];
      for (let i = 0; i < signal.length; i += FS) {
        fx.pushSamples(signal.subarray(i, i + FS));
        for (const p of peaks) if (p >= i && p < i + FS) fx.pushBeat(p);
        out.push(...fx.take());
      }
      fx.flush();
      out.push(...fx.take());
      return out;
    };
    // Narrow beat 30 % early in a regular rhythm at 0.8 s: premature, QRS like the dominant beat, regular context.
    const regular = Array.from({ length: 40 }, () => 0.8);
    regular[30] = 0.56;
    regular[31] = 1.04;
    const a = run(regular, new Set())[30]?.features as Float32Array;
    expect(a[at('rrPreNormal')]).toBeLessThan(0.75);
    expect(a[at('qrsCorr')]).toBeGreaterThan(0.95);
    expect(a[at('rrSpread')]).toBeLessThan(0.05);
    // Irregular rhythm (intervals 0.45-1.15 s): the context says so.
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const irregular = Array.from({ length: 40 }, () => 0.45 + 0.7 * random());
    const b = run(irregular, new Set())[35]?.features as Float32Array;
    expect(b[at('rrSpread')]).toBeGreaterThan(0.2);
    expect(b[at('rrIrregularShare')]).toBeGreaterThan(0.5);
    // Bigeminy (every other beat wide and early): the template stays the narrow beat.
    const bigeminy = Array.from({ length: 40 }, (_, i) => (i < 12 ? 0.8 : i % 2 === 0 ? 0.5 : 1.1));
    const wide = new Set(Array.from({ length: 40 }, (_, i) => i).filter((i) => i >= 12 && i % 2 === 0));
    const c = run(bigeminy, wide);
    expect(c[31]?.features[at('templateCorr')]).toBeGreaterThan(0.99);
    expect(c[30]?.features[at('templateCorr')]).toBeLessThan(0.5);
    expect(c[30]?.features[at('rrPreNormal')]).toBeLessThan(0.7);
  });
});
