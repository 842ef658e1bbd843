import { readFileSync } from 'node:fs';
import { MedgeError } from '../../device-sdk/errors.js';
import { BACKENDS, type BackendName } from '../../device-sdk/inference/backend.js';
import { readWav } from '../../device-sdk/protocols/wav.js';
import { loadPcgModelInProcess, pcgModelDir, screenRecording } from '../pcg-monitor.js';
import { parse, UsageError } from './args.js';

export const PCG_USAGE = `Usage: medge pcg classify FILE.wav... [--json] [--model DIR] [--backend wasm|cpu]

classify  screens heart-sound recordings (any PCM WAV: 8/16/24/32-bit or float, any rate, mono or
          stereo) with the pcg-abnormal model: normal, abnormal (murmur or extra sound) or unreadable
          (too short, flat, clipped or too noisy to judge). One line per file; with --json one object
          per line: {"file","label","probability","heartRate","quality"} (probability of abnormal,
          null when unreadable; heart rate in /min from the S1-S1 intervals, null when none).
          Decision support for auscultation, not a diagnosis.`;

export async function pcgCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(`${PCG_USAGE}\n`);
    return 0;
  }
  if (sub === 'classify') return classify(rest);
  throw new UsageError(sub === undefined ? 'pcg needs a subcommand' : `unknown pcg subcommand ${JSON.stringify(sub)}; subcommands are: classify`, PCG_USAGE);
}

async function classify(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, model: { type: 'string' }, backend: { type: 'string' } }, PCG_USAGE, Number.MAX_SAFE_INTEGER);
  if (values.help) {
    process.stdout.write(`${PCG_USAGE}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('at least one FILE.wav is required', PCG_USAGE);
  const backend = (values.backend ?? 'wasm') as BackendName;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(values.backend)}`, PCG_USAGE);
  const model = await loadPcgModelInProcess(values.model ?? pcgModelDir(), backend);
  let failed = 0;
  try {
    for (const file of positionals) {
      let line: Record<string, unknown>;
      try {
        const wav = readWav(new Uint8Array(readFileSync(file)));
        const r = await screenRecording(model, wav.samples, wav.rateHz);
        line = { file, label: r.label, probability: r.probability, heartRate: r.heartRate, quality: r.analysis.quality.score };
        if (r.analysis.quality.flags.length > 0) line.qualityFlags = r.analysis.quality.flags;
      } catch (error) {
        if (!(error instanceof MedgeError) && (error as NodeJS.ErrnoException).code === undefined) throw error;
        failed += 1;
        line = { file, label: 'unreadable', probability: null, heartRate: null, error: (error as Error).message };
      }
      if (values.json) process.stdout.write(`${JSON.stringify(line)}\n`);
      else {
        const p = typeof line.probability === 'number' ? ` p(abnormal)=${line.probability.toFixed(2)}` : '';
        const hr = typeof line.heartRate === 'number' ? ` heart rate ${line.heartRate}/min` : '';
        const why = line.error ? ` (${String(line.error)})` : Array.isArray(line.qualityFlags) ? ` (${line.qualityFlags.join(', ')})` : '';
        process.stdout.write(`${file}: ${String(line.label)}${p}${hr}${why}\n`);
      }
    }
    if (!values.json) process.stdout.write(`model ${model.manifest.id} ${model.manifest.version} (${model.sha256.slice(0, 12)}…) on ${model.backend}; decision support, not a diagnosis\n`);
  } finally {
    await model.close();
  }
  return failed > 0 ? 1 : 0;
}
