import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../device-sdk/inference/backend.js';
import { InferenceWorker } from '../device-sdk/inference/worker.js';
import { type BeatClassifier, splitSupraventricular, type SupraventricularRule, supraventricularRuleOf } from '../device-sdk/signal/ecg/beat-classes.js';
import { AAMI_CLASSES, DEFAULT_BEAT_FEATURE_OPTIONS, featureLength } from '../device-sdk/signal/ecg/beat-features.js';
import { InferenceError } from '../device-sdk/errors.js';
import { packageRoot } from './package-root.js';

/** The shipped beat classifier's directory. */
export function defaultBeatModelDir(): string {
  return join(packageRoot(), 'models', 'ecg-beats');
}

/**
 * The beat classifier model in an inference worker thread (wasm by default), batching beats: one
 * `classify` call is one `predict` of all its rows, cut into batches of `maxBatch`. When the manifest
 * carries the supraventricular rhythm rule (`thresholds.sv*`), the model's N + S probability is split
 * between N and S by that rule (`splitSupraventricular`): the model decides the beat's origin, the
 * rhythm decides whether a supraventricular beat is ectopic.
 */
export class WorkerBeatClassifier implements BeatClassifier {
  readonly modelId: string;
  readonly modelSha256: string;
  /** The rhythm rule of the manifest, if any. */
  readonly supraventricularRule: SupraventricularRule | undefined;
  private constructor(
    readonly worker: InferenceWorker,
    private readonly maxBatch: number,
  ) {
    this.supraventricularRule = supraventricularRuleOf(worker.manifest.thresholds);
    this.modelId = `${worker.manifest.id}@${worker.manifest.version}`;
    this.modelSha256 = worker.sha256;
  }

  static async start(dir = defaultBeatModelDir(), backend: BackendName = 'wasm', maxBatch = 1024): Promise<WorkerBeatClassifier> {
    if (!existsSync(join(dir, 'medge-model.json'))) throw new InferenceError(`no beat classifier model in ${dir} (run npm run train:ecg)`);
    const worker = await InferenceWorker.start(dir, backend);
    const labels = worker.manifest.labels.join(',');
    const width = (worker.manifest.input as { shape?: (number | null)[] }).shape?.[1];
    if (labels !== AAMI_CLASSES.join(',') || width !== featureLength()) {
      await worker.close();
      throw new InferenceError(`${dir}: the model reads ${String(width)} features into labels ${labels}; this build extracts ${featureLength()} features into ${AAMI_CLASSES.join(',')}`);
    }
    // Models up to ecg-beats 1.3.0 were trained on the lead's own sign and without the mains notch (no
    // `polarity` or `mainsHz` in their feature options): their features are not the ones this build extracts.
    const options = (worker.manifest.input as { featureOptions?: { polarity?: string; mainsHz?: number[] } }).featureOptions;
    const polarity = options?.polarity ?? 'as-recorded';
    const mains = (options?.mainsHz ?? []).join(',');
    if (polarity !== DEFAULT_BEAT_FEATURE_OPTIONS.polarity || mains !== DEFAULT_BEAT_FEATURE_OPTIONS.mainsHz.join(',')) {
      await worker.close();
      throw new InferenceError(
        `${dir}: ${worker.manifest.id}@${worker.manifest.version} was trained on ${polarity} lead polarity and ${mains ? `${mains} Hz notched` : 'no mains notch'}; this build extracts ${DEFAULT_BEAT_FEATURE_OPTIONS.polarity} polarity with ${DEFAULT_BEAT_FEATURE_OPTIONS.mainsHz.join(',')} Hz notched: use the model shipped with this build (models/ecg-beats; 1.3.0 and earlier cannot be used)`,
      );
    }
    return new WorkerBeatClassifier(worker, maxBatch);
  }

  async classify(features: Float32Array, count: number, width: number): Promise<Float32Array> {
    const out = new Float32Array(count * AAMI_CLASSES.length);
    for (let i = 0; i < count; i += this.maxBatch) {
      const n = Math.min(this.maxBatch, count - i);
      const { data } = await this.worker.predict(features.slice(i * width, (i + n) * width), [n, width]);
      out.set(data, i * AAMI_CLASSES.length);
    }
    return this.supraventricularRule ? splitSupraventricular(out, features, count, width, this.supraventricularRule) : out;
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
