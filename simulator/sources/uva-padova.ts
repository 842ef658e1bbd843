/**
 * Glucose generator: the UVA/Padova type 1 diabetes model (Dalla Man et al., IEEE TBME 54(10), 2007;
 * J Diabetes Sci Technol 8(1), 2014) with the 30 virtual patients published with the open-source
 * simglucose (`../shared/data/glucose-sim/vpatient_params.csv`), written from the description in
 * `shared/specs/uva-padova.md` (§4.1 model, §4.2 CGM sensor noise), not from simglucose's code.
 *
 * 13 states (spec §4.1): x0,x1 stomach solid/liquid (mg), x2 gut (mg), x3 Gp and x4 Gt (mg/kg),
 * x5 Ip (pmol/kg), x6 X, x7 I1, x8 Id, x9 Il, x10/x11 Isc1/Isc2, x12 Gs (mg/kg).
 * Integrated with classic RK4 at a 1-minute step with inputs held constant over the step; states are
 * clamped to >= 0 after each step. Meals are eaten at 5 g/min; insulin is the patient's basal rate
 * (u2ss·BW/6000 U/min) plus boluses given over one minute.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, DecodeError } from '../../device-sdk/errors.js';
import { mulberry32, type Random } from '../../device-sdk/random.js';
import type { GlucoseSample, GlucoseSeries } from './glucose-series.js';

export const UVA_PADOVA_PARAMS_CODEC = 'uva-padova-params';

/** The parameters the model reads (names as in vpatient_params.csv), plus the initial state. */
export interface UvaPadovaPatient {
  name: string;
  x0: number[];
  BW: number;
  Gb: number;
  kabs: number;
  kmax: number;
  kmin: number;
  b: number;
  d: number;
  Vg: number;
  Vi: number;
  Vmx: number;
  Km0: number;
  k1: number;
  k2: number;
  p2u: number;
  m1: number;
  m2: number;
  m4: number;
  m30: number;
  ki: number;
  kp1: number;
  kp2: number;
  kp3: number;
  f: number;
  ke1: number;
  ke2: number;
  Fsnc: number;
  Vm0: number;
  kd: number;
  ksc: number;
  ka1: number;
  ka2: number;
  Ib: number;
  u2ss: number;
}

const FIELDS = ['BW', 'Gb', 'kabs', 'kmax', 'kmin', 'b', 'd', 'Vg', 'Vi', 'Vmx', 'Km0', 'k1', 'k2', 'p2u', 'm1', 'm2', 'm4', 'm30', 'ki', 'kp1', 'kp2', 'kp3', 'f', 'ke1', 'ke2', 'Fsnc', 'Vm0', 'kd', 'ksc', 'ka1', 'ka2', 'Ib', 'u2ss'] as const;

/** Parses vpatient_params.csv. Throws `DecodeError` naming the column or line. */
export function parseVirtualPatients(text: string): UvaPadovaPatient[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const head = (lines[0] ?? '').split(',').map((h) => h.replace(/\s+/g, ''));
  const at = (name: string) => {
    const i = head.indexOf(name);
    if (i < 0) throw new DecodeError(UVA_PADOVA_PARAMS_CODEC, `header has no column ${name}`);
    return i;
  };
  const iName = at('Name');
  const ix0 = Array.from({ length: 13 }, (_, k) => at(`x0_${k + 1}`));
  const iFields = FIELDS.map(at);
  return lines.slice(1).map((line, row) => {
    const cells = line.split(',');
    const num = (i: number) => {
      const v = Number(cells[i]);
      if (cells[i] === undefined || cells[i] === '' || !Number.isFinite(v)) throw new DecodeError(UVA_PADOVA_PARAMS_CODEC, `line ${row + 2}: column ${head[i]} is ${JSON.stringify(cells[i])}, not a number`);
      return v;
    };
    const p = { name: cells[iName] ?? `patient ${row}`, x0: ix0.map(num) } as UvaPadovaPatient;
    FIELDS.forEach((f, k) => {
      p[f] = num(iFields[k] as number);
    });
    return p;
  });
}

/** Reads one virtual patient (`adult#001`, `adolescent#003`, `child#010`) from the parameter file. */
export function readVirtualPatient(file: string, name: string): UvaPadovaPatient {
  const all = parseVirtualPatients(readFileSync(file, 'utf8'));
  const p = all.find((x) => x.name === name);
  if (!p) throw new ConfigError('patient', name, 'is not a virtual patient of the parameter file', `use one of: ${all.map((x) => x.name).join(', ')}`);
  return p;
}

/** A meal: `carbsG` grams of carbohydrate starting at `atMin` minutes (eaten at 5 g/min). */
export interface Meal {
  atMin: number;
  carbsG: number;
}

/** An insulin bolus of `units` U at `atMin` minutes (delivered within that minute). */
export interface Bolus {
  atMin: number;
  units: number;
}

