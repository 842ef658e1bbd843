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
import { afEpisodes, AfDetector, type AfDetectorOptions, type AfEvent, AtrialActivity } from '../../device-sdk/signal/ecg/af-detector.js';
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

export function afCv(dir: string, classes: Record<string, { samples: number[]; classes: string[] }>, options: Partial<AfDetectorOptions>, ignoreClasses = false, rule: AfReferenceRule = 'ec57', atrialCache?: Map<string, number[]>) {
  const per: Record<string, DurationScore> = {};
  for (const [record, c] of Object.entries(classes)) {
    const fs = 360;
    const ann = readWfdbAnnotations(join(dir, record), 'atr').annotations;
    const length = 650000;
    const det = new AfDetector({ ...options, fs });
    const events: AfEvent[] = [];
    let atrial = atrialCache?.get(record);
    if (!atrial) {
      atrial = atrialValues(dir, record, c.samples);
      atrialCache?.set(record, atrial);
    }
    const a = atrial;
    c.samples.forEach((s, i) => events.push(...det.push({ sample: s, cls: ignoreClasses ? 'N' : (c.classes[i] as string), atrial: a[i] })));
    events.push(...det.finish(length));
    const ref = afReference(ann, length, rule);
    per[record] = durationScore(ref.af, afEpisodes(events), { fs, length, excluded: ref.excluded });
  }
  return { per, gross: grossDurationScore(Object.values(per)) };
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
  const cache = new Map<string, number[]>();
  const results = Object.fromEntries(AF_REFERENCE_RULES.map((r) => [r, afCv(dir, classes, options, values['ignore-classes'], r, cache)]));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(Object.fromEntries(Object.entries(results).map(([r, x]) => [r, x.gross])))}\n`);
  } else {
    const { per } = results[rule] as ReturnType<typeof afCv>;
    for (const [r, s] of Object.entries(per)) if (s.overlap + s.refOnly + s.detOnly > 0) process.stdout.write(`${r}: Se ${s.se.toFixed(1)} +P ${s.ppv.toFixed(1)} ref ${Math.round((s.overlap + s.refOnly) / 360)} s det ${Math.round((s.overlap + s.detOnly) / 360)} s (${rule})\n`);
    for (const [r, x] of Object.entries(results)) process.stdout.write(`gross (${r}): Se ${x.gross.se.toFixed(2)} +P ${x.gross.ppv.toFixed(2)}\n`);
  }
}
