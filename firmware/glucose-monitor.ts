/**
 * The live glucose path of the runtime for one sensor (glucose meter or CGM): readings in, and out
 * - `glucose-trend` findings: rate of change (least squares over the last 15 min; two readings far
 *   apart give a two-point rate with lower input quality), labelled in the five bands the clinic
 *   screen shows (`rising-fast` > 2, `rising` > 1, `stable`, `falling` < -1, `falling-fast` < -2
 *   mg/dL/min) with the CGM arrow of the seven-band scale in the evidence;
 * - `glucose-forecast` findings: the 30-minute forecast of models/glucose-forecast (when the sensor
 *   gives 30 gap-free minutes of history) with the predicted-hypoglycaemia detector's probability that
 *   a hypoglycaemic event (< 70 mg/dL for >= 15 min) starts 10 to 60 min after the reading;
 * - `glucose-sensor-fault` findings: sensor limits, and for a CGM (`sensorType: 'cgm'`) gaps, flat lines
 *   and compression lows, which a spot-check meter cannot have (device-sdk/signal/glucose/faults.ts).
 *   Like the trend, each is timed on the glucose clock (the meter's, when it has one): `t` is the last
 *   reading the fault covers and the interval spans the readings it covers;
 * - alerts, raised locally: `glucose-predicted-low` (severity 2) when the detector's alert logic
 *   (device-sdk/signal/glucose/hypo-detector.ts: probability with hysteresis, none during an ongoing
 *   event or its hold-off) turns on, `hyperglycaemia-sustained` (severity 2) after > 250 mg/dL for
 *   2 hours without a gap. Reading-level alerts (level 1 < 70, level 2 < 54 with severity 3, > 250) stay with the rule
 *   engine (firmware/rules.ts), so no condition is alerted twice. Each alert fires once per episode.
 *   Historical readings (a meter's memory downloaded later: `isHistoricalReading`) get trend and
 *   fault findings and join the history, but no forecast and no alert. A live alert on a reading that
 *   arrived more than 15 min after it was measured says how long ago (firmware/rules.ts `measuredWhen`).
 *   The episodes survive a restart: the runtime hands `restore` the readings and alerts stored in the
 *   last day, replayed without raising anything.
 *
 * The forecast network is a few hundred weights: it is evaluated synchronously in plain JavaScript
 * (device-sdk/signal/glucose/dense-network.ts) from the same TF.js artifact the CLI runs with tfjs;
 * both load it through `loadGlucoseForecaster` (manifest read and checked once).
 * Without a model (missing, altered or refused), the predicted-low alert falls back to a rule:
 * linear extrapolation of the 15-minute trend below 70 mg/dL; so does it from the first reading the model
 * fails on (it throws, gives NaN or ±Infinity, or a forecast no glucose reaches: `onModelError`). Decision
 * support, never a diagnosis.
 */
import { readFileSync } from 'node:fs';
import { MODEL_MANIFEST_FILE, MODEL_TOPOLOGY_FILE, MODEL_WEIGHTS_FILE } from '../device-sdk/inference/files.js';
import { join } from 'node:path';
import { type Alert, DEFAULT_METER_RECORD_BITS, type Finding, meterNumbering, meterRecordAfter, type MeterRecordBits, meterRecordId, type RaisedAlert, type Reading } from '../device-sdk/records.js';
import { canonicalJson, sha256Hex, verifyArtifact } from '../device-sdk/security/signing.js';
import { readArtifactFiles, readManifest } from '../device-sdk/security/artifact-files.js';
import { MAX_GLUCOSE_RATE_MG_DL_PER_MIN } from '../device-sdk/signal/glucose/csv.js';
import { DenseNetwork } from '../device-sdk/signal/glucose/dense-network.js';
import { CONTINUOUS_ONLY_FAULTS, DEFAULT_SENSOR_FAULT_OPTIONS, deviceRangeLimit, type GlucoseSensorType, sensorFaults } from '../device-sdk/signal/glucose/faults.js';
import { decodeForecast, FORECAST_SPEC, forecastFeatures, type GlucoseForecast } from '../device-sdk/signal/glucose/forecast.js';
import { DETECTOR_SPEC, detectorFeatures, detectorProbability, HypoAlertLogic, type HypoAlertPolicy } from '../device-sdk/signal/glucose/hypo-detector.js';
import { DEFAULT_TREND_OPTIONS, rateOfChange, TREND_ARROWS, trendLabel } from '../device-sdk/signal/glucose/trend.js';
import { type GlucosePoint, MS_PER_MIN } from '../device-sdk/signal/glucose/types.js';
import { CGM_MEASURED_AT, cgmMeasuredAt } from '../device-sdk/sensors/meter-time.js';
import { packageRoot } from './package-root.js';
import { isHistoricalReading, measuredWhen, meterClockAheadMs } from './rules.js';

