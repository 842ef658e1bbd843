// The inference worker's watchdog, on real worker threads running the real worker and the shipped beat model:
// a thread that hangs (a test entry that busy-waits after N answers, or before its model loads) misses its
// deadline, is terminated, and every pending and later request rejects with InferenceTimeoutError
// (code inference-timeout) within the deadline; close() returns at once. A worker that answers is unaffected.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceError, InferenceTimeoutError } from '../../device-sdk/errors.js';
import { ConfigError } from '../../device-sdk/errors.js';
import { InferenceWorker, inferenceWorkerOptions, workerScript } from '../../device-sdk/inference/worker.js';
import { requireBuild, ROOT } from '../helpers/cli.js';

const MODEL = join(ROOT, 'models', 'ecg-beats');
const HANGING = join(ROOT, 'test', 'fixtures', 'inference', 'hanging-worker.mjs');
const WIDTH = 75;
const beats = (n: number) => new Float32Array(n * WIDTH).fill(0.1);

describe('inference worker watchdog', () => {
  it('stops a worker that stops answering and rejects its pending and later requests with inference-timeout', async () => {
    requireBuild();
    const worker = await InferenceWorker.start(MODEL, 'wasm', { script: HANGING, entryData: { real: workerScript(), answer: 2 }, requestTimeoutMs: 800 });
    try {
      // Answered as by the real worker, with the deadline armed and cleared each time.
      for (let i = 0; i < 2; i++) expect((await worker.predict(beats(64), [64, WIDTH])).shape).toEqual([64, 5]);
      const t0 = performance.now();
      // The third request hangs the thread; the fourth waits behind it.
      const hung = worker.predict(beats(64), [64, WIDTH]).catch((e: unknown) => e);
      const behind = worker.predict(beats(1), [1, WIDTH]).catch((e: unknown) => e);
      const error = await hung;
      const waitedMs = performance.now() - t0;
      expect(error).toBeInstanceOf(InferenceTimeoutError);
      expect(error).toBeInstanceOf(InferenceError);
      expect(error).toMatchObject({ code: 'inference-timeout', stage: 'request', timeoutMs: 800, pendingRequests: 2, message: expect.stringContaining('no result within 0.8 s') });
      expect(waitedMs).toBeGreaterThanOrEqual(790);
      expect(waitedMs).toBeLessThan(3000);
      expect(await behind).toBe(error);
      // Later requests reject at once; close returns at once (the thread was terminated already).
      await expect(worker.predict(beats(1), [1, WIDTH])).rejects.toMatchObject({ code: 'inference-timeout' });
      const c0 = performance.now();
      await worker.close();
      expect(performance.now() - c0).toBeLessThan(500);
    } finally {
      await worker.close();
    }
  }, 30_000);

  it('measures a request from when the worker could start it, not from when it was queued', async () => {
    requireBuild();
    // Five batches of 1024 beats queued at once, each well under the 2 s deadline: none times out.
    const worker = await InferenceWorker.start(MODEL, 'wasm', { requestTimeoutMs: 2000 });
    try {
      const out = await Promise.all(Array.from({ length: 5 }, () => worker.predict(beats(1024), [1024, WIDTH])));
      expect(out.map((o) => o.shape)).toEqual(Array.from({ length: 5 }, () => [1024, 5]));
    } finally {
      await worker.close();
    }
  }, 30_000);

  it('gives up on a worker that does not load its model in time', async () => {
    requireBuild();
    const t0 = performance.now();
    const error = await InferenceWorker.start(MODEL, 'wasm', { script: HANGING, entryData: { real: workerScript(), hangAtStart: true }, startTimeoutMs: 600 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'inference-timeout', stage: 'start', timeoutMs: 600, message: expect.stringContaining('did not load within 0.6 s') });
    expect(performance.now() - t0).toBeLessThan(3000);
  }, 30_000);

  it('refuses a deadline that is not a positive number of ms, naming the field', () => {
    expect(() => inferenceWorkerOptions({ requestTimeoutMs: 0 })).toThrow(ConfigError);
    expect(() => inferenceWorkerOptions({ requestTimeoutMs: Number.NaN })).toThrow(/inference\.requestTimeoutMs: must be a positive number of milliseconds/);
    expect(inferenceWorkerOptions({ requestTimeoutMs: 1000 })).toMatchObject({ requestTimeoutMs: 1000, startTimeoutMs: 60_000, closeTimeoutMs: 2000 });
  });
});
