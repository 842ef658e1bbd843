/**
 * AF duration Se/+P of the AF detector over the beat classes of the cross-validation (each record's
 * classes come from a model that never saw it): `node dist/models/ecg-beats/af-cv.js [--data DIR]
 * [--classes FILE] [--rule ec57|af-prefix|afib] [--on X --off Y --window N --vrun N --p-organized R (NaN: off)] [--json]`. Reads the
 * `cv-classes.json` that train.ts writes. The gross figure is printed for every reference rule (see
 * `afReference` in device-sdk/signal/ecg/ec57.ts: `ec57` is epicmp's, AFIB episodes with reference
 * flutter excluded from +P); per-record lines use `--rule` (default ec57).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { afEpisodes, afOverBeats, type AfDetectorOptions, AtrialActivity } from '../../device-sdk/signal/ecg/af-detector.js';
import type { AamiClass } from '../../device-sdk/signal/ecg/beat-features.js';
import { AF_REFERENCE_RULES, afReference, type AfReferenceRule, type DurationScore, durationScore, grossDurationScore } from '../../device-sdk/signal/ecg/ec57.js';
import { packageRoot } from '../../firmware/package-root.js';
import { readWfdbAnnotations, readWfdbRecord } from '../../simulator/sources/wfdb-files.js';

/** Atrial correlation of each beat (`AtrialActivity` over the record's first signal, streamed in one-second chunks as the pipeline does). */
export function atrialValues(dir: string, record: string, samples: readonly number[]): number[] {
  const wf = readWfdbRecord(join(dir, record));
  const signal = wf.signals[0] as Int16Array;
  const fs = wf.header.fs;
  const atrial = new AtrialActivity({ fs });
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < signal.length; i += fs) {
    atrial.pushSamples(signal.subarray(i, i + fs));
    const end = Math.min(signal.length, i + fs);
    while (k < samples.length && (samples[k] as number) < end) out.push(atrial.beat(samples[k++] as number));
  }
  while (out.length < samples.length) out.push(Number.NaN);
  return out;
}

/** AF duration scores of every record and gross, against each reference rule (one detector run per record). */
export function afCv(dir: string, classes: Record<string, { samples: number[]; classes: string[] }>, options: Partial<AfDetectorOptions>, ignoreClasses = false) {
  const per = Object.fromEntries(AF_REFERENCE_RULES.map((r) => [r, {} as Record<string, DurationScore>])) as Record<AfReferenceRule, Record<string, DurationScore>>;
  for (const [record, c] of Object.entries(classes)) {
    const fs = 360;
    const ann = readWfdbAnnotations(join(dir, record), 'atr').annotations;
    const length = 650000;
    const atrial = atrialValues(dir, record, c.samples);
    const { events } = afOverBeats(c.samples, (ignoreClasses ? c.samples.map(() => 'N') : c.classes) as AamiClass[], atrial, { ...options, fs }, length);
    const episodes = afEpisodes(events);
    for (const rule of AF_REFERENCE_RULES) {
      const ref = afReference(ann, length, rule);
      per[rule][record] = durationScore(ref.af, episodes, { fs, length, excluded: ref.excluded });
    }
  }
  return Object.fromEntries(AF_REFERENCE_RULES.map((r) => [r, { per: per[r], gross: grossDurationScore(Object.values(per[r])) }])) as Record<AfReferenceRule, { per: Record<string, DurationScore>; gross: DurationScore }>;
}

if (process.argv[1] && resolve(process.argv[1]).endsWith(join('models', 'ecg-beats', 'af-cv.js'))) {
  const { values } = parseArgs({
    options: { data: { type: 'string' }, classes: { type: 'string' }, rule: { type: 'string' }, on: { type: 'string' }, off: { type: 'string' }, window: { type: 'string' }, vrun: { type: 'string' }, 'p-organized': { type: 'string' }, 'ignore-classes': { type: 'boolean' }, json: { type: 'boolean' } },
  });
  const root = packageRoot();
  const dir = resolve(values.data ?? join(root, '..', 'shared', 'data', 'mitdb'));
  const classes = JSON.parse(readFileSync(values.classes ?? join(root, 'dist', 'cache', 'ecg-beats', 'cv-classes.json'), 'utf8')) as Record<string, { samples: number[]; classes: string[] }>;
  const rule = (values.rule ?? 'ec57') as AfReferenceRule;
  if (!AF_REFERENCE_RULES.includes(rule)) throw new Error(`--rule must be one of ${AF_REFERENCE_RULES.join(', ')}`);
  const options: Partial<AfDetectorOptions> = {};
  if (values.on) options.onThreshold = Number(values.on);
  if (values.off) options.offThreshold = Number(values.off);
  if (values.window) options.windowIntervals = Number(values.window);
  if (values.vrun) options.ventricularRunBeats = Number(values.vrun);
  if (values['p-organized']) options.organizedAtrial = Number(values['p-organized']);
  const results = afCv(dir, classes, options, values['ignore-classes']);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(Object.fromEntries(Object.entries(results).map(([r, x]) => [r, x.gross])))}\n`);
  } else {
    const { per } = results[rule];
    for (const [r, s] of Object.entries(per)) if (s.overlap + s.refOnly + s.detOnly > 0) process.stdout.write(`${r}: Se ${s.se.toFixed(1)} +P ${s.ppv.toFixed(1)} ref ${Math.round((s.overlap + s.refOnly) / 360)} s det ${Math.round((s.overlap + s.detOnly) / 360)} s (${rule})\n`);
    for (const [r, x] of Object.entries(results)) process.stdout.write(`gross (${r}): Se ${x.gross.se.toFixed(2)} +P ${x.gross.ppv.toFixed(2)}\n`);
  }
}
