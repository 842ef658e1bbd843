// A beat classifier worker that hangs (QA defect: the worker stuck in a kernel or a loop, not crashed). The
// worker is a real thread running the real worker and the shipped model, through a test entry
// (test/fixtures/inference/hanging-worker.mjs) that answers a few batches and then busy-waits forever.
// Before the watchdog: EcgMonitor.drain() and Runtime.stop() never returned, and beat classes stopped with
// no alert. Now the worker misses its deadline, is terminated, and the analysis falls back to the rules as
// for a crash: one analysis-degraded alert that says the model stopped answering, beats (also those queued
// behind the hung batch) classified by rules, stop() returns. Rate and asystole never wait for the model.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Finding, StreamChunk } from '../../device-sdk/records.js';
import { RULE_CLASSIFIER_ID } from '../../device-sdk/signal/ecg/beat-classes.js';
import { readAuditEntries, readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { workerScript } from '../../device-sdk/inference/worker.js';
import { ANALYSIS_DEGRADED, pcgAnalyzer } from '../../firmware/analyzers.js';
import { loadPcgModelInWorker, PCG_FALLBACK_ID } from '../../firmware/pcg-monitor.js';
import { syntheticPcg } from '../pcg/synthetic.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { WorkerBeatClassifier } from '../../firmware/ecg-classifier.js';
import { EcgMonitor } from '../../firmware/ecg-monitor.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { requireBuild, ROOT } from '../helpers/cli.js';
import { continuation, simulatedEcg } from '../helpers/ecg-chunks.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('inference-hang');
const HANGING = join(ROOT, 'test', 'fixtures', 'inference', 'hanging-worker.mjs');
const hangingAfter = (answer: number) => ({ script: HANGING, entryData: { real: workerScript(), answer } });

/** `p`, or an error naming `what` once `ms` have passed (so that a hang fails the test instead of stalling it). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
  });
  try {
    return { value: await Promise.race([p, late]), ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

describe('a beat classifier worker that hangs', () => {
  /** A monitor on a real worker that answers one batch and hangs on the next; `failures` collects onClassifierError. */
  async function hangingMonitor() {
    const classifier = await WorkerBeatClassifier.start(join(ROOT, 'models', 'ecg-beats'), 'wasm', 1024, { ...hangingAfter(1), requestTimeoutMs: 1000 });
    const monitor = new EcgMonitor('ecg', {}, classifier);
    const failures: { reason: string; error: unknown }[] = [];
    monitor.onClassifierError = (reason, error) => failures.push({ reason, error });
    return { classifier, monitor, failures };
  }
  const pushAll = (monitor: EcgMonitor, chunks: StreamChunk[]) => {
    const out = { alerts: [] as Alert[], findings: [] as Finding[], rates: 0 };
    for (const c of chunks) {
      const o = monitor.push(c);
      out.alerts.push(...o.alerts);
      out.findings.push(...o.findings);
      out.rates += o.readings.filter((r) => r.type === 'heart-rate').length;
    }
    return out;
  };
  /** Beats counted by `ecg-beat-classes` findings (their evidence: "N 5, S 0, V 0, F 0, Q 0"). */
  const counted = (fs: Finding[]) => fs.reduce((n, f) => n + [...(f.evidence ?? '').matchAll(/[NSVFQ] (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0), 0);

  it('EcgMonitor: heart rate and the asystole alarm come while the worker hangs; drain returns once the deadline passes', async () => {
    requireBuild();
    const { classifier, monitor, failures } = await hangingMonitor();
    try {
      const ecg = simulatedEcg(20);
      // Pushed at once: the first batch is answered, the second (every beat queued meanwhile) hangs the worker.
      pushAll(monitor, ecg.slice(0, 40));
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The heart stops: a connected lead with a low irregular baseline and no QRS.
      const arrest = continuation(ecg.at(-1) as StreamChunk, 6, (i) => Math.round(20 * Math.sin(i / 40) + ((i * 7919) % 13) - 6));
      const during = pushAll(monitor, [...ecg.slice(40), ...arrest]);
      // Without waiting for the model: heart rate from the QRS detector, and the asystole alarm.
      expect(during.rates).toBeGreaterThanOrEqual(1);
      expect(during.alerts.map((a) => [a.kind, a.severity])).toEqual([['ecg-no-beats', 3]]);
      expect(failures).toEqual([]);
      const { ms } = await within(monitor.drain(), 10_000, 'EcgMonitor.drain()');
      expect(ms).toBeLessThan(4000);
      expect(failures).toHaveLength(1);
      expect(failures[0]?.error).toMatchObject({ code: 'inference-timeout', stage: 'request', timeoutMs: 1000 });
      expect(monitor.classifierId).toBe(RULE_CLASSIFIER_ID);
    } finally {
      await within(classifier.close(), 5000, 'WorkerBeatClassifier.close()');
    }
  }, 60_000);

  it('EcgMonitor: the hung batch and the beats queued behind it are classified by rules, not lost', async () => {
    requireBuild();
    const { classifier, monitor } = await hangingMonitor();
    try {
      const ecg = simulatedEcg(40);
      const first = pushAll(monitor, ecg.slice(0, 80));
      await new Promise((resolve) => setTimeout(resolve, 300));
      // 20-30 s: these beats queue behind the hung batch.
      const during = pushAll(monitor, ecg.slice(80, 120));
      await within(monitor.drain(), 10_000, 'EcgMonitor.drain()');
      const after = pushAll(monitor, ecg.slice(120));
      const beforeHang = counted([...first.findings, ...during.findings].filter((f) => f.kind === 'ecg-beat-classes'));
      const rules = after.findings.filter((f) => f.kind === 'ecg-beat-classes');
      expect(rules.every((f) => f.modelId === RULE_CLASSIFIER_ID)).toBe(true);
      // Every beat of the 40 s at 72 /min (48, less those before acquisition) reached a class: 45 here; 33 when
      // the beats queued behind the hung batch were dropped with the model (before this change).
      expect(beforeHang + counted(rules)).toBeGreaterThanOrEqual(40);
    } finally {
      await within(classifier.close(), 5000, 'WorkerBeatClassifier.close()');
    }
  }, 60_000);

  it('Runtime: one analysis-degraded alert saying the model stopped answering, beats classified by rules afterwards, stop() returns', async () => {
    requireBuild();
    const dir = tempDir();
    const config = parseRuntimeConfig({ deviceId: 'hang-1', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: [{ type: 'sim-ecg', chunkMs: 100 }] }, dir);
    const runtime = new Runtime(config, { logger: silentLogger, inference: { ...hangingAfter(12), requestTimeoutMs: 1000 } });
    const alerts: Alert[] = [];
    runtime.on('alert', (a) => alerts.push(a));
    const ecgStatus = () => (runtime.status().analysis ?? []).find((a) => a.analyzer === 'ecg');
    runtime.start();
    let stopped = false;
    let degradedAt = 0;
    try {
      await waitFor(() => ecgStatus()?.state === 'model', 'the ECG model to load', 30_000);
      await waitFor(() => alerts.some((a) => a.kind === ANALYSIS_DEGRADED), 'an analysis-degraded alert after the worker hangs', 25_000);
      degradedAt = Date.now();
      expect(ecgStatus()).toMatchObject({ state: 'fallback', algo: RULE_CLASSIFIER_ID, reason: expect.stringContaining('the model stopped answering: no result within 1 s') });
      // Two more 5 s reading intervals on the rules.
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      const { ms } = await within(runtime.stop(), 10_000, 'Runtime.stop()');
      stopped = true;
      expect(ms).toBeLessThan(5000);
    } finally {
      if (!stopped) await within(runtime.stop(), 10_000, 'Runtime.stop() (cleanup)').catch(() => undefined);
    }
    const degraded = alerts.filter((a) => a.kind === ANALYSIS_DEGRADED);
    expect(degraded).toHaveLength(1);
    expect(degraded[0]).toMatchObject({ severity: 1, message: expect.stringMatching(/^The ECG beat classifier model is not in use \(it failed: the model stopped answering: no result within 1 s; its inference worker was stopped\); beats are classified by rules .*\. The model is restarted in 1 min \(restart 1 of 3 since the runtime started\)/) });
    const findings = readLedgerBodies(ledgerPath(join(dir, 'device')), 'finding').map((row) => decodeBody('finding', row.body) as Finding);
    const classes = findings.filter((f) => f.kind === 'ecg-beat-classes');
    // The model classified beats before the hang, the rules after it; rate findings went on throughout.
    expect(classes.some((f) => f.modelId.startsWith('ecg-beats@'))).toBe(true);
    const after = classes.filter((f) => f.t > degradedAt);
    expect(after.length).toBeGreaterThanOrEqual(2);
    expect(after.every((f) => f.modelId === RULE_CLASSIFIER_ID && /N [1-9]/.test(f.evidence ?? ''))).toBe(true);
    expect(findings.filter((f) => f.kind === 'ecg-rate' && f.t > degradedAt).length).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it('Runtime: restarts the stopped worker after its delay; a model that hangs each time is restarted only as often as the config file says', async () => {
    requireBuild();
    const dir = tempDir();
    // The deadline and the restarts come from the config file's `inference` section (only the hanging worker entry from the test).
    const config = parseRuntimeConfig(
      { deviceId: 'hang-2', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: [{ type: 'sim-ecg', chunkMs: 100 }], inference: { requestTimeoutMs: 1000, restartDelaysMs: [1000] } },
      dir,
    );
    // Every worker (the restarted one too) answers 6 batches and hangs on the 7th.
    const runtime = new Runtime(config, { logger: silentLogger, inference: hangingAfter(6) });
    const alerts: Alert[] = [];
    runtime.on('alert', (a) => alerts.push(a));
    const states: string[] = [];
    const ecgState = () => (runtime.status().analysis ?? []).find((a) => a.analyzer === 'ecg')?.state ?? '?';
    runtime.start();
    const poll = setInterval(() => {
      if (states.at(-1) !== ecgState()) states.push(ecgState());
    }, 20);
    try {
      await waitFor(() => alerts.filter((a) => a.kind === ANALYSIS_DEGRADED).length === 2, 'two analysis-degraded alerts', 60_000);
      // No third restart: the analysis stays on the rules.
      await new Promise((resolve) => setTimeout(resolve, 4000));
      expect(ecgState()).toBe('fallback');
    } finally {
      clearInterval(poll);
      await within(runtime.stop(), 10_000, 'Runtime.stop()');
    }
    expect(states).toEqual(['loading', 'model', 'fallback', 'model', 'fallback']);
    const degraded = alerts.filter((a) => a.kind === ANALYSIS_DEGRADED);
    expect(degraded).toHaveLength(2);
    expect(degraded[0]?.message).toMatch(/The model is restarted in 1 s \(restart 1 of 1 since the runtime started\)/);
    expect(degraded[1]?.message).toMatch(/stopped answering: no result within 1 s.*It is not restarted again until the device runtime restarts/);
    const audit = readAuditEntries(ledgerPath(join(dir, 'device'))).filter((e) => e.action === 'analysis-ecg').map((e) => e.detail.split(' ')[0]);
    expect(audit).toEqual(['model', 'fallback', 'model', 'fallback']);
  }, 90_000);

  it('heart-sound screen: a hung worker is stopped at its deadline, the window is reported without the model, and the model is restarted', async () => {
    requireBuild();
    const settled: { state: string; alert?: Alert }[] = [];
    // Every worker hangs on its first screen.
    const analyzer = pcgAnalyzer(['steth'], {
      loadModel: (d) => loadPcgModelInWorker(d, 'wasm', { ...hangingAfter(0), requestTimeoutMs: 1000 }),
      windowS: 5,
      logger: silentLogger,
      now: () => 0,
      modelRestarts: { delaysMs: [300] },
    });
    analyzer.start?.({ settled: (status, alert) => settled.push(alert ? { state: status.state, alert } : { state: status.state }) });
    const { samples } = syntheticPcg({ seconds: 6, bpm: 66, rateHz: 4000 });
    const chunk = { sensor: 'steth', channel: 0, firstSample: 0, t0: 0, rateHz: 4000, unit: 'au', gain: 1, samples: Int16Array.from(samples, (v) => Math.round(v * 32767)) };
    try {
      await waitFor(() => settled.length === 1, 'the heart-sound model to load', 30_000);
      analyzer.onChunk?.(chunk);
      const { value: out, ms } = await within(analyzer.flush?.('steth') ?? Promise.resolve(undefined), 10_000, 'the heart-sound flush');
      expect(ms).toBeLessThan(4000);
      expect(out?.findings?.map((f) => [f.label, f.modelId])).toEqual([['not-screened', PCG_FALLBACK_ID]]);
      expect(settled[1]?.alert?.message).toMatch(/^The heart-sound screen model is not in use \(it failed: the model stopped answering: no result within 1 s; its inference worker was stopped\).*restarted in 300 ms \(restart 1 of 1/);
      await waitFor(() => settled.length === 3, 'the restarted heart-sound model', 30_000);
      expect(settled.map((x) => x.state)).toEqual(['model', 'fallback', 'model']);
      // The restarted worker screens the next window (and hangs on it: no restarts are left).
      analyzer.onChunk?.({ ...chunk, firstSample: samples.length, t0: 6000 });
      await within(analyzer.flush?.('steth') ?? Promise.resolve(undefined), 10_000, 'the second heart-sound flush');
      expect(settled.map((x) => x.state)).toEqual(['model', 'fallback', 'model', 'fallback']);
      expect(settled[3]?.alert?.message).toMatch(/It is not restarted again until the device runtime restarts/);
    } finally {
      await within(analyzer.close(), 10_000, 'the heart-sound analyzer close');
    }
  }, 90_000);
});
