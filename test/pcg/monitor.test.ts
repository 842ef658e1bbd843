/**
 * The runtime's heart-sound path: PcgMonitor over stream chunks with the shipped model in a real
 * inference worker (wasm), its findings, readings and alerts, and the fallback when the model is refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../device-sdk/random.js';
import type { StreamChunk } from '../../device-sdk/records.js';
import { sha256Hex } from '../../device-sdk/security/signing.js';
import { pcgAnalyzer } from '../../firmware/analyzers.js';
import { loadPcgModelInWorker, type PcgModel, pcgModelDir, PcgMonitor, type PcgMonitorOutput } from '../../firmware/pcg-monitor.js';
import { silentLogger } from '../../device-sdk/log.js';
import { requireBuild } from '../helpers/cli.js';
import { syntheticPcg } from './synthetic.js';

/** Cuts a signal (-1..1) into 1 s int16 chunks as a stethoscope driver delivers them. */
function chunks(samples: Float32Array, rateHz: number, sensor = 'steth'): StreamChunk[] {
  const out: StreamChunk[] = [];
  for (let i = 0; i < samples.length; i += rateHz) {
    const part = samples.subarray(i, i + rateHz);
    out.push({ sensor, channel: 0, firstSample: i, t0: 1_000_000 + (i * 1000) / rateHz, rateHz, unit: 'au', gain: 1, samples: Int16Array.from(part, (v) => Math.round(v * 32767)) });
  }
  return out;
}

async function run(monitor: PcgMonitor, input: StreamChunk[]): Promise<PcgMonitorOutput> {
  const all: PcgMonitorOutput = { readings: [], findings: [], alerts: [] };
  const take = (o: PcgMonitorOutput | undefined) => {
    if (!o) return;
    all.readings.push(...o.readings);
    all.findings.push(...o.findings);
    all.alerts.push(...o.alerts);
  };
  for (const c of input) take(monitor.push(c));
  await monitor.idle();
  // Results of the last window come with the next chunk.
  take(monitor.push({ ...(input[0] as StreamChunk), channel: 1 }));
  return all;
}

describe('PcgMonitor with the shipped model in an inference worker', () => {
  let model: PcgModel;
  beforeAll(async () => {
    requireBuild();
    model = await loadPcgModelInWorker(pcgModelDir(), 'wasm');
  });
  afterAll(async () => {
    await model?.close();
  });

  it('screens 15 s windows: heart rate, a screen finding with model provenance and input quality', async () => {
    const pcg = syntheticPcg({ seconds: 31, bpm: 75, rateHz: 4000 });
    const out = await run(new PcgMonitor('steth', model, { windowS: 15 }), chunks(pcg.samples, 4000));
    expect(out.findings).toHaveLength(2);
    const manifestSha = sha256Hex(readFileSync(join(pcgModelDir(), 'medge-model.json')));
    for (const f of out.findings) {
      expect(f.kind).toBe('heart-sound-screen');
      expect(['normal', 'abnormal']).toContain(f.label);
      expect(f.modelId).toBe(`${model.manifest.id}@${model.manifest.version}`);
      expect(f.modelSha256).toBe(manifestSha);
      expect(f.inputQuality).toBeGreaterThan(0.6);
      expect(f.probability).toBeGreaterThanOrEqual(0);
      expect(f.probability).toBeLessThanOrEqual(1);
      expect((f.intervalEnd as number) - (f.intervalStart as number)).toBe(15_000);
    }
    expect(out.readings.map((r) => r.value)).toEqual([75, 75]);
    expect(out.readings[0]).toMatchObject({ sensor: 'steth', type: 'heart-rate', unit: '/min', context: { method: 'pcg-s1' } });
  });

  it('answers unreadable for noise without heart sounds, with its quality flags, and raises no alert', async () => {
    const rand = mulberry32(3);
    const noise = Float32Array.from({ length: 16 * 4000 }, () => 0.2 * (2 * rand() - 1));
    const out = await run(new PcgMonitor('steth', model, { windowS: 15 }), chunks(noise, 4000));
    expect(out.findings).toHaveLength(1);
    expect(out.findings[0]).toMatchObject({ kind: 'heart-sound-screen', label: 'unreadable' });
    expect(out.findings[0]?.qualityFlags?.length).toBeGreaterThan(0);
    expect(out.alerts).toEqual([]);
    expect(out.readings).toEqual([]);
    // Nor a heart rate in the finding: noise has no S1/S2 cycles to count.
    expect(out.findings[0]).not.toHaveProperty('value');
  });

  it('gives no heart rate, as a reading or in the finding, for a silent window (with or without the model)', async () => {
    const silent = new Float32Array(16 * 4000);
    for (const m of [model, undefined]) {
      const out = await run(new PcgMonitor('steth', m, { windowS: 15 }), chunks(silent, 4000));
      expect(out.findings).toHaveLength(1);
      expect(out.findings[0]).toMatchObject({ kind: 'heart-sound-screen', label: 'unreadable' });
      expect(out.findings[0]?.qualityFlags).toContain('flat');
      expect(out.findings[0]).not.toHaveProperty('value');
      expect(out.readings).toEqual([]);
    }
  });
});

