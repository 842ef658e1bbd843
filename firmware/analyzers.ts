/**
 * Live analysis in the runtime. An analyzer sees every stored-or-not chunk and every reading of
 * the sensors it cares about, and returns derived readings, findings and alerts; the runtime
 * stores them and raises the alerts locally (never waiting for the network).
 *
 * One explicit list: `createAnalyzers` picks the analyzers a config needs. ECG: `EcgMonitor` per
 * ECG sensor; `PcgMonitor` per stethoscope (heart-sound screen). Glucose analytics add theirs here.
 */
import { join } from 'node:path';
import type { Alert, Finding, Reading, StreamChunk } from '../device-sdk/records.js';
import type { ModelDirs, RuntimeConfig, SourceConfig } from './config.js';
import type { AnalysisStatus } from './status.js';
import { RULE_CLASSIFIER_ID } from '../device-sdk/signal/ecg/beat-classes.js';
import { verifyArtifactDir } from '../device-sdk/security/artifact-files.js';
import { packageRoot } from './package-root.js';
import { EcgMonitor } from './ecg-monitor.js';
import { defaultGlucoseModelDir, GLUCOSE_FALLBACK_MODEL_ID, type GlucoseForecaster, GlucoseMonitor, loadGlucoseForecaster } from './glucose-monitor.js';
import { createLogger, type Logger } from '../device-sdk/log.js';
import { loadPcgModelInWorker, PCG_FALLBACK_ID, type PcgModel, pcgModelDir, PcgMonitor } from './pcg-monitor.js';

export interface AnalyzerOutput {
  readings?: Reading[];
  findings?: Finding[];
  alerts?: Alert[];
}

export interface Analyzer {
  readonly name: string;
  onChunk?(c: StreamChunk): AnalyzerOutput | undefined;
  onReading?(r: Reading): AnalyzerOutput | undefined;
  /** Called once when the runtime starts; models start loading here. */
  start?(hooks: AnalyzerHooks): void;
  /** What the analysis runs on now (status screen, clinic page). */
  status?(): AnalysisStatus;
}

/** What the runtime gives an analyzer when it starts. */
export interface AnalyzerHooks {
  /** Stores and raises an alert that does not come from a chunk or a reading (a refused model). */
  raise(alert: Alert): void;
  /** The analysis settled on its model or its fallback (the runtime writes it to the audit log). */
  settled(status: AnalysisStatus): void;
}

/** The alert kind of an analysis that runs on its fallback because its model was refused or could not load. */
export const ANALYSIS_DEGRADED = 'analysis-degraded';

/**
 * Tracks one analysis's model: `loading`, then `model` or `fallback`. A fallback that was not asked for
 * (the model refused or unreadable, not disabled by the configuration) raises one `analysis-degraded`
 * warning, stored and synced like any alert, so the clinic and the regional edge know the findings
 * come from rules.
 */
class ModelState {
  private current: AnalysisStatus;
  private hooks: AnalyzerHooks | undefined;
  /** What happened before the runtime started (the glucose model loads with the analyzer). */
  private pending: { status: AnalysisStatus; alert?: Alert } | undefined;

  constructor(
    readonly analyzer: string,
    private readonly fallbackAlgo: string,
    private readonly what: string,
    private readonly now: () => number,
  ) {
    this.current = { analyzer, state: 'loading', algo: fallbackAlgo };
  }

  start(hooks: AnalyzerHooks): void {
    this.hooks = hooks;
    const pending = this.pending;
    this.pending = undefined;
    if (pending) this.settle(pending.status, pending.alert);
  }

  loaded(algo: string): void {
    this.settle({ analyzer: this.analyzer, state: 'model', algo });
  }

  disabled(): void {
    this.current = { analyzer: this.analyzer, state: 'fallback', algo: this.fallbackAlgo, reason: 'model disabled by the configuration' };
  }

  refused(reason: string, consequence: string): void {
    this.settle(
      { analyzer: this.analyzer, state: 'fallback', algo: this.fallbackAlgo, reason },
      {
        kind: ANALYSIS_DEGRADED,
        severity: 2,
        t: this.now(),
        message: `The ${this.what} model is not in use (${reason}); ${consequence}. Install a model signed by a trusted key.`,
      },
    );
  }

  private settle(status: AnalysisStatus, alert?: Alert): void {
    this.current = status;
    if (!this.hooks) {
      this.pending = alert ? { status, alert } : { status };
      return;
    }
    this.hooks.settled({ ...status });
    if (alert) this.hooks.raise(alert);
  }