export const EAT_RATE_G_PER_MIN = 5;

export interface UvaPadovaInputs {
  meals: readonly Meal[];
  boluses: readonly Bolus[];
  /** Multiplier of the patient's basal insulin rate (default 1). */
  basalFactor?: number;
}

/** Glucose in plasma (BG = Gp/Vg) and at the sensor (Gs/Vg), mg/dL, per minute. */
export interface UvaPadovaTrace {
  bg: Float64Array;
  sensor: Float64Array;
}

type State = Float64Array;

/**
 * The right-hand side (spec §4.1). `cho` is carbohydrate ingestion (mg/min), `insulin` pump rate
 * (U/min), `dbar` the size of the current meal (mg) for the gastric emptying rate.
 */
export function derivatives(p: UvaPadovaPatient, x: State, cho: number, insulin: number, dbar: number): State {
  const dx = new Float64Array(13);
  const qsto = x[0]! + x[1]!;
  let kgut = p.kmax;
  if (dbar > 0) {
    const aa = 5 / (2 * dbar * (1 - p.b));
    const cc = 5 / (2 * dbar * p.d);
    kgut = p.kmin + ((p.kmax - p.kmin) / 2) * (Math.tanh(aa * (qsto - p.b * dbar)) - Math.tanh(cc * (qsto - p.d * dbar)) + 2);
  }
  dx[0] = -p.kmax * x[0]! + cho;
  dx[1] = p.kmax * x[0]! - kgut * x[1]!;
  dx[2] = kgut * x[1]! - p.kabs * x[2]!;
  const ra = (p.f * p.kabs * x[2]!) / p.BW;
  const egp = Math.max(0, p.kp1 - p.kp2 * x[3]! - p.kp3 * x[8]!);
  const uii = p.Fsnc;
  const e = x[3]! > p.ke2 ? p.ke1 * (x[3]! - p.ke2) : 0;
  dx[3] = egp + ra - uii - e - p.k1 * x[3]! + p.k2 * x[4]!;
  const uid = ((p.Vm0 + p.Vmx * x[6]!) * x[4]!) / (p.Km0 + x[4]!);
  dx[4] = -uid + p.k1 * x[3]! - p.k2 * x[4]!;
  dx[5] = -(p.m2 + p.m4) * x[5]! + p.m1 * x[9]! + p.ka1 * x[10]! + p.ka2 * x[11]!;
  const i = x[5]! / p.Vi;
  dx[6] = -p.p2u * x[6]! + p.p2u * (i - p.Ib);
  dx[7] = -p.ki * (x[7]! - i);
  dx[8] = -p.ki * (x[8]! - x[7]!);
  dx[9] = -(p.m1 + p.m30) * x[9]! + p.m2 * x[5]!;
  const u = (insulin * 6000) / p.BW;
  dx[10] = u - (p.ka1 + p.kd) * x[10]!;
  dx[11] = p.kd * x[10]! - p.ka2 * x[11]!;
  dx[12] = -p.ksc * x[12]! + p.ksc * x[3]!;
  return dx;
}

function rk4(p: UvaPadovaPatient, x: State, h: number, cho: number, insulin: number, dbar: number): State {
  const f = (s: State) => derivatives(p, s, cho, insulin, dbar);
  const add = (s: State, k: State, w: number) => s.map((v, j) => v + w * k[j]!);
  const k1 = f(x);
  const k2 = f(add(x, k1, h / 2));
  const k3 = f(add(x, k2, h / 2));
  const k4 = f(add(x, k3, h));
  return x.map((v, j) => Math.max(0, v + (h / 6) * (k1[j]! + 2 * k2[j]! + 2 * k3[j]! + k4[j]!)));
}

/** The patient's basal insulin rate (U/min): u2ss·BW/6000. */
export function basalRate(p: UvaPadovaPatient): number {
  return (p.u2ss * p.BW) / 6000;
}

/** Simulates `minutes` minutes from the patient's basal state; value k is the state at minute k (k = 0 is the initial state). */
export function simulateUvaPadova(p: UvaPadovaPatient, minutes: number, inputs: UvaPadovaInputs): UvaPadovaTrace {
  const n = Math.max(0, Math.floor(minutes)) + 1;
  const bg = new Float64Array(n);
  const sensor = new Float64Array(n);
  const eating = new Float64Array(n);
  // Ingestion per minute: each meal at 5 g/min until eaten; meal size for kgut is the meal being digested.
  const mealSize = new Float64Array(n);
  for (const m of [...inputs.meals].sort((a, b) => a.atMin - b.atMin)) {
    let left = m.carbsG;
    for (let t = Math.max(0, Math.floor(m.atMin)); t < n && left > 0; t++) {
      const g = Math.min(EAT_RATE_G_PER_MIN, left);
      eating[t] = (eating[t] ?? 0) + g * 1000;
      left -= g;
    }
    for (let t = Math.max(0, Math.floor(m.atMin)); t < n; t++) mealSize[t] = m.carbsG * 1000;
  }
  const bolus = new Float64Array(n);
  for (const b of inputs.boluses) if (b.atMin >= 0 && b.atMin < n) bolus[Math.floor(b.atMin)]! += b.units;
  const basal = basalRate(p) * (inputs.basalFactor ?? 1);
  let x: State = Float64Array.from(p.x0);
  for (let t = 0; t < n; t++) {
    bg[t] = x[3]! / p.Vg;
    sensor[t] = x[12]! / p.Vg;
    if (t + 1 < n) x = rk4(p, x, 1, eating[t]!, basal + bolus[t]!, mealSize[t]!);
  }
  return { bg, sensor };
}

