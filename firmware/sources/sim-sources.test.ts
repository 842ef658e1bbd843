import { describe, expect, it } from 'vitest';
import type { Clock } from '../../device-sdk/clock.js';
import { ConfigError, DecodeError, MedgeError } from '../../device-sdk/errors.js';
import type { Reading, StreamChunk } from '../../device-sdk/records.js';
import { decodeGlucoseLine } from './glucose-line-codec.js';
import { createSimSource, type SourceSink } from './sim-sources.js';
import { VirtualClock as MockClock } from '../../test/helpers/virtual-clock.js';


function collect() {
  const chunks: StreamChunk[] = [];
  const readings: Reading[] = [];
  const raws: { bytes: Uint8Array; info: { transport: string; source: string; codec: string }; t: number }[] = [];
  const sink = (clock: Clock): SourceSink => ({
    chunk: (c) => chunks.push(c),
    reading: (r) => readings.push(r),
    raw: (bytes, info) => raws.push({ bytes, info, t: clock.now() }),
  });
  return { chunks, readings, raws, sink };
}

function expectContiguous(chunks: StreamChunk[]): number {
  let next = 0;
  for (const c of chunks) {
    expect(c.firstSample).toBe(next);
    next += c.samples.length;
  }
  return next;
}

describe('sim-ecg', () => {
  it('emits exactly 3600 contiguous samples over 10 virtual seconds', () => {
    const clock = new MockClock();
    const out = collect();
    const ecg = createSimSource({ type: 'sim-ecg' }, clock, 1);
    expect(ecg).toMatchObject({ sensor: 'ecg', source: 'sim-ecg', rateUnit: 'samples/s', nominalRate: 360 });
    ecg.start(out.sink(clock));
    clock.advance(10_000);
    ecg.stop();
    expect(expectContiguous(out.chunks)).toBe(3600);
    expect(out.chunks).toHaveLength(10);
    out.chunks.forEach((c, i) => {
      expect(c).toMatchObject({ sensor: 'ecg', channel: 0, rateHz: 360, unit: 'mV', gain: 200, t0: clock.now() - 10_000 + i * 1000 });
    });
    expect(clock.pending).toBe(0);
  });

  it('catches up after late timers without drift or duplicates', () => {
    const clock = new MockClock();
    clock.lateByMs = 370;
    const out = collect();
    const ecg = createSimSource({ type: 'sim-ecg', chunkMs: 250 }, clock, 1);
    ecg.start(out.sink(clock));
    clock.advance(60_000);
    ecg.stop();
    const total = expectContiguous(out.chunks);
    expect(total).toBeLessThanOrEqual(60 * 360);
    expect(total).toBeGreaterThan(60 * 360 - 2 * 90); // at most one late tick behind
    for (const c of out.chunks) expect(c.t0).toBe(Date.UTC(2025, 0, 1) + Math.round((c.firstSample * 1000) / 360));
  });

  it('looks like an ECG: R peaks about 72 times a minute, mostly within ±1.5 mV', () => {
    const clock = new MockClock();
    const out = collect();
    const ecg = createSimSource({ type: 'sim-ecg' }, clock, 7);
    ecg.start(out.sink(clock));
    clock.advance(60_000);
    ecg.stop();
    const mv = out.chunks.flatMap((c) => Array.from(c.samples, (s) => s / c.gain));
    let peaks = 0;
    for (let i = 1; i < mv.length - 1; i++) {
      const v = mv[i] ?? 0;
      if (v > 0.7 && v >= (mv[i - 1] ?? 0) && v > (mv[i + 1] ?? 0)) peaks++;
    }
    expect(peaks).toBeGreaterThanOrEqual(66);
    expect(peaks).toBeLessThanOrEqual(78);
    expect(Math.max(...mv)).toBeLessThan(1.8);
  });

  it('is deterministic for a seed, and a restart starts a new stream at sample 0', () => {
    const run = () => {
      const clock = new MockClock();
      const out = collect();
      const ecg = createSimSource({ type: 'sim-ecg' }, clock, 42);
      ecg.start(out.sink(clock));
      clock.advance(2000);
      expect(() => ecg.start(out.sink(clock))).toThrow(MedgeError);
      ecg.stop();
      clock.advance(5000);
      ecg.start(out.sink(clock));
      clock.advance(1000);
      ecg.stop();
      return out.chunks;
    };
    const chunks = run();
    expect(chunks.map((c) => c.firstSample)).toEqual([0, 360, 0]);
    expect(Array.from(chunks[2]?.samples ?? [])).toEqual(Array.from(chunks[0]?.samples ?? []));
    expect(run()).toEqual(chunks);
  });
});

