/** ECG stream chunks for the `EcgMonitor` tests: the simulated ECG source, continuations of a stream, and a run collecting the outputs. */
import type { StreamChunk } from '../../device-sdk/records.js';
import type { EcgMonitor } from '../../firmware/ecg-monitor.js';
import { createSimSource } from '../../firmware/sources/sim-sources.js';
import { VirtualClock } from './virtual-clock.js';

/** Chunks of the simulated ECG source (72 /min) over `seconds` of virtual time. */
export function simulatedEcg(seconds: number, heartRateBpm = 72): StreamChunk[] {
  const clock = new VirtualClock();
  const chunks: StreamChunk[] = [];
  const source = createSimSource({ type: 'sim-ecg', heartRateBpm, chunkMs: 250 }, clock, 3);
  source.start({ chunk: (c) => chunks.push(c), reading: () => undefined, raw: () => undefined });
  clock.advance(seconds * 1000);
  source.stop();
  return chunks;
}

export function run(monitor: EcgMonitor, chunks: StreamChunk[]) {
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
export function continuation(after: StreamChunk, seconds: number, fill: (i: number) => number): StreamChunk[] {
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

/** A seeded standard normal generator (Box-Muller over a linear congruential generator). */
export function gaussian(seed: number): () => number {
  let s = seed;
  const uniform = () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}
