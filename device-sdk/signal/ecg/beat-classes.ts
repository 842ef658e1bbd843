import { AAMI_CLASSES, type AamiClass, DEFAULT_BEAT_FEATURE_OPTIONS, FEATURE_NAMES, featureLength } from './beat-features.js';

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

/**
 * The class a beat is reported with once the AF detector has taken it: in atrial fibrillation there is no
 * sinus rhythm for a beat to be premature against, and EC57 references (MIT-BIH) label the
 * supraventricular beats of AF `N`; so a beat the classifier calls S while an AF episode is open (the
 * detector's state after that beat) is reported N. No threshold of its own. The AF detector is always
 * given the classifier's class (it leaves beats called S out of its N-N intervals), never this one.
 */
export function classInRhythm(cls: AamiClass, inAf: boolean): AamiClass {
  return inAf && cls === 'S' ? 'N' : cls;
}

const at = (name: (typeof FEATURE_NAMES)[number]) => FEATURE_NAMES.indexOf(name);

/**
 * The rhythm rule that tells a supraventricular ectopic beat (S) from a normal one (N) once the model has
 * said the beat is supraventricular (N or S): premature against the dominant rhythm (the median of the
 * last RR intervals between dominant beats), in a regular context (AF makes beats "premature" that are N).
 * The model decides the origin from the shape, the rule decides prematurity, with fixed round thresholds
 * (a premature atrial beat comes < 85 % of the sinus interval); learned across patients from 22 records,
 * this split generalised better than the model's own (see models/ecg-beats/MODEL_CARD.md). Since 1.2.0 the
 * rule no longer also asks for a QRS shaped like the dominant one: an aberrated premature beat that the
 * model places above the ventricles is S as well (the shape test had the model's N/S call stand there).
 * Since 1.3.0 a mildly premature beat (< 95 % of the dominant RR) followed by a pause (the next interval
 * > 1.15x its own: the sinus node reset by the ectopic beat) is S too.
 */
export interface SupraventricularRule {
  /**
   * QRS correlation with the dominant beat from which a premature beat is S; a premature beat below it
   * keeps the model's call (1.1.0 used 0.9). -1: no shape test (1.2.0 on; a correlation is never below
   * -1, so a runtime that applies the test reads the manifests it cannot interpret otherwise as "none").
   */
  minQrsCorr: number;
  /** RR before / median RR of the dominant rhythm below which the beat is premature. */
  maxRrPreNormal: number;
  /** Median successive RR difference / median RR (last 16 intervals) below which the rhythm is regular. */
  maxRrSpread: number;
  /** A beat earlier than this (RR before / dominant RR) and followed by a pause is premature too. */
  pauseMaxRrPreNormal: number;
  /** RR after / RR before above which the interval after a beat is a pause. */
  pauseMinRrPostPre: number;
}

export const DEFAULT_SUPRAVENTRICULAR_RULE: Readonly<SupraventricularRule> = Object.freeze({ minQrsCorr: -1, maxRrPreNormal: 0.85, maxRrSpread: 0.12, pauseMaxRrPreNormal: 0.95, pauseMinRrPostPre: 1.15 });

/** The rule as manifest thresholds (`thresholds` of medge-model.json are flat numbers). */
export function supraventricularThresholds(rule: SupraventricularRule = DEFAULT_SUPRAVENTRICULAR_RULE): Record<string, number> {
  return { svMinQrsCorr: rule.minQrsCorr, svMaxRrPreNormal: rule.maxRrPreNormal, svMaxRrSpread: rule.maxRrSpread, svPauseMaxRrPreNormal: rule.pauseMaxRrPreNormal, svPauseMinRrPostPre: rule.pauseMinRrPostPre };
}

/**
 * The rule from manifest thresholds, or undefined when the manifest has none (a model that decides S
 * alone). Every version's manifest is read as it was measured: 1.1.0's (shape test at 0.9, no pause
 * clause), 1.2.0's (-1: no shape test) and 1.3.0's (with the pause clause).
 */
