/**
 * Base class of every error medge throws on purpose. Callers branch on `code` and the typed
 * fields of subclasses, never on message text.
 */
export class MedgeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * A model could not be loaded or run (missing or mismatching artifact, backend failure, worker died).
 * Defined here rather than beside the backend so that catching it does not load TF.js.
 */
export class InferenceError extends MedgeError {
  constructor(message: string, options?: { cause?: unknown }, code = 'inference') {
    super(code, message, options);
  }
}

/**
 * An inference worker missed its deadline (code `inference-timeout`): it did not answer a request within
 * `timeoutMs` (`stage: 'request'`), or did not finish loading its model (`'start'`). The worker has been
 * stopped and every request still pending rejected with this error; callers fall back as for a crash.
 */
export class InferenceTimeoutError extends InferenceError {
  readonly stage: 'start' | 'request';
  readonly timeoutMs: number;
  /** Requests rejected with it (the one that timed out and those queued behind it). */
  readonly pendingRequests: number;
  constructor(stage: 'start' | 'request', timeoutMs: number, pendingRequests: number) {
    const s = `${Math.round(timeoutMs / 100) / 10} s`;
    super(stage === 'request' ? `the model stopped answering: no result within ${s}; its inference worker was stopped` : `the model did not load within ${s}; its inference worker was stopped`, undefined, 'inference-timeout');
    this.stage = stage;
    this.timeoutMs = timeoutMs;
    this.pendingRequests = pendingRequests;
  }
}

/** A value supplied by a caller or a config file is not acceptable. `field` is a JSON-pointer-like path. */
export class ConfigError extends MedgeError {
  readonly field: string;
  readonly value: unknown;
  readonly problem: string;
  readonly fix: string;
  constructor(field: string, value: unknown, problem: string, fix: string) {
    super('config', `${field}: ${problem} (got ${formatValue(value)}). Fix: ${fix}`);
    this.field = field;
    this.value = value;
    this.problem = problem;
    this.fix = fix;
  }
}

/** Bytes received from a device or the network could not be decoded. */
export class DecodeError extends MedgeError {
  readonly codec: string;
  constructor(codec: string, message: string, options?: { cause?: unknown }) {
    super('decode', `${codec}: ${message}`, options);
    this.codec = codec;
  }
}

/** The local store refused or failed an operation. */
export class StoreError extends MedgeError {
  readonly operation: string;
  /** The file system (or SQLite's page limit) has no room: SQLite's SQLITE_FULL (or the OS's ENOSPC), from the cause. */
  readonly diskFull: boolean;
  constructor(operation: string, message: string, options?: { cause?: unknown }) {
    super('store', `${operation}: ${message}`, options);
    this.operation = operation;
    const code = (options?.cause as { code?: unknown } | undefined)?.code;
    this.diskFull = code === 'SQLITE_FULL' || code === 'ENOSPC';
  }
}

export function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return String(value);
  }
}
