/**
 * Live analysis in the runtime. An analyzer sees every stored-or-not chunk and every reading of
 * the sensors it cares about, and returns derived readings, findings and alerts; the runtime
 * stores them and raises the alerts locally (never waiting for the network).
 *
 * One explicit list: `createAnalyzers` picks the analyzers a config needs. ECG: `EcgMonitor` per
 * ECG sensor; `PcgMonitor` per stethoscope (heart-sound screen). Glucose analytics add theirs here.
 */
import { type Alert, DEFAULT_METER_RECORD_BITS, type Finding, type MeterRecordBits, type RaisedAlert, type Reading, type StreamChunk } from '../device-sdk/records.js';
import type { ModelDirs, RuntimeConfig, SourceConfig } from './config.js';
import type { AnalysisStatus } from './status.js';
import { RULE_CLASSIFIER_ID } from '../device-sdk/signal/ecg/beat-classes.js';
import { DEFAULT_QRS_OPTIONS } from '../device-sdk/signal/ecg/qrs-detector.js';
import { DEFAULT_PCG_SCREEN_OPTIONS } from '../device-sdk/signal/pcg/screen.js';
import { verifyArtifactDir } from '../device-sdk/security/artifact-files.js';
import { ArtifactVerificationError } from '../device-sdk/security/signing.js';
import { MODEL_MANIFEST_FILE } from '../device-sdk/inference/files.js';
import type { InferenceWorkerOptions } from '../device-sdk/inference/worker.js';
import { DEFAULT_MODEL_RESTARTS, INSTALL_SIGNED_MODEL, ModelRestarts } from './model-restarts.js';
import { defaultBeatModelDir, WorkerBeatClassifier } from './ecg-classifier.js';
import { EcgMonitor } from './ecg-monitor.js';
import { defaultGlucoseModelDir, GLUCOSE_FALLBACK_MODEL_ID, type GlucoseForecaster, GlucoseMonitor, loadGlucoseForecaster } from './glucose-monitor.js';
import { createLogger, type Logger } from '../device-sdk/log.js';
import { type Clock, type ClockTimer, systemClock } from '../device-sdk/clock.js';
import { loadPcgModelInWorker, PCG_FALLBACK_ID, type PcgModel, pcgModelDir, pcgModelId, PcgMonitor } from './pcg-monitor.js';

export interface AnalyzerOutput {
  readings?: Reading[];
  findings?: Finding[];
  /** Alerts, each with the finding that raised it when there is one (stored with it, `findingSeq`). */
  alerts?: RaisedAlert[];
}

export interface Analyzer {
  readonly name: string;
  onChunk?(c: StreamChunk): AnalyzerOutput | undefined;
  onReading?(r: Reading): AnalyzerOutput | undefined;
  /** Called once when the runtime starts; models start loading here. */
  start?(hooks: AnalyzerHooks): void;
  /** What the analysis runs on now (status screen, clinic page). */
  status?(): AnalysisStatus;
  /**
   * The stream of `sensor` ended (its source disconnected), or, without `sensor`, the runtime stopped its sources:
   * close what is buffered (a partial window is analysed, or reported too short) and resolve with everything
   * computed and not yet returned. The runtime calls it in `stopSources` (so also at stop, before the
   * store closes); it never rejects.
   */
  flush?(sensor?: string): Promise<AnalyzerOutput | undefined>;
  /** Releases the analysis's model (its inference worker) when the runtime stops (after `flush`). */
  close?(): Promise<void>;
  /**
   * Rebuilds what the analysis keeps in memory from records stored before this start, so that an episode
   * open at a restart stays open (no second alarm for it, no timer started again from zero). The runtime
   * calls it once, before `start` and before any new reading; it raises and returns nothing.
   */
  restore?(stored: StoredRecords): void;
}

/** Records stored before a start that an analysis rebuilds its state from (`Analyzer.restore`). */
export interface StoredRecords {
  /** Readings of the sensors it asked for, stored in the last day, in the order they were stored. */
  readings: readonly Reading[];
  /** Alerts of those sensors raised in the last day, in the order they were stored. */
  alerts: readonly Alert[];
}

