/**
 * WFDB record replay: the signals of a PhysioNet record (e.g. MIT-BIH 208) as a `SampleSource`,
 * the way an ECG front end would measure them.
 *
 * Samples are sent as recorded minus the signal's baseline (`gain(baseline)` or ADC zero), so that
 * `sample / gain` is the physical value in the record's units (mV for MIT-BIH), which is what a
 * medge stream DATA frame means by its gain. Every selected signal must share the gain and units.
 */
import { ConfigError } from '../../device-sdk/errors.js';
import { arraySampleSource, type SampleSource, type SampleUnit, sliceSeconds } from './sample-source.js';
import { readWfdbRecord, type WfdbRecord } from './wfdb-files.js';

export interface WfdbReplayOptions {
  /** Record path without extension, e.g. `../shared/data/mitdb/208`. */
  record: string;
  /** Signal indices to replay (default: every signal of the record). */
  signals?: number[];
  /** Offset into the record (s). */
  startS?: number;
  /** Length of the replayed span (s); default to the end of the record. */
  durationS?: number;
  /** Start again at the beginning of the span when it ends. */
  loop?: boolean;
}

const UNITS: Readonly<Record<string, SampleUnit>> = Object.freeze({ mV: 'mV', uV: 'uV', V: 'V', Pa: 'Pa' });

/** Replays signals of a record already in memory. */
export function wfdbSampleSource(record: WfdbRecord, options: Omit<WfdbReplayOptions, 'record'> = {}): SampleSource {
  const { header } = record;
  const indices = options.signals ?? header.signals.map((_, i) => i);
  if (indices.length === 0) throw new ConfigError('signals', indices, 'selects no signal', `use indices 0..${header.signals.length - 1}`);
  const specs = indices.map((i) => {
    const spec = header.signals[i];
    if (!Number.isInteger(i) || spec === undefined) throw new ConfigError('signals', indices, `${i} is not a signal of record ${header.recordName}`, `use indices 0..${header.signals.length - 1}`);
    if (spec.samplesPerFrame !== 1) throw new ConfigError('signals', indices, `signal ${i} has ${spec.samplesPerFrame} samples per frame`, 'replay records with one sample per frame');
    return spec;
  });
  const first = specs[0] as (typeof specs)[number];
  const gain = first.adcGain > 0 ? first.adcGain : 200;
  const unitText = first.units ?? 'mV';
  const unit = UNITS[unitText];
  if (!unit) throw new ConfigError('signals', indices, `record ${header.recordName} is in ${unitText}`, `replay signals in one of ${Object.keys(UNITS).join(', ')}`);
  for (const s of specs) {
    if ((s.adcGain > 0 ? s.adcGain : 200) !== gain || (s.units ?? 'mV') !== unitText) {
      throw new ConfigError('signals', indices, 'the selected signals differ in gain or units', 'replay signals with the same gain and units together, or one signal');
    }
  }
  const centred = indices.map((i, k) => {
    const raw = record.signals[i] as Int16Array;
    const base = (specs[k] as (typeof specs)[number]).baseline;
    const out = new Int16Array(raw.length);
    for (let j = 0; j < raw.length; j++) out[j] = Math.max(-32768, Math.min(32767, (raw[j] as number) - base));
    return out;
  });
  const span = sliceSeconds(centred, header.fs, options.startS ?? 0, options.durationS);
  const names = specs.map((s, k) => s.description ?? `signal ${indices[k]}`).join(', ');
  return arraySampleSource({ name: `wfdb ${header.recordName} (${names})`, rateHz: header.fs, unit, gain, loop: options.loop === true }, span);
}

/** Reads the record (checksums verified) and replays it. */
export function wfdbReplay(options: WfdbReplayOptions): SampleSource {
  const { record, ...rest } = options;
  return wfdbSampleSource(readWfdbRecord(record), rest);
}
