/**
 * WAV replay: a recording of a digital stethoscope (PASCAL, PhysioNet 2016) as a `SampleSource`.
 * Samples go out as int16 in unit `au` with gain 32768 (a fraction of full scale), as the medge
 * stream protocol suggests for uncalibrated audio. 8/24/32-bit recordings are rescaled to int16.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ConfigError } from '../../device-sdk/errors.js';
import { decodeWav, toInt16, type WavAudio } from '../../device-sdk/protocols/wav.js';
import { arraySampleSource, type SampleSource, sliceSeconds } from './sample-source.js';

export interface WavReplayOptions {
  /** Path of the WAV file. */
  file: string;
  /** Channels to replay (default: all). */
  channels?: number[];
  startS?: number;
  durationS?: number;
  loop?: boolean;
}

export const WAV_REPLAY_GAIN = 32768;

export function wavSampleSource(audio: WavAudio, name: string, options: Omit<WavReplayOptions, 'file'> = {}): SampleSource {
  const indices = options.channels ?? audio.channels.map((_, i) => i);
  const picked = indices.map((i) => {
    const c = audio.channels[i];
    if (!Number.isInteger(i) || c === undefined) throw new ConfigError('channels', indices, `${i} is not a channel of ${name}`, `use 0..${audio.channels.length - 1}`);
    return toInt16(c);
  });
  return arraySampleSource(
    { name: `wav ${name}`, rateHz: audio.sampleRate, unit: 'au', gain: WAV_REPLAY_GAIN, loop: options.loop === true },
    sliceSeconds(picked, audio.sampleRate, options.startS ?? 0, options.durationS),
  );
}

/** Reads and decodes the file (`WavError` for a file that is not PCM WAV) and replays it. */
export function wavReplay(options: WavReplayOptions): SampleSource {
  const { file, ...rest } = options;
  return wavSampleSource(decodeWav(readFileSync(file)), basename(file), rest);
}
