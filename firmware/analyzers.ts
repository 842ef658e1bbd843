/**
 * Live analysis in the runtime. An analyzer sees every stored-or-not chunk and every reading of
 * the sensors it cares about, and returns derived readings, findings and alerts; the runtime
 * stores them and raises the alerts locally (never waiting for the network).
 *
 * One explicit list: `createAnalyzers` picks the analyzers a config needs. ECG: `EcgMonitor` per
 * ECG sensor. Heart sounds and glucose analytics add theirs here.
 */
import type { Alert, Finding, Reading, StreamChunk } from '../device-sdk/records.js';
import type { RuntimeConfig, SourceConfig } from './config.js';
import { EcgMonitor } from './ecg-monitor.js';
import { createLogger } from '../device-sdk/log.js';
import { type GlucoseForecaster, GlucoseMonitor, loadGlucoseForecaster } from './glucose-monitor.js';

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

/** Device kinds whose readings are glucose. */
const GLUCOSE_DEVICE_KINDS: readonly string[] = Object.freeze(['glucose-meter', 'cgm', 'glucose']);

/**
 * Glucose analytics on every glucose reading (firmware/glucose-monitor.ts): trend, 30-minute forecast,
 * sensor faults, predicted-low and sustained-high alerts. The forecast model is loaded once
 * (models/glucose-forecast/artifact, hashes checked); when it cannot be loaded the monitor runs on its
 * rule-based fallback and says so in the log.
 */
function glucoseAnalyzer(): Analyzer {
  let forecaster: GlucoseForecaster | undefined;
  try {
    forecaster = loadGlucoseForecaster();
  } catch (error) {
    createLogger('medge-glucose').warn({ err: (error as Error).message }, 'glucose forecast model not loaded: predicted-low alerts use trend extrapolation instead');
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

export function createAnalyzers(config: Pick<RuntimeConfig, 'sources'>, deviceKinds: Readonly<Record<string, string>> = {}): Analyzer[] {
  const isEcg = (s: SourceConfig) => sourceSignal(s) === 'ecg' || (s.type === 'device' && deviceKinds[s.sensor] === 'ecg');
  const analyzers: Analyzer[] = [];
  const ecg = config.sources.filter(isEcg).map((s) => s.sensor);
  if (ecg.length > 0) analyzers.push(ecgAnalyzer(ecg));
  const isGlucose = (s: SourceConfig) => sourceSignal(s) === 'glucose' || (s.type === 'device' && GLUCOSE_DEVICE_KINDS.includes(deviceKinds[s.sensor] ?? ''));
  if (config.sources.some(isGlucose)) analyzers.push(glucoseAnalyzer());
  return analyzers;
}