/** Beyond this (min) between two readings, no two-point trend is reported. */
const MAX_TWO_POINT_TREND_MIN = 180;

export const GLUCOSE_TREND_MODEL_ID = 'algo:glucose-trend@3';
export const GLUCOSE_FAULTS_MODEL_ID = 'algo:glucose-sensor-faults@3';
export const GLUCOSE_FALLBACK_MODEL_ID = 'rule:glucose-extrapolation@1';
const MG_DL_PER_MMOL_L = 18.016;
/** The alerts of the monitor whose episodes a restart keeps open (`restore`). */
const RESTORED_ALERTS: readonly string[] = Object.freeze(['glucose-predicted-low', 'hyperglycaemia-sustained']);

/**
 * Whether `meterRecord` is a meter's record number (counting up), not a CGM's time offset: a CGM's offsets
 * start again with each sensor session, with or without a session start the driver could read.
 */
function isMeterRecordNumber(r: Reading): r is Reading & { meterRecord: number } {
  return r.meterRecord !== undefined && r.context?.sessionStart === undefined && r.context?.source !== 'cgm' && r.context?.[CGM_MEASURED_AT] === undefined;
}


export interface GlucoseMonitorOptions {
  /** Sustained hyperglycaemia: above `hyperLevel` mg/dL for `hyperMinutes` without a gap; re-arms at <= `hyperRearm`. */
  hyperLevel: number;
  hyperMinutes: number;
  hyperRearm: number;
  /** A predicted-low episode ends after this long without a prediction (min). */
  predictedRearmMin: number;
  /** History kept per sensor (min; the forecast reads the last 24 h), and at most this many readings. */
  historyMin: number;
  historyReadings: number;
  /** `cgm`: a continuous sensor (all sensor-fault flags); `meter`: fingersticks (no gap, flat-line or compression-low flags). */
  sensorType: GlucoseSensorType;
  /** The width of the meter's record counter, as its source declares it (records.ts `meterRecordAfter`): 16 for a Bluetooth meter, 32 for the serial line meter. */
  meterRecordBits: MeterRecordBits;
}

export const DEFAULT_GLUCOSE_MONITOR_OPTIONS: Readonly<GlucoseMonitorOptions> = Object.freeze({ hyperLevel: 250, hyperMinutes: 120, hyperRearm: 180, predictedRearmMin: 30, historyMin: 1440, historyReadings: 1500, sensorType: 'cgm', meterRecordBits: DEFAULT_METER_RECORD_BITS });

/** A loaded forecast model: the forecast network, the predicted-hypoglycaemia detector, its alert policy and provenance. */
export interface GlucoseForecaster {
  net: DenseNetwork;
  detector: DenseNetwork;
  policy: HypoAlertPolicy;
  modelId: string;
  sha256: string;
  /** The forecast's TF.js files (`model.json`, `weights.bin`) as read and checked here: `medge glucose predict` builds its TF.js model from them. */
  forecastFiles: { topology: Uint8Array; weights: Uint8Array };
}

export function defaultGlucoseModelDir(): string {
  return join(packageRoot(), 'models', 'glucose-forecast', 'artifact');
}

