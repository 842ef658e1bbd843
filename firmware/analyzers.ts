/**
 * Live analysis in the runtime. An analyzer sees every stored-or-not chunk and every reading of
 * the sensors it cares about, and returns derived readings, findings and alerts; the runtime
 * stores them and raises the alerts locally (never waiting for the network).
 *
 * One explicit list: `createAnalyzers` picks the analyzers a config needs. ECG: `EcgMonitor` per
 * ECG sensor; `PcgMonitor` per stethoscope (heart-sound screen). Glucose analytics add theirs here.
 */
import type { Alert, Finding, Reading, StreamChunk } from '../device-sdk/records.js';
import type { RuntimeConfig, SourceConfig } from './config.js';
import { EcgMonitor } from './ecg-monitor.js';
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

/** ECG analysis on the sensors that carry ECG. */
function ecgAnalyzer(sensors: string[]): Analyzer {
  const monitors = new Map(sensors.map((s) => [s, new EcgMonitor(s)]));
  return {
    name: 'ecg',
    onChunk: (c) => monitors.get(c.sensor)?.push(c),
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

export function createAnalyzers(config: Pick<RuntimeConfig, 'sources'>, deviceKinds: Readonly<Record<string, string>> = {}): Analyzer[] {
  const isEcg = (s: SourceConfig) => sourceSignal(s) === 'ecg' || (s.type === 'device' && deviceKinds[s.sensor] === 'ecg');
  const analyzers: Analyzer[] = [];
  const ecg = config.sources.filter(isEcg).map((s) => s.sensor);
  if (ecg.length > 0) analyzers.push(ecgAnalyzer(ecg));
  const isPcg = (s: SourceConfig) => sourceSignal(s) === 'pcg' || (s.type === 'device' && deviceKinds[s.sensor] === 'pcg');
  const pcg = config.sources.filter(isPcg).map((s) => s.sensor);
  if (pcg.length > 0) analyzers.push(pcgAnalyzer(pcg));
  return analyzers;
}