/** CGM sensor error model parameters (sensor_params.csv; spec §4.2). */
export interface CgmSensorModel {
  name: string;
  pacf: number;
  gamma: number;
  lambda: number;
  delta: number;
  xi: number;
  /** Sensor period (min). */
  sampleTimeMin: number;
  min: number;
  max: number;
}

export const DEXCOM_SENSOR: Readonly<CgmSensorModel> = Object.freeze({ name: 'Dexcom', pacf: 0.7, gamma: -0.5444, lambda: 15.9574, delta: 1.6898, xi: -5.47, sampleTimeMin: 3, min: 39, max: 600 });

function normal(rng: Random): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/**
 * Sensor error (mg/dL) at each of `count` sensor periods (spec §4.2): an AR(1) sequence drawn every
 * 15 minutes, Johnson-SU transformed, and interpolated with a cubic (Catmull-Rom) to the sensor period.
 */
export function cgmNoise(model: CgmSensorModel, count: number, seed: number): Float64Array {
  const gauss = normal(mulberry32(seed));
  const knots = Math.ceil((count * model.sampleTimeMin) / 15) + 3;
  const eps: number[] = [];
  let e = gauss();
  for (let k = 0; k < knots; k++) {
    if (k > 0) e = model.pacf * (e + gauss());
    eps.push(model.xi + model.lambda * Math.sinh((e - model.gamma) / model.delta));
  }
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const pos = (i * model.sampleTimeMin) / 15;
    const k = Math.floor(pos);
    const u = pos - k;
    const p0 = eps[Math.max(0, k - 1)]!;
    const p1 = eps[k]!;
    const p2 = eps[k + 1]!;
    const p3 = eps[k + 2]!;
    out[i] = 0.5 * (2 * p1 + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u * u + (-p0 + 3 * p1 - 3 * p2 + p3) * u * u * u);
  }
  return out;
}

export interface UvaPadovaSeriesOptions extends UvaPadovaInputs {
  /** Length of the series (min). */
  minutes: number;
  /** Sampling period of the series (min); default the sensor's. */
  periodMin?: number;
  /** `none`: the model's subcutaneous glucose, exact; otherwise add this sensor's error. */
  sensor?: CgmSensorModel | 'none';
  seed?: number;
}

/** A glucose series as a CGM (sensor compartment + sensor error, clipped to the sensor's range) would report it. */
export function uvaPadovaSeries(p: UvaPadovaPatient, options: UvaPadovaSeriesOptions): GlucoseSeries {
  const sensor = options.sensor ?? DEXCOM_SENSOR;
  const period = options.periodMin ?? (sensor === 'none' ? 5 : sensor.sampleTimeMin);
  const trace = simulateUvaPadova(p, options.minutes, options);
  const count = Math.floor(options.minutes / period) + 1;
  const noise = sensor === 'none' ? undefined : cgmNoise({ ...sensor, sampleTimeMin: period }, count, options.seed ?? 1);
  const samples: GlucoseSample[] = [];
  for (let i = 0; i < count; i++) {
    const g = trace.sensor[Math.min(trace.sensor.length - 1, Math.round(i * period))]!;
    const v = noise && sensor !== 'none' ? Math.min(sensor.max, Math.max(sensor.min, g + noise[i]!)) : g;
    samples.push({ tMs: Math.round(i * period * 60_000), mgdl: Math.round(v * 10) / 10 });
  }
  return { name: `uva-padova ${p.name}`, periodMs: period * 60_000, samples };
}

/** Kovatchev risk indices (spec §4.3) of a series of glucose values (mg/dL). */
export function riskIndices(values: ArrayLike<number>): { lbgi: number; hbgi: number; risk: number } {
  let rl = 0;
  let rh = 0;
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const f = 1.509 * (Math.log(Math.max(1, values[i]!)) ** 1.084 - 5.381);
    const r = 10 * f * f;
    if (f < 0) rl += r;
    else rh += r;
  }
  return n === 0 ? { lbgi: 0, hbgi: 0, risk: 0 } : { lbgi: rl / n, hbgi: rh / n, risk: (rl + rh) / n };
}
