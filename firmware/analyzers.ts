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
import type { RuntimeConfig, SourceConfig } from './config.js';
import { verifyArtifactDir } from '../device-sdk/security/artifact-files.js';
import { packageRoot } from './package-root.js';
import { EcgMonitor } from './ecg-monitor.js';
import { type GlucoseForecaster, GlucoseMonitor, loadGlucoseForecaster } from './glucose-monitor.js';
import { createLogger, type Logger } from '../device-sdk/log.js';
import { loadPcgModelInWorker, type PcgModel, pcgModelDir, PcgMonitor } from './pcg-monitor.js';

export interface AnalyzerOutput {
  readings?: Reading[];
  findings?: Finding[];
  alerts?: Alert[];
}

export interface Analyzer {
  readonly name: string;
  onChunk?(c: StreamChunk): AnalyzerOutput | undefined;
  onReading?(r: Reading): AnalyzerOutput | undefined;
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
  /** The ECG beat classifier model directory; `false` runs the rule fallback only. Default models/ecg-beats. */
  ecgBeatModelDir?: string | false;
  /**
   * Trusted artifact signing keys (PEM). When given, a model is loaded only after its signature
   * verifies (`verifyArtifactDir`); a refused model leaves the rule fallback in place.
   */
  trustedKeys?: readonly string[];
}

/**
 * ECG analysis on the sensors that carry ECG. The beat classifier model loads in an inference worker
 * (wasm) in the background; until it is ready, or when it cannot load, beats are classified by rules
 * and a log line says why.
 */
function ecgAnalyzer(sensors: string[], deps: AnalyzerDeps): Analyzer {
  const monitors = new Map(sensors.map((s) => [s, new EcgMonitor(s)]));
  const dir = deps.ecgBeatModelDir ?? join(packageRoot(), 'models', 'ecg-beats');
  if (dir !== false) {
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
          deps.logger?.info({ model: classifier.modelId, sha256: classifier.modelSha256, backend: classifier.worker.backend, loadMs: Math.round(classifier.worker.loadMs) }, 'ECG beat classifier loaded');
        },
        (error: unknown) => deps.logger?.warn({ err: (error as Error).message, dir }, 'ECG beat classifier not loaded; beats are classified by rules (algo:beat-rules@1)'),
      );
  }
  return {
    name: 'ecg',
    onChunk: (c) => monitors.get(c.sensor)?.push(c),
  };
}

/** Device kinds whose readings are glucose. */
const GLUCOSE_DEVICE_KINDS: readonly string[] = Object.freeze(['glucose-meter', 'cgm', 'glucose']);

/**
 * Glucose analytics on every glucose reading (firmware/glucose-monitor.ts): trend, 30-minute forecast,
 * sensor faults, predicted-low and sustained-high alerts. The forecast model is loaded once
 * (models/glucose-forecast/artifact, hashes checked); when it cannot be loaded the monitor runs on its
 * rule-based fallback and says so in the log.
 */
function glucoseAnalyzer(trustedKeys: readonly string[], logger: Logger): Analyzer {
  let forecaster: GlucoseForecaster | undefined;
  try {
    forecaster = loadGlucoseForecaster(undefined, trustedKeys);
  } catch (error) {
    logger.error({ err: (error as Error).message }, 'glucose forecast model not loaded: predicted-low alerts use trend extrapolation instead');
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
}

/**
 * Heart-sound screening on the sensors that carry PCG: windows of `windowS` s are screened with the
 * `pcg-abnormal` model in an inference worker (findings `heart-sound-screen`, heart-rate readings, and a
 * decision-support alert `pcg-abnormal-heart-sound`). Without a usable model, heart rate and quality only.
 */
export function pcgAnalyzer(sensors: string[], options: PcgAnalyzerOptions = {}): Analyzer & { readonly ready: Promise<PcgModel | undefined>; monitors: Map<string, PcgMonitor>; close(): Promise<void> } {
  const log = options.logger ?? createLogger('medge-pcg');
  const dir = options.modelDir ?? pcgModelDir();
  // Loaded once, when the first window is ready (a runtime that stops early never starts the worker).
  let loading: Promise<PcgModel | undefined> | undefined;
  const load = (): Promise<PcgModel | undefined> =>
    (loading ??= (async () => {
      try {
        await options.verify?.(dir);
        const model = await (options.loadModel ?? loadPcgModelInWorker)(dir);
        log.info({ model: model.manifest.id, version: model.manifest.version, sha256: model.sha256, backend: model.backend }, 'heart-sound screen model loaded');
        return model;
      } catch (error) {
        log.error({ dir, err: (error as Error).message }, 'heart-sound screen model refused or unavailable: heart rate and signal quality only, no murmur screening');
        return undefined;
      }
    })());
  const monitors = new Map(sensors.map((s) => [s, new PcgMonitor(s, load, options.windowS !== undefined ? { windowS: options.windowS } : {})]));
  return {
    name: 'pcg',
    onChunk: (c) => monitors.get(c.sensor)?.push(c),
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
  const verify = trustedKeys.length > 0 ? (dir: string) => void verifyArtifactDir(dir, trustedKeys) : undefined;
  const isEcg = (s: SourceConfig) => sourceSignal(s) === 'ecg' || (s.type === 'device' && deviceKinds[s.sensor] === 'ecg');
  const analyzers: Analyzer[] = [];
  const ecg = config.sources.filter(isEcg).map((s) => s.sensor);
  if (ecg.length > 0) analyzers.push(ecgAnalyzer(ecg, deps));
  const isGlucose = (s: SourceConfig) => sourceSignal(s) === 'glucose' || (s.type === 'device' && GLUCOSE_DEVICE_KINDS.includes(deviceKinds[s.sensor] ?? ''));
  if (config.sources.some(isGlucose)) analyzers.push(glucoseAnalyzer(trustedKeys, logger));
  const isPcg = (s: SourceConfig) => sourceSignal(s) === 'pcg' || (s.type === 'device' && deviceKinds[s.sensor] === 'pcg');
  const pcg = config.sources.filter(isPcg).map((s) => s.sensor);
  if (pcg.length > 0) analyzers.push(pcgAnalyzer(pcg, { logger, ...(verify ? { verify } : {}) }));
  return analyzers;
}
