export { type DetectionScore, flutterEpisodes, grossScore, type ReferenceAnnotation, ratio, type ScoreOptions, scoreDetections, VFOFF, VFON } from './ecg/ec57.js';
export { DEFAULT_QRS_OPTIONS, type QrsBeat, QrsDetector, type QrsDetectorOptions } from './ecg/qrs-detector.js';
export * as glucose from './glucose/index.js';
