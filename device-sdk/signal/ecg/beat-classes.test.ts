import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type BeatModelManifest, type BeatModelMismatch, beatModelMismatch, classInRhythm, classOf, DEFAULT_SUPRAVENTRICULAR_RULE, isSupraventricularEctopic, ruleBasedClass, splitSupraventricular, supraventricularRuleOf, supraventricularThresholds } from './beat-classes.js';
import { AAMI_CLASSES, FEATURE_NAMES, featureLength } from './beat-features.js';

const W = featureLength();
const at = (name: (typeof FEATURE_NAMES)[number]) => FEATURE_NAMES.indexOf(name);

/** A feature row of a beat like the dominant one (QRS correlation 0.98) with the given timing. */
function row(rrPreNormal: number, rrSpread: number, qrsCorr = 0.98): Float32Array {
  const f = new Float32Array(W);
  f[at('templateCorr')] = qrsCorr;
  f[at('qrsCorr')] = qrsCorr;
  f[at('qrsWidth')] = 1;
  f[at('rrPreNormal')] = rrPreNormal;
  f[at('rrSpread')] = rrSpread;
  return f;
}

describe('beat classes', () => {
  it('reports a beat called S inside an AF episode as N and leaves every other class as it is', () => {
    expect(classInRhythm('S', true)).toBe('N');
    expect(classInRhythm('S', false)).toBe('S');
    for (const cls of ['N', 'V', 'F', 'Q'] as const) {
      expect(classInRhythm(cls, true)).toBe(cls);
      expect(classInRhythm(cls, false)).toBe(cls);
    }
  });

  it('calls a supraventricular beat S when it is premature in a regular rhythm, whatever its QRS shape', () => {
    expect(isSupraventricularEctopic(row(0.7, 0.03))).toBe(true);
    // Aberrated (a QRS unlike the dominant one): the model has placed it above the ventricles; still S.
    expect(isSupraventricularEctopic(row(0.7, 0.03, 0.5))).toBe(true);
    // On time, or premature in AF: not S.
    expect(isSupraventricularEctopic(row(0.95, 0.03))).toBe(false);
    expect(isSupraventricularEctopic(row(0.7, 0.3))).toBe(false);
    // Mildly premature: S only when a pause follows (the next interval > 1.15x its own).
    const mild = row(0.9, 0.03);
    mild[at('rrPostPre')] = 1.1;
    expect(isSupraventricularEctopic(mild)).toBe(false);
    mild[at('rrPostPre')] = 1.3;
    expect(isSupraventricularEctopic(mild)).toBe(true);
    mild[at('rrPreNormal')] = 0.97;
    expect(isSupraventricularEctopic(mild)).toBe(false);
    // The fallback without a model keeps the 1.0 rule: premature against the local mean and followed by a pause.
    const f = row(0.95, 0.03);
    f[at('rrPreLocal')] = 0.7;
    f[at('rrPostPre')] = 1.5;
    expect(ruleBasedClass(f)).toBe('S');
    f[at('rrPostPre')] = 1;
    expect(ruleBasedClass(f)).toBe('N');
  });

  it('lets the rhythm rule split N from S in a regular rhythm and leaves the model its call elsewhere', () => {
    const k = AAMI_CLASSES.length;
    const rows = [
      row(0.7, 0.03), // premature, QRS like the dominant one, regular rhythm: S
      row(1.0, 0.03), // on time in a regular rhythm: N
      row(0.7, 0.4), // premature in AF: the model's call
      row(0.7, 0.03, 0.5), // premature with an unusual QRS, the model says N: S (aberrated)
      row(1.0, 0.03), // on time, but the model says V: V
    ];
    const features = new Float32Array(rows.length * W);
    rows.forEach((r, i) => features.set(r, i * W));
    // Model rows (N S V F Q).
    const p = Float32Array.from([0.6, 0.1, 0.3, 0, 0, 0.2, 0.7, 0.1, 0, 0, 0.2, 0.7, 0.1, 0, 0, 0.6, 0.3, 0.1, 0, 0, 0.3, 0.2, 0.5, 0, 0]);
    splitSupraventricular(p, features, rows.length, W);
    expect(classOf(p, 0)).toEqual({ cls: 'S', probability: expect.closeTo(0.7, 5) as number });
    expect(p[0]).toBe(0);
    expect(classOf(p, k)).toEqual({ cls: 'N', probability: expect.closeTo(0.9, 5) as number });
    expect(p[k + 1]).toBe(0);
    expect(classOf(p, 2 * k)).toEqual({ cls: 'S', probability: expect.closeTo(0.7, 5) as number });
    expect(p[2 * k]).toBeCloseTo(0.2, 5);
    expect(classOf(p, 3 * k)).toEqual({ cls: 'S', probability: expect.closeTo(0.9, 5) as number });
    expect(p[3 * k]).toBe(0);
    expect(classOf(p, 4 * k)).toEqual({ cls: 'V', probability: expect.closeTo(0.5, 5) as number });
    expect(p[4 * k + 1]).toBeCloseTo(0.2, 5);
  });

  it('round-trips the rule through flat manifest thresholds', () => {
    expect(supraventricularRuleOf(supraventricularThresholds())).toEqual(DEFAULT_SUPRAVENTRICULAR_RULE);
    expect(supraventricularRuleOf({ argmax: 1 })).toBeUndefined();
    // A 1.1.0 manifest is read as it was measured: shape test at 0.9, no pause clause.
    const older = supraventricularRuleOf({ svMinQrsCorr: 0.9, svMaxRrPreNormal: 0.85, svMaxRrSpread: 0.12 });
    expect(older).toMatchObject({ minQrsCorr: 0.9, maxRrPreNormal: 0.85, maxRrSpread: 0.12, pauseMinRrPostPre: Number.POSITIVE_INFINITY });
    const mild = row(0.9, 0.03);
    mild[at('rrPostPre')] = 1.3;
    expect(isSupraventricularEctopic(mild, older)).toBe(false);
    expect(isSupraventricularEctopic(row(0.7, 0.03, 0.5), older)).toBe(false);
    // Under it, a premature beat with another shape keeps the model's call (here N).
    const p = Float32Array.from([0.6, 0.3, 0.1, 0, 0]);
    splitSupraventricular(p, row(0.7, 0.03, 0.5), 1, W, older);
    expect(classOf(p, 0).cls).toBe('N');
    expect(p[1]).toBeCloseTo(0.3, 5);
    // The current manifests write -1 for the shape test (none): a runtime that reads it applies no test.
    expect(supraventricularThresholds().svMinQrsCorr).toBe(-1);
  });
});