/**
 * Loads the forecast model of `dir`, the one loader of the runtime and of `medge glucose predict`:
 * each file is read once; with `trustedPublicPems`, the Ed25519 signature (`medge-manifest.json`)
 * over every file of the directory is verified first, then (always) every file `medge-model.json`
 * pins is checked against its sha256 there. Both networks and the alert policy come from those bytes.
 * Throws (ArtifactVerificationError, DenseNetworkError, Error) when it cannot be trusted or read.
 */
export function loadGlucoseForecaster(dir: string = defaultGlucoseModelDir(), trustedPublicPems?: readonly string[]): GlucoseForecaster {
  let read: (name: string) => Uint8Array = (name) => readFileSync(join(dir, name));
  if (trustedPublicPems !== undefined && trustedPublicPems.length > 0) {
    // The bytes the signature was checked on are the bytes the model is built from.
    const signed = readArtifactFiles(dir);
    verifyArtifact(readManifest(dir), signed, trustedPublicPems);
    read = (name) => {
      const bytes = signed.get(name);
      if (bytes === undefined) throw new Error(`${join(dir, name)} is missing`);
      return bytes;
    };
  }
  // The checks of device-sdk/inference readModelManifest, without loading TF.js into the runtime.
  const manifestBytes = read(MODEL_MANIFEST_FILE);
  const manifest = JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as { id: string; version: string; thresholds?: Partial<HypoAlertPolicy>; files?: Record<string, string> };
  const files = new Map<string, Uint8Array>();
  for (const [name, expected] of Object.entries(manifest.files ?? {})) {
    const bytes = read(name);
    if (sha256Hex(bytes) !== expected) throw new Error(`${join(dir, name)} does not match its sha256 in ${MODEL_MANIFEST_FILE}: the model was altered`);
    files.set(name, bytes);
  }
  const topology = files.get(MODEL_TOPOLOGY_FILE);
  const weights = files.get(MODEL_WEIGHTS_FILE);
  const detectorTopology = files.get('detector.json');
  const detectorWeights = files.get('detector.bin');
  if (!topology || !weights || !detectorTopology || !detectorWeights) throw new Error(`${dir}: ${MODEL_MANIFEST_FILE} must pin ${MODEL_TOPOLOGY_FILE}, ${MODEL_WEIGHTS_FILE}, detector.json and detector.bin`);
  const sha256 = sha256Hex(manifestBytes);
  const text = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const net = DenseNetwork.fromArtifacts(text(topology), weights);
  const detector = DenseNetwork.fromArtifacts(text(detectorTopology), detectorWeights);
  const t = manifest.thresholds ?? {};
  const keys = ['probability', 'release', 'holdoffMin', 'rearmLevel', 'rearmAfterMin'] as const;
  if (net.inDim !== FORECAST_SPEC.features || net.outDim !== 2 || detector.inDim !== DETECTOR_SPEC.features || detector.outDim !== 1 || keys.some((k) => typeof t[k] !== 'number')) {
    throw new Error(`${dir}: not a glucose forecast model (needs a ${FORECAST_SPEC.features}-input, 2-output forecast, a ${DETECTOR_SPEC.features}-input detector and the ${keys.join('/')} alert policy)`);
  }
  const policy = Object.fromEntries(keys.map((k) => [k, t[k] as number])) as unknown as HypoAlertPolicy;
  return { net, detector, policy, modelId: `${manifest.id}@${manifest.version}`, sha256, forecastFiles: { topology, weights } };
}

export interface GlucoseMonitorOutput {
  findings: Finding[];
  alerts: RaisedAlert[];
}

type ScreenTrend = 'rising-fast' | 'rising' | 'stable' | 'falling' | 'falling-fast';

function screenTrend(rate: number): ScreenTrend {
  return rate > 2 ? 'rising-fast' : rate > 1 ? 'rising' : rate < -2 ? 'falling-fast' : rate < -1 ? 'falling' : 'stable';
}

