/**
 * AF duration Se/+P of the AF detector over the beat classes of the cross-validation (each record's
 * classes come from a model that never saw it): `node dist/models/ecg-beats/af-cv.js [--data DIR]
 * [--classes FILE] [--on X --off Y --window N]`. Reads the `cv-classes.json` that train.ts writes.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { afEpisodes, AfDetector, type AfDetectorOptions, type AfEvent } from '../../device-sdk/signal/ecg/af-detector.js';
import { type DurationScore, durationScore, grossDurationScore, rhythmEpisodes } from '../../device-sdk/signal/ecg/ec57.js';
import { packageRoot } from '../../firmware/package-root.js';
import { readWfdbAnnotations } from '../../simulator/sources/wfdb-files.js';

export function afCv(dir: string, classes: Record<string, { samples: number[]; classes: string[] }>, options: Partial<AfDetectorOptions>, ignoreClasses = false) {
  const per: Record<string, DurationScore> = {};
  for (const [record, c] of Object.entries(classes)) {
    const fs = 360;
    const ann = readWfdbAnnotations(join(dir, record), 'atr').annotations;
    const length = 650000;
    const det = new AfDetector({ ...options, fs });
    const events: AfEvent[] = [];
    c.samples.forEach((s, i) => events.push(...det.push({ sample: s, cls: ignoreClasses ? 'N' : (c.classes[i] as string) })));
    events.push(...det.finish(length));
    per[record] = durationScore(rhythmEpisodes(ann, '(AFIB', length), afEpisodes(events), { fs, length });
  }
  return { per, gross: grossDurationScore(Object.values(per)) };
}

if (process.argv[1] && resolve(process.argv[1]).endsWith(join('models', 'ecg-beats', 'af-cv.js'))) {
  const { values } = parseArgs({ options: { data: { type: 'string' }, classes: { type: 'string' }, on: { type: 'string' }, off: { type: 'string' }, window: { type: 'string' }, 'ignore-classes': { type: 'boolean' } } });
  const root = packageRoot();
  const dir = resolve(values.data ?? join(root, '..', 'shared', 'data', 'mitdb'));
  const classes = JSON.parse(readFileSync(values.classes ?? join(root, 'dist', 'cache', 'ecg-beats', 'cv-classes.json'), 'utf8')) as Record<string, { samples: number[]; classes: string[] }>;
  const options: Partial<AfDetectorOptions> = {};
  if (values.on) options.onThreshold = Number(values.on);
  if (values.off) options.offThreshold = Number(values.off);
  if (values.window) options.windowIntervals = Number(values.window);
  const { per, gross } = afCv(dir, classes, options, values['ignore-classes']);
  for (const [r, s] of Object.entries(per)) if (s.overlap + s.refOnly + s.detOnly > 0) process.stdout.write(`${r}: Se ${s.se.toFixed(1)} +P ${s.ppv.toFixed(1)} ref ${Math.round((s.overlap + s.refOnly) / 360)} s det ${Math.round((s.overlap + s.detOnly) / 360)} s\n`);
  process.stdout.write(`gross: Se ${gross.se.toFixed(2)} +P ${gross.ppv.toFixed(2)}\n`);
}
