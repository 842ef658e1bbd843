/**
 * Builds the signal sources a scenario names: sample sources for stream devices, glucose series for
 * meters and CGMs, and value series for heart-rate straps. Seeds derive from the scenario seed and
 * the device index, so a scenario file plus a seed reproduces every value.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../device-sdk/errors.js';
import { mulberry32 } from '../device-sdk/random.js';
import { readCgmCsv } from './sources/cgm-csv.js';
import type { GlucoseSeries } from './sources/glucose-series.js';
import type { SampleSource } from './sources/sample-source.js';
import { type CgmSensorModel, DEXCOM_SENSOR, type Meal, readVirtualPatient, uvaPadovaSeries } from './sources/uva-padova.js';
import { wavReplay } from './sources/wav-replay.js';
import { wfdbReplay } from './sources/wfdb-replay.js';
import type { ScenarioDevice, ScenarioSourceSpec, UvaPadovaSourceSpec } from './scenario.js';

const SENSORS: Readonly<Record<string, CgmSensorModel>> = Object.freeze({
  Dexcom: DEXCOM_SENSOR,
  GuardianRT: { ...DEXCOM_SENSOR, name: 'GuardianRT', sampleTimeMin: 5 },
  Navigator: { ...DEXCOM_SENSOR, name: 'Navigator', sampleTimeMin: 1, min: 32 },
});

/**
 * The sample source of a stream device (`wfdb` or `wav`): the span `[startS, startS + durationS)`
 * of the recording, or with `loop` the recording repeated until `durationS`; either limited to
 * `maxS` signal seconds (the scenario's duration) when given.
 */
export function createSampleSource(spec: ScenarioSourceSpec, field: string, maxS?: number): SampleSource {
  if (spec.type !== 'wfdb' && spec.type !== 'wav') throw new ConfigError(`${field}.type`, spec.type, 'is not a sample source', 'use wfdb or wav');
  const loop = spec.loop === true;
  const durationS = spec.durationS === undefined ? maxS : maxS === undefined ? spec.durationS : Math.min(spec.durationS, maxS);
  if (loop && durationS === undefined) throw new ConfigError(`${field}.loop`, true, 'a looping source needs an end', 'set the source durationS or the scenario durationS');
  // A looping source repeats the whole recording from startS; a plain one replays the span.
  const span = loop ? {} : durationS !== undefined ? { durationS } : {};
  const source =
    spec.type === 'wfdb'
      ? wfdbReplay({ record: spec.record, ...(spec.signals ? { signals: spec.signals } : {}), startS: spec.startS ?? 0, ...span, loop })
      : wavReplay({ file: spec.file, ...(spec.channels ? { channels: spec.channels } : {}), startS: spec.startS ?? 0, ...span, loop });
  return limitSource(source, durationS);
}

/**
 * Wraps a looping source so that it ends after `durationS` signal seconds: the recording repeats
 * until then. Non-looping sources are returned as they are.
 */
export function limitSource(source: SampleSource, durationS: number | undefined): SampleSource {
  if (source.length !== Infinity || durationS === undefined) return source;
  const total = Math.round(durationS * source.rateHz);
  return {
    name: `${source.name} looped to ${durationS} s`,
    rateHz: source.rateHz,
    channels: source.channels,
    unit: source.unit,
    gain: source.gain,
    length: total,
    get position() {
      return source.position;
    },
    read: (n: number) => source.read(Math.max(0, Math.min(n, total - source.position))),
  };
}

function readQuestCr(paramsFile: string, patient: string): number {
  const quest = join(dirname(paramsFile), 'Quest.csv');
  const line = readFileSync(quest, 'utf8')
    .split(/\r?\n/)
    .find((l) => l.startsWith(`${patient},`));
  const cr = Number(line?.split(',')[1]);
  if (!(cr > 0)) throw new ConfigError('source.mealBoluses', true, `no carbohydrate ratio for ${patient} in ${quest}`, 'set mealBoluses: false or provide Quest.csv');
  return cr;
}

function uvaPadova(spec: UvaPadovaSourceSpec, seed: number): GlucoseSeries {
  const patient = readVirtualPatient(spec.params ?? 'glucose-sim/vpatient_params.csv', spec.patient);
  const meals: Meal[] = [];
  for (let day = 0; day * 1440 < spec.minutes; day++) for (const m of spec.dailyMeals ?? []) meals.push({ atMin: day * 1440 + m.atMin, carbsG: m.carbsG });
  const cr = spec.mealBoluses ? readQuestCr(spec.params ?? '', spec.patient) : 0;
  const boluses = spec.mealBoluses ? meals.map((m) => ({ atMin: m.atMin, units: m.carbsG / cr })) : [];
  const sensor = spec.sensor === 'none' ? 'none' : (SENSORS[spec.sensor ?? 'Dexcom'] ?? DEXCOM_SENSOR);
  return uvaPadovaSeries(patient, { minutes: spec.minutes, meals, boluses, sensor, seed, ...(spec.periodMin !== undefined ? { periodMin: spec.periodMin } : {}) });
}

/** The values of a glucose meter, CGM or heart-rate strap, in time order. */
export function createValueSeries(device: ScenarioDevice, seed: number): GlucoseSeries {
  const spec = device.source;
  switch (spec.type) {
    case 'cgm-csv': {
      const series = readCgmCsv(spec.file, { ...(spec.subject !== undefined ? { subject: spec.subject } : {}), ...(spec.offset !== undefined ? { offset: spec.offset } : {}) });
      const every = spec.every ?? 1;
      return { name: series.name, periodMs: series.periodMs * every, samples: series.samples.filter((_, i) => i % every === 0) };
    }
    case 'uva-padova':
      return uvaPadova(spec, seed);
    case 'constant': {
      const rng = mulberry32(seed);
      const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
      const samples = Array.from({ length: spec.count }, (_, i) => ({ tMs: Math.round(i * spec.periodS * 1000), mgdl: Math.round(spec.value + (spec.sd ?? 0) * gauss()) }));
      return { name: `constant ${spec.value}`, periodMs: spec.periodS * 1000, samples };
    }
    default:
      throw new ConfigError(`source.type`, spec.type, `cannot feed a ${device.kind} device`, 'use cgm-csv, uva-padova or constant');
  }
}
