import { describe, expect, it } from 'vitest';
import type { StreamChunk } from '../device-sdk/records.js';
import { VirtualClock } from '../test/helpers/virtual-clock.js';
import { EcgMonitor, QRS_MODEL_ID, QRS_MODEL_SHA256 } from './ecg-monitor.js';
import { createSimSource } from './sources/sim-sources.js';

/** Chunks of the simulated ECG source (72 /min) over `seconds` of virtual time. */
function simulatedEcg(seconds: number, heartRateBpm = 72): StreamChunk[] {
  const clock = new VirtualClock();
  const chunks: StreamChunk[] = [];
  const source = createSimSource({ type: 'sim-ecg', heartRateBpm, chunkMs: 250 }, clock, 3);
  source.start({ chunk: (c) => chunks.push(c), reading: () => undefined, raw: () => undefined });
  clock.advance(seconds * 1000);
  source.stop();
  return chunks;
}

function run(monitor: EcgMonitor, chunks: StreamChunk[]) {
  const out = { readings: [] as ReturnType<EcgMonitor['push']>['readings'], findings: [] as ReturnType<EcgMonitor['push']>['findings'], alerts: [] as ReturnType<EcgMonitor['push']>['alerts'] };
  for (const c of chunks) {
    const o = monitor.push(c);
    out.readings.push(...o.readings);
    out.findings.push(...o.findings);
    out.alerts.push(...o.alerts);
  }
  return out;
}

/** Chunks continuing `after`'s stream: `fill(i)` gives sample i of the continuation. */
function continuation(after: StreamChunk, seconds: number, fill: (i: number) => number): StreamChunk[] {
  const out: StreamChunk[] = [];
  const per = Math.round(after.rateHz / 4);
  let first = after.firstSample + after.samples.length;
  let t0 = after.t0 + (after.samples.length * 1000) / after.rateHz;
  for (let k = 0; k < seconds * 4; k++) {
    const samples = Int16Array.from({ length: per }, (_, i) => fill(k * per + i));
    out.push({ ...after, firstSample: first, t0, samples });
    first += per;
    t0 += (per * 1000) / after.rateHz;
  }
  return out;
}

describe('EcgMonitor', () => {
  it('reports the heart rate of the ECG with provenance and input quality', () => {
    const out = run(new EcgMonitor('ecg'), simulatedEcg(30, 72));
    expect(out.readings.length).toBeGreaterThanOrEqual(4);
    for (const r of out.readings.slice(1)) {
      expect(r).toMatchObject({ sensor: 'ecg', type: 'heart-rate', unit: '/min' });
      expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
    }
    const f = out.findings.at(-1);
    expect(f).toMatchObject({ kind: 'ecg-rate', label: 'normal-range', modelId: QRS_MODEL_ID, modelSha256: QRS_MODEL_SHA256 });
    expect(f?.inputQuality).toBeGreaterThan(0.8);
    expect(out.alerts).toEqual([]);
  });

  it('raises one lead-off alert for a flat signal and reports no heart rate from it', () => {
    const monitor = new EcgMonitor('ecg');
    const ecg = simulatedEcg(10);
    const last = ecg.at(-1) as StreamChunk;
    const flat = continuation(last, 5, () => 1000);
    const out = run(monitor, [...ecg, ...flat]);
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([['ecg-lead-off', 2]]);
    // No asystole alert while the lead is off, and no heart rate is reported from a flat line.
    const flatStart = (flat[0] as StreamChunk).t0;
    expect(out.readings.filter((r) => r.tDevice > flatStart + 2_500)).toEqual([]);
  });

  it('raises an urgent alert when a connected lead shows no QRS for 4 s', () => {
    const monitor = new EcgMonitor('ecg');
    const ecg = simulatedEcg(10);
    // Low-amplitude irregular baseline (not flat): the lead is on, but there is no QRS.
    const quiet = continuation(ecg.at(-1) as StreamChunk, 6, (i) => Math.round(20 * Math.sin(i / 40) + ((i * 7919) % 13) - 6));
    const out = run(monitor, [...ecg, ...quiet]);
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([['ecg-no-beats', 3]]);
    expect(out.alerts[0]?.message).toMatch(/decision support/);
  });
});