export function supraventricularRuleOf(thresholds: Readonly<Record<string, number>> | undefined): SupraventricularRule | undefined {
  const q = thresholds?.svMinQrsCorr;
  const p = thresholds?.svMaxRrPreNormal;
  const s = thresholds?.svMaxRrSpread;
  if (typeof q !== 'number' || typeof p !== 'number' || typeof s !== 'number') return undefined;
  // Manifests before 1.3.0 have no pause clause: it is off for them.
  const pauseP = thresholds?.svPauseMaxRrPreNormal;
  const pauseR = thresholds?.svPauseMinRrPostPre;
  const pause = typeof pauseP === 'number' && typeof pauseR === 'number';
  return { minQrsCorr: q, maxRrPreNormal: p, maxRrSpread: s, pauseMaxRrPreNormal: pause ? pauseP : 0, pauseMinRrPostPre: pause ? pauseR : Number.POSITIVE_INFINITY };
}

/** The parts of a model manifest (`medge-model.json`) that say what a beat classifier reads and gives. */
export interface BeatModelManifest {
  id: string;
  version: string;
  labels: readonly string[];
  /** `shape: [null, width]` and `featureOptions` (the extractor's options the model was trained on). */
  input?: Readonly<Record<string, unknown>>;
}

/** Why a beat classifier model does not fit this build: the manifest field that differs, and the message to show. */
export interface BeatModelMismatch {
  field: 'labels' | 'input.shape' | 'input.featureOptions.polarity' | 'input.featureOptions.mainsHz';
  message: string;
}

/**
 * Whether the beat classifier of manifest `manifest` (in `dir`, named in the message) reads the features
 * this build extracts and gives its classes: labels `AAMI_CLASSES` in that order, input width
 * `featureLength()`, and the feature options that change the features' values across versions
 * (`polarity`, `mainsHz`; a manifest without them is read as `as-recorded` and no notch, as ecg-beats
 * up to 1.3.0 were trained). Undefined when it fits, else the first field that differs. Everything that
 * runs the model (the runtime's worker classifier, the ECG bench) refuses a model this returns a mismatch for.
 */
export function beatModelMismatch(manifest: BeatModelManifest, dir: string): BeatModelMismatch | undefined {
  const model = `${dir}: ${manifest.id}@${manifest.version}`;
  const labels = manifest.labels.join(',');
  if (labels !== AAMI_CLASSES.join(',')) {
    return { field: 'labels', message: `${model} has labels ${labels || '(none)'}; this build classifies beats into ${AAMI_CLASSES.join(',')} (manifest field labels)` };
  }
  const input = manifest.input ?? {};
  const shape = input.shape;
  const width = Array.isArray(shape) ? (shape[1] as unknown) : undefined;
  if (width !== featureLength()) {
    return { field: 'input.shape', message: `${model} reads ${String(width)} features per beat; this build extracts ${featureLength()} (manifest field input.shape[1])` };
  }
  const options = (input.featureOptions ?? {}) as { polarity?: unknown; mainsHz?: unknown };
  const fix = 'use the model shipped with this build (models/ecg-beats; 1.3.0 and earlier cannot be used)';
  const polarity = options.polarity ?? 'as-recorded';
  if (polarity !== DEFAULT_BEAT_FEATURE_OPTIONS.polarity) {
    return {
      field: 'input.featureOptions.polarity',
      message: `${model} was trained on ${String(polarity)} lead polarity${options.polarity === undefined ? ' (no polarity in the manifest)' : ''}; this build extracts ${DEFAULT_BEAT_FEATURE_OPTIONS.polarity} polarity (manifest field input.featureOptions.polarity): ${fix}`,
    };
  }
  const mains = options.mainsHz === undefined ? '' : Array.isArray(options.mainsHz) ? options.mainsHz.join(',') : String(options.mainsHz);
  if (mains !== DEFAULT_BEAT_FEATURE_OPTIONS.mainsHz.join(',')) {
    return {
      field: 'input.featureOptions.mainsHz',
      message: `${model} was trained with ${mains ? `${mains} Hz notched` : 'no mains notch'}${options.mainsHz === undefined ? ' (no mainsHz in the manifest)' : ''}; this build notches ${DEFAULT_BEAT_FEATURE_OPTIONS.mainsHz.join(',')} Hz out of the beat features (manifest field input.featureOptions.mainsHz): ${fix}`,
    };
  }
  return undefined;
}

