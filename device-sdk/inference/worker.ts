/**
 * Model inference in a worker thread, so a long batch never stalls the runtime's event loop
 * (sensor I/O, the uplink, alarms). One worker per model; requests are answered in order.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelManifest } from './artifacts.js';
import type { BackendName } from './backend.js';
// Not from backend.js: the main thread of a worker's owner never loads TF.js.
import { InferenceError } from '../errors.js';

/** The compiled worker script. From TypeScript sources (tests) it is the built copy under dist/. */
export function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const js = join(dirname(here), 'worker-main.js');
  if (here.endsWith('.js')) return js;
  const built = resolve(dirname(here), '../../dist/device-sdk/inference/worker-main.js');
  if (!existsSync(built)) throw new InferenceError(`the inference worker is not built (${built}): run npm run build`);
  return built;
}

interface Pending {
  resolve: (r: { data: Float32Array; shape: number[] }) => void;
  reject: (e: Error) => void;
}

export class InferenceWorker {
  readonly manifest: ModelManifest;
  readonly sha256: string;
  readonly backend: BackendName;
  /** Backend start plus model load, in the worker (ms). */
  readonly loadMs: number;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;

  private constructor(worker: Worker, ready: { manifest: ModelManifest; sha256: string; backend: BackendName; loadMs: number }) {
    this.worker = worker;
    this.manifest = ready.manifest;
    this.sha256 = ready.sha256;
    this.backend = ready.backend;
    this.loadMs = ready.loadMs;
    worker.on('message', (m: { type: string; id: number; data: Float32Array; shape: number[]; message: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.type === 'result') p.resolve({ data: m.data, shape: m.shape });
      else p.reject(new InferenceError(m.message));
    });
    const fail = (error: Error) => {
      this.failure = error;
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    };
    worker.on('error', (e) => fail(new InferenceError(`inference worker failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => fail(new InferenceError(`inference worker exited (code ${code})`)));
  }

  /** Starts a worker that loads the model in `dir` on `backend`. Rejects with `InferenceError`. */
  static async start(dir: string, backend: BackendName = 'wasm'): Promise<InferenceWorker> {
    const worker = new Worker(workerScript(), { workerData: { dir, backend } });
    const ready = await new Promise<{ manifest: ModelManifest; sha256: string; backend: BackendName; loadMs: number }>((res, rej) => {
      worker.once('message', (m: { type: string; message?: string; manifest: ModelManifest; sha256: string; backend: BackendName; loadMs: number }) => {
        if (m.type === 'ready') res(m);
        else rej(new InferenceError(m.message ?? 'inference worker failed to start'));
      });
      worker.once('error', (e) => rej(new InferenceError(`inference worker failed: ${e.message}`, { cause: e })));
    }).catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    return new InferenceWorker(worker, ready);
  }

  /** Runs the model on `data` (row-major, `shape` with the batch first). */
  predict(data: Float32Array, shape: number[]): Promise<{ data: Float32Array; shape: number[] }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolvePromise, reject) => {
      this.pending.set(id, { resolve: resolvePromise, reject });
      this.worker.postMessage({ type: 'predict', id, data, shape });
    });
  }

  /** Lets the process exit while this worker is alive (as `Worker.unref`); requests still work meanwhile. */
  unref(): void {
    this.worker.unref();
  }

  async close(): Promise<void> {
    this.failure ??= new InferenceError('inference worker closed');
    await this.worker.terminate();
  }
}
