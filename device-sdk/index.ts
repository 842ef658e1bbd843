// medge device SDK: the library every other part imports. Each folder's index.ts lists its names.
export { type Clock, type ClockTimer, systemClock } from './clock.js';
export { ConfigError, DecodeError, formatValue, MedgeError, StoreError } from './errors.js';
export { createLogger, type Logger, type LogLevel, REDACTED_PATHS, silentLogger } from './log.js';
export { mulberry32, type Random } from './random.js';
export { formatUtcOffset, isTimeZone, wallClockInstants, wallClockToUtcMs, zoneOffsetMs } from './time-zone.js';
export * from './records.js';
export * from './proto/index.js';
export * from './protocols/index.js';
export * from './security/index.js';
export * from './signal/index.js';
export * from './store/index.js';
export * from './sync/index.js';