  status(): AnalysisStatus {
    return { ...this.current };
  }
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

/** Optional services of the analyzers (the runtime passes its logger). */
export interface AnalyzerDeps {
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** Model directories replacing the shipped ones (`artifacts.models`); `ecgBeats: false` runs the ECG rule fallback only. */
  models?: Omit<ModelDirs, 'ecgBeats'> & { ecgBeats?: string | false };
  /** The device clock, for the time of an `analysis-degraded` alert (default Date.now). */
  now?: () => number;
  /**
   * Trusted artifact signing keys (PEM). When given, a model is loaded only after its signature
   * verifies (`verifyArtifactDir`); a refused model leaves the rule fallback in place.
   */
  trustedKeys?: readonly string[];
}

/**
 * ECG analysis on the sensors that carry ECG. The beat classifier model loads in an inference worker
 * (wasm) in the background once the runtime starts; until it is ready, or when it cannot load, beats
 * are classified by rules (`algo:beat-rules@1`), and a refused model raises `analysis-degraded`.
 */
function ecgAnalyzer(sensors: string[], deps: AnalyzerDeps): Analyzer {
  const monitors = new Map(sensors.map((s) => [s, new EcgMonitor(s)]));
  const dir = deps.models?.ecgBeats ?? join(packageRoot(), 'models', 'ecg-beats');
  const model = new ModelState('ecg', RULE_CLASSIFIER_ID, 'ECG beat classifier', deps.now ?? Date.now);
  if (dir === false) model.disabled();
  return {
    name: 'ecg',
    onChunk: (c) => monitors.get(c.sensor)?.push(c),
    status: () => model.status(),
    start: (hooks) => {
      model.start(hooks);
      if (dir === false) return;
      Promise.resolve()
        .then(async () => {
          if (deps.trustedKeys && deps.trustedKeys.length > 0) verifyArtifactDir(dir, deps.trustedKeys);
          // TF.js is imported only when a runtime has ECG to analyse.
          const { WorkerBeatClassifier } = await import('./ecg-classifier.js');
          return WorkerBeatClassifier.start(dir);
        })
        .then(
          (classifier) => {
            // The worker must not keep the process alive after the runtime stops.
            classifier.worker.unref();
            for (const m of monitors.values()) m.setClassifier(classifier);
            model.loaded(classifier.modelId);
            deps.logger?.info({ model: classifier.modelId, sha256: classifier.modelSha256, backend: classifier.worker.backend, loadMs: Math.round(classifier.worker.loadMs) }, 'ECG beat classifier loaded');
          },
          (error: unknown) => {
            deps.logger?.warn({ err: (error as Error).message, dir }, `ECG beat classifier not loaded; beats are classified by rules (${RULE_CLASSIFIER_ID})`);
            model.refused((error as Error).message, `beats are classified by rules (${RULE_CLASSIFIER_ID}), which find fewer ventricular and supraventricular beats`);
          },
        );
    },
  };
}

/** Device kinds whose readings are glucose. */
const GLUCOSE_DEVICE_KINDS: readonly string[] = Object.freeze(['glucose-meter', 'cgm', 'glucose']);

/**
 * Glucose analytics on every glucose reading (firmware/glucose-monitor.ts): trend, 30-minute forecast,
 * sensor faults, predicted-low and sustained-high alerts. The forecast model is loaded once
 * (models/glucose-forecast/artifact, or `dir`; signature and hashes checked); when it cannot be loaded
 * the monitor runs on its rule-based fallback, says so in the log and raises `analysis-degraded`.
 */
function glucoseAnalyzer(trustedKeys: readonly string[], logger: Logger, dir: string, now: () => number): Analyzer {
  const model = new ModelState('glucose', GLUCOSE_FALLBACK_MODEL_ID, 'glucose forecast', now);
  let forecaster: GlucoseForecaster | undefined;
  try {
    forecaster = loadGlucoseForecaster(dir, trustedKeys);
    model.loaded(forecaster.modelId);
  } catch (error) {
    logger.error({ err: (error as Error).message, dir }, 'glucose forecast model not loaded: predicted-low alerts use trend extrapolation instead');
    model.refused((error as Error).message, `predicted-low alerts come from extrapolating the 15-minute trend (${GLUCOSE_FALLBACK_MODEL_ID})`);
  }
  const monitors = new Map<string, GlucoseMonitor>();
  return {
    name: 'glucose',
    onReading: (r) => {
      if (r.type !== 'glucose') return undefined;
      let m = monitors.get(r.sensor);
      if (m === undefined) monitors.set(r.sensor, (m = new GlucoseMonitor(r.sensor, forecaster)));
      return m.push(r);
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
  /** Checks the artifact before it is loaded (e.g. the signature against trusted keys); throwing refuses the model. */
  verify?: (dir: string) => void | Promise<void>;
  windowS?: number;
  logger?: Logger;
  /** The device clock, for the time of an `analysis-degraded` alert (default Date.now). */
  now?: () => number;
}

/**
 * Heart-sound screening on the sensors that carry PCG: windows of `windowS` s are screened with the
 * `pcg-abnormal` model in an inference worker (findings `heart-sound-screen`, heart-rate readings, and a
 * decision-support alert `pcg-abnormal-heart-sound`). Without a usable model, heart rate and quality
 * only, and a refused model raises `analysis-degraded`. The model loads when the runtime starts
 * (`start`), or when the first window is ready if nothing started the analyzer.
 */
export function pcgAnalyzer(sensors: string[], options: PcgAnalyzerOptions = {}): Analyzer & { readonly ready: Promise<PcgModel | undefined>; monitors: Map<string, PcgMonitor>; close(): Promise<void> } {
  const log = options.logger ?? createLogger('medge-pcg');
  const dir = options.modelDir ?? pcgModelDir();
  const state = new ModelState('pcg', PCG_FALLBACK_ID, 'heart-sound screen', options.now ?? Date.now);
  let loading: Promise<PcgModel | undefined> | undefined;
  const load = (): Promise<PcgModel | undefined> =>
    (loading ??= (async () => {
      try {
        await options.verify?.(dir);
        const model = await (options.loadModel ?? loadPcgModelInWorker)(dir);
        state.loaded(`${model.manifest.id}@${model.manifest.version}`);
        log.info({ model: model.manifest.id, version: model.manifest.version, sha256: model.sha256, backend: model.backend }, 'heart-sound screen model loaded');
        return model;
      } catch (error) {
        log.error({ dir, err: (error as Error).message }, 'heart-sound screen model refused or unavailable: heart rate and signal quality only, no murmur screening');
        state.refused((error as Error).message, 'heart sounds get heart rate and signal quality only, no murmur screening');
        return undefined;
      }
    })());
  const monitors = new Map(sensors.map((s) => [s, new PcgMonitor(s, load, options.windowS !== undefined ? { windowS: options.windowS } : {})]));
  return {
    name: 'pcg',
    onChunk: (c) => monitors.get(c.sensor)?.push(c),
    start: (hooks) => {
      state.start(hooks);
      void load();
    },
    status: () => state.status(),
    get ready() {
      return load();
    },
    monitors,
    close: async () => {
      await Promise.all([...monitors.values()].map((m) => m.idle()));
      if (loading) await (await loading)?.close();
    },
  };
}

export function createAnalyzers(config: Pick<RuntimeConfig, 'sources'>, deviceKinds: Readonly<Record<string, string>> = {}, deps: AnalyzerDeps = {}): Analyzer[] {
  const trustedKeys = deps.trustedKeys ?? [];
  const logger = (deps.logger as Logger | undefined) ?? createLogger('medge-analyzers');
  const now = deps.now ?? Date.now;
  const verify = trustedKeys.length > 0 ? (dir: string) => void verifyArtifactDir(dir, trustedKeys) : undefined;
  const isEcg = (s: SourceConfig) => sourceSignal(s) === 'ecg' || (s.type === 'device' && deviceKinds[s.sensor] === 'ecg');
  const analyzers: Analyzer[] = [];
  const ecg = config.sources.filter(isEcg).map((s) => s.sensor);
  if (ecg.length > 0) analyzers.push(ecgAnalyzer(ecg, deps));
  const isGlucose = (s: SourceConfig) => sourceSignal(s) === 'glucose' || (s.type === 'device' && GLUCOSE_DEVICE_KINDS.includes(deviceKinds[s.sensor] ?? ''));
  if (config.sources.some(isGlucose)) analyzers.push(glucoseAnalyzer(trustedKeys, logger, deps.models?.glucoseForecast ?? defaultGlucoseModelDir(), now));
  const isPcg = (s: SourceConfig) => sourceSignal(s) === 'pcg' || (s.type === 'device' && deviceKinds[s.sensor] === 'pcg');
  const pcg = config.sources.filter(isPcg).map((s) => s.sensor);
  if (pcg.length > 0) {
    const modelDir = deps.models?.pcgAbnormal;
    analyzers.push(pcgAnalyzer(pcg, { logger, now, ...(modelDir ? { modelDir } : {}), ...(verify ? { verify } : {}) }));
  }
  return analyzers;
}