/** Whether a beat (one feature row from `offset`) is premature for the rule: earlier than `maxRrPreNormal`, or mildly early and followed by a pause. */
function isPremature(features: ArrayLike<number>, rule: SupraventricularRule, offset: number): boolean {
  const pre = features[offset + at('rrPreNormal')] as number;
  return pre < rule.maxRrPreNormal || (pre < rule.pauseMaxRrPreNormal && (features[offset + at('rrPostPre')] as number) > rule.pauseMinRrPostPre);
}

/** Whether the rhythm rule calls a supraventricular beat (one feature row from `offset`) ectopic: premature in a regular rhythm (and shaped like the dominant beat when the rule has a shape test). */
export function isSupraventricularEctopic(features: ArrayLike<number>, rule: SupraventricularRule = DEFAULT_SUPRAVENTRICULAR_RULE, offset = 0): boolean {
  return supraventricularClass(features, rule, offset) === 'S';
}

const N = AAMI_CLASSES.indexOf('N');
const S = AAMI_CLASSES.indexOf('S');

/**
 * The rule's class for a beat the model calls supraventricular (N or S; one feature row from `offset`):
 * S or N in a regular rhythm, undefined where the model's call stands (an irregular rhythm, or a premature
 * beat shaped unlike the dominant one under a rule with a shape test).
 */
export function supraventricularClass(features: ArrayLike<number>, rule: SupraventricularRule = DEFAULT_SUPRAVENTRICULAR_RULE, offset = 0): 'S' | 'N' | undefined {
  if (!((features[offset + at('rrSpread')] as number) < rule.maxRrSpread)) return undefined;
  if (!isPremature(features, rule, offset)) return 'N';
  return (features[offset + at('qrsCorr')] as number) >= rule.minQrsCorr ? 'S' : undefined;
}

/**
 * Two-stage classes, in place: the model decides the beat's origin; when its most probable class is N
 * or S (a supraventricular beat) and the rhythm around it is regular, their summed probability goes to
 * S if the beat is premature, else to N. In an irregular rhythm (AF, frequent ectopy: `rrSpread` at or
 * above the rule's limit) and for beats the model calls V, F or Q, the model's probabilities stand (the
 * AF detector leaves the beats called S out of its N-N intervals there).
 */
export function splitSupraventricular(probabilities: Float32Array, features: ArrayLike<number>, count: number, width: number, rule: SupraventricularRule = DEFAULT_SUPRAVENTRICULAR_RULE): Float32Array {
  const k = AAMI_CLASSES.length;
  for (let i = 0; i < count; i++) {
    const cls = classOf(probabilities, i * k).cls;
    if (cls !== 'N' && cls !== 'S') continue;
    const split = supraventricularClass(features, rule, i * width);
    if (split === undefined) continue;
    const sv = (probabilities[i * k + N] as number) + (probabilities[i * k + S] as number);
    probabilities[i * k + S] = split === 'S' ? sv : 0;
    probabilities[i * k + N] = split === 'S' ? 0 : sv;
  }
  return probabilities;
}

/**
 * The fallback when no model is loaded (or it was refused): a beat unlike the record's dominant beat and
 * wide is V; a beat like it but premature (RR before < 80 % of the local mean, followed by a longer
 * interval) is S; else N. Coarse, and labelled as such in findings (`algo:beat-rules@1`). The rhythm
 * rule in its place (as the model path uses it) gave S Se 64.99 / +P 60.14 instead of 27.18 / 46.29
 * over the 22 non-paced records, but AF duration Se 96.71 instead of 96.89 (+P 75.83 for 75.39), so
 * the fallback was left as it was.
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
