export { type DetectionScore, flutterEpisodes, grossScore, type ReferenceAnnotation, ratio, type ScoreOptions, scoreDetections, VFOFF, VFON } from './ecg/ec57.js';
export { DEFAULT_QRS_OPTIONS, type QrsBeat, QrsDetector, type QrsDetectorOptions } from './ecg/qrs-detector.js';
export * as glucose from './glucose/index.js';
export {
  afEpisodes,
  AfDetector,
  type AfDetectorOptions,
  type AfEvent,
  AtrialActivity,
  type AtrialActivityOptions,
  type ClassifiedBeatInput,
  DEFAULT_AF_OPTIONS,
  DEFAULT_ATRIAL_OPTIONS,
} from './ecg/af-detector.js';
export { type BeatClassifier, type BeatModelManifest, type BeatModelMismatch, beatModelMismatch, classOf, RULE_CLASSIFIER_ID, ruleBasedClass } from './ecg/beat-classes.js';
export {
  AAMI_CLASSES,
  AAMI_WFDB_CODE,
  type AamiClass,
  aamiClassOf,
  BeatFeatureExtractor,
  type BeatFeatureOptions,
  type BeatFeatures,
  DEFAULT_BEAT_FEATURE_OPTIONS,
  FEATURE_NAMES,
  featureLength,
} from './ecg/beat-features.js';
export {
  AF_REFERENCE_RULES,
  type AfReference,
  afReference,
  type AfReferenceRule,
  type ClassPair,
  classPairs,
  type ClassScores,
  classScores,
  type DurationScore,
  durationScore,
  grossClassScores,
  grossDurationScore,
  rhythmEpisodes,
} from './ecg/ec57.js';
export { EcgFrontEnd, type EcgFrontEndOptions, extractBeats } from './ecg/front-end.js';
export { mixNoise, noisePower, qrsSignalPower } from './ecg/noise-mix.js';
export { assessWindow, DEFAULT_SIGNAL_QUALITY_OPTIONS, QUALITY_PENALTIES, type QualityFlag, SignalQuality, type SignalQualityOptions, type SignalQualityWindow, withQualityFlag } from './ecg/signal-quality.js';
