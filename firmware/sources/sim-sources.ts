/**
 * In-process signal generators for `medge demo`.
 *
 * These are stand-ins, not the hardware-in-the-loop simulator: they produce plausible records in
 * the runtime's own process and speak no device protocol except the glucose meter's text line
 * (so that raw bytes, decoding and quarantine get exercised). The simulator will replace them.
 *
 * Everything is driven by the injected `Clock` and a seeded PRNG, so a virtual clock gives the
 * same records on every run. Streams compute how many samples are due from `clock.monotonic()`:
 * a timer that fires late emits the missing samples, never drifts and never duplicates.
 */
import type { Clock, ClockTimer } from '../../device-sdk/clock.js';
import { ConfigError, MedgeError } from '../../device-sdk/errors.js';
import type { MeterRecordBits, Reading, StreamChunk } from '../../device-sdk/records.js';
import {
  parseSourceConfig,
  type SimEcgSourceConfig,
  type SimGlucoseSourceConfig,
  type SimHrSourceConfig,
  type SimPcgSourceConfig,
  type SourceConfig,
  type SourceConfigInput,
} from '../config.js';
import { encodeGlucoseLine, GLUCOSE_LINE_CODEC, GLUCOSE_LINE_RECORD_BITS, GLUCOSE_MEAL_CONTEXTS } from './glucose-line-codec.js';
import { mulberry32, type Random } from '../../device-sdk/random.js';
import { zoneOffsetMs } from '../../device-sdk/time-zone.js';

/** Where a source delivers what it produces. Calls happen on the clock's timer callbacks, never inside `start()`. */
export interface SourceSink {
  chunk(c: StreamChunk): void;
  reading(r: Reading): void;
  /** Bytes as they came off a transport, still to be decoded with `info.codec`. */
  raw(bytes: Uint8Array, info: { transport: string; source: string; sensor: string; codec: string }): void;
}

export interface SimSource {
  readonly sensor: string;
  /** The source type, e.g. `sim-ecg`. */
  readonly source: string;
  readonly rateUnit: 'samples/s' | 'readings/min';
  readonly nominalRate: number;
  /** A source whose readings carry `meterRecord`: how wide that counter is (`SensorDriver.meterRecordBits`). */
  readonly meterRecordBits?: MeterRecordBits;
  /** Starts producing into `sink`. Throws `MedgeError` (code `source-running`) when already started. */
  start(sink: SourceSink): void;
  /** Stops; no sink call happens afterwards. A later `start()` begins a new stream at sample 0. */
  stop(): void;
}

/** The transport name `sim-glucose` reports with its raw lines. */
export const SIM_SERIAL_TRANSPORT = 'sim-serial';

// ---- randomness ------------------------------------------------------------------------------

type Rng = Random;

/** Standard normal deviates (Box-Muller). */
function gaussian(rng: Rng): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

// ---- scheduling ------------------------------------------------------------------------------

interface SourceMeta {
  sensor: string;
  source: string;
  rateUnit: SimSource['rateUnit'];
  nominalRate: number;
  meterRecordBits?: MeterRecordBits;
}

/**
 * The lifecycle shared by all sources: `begin` is called on start with the start instant and
 * returns a tick that emits what is due at `elapsedMs` and says how long until the next event.
 */