/** What the runtime gives an analyzer when it starts. */
export interface AnalyzerHooks {
  /**
   * The analysis settled on its model or its fallback (at start, or when a model fails while running).
   * The runtime writes it to the audit log; `alert` (for a fallback) is raised when this analysis's
   * previous audit row says something else, so a device that boots again with the same refused model
   * does not raise it again at every start.
   */
  settled(status: AnalysisStatus, alert?: Alert): void;
  /**
   * Output produced outside `onChunk`/`onReading` (a window screened after its stream went quiet):
   * the runtime stores it and raises its alerts, as for what `onChunk` returns. Dropped once the store is closed.
   */
  emit?(out: AnalyzerOutput): void;
}

/** The alert kind of a stream at a sample rate its analysis is not validated for (severity 1). */
export const SAMPLE_RATE_UNVALIDATED = 'sample-rate-unvalidated';
/** The alert kind of an ECG stream too slow to analyse at all: no rhythm alarms from it (severity 2). */
export const ECG_NOT_MONITORED = 'ecg-not-monitored';

/** The alert kind of an analysis that runs on its fallback because its model was refused, could not load or failed. */
export const ANALYSIS_DEGRADED = 'analysis-degraded';

export { DEFAULT_MODEL_RESTARTS };

/**
 * One analysis's model: `loading`, then `model` or `fallback`. A fallback comes with an
 * `analysis-degraded` alert of severity 1 (information: stored, synced and listed, but it does not
 * sound the bedside alarm, since only a technician can install a model), so that the clinic and the
 * regional edge know the findings come from rules. Settling logs once, here.
 */
class ModelState {
  private current: AnalysisStatus;
  private hooks: AnalyzerHooks | undefined;
  /** What happened before the runtime started (the glucose model loads with the analyzer). */
  private pending: { status: AnalysisStatus; alert?: Alert } | undefined;

  constructor(
    readonly analyzer: string,
    private readonly fallbackAlgo: string,
    /** e.g. "ECG beat classifier". */
    private readonly what: string,
    /** What the analysis does without its model, e.g. "beats are classified by rules ...". */
    private readonly consequence: string,
    private readonly deps: { now: () => number; logger: Pick<Logger, 'info' | 'warn'> },
  ) {
    this.current = { analyzer, state: 'loading', algo: fallbackAlgo };
  }

  start(hooks: AnalyzerHooks): void {
    this.hooks = hooks;
    const pending = this.pending;
    this.pending = undefined;
    if (pending) this.settle(pending.status, pending.alert);
  }

  /** The model is in use; `source` says where it came from (directory, sha256). */
  loaded(algo: string, source: string, logFields: Record<string, unknown> = {}): void {
    this.deps.logger.info({ analysis: this.analyzer, model: algo, source, ...logFields }, `${this.what} model loaded`);
    this.settle({ analyzer: this.analyzer, state: 'model', algo, source });
  }

  /**
   * The model was refused or could not load (`when` = 'not loaded'), or failed while running ('failed').
   * `advice` ends the alert (what happens next, who should act).
   */
  fellBack(reason: string, when: 'not loaded' | 'failed', advice = INSTALL_SIGNED_MODEL): void {
    if (this.current.state === 'fallback') return;
    this.deps.logger.warn({ analysis: this.analyzer, err: reason, algo: this.fallbackAlgo }, `${this.what} model ${when}: ${this.consequence}`);
    this.settle(
      { analyzer: this.analyzer, state: 'fallback', algo: this.fallbackAlgo, reason },
      {
        kind: ANALYSIS_DEGRADED,
        severity: 1,
        t: this.deps.now(),
        message: `The ${this.what} model is not in use (${when === 'failed' ? `it failed: ${reason}` : reason}); ${this.consequence}. ${advice}`,
      },
    );
  }

  private settle(status: AnalysisStatus, alert?: Alert): void {
    this.current = status;
    if (!this.hooks) this.pending = alert ? { status, alert } : { status };
    else this.hooks.settled({ ...status }, alert);
  }

  status(): AnalysisStatus {
    return { ...this.current };
  }
}

/**
 * Sample rates (Hz) each stream analysis is validated for. ECG: the beat model and the detector were
 * evaluated at 128, 250 and 360 Hz (models/ecg-beats/MODEL_CARD.md); at or below twice the QRS band's
 * upper edge (36 Hz) the detector's band-pass is not realisable and `medge ecg` refuses the record, so the
 * runtime does not analyse it either. Heart sounds: below twice the screen band's upper edge (1600 Hz)
 * every window is `unreadable` (`low-sample-rate`); no upper limit (the screen resamples to 4 kHz).
 */
