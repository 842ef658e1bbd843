/**
 * Live analysis in the runtime. An analyzer sees every stored-or-not chunk and every reading of
 * the sensors it cares about, and returns derived readings, findings and alerts; the runtime
 * stores them and raises the alerts locally (never waiting for the network).
 *
 * One explicit list: `createAnalyzers` picks the analyzers a config needs. ECG: `EcgMonitor` per
 * ECG sensor. Heart sounds and glucose analytics add theirs here.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Alert, Finding, Reading, StreamChunk } from '../device-sdk/records.js';
import type { RuntimeConfig, SourceConfig } from './config.js';
import { verifyArtifactDir } from '../device-sdk/security/artifact-files.js';
import { packageRoot } from './package-root.js';
import { EcgMonitor } from './ecg-monitor.js';

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

export function createAnalyzers(config: Pick<RuntimeConfig, 'sources'>, deviceKinds: Readonly<Record<string, string>> = {}, deps: AnalyzerDeps = {}): Analyzer[] {
  const isEcg = (s: SourceConfig) => sourceSignal(s) === 'ecg' || (s.type === 'device' && deviceKinds[s.sensor] === 'ecg');
  const analyzers: Analyzer[] = [];
  const ecg = config.sources.filter(isEcg).map((s) => s.sensor);
  if (ecg.length > 0) analyzers.push(ecgAnalyzer(ecg, deps));
  return analyzers;
}
