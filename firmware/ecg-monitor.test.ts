import { describe, expect, it } from 'vitest';
import type { Alert, Finding, Reading, StreamChunk } from '../device-sdk/records.js';
import { continuation, run, simulatedEcg } from '../test/helpers/ecg-chunks.js';
import { EcgMonitor, QRS_MODEL_ID, QRS_MODEL_SHA256 } from './ecg-monitor.js';

describe('EcgMonitor', () => {
  it('bridges short gaps (frames lost to corruption) instead of restarting: the heart rate keeps coming', () => {
    // Every 8th 250 ms chunk lost: a gap every 2 s, shorter than the 4 RR intervals a restart needs.
    const chunks = simulatedEcg(40).filter((_, i) => i % 8 !== 7);
    const { readings, alerts } = run(new EcgMonitor('ecg'), chunks);
    const hr = readings.filter((r) => r.type === 'heart-rate');
    expect(hr.length).toBeGreaterThanOrEqual(6);
    for (const r of hr) expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(3);
    expect(alerts.filter((a) => a.kind === 'ecg-no-beats' || a.kind === 'ecg-af-onset')).toEqual([]);
  });

  it('reports the heart rate of the ECG with provenance and input quality', () => {
    const out = run(new EcgMonitor('ecg'), simulatedEcg(30, 72));
    expect(out.readings.length).toBeGreaterThanOrEqual(4);
    for (const r of out.readings.slice(1)) {
      expect(r).toMatchObject({ sensor: 'ecg', type: 'heart-rate', unit: '/min' });
      expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
    }
    const f = out.findings.filter((x) => x.kind === 'ecg-rate').at(-1);
    expect(f).toMatchObject({ kind: 'ecg-rate', label: 'normal-range', modelId: QRS_MODEL_ID, modelSha256: QRS_MODEL_SHA256 });
    expect(f?.inputQuality).toBeGreaterThan(0.8);
    expect(out.alerts).toEqual([]);
  });

  it('does not carry a flat stretch across a disconnection into the new stream', () => {
    // 10 s of ECG ending in 1 s of flat signal (under the 2 s lead-off time), then the device is gone for
    // 60 s; the new stream starts with 1 s of flat signal, then ECG again.
    const monitor = new EcgMonitor('ecg');
    const ecg = simulatedEcg(10);
    const flatBefore = continuation(ecg.at(-1) as StreamChunk, 1, () => 1000);
    const last = flatBefore.at(-1) as StreamChunk;
    const gone = 60 * last.rateHz;
    const shift = (c: StreamChunk): StreamChunk => ({ ...c, firstSample: c.firstSample + gone, t0: c.t0 + 60_000 });
    const flatAfter = continuation(last, 1, () => 1000).map(shift);
    const again = simulatedEcg(10);
    const per = (again[0] as StreamChunk).samples.length;
    const back = continuation(flatAfter.at(-1) as StreamChunk, 8, (i) => (again[Math.floor(i / per)] as StreamChunk).samples[i % per] as number);
    const out = run(monitor, [...ecg, ...flatBefore, ...flatAfter, ...back]);
    expect(out.alerts.map((a) => a.kind)).toEqual([]);
  });

  it('raises a lead-off warning, then one flat-line alert (severity 3: it may be an arrest) once the signal after beats has been flat for 4 s, and reports no heart rate from it', () => {
    const monitor = new EcgMonitor('ecg');
    const ecg = simulatedEcg(10);
    const last = ecg.at(-1) as StreamChunk;
    const flat = continuation(last, 5, () => 1000);
    const out = run(monitor, [...ecg, ...flat]);
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([
      ['ecg-lead-off', 2],
      ['ecg-flat-line', 3],
    ]);
    expect(out.alerts[0]?.message).toMatch(/^ECG signal went flat: check the electrodes; if it stays flat for 4 s it is raised as urgent/);
    expect(out.alerts[1]?.message).toMatch(/^No ECG signal \(flat line\) for 4 s: check the patient and the electrodes/);
    expect((out.alerts[1]?.t as number) - (out.alerts[0]?.t as number)).toBe(2000);
    // No asystole alert while the lead is off, and no heart rate is reported from a flat line.
    const flatStart = (flat[0] as StreamChunk).t0;
    expect(out.readings.filter((r) => r.tDevice > flatStart + 2_500)).toEqual([]);
  });

  it('learns the lead afresh when the electrodes go back on after a lead-off (here the other way round)', () => {
    const monitor = new EcgMonitor('ecg');
    const ecg = simulatedEcg(20);
    const flat = continuation(ecg.at(-1) as StreamChunk, 5, () => 1000);
    // Back on with the electrodes swapped: the same ECG reversed about its baseline, continuing the stream.
    const again = simulatedEcg(20);
    const per = (again[0] as StreamChunk).samples.length;
    const reversed = continuation(flat.at(-1) as StreamChunk, 20, (i) => 2 * 1000 - ((again[Math.floor(i / per)] as StreamChunk).samples[i % per] as number));
    const polarity = () => (monitor['frontEnd'] as unknown as { extractor: { polarity: number } }).extractor.polarity;
    run(monitor, ecg);
    expect(polarity()).toBe(1);
    const generation = monitor['generation'];
    const out = run(monitor, [...flat, ...reversed]);
    expect(out.alerts.map((a) => a.kind)).toEqual(['ecg-lead-off', 'ecg-flat-line']);
    // A new front end, turned to the canonical polarity of the reversed lead.
    expect(monitor['generation']).toBe(generation + 1);
    expect(polarity()).toBe(-1);
    const hr = out.readings.filter((r) => r.type === 'heart-rate' && r.tDevice > (reversed[0] as StreamChunk).t0 + 5_000);
    expect(hr.length).toBeGreaterThanOrEqual(2);
    for (const r of hr) expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
  });

  it('raises a lead-off alert (severity 2) for a lead flat from the start, before any beat', () => {
    const ecg = simulatedEcg(1);
    const flat = [ecg[0] as StreamChunk, ...continuation(ecg[0] as StreamChunk, 10, () => 1000)].map((c) => ({ ...c, samples: new Int16Array(c.samples.length).fill(1000) }));
    const out = run(new EcgMonitor('ecg'), flat);
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([['ecg-lead-off', 2]]);
  });

  it('raises no-beats (severity 3) when a lead goes back on showing only baseline noise, and no heart rate from it', () => {
    const ecg = simulatedEcg(20);
    const flat = continuation(ecg.at(-1) as StreamChunk, 10, () => 1000);
    // Back on: 20 s of baseline noise (about 0.03 mV SD at 200/mV), no QRS.
    const noise = lcg(5);
    const quiet = continuation(flat.at(-1) as StreamChunk, 20, () => 1000 + Math.round(6 * (noise() + noise() + noise() + noise() - 2) * 1.7));
    const out = run(new EcgMonitor('ecg'), [...ecg, ...flat, ...quiet]);
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([
      ['ecg-lead-off', 2],
      ['ecg-flat-line', 3],
      ['ecg-no-beats', 3],
    ]);
    const back = (quiet[0] as StreamChunk).t0;
    expect((out.alerts[2] as Alert).t - back).toBeLessThanOrEqual(11_000);
    expect(out.readings.filter((r) => r.tDevice > back)).toEqual([]);
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

/** A synthetic ECG stream (ADC units, gain 200/mV) with R peaks at the given RR intervals (s), in 250 ms chunks. */
function syntheticEcg(rr: number[], fs = 360, fibrillation?: () => number): StreamChunk[] {
  const peaks: number[] = [];
  let t = fs;
  for (const r of rr) {
    peaks.push(t);
    t += Math.round(r * fs);
  }
  const length = t + fs;
  const x = new Int16Array(length);
  for (const p of peaks) for (let k = -14; k <= 14; k++) x[p + k] = Math.round(240 * (1 - Math.abs(k) / 14));
  // A little baseline activity so that the lead is never flat.
  for (let i = 0; i < length; i++) x[i] = (x[i] as number) + Math.round(6 * Math.sin(i / 30));
  // Fibrillatory waves (when given): disorganised atrial activity, different before every QRS.
  if (fibrillation) for (let i = 0; i < length; i++) x[i] = (x[i] as number) + Math.round(12 * (fibrillation() - 0.5));
  const per = fs / 4;
  const chunks: StreamChunk[] = [];
  for (let i = 0; i < length; i += per) chunks.push({ sensor: 'ecg', channel: 0, firstSample: i, t0: 1_000_000 + (i * 1000) / fs, rateHz: fs, unit: 'mV', gain: 200, samples: x.slice(i, i + per) });
  return chunks;
}

/** A seeded uniform random number generator in [0, 1) (linear congruential). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * Unit-test double: classifies every beat as `cls` (probability 0.9), or as `cls(k)` for the k-th beat it
 * has seen, asynchronously like the worker.
 */
class MockBeatClassifier {
  readonly modelId = 'mock-beats@1';
  readonly modelSha256 = 'f'.repeat(64);
  batches = 0;
  private beats = 0;
  constructor(private readonly cls: number | ((beat: number) => number)) {}
  async classify(_features: Float32Array, count: number): Promise<Float32Array> {
    this.batches += 1;
    await new Promise((r) => setImmediate(r));
    const p = new Float32Array(count * 5).fill(0.025);
    for (let i = 0; i < count; i++) p[i * 5 + (typeof this.cls === 'number' ? this.cls : this.cls(this.beats++))] = 0.9;
    return p;
  }
}

async function runAsync(monitor: EcgMonitor, chunks: StreamChunk[]) {
  const out = { readings: [] as Reading[], findings: [] as Finding[], alerts: [] as Alert[] };
  const take = (o: { readings: Reading[]; findings: Finding[]; alerts: Alert[] }) => {
    out.readings.push(...o.readings);
    out.findings.push(...o.findings);
    out.alerts.push(...o.alerts);
  };
  for (const c of chunks) {
    take(monitor.push(c));
    // Let the classifier answer now and then, as the event loop does between sensor chunks.
    await new Promise((r) => setImmediate(r));
  }
  take(await monitor.drain());
  return out;
}

describe('EcgMonitor beat classes and rhythm', () => {
  it('raises a ventricular run (severity 2), then a sustained run (severity 3) once, from classified beats', async () => {
    const classifier = new MockBeatClassifier(2);
    const monitor = new EcgMonitor('ecg', {}, classifier);
    const out = await runAsync(monitor, syntheticEcg(Array.from({ length: 100 }, () => 0.4)));
    expect(classifier.batches).toBeGreaterThan(1);
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([
      ['ecg-ventricular-run', 2],
      ['ecg-sustained-ventricular-run', 3],
    ]);
    expect(out.alerts[0]?.message).toMatch(/decision support/);
    const runs = out.findings.filter((f) => f.kind === 'ecg-ventricular-run');
    expect(runs.map((f) => f.label)).toEqual(['ventricular-run-suspected', 'sustained-ventricular-run-suspected']);
    expect(runs[0]).toMatchObject({ modelId: 'mock-beats@1', probability: 0.9 });
    expect(runs[0]?.value).toBeGreaterThan(140);
    expect(runs[0]?.inputQuality).toBeGreaterThan(0);
    const classes = out.findings.filter((f) => f.kind === 'ecg-beat-classes');
    expect(classes.length).toBeGreaterThan(3);
    expect(classes.at(-1)).toMatchObject({ label: 'ventricular-ectopy', modelId: 'mock-beats@1' });
  });

  it('raises one ventricular alert per episode and escalates once when V beats in runs dominate a fast rhythm for 30 s, though the classifier calls some beats N', async () => {
    // 180 /min for 60 s; the classes as the model gives them on the flutter of MIT-BIH 207 (about half V).
    const pattern = 'VVNVVVNNVVSVVNNVVVNVNNVVVV';
    const classifier = new MockBeatClassifier((k) => (pattern[k % pattern.length] === 'V' ? 2 : pattern[k % pattern.length] === 'S' ? 1 : 0));
    const out = await runAsync(new EcgMonitor('ecg', {}, classifier), syntheticEcg(Array.from({ length: 180 }, () => 1 / 3)));
    // The old monitor reset the run at every beat not classified V: a new severity-2 alert for every run, never severity 3.
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([
      ['ecg-ventricular-run', 2],
      ['ecg-sustained-ventricular-run', 3],
    ]);
    expect(out.findings.filter((f) => f.kind === 'ecg-ventricular-run').map((f) => f.label)).toEqual(['ventricular-run-suspected', 'sustained-ventricular-run-suspected']);
  });

  it('does not escalate ventricular bigeminy after a run, and re-arms after 20 s without a run', async () => {
    // 110 /min: a run of 4 V, then bigeminy (N V N V ...) for 40 s, then 25 s of N, then another run of 4 V.
    const classes = [...'NNNNNNNNNN', ...'VVVV', ...'NV'.repeat(37), ...'N'.repeat(46), ...'VVVV', ...'NNNNNNNNNN'];
    const classifier = new MockBeatClassifier((k) => (classes[k] === 'V' ? 2 : 0));
    const out = await runAsync(new EcgMonitor('ecg', {}, classifier), syntheticEcg(Array.from({ length: classes.length + 8 }, () => 60 / 110)));
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([
      ['ecg-ventricular-run', 2],
      ['ecg-ventricular-run', 2],
    ]);
  });

  it('raises an AF onset alert on irregular N-N intervals and reports the episode as a finding with quality', async () => {
    const random = lcg(11);
    const rr = [...Array.from({ length: 60 }, () => 0.8), ...Array.from({ length: 150 }, () => 0.45 + 0.6 * random())];
    const out = await runAsync(new EcgMonitor('ecg', {}, new MockBeatClassifier(0)), syntheticEcg(rr, 360, random));
    expect(out.alerts.map((a) => [a.kind, a.severity])).toEqual([['ecg-af-onset', 2]]);
    const af = out.findings.find((f) => f.kind === 'ecg-af');
    expect(af).toMatchObject({ label: 'af-suspected', modelId: 'algo:af-rr-irregularity@2' });
    // A classifier with no measured AF figures: the lower of those measured (the rule fallback's +P, 85.64 %).
    expect(af?.probability).toBe(0.856);
    expect(af?.inputQuality).toBeGreaterThan(0.5);
    expect(Array.isArray(af?.qualityFlags)).toBe(true);
    // The onset is dated back into the irregular stretch (after the regular minute, before the decision).
    expect(af?.intervalStart).toBeGreaterThan(1_000_000 + 48_000);
    expect(af?.intervalStart).toBeLessThan(af?.t as number);
  });

  it('reports a beat the model calls S as N while AF is detected (no sinus rhythm to be premature against)', async () => {
    const random = lcg(11);
    // Every fifth beat called S, the rest N, in the regular minute and in the irregular stretch alike.
    const classifier = new MockBeatClassifier((beat) => (beat % 5 === 0 ? 1 : 0));
    const rr = [...Array.from({ length: 60 }, () => 0.8), ...Array.from({ length: 150 }, () => 0.45 + 0.6 * random())];
    const out = await runAsync(new EcgMonitor('ecg', {}, classifier), syntheticEcg(rr, 360, random));
    const onset = out.findings.find((f) => f.kind === 'ecg-af' && f.label === 'af-suspected');
    expect(onset).toBeDefined();
    const sOf = (f: Finding) => Number(/S (\d+)/.exec(f.evidence ?? '')?.[1]);
    const classes = out.findings.filter((f) => f.kind === 'ecg-beat-classes');
    const before = classes.filter((f) => f.t < (onset?.t as number));
    const during = classes.filter((f) => (f.intervalStart as number) > (onset?.t as number));
    expect(before.reduce((n, f) => n + sOf(f), 0)).toBeGreaterThan(5);
    expect(during.length).toBeGreaterThan(3);
    expect(during.map(sOf)).toEqual(during.map(() => 0));
  });

  it('falls back to the rule classifier when the model fails, and says why', async () => {
    const failing = { modelId: 'broken@1', modelSha256: '0'.repeat(64), classify: () => Promise.reject(new Error('worker exited')) };
    const monitor = new EcgMonitor('ecg', {}, failing);
    const out = await runAsync(monitor, syntheticEcg(Array.from({ length: 30 }, () => 0.8)));
    expect(monitor.classifierId).toBe('algo:beat-rules@1');
    expect(monitor.lastClassifierError).toBe('worker exited');
    expect(out.findings.filter((f) => f.kind === 'ecg-beat-classes').at(-1)).toMatchObject({ label: 'no-ectopy', modelId: 'algo:beat-rules@1' });
  });
});