export const VALIDATED_SAMPLE_RATES: Readonly<Record<'ecg' | 'pcg', SampleRateRange>> = Object.freeze({
  // Above 16 kHz (the fastest ECG front ends, for pacemaker spikes) a stream is not analysed: QA's DATA frame
  // at 1e9 Hz made the QRS detector refuse its history and took the ECG link down; at 1 MHz the analysis
  // would run slower than real time on a board.
  ecg: Object.freeze({ min: 128, max: 360, refuseAtOrBelow: 2 * DEFAULT_QRS_OPTIONS.bandHz[1], refuseAbove: 16_000 }),
  pcg: Object.freeze({ min: 2 * DEFAULT_PCG_SCREEN_OPTIONS.bandHz[1], max: Number.POSITIVE_INFINITY, refuseAtOrBelow: 0, refuseAbove: 192_000 }),
});

/** Validated sample rates of an analysis (Hz), and where it does not run at all. */
export interface SampleRateRange {
  min: number;
  max: number;
  refuseAtOrBelow: number;
  refuseAbove: number;
}

/** The quality flag of findings from a stream outside its analysis's validated sample rates. */
export const UNVALIDATED_SAMPLE_RATE = 'unvalidated-sample-rate';

/**
 * Checks each sensor's sample rate when its first chunk (or a chunk at a new rate) arrives: a rate outside
 * the validated range is reported once per sensor and rate, as a log warning and a `sample-rate-unvalidated`
 * alert (severity 1; `ecg-not-monitored`, severity 2, for an ECG too slow to analyse) naming the sensor, its
 * rate and the supported range.
 */
class SampleRateCheck {
  private readonly seen = new Map<string, number>();
  private readonly outside = new Set<string>();

  constructor(
    private readonly signal: 'ecg' | 'pcg',
    /** e.g. "ECG beat analysis". */
    private readonly what: string,
    /** What happens to the analysis outside the range, and below the floor. */
    private readonly consequence: { unvalidated: string; refused: string },
    private readonly deps: { now: () => number; logger: Pick<Logger, 'warn'> },
  ) {}

  get range(): SampleRateRange {
    return VALIDATED_SAMPLE_RATES[this.signal];
  }

  /** Whether `sensor`'s stream is outside the validated range now. */
  unvalidated(sensor: string): boolean {
    return this.outside.has(sensor);
  }

  /** Whether the stream of `rateHz` is not analysed at all (at or below the floor, or above the ceiling). */
  refused(rateHz: number): boolean {
    return rateHz <= this.range.refuseAtOrBelow || rateHz > this.range.refuseAbove;
  }

  /** Notes the chunk's rate; returns the alert when it is a new rate outside the range. */
  check(c: Pick<StreamChunk, 'sensor' | 'rateHz'>): Alert | undefined {
    if (this.seen.get(c.sensor) === c.rateHz) return undefined;
    this.seen.set(c.sensor, c.rateHz);
    const { min, max } = this.range;
    if (c.rateHz >= min && c.rateHz <= max) {
      this.outside.delete(c.sensor);
      return undefined;
    }
    this.outside.add(c.sensor);
    const range = Number.isFinite(max) ? `${min}-${max} Hz` : `${min} Hz or more`;
    const refused = this.refused(c.rateHz);
    const consequence = refused ? this.consequence.refused : this.consequence.unvalidated;
    this.deps.logger.warn({ analysis: this.signal, sensor: c.sensor, rateHz: c.rateHz, validatedHz: range }, `${this.what}: sample rate outside the validated range`);
    // An ECG that is not analysed at all leaves a patient without rhythm alarms: a warning, as a lost
    // signal is; a rate outside the validated range only lowers the findings' quality: information.
    const notMonitored = refused && this.signal === 'ecg';
    return {
      kind: notMonitored ? ECG_NOT_MONITORED : SAMPLE_RATE_UNVALIDATED,
      severity: notMonitored ? 2 : 1,
      t: this.deps.now(),
      sensor: c.sensor,
      message: `Sensor ${c.sensor} sends ${this.signal === 'ecg' ? 'ECG' : 'heart sounds'} at ${c.rateHz} Hz; the ${this.what} is validated for ${range}${refused ? ` and cannot run ${c.rateHz > this.range.refuseAbove ? `above ${this.range.refuseAbove}` : `at or below ${this.range.refuseAtOrBelow}`} Hz` : ''}: ${consequence}. Configure the device to sample within ${range}.`,
    };
  }
}