const TREND_SHA256 = sha256Hex(canonicalJson({ modelId: GLUCOSE_TREND_MODEL_ID, unit: 'mg/dL/min', ...DEFAULT_TREND_OPTIONS, maxTwoPointMin: MAX_TWO_POINT_TREND_MIN }));
const FAULTS_SHA256 = sha256Hex(canonicalJson({ modelId: GLUCOSE_FAULTS_MODEL_ID, ...DEFAULT_SENSOR_FAULT_OPTIONS, continuousOnly: CONTINUOUS_ONLY_FAULTS }));
/**
 * The fastest glucose moves (mg/dL per min, `MAX_GLUCOSE_RATE_MG_DL_PER_MIN`): a forecast further from the reading
 * than this over the horizon is a broken model's. The shipped model's 102,910 forecasts of the hall2018 CGM
 * traces move 66 mg/dL at most in its 30 min (300 allowed).
 */
const MAX_FORECAST_RATE = MAX_GLUCOSE_RATE_MG_DL_PER_MIN;

const FALLBACK_SHA256 = sha256Hex(canonicalJson({ modelId: GLUCOSE_FALLBACK_MODEL_ID, windowMin: 15, horizonMin: 30, below: 70 }));

export class GlucoseMonitor {
  readonly sensor: string;
  private readonly options: GlucoseMonitorOptions;
  /** Undefined without a model, and from the first reading it failed on (`runModel`). */
  private forecaster: GlucoseForecaster | undefined;
  private trace: GlucosePoint[] = [];
  /** The last record taken live: its number, within its sensor session (CGM time offsets restart per sensor). */
  private lastRecord: string | undefined;
  /** The record number of a meter's last live reading (meters number their records; CGMs give time offsets per session), and its numbering (records.ts `meterNumbering`: a replaced or reset meter numbers from 1 again). */
  private lastMeterRecord: { record: number; numbering: string | undefined } | undefined;
  private alertLogic: HypoAlertLogic | undefined;
  /** Told once when the model fails at run time (it threw, or gave NaN or ±Infinity); the monitor is on its rule from then on. */
  onModelError: ((reason: string, error: unknown) => void) | undefined;
  private predictedFired = false;
  private lastPredictedT = Number.NEGATIVE_INFINITY;
  private hyperFired = false;
  /** Per fault kind, the end of the last reported fault: an overlapping one (a flat line going on) is the same fault. */
  private readonly reportedUntil = new Map<string, number>();

  constructor(sensor: string, forecaster?: GlucoseForecaster, options: Partial<GlucoseMonitorOptions> = {}) {
    this.sensor = sensor;
    this.forecaster = forecaster;
    this.options = { ...DEFAULT_GLUCOSE_MONITOR_OPTIONS, ...options };
    this.alertLogic = forecaster ? new HypoAlertLogic(forecaster.policy) : undefined;
  }

  /**
   * Rebuilds the monitor after a restart, raising nothing: `readings` (this sensor's, in the order they were
   * stored) are replayed as they came, which restores the trace (the sustained-high run goes on counting from
   * its first reading, not from the restart), the detector's episode and hold-off, and the reported faults;
   * each of `alerts` of this sensor (`glucose-predicted-low`, `hyperglycaemia-sustained`) then keeps its
   * episode open from the reading it was raised on (alert `t` = that reading's device time), even where the
   * replay alone would not have raised it (a model replaced since; acknowledged readings evicted over the
   * disk budget, which goes before acknowledged alerts). Called once, before any live reading.
   */
  restore(readings: readonly Reading[], alerts: readonly Pick<Alert, 'kind' | 't' | 'sensor'>[]): void {
    const raised = alerts.filter((a) => a.sensor === this.sensor && RESTORED_ALERTS.includes(a.kind)).sort((a, b) => a.t - b.t);
    let next = 0;
    const reopen = (upTo: number) => {
      for (let a = raised[next]; a !== undefined && a.t <= upTo; a = raised[++next]) {
        if (a.kind === 'hyperglycaemia-sustained') this.hyperFired = true;
        else {
          this.predictedFired = true;
          this.lastPredictedT = Math.max(this.lastPredictedT, this.trace.at(-1)?.t ?? Number.NEGATIVE_INFINITY);
        }
      }
    };
    for (const r of readings) {
      if (r.sensor !== this.sensor) continue;
      this.push(r);
      reopen(r.tDevice);
    }
    reopen(Number.POSITIVE_INFINITY);
  }

