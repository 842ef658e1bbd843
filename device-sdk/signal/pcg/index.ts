// Heart-sound (PCG) signal processing: pure functions, no I/O.
export { bandPass, type Biquad, butterworth, fft, filtfilt, powerSpectrum, resample } from './dsp.js';
export { PCG_BANDS_HZ, PCG_FEATURE_COUNT, PCG_FEATURE_NAMES, pcgFeatures } from './features.js';
export { analyzePcg, decidePcg, DEFAULT_PCG_SCREEN_OPTIONS, featureBatch, heartRateOf, type PcgAnalysis, type PcgDecision, type PcgLabel, type PcgQuality, type PcgScreenOptions, preparePcg } from './screen.js';
export { DEFAULT_SEGMENTATION_OPTIONS, ENVELOPE_RATE_HZ, type HeartCycle, type Segmentation, type SegmentationOptions, segmentHeartSounds, shannonEnvelope } from './segmentation.js';
