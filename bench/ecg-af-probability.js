// The probability an `ecg-af` finding carries: how often the AF detector is right when it says AF
// (af-suspected: the positive predictivity of AF duration) and when it says AF has ended
// (af-not-suspected: the share of the time it does not call AF that is not AF), over the 22 records of
// the beat model's cross-validation, EC57 reference (epicmp: `(AFIB` episodes, reference atrial flutter
// left out), scored from minute 5 as models/ecg-beats/af-cv.ts scores it.
//
// - With the beat model ecg-beats 1.5.0: +P and Se are the model card's cross-validation figures (each
//   record's classes from a network that never saw it; AF duration Se 94.91 %, +P 92.73 %). The
//   not-AF share is derived from them and the reference's durations, measured here: the time the
//   detector called AF is Se x reference AF / +P, and the AF it missed (1 - Se) x reference AF.
// - With the rule classifier the runtime falls back to (`ruleBasedClass`): measured here over the same
//   records (the rules were not fitted to them).
//
//   node bench/ecg-af-probability.js [--data DIR]
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afReference } from '../dist/device-sdk/signal/ecg/ec57.js';
import { ruleBasedClass } from '../dist/device-sdk/signal/ecg/beat-classes.js';
import { extractBeats } from '../dist/device-sdk/signal/ecg/front-end.js';
import { afCv } from '../dist/models/ecg-beats/af-cv.js';
import { readWfdbAnnotations, readWfdbRecord } from '../dist/simulator/sources/wfdb-files.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const dir = arg('--data', join(import.meta.dirname, '..', '..', 'shared', 'data', 'mitdb'));
if (!existsSync(dir)) {
  process.stdout.write(`${JSON.stringify({ 'ecg-af-probability': { skipped: `${dir} is missing` } })}\n`);
  process.exit(0);
}
/** The model card's cross-validation figures for 1.5.0 (AF duration, EC57). */
const CARD_1_5_0 = { se: 94.91, ppv: 92.73 };
const FS = 360;
const LENGTH = 650000;
const START = 300 * FS;
const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'models', 'ecg-beats', 'medge-model.json'), 'utf8'));
const records = manifest.metrics.crossValidation.folds.flat().sort();

// Reference durations (samples, from minute 5): AF, and the flutter left out.
const clipped = (eps) => eps.reduce((s, [a, b]) => s + Math.max(0, Math.min(b, LENGTH) - Math.max(a, START)), 0);
let refAf = 0;
let excluded = 0;
for (const r of records) {
  const ref = afReference(readWfdbAnnotations(join(dir, r)).annotations, LENGTH, 'ec57');
  refAf += clipped(ref.af);
  excluded += clipped(ref.excluded);
}
const scored = records.length * (LENGTH - START) - excluded;
const notAfShare = (overlap, refOnly, detected) => 1 - refOnly / (scored - detected);

// 1.5.0, from the card's Se and +P.
const overlap = (CARD_1_5_0.se / 100) * refAf;
const model = { ppv: CARD_1_5_0.ppv / 100, notAf: notAfShare(overlap, refAf - overlap, overlap / (CARD_1_5_0.ppv / 100)) };

// The rule classifier, measured.
const classes = {};
for (const r of records) {
  const wf = readWfdbRecord(join(dir, r));
  const beats = extractBeats(wf.signals[0], FS);
  classes[r] = { samples: beats.map((b) => b.sample), classes: beats.map((b) => ruleBasedClass(b.features)) };
  process.stderr.write(`${r}\n`);
}
const g = afCv(dir, classes, {}).ec57.gross;
const rules = { se: g.se / 100, ppv: g.ppv / 100, notAf: notAfShare(g.overlap, g.refOnly, g.overlap + g.detOnly) };

const round = (x) => Math.round(x * 10000) / 10000;
process.stdout.write(
  `${JSON.stringify({
    'ecg-af-probability': {
      records: records.length,
      referenceAfSeconds: Math.round(refAf / FS),
      scoredSeconds: Math.round(scored / FS),
      'ecg-beats@1.5.0': { source: 'MODEL_CARD cross-validation Se/+P', afSuspected: round(model.ppv), afNotSuspected: round(model.notAf) },
      'algo:beat-rules@1': { source: 'measured', se: round(rules.se), afSuspected: round(rules.ppv), afNotSuspected: round(rules.notAf) },
    },
  })}\n`,
);