describe('PcgMonitor alerts', () => {
  // A model that always answers `p`: the alert logic is under test, not the model.
  const fixedModel = (p: number, real: PcgModel['manifest']): PcgModel => ({
    manifest: real,
    sha256: 'f'.repeat(64),
    backend: 'cpu',
    predict: async (_b, rows) => new Float32Array(rows).fill(p),
    close: async () => {},
  });
  const manifest = JSON.parse(readFileSync(join(pcgModelDir(), 'medge-model.json'), 'utf8')) as PcgModel['manifest'];

  it('raises one decision-support alert per episode (severity 2 when p >= 0.8), re-armed by a normal window', async () => {
    const pcg = syntheticPcg({ seconds: 46, rateHz: 4000 });
    const monitor = new PcgMonitor('steth', fixedModel(0.9, manifest), { windowS: 15 });
    const first = await run(monitor, chunks(pcg.samples.subarray(0, 31 * 4000), 4000));
    expect(first.findings.map((f) => f.label)).toEqual(['abnormal', 'abnormal']);
    expect(first.alerts).toHaveLength(1);
    expect(first.alerts[0]).toMatchObject({ kind: 'pcg-abnormal-heart-sound', severity: 2, sensor: 'steth' });
    expect(first.alerts[0]?.message).toMatch(/decision support/);
    expect(first.alerts[0]?.message).not.toMatch(/diagnos/i);
    monitor.setModel(fixedModel(0.1, manifest));
    const chunksAll = chunks(pcg.samples, 4000);
    const second = await run(monitor, chunksAll.slice(31, 46));
    expect(second.findings.map((f) => f.label)).toEqual(['normal']);
    monitor.setModel(fixedModel(0.6, manifest));
    const third = await run(monitor, chunks(syntheticPcg({ seconds: 16, rateHz: 4000, seed: 5 }).samples, 4000));
    expect(third.alerts).toHaveLength(1);
    expect(third.alerts[0]?.severity).toBe(1);
  });

  it('without a usable model (refused by verification) reports heart rate and quality only', async () => {
    const analyzer = pcgAnalyzer(['steth'], {
      windowS: 10,
      logger: silentLogger,
      verify: () => {
        throw new Error('signature does not verify');
      },
    });
    expect(await analyzer.ready).toBeUndefined();
    const monitor = analyzer.monitors.get('steth') as PcgMonitor;
    const out = await run(monitor, chunks(syntheticPcg({ seconds: 11, bpm: 66 }).samples, 4000));
    expect(out.findings).toHaveLength(1);
    expect(out.findings[0]).toMatchObject({ label: 'not-screened', modelId: 'algo:pcg-segmentation@1' });
    expect(out.readings[0]?.value).toBe(66);
    expect(out.alerts).toEqual([]);
    await analyzer.close();
  });
});
