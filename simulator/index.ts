// The hardware-in-the-loop simulator's public surface, by name. Device peers: devices/ (serial stream
// device, Firmata board) and bluez/ (simulated BlueZ and GATT peripherals) have their own modules.
export { type BleFaults, DEFAULT_BLE_FAULTS, DEFAULT_SERIAL_FAULTS, type SerialFaults } from './faults.js';
export {
  type CgmCsvSourceSpec,
  type ConstantSourceSpec,
  DEFAULT_DRIVERS,
  loadScenario,
  parseScenario,
  type Scenario,
  type ScenarioDevice,
  type ScenarioDeviceKind,
  ScenarioError,
  type ScenarioProblem,
  SCENARIO_KINDS,
  SCENARIO_SCHEMA,
  SCENARIO_SOURCE_TYPES,
  SCENARIO_TRANSPORTS,
  type ScenarioSourceSpec,
  type ScenarioTransport,
  type UvaPadovaSourceSpec,
  type WavSourceSpec,
  type WfdbSourceSpec,
} from './scenario.js';
export { SimulatorUnavailableError } from './scenario-errors.js';
export {
  type MeterRecordExpectation,
  PAUSE_DRAIN_MS,
  type RuntimeDeviceSource,
  type ScenarioExpectations,
  type ScenarioPeers,
  type ScenarioRunOptions,
  startScenarioPeers,
  type StreamExpectation,
  type ValueExpectation,
} from './scenario-runner.js';
export { buildScenarioReport, countReadings, type MeterReport, type NotifyReport, runtimeStarts, type ScenarioReport, type StreamReport } from './scenario-report.js';
export { createSampleSource, createValueSeries, limitSource } from './scenario-sources.js';
export { CGM_CSV_CODEC, type CgmCsvOptions, parseCgmCsv, readCgmCsv } from './sources/cgm-csv.js';
export { type GlucoseSample, type GlucoseSeries, takeSamples } from './sources/glucose-series.js';
export { arraySampleSource, pace, type PaceOptions, type SampleBlock, type SampleSource, type SampleUnit, sliceSeconds } from './sources/sample-source.js';
export {
  basalRate,
  type Bolus,
  cgmNoise,
  type CgmSensorModel,
  DEXCOM_SENSOR,
  derivatives,
  EAT_RATE_G_PER_MIN,
  type Meal,
  parseVirtualPatients,
  readVirtualPatient,
  riskIndices,
  simulateUvaPadova,
  type UvaPadovaInputs,
  type UvaPadovaPatient,
  type UvaPadovaSeriesOptions,
  type UvaPadovaTrace,
  UVA_PADOVA_PARAMS_CODEC,
  uvaPadovaSeries,
} from './sources/uva-padova.js';
export { WAV_REPLAY_GAIN, type WavReplayOptions, wavReplay, wavSampleSource } from './sources/wav-replay.js';
export { type WfdbReplayOptions, wfdbReplay, wfdbSampleSource } from './sources/wfdb-replay.js';
export { readWfdbAnnotations, readWfdbRecord, type ReadWfdbAnnotationsOptions, type WfdbRecord, WfdbRecordError, writeWfdbAnnotations } from './sources/wfdb-files.js';
