/**
 * Model inference in a worker thread, so a long batch never stalls the runtime's event loop
 * (sensor I/O, the uplink, alarms). One worker per model; requests are answered in order.
 *
 * A watchdog bounds every wait on the worker: a worker that crashes rejects what is pending with
 * `InferenceError`; one that hangs (stuck in a kernel, a loop, blocked) and misses a deadline is
 * terminated and rejects what is pending with `InferenceTimeoutError` (code `inference-timeout`), so
 * callers fall back exactly as for a crash. `close()` returns within `closeTimeoutMs` even if the thread
 * does not stop.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelManifest } from './artifacts.js';
import type { BackendName } from './backend.js';
// Not from backend.js: the main thread of a worker's owner never loads TF.js.
import { ConfigError, InferenceError, InferenceTimeoutError } from '../errors.js';
import { type Clock, type ClockTimer, systemClock } from '../clock.js';

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

type Ready = { manifest: ModelManifest; sha256: string; backend: BackendName; loadMs: number };

export interface InferenceWorkerOptions {
  /**
   * A request must be answered within this long (ms) of becoming the oldest pending one (its own
   * compute time, not the time it waited behind others); a miss stops the worker (`InferenceTimeoutError`).
   */
  requestTimeoutMs: number;
  /** Backend start and model load must finish within this long (ms). */
  startTimeoutMs: number;
  /** `close()` waits this long (ms) for the thread to stop, then gives up on it (unref'd, it cannot keep the process alive). */
  closeTimeoutMs: number;
  /**
   * Timers of the deadlines. They measure the worker's compute time, so they run on real time
   * (`systemClock`), also when the runtime runs on a simulated clock.
   */
  clock: Pick<Clock, 'monotonic' | 'setTimeout' | 'clearTimeout'>;
  /**
   * The worker entry (default `workerScript()`). Another entry must speak worker-main.ts's protocol;
   * it gets `workerData: { dir, backend }`, plus `entryData` when given.
   */
  script?: string;
  entryData?: unknown;
}

/**
 * Deadlines of an inference worker. Measured (bench/ecg-pipeline.js, README): wasm 0.071 ms per beat
 * single, 0.0067 ms per beat in batches of 64, so the largest batch the beat classifier sends (1024 beats)
 * takes under 0.1 s here and about 1 s on a Raspberry Pi 4 class board; 5 s is several times that, and
 * short enough that beat classes (the ventricular-run and AF alarms) are back on the rules within
 * seconds. Worker start is 0.34 s here (backend and model load 28 ms): 60 s allows a slow SD card.
 */
export const DEFAULT_INFERENCE_WORKER_OPTIONS: Readonly<InferenceWorkerOptions> = Object.freeze({
  requestTimeoutMs: 5000,
  startTimeoutMs: 60_000,
  closeTimeoutMs: 2000,
  clock: systemClock,
});

/** Merges `options` into the defaults; a deadline that is not a positive number of ms throws `ConfigError`. */
export function inferenceWorkerOptions(options: Partial<InferenceWorkerOptions> = {}): InferenceWorkerOptions {
  const merged: InferenceWorkerOptions = { ...DEFAULT_INFERENCE_WORKER_OPTIONS, ...options };
  for (const field of ['requestTimeoutMs', 'startTimeoutMs', 'closeTimeoutMs'] as const) {
    const v = merged[field];
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new ConfigError(`inference.${field}`, v, 'must be a positive number of milliseconds', `omit it for the default (${DEFAULT_INFERENCE_WORKER_OPTIONS[field]} ms)`);
  }
  return merged;
}

export class InferenceWorker {
  readonly manifest: ModelManifest;
  readonly sha256: string;
  readonly backend: BackendName;
  /** Backend start plus model load, in the worker (ms). */
  readonly loadMs: number;
  private readonly worker: Worker;
  private readonly options: InferenceWorkerOptions;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  /**
   * Monotonic time (ms) the oldest pending request became the oldest (posted to an idle worker, or the one
   * before it answered); undefined when nothing is pending. One timer checks it (`watch`): answers only move
   * this mark, so a busy worker costs a timer per `requestTimeoutMs`, not one per request.
   */
  private since: number | undefined;
  private timer: ClockTimer | undefined;