  push(r: Reading): GlucoseMonitorOutput {
    const out: GlucoseMonitorOutput = { findings: [], alerts: [] };
    if (r.type !== 'glucose') return out;
    const gl = r.unit === 'mg/dL' ? r.value : r.unit === 'mmol/L' ? r.value * MG_DL_PER_MMOL_L : Number.NaN;
    if (!Number.isFinite(gl)) return out; // unknown unit: not evaluated rather than misread
    // A meter time ahead of the device's clock is a wrong clock (firmware/rules.ts): it would sit at the end of
    // the trace and make every later, correctly timed reading look backfilled. Stored, never analysed.
    if (meterClockAheadMs(r) > 0) return out;
    const record = meterRecordId(r);
    if (record !== undefined && record === this.lastRecord) return out;
    // A CGM record's time as the driver estimates it from its time offset (device-sdk/sensors/ble-cgm.ts
    // CgmRecordClock): records sent in a burst after a link loss keep their own times.
    const measuredAt = cgmMeasuredAt(r);
    const t = r.tMeter ?? (measuredAt !== undefined && measuredAt <= r.tDevice ? measuredAt : r.tDevice);
    // A reading the device itself marked as outside its range (a meter's LO/HI, a CGM's device range bits).
    const limit = deviceRangeLimit(r.context);
    const point: GlucosePoint = limit !== undefined ? { t, gl, deviceLimit: limit } : { t, gl };
    // A meter's newer record dated before the trace's end: its clock was set back (it was fast, or summer
    // time ended). The points the fast clock dated from this time on go, or the trend and forecast would wait
    // for as long as the clock was ahead and then compare against them.
    // Newer and older as the driver and the runtime decide them, on the source's counter width (a Bluetooth
    // meter's 16-bit number starts again at 0 after 65,535; a serial meter's 32-bit one does not at 65,536).
    // A record of another numbering (another meter under the sensor's name, or the same one after a reset) is
    // neither newer nor older than the last one: its time decides, as for a first record.
    const numbering = meterNumbering(r);
    const previous = isMeterRecordNumber(r) && this.lastMeterRecord !== undefined && this.lastMeterRecord.numbering === numbering ? this.lastMeterRecord.record : undefined;
    const bits = this.options.meterRecordBits;
    const newer = previous !== undefined && meterRecordAfter(r.meterRecord as number, previous, bits);
    const older = previous !== undefined && meterRecordAfter(previous, r.meterRecord as number, bits);
    const end = this.trace.at(-1)?.t;
    if (newer && end !== undefined && t <= end) this.trace = this.trace.filter((p) => p.t < t);
    // An older record is never live; dated after the trace's end it was dated by a clock that has since been
    // set back, so its time says nothing and it stays out of the trace.
    if (older && end !== undefined && t > end) return out;
    const last = this.trace[this.trace.length - 1];
    if (last !== undefined && t <= last.t) {
      // Backfilled or repeated: kept for the history, nothing live to say about it.
      if (!this.trace.some((p) => p.t === t)) this.trace = [...this.trace, point].sort((a, b) => a.t - b.t);
      return out;
    }
    this.lastRecord = record;
    if (isMeterRecordNumber(r)) this.lastMeterRecord = { record: r.meterRecord, numbering };
    this.trace.push(point);
    const keepFrom = t - this.options.historyMin * MS_PER_MIN;
    if ((this.trace[0] as GlucosePoint).t < keepFrom) this.trace = this.trace.filter((p) => p.t >= keepFrom);
    if (this.trace.length > this.options.historyReadings) this.trace = this.trace.slice(-this.options.historyReadings);
    const recentFaults = this.faults(out);
    this.trend(gl, last, out);
    // A record from the meter's memory (firmware/rules.ts isHistoricalReading) adds to the history the
    // forecast and the sustained-high run read, but raises no live alert and forecasts nothing.
    if (isHistoricalReading(r)) return out;
    this.forecast(r, gl, recentFaults, out);
    this.sustainedHyper(r, gl, out);
    return out;
  }

