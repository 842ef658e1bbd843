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
  storage: { bytesUsed: number; budgetBytes: number; overBudget: boolean };
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
