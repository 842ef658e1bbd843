/**
 * Sample sources: what a simulated stream device (ECG front end, stethoscope) measures.
 *
 * A `SampleSource` is a pull cursor over int16 sample sets of a fixed rate, channel count, unit and
 * gain (`physical = sample / gain`), exactly the fields a medge stream DATA frame carries. It knows
 * nothing about time: `pace()` turns it into blocks released on an injected `Clock`, at real time
 * or `speed` times faster, so that hours of signal run in minutes and a virtual clock runs them
 * deterministically.
 */
import type { Clock, ClockTimer } from '../../device-sdk/clock.js';
import { ConfigError } from '../../device-sdk/errors.js';

/** Units a medge stream device may report (protocol §5.2). */
export type SampleUnit = 'au' | 'mV' | 'uV' | 'V' | 'Pa';

export interface SampleSource {
  /** What is replayed, e.g. `mitdb/208 (MLII, V1)`: for logs and reports, never a patient identifier. */
  readonly name: string;
  readonly rateHz: number;
  readonly channels: number;
  readonly unit: SampleUnit;
  /** ADC units per unit. */
  readonly gain: number;
  /** Sample sets the source holds; `Infinity` for a source that loops or synthesises forever. */
  readonly length: number;
  /** Index of the next sample set `read` returns. */
  readonly position: number;
  /** Up to `n` sample sets from `position`, interleaved (`s0c0 s0c1 ... s1c0 ...`); empty once exhausted. */
  read(n: number): Int16Array;
}

/** A block of sample sets released by `pace`. */
export interface SampleBlock {
  /** Index of the block's first sample set in the source. */
  firstSample: number;
  /** Interleaved samples, `channels` per set. */
  samples: Int16Array;
}

/** A source over sample arrays held in memory (one per channel, equal lengths); optional looping. */
export function arraySampleSource(
  meta: { name: string; rateHz: number; unit: SampleUnit; gain: number; loop?: boolean },
  channels: readonly Int16Array[],
): SampleSource {
  const n = channels.length;
  if (n < 1) throw new ConfigError('channels', n, 'a sample source needs at least one channel', 'select one or more signals');
  const frames = (channels[0] as Int16Array).length;
  if (channels.some((c) => c.length !== frames)) throw new ConfigError('channels', channels.map((c) => c.length), 'channels differ in length', 'select signals of one record');
  if (frames === 0) throw new ConfigError('samples', 0, 'the source holds no samples', 'select a non-empty span');
  const loop = meta.loop === true;
  let position = 0;
  return {
    name: meta.name,
    rateHz: meta.rateHz,
    channels: n,
    unit: meta.unit,
    gain: meta.gain,
    length: loop ? Infinity : frames,
    get position() {
      return position;
    },
    read(count: number): Int16Array {
      const want = Math.max(0, Math.floor(loop ? count : Math.min(count, frames - position)));
      const out = new Int16Array(want * n);
      for (let i = 0; i < want; i++) {
        const at = (position + i) % frames;
        for (let c = 0; c < n; c++) out[i * n + c] = (channels[c] as Int16Array)[at] as number;
      }
      position += want;
      return out;
    },
  };
}

/** Takes `[start, start + duration)` seconds of each channel (clipped to the recording). */
export function sliceSeconds(channels: readonly Int16Array[], rateHz: number, startS = 0, durationS?: number): Int16Array[] {
  return channels.map((c) => {
    const from = Math.min(c.length, Math.max(0, Math.round(startS * rateHz)));
    const to = durationS === undefined ? c.length : Math.min(c.length, from + Math.round(durationS * rateHz));
    return c.subarray(from, to);
  });
}

export interface PaceOptions {
  clock: Clock;
  /** Signal seconds per wall second (1 = real time). */
  speed: number;
  /** Signal duration of one block (ms); the device sends one frame per block. */
  blockMs: number;
}

/**
 * Releases the source as blocks at the pace of the clock: block k is due at
 * `start + (firstSample / rateHz) * 1000 / speed`. A timer that fires late releases every block that
 * is due (never drops or repeats one); the iteration ends when the source is exhausted or the
 * consumer stops (`return()`/`break`).
 */
export function pace(source: SampleSource, options: PaceOptions): AsyncIterable<SampleBlock> {
  const { clock, speed, blockMs } = options;
  if (!(speed > 0)) throw new ConfigError('speed', speed, 'must be > 0', 'use 1 for real time, 60 for an hour a minute');
  const perBlock = Math.max(1, Math.round((source.rateHz * blockMs) / 1000));
  return {
    [Symbol.asyncIterator]() {
      const start = clock.monotonic();
      let timer: ClockTimer | undefined;
      let wake: (() => void) | undefined;
      let done = false;
      const dueAt = (sample: number) => start + ((sample + perBlock) / source.rateHz) * (1000 / speed);
      return {
        async next(): Promise<IteratorResult<SampleBlock>> {
          if (done) return { done: true, value: undefined };
          const firstSample = source.position;
          const wait = dueAt(firstSample) - clock.monotonic();
          if (wait > 0) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              timer = clock.setTimeout(resolve, wait);
            });
            timer = undefined;
            wake = undefined;
          }
          if (done) return { done: true, value: undefined };
          const samples = source.read(perBlock);
          if (samples.length === 0) {
            done = true;
            return { done: true, value: undefined };
          }
          return { done: false, value: { firstSample, samples } };
        },
        async return(): Promise<IteratorResult<SampleBlock>> {
          done = true;
          if (timer !== undefined) clock.clearTimeout(timer);
          wake?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}
