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
import { loadPcgModelInWorker, PCG_FALLBACK_SHA256, type PcgModel, pcgModelDir, PcgMonitor, type PcgMonitorOutput } from '../../firmware/pcg-monitor.js';
import type { AnalyzerOutput } from '../../firmware/analyzers.js';
import { VirtualClock } from '../helpers/virtual-clock.js';
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

/** What a monitor gives over several calls, gathered in `all` (`take` accepts nothing too). */
function collector(): { all: PcgMonitorOutput; take: (o: PcgMonitorOutput | undefined) => void } {
  const all: PcgMonitorOutput = { readings: [], findings: [], alerts: [] };
  const take = (o: PcgMonitorOutput | undefined) => {
    if (!o) return;
    all.readings.push(...o.readings);
    all.findings.push(...o.findings);
    all.alerts.push(...o.alerts);
  };
  return { all, take };
}

async function run(monitor: PcgMonitor, input: StreamChunk[]): Promise<PcgMonitorOutput> {
  const { all, take } = collector();
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

  describe('at the end of a recording, and across a gap (QA D6)', () => {
    async function pushAll(monitor: PcgMonitor, input: StreamChunk[]): Promise<PcgMonitorOutput> {
      const { all, take } = collector();
      for (const c of input) take(monitor.push(c));
      take(await monitor.flush());
      return all;
    }

    it('screens a recording shorter than the window when it ends (14 s of a 15 s window), with the model', async () => {
      const pcg = syntheticPcg({ seconds: 14, bpm: 75, rateHz: 4000 });
      const out = await pushAll(new PcgMonitor('steth', model, { windowS: 15 }), chunks(pcg.samples, 4000));
      expect(out.findings).toHaveLength(1);
      const [f] = out.findings;
      expect(['normal', 'abnormal']).toContain(f!.label);
      expect(f).toMatchObject({ kind: 'heart-sound-screen', modelId: `${model.manifest.id}@${model.manifest.version}`, intervalStart: 1_000_000, intervalEnd: 1_014_000 });
      expect(f!.evidence).toContain('partial window (14.0 of 15 s): closed by the stream ended');
      expect(out.readings.map((r) => r.value)).toEqual([75]);
    });

    it('screens the tail of a longer recording instead of dropping it (28 s: 15 s + 13 s)', async () => {
      const pcg = syntheticPcg({ seconds: 28, bpm: 75, rateHz: 4000 });
      const out = await pushAll(new PcgMonitor('steth', model, { windowS: 15 }), chunks(pcg.samples, 4000));
      expect(out.findings.map((f) => [f.intervalStart, f.intervalEnd])).toEqual([
        [1_000_000, 1_015_000],
        [1_015_000, 1_028_000],
      ]);
      expect(out.readings).toHaveLength(2);
    });

    it('closes the window at a stream gap rather than splicing across it, and reports a tail too short to screen', async () => {
      const pcg = syntheticPcg({ seconds: 30, bpm: 75, rateHz: 4000 });
      const all = chunks(pcg.samples, 4000);
      // 8 s, then samples 8-20 s are missing, then 10 s, then 20 s later a last second.
      const input = [...all.slice(0, 8), ...all.slice(20, 29), { ...(all[29] as StreamChunk), firstSample: 49 * 4000, t0: 1_049_000 }];
      const out = await pushAll(new PcgMonitor('steth', model, { windowS: 15 }), input);
      expect(out.findings.map((f) => [f.intervalStart, f.intervalEnd, f.label === 'unreadable'])).toEqual([
        [1_000_000, 1_008_000, false],
        [1_020_000, 1_029_000, false],
        [1_049_000, 1_050_000, true],
      ]);
      expect(out.findings[0]!.evidence).toContain('closed by a stream gap (sample 32000 expected, 80000 came)');
      // Samples lost at a gap cut the window before it short, as a WAV file cut short is flagged (both gaps); the last one ended with the stream.
      expect(out.findings.map((f) => f.qualityFlags?.includes('truncated') === true)).toEqual([true, true, false]);
      expect(out.findings[2]).toMatchObject({ label: 'unreadable', qualityFlags: ['too-short'], inputQuality: 0 });
      expect(out.findings[2]!.evidence).toBe('too short: 1.0 s of heart sounds before the stream ended; at least 1.2 s are needed to screen');
    });

    it('names the rule fallback and its hash in every finding (QA D11)', async () => {
      const out = await pushAll(new PcgMonitor('steth', undefined, { windowS: 15 }), chunks(syntheticPcg({ seconds: 16, bpm: 70, rateHz: 4000 }).samples, 4000));
      expect(out.findings.map((f) => [f.label, f.modelId])).toEqual([
        ['not-screened', 'algo:pcg-segmentation@1'],
        ['unreadable', 'algo:pcg-segmentation@1'],
      ]);
      for (const f of out.findings) expect(f.modelSha256).toBe(PCG_FALLBACK_SHA256);
      expect(PCG_FALLBACK_SHA256).toMatch(/^[0-9a-f]{64}$/);
    });

    it('in the analyzer: a sensor whose chunks stop for 2 s has its partial window screened and emitted', async () => {
      const clock = new VirtualClock();
      const analyzer = pcgAnalyzer(['steth'], { windowS: 15, logger: silentLogger, loadModel: async () => model, clock });
      const emitted: AnalyzerOutput[] = [];
      analyzer.start?.({ settled: () => {}, emit: (o) => emitted.push(o) });
      for (const c of chunks(syntheticPcg({ seconds: 6, bpm: 80, rateHz: 4000 }).samples, 4000)) {
        expect(analyzer.onChunk?.(c)).toBeUndefined();
        clock.advance(1000);
      }
      clock.advance(900); // 1.9 s without a chunk: the recording goes on
      await analyzer.monitors.get('steth')!.idle();
      expect(emitted).toEqual([]);
      clock.advance(200);
      await analyzer.monitors.get('steth')!.idle();
      await new Promise((resolve) => setImmediate(resolve));
      expect(emitted.flatMap((o) => o.findings ?? []).map((f) => [f.kind, f.intervalEnd])).toEqual([['heart-sound-screen', 1_006_000]]);
      expect(emitted.flatMap((o) => o.readings ?? []).map((r) => r.value)).toEqual([80]);
      // Nothing is left for the flush at stop.
      expect((await analyzer.flush?.())?.findings).toEqual([]);
      await analyzer.close();
    });
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
