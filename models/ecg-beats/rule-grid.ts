/**
 * Variants of the supraventricular rhythm rule over the cross-validation's out-of-fold classes, with
 * nested selection: `node dist/models/ecg-beats/rule-grid.js [--data DIR] [--classes FILE]` (after
 * `train.js --no-final`, which writes `cv-classes.json`). Prints S Se/+P per variant over the 22
 * records, and the nested figures: for each fold, the variant with the larger min(Se/80, +P/60) on the
 * other folds' classes, scored on that fold. Beats are reported as the pipeline reports them (the AF
 * detector over the classes; S inside AF -> N).
 *
 * The variants are applied to the network's own out-of-fold classes (`network` in `cv-classes.json`), as
 * `splitSupraventricular` applies the shipped rule: exact.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AAMI_CLASSES, FEATURE_NAMES } from '../../device-sdk/signal/ecg/beat-features.js';
import { type ClassPair, classScores } from '../../device-sdk/signal/ecg/ec57.js';
import { packageRoot } from '../../firmware/package-root.js';
import { afOverBeats, atrialValues } from './af-cv.js';
import { recordBeats } from './dataset.js';
import { pairsOf } from './train.js';

export interface RuleVariant {
  /** QRS correlation with the dominant beat required for S (-Infinity: no shape test). */
  minQrsCorr: number;
  /** RR before / dominant RR below which a beat is premature. */
  maxRrPreNormal: number;
  /** Also premature: < 0.95 of the dominant RR and followed by an interval > 1.15x its own. */
  pause: boolean;
}

const at = (name: (typeof FEATURE_NAMES)[number]) => FEATURE_NAMES.indexOf(name);

function main(): void {
  const { values } = parseArgs({ options: { data: { type: 'string' }, classes: { type: 'string' } } });
  const root = packageRoot();
  const dir = resolve(values.data ?? join(root, '..', 'shared', 'data', 'mitdb'));
  const cache = join(root, 'dist', 'cache', 'ecg-beats');
  const cv = JSON.parse(readFileSync(join(cache, 'cv.json'), 'utf8')) as { folds: string[][] };
  const classes = JSON.parse(readFileSync(values.classes ?? join(cache, 'cv-classes.json'), 'utf8')) as Record<string, { samples: number[]; network?: string[] }>;
  const records = Object.entries(classes).map(([record, c]) => ({ record, r: recordBeats(dir, record, cache), c, atrial: atrialValues(dir, record, c.samples) }));
  const variants: RuleVariant[] = [];
  for (const minQrsCorr of [0.9, 0.8, 0.7, Number.NEGATIVE_INFINITY]) for (const maxRrPreNormal of [0.85, 0.88, 0.9]) for (const pause of [false, true]) variants.push({ minQrsCorr, maxRrPreNormal, pause });
  const pairs = variants.map((v) => {
    const per = new Map<string, ClassPair[]>();
    for (const { record, r, c, atrial } of records) {
      const x = (i: number, name: (typeof FEATURE_NAMES)[number]) => r.features[i * r.width + at(name)] as number;
      if (!c.network) throw new Error(`${record}: no network classes in cv-classes.json; re-run train.js --no-final`);
      const cls = c.network.map((k, i) => {
        if ((k !== 'N' && k !== 'S') || !(x(i, 'rrSpread') < 0.12)) return k;
        const pre = x(i, 'rrPreNormal');
        const premature = pre < v.maxRrPreNormal || (v.pause && pre < 0.95 && x(i, 'rrPostPre') > 1.15);
        if (premature && !(x(i, 'qrsCorr') >= v.minQrsCorr)) return k; // premature, other shape: the network's call
        return premature ? 'S' : 'N';
      });
      const { reported } = afOverBeats(c.samples, cls, atrial, {}, r.length, r.fs);
      per.set(record, pairsOf(r, Int32Array.from(reported, (k) => AAMI_CLASSES.indexOf(k))));
    }
    return per;
  });
  const score = (j: number, names: string[]) => classScores(names.flatMap((n) => pairs[j]?.get(n) ?? [])).S;
  const criterion = (s: { se: number; ppv: number }) => Math.min(s.se / 80, s.ppv / 60);
  const label = (v: RuleVariant) => `shape ${Number.isFinite(v.minQrsCorr) ? `>= ${v.minQrsCorr}` : 'off'}, premature < ${v.maxRrPreNormal}${v.pause ? ', pause' : ''}`;
  const all = cv.folds.flat();
  variants.forEach((v, j) => {
    const s = score(j, all);
    process.stdout.write(`${label(v)}: S Se ${s.se.toFixed(2)} +P ${s.ppv.toFixed(2)}\n`);
  });
  const nested: ClassPair[] = [];
  cv.folds.forEach((fold, k) => {
    const others = cv.folds.filter((_, i) => i !== k).flat();
    let best = 0;
    variants.forEach((_, j) => {
      if (criterion(score(j, others)) > criterion(score(best, others)) + 1e-9) best = j;
    });
    process.stdout.write(`fold ${k + 1} chooses ${label(variants[best] as RuleVariant)}\n`);
    nested.push(...fold.flatMap((n) => pairs[best]?.get(n) ?? []));
  });
  const s = classScores(nested).S;
  process.stdout.write(`nested selection over the grid: S Se ${s.se.toFixed(2)} +P ${s.ppv.toFixed(2)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]).endsWith(join('models', 'ecg-beats', 'rule-grid.js'))) main();