/** Flags the findings of an unvalidated stream and halves their input quality; adds `alert` first. */
function unvalidatedOutput(out: AnalyzerOutput | undefined, flag: boolean, alert: Alert | undefined): AnalyzerOutput | undefined {
  if (!out && !alert) return undefined;
  const findings = (out?.findings ?? []).map((f) => (flag ? { ...f, inputQuality: Math.round(f.inputQuality * 50) / 100, qualityFlags: [...(f.qualityFlags ?? []), UNVALIDATED_SAMPLE_RATE] } : f));
  return { ...out, findings, alerts: [...(alert ? [alert] : []), ...(out?.alerts ?? [])] };
}

/** The monitors of `sensor`, or all of them when undefined (a flush at stop). */
function monitorsOf<M>(monitors: ReadonlyMap<string, M>, sensor: string | undefined): [string, M][] {
  return [...monitors].filter(([s]) => sensor === undefined || s === sensor);
}

/** Several monitors' outputs as one. */
function mergeOutputs(outs: readonly (AnalyzerOutput | undefined)[]): Required<AnalyzerOutput> {
  return { readings: outs.flatMap((o) => o?.readings ?? []), findings: outs.flatMap((o) => o?.findings ?? []), alerts: outs.flatMap((o) => o?.alerts ?? []) };
}

/** The kind of signal a configured source delivers. */
export function sourceSignal(s: SourceConfig): 'ecg' | 'pcg' | 'glucose' | 'heart-rate' | 'device' {
  switch (s.type) {
    case 'sim-ecg':
      return 'ecg';
    case 'sim-pcg':
      return 'pcg';
    case 'sim-glucose':
      return 'glucose';
    case 'sim-hr':
      return 'heart-rate';
    case 'device':
      return 'device';
  }
}

/** The sensors of `sources` that deliver ECG (simulated, or devices whose driver says `ecg`). */
export function ecgSensors(sources: readonly SourceConfig[], deviceKinds: Readonly<Record<string, string>> = {}): string[] {
  return sources.filter((s) => sourceSignal(s) === 'ecg' || (s.type === 'device' && deviceKinds[s.sensor] === 'ecg')).map((s) => s.sensor);
}

/** The sensors of `sources` that deliver glucose (simulated meters, and devices whose driver says a glucose kind): the glucose analysis's sensors. */
export function glucoseSensors(sources: readonly SourceConfig[], deviceKinds: Readonly<Record<string, string>> = {}): string[] {
  return sources.filter((s) => sourceSignal(s) === 'glucose' || (s.type === 'device' && GLUCOSE_DEVICE_KINDS.includes(deviceKinds[s.sensor] ?? ''))).map((s) => s.sensor);
}

/** Optional services of the analyzers (the runtime passes its logger). */
export interface AnalyzerDeps {
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** Model directories replacing the shipped ones (`artifacts.models`). */
  models?: ModelDirs;
  /** The device clock, for the time of an `analysis-degraded` alert (default Date.now). */
  now?: () => number;
  /**
   * Trusted artifact signing keys (PEM). When given, a model is loaded only after its signature
   * verifies (`verifyArtifactDir`); a refused model leaves the rule fallback in place.
   */
  trustedKeys?: readonly string[];
  /** The runtime's clock: timers of the end-of-stream checks (the heart-sound screen's partial windows). */
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /** The inference workers' deadlines and entry (default `DEFAULT_INFERENCE_WORKER_OPTIONS`: real-time timers, not `clock`). */
  inference?: Partial<InferenceWorkerOptions>;
  /** Restarts of a model worker that stopped answering (default `DEFAULT_MODEL_RESTARTS`; timers on `clock`). */
  modelRestarts?: { delaysMs: readonly number[] };
  /** The width of each sensor's meter record counter, as its source declares it (the runtime's; `DEFAULT_METER_RECORD_BITS` for a sensor not in it). */
  meterRecordBits?: Readonly<Record<string, MeterRecordBits>>;
}

const where = (dir: string, sha256: string) => `${dir}, sha256 ${sha256.slice(0, 16)}`;

/**
 * Verifies the signature of the model directory `dir` and returns the sha256 of the `medge-model.json`
 * it signs. An inference worker reads the files again; a model whose `medge-model.json` (which pins
 * every other file) hashes to anything else was changed after the check and is refused (`pinned`).
 */
