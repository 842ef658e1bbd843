export * from './types.js';
export { createDriver, getDriver, listDrivers, resolveDriverOptions } from './registry.js';
export {
  builtinProbes,
  DEFAULT_DETECT_OPTIONS,
  type DetectAttempt,
  type DetectOptions,
  type DetectReport,
  detectPort,
  firmataProbe,
  lineProbe,
  type PortProbe,
  type ProbeMatch,
  streamProbe,
} from './autodetect.js';
export { type AlarmOutput, DEFAULT_FIRMATA_ECG_OPTIONS, type FirmataAlarmPins, type FirmataEcgOptions, FirmataEcgDriver, hasAlarmOutput } from './firmata-ecg.js';
export { DEFAULT_SERIAL_ECG_OPTIONS, DEFAULT_SERIAL_STETHOSCOPE_OPTIONS, type SerialStreamOptions, SerialStreamDriver, type SerialStreamStats } from './serial-stream.js';
export { FRESH_READING_MS, type MeterClock, meterClockText, type MeterTimeBasis, meterTime, METER_TIME_CONTEXT, type MeterTimePlacement, meterTimeZoneUnknown, placeWallClock } from './meter-time.js';