  private trend(gl: number, prev: GlucosePoint | undefined, out: GlucoseMonitorOutput): void {
    if (prev === undefined) return;
    const now = this.trace[this.trace.length - 1] as GlucosePoint;
    let rate = rateOfChange(this.trace);
    let quality = 1;
    let evidence: string;
    const flags: string[] = [];
    if (rate === undefined) {
      const minutes = (now.t - prev.t) / MS_PER_MIN;
      // A slope between readings hours apart (fingersticks, or a reading after months) says nothing about
      // where glucose is heading: no trend rather than a "stable" arrow.
      if (minutes > MAX_TWO_POINT_TREND_MIN) return;
      rate = (gl - prev.gl) / minutes;
      quality = Math.min(1, Math.round((DEFAULT_TREND_OPTIONS.maxGapMin / minutes) * 100) / 100);
      flags.push('readings-far-apart');
      evidence = `two readings ${Math.round(minutes)} min apart`;
    } else {
      const n = this.trace.filter((p) => now.t - p.t <= DEFAULT_TREND_OPTIONS.windowMin * MS_PER_MIN).length;
      evidence = `least squares over ${n} readings in ${DEFAULT_TREND_OPTIONS.windowMin} min`;
    }
    const band = trendLabel(rate);
    out.findings.push({
      kind: 'glucose-trend',
      label: screenTrend(rate),
      value: Math.round(rate * 100) / 100,
      probability: 1,
      // Timed on the glucose clock (the meter's own, when it has one): a backfill delivers many
      // readings in one burst, and each trend belongs to its reading's time, not to the burst's.
      t: now.t,
      intervalStart: prev.t,
      intervalEnd: now.t,
      evidence: `${evidence}; CGM arrow ${TREND_ARROWS[band]} (${band})`,
      modelId: GLUCOSE_TREND_MODEL_ID,
      modelSha256: TREND_SHA256,
      inputQuality: quality,
      ...(flags.length > 0 ? { qualityFlags: flags } : {}),
    });
  }

  /** Reports new sensor faults; returns the kinds seen in the last hour (for the forecast's quality). */
  private faults(out: GlucoseMonitorOutput): string[] {
    const now = (this.trace[this.trace.length - 1] as GlucosePoint).t;
    const recent: string[] = [];
    // Faults older than 3 h are not reported any more: scan the last 3 h (and the reading before them, for a gap).
    let from = this.trace.length - 1;
    while (from > 0 && now - (this.trace[from - 1] as GlucosePoint).t <= 3 * 60 * MS_PER_MIN) from--;
    for (const f of sensorFaults(this.trace.slice(Math.max(0, from - 1)), {}, this.options.sensorType)) {
      if (f.end >= now - 60 * MS_PER_MIN && !recent.includes(f.kind)) recent.push(f.kind);
      const until = this.reportedUntil.get(f.kind) ?? Number.NEGATIVE_INFINITY;
      if (f.start <= until) {
        this.reportedUntil.set(f.kind, Math.max(until, f.end));
        continue;
      }
      this.reportedUntil.set(f.kind, f.end);
      out.findings.push({
        kind: 'glucose-sensor-fault',
        label: f.kind,
        probability: 1,
        // Timed on the glucose clock, as the trend: a backfill burst delivers old faults, which belong to their readings' time.
        t: f.end,
        intervalStart: f.start,
        intervalEnd: f.end,
        evidence: `${f.kind === 'gap' ? 'no reading between' : 'readings from'} ${new Date(f.start).toISOString()} ${f.kind === 'gap' ? 'and' : 'to'} ${new Date(f.end).toISOString()} (${this.options.sensorType === 'cgm' ? 'CGM' : 'meter'} time)`,
        modelId: GLUCOSE_FAULTS_MODEL_ID,
        modelSha256: FAULTS_SHA256,
        inputQuality: 1,
      });
    }
    return recent;
  }