function verifySigned(dir: string, trustedKeys: readonly string[]): string | undefined {
  return verifyArtifactDir(dir, trustedKeys).manifest.files[MODEL_MANIFEST_FILE];
}

/** Returns `model` when its manifest hash is the signed one; otherwise closes it and throws. */
async function pinned<M extends { close(): Promise<void> }>(dir: string, signed: string | undefined, loaded: string, model: M): Promise<M> {
  if (signed === undefined || signed === loaded) return model;
  await model.close();
  throw new ArtifactVerificationError('hash-mismatch', `${dir}: ${MODEL_MANIFEST_FILE} changed between its signature check and loading (signed ${signed.slice(0, 12)}…, loaded ${loaded.slice(0, 12)}…)`, MODEL_MANIFEST_FILE);
}

/**
 * ECG analysis on the sensors that carry ECG. The beat classifier model loads in an inference worker
 * (wasm) in the background once the runtime starts; until it is ready, or when it cannot load or fails,
 * beats are classified by rules (`algo:beat-rules@1`). A worker that stops answering (its deadline,
 * `DEFAULT_INFERENCE_WORKER_OPTIONS`) is stopped and restarted later (`DEFAULT_MODEL_RESTARTS`).
 */
export function ecgAnalyzer(
  sensors: string[],
  deps: Pick<AnalyzerDeps, 'models' | 'inference' | 'clock' | 'modelRestarts'> & { logger: Pick<Logger, 'info' | 'warn'>; now: () => number; verify: ((dir: string) => string | undefined) | undefined },
): Analyzer {
  const dir = deps.models?.ecgBeats ?? defaultBeatModelDir();
  const model = new ModelState('ecg', RULE_CLASSIFIER_ID, 'ECG beat classifier', `beats are classified by rules (${RULE_CLASSIFIER_ID}), which find fewer ventricular and supraventricular beats`, deps);
  let closed = false;
  let classifier: WorkerBeatClassifier | undefined;
  const load = (): void => {
    Promise.resolve()
      .then(async () => {
        const signed = deps.verify?.(dir);
        // TF.js is loaded only in the worker.
        const c = await WorkerBeatClassifier.start(dir, 'wasm', undefined, deps.inference);
        return pinned(dir, signed, c.modelSha256, c);
      })
      .then(
        async (c) => {
          // The worker must not keep the process alive after the runtime stops.
          c.worker.unref();
          if (closed) return c.close();
          classifier = c;
          for (const m of monitors.values()) m.setClassifier(c);
          model.loaded(c.modelId, where(dir, c.modelSha256), { backend: c.worker.backend, loadMs: Math.round(c.worker.loadMs) });
        },
        (error: unknown) => model.fellBack((error as Error).message, 'not loaded', restarts.failed(error)),
      );
  };
  const restarts = new ModelRestarts(deps.modelRestarts?.delaysMs ?? DEFAULT_MODEL_RESTARTS.delaysMs, deps.clock ?? systemClock, deps.logger, 'ecg', () => {
    const stopped = classifier;
    classifier = undefined;
    void (stopped?.close() ?? Promise.resolve()).then(() => {
      if (!closed) load();
    });
  });
  const monitors = new Map(
    sensors.map((s) => {
      const m = new EcgMonitor(s);
      m.onClassifierError = (reason, error) => model.fellBack(reason, 'failed', restarts.failed(error));
      return [s, m];
    }),
  );
  const rates = new SampleRateCheck('ecg', 'ECG beat analysis', {
    unvalidated: `its findings are flagged ${UNVALIDATED_SAMPLE_RATE} with halved input quality`,
    refused: 'this ECG is stored but not analysed: heart rhythm is not being monitored (no heart rate, beat classes or ECG alarms from it)',
  }, deps);
  return {
    name: 'ecg',
    onChunk: (c) => {
      const m = monitors.get(c.sensor);
      if (!m) return undefined;
      const alert = c.channel === 0 ? rates.check(c) : undefined;
      if (rates.refused(c.rateHz)) return alert ? { alerts: [alert] } : undefined;
      return unvalidatedOutput(m.push(c), rates.unvalidated(c.sensor), alert);
    },
    status: () => model.status(),
    flush: async (sensor) => {
      // Beats in the classifier are stored rather than lost at a disconnect or at stop (a hung worker is given up on at its deadline).
      const outs: (AnalyzerOutput | undefined)[] = [];
      for (const [s, m] of monitorsOf(monitors, sensor)) outs.push(unvalidatedOutput(await m.drain(), rates.unvalidated(s), undefined));
      return mergeOutputs(outs);
    },
    start: (hooks) => {
      model.start(hooks);
      load();
    },
    close: async () => {
      closed = true;
      restarts.close();
      await classifier?.close();
    },
  };
}

