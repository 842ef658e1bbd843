export { type CgmRow, CgmCsvError, parseCgmCsv, parseCgmTime, tracesById } from './csv.js';
export { DenseNetwork, DenseNetworkError, type DenseActivation, type DenseLayer } from './dense-network.js';
export { CONTINUOUS_ONLY_FAULTS, DEVICE_RANGE_FLAGS, deviceRangeLimit, type GlucoseSensorType, type SensorFault, type SensorFaultKind, type SensorFaultOptions, DEFAULT_SENSOR_FAULT_OPTIONS, sensorFaults } from './faults.js';
export { decodeForecast, FORECAST_SPEC, forecastFeatures, type GlucoseForecast, valueAt } from './forecast.js';
export { DEFAULT_HYPO_ALERT_POLICY, DETECTOR_SPEC, detectorFeatures, detectorProbability, HypoAlertLogic, type HypoAlertPolicy, hypoAlertStates } from './hypo-detector.js';
export { type CgmMetrics, type CgmMetricsOptions, cgmMetrics, cleanTrace, DEFAULT_CGM_METRICS_OPTIONS, type HypoEvent, hypoEvents, readingWeights } from './metrics.js';
export { DEFAULT_TREND_OPTIONS, rateOfChange, slope, type Trend, TREND_ARROWS, TREND_LABELS, type TrendLabel, type TrendOptions, trendLabel, trendOf } from './trend.js';
export { type GlucosePoint, MS_PER_MIN } from './types.js';
