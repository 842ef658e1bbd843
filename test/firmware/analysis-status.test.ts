// What each analysis runs on, as the runtime reports it: the shipped, signed models load (ECG and
// heart sounds in inference workers, glucose in process); models that fail their signature
// (`artifacts.models` pointing at altered copies) leave each analysis on its rules, say why in the
// status, and raise one stored `analysis-degraded` warning each; the status screen shows it.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import type { Alert } from '../../device-sdk/records.js';
import { RULE_CLASSIFIER_ID } from '../../device-sdk/signal/ecg/beat-classes.js';
import { ANALYSIS_DEGRADED } from '../../firmware/analyzers.js';
import { ConfigErrors, parseRuntimeConfig } from '../../firmware/config.js';
import { GLUCOSE_FALLBACK_MODEL_ID } from '../../firmware/glucose-monitor.js';
import { PCG_FALLBACK_ID } from '../../firmware/pcg-monitor.js';
import { readAuditEntries } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import type { AnalysisStatus } from '../../firmware/status.js';
import { renderRuntimeScreen } from '../../firmware/status-screen.js';
import { ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('analysis');
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
      await waitFor(() => (runtime.status().analysis ?? []).every((a) => a.state !== 'loading'), 'the models to load', 60_000);
      const analysis = byName(runtime.status().analysis);
      expect(Object.keys(analysis).sort()).toEqual(['ecg', 'glucose', 'pcg']);
      const manifest = (path: string) => JSON.parse(readFileSync(join(ROOT, path, 'medge-model.json'), 'utf8')) as { id: string; version: string };
      for (const [name, path] of [
        ['ecg', 'models/ecg-beats'],
        ['glucose', 'models/glucose-forecast/artifact'],
        ['pcg', 'models/pcg-abnormal'],
      ] as const) {
        const m = manifest(path);
        expect(analysis[name]).toEqual({ analyzer: name, state: 'model', algo: `${m.id}@${m.version}` });
      }
      expect(alerts.filter((a) => a.kind === ANALYSIS_DEGRADED)).toEqual([]);
    } finally {
      await runtime.stop();
    }
    const audit = readAuditEntries(ledgerPath(join(dir, 'device'))).filter((e) => e.action.startsWith('analysis-'));
    expect(audit.map((e) => e.action)).toEqual(['analysis-model', 'analysis-model', 'analysis-model']);
    expect(audit.map((e) => e.detail.split(':')[0]).sort()).toEqual(['ecg', 'glucose', 'pcg']);
  });

  it('keeps each analysis on its rules when its model fails the signature check, says why, and stores one warning per analysis', async () => {
    const dir = tempDir();
    const models = {
      ecgBeats: alteredCopy(dir, 'models/ecg-beats', 'weights.bin'),
      glucoseForecast: alteredCopy(dir, 'models/glucose-forecast/artifact', 'detector.bin'),
      pcgAbnormal: alteredCopy(dir, 'models/pcg-abnormal', 'weights.bin'),
    };
    const config = parseRuntimeConfig({ deviceId: 'analysis-refused', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: SOURCES, artifacts: { models } }, dir);
    const runtime = new Runtime(config, { logger: silentLogger });
    const alerts: Alert[] = [];
    runtime.on('alert', (a) => alerts.push(a));
    runtime.start();
    try {
      await waitFor(() => (runtime.status().analysis ?? []).every((a) => a.state !== 'loading'), 'the models to be refused', 60_000);
      const analysis = byName(runtime.status().analysis);
      expect(analysis.ecg).toMatchObject({ state: 'fallback', algo: RULE_CLASSIFIER_ID });
      expect(analysis.glucose).toMatchObject({ state: 'fallback', algo: GLUCOSE_FALLBACK_MODEL_ID });
      expect(analysis.pcg).toMatchObject({ state: 'fallback', algo: PCG_FALLBACK_ID });
      for (const a of Object.values(analysis)) expect(a.reason).toMatch(/sha256|signature/i);
      const degraded = alerts.filter((a) => a.kind === ANALYSIS_DEGRADED);
      expect(degraded).toHaveLength(3);
      for (const a of degraded) expect(a.severity).toBe(2);
      expect(degraded.map((a) => a.message).join('\n')).toMatch(/ECG beat classifier[\s\S]*glucose forecast|glucose forecast[\s\S]*ECG beat classifier/);
      await waitFor(() => runtime.status().produced.alert >= 3, 'the warnings to be stored');

      const screen = renderRuntimeScreen(
        { runtime: runtime.status(), edge: { url: 'mqtt://x', stored: {}, rejected: {}, brokerUp: false }, brokerRestarts: 0, runtimeKills: 0, elapsedMs: 1000, phase: 'running' },
        { width: 200, color: false, now: Date.now() },
      );
      expect(screen).toContain(`ecg ${RULE_CLASSIFIER_ID} (fallback)`);
      expect(screen).toContain(`pcg ${PCG_FALLBACK_ID} (fallback)`);
    } finally {
      await runtime.stop();
    }
    const audit = readAuditEntries(ledgerPath(join(dir, 'device'))).filter((e) => e.action.startsWith('analysis-'));
    expect(audit.map((e) => e.action)).toEqual(['analysis-fallback', 'analysis-fallback', 'analysis-fallback']);
    expect(audit.find((e) => e.detail.startsWith('ecg:'))?.detail).toContain(`${RULE_CLASSIFIER_ID} (fallback: `);
  });

  it('resolves artifacts.models against the config file and refuses unknown model names', () => {
    const config = parseRuntimeConfig({ deviceId: 'd', dataDir: 'data', artifacts: { models: { ecgBeats: 'models/ecg' } } }, '/srv/medge');
    expect(config.artifacts.models).toEqual({ ecgBeats: '/srv/medge/models/ecg' });
    expect(() => parseRuntimeConfig({ deviceId: 'd', dataDir: 'data', artifacts: { models: { ecg: 'x' } } }, '/srv/medge')).toThrow(ConfigErrors);
  });
});