describe('beatModelMismatch (the check of the runtime classifier and the ECG bench)', () => {
  const dir = join(import.meta.dirname, '..', '..', '..', 'models', 'ecg-beats');
  type Manifest = BeatModelManifest & { input: { shape: unknown[]; featureOptions: Record<string, unknown> } };
  const shipped = JSON.parse(readFileSync(join(dir, 'medge-model.json'), 'utf8')) as Manifest;
  /** The shipped manifest with one change made to a copy. */
  const changed = (change: (m: Manifest) => void): Manifest => {
    const m = structuredClone(shipped);
    change(m);
    return m;
  };

  it('accepts the shipped model', () => {
    expect(beatModelMismatch(shipped, dir)).toBeUndefined();
  });

  const cases: { what: string; change: (m: Manifest) => void; field: BeatModelMismatch['field']; detail: RegExp }[] = [
    { what: 'wrong polarity', change: (m) => void (m.input.featureOptions.polarity = 'as-recorded'), field: 'input.featureOptions.polarity', detail: /as-recorded lead polarity.*1\.3\.0 and earlier cannot be used/ },
    { what: 'no polarity (1.3.0 and earlier)', change: (m) => void delete m.input.featureOptions.polarity, field: 'input.featureOptions.polarity', detail: /no polarity in the manifest/ },
    { what: 'no mainsHz', change: (m) => void delete m.input.featureOptions.mainsHz, field: 'input.featureOptions.mainsHz', detail: /no mains notch \(no mainsHz in the manifest\)/ },
    { what: 'another notch', change: (m) => void (m.input.featureOptions.mainsHz = [50]), field: 'input.featureOptions.mainsHz', detail: /trained with 50 Hz notched; this build notches 50,60 Hz/ },
    { what: 'wrong width', change: (m) => void (m.input.shape = [null, 67]), field: 'input.shape', detail: /reads 67 features per beat; this build extracts 75/ },
    { what: 'no input spec', change: (m) => void delete (m as { input?: unknown }).input, field: 'input.shape', detail: /reads undefined features per beat/ },
    { what: 'labels in another order', change: (m) => void (m.labels = ['N', 'V', 'S', 'F', 'Q']), field: 'labels', detail: /has labels N,V,S,F,Q; this build classifies beats into N,S,V,F,Q/ },
    { what: 'other labels', change: (m) => void (m.labels = ['normal', 'abnormal']), field: 'labels', detail: /has labels normal,abnormal/ },
  ];
  it.each(cases)('refuses a model with $what, naming the field', ({ change, field, detail }) => {
    const mismatch = beatModelMismatch(changed(change), dir);
    expect(mismatch?.field).toBe(field);
    expect(mismatch?.message).toContain(`${dir}: ecg-beats@${shipped.version}`);
    expect(mismatch?.message).toContain(`manifest field ${field}`);
    expect(mismatch?.message).toMatch(detail);
  });
});
