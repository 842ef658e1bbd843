/**
 * Variants of the supraventricular rhythm rule over the cross-validation's out-of-fold classes, with
 * nested selection: `node dist/models/ecg-beats/rule-grid.js [--data DIR] [--classes FILE]` (after
 * `train.js --no-final`, which writes `cv-classes.json`). Prints S Se/+P per variant over the 22
 * records, and the nested figures: for each fold, the variant with the larger min(Se/80, +P/60) on the
 * other folds' classes, scored on that fold. Beats are reported as the pipeline reports them (the AF
 * detector over the classes; S inside AF -> N).
 *
 * The variants are applied to the network's own out-of-fold classes (`network` in `cv-classes.json`)
 * through `supraventricularClass`, as `splitSupraventricular` applies the shipped rule: exact. A second
 * nested selection runs among the rules the versions shipped (1.1.0, 1.2.0, 1.3.0).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SUPRAVENTRICULAR_RULE, type SupraventricularRule, supraventricularClass } from '../../device-sdk/signal/ecg/beat-classes.js';
import { afOverBeats } from '../../device-sdk/signal/ecg/af-detector.js';
import { AAMI_CLASSES, type AamiClass } from '../../device-sdk/signal/ecg/beat-features.js';
import { type ClassPair, classScores } from '../../device-sdk/signal/ecg/ec57.js';
import { packageRoot } from '../../firmware/package-root.js';
import { atrialValues } from './af-cv.js';
import { recordBeats } from './dataset.js';
import { pairsOf } from './train.js';

const PAUSE_OFF = { pauseMaxRrPreNormal: 0, pauseMinRrPostPre: Number.POSITIVE_INFINITY };

/** The rules the shipped versions used (the candidates of the second nested selection). */
export const VERSION_RULES: Readonly<Record<string, SupraventricularRule>> = Object.freeze({
  '1.1.0': { ...DEFAULT_SUPRAVENTRICULAR_RULE, ...PAUSE_OFF, minQrsCorr: 0.9 },
  '1.2.0': { ...DEFAULT_SUPRAVENTRICULAR_RULE, ...PAUSE_OFF, minQrsCorr: -1 },
  '1.3.0': DEFAULT_SUPRAVENTRICULAR_RULE,
});

function label(rule: SupraventricularRule): string {
  const version = Object.entries(VERSION_RULES).find(([, r]) => JSON.stringify(r) === JSON.stringify(rule))?.[0];
  return `shape ${rule.minQrsCorr > -1 ? `>= ${rule.minQrsCorr}` : 'off'}, premature < ${rule.maxRrPreNormal}${Number.isFinite(rule.pauseMinRrPostPre) ? ', pause' : ''}${version ? ` (${version})` : ''}`;
}

function main(): void {
  const { values } = parseArgs({ options: { data: { type: 'string' }, classes: { type: 'string' } } });
  const root = packageRoot();
  const dir = resolve(values.data ?? join(root, '..', 'shared', 'data', 'mitdb'));
  const cache = join(root, 'dist', 'cache', 'ecg-beats');
  const cv = JSON.parse(readFileSync(join(cache, 'cv.json'), 'utf8')) as { folds: string[][] };
  const classes = JSON.parse(readFileSync(values.classes ?? join(cache, 'cv-classes.json'), 'utf8')) as Record<string, { samples: number[]; network?: string[] }>;
  const records = Object.entries(classes).map(([record, c]) => ({ record, r: recordBeats(dir, record, cache), c, atrial: atrialValues(dir, record, c.samples) }));
  const grid: SupraventricularRule[] = [];
  for (const minQrsCorr of [0.9, 0.8, 0.7, -1]) for (const maxRrPreNormal of [0.85, 0.88, 0.9]) for (const pause of [false, true]) grid.push({ ...DEFAULT_SUPRAVENTRICULAR_RULE, ...(pause ? {} : PAUSE_OFF), minQrsCorr, maxRrPreNormal });
  const pairsOfRule = (rule: SupraventricularRule) => {
    const per = new Map<string, ClassPair[]>();
    for (const { record, r, c, atrial } of records) {
      if (!c.network) throw new Error(`${record}: no network classes in cv-classes.json; re-run train.js --no-final`);
      const cls = c.network.map((k, i) => ((k === 'N' || k === 'S') && supraventricularClass(r.features, rule, i * r.width)) || k);
      const { reported } = afOverBeats(c.samples, cls as AamiClass[], atrial, { fs: r.fs }, r.length);
      per.set(record, pairsOf(r, Int32Array.from(reported, (k) => AAMI_CLASSES.indexOf(k))));
    }
    return per;
  };
  const score = (per: Map<string, ClassPair[]>, names: string[]) => classScores(names.flatMap((n) => per.get(n) ?? [])).S;
  const criterion = (x: { se: number; ppv: number }) => Math.min(x.se / 80, x.ppv / 60);
  const all = cv.folds.flat();
  const nested = (candidates: SupraventricularRule[], title: string) => {
    const per = candidates.map(pairsOfRule);
    const out: ClassPair[] = [];
    const chosen = cv.folds.map((fold, k) => {
      const others = cv.folds.filter((_, i) => i !== k).flat();
      let best = 0;
      per.forEach((p, j) => {
        if (criterion(score(p, others)) > criterion(score(per[best] as Map<string, ClassPair[]>, others)) + 1e-9) best = j;
      });
      out.push(...fold.flatMap((n) => per[best]?.get(n) ?? []));
      return label(candidates[best] as SupraventricularRule);
    });
    const x = classScores(out).S;
    process.stdout.write(`nested selection ${title}: S Se ${x.se.toFixed(2)} +P ${x.ppv.toFixed(2)} (folds chose: ${chosen.join('; ')})\n`);
    return per;
  };
  const per = nested(grid, 'over the grid');
  grid.forEach((rule, j) => {
    const x = score(per[j] as Map<string, ClassPair[]>, all);
    process.stdout.write(`${label(rule)}: S Se ${x.se.toFixed(2)} +P ${x.ppv.toFixed(2)}\n`);
  });
  nested(Object.values(VERSION_RULES), "among the versions' rules (1.1.0, 1.2.0, 1.3.0)");
}

if (process.argv[1] && resolve(process.argv[1]).endsWith(join('models', 'ecg-beats', 'rule-grid.js'))) main();