/** Device kinds whose readings are glucose. */
const GLUCOSE_DEVICE_KINDS: readonly string[] = Object.freeze(['glucose-meter', 'cgm', 'glucose']);

/**
 * Glucose analytics on every glucose reading (firmware/glucose-monitor.ts): trend, 30-minute forecast,
 * sensor faults (gaps, flat lines, compression lows and the 40/400 mg/dL sensor limits on `cgmSensors`
 * only: every other glucose sensor is a spot-check meter, whose limit is its own LO/HI status), predicted-low and sustained-high alerts. The forecast model is loaded once
 * (models/glucose-forecast/artifact, or `dir`; signature and hashes checked); when it cannot be loaded
 * the monitor runs on its rule-based fallback, says so in the log and raises `analysis-degraded`. The model
 * runs in-process (a few hundred weights, microseconds a reading: no worker, no deadline); when it fails at
 * run time (it throws, or gives NaN or ±Infinity) every sensor's monitor goes on with the rule-based fallback
 * from that reading on, and one `analysis-degraded` is raised, as for a model that failed to load.
 * `meterRecordBits`: each sensor's meter record width (records.ts `meterRecordAfter`).
 */
export function glucoseAnalyzer(
  trustedKeys: readonly string[],
  dir: string,
  cgmSensors: ReadonlySet<string>,
  deps: { logger: Pick<Logger, 'info' | 'warn'>; now: () => number; meterRecordBits?: Readonly<Record<string, MeterRecordBits>>; loadForecaster?: typeof loadGlucoseForecaster },
): Analyzer {
  const model = new ModelState('glucose', GLUCOSE_FALLBACK_MODEL_ID, 'glucose forecast', `predicted-low alerts come from extrapolating the 15-minute trend (${GLUCOSE_FALLBACK_MODEL_ID})`, deps);
  let forecaster: GlucoseForecaster | undefined;
  try {
    forecaster = (deps.loadForecaster ?? loadGlucoseForecaster)(dir, trustedKeys);
    model.loaded(forecaster.modelId, where(dir, forecaster.sha256));
  } catch (error) {
    model.fellBack((error as Error).message, 'not loaded');
  }
  const monitors = new Map<string, GlucoseMonitor>();
  const modelFailed = (reason: string): void => {
    forecaster = undefined;
    for (const m of monitors.values()) m.useRules();
    model.fellBack(reason, 'failed', 'It is not used again until the device runtime restarts; a technician should check the model and install a working one.');
  };
  const monitor = (sensor: string): GlucoseMonitor => {
    let m = monitors.get(sensor);
    if (m === undefined) {
      m = new GlucoseMonitor(sensor, forecaster, { sensorType: cgmSensors.has(sensor) ? 'cgm' : 'meter', meterRecordBits: deps.meterRecordBits?.[sensor] ?? DEFAULT_METER_RECORD_BITS });
      m.onModelError = modelFailed;
      monitors.set(sensor, m);
    }
    return m;
  };
  return {
    name: 'glucose',
    onReading: (r) => (r.type === 'glucose' ? monitor(r.sensor).push(r) : undefined),
    // Each sensor's monitor replays its stored readings and takes its stored alerts' episodes as open.
    restore: ({ readings, alerts }) => {
      for (const sensor of new Set(readings.filter((r) => r.type === 'glucose').map((r) => r.sensor))) monitor(sensor).restore(readings, alerts);
    },
    start: (hooks) => model.start(hooks),
    status: () => model.status(),
  };
}

