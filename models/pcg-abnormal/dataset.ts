/**
 * The PASCAL Classifying Heart Sounds Challenge 2011 dataset B (labelled part) as the screen sees it.
 * File names are `<label>__<patient>_<timestamp>_<site>.wav` or `<label>_noisy<label>_<patient>_...`:
 * labels `normal` (-> normal) and `murmur`, `extrastole` (-> abnormal); `noisy` variants are kept.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readWav } from '../../device-sdk/protocols/wav.js';
import { analyzePcg, type PcgScreenOptions } from '../../device-sdk/signal/pcg/screen.js';

export interface PcgRecordingInfo {
  file: string;
  /** Original class: normal, murmur, extrastole. */
  cls: 'normal' | 'murmur' | 'extrastole';
  abnormal: boolean;
  noisy: boolean;
  patient: string;
}

const NAME = /^(normal|murmur|extrastole)_(?:_|noisy(?:normal|murmur|extrastole)_)(\d+)_/;

/** Parses a PASCAL B file name; undefined for files that do not follow the pattern. */
export function parsePascalName(file: string): PcgRecordingInfo | undefined {
  const m = NAME.exec(file);
  if (!m || !file.endsWith('.wav')) return undefined;
  const cls = m[1] as PcgRecordingInfo['cls'];
  return { file, cls, abnormal: cls !== 'normal', noisy: file.includes('_noisy'), patient: m[2] as string };
}

export function listPascal(dir: string): PcgRecordingInfo[] {
  return readdirSync(dir)
    .sort()
    .map(parsePascalName)
    .filter((r): r is PcgRecordingInfo => r !== undefined);
}

export interface PcgExample extends PcgRecordingInfo {
  durationS: number;
  quality: number;
  flags: string[];
  heartRate: number | null;
  /** Window feature rows (also for recordings the default gate calls unreadable, except too short or flat). */
  windows: number[][];
  /**
   * Feature rows of overlapping crops (4 crops of 60 % of the recording, evenly spaced; recordings of
   * at least 4 s): training-side augmentation only, never scored.
   */
  crops: number[][];
}

/** Reads and analyses one recording with the quality gate off (so the gate can be applied later). */
export function loadExample(dir: string, info: PcgRecordingInfo, options: Partial<PcgScreenOptions> = {}): PcgExample {
  const wav = readWav(new Uint8Array(readFileSync(join(dir, info.file))));
  const ungated = analyzePcg(wav.samples, wav.rateHz, { ...options, minQuality: 0, minSeconds: 0, maxClipped: 1, minContrast: 0 });
  const gated = analyzePcg(wav.samples, wav.rateHz, options);
  return {
    ...info,
    durationS: gated.quality.durationS,
    quality: gated.quality.score,
    flags: gated.quality.flags,
    heartRate: gated.heartRate,
    windows: ungated.windows.map((w) => Array.from(w.features)),
    crops: cropRows(wav.samples, wav.rateHz, options),
  };
}

const CROPS = 4;
const CROP_SHARE = 0.6;

function cropRows(samples: Float32Array, rateHz: number, options: Partial<PcgScreenOptions>): number[][] {
  const n = samples.length;
  if (n < 4 * rateHz) return [];
  const len = Math.round(CROP_SHARE * n);
  const rows: number[][] = [];
  for (let c = 0; c < CROPS; c++) {
    const start = Math.round(((n - len) * c) / (CROPS - 1));
    const a = analyzePcg(samples.subarray(start, start + len), rateHz, { ...options, minQuality: 0, minSeconds: 0, maxClipped: 1, minContrast: 0 });
    for (const w of a.windows) rows.push(Array.from(w.features));
  }
  return rows;
}