  private constructor(worker: Worker, ready: Ready, options: InferenceWorkerOptions) {
    this.worker = worker;
    this.options = options;
    this.manifest = ready.manifest;
    this.sha256 = ready.sha256;
    this.backend = ready.backend;
    this.loadMs = ready.loadMs;
    worker.on('message', (m: { type: string; id: number; data: Float32Array; shape: number[]; message: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      // The worker answered: the next request's deadline runs from now.
      this.since = this.pending.size > 0 ? this.options.clock.monotonic() : undefined;
      if (m.type === 'result') p.resolve({ data: m.data, shape: m.shape });
      else p.reject(new InferenceError(m.message));
    });
    worker.on('error', (e) => this.fail(new InferenceError(`inference worker failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => this.fail(new InferenceError(`inference worker exited (code ${code})`)));
  }

  /** Starts a worker that loads the model in `dir` on `backend`. Rejects with `InferenceError` (`InferenceTimeoutError` past `startTimeoutMs`). */
  static async start(dir: string, backend: BackendName = 'wasm', options: Partial<InferenceWorkerOptions> = {}): Promise<InferenceWorker> {
    const o = inferenceWorkerOptions(options);
    const worker = new Worker(o.script ?? workerScript(), { workerData: { dir, backend, ...(o.entryData !== undefined ? { entryData: o.entryData } : {}) } });
    let timer: ClockTimer | undefined;
    const ready = await new Promise<Ready>((res, rej) => {
      timer = o.clock.setTimeout(() => rej(new InferenceTimeoutError('start', o.startTimeoutMs, 0)), o.startTimeoutMs);
      worker.once('message', (m: Ready & { type: string; message?: string }) => {
        if (m.type === 'ready') res(m);
        else rej(new InferenceError(m.message ?? 'inference worker failed to start'));
      });
      worker.once('error', (e) => rej(new InferenceError(`inference worker failed: ${e.message}`, { cause: e })));
      worker.once('exit', (code) => rej(new InferenceError(`inference worker exited (code ${code}) before its model loaded`)));
    })
      .catch(async (error: unknown) => {
        await stopThread(worker, o);
        throw error;
      })
      .finally(() => {
        if (timer !== undefined) o.clock.clearTimeout(timer);
      });
    return new InferenceWorker(worker, ready, o);
  }

  /** Runs the model on `data` (row-major, `shape` with the batch first). Rejects with `InferenceTimeoutError` when the worker hangs. */
  predict(data: Float32Array, shape: number[]): Promise<{ data: Float32Array; shape: number[] }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolvePromise, reject) => {
      if (this.pending.size === 0) this.since = this.options.clock.monotonic();
      this.pending.set(id, { resolve: resolvePromise, reject });
      if (this.timer === undefined) this.watch(this.options.requestTimeoutMs);
      this.worker.postMessage({ type: 'predict', id, data, shape });
    });
  }

  /** Lets the process exit while this worker is alive (as `Worker.unref`); requests still work meanwhile. */
  unref(): void {
    this.worker.unref();
  }

  /** Stops the worker; pending requests reject. Returns within `closeTimeoutMs` even if the thread does not stop. */
  async close(): Promise<void> {
    this.fail(new InferenceError('inference worker closed'));
    await stopThread(this.worker, this.options);
  }

  /** Checks the oldest request's deadline in `ms`: stops the worker when it has passed, else checks again when it would. */
  private watch(ms: number): void {
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.since === undefined || this.failure) return;
      const left = this.since + this.options.requestTimeoutMs - this.options.clock.monotonic();
      if (left > 0) return this.watch(left);
      this.fail(new InferenceTimeoutError('request', this.options.requestTimeoutMs, this.pending.size));
      void stopThread(this.worker, this.options);
    }, ms);
  }

  /** The worker is gone or given up on: every pending request and every later one rejects with `error` (the first failure stays). */
  private fail(error: Error): void {
    this.failure ??= error;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.since = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(this.failure);
  }
}

/** Terminates the thread, waiting at most `closeTimeoutMs`; a thread that does not stop by then is unref'd and left. */
async function stopThread(worker: Worker, o: Pick<InferenceWorkerOptions, 'closeTimeoutMs' | 'clock'>): Promise<void> {
  let timer: ClockTimer | undefined;
  const gaveUp = new Promise<void>((res) => {
    timer = o.clock.setTimeout(res, o.closeTimeoutMs);
  });
  await Promise.race([worker.terminate().then(() => undefined, () => undefined), gaveUp]);
  if (timer !== undefined) o.clock.clearTimeout(timer);
  worker.unref();
}
