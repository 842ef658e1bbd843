import type { AlertSeverity, RecordKind } from '../device-sdk/records.js';

export type LinkState = 'connected' | 'connecting' | 'backoff' | 'offline';

export interface SensorStatus {
  sensor: string;
  /** e.g. `sim-ecg`, `serial:/dev/ttyUSB0`. */
  source: string;
  connected: boolean;
  /** Samples per second for stream sensors, records per minute for readings (see `rateUnit`). */
  rate: number;
  rateUnit: 'samples/s' | 'readings/min';
}

/**
 * What one analysis runs on: its model, or its rule-based fallback and why. A clinic sees it on the
 * status screen and the clinic page; a refused model also raises an `analysis-degraded` alert.
 */
export interface AnalysisStatus {
  /** `ecg`, `glucose` or `pcg`. */
  analyzer: string;
  /** `loading` until the model is in use or refused; `fallback`: the analysis runs on rules. */
  state: 'loading' | 'model' | 'fallback';
  /** The model or rule in use, e.g. `ecg-beats@1.5.0` or `algo:beat-rules@1`. */
  algo: string;
  /** Where the model in use came from: its directory and sha256. */
  source?: string;
  /** Why the fallback runs (the loader's error, or the model's failure while running). */
  reason?: string;
}

/** What the runtime reports about itself once a second (over IPC to `medge demo`, and to the log). */
export interface RuntimeStatus {
  deviceId: string;
  bootId: string;
  uptimeMs: number;
  link: LinkState;
  /** Device clock of the last acknowledgement from the edge. */
  lastAckMs?: number;
  sensors: SensorStatus[];
  /** Highest seq per kind (records produced by this device over its life). */
  produced: Record<RecordKind, number>;
  /** Records not yet acknowledged by the edge, per kind. */
  backlog: Record<RecordKind, number>;
  quarantined: number;
  lastAlert?: { kind: string; severity: AlertSeverity; message: string; t: number };
  /** With alarm outputs (a Firmata board's LED and buzzer): the unacknowledged alerts they latch (LED lit while > 0). */
  alarmsLatched?: number;
  /** `diskFull`: the ledger's file system has no room (waveform not stored, clinical records wait in memory). */
  storage: { bytesUsed: number; budgetBytes: number; overBudget: boolean; diskFull?: boolean };
  /** One entry per running analysis (absent from runtimes older than this field). */
  analysis?: AnalysisStatus[];
}

/** What `medge demo` adds about the edge and the chaos it causes. */
export interface DemoStatus {
  runtime?: RuntimeStatus;
  edge: { url: string; stored: Partial<Record<RecordKind, number>>; rejected: Record<string, number>; brokerUp: boolean };
  brokerRestarts: number;
  runtimeKills: number;
  elapsedMs: number;
  /** Planned length of the run, when `--seconds` was given. */
  totalMs?: number;
  phase: 'running' | 'draining' | 'stopping';
}