describe('sim-pcg', () => {
  it('emits 4000 samples/s in 1 s chunks of arbitrary units', () => {
    const clock = new MockClock();
    const out = collect();
    const pcg = createSimSource({ type: 'sim-pcg' }, clock, 3);
    pcg.start(out.sink(clock));
    clock.advance(3000);
    pcg.stop();
    expect(expectContiguous(out.chunks)).toBe(12_000);
    expect(out.chunks[0]).toMatchObject({ sensor: 'pcg', rateHz: 4000, unit: 'au', gain: 1 });
    const peak = Math.max(...out.chunks.flatMap((c) => Array.from(c.samples, Math.abs)));
    expect(peak).toBeGreaterThan(1500); // S1/S2 bursts stand out of the noise
  });
});

describe('sim-hr', () => {
  it('emits heart-rate readings every interval, with seeded runs above 125', () => {
    const clock = new MockClock();
    const out = collect();
    const hr = createSimSource({ type: 'sim-hr', runProbability: 0.05 }, clock, 5);
    expect(hr).toMatchObject({ sensor: 'hr-strap', rateUnit: 'readings/min', nominalRate: 60 });
    hr.start(out.sink(clock));
    clock.advance(600_000);
    hr.stop();
    expect(out.readings).toHaveLength(601);
    expect(out.readings[0]).toMatchObject({ sensor: 'hr-strap', type: 'heart-rate', unit: '/min', tDevice: Date.UTC(2025, 0, 1) });
    const values = out.readings.map((r) => r.value);
    expect(values.filter((v) => v <= 100).every((v) => v >= 60)).toBe(true);
    expect(values.some((v) => v > 125)).toBe(true);
  });
});

describe('sim-glucose', () => {
  const run = (corruptRate: number, seconds: number) => {
    const clock = new MockClock();
    const out = collect();
    const meter = createSimSource({ type: 'sim-glucose', intervalMs: 1000, corruptRate }, clock, 11);
    meter.start(out.sink(clock));
    clock.advance(seconds * 1000);
    meter.stop();
    return out.raws;
  };
  const decode = (raw: { bytes: Uint8Array; t: number }) => decodeGlucoseLine(raw.bytes, raw.t, 'glucose-meter');

  it('emits lines over sim-serial that decode when uncorrupted', () => {
    const raws = run(0, 120);
    expect(raws).toHaveLength(121);
    expect(raws[0]?.info).toEqual({ transport: 'sim-serial', source: 'sim-glucose', sensor: 'glucose-meter', codec: 'glucose-line' });
    const readings = raws.map(decode);
    const records = readings.map((r) => r.meterRecord ?? -1);
    expect(records.slice(1)).toEqual(records.slice(0, -1).map((r) => r + 1));
    for (const [i, r] of readings.entries()) expect(r.tMeter).toBe(raws[i]?.t);
    const values = readings.slice(0, 60).map((r) => r.value);
    expect(Math.min(...values)).toBeLessThan(70); // lows and highs within a minute of demo time
    expect(Math.max(...values)).toBeGreaterThan(250);
    expect(readings.some((r) => r.value < 54)).toBe(true);
  });

  it('corrupts a seeded share of lines, and every corrupted line fails to decode', () => {
    const outcomes = run(0.3, 300).map((raw) => {
      try {
        return decode(raw);
      } catch (error) {
        expect(error).toBeInstanceOf(DecodeError);
        return undefined;
      }
    });
    const failed = outcomes.filter((r) => r === undefined).length;
    expect(failed).toBeGreaterThan(50);
    expect(failed).toBeLessThan(130);
    for (const raw of run(1, 60)) expect(() => decode(raw)).toThrow(DecodeError);
  });
});

describe('createSimSource', () => {
  it('rejects an unknown type, listing the valid ones', () => {
    const clock = new MockClock();
    const bad = { type: 'sim-spo2' } as unknown as Parameters<typeof createSimSource>[0];
    expect(() => createSimSource(bad, clock, 1)).toThrow(ConfigError);
    expect(() => createSimSource(bad, clock, 1)).toThrow(
      expect.objectContaining({ field: 'source.type', fix: 'use one of: sim-ecg, sim-pcg, sim-glucose, sim-hr, device' }),
    );
  });
});