  /**
   * The forecast and the detector's probability at trace point `i`, or undefined when the model failed: it
   * threw, or gave a value that is not a finite number (NaN or ±Infinity, e.g. from corrupt weights that were
   * signed), or a forecast further from the reading than glucose moves in the horizon (`MAX_FORECAST_RATE`:
   * finite weights dequantized far too large gave 1.4e8-1.8e8 mg/dL, or their negatives and a predicted low at a steady 120.
   * The monitor then drops the model for good (`useRules`) and tells `onModelError`; this reading and every
   * later one are judged by the rule, so no alert ever comes from a NaN or an impossible forecast.
   */
  private runModel(forecaster: GlucoseForecaster, f: Float32Array, gl: number, i: number): { fc: GlucoseForecast; risk: number } | undefined {
    let failure: string;
    let error: unknown;
    try {
      const output = forecaster.net.predict(f);
      const fc = decodeForecast(gl, output);
      const logit = forecaster.detector.predict(detectorFeatures(this.trace, i, f, fc))[0] as number;
      const bad = [...new Set([...output, logit].filter((v) => !Number.isFinite(v)).map(String))];
      const reach = MAX_FORECAST_RATE * FORECAST_SPEC.horizonMin;
      if (bad.length === 0 && Math.abs(fc.predGl - gl) <= reach) return { fc, risk: detectorProbability(logit) };
      failure =
        bad.length > 0
          ? `its output is not a finite number (${bad.join(', ')})`
          : `its forecast, ${fc.predGl.toPrecision(4)} mg/dL in ${FORECAST_SPEC.horizonMin} min from ${gl}, is more than ${reach} mg/dL away: no glucose moves that fast`;
    } catch (e) {
      error = e;
      failure = `its evaluation threw: ${e instanceof Error ? e.message : String(e)}`;
    }
    this.useRules();
    this.onModelError?.(failure, error);
    return undefined;
  }

  /** Drops the forecast model: predicted lows come from the rule (trend extrapolation) from now on. The episode in progress stays as it is. */
  useRules(): void {
    this.forecaster = undefined;
    this.alertLogic = undefined;
  }

