import pino from 'pino';

export type Logger = pino.Logger;
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Fields that may hold patient identifiers; pino replaces them before a line is written. */
export const REDACTED_PATHS: readonly string[] = Object.freeze([
  'patientId',
  'patientName',
  'patient',
  '*.patientId',
  '*.patientName',
  '*.patient',
  'mrn',
  '*.mrn',
]);

/** Structured JSON logs on stderr (stdout belongs to command output such as `--json`). */
export function createLogger(name: string, level: LogLevel = 'info'): Logger {
  return pino({ name, level, redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that writes nothing, for tests and benchmarks. */
export const silentLogger: Logger = pino({ level: 'silent' });
