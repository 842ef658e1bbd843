/**
 * WAV replay: a recording of a digital stethoscope (PASCAL, PhysioNet 2016) as a `SampleSource`.
 * Samples go out as int16 in unit `au` with gain 32768 (a fraction of full scale), as the medge
 * stream protocol suggests for uncalibrated audio. 8/24/32-bit recordings are rescaled to int16.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ConfigError } from '../../device-sdk/errors.js';
import { readWav, toInt16, type WavAudio } from '../../device-sdk/protocols/wav.js';
import { arraySampleSource, type SampleSource, sliceSeconds } from './sample-source.js';

export interface WavReplayOptions {
  /** Path of the WAV file. */
  file: string;
  /** Channels to replay: the recording is mixed down to one channel, so only `[0]` (the default). */
  channels?: number[];
  startS?: number;
  durationS?: number;
  loop?: boolean;
}

export const WAV_REPLAY_GAIN = 32768;

export function wavSampleSource(audio: WavAudio, name: string, options: Omit<WavReplayOptions, 'file'> = {}): SampleSource {
  const indices = options.channels ?? [0];
  if (indices.length !== 1 || indices[0] !== 0) throw new ConfigError('channels', indices, `${name} is replayed as its mono mix (${audio.channels} channel(s) in the file)`, 'use [0] or leave channels out');
  return arraySampleSource(
    { name: `wav ${name}`, rateHz: audio.rateHz, unit: 'au', gain: WAV_REPLAY_GAIN, loop: options.loop === true },
    sliceSeconds([toInt16(audio.samples)], audio.rateHz, options.startS ?? 0, options.durationS),
  );
}

/** Reads and decodes the file (`DecodeError` for a file that is not PCM WAV) and replays it. */
export function wavReplay(options: WavReplayOptions): SampleSource {
  const { file, ...rest } = options;
  return wavSampleSource(readWav(new Uint8Array(readFileSync(file))), basename(file), rest);
}