  private forecast(r: Reading, gl: number, recentFaults: string[], out: GlucoseMonitorOutput): void {
    const i = this.trace.length - 1;
    const f = this.forecaster ? forecastFeatures(this.trace, i) : undefined;
    const now = (this.trace[i] as GlucosePoint).t;
    let predicted: boolean;
    let shown: number | undefined;
    let risk: number | undefined;
    /** The model's forecast at this reading, which a predicted-low alert links to. */
    let forecastFinding: Finding | undefined;
    const model = this.forecaster && this.alertLogic && f ? this.runModel(this.forecaster, f, gl, i) : undefined;
    if (model && this.forecaster && this.alertLogic && f) {
      const fc = model.fc;
      risk = model.risk;
      predicted = this.alertLogic.step(now, gl, risk);
      shown = fc.predGl;
      const missing = f[15] as number;
      const flags = [...recentFaults, ...(missing > 0 ? ['history-gaps'] : [])];
      forecastFinding = {
        kind: 'glucose-forecast',
        label: fc.predGl < 70 ? 'forecast-low' : fc.predGl > 180 ? 'forecast-high' : 'forecast-in-range',
        value: Math.round(fc.predGl * 10) / 10,
        probability: Math.round(risk * 1000) / 1000,
        t: r.tDevice,
        intervalStart: r.tDevice,
        intervalEnd: r.tDevice + FORECAST_SPEC.horizonMin * MS_PER_MIN,
        evidence: `value: forecast mg/dL at +${FORECAST_SPEC.horizonMin} min from 60 min of history; probability: a glucose level below 70 mg/dL for 15 min starting 10 to 60 min from now (detector, from the trace of up to 24 h and the forecast)`,
        modelId: this.forecaster.modelId,
        modelSha256: this.forecaster.sha256,
        inputQuality: Math.round((1 - missing) * (recentFaults.length > 0 ? 0.5 : 1) * 100) / 100,
        ...(flags.length > 0 ? { qualityFlags: flags } : {}),
      };
      out.findings.push(forecastFinding);
    } else if (this.alertLogic) {
      // The model cannot run (history with gaps): no prediction, but the alert logic follows the readings.
      predicted = this.alertLogic.step(now, gl, undefined);
    } else {
      // Rule-based fallback: the 15-minute trend extrapolated 30 minutes.
      const rate = rateOfChange(this.trace);
      shown = rate === undefined ? undefined : gl + rate * FORECAST_SPEC.horizonMin;
      predicted = gl >= 70 && shown !== undefined && shown < 70;
    }
    if (predicted) this.lastPredictedT = now;
    else if (this.predictedFired && now - this.lastPredictedT >= this.options.predictedRearmMin * MS_PER_MIN) this.predictedFired = false;
    if (predicted && !this.predictedFired) {
      this.predictedFired = true;
      const how = this.forecaster && f ? `model ${this.forecaster.modelId}` : 'trend extrapolation (no forecast model)';
      const chance = risk !== undefined ? `probability ${Math.round(risk * 100)} % of a low starting within 10 to 60 minutes, ` : '';
      // Without the model's forecast (no model, or history with gaps), the trend extrapolation that
      // raised the alert is its finding, stored with it only.
      const finding: Finding = forecastFinding ?? {
        kind: 'glucose-forecast',
        label: 'forecast-low',
        ...(shown !== undefined ? { value: Math.round(shown * 10) / 10 } : {}),
        probability: 1,
        t: r.tDevice,
        evidence: 'linear extrapolation of the 15-minute trend',
        modelId: GLUCOSE_FALLBACK_MODEL_ID,
        modelSha256: FALLBACK_SHA256,
        inputQuality: 1,
        qualityFlags: ['no-forecast-model'],
      };
      if (finding !== forecastFinding) out.findings.push(finding);
      // A reading that arrives late (a backfill of the last day) says so: its prediction is about a time that may have passed.
      const when = measuredWhen(r);
      const horizon = risk !== undefined ? (when ? 'within the hour after it' : 'within the next hour') : `within about ${FORECAST_SPEC.horizonMin} minutes${when ? ' of it' : ''}`;
      const head = when ? `Glucose ${Math.round(gl)} mg/dL, ${when}, was predicted to fall below 70 mg/dL ${horizon}` : `Glucose ${Math.round(gl)} mg/dL is predicted to fall below 70 mg/dL ${horizon}`;
      out.alerts.push({
        kind: 'glucose-predicted-low',
        severity: 2,
        t: r.tDevice,
        sensor: this.sensor,
        message: `${head}${shown !== undefined ? ` (${chance}forecast ${Math.round(shown)} mg/dL in ${FORECAST_SPEC.horizonMin} min, ${how})` : ''}; check the patient${when ? ' now' : ''} (decision support, review by a clinician).`,
        finding,
      });
    }
  }

  private sustainedHyper(r: Reading, gl: number, out: GlucoseMonitorOutput): void {
    const o = this.options;
    if (gl <= o.hyperRearm) this.hyperFired = false;
    if (this.hyperFired || gl <= o.hyperLevel) return;
    const now = (this.trace[this.trace.length - 1] as GlucosePoint).t;
    // Walk back while readings stay above the level without a gap.
    let k = this.trace.length - 1;
    while (k > 0) {
      const prev = this.trace[k - 1] as GlucosePoint;
      if (prev.gl <= o.hyperLevel || (this.trace[k] as GlucosePoint).t - prev.t > DEFAULT_SENSOR_FAULT_OPTIONS.maxGapMin * MS_PER_MIN) break;
      k--;
    }
    const minutes = (now - (this.trace[k] as GlucosePoint).t) / MS_PER_MIN;
    if (minutes < o.hyperMinutes) return;
    this.hyperFired = true;
    const when = measuredWhen(r);
    out.alerts.push({
      kind: 'hyperglycaemia-sustained',
      severity: 2,
      t: r.tDevice,
      sensor: this.sensor,
      message: `Glucose has stayed above ${o.hyperLevel} mg/dL for ${Math.round(minutes)} minutes (${when ? `last reading ${Math.round(gl)} mg/dL, ${when}` : `now ${Math.round(gl)} mg/dL`}); review by a clinician.`,
    });
  }
}
