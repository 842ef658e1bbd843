import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../device-sdk/inference/backend.js';
import { MODEL_MANIFEST_FILE } from '../device-sdk/inference/files.js';
import { InferenceWorker, type InferenceWorkerOptions } from '../device-sdk/inference/worker.js';
import { type BeatClassifier, beatModelMismatch, splitSupraventricular, type SupraventricularRule, supraventricularRuleOf } from '../device-sdk/signal/ecg/beat-classes.js';
import { AAMI_CLASSES } from '../device-sdk/signal/ecg/beat-features.js';
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

  /**
   * Starts the model of `dir` in a worker; refuses (InferenceError) one whose manifest does not fit this build's
   * features (`beatModelMismatch`). `worker`: the worker's deadlines (`DEFAULT_INFERENCE_WORKER_OPTIONS`): a
   * batch not classified in time rejects with `InferenceTimeoutError` and the worker is stopped.
   */
  static async start(dir = defaultBeatModelDir(), backend: BackendName = 'wasm', maxBatch = 1024, worker: Partial<InferenceWorkerOptions> = {}): Promise<WorkerBeatClassifier> {
    if (!existsSync(dir)) throw new InferenceError(`beat classifier directory ${dir} does not exist (the shipped model is in ${defaultBeatModelDir()})`);
    if (!existsSync(join(dir, MODEL_MANIFEST_FILE))) throw new InferenceError(`no beat classifier model in ${dir} (run npm run train:ecg)`);
    const started = await InferenceWorker.start(dir, backend, worker);
    const mismatch = beatModelMismatch(started.manifest, dir);
    if (mismatch) {
      await started.close();
      throw new InferenceError(mismatch.message);
    }
    return new WorkerBeatClassifier(started, maxBatch);
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