function scheduledSource(meta: SourceMeta, clock: Clock, begin: (sink: SourceSink) => (elapsedMs: number, nowMs: number) => number): SimSource {
  let timer: ClockTimer | undefined;
  let generation = 0;
  return {
    ...meta,
    start(sink) {
      if (timer !== undefined) throw new MedgeError('source-running', `${meta.source} (${meta.sensor}) is already started`);
      const mine = ++generation;
      const startMono = clock.monotonic();
      const tick = begin(sink);
      const run = (): void => {
        if (mine !== generation) return;
        const waitMs = tick(clock.monotonic() - startMono, clock.now());
        if (mine === generation) timer = clock.setTimeout(run, Math.max(0, Math.ceil(waitMs)));
      };
      timer = clock.setTimeout(run, 0);
    },
    stop() {
      generation++;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** A waveform source: `sampleAt(t)` gives the physical value at `t` seconds (called with increasing `t`). */
function streamSource(
  c: { sensor: string; type: string; rateHz: number; chunkMs: number; unit: string; gain: number },
  clock: Clock,
  createSampler: () => (t: number) => number,
): SimSource {
  const chunkSamples = Math.max(1, Math.round((c.rateHz * c.chunkMs) / 1000));
  const meta = { sensor: c.sensor, source: c.type, rateUnit: 'samples/s', nominalRate: c.rateHz } as const;
  return scheduledSource(meta, clock, (sink) => {
    const sampleAt = createSampler();
    let next = 0;
    return (elapsedMs, nowMs) => {
      const due = Math.floor((elapsedMs * c.rateHz) / 1000 + 1e-6);
      while (due - next >= chunkSamples) {
        const samples = new Int16Array(chunkSamples);
        for (let i = 0; i < chunkSamples; i++) {
          samples[i] = Math.max(-32768, Math.min(32767, Math.round(sampleAt((next + i) / c.rateHz) * c.gain)));
        }
        const t0 = Math.round(nowMs - (elapsedMs - (next * 1000) / c.rateHz));
        sink.chunk({ sensor: c.sensor, channel: 0, firstSample: next, t0, rateHz: c.rateHz, unit: c.unit, gain: c.gain, samples });
        next += chunkSamples;
      }
      return ((next + chunkSamples) * 1000) / c.rateHz - elapsedMs;
    };
  });
}

/** A source of discrete events: event `k` (k = 0, 1, ...) is due at `k * intervalMs` after start. */
function periodicSource(
  meta: SourceMeta,
  clock: Clock,
  intervalMs: number,
  createEmitter: (sink: SourceSink) => (k: number, tDevice: number) => void,
): SimSource {
  return scheduledSource(meta, clock, (sink) => {
    const emit = createEmitter(sink);
    let k = 0;
    return (elapsedMs, nowMs) => {
      for (; k * intervalMs <= elapsedMs + 1e-6; k++) emit(k, Math.round(nowMs - (elapsedMs - k * intervalMs)));
      return k * intervalMs - elapsedMs;
    };
  });
}

// ---- heart beats -----------------------------------------------------------------------------

interface Beat {
  /** Onset (s since start): the R peak for ECG, S1 for heart sounds. */
  t: number;
  /** Interval to the next beat (s). */
  rr: number;
}

/** Beat times with respiratory modulation and a little randomness. Query with increasing `t`. */
function createBeatTrain(rng: Rng, bpm: number): (t: number, before: number, after: number) => readonly Beat[] {
  const normal = gaussian(rng);
  const beats: Beat[] = [];
  let next = 0.3;
  return (t, before, after) => {
    while (next < t + after) {
      const rr = (60 / bpm) * (1 + 0.04 * Math.sin(2 * Math.PI * 0.25 * next) + 0.015 * normal());
      beats.push({ t: next, rr });
      next += rr;
    }
    while (beats.length > 0 && (beats[0]?.t ?? 0) < t - before) beats.shift();
    return beats;
  };
}

/** P, Q, R, S, T as Gaussians around the R peak: offset (s at 72 /min), width (s), amplitude (mV). */
const ECG_WAVES = Object.freeze([
  { offset: -0.2, sigma: 0.025, amplitude: 0.15, scales: true },
  { offset: -0.03, sigma: 0.01, amplitude: -0.12, scales: false },
  { offset: 0, sigma: 0.012, amplitude: 1.1, scales: false },
  { offset: 0.03, sigma: 0.01, amplitude: -0.25, scales: false },
  { offset: 0.28, sigma: 0.045, amplitude: 0.3, scales: true },
]);

function simEcg(c: SimEcgSourceConfig, clock: Clock, seed: number): SimSource {
  const gain = 200;
  return streamSource({ ...c, unit: 'mV', gain }, clock, () => {
    const beatsAround = createBeatTrain(mulberry32(seed ^ 0x9e3779b9), c.heartRateBpm);
    const noise = gaussian(mulberry32(seed));
    return (t) => {
      let mv = 0.08 * Math.sin(2 * Math.PI * 0.22 * t) + 0.04 * Math.sin(2 * Math.PI * 0.05 * t + 1);
      for (const beat of beatsAround(t, 0.8, 0.5)) {
        const stretch = Math.sqrt(beat.rr / (60 / 72)); // P and T move with the cycle length; QRS does not
        for (const w of ECG_WAVES) {
          const dt = t - beat.t - w.offset * (w.scales ? stretch : 1);
          mv += w.amplitude * Math.exp(-(dt * dt) / (2 * w.sigma * w.sigma));
        }
      }
      return mv + c.noiseMv * noise();
    };
  });
}

/** A decaying tone burst of a heart sound: frequencies (Hz), decay (s), duration (s), amplitude. */
const HEART_SOUNDS = Object.freeze({
  s1: { freqs: [45, 90, 140], tau: 0.025, duration: 0.12, amplitude: 6000 },
  s2: { freqs: [60, 110, 150], tau: 0.018, duration: 0.09, amplitude: 4500 },
});

function burst(dt: number, sound: (typeof HEART_SOUNDS)['s1']): number {
  if (dt < 0 || dt >= sound.duration) return 0;
  const envelope = sound.amplitude * Math.exp(-dt / sound.tau) * (1 - Math.exp(-dt / 0.003));
  let v = 0;
  for (const f of sound.freqs) v += Math.sin(2 * Math.PI * f * dt);
  return (envelope * v) / sound.freqs.length;
}

function simPcg(c: SimPcgSourceConfig, clock: Clock, seed: number): SimSource {
  return streamSource({ ...c, unit: 'au', gain: 1 }, clock, () => {
    const beatsAround = createBeatTrain(mulberry32(seed ^ 0x9e3779b9), c.heartRateBpm);
    const noise = gaussian(mulberry32(seed));
    return (t) => {
      let v = c.noise * noise();
      for (const beat of beatsAround(t, 0.6, 0)) {
        const systole = 0.3 * Math.sqrt(beat.rr / (60 / 72));
        v += burst(t - beat.t, HEART_SOUNDS.s1) + burst(t - beat.t - systole, HEART_SOUNDS.s2);
      }
      return v;
    };
  });
}

// ---- readings --------------------------------------------------------------------------------

function simHr(c: SimHrSourceConfig, clock: Clock, seed: number): SimSource {
  const meta = { sensor: c.sensor, source: c.type, rateUnit: 'readings/min', nominalRate: 60_000 / c.intervalMs } as const;
  return periodicSource(meta, clock, c.intervalMs, (sink) => {
    const rng = mulberry32(seed);
    let drift = 0;
    let runLeft = 0;
    return (k, tDevice) => {
      const minutes = (k * c.intervalMs) / 60_000;
      drift = Math.max(-8, Math.min(8, drift + (rng() - 0.5) * 1.5));
      let value = Math.max(60, Math.min(100, 78 + 12 * Math.sin(2 * Math.PI * (minutes / 3)) + drift));
      if (runLeft === 0 && rng() < c.runProbability) runLeft = 3 + Math.floor(rng() * 6);
      if (runLeft > 0) {
        runLeft--;
        value = 126 + rng() * 24;
      }
      sink.reading({ sensor: c.sensor, type: 'heart-rate', value: Math.round(value), unit: '/min', tDevice });
    };
  });
}

/** Record numbers count meter intervals since this instant, so they keep rising across restarts like a meter's memory. */
const METER_RECORD_EPOCH = Date.UTC(2024, 0, 1);

/** A simulated line meter's clock is set to `timeZone` (the site's, as its owner would set it; UTC without one): it writes that wall clock. */
function simGlucose(c: SimGlucoseSourceConfig, clock: Clock, seed: number, timeZone: string | undefined): SimSource {
  const meta = { sensor: c.sensor, source: c.type, rateUnit: 'readings/min', nominalRate: 60_000 / c.intervalMs, meterRecordBits: GLUCOSE_LINE_RECORD_BITS } as const;
  const info = Object.freeze({ transport: SIM_SERIAL_TRANSPORT, source: c.type, sensor: c.sensor, codec: GLUCOSE_LINE_CODEC });
  return periodicSource(meta, clock, c.intervalMs, (sink) => {
    const rng = mulberry32(seed);
    let last = -1;
    return (_k, tDevice) => {
      const record = Math.max(last + 1, Math.floor((tDevice - METER_RECORD_EPOCH) / c.intervalMs)) % 2 ** GLUCOSE_LINE_RECORD_BITS;
      last = record;
      const swing = Math.sin((2 * Math.PI * record) / c.periodReadings);
      const value = Math.max(50, Math.min(260, Math.round(155 + 105 * swing + (rng() - 0.5) * 10)));
      const meal = GLUCOSE_MEAL_CONTEXTS[Math.floor(rng() * GLUCOSE_MEAL_CONTEXTS.length)] ?? 'unknown';
      const wall = timeZone === undefined ? tDevice : tDevice + zoneOffsetMs(timeZone, tDevice);
      let bytes = encodeGlucoseLine({ record, tMeter: wall, value, meal });
      if (rng() < c.corruptRate) {
        if (rng() < 0.5) {
          const at = Math.floor(rng() * (bytes.length - 2)); // never the \r\n
          bytes[at] = (bytes[at] ?? 0) ^ (1 << Math.floor(rng() * 8));
        } else {
          bytes = bytes.slice(0, 1 + Math.floor(rng() * (bytes.length - 3))); // loses at least one checksum digit
        }
      }
      sink.raw(bytes, info);
    };
  });
}

/**
 * Creates the source a config describes. `config` is validated and completed with the defaults
 * of its type; an unknown type or a bad option throws `ConfigError` listing what is valid.
 * `timeZone`: the site's configured zone, which a simulated meter's clock is set to.
 */
export function createSimSource(config: SourceConfig | SourceConfigInput, clock: Clock, seed: number, timeZone?: string): SimSource {
  const c = parseSourceConfig(config);
  switch (c.type) {
    case 'sim-ecg':
      return simEcg(c, clock, seed);
    case 'sim-pcg':
      return simPcg(c, clock, seed);
    case 'sim-hr':
      return simHr(c, clock, seed);
    case 'sim-glucose':
      return simGlucose(c, clock, seed, timeZone);
    case 'device':
      throw new ConfigError('type', c.type, 'is a device read by a driver, not a simulated source', 'create it with createDriver() from device-sdk/sensors');
  }
}
