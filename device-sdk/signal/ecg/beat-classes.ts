import { AAMI_CLASSES, type AamiClass, FEATURE_NAMES } from './beat-features.js';

/**
 * Beat classes from the model's probabilities or, without a model, from rules. Pure.
 */

/** An async beat classifier: rows of beat features in, one probability row per beat out (AAMI_CLASSES order). */
export interface BeatClassifier {
  readonly modelId: string;
  readonly modelSha256: string;
  /** `features` is row-major, `count` rows of `width`. */
  classify(features: Float32Array, count: number, width: number): Promise<Float32Array>;
}

/** Class of one probability row: the most probable, unless `minProbability[cls]` is not reached (then N). */
export function classOf(probabilities: ArrayLike<number>, offset = 0, minProbability: Partial<Record<AamiClass, number>> = {}): { cls: AamiClass; probability: number } {
  let best = 0;
  for (let c = 1; c < AAMI_CLASSES.length; c++) if ((probabilities[offset + c] as number) > (probabilities[offset + best] as number)) best = c;
  const cls = AAMI_CLASSES[best] as AamiClass;
  const probability = probabilities[offset + best] as number;
  if (probability < (minProbability[cls] ?? 0)) return { cls: 'N', probability: probabilities[offset] as number };
  return { cls, probability };
}

const at = (name: (typeof FEATURE_NAMES)[number]) => FEATURE_NAMES.indexOf(name);

/**
 * The fallback when no model is loaded (or it was refused): a beat unlike the record's dominant beat and
 * wide is V; a beat like it but premature (RR before < 80 % of the local mean, followed by a longer
 * interval) is S; else N. Coarse, and labelled as such in findings (`algo:beat-rules@1`).
 */
export function ruleBasedClass(features: ArrayLike<number>): AamiClass {
  const corr = features[at('templateCorr')] as number;
  const width = features[at('qrsWidth')] as number;
  const preLocal = features[at('rrPreLocal')] as number;
  const postPre = features[at('rrPostPre')] as number;
  if (corr < 0.7 && width > 1.1) return 'V';
  if (corr >= 0.85 && preLocal < 0.8 && postPre > 1.15) return 'S';
  return 'N';
}

export const RULE_CLASSIFIER_ID = 'algo:beat-rules@1';
