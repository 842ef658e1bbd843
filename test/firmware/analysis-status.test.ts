// What each analysis runs on, as the runtime reports it: the shipped, signed models load (ECG and
// heart sounds in inference workers, glucose in process); models that fail their signature
// (`artifacts.models` pointing at altered copies) leave each analysis on its rules, say why in the
// status and the audit log, and raise one stored `analysis-degraded` alert each (device clock), not
// again when the device boots with the same models; the status screen shows it at 80 columns.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import type { Alert } from '../../device-sdk/records.js';
import { RULE_CLASSIFIER_ID } from '../../device-sdk/signal/ecg/beat-classes.js';
import { ANALYSIS_DEGRADED, ecgAnalyzer, pcgAnalyzer } from '../../firmware/analyzers.js';
import type { PcgModel } from '../../firmware/pcg-monitor.js';
import { VirtualClock } from '../helpers/virtual-clock.js';
import { syntheticPcg } from '../pcg/synthetic.js';
import { ConfigErrors, parseRuntimeConfig } from '../../firmware/config.js';
import { GLUCOSE_FALLBACK_MODEL_ID } from '../../firmware/glucose-monitor.js';
import { PCG_FALLBACK_ID } from '../../firmware/pcg-monitor.js';
import { readAuditEntries, readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import type { AnalysisStatus } from '../../firmware/status.js';
import { renderRuntimeScreen } from '../../firmware/status-screen.js';
import { ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('analysis');
const DEVICE_TIME = Date.UTC(2020, 0, 1);
const SOURCES = [{ type: 'sim-ecg', chunkMs: 100 }, { type: 'sim-glucose', intervalMs: 1000 }, { type: 'sim-pcg' }];
const byName = (analysis: AnalysisStatus[] | undefined) => Object.fromEntries((analysis ?? []).map((a) => [a.analyzer, a]));

/** A copy of a shipped model directory with one byte of `file` changed (its signature no longer verifies). */
function alteredCopy(dir: string, from: string, file: string): string {
  const to = join(dir, from.replaceAll('/', '-'));
  cpSync(join(ROOT, from), to, { recursive: true });
  const bytes = readFileSync(join(to, file));
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
  writeFileSync(join(to, file), bytes);
  return to;
}

describe('analysis status', () => {
  it('runs the shipped signed models and raises no analysis-degraded alert', async () => {
    const dir = tempDir();
    const config = parseRuntimeConfig({ deviceId: 'analysis-ok', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: SOURCES }, dir);
    const runtime = new Runtime(config, { logger: silentLogger });
    const alerts: Alert[] = [];
    runtime.on('alert', (a) => alerts.push(a));
    expect(Object.values(byName(runtime.status().analysis)).map((a) => a.state)).toContain('loading');
    runtime.start();
    try {
      await waitFor(() => (runtime.status().analysis ?? []).every((a) => a.state !== 'loading'), 'the models to load', 30_000);
      const analysis = byName(runtime.status().analysis);
      expect(Object.keys(analysis).sort()).toEqual(['ecg', 'glucose', 'pcg']);
      const manifest = (path: string) => JSON.parse(readFileSync(join(ROOT, path, 'medge-model.json'), 'utf8')) as { id: string; version: string };
      for (const [name, path] of [
        ['ecg', 'models/ecg-beats'],
        ['glucose', 'models/glucose-forecast/artifact'],
        ['pcg', 'models/pcg-abnormal'],
      ] as const) {
        const m = manifest(path);
        expect(analysis[name]).toEqual({ analyzer: name, state: 'model', algo: `${m.id}@${m.version}`, source: expect.stringContaining(path) });
      }
      expect(alerts.filter((a) => a.kind === ANALYSIS_DEGRADED)).toEqual([]);
    } finally {
      await runtime.stop();
    }
    const audit = readAuditEntries(ledgerPath(join(dir, 'device'))).filter((e) => e.action.startsWith('analysis-'));
    expect(audit.map((e) => e.action).sort()).toEqual(['analysis-ecg', 'analysis-glucose', 'analysis-pcg']);
    expect(audit.find((e) => e.action === 'analysis-ecg')?.detail).toMatch(/^model ecg-beats@[\d.]+ from .*models\/ecg-beats, sha256 [0-9a-f]{16}$/);
  });

  it('keeps each analysis on its rules when its model fails the signature check, says why, and raises one alert per analysis, not again at the next boot', async () => {
    const dir = tempDir();
    const models = {
      ecgBeats: alteredCopy(dir, 'models/ecg-beats', 'weights.bin'),
      glucoseForecast: alteredCopy(dir, 'models/glucose-forecast/artifact', 'detector.bin'),
      pcgAbnormal: alteredCopy(dir, 'models/pcg-abnormal', 'weights.bin'),
    };
    const config = parseRuntimeConfig({ deviceId: 'analysis-refused', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: SOURCES, artifacts: { models } }, dir);
    const boot = async () => {
      // The device clock, not the wall clock, dates the alerts.
      const clock = new VirtualClock(DEVICE_TIME);
      const runtime = new Runtime(config, { logger: silentLogger, clock });
      const alerts: Alert[] = [];
      runtime.on('alert', (a) => alerts.push(a));
      runtime.start();
      try {
        await waitFor(() => (runtime.status().analysis ?? []).every((a) => a.state !== 'loading'), 'the models to be refused', 30_000);
        const screen = renderRuntimeScreen(
          { runtime: runtime.status(), edge: { url: 'mqtt://x', stored: {}, rejected: {}, brokerUp: false }, brokerRestarts: 0, runtimeKills: 0, elapsedMs: 1000, phase: 'running' },
          { width: 80, color: false, now: DEVICE_TIME },
        );
        return { analysis: byName(runtime.status().analysis), screen, degraded: alerts.filter((a) => a.kind === ANALYSIS_DEGRADED) };
      } finally {
        await runtime.stop();
      }
    };

    const first = await boot();
    expect(first.analysis.ecg).toMatchObject({ state: 'fallback', algo: RULE_CLASSIFIER_ID });
    expect(first.analysis.glucose).toMatchObject({ state: 'fallback', algo: GLUCOSE_FALLBACK_MODEL_ID });
    expect(first.analysis.pcg).toMatchObject({ state: 'fallback', algo: PCG_FALLBACK_ID });
    for (const a of Object.values(first.analysis)) expect(a.reason).toMatch(/sha256|signature/i);
    expect(first.degraded).toHaveLength(3);
    for (const a of first.degraded) {
      expect(a.severity).toBe(1); // information: listed and synced, no bedside alarm
      expect(a.t).toBe(DEVICE_TIME);
    }
    expect(first.degraded.map((a) => a.message).sort()).toEqual([
      expect.stringMatching(/^The ECG beat classifier model is not in use \(.*\); beats are classified by rules/),
      expect.stringMatching(/^The glucose forecast model is not in use/),
      expect.stringMatching(/^The heart-sound screen model is not in use/),
    ]);
    // Every line fits 80 columns, and every fallback has its own.
    expect(first.screen).toContain(`ecg: rules only (${RULE_CLASSIFIER_ID})`);
    expect(first.screen).toContain(`glucose: rules only (${GLUCOSE_FALLBACK_MODEL_ID})`);
    expect(first.screen).toContain(`pcg: rules only (${PCG_FALLBACK_ID})`);

    // Same models at the next boot: the status and the audit say so again, the alerts are not repeated.
    const second = await boot();
    expect(Object.values(second.analysis).map((a) => a.state)).toEqual(['fallback', 'fallback', 'fallback']);
    expect(second.degraded).toEqual([]);
    const audit = readAuditEntries(ledgerPath(join(dir, 'device'))).filter((e) => e.action.startsWith('analysis-'));
    expect(audit).toHaveLength(6);
    expect(audit.find((e) => e.action === 'analysis-ecg')?.detail).toMatch(new RegExp(`^fallback ${RULE_CLASSIFIER_ID}: .*sha256`));
    expect(readLedgerSummary(ledgerPath(join(dir, 'device'))).kinds.alert.rows).toBe(3);
  });

  it('reports a model that fails while running: the status falls back and one alert is raised', async () => {
    const loadModel = async () => ({
      manifest: JSON.parse(readFileSync(join(ROOT, 'models/pcg-abnormal/medge-model.json'), 'utf8')) as PcgModel['manifest'],
      sha256: '0'.repeat(64),
      backend: 'wasm' as const,
      predict: () => Promise.reject(new Error('inference worker exited (code 1)')),
      close: () => Promise.resolve(),
    });
    const analyzer = pcgAnalyzer(['steth'], { loadModel, windowS: 5, logger: silentLogger, now: () => DEVICE_TIME });
    const settled: { status: AnalysisStatus; alert?: Alert }[] = [];
    analyzer.start?.({ settled: (status, alert) => settled.push(alert ? { status, alert } : { status }) });
    // Loading starts with the runtime, before any window is ready.
    await waitFor(() => settled.length === 1, 'the model to load at start');
    expect(settled[0]?.status).toMatchObject({ state: 'model', algo: 'pcg-abnormal@1.1.0', source: expect.stringContaining('sha256 0000000000000000') });
    const { samples } = syntheticPcg({ seconds: 6, bpm: 66, rateHz: 4000 });
    analyzer.onChunk?.({ sensor: 'steth', channel: 0, firstSample: 0, t0: DEVICE_TIME, rateHz: 4000, unit: 'au', gain: 1, samples: Int16Array.from(samples, (v) => Math.round(v * 32767)) });
    await analyzer.monitors.get('steth')?.idle();
    expect(analyzer.status?.()).toMatchObject({ state: 'fallback', algo: PCG_FALLBACK_ID, reason: 'inference worker exited (code 1)' });
    expect(settled).toHaveLength(2);
    expect(settled[1]?.alert).toMatchObject({ kind: ANALYSIS_DEGRADED, severity: 1, t: DEVICE_TIME, message: expect.stringContaining('it failed: inference worker exited') });
    await analyzer.close();
  });

  it('refuses a model whose files changed between the signature check and loading', async () => {
    let closed = 0;
    const loadModel = async () => ({
      manifest: JSON.parse(readFileSync(join(ROOT, 'models/pcg-abnormal/medge-model.json'), 'utf8')) as PcgModel['manifest'],
      sha256: 'b'.repeat(64),
      backend: 'wasm' as const,
      predict: () => Promise.resolve(new Float32Array(0)),
      close: () => {
        closed += 1;
        return Promise.resolve();
      },
    });
    // The signature check saw a different medge-model.json than the loader then read.
    const analyzer = pcgAnalyzer(['steth'], { loadModel, verify: () => 'a'.repeat(64), logger: silentLogger, now: () => DEVICE_TIME });
    expect(await analyzer.ready).toBeUndefined();
    expect(analyzer.status?.()).toMatchObject({ state: 'fallback', reason: expect.stringContaining('changed between its signature check and loading') });
    expect(closed).toBe(1);
    await analyzer.close();
  });

  it('refuses an ECG model whose manifest is not the one its signature check saw, in the worker path too', async () => {
    // The check "signed" another medge-model.json than the inference worker then loaded (the shipped one).
    const analyzer = ecgAnalyzer(['ecg'], { models: undefined, verify: () => 'a'.repeat(64), logger: silentLogger, now: () => DEVICE_TIME });
    const settled: { status: AnalysisStatus; alert?: Alert }[] = [];
    analyzer.start?.({ settled: (status, alert) => settled.push(alert ? { status, alert } : { status }) });
    await waitFor(() => settled.length === 1, 'the ECG model to settle', 60_000);
    expect(settled[0]?.status).toMatchObject({ state: 'fallback', algo: RULE_CLASSIFIER_ID, reason: expect.stringContaining('medge-model.json changed between its signature check and loading (signed aaaaaaaaaaaa') });
    expect(settled[0]?.alert).toMatchObject({ kind: ANALYSIS_DEGRADED, severity: 1, t: DEVICE_TIME });
    await analyzer.close?.();
  }, 90_000);

  it('resolves artifacts.models against the config file and refuses unknown model names', () => {
    const config = parseRuntimeConfig({ deviceId: 'd', dataDir: 'data', artifacts: { models: { ecgBeats: 'models/ecg' } } }, '/srv/medge');
    expect(config.artifacts.models).toEqual({ ecgBeats: '/srv/medge/models/ecg' });
    expect(() => parseRuntimeConfig({ deviceId: 'd', dataDir: 'data', artifacts: { models: { ecg: 'x' } } }, '/srv/medge')).toThrow(ConfigErrors);
  });
});