export interface PcgAnalyzerOptions {
  /** The model directory (default: the shipped models/pcg-abnormal). */
  modelDir?: string;
  /** Loads the model (default: in an inference worker on wasm). Rejecting leaves the analyzer on its rule-based fallback. */
  loadModel?: (dir: string) => Promise<PcgModel>;
  /** Deadlines of the default loader's inference worker (`DEFAULT_INFERENCE_WORKER_OPTIONS`). */
  inference?: Partial<InferenceWorkerOptions>;
  /**
   * Checks the artifact before it is loaded (e.g. the signature against trusted keys); throwing refuses
   * the model. It may return the sha256 of the `medge-model.json` it checked: the loaded model must match it.
   */
  verify?: (dir: string) => string | undefined | Promise<string | undefined>;
  windowS?: number;
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** The device clock, for the time of an `analysis-degraded` alert (default Date.now). */
  now?: () => number;
  /**
   * Timers of the end-of-stream check (the runtime's clock). With it, a sensor whose chunks stop for
   * `endAfterMs` has its partial window screened and the result emitted (`AnalyzerHooks.emit`).
   */
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /** No chunk for this long (ms of the clock) ends a sensor's recording (default 2000). */
  endAfterMs?: number;
  /** Restarts of a model worker that stopped answering (default `DEFAULT_MODEL_RESTARTS`; timers on `clock`, else real time). */
  modelRestarts?: { delaysMs: readonly number[] };
}

/**
 * Heart-sound screening on the sensors that carry PCG: windows of `windowS` s are screened with the
 * `pcg-abnormal` model in an inference worker (findings `heart-sound-screen`, heart-rate readings, and a
 * decision-support alert `pcg-abnormal-heart-sound`). Without a usable model, heart rate and quality
 * only. The model loads when the runtime starts (`start`), or when the first window is ready if nothing
 * started the analyzer. A recording that ends (no chunk for `endAfterMs`, a disconnect: `flush(sensor)`,
 * the runtime stopping: `flush()`) has its partial window screened, or reported too short.
 */
export function pcgAnalyzer(sensors: string[], options: PcgAnalyzerOptions = {}): Analyzer & { readonly ready: Promise<PcgModel | undefined>; monitors: Map<string, PcgMonitor>; close(): Promise<void> } {
  const dir = options.modelDir ?? pcgModelDir();
  const logger = options.logger ?? createLogger('medge-pcg');
  const state = new ModelState('pcg', PCG_FALLBACK_ID, 'heart-sound screen', 'heart sounds get heart rate and signal quality only, no murmur screening', {
    logger,
    now: options.now ?? Date.now,
  });
  let loading: Promise<PcgModel | undefined> | undefined;
  let closed = false;
  const load = (): Promise<PcgModel | undefined> =>
    (loading ??= (async () => {
      try {
        const signed = await options.verify?.(dir);
        const loaded = await (options.loadModel ?? ((d: string) => loadPcgModelInWorker(d, 'wasm', options.inference)))(dir);
        const model = await pinned(dir, signed, loaded.sha256, loaded);
        state.loaded(pcgModelId(model), where(dir, model.sha256), { backend: model.backend });
        return model;
      } catch (error) {
        state.fellBack((error as Error).message, 'not loaded', restarts.failed(error));
        return undefined;
      }
    })());
  // A worker that stopped answering was stopped: load the model again later and give it to every monitor.
  const restarts = new ModelRestarts(options.modelRestarts?.delaysMs ?? DEFAULT_MODEL_RESTARTS.delaysMs, options.clock ?? systemClock, logger, 'pcg', () => {
    const stopped = loading;
    loading = undefined;
    void (async () => {
      await (await stopped)?.close();
      if (closed) return;
      const model = await load();
      if (model && !closed) for (const m of monitors.values()) m.setModel(model);
    })();
  });
  const monitors = new Map(
    sensors.map((s) => {
      const m = new PcgMonitor(s, load, options.windowS !== undefined ? { windowS: options.windowS } : {});
      m.onModelError = (reason, error) => state.fellBack(reason, 'failed', restarts.failed(error));
      return [s, m];
    }),
  );
  let hooks: AnalyzerHooks | undefined;
  const rates = new SampleRateCheck('pcg', 'heart-sound screen', {
    unvalidated: 'every window will be unreadable (low-sample-rate): no heart rate and no screening from it',
    refused: 'these heart sounds are stored but not screened (no heart rate or heart-sound findings from them)',
  }, { now: options.now ?? Date.now, logger });
  const clock = options.clock;
  const endAfterMs = options.endAfterMs ?? 2000;
  const quiet = new Map<string, ClockTimer>();
  /**
   * Restarts the end-of-stream timer of `sensor`: when it fires, the partial window is screened and
   * emitted. A source that sends long chunks is given twice a chunk's length before its recording ends.
   */
  const watch = (sensor: string, m: PcgMonitor, chunkMs: number): void => {
    if (!clock) return;
    const previous = quiet.get(sensor);
    if (previous !== undefined) clock.clearTimeout(previous);
    const afterMs = Math.max(endAfterMs, 2 * chunkMs);
    quiet.set(
      sensor,
      clock.setTimeout(() => {
        quiet.delete(sensor);
        m.end(`no signal for ${Math.round(afterMs / 100) / 10} s`);
        const emit = hooks?.emit;
        // Without a runtime to emit to, the result waits for the next push or flush.
        if (emit) {
          void m
            .idle()
            .then(() => {
              const out = m.take();
              if (out) emit(out);
            })
            .catch((error: unknown) => logger.warn({ sensor, err: (error as Error).message }, 'heart-sound window at the end of a recording not stored'));
        }
      }, afterMs),
    );
  };
  const stopWatching = (sensor?: string): void => {
    for (const [s, t] of quiet) {
      if (sensor !== undefined && s !== sensor) continue;
      clock?.clearTimeout(t);
      quiet.delete(s);
    }
  };
  return {
    name: 'pcg',
    onChunk: (c) => {
      const m = monitors.get(c.sensor);
      if (!m) return undefined;
      // Below the range the screen itself answers unreadable (low-sample-rate): the alert says so once, at the start.
      const alert = c.channel === 0 ? rates.check(c) : undefined;
      if (rates.refused(c.rateHz)) return alert ? { alerts: [alert] } : undefined;
      watch(c.sensor, m, (1000 * c.samples.length) / c.rateHz);
      const out = m.push(c);
      return alert ? { ...out, alerts: [alert, ...(out?.alerts ?? [])] } : out;
    },
    flush: async (sensor) => {
      stopWatching(sensor);
      const outs: (AnalyzerOutput | undefined)[] = [];
      for (const [, m] of monitorsOf(monitors, sensor)) outs.push(await m.flush(sensor !== undefined ? 'the sensor disconnected' : 'the sources stopped'));
      return mergeOutputs(outs);
    },
    start: (h) => {
      hooks = h;
      state.start(h);
      void load();
    },
    status: () => state.status(),
    get ready() {
      return load();
    },
    monitors,
    close: async () => {
      closed = true;
      restarts.close();
      stopWatching();
      await Promise.all([...monitors.values()].map((m) => m.idle()));
      if (loading) await (await loading)?.close();
    },
  };
}

export function createAnalyzers(config: Pick<RuntimeConfig, 'sources'>, deviceKinds: Readonly<Record<string, string>> = {}, deps: AnalyzerDeps = {}): Analyzer[] {
  const trustedKeys = deps.trustedKeys ?? [];
  const logger = deps.logger ?? createLogger('medge-analyzers');
  const now = deps.now ?? Date.now;
  const verify = trustedKeys.length > 0 ? (dir: string) => verifySigned(dir, trustedKeys) : undefined;
  const analyzers: Analyzer[] = [];
  const ecg = ecgSensors(config.sources, deviceKinds);
  const restartDeps = { ...(deps.inference ? { inference: deps.inference } : {}), ...(deps.clock ? { clock: deps.clock } : {}), ...(deps.modelRestarts ? { modelRestarts: deps.modelRestarts } : {}) };
  if (ecg.length > 0) analyzers.push(ecgAnalyzer(ecg, { ...(deps.models ? { models: deps.models } : {}), ...restartDeps, logger, now, verify }));
  if (glucoseSensors(config.sources, deviceKinds).length > 0) {
    // Only a CGM driver's sensors are continuous; a simulated serial meter and BLE Glucose profile meters are spot checks.
    const cgm = new Set(config.sources.filter((s) => s.type === 'device' && deviceKinds[s.sensor] === 'cgm').map((s) => s.sensor));
    analyzers.push(glucoseAnalyzer(trustedKeys, deps.models?.glucoseForecast ?? defaultGlucoseModelDir(), cgm, { logger, now, ...(deps.meterRecordBits ? { meterRecordBits: deps.meterRecordBits } : {}) }));
  }
  const isPcg = (s: SourceConfig) => sourceSignal(s) === 'pcg' || (s.type === 'device' && deviceKinds[s.sensor] === 'pcg');
  const pcg = config.sources.filter(isPcg).map((s) => s.sensor);
  if (pcg.length > 0) {
    const modelDir = deps.models?.pcgAbnormal;
    analyzers.push(pcgAnalyzer(pcg, { logger, now, ...(modelDir ? { modelDir } : {}), ...(verify ? { verify } : {}), ...restartDeps }));
  }
  return analyzers;
}
