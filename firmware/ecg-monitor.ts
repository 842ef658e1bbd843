import { canonicalJson, sha256Hex } from '../device-sdk/security/signing.js';
import { DEFAULT_AF_OPTIONS, AfDetector, type AfEvent, AtrialActivity } from '../device-sdk/signal/ecg/af-detector.js';
import { type BeatClassifier, classInRhythm, classOf, RULE_CLASSIFIER_ID, ruleBasedClass } from '../device-sdk/signal/ecg/beat-classes.js';
import { AAMI_CLASSES, type AamiClass, type BeatFeatures } from '../device-sdk/signal/ecg/beat-features.js';
import { EcgFrontEnd } from '../device-sdk/signal/ecg/front-end.js';
import { DEFAULT_QRS_OPTIONS } from '../device-sdk/signal/ecg/qrs-detector.js';
import { DEFAULT_SIGNAL_QUALITY_OPTIONS, SignalQuality, type SignalQualityWindow, withQualityFlag } from '../device-sdk/signal/ecg/signal-quality.js';
import type { Finding, RaisedAlert, Reading, StreamChunk } from '../device-sdk/records.js';
import { DEFAULT_LEAD_DEFLECTION_OPTIONS, LeadDeflection } from './lead-deflection.js';
import { SecondLeadBeats } from './second-lead.js';
import { DEFAULT_QRS_CREDIBILITY_OPTIONS, QrsCredibility } from './qrs-credibility.js';
import { type VentricularEvent, VentricularEpisodes } from './ventricular-episodes.js';
import { DEFAULT_PACE_PULSE_OPTIONS, type PacePulseOptions } from './pace-pulses.js';

export interface EcgMonitorOptions {
  /** A heart-rate reading (and rate and beat-class findings) is stored this often (ms of signal). */
  readingIntervalMs: number;
  /**
   * No credible QRS for this long on a connected lead: asystole alert (severity 3). The clock runs from
   * the last credible QRS, or from 2 s after a lead came back (or a new stream started once beats had
   * been seen: the QRS detector first learns the lead, `RESTART_CLOCK_DELAY_MS`), so a lead put back on a
   * patient with no heartbeat raises it too: 4 s after when the lead shows nothing as large as a QRS
   * complex (flat or baseline only, `QUIET_LEAD`), else 6 s. The alert says how long it has really been.
   */
  asystoleMs: number;
  /**
   * Peak-to-peak below this (mV) for `leadOffMs`: a flat line, raised as `ecg-lead-off` (severity 2).
   * A flat line alone does not tell a lead off from an arrest, so once beats have been seen on the
   * sensor a flat line as long as `asystoleMs` is raised again as `ecg-flat-line` (severity 3: check the
   * patient and the electrodes); an electrode adjusted in less stays a warning. A front end that reports
   * electrode contact (chunks with `leadOff`) is believed instead: a report shorter than 1 s is bridged as a
   * short gap is (the analysis and the asystole clock go on), a longer one raises `ecg-lead-off`, not
   * urgent; contact lost 3 times or more with no heartbeat in between for `intermittentNoBeatMs` is, if the
   * lead showed no QRS-sized deflection between the losses (else a contact warning).
   */
  flatMv: number;
  leadOffMs: number;
  /**
   * Electrode contact lost (front end's report, >= 1 s) for the third time or more with no credible QRS
   * since the last one for at least this long: a lead that keeps coming off never stays on long enough for
   * the asystole clock. `ecg-no-beats` (severity 3: an arrest with a loose electrode) when the lead was
   * quiet between the losses over this time (`QUIET_LEAD`), else `ecg-intermittent-contact` (severity 2,
   * about the electrodes).
   */
  intermittentNoBeatMs: number;
  /**
   * After a (re)start, beats are analysed (rate, classes, AF, ventricular runs) only once this many
   * consecutive detections were credible QRS complexes (`QrsCredibility`): a detector that learns on
   * noise finds beats in it. Lost again when the asystole alert fires.
   */
  acquisitionBeats: number;
  /** Consecutive V beats at a rate above `ventricularRunBpm`: ventricular run alert (severity 2), once per episode. */
  ventricularRunBeats: number;
  ventricularRunBpm: number;
  /**
   * An episode lasting this long, the last `sustainedRunMs` at more than `ventricularRunBpm` with at
   * least `sustainedRunShare` of the beats V beats in runs of two or more: sustained run alert (severity 3).
   */
  sustainedRunMs: number;
  sustainedRunShare: number;
  /** A ventricular episode ends (and the alerts re-arm) after this long without a ventricular run. */
  ventricularRearmMs: number;
  /**
   * Whether a second lead (channel 1, when the front end streams one) that shows the heart beating holds
   * `ecg-no-beats` back while lead 1 shows no QRS (`SecondLeadBeats`): a QRS can vanish from one lead for a
   * few seconds while the heart beats on (MIT-BIH 116 and 208: the three false `ecg-no-beats` of the 26
   * records streamed whole, none with lead 2).
   */
  secondLeadConfirms: boolean;
  /**
   * A detection whose QRS window measures less than this (mV) once mains hum is averaged out
   * (`QrsCredibility.humFreeQrsMv`) is not a heartbeat: it neither restarts the asystole clock nor is
   * analysed (0: off). The detector's adaptive threshold sinks on a stopped heart until it takes the hum
   * left after its 5-18 Hz band for QRS complexes. Measured on the 26 records: the detections that are
   * beats measure 0.13 mV and more (0 of 59,859 below 0.1); those in 0.3-1 mV of 50 or 60 Hz hum after the
   * heart stopped at most 0.06 (2,896 detections). Only together with `maxHumFreeShare`: a low-voltage QRS
   * (0.1-0.2 mV) measures under 0.1 once averaged and is still a heartbeat.
   */
  minHumFreeQrsMv: number;
  /**
   * ... and whose hum-free measure is also at most this share of the window's own peak-to-peak: what the
   * averaging took away was hum, not a narrow QRS. Measured on 12 MIT-BIH records (60 s each, scaled x0.1
   * to x1, 3,744 detections): a QRS keeps 0.45 of its peak-to-peak or more (1st percentile 0.57); detections
   * in 0.2-1 mV of 50 or 60 Hz hum on a stopped heart keep 0.10 at most (1,562). Without it, MLII scaled to
   * QRS of 0.1-0.35 mV (114 x0.2) lost every heart rate and raised `ecg-no-beats` 10 times in 120 s.
   * Nor is it hum when its QRS window spans `minHumFreeQrsMv` or more with the hum fitted and taken out
   * (`QrsCredibility.fittedHumFreeQrsMv`, which keeps a narrow QRS's span) and it is credible (`measure` takes the
   * hum out too): 114 x0.3 under 0.3 mV of 60 Hz at 250 Hz measured 0.09-0.10 mV averaged and was rejected after
   * lead-backs (false `ecg-no-beats`). The span alone is not enough: 0.03 mV of noise under 1 mV of 50 Hz spans
   * 0.1 mV and more in 120 ms at 250 Hz, and its detections held an arrest unalarmed for 30 s.
   */
  maxHumFreeShare: number;
  /**
   * Once acquired, a detection on a lead under mains hum (`QrsCredibility.measure` took the hum out) whose QRS
   * window, the hum out, spans less than this many times the median window around it is not a heartbeat (as
   * `minEvidenceProminence`). Acquired, every other detection counts: under 1 mV of 50 Hz at 250 Hz the
   * detector's detections 0.3-0.4 s after the last beat where the heart stopped (MIT-BIH 101 cut at 7 points of
   * its cycle, 5 seeds) stood out 0.8-1.3 times and held the arrest alarm to 4.28-4.38 s in 5 of 35 cases
   * (none with it: 4.08 s). Living MIT-BIH 108/203/207/116 x1 and x0.5 under 0.3 mV of 60 Hz: no more false
   * `ecg-no-beats` with it (1 of 8 streams, 207 x1, as without it).
   */
  minHumFreeProminence: number;
  /**
   * A detection that is a pacemaker pulse with no QRS after it (`QrsCredibility.pacePulseOnly`, see
   * firmware/pace-pulses.ts) is not a heartbeat, as for hum: a pacemaker firing without capture on a stopped
   * heart must not hold the asystole alarm back. `minStepMvPerMs` 0: off.
   */
  pacePulse: PacePulseOptions;
}

export const DEFAULT_ECG_MONITOR_OPTIONS: Readonly<EcgMonitorOptions> = Object.freeze({
  readingIntervalMs: 5_000,
  asystoleMs: 4_000,
  flatMv: 0.05,
  leadOffMs: 2_000,
  intermittentNoBeatMs: 10_000,
  acquisitionBeats: 4,
  ventricularRunBeats: 3,
  ventricularRunBpm: 100,
  sustainedRunMs: 30_000,
  sustainedRunShare: 1 / 3,
  ventricularRearmMs: 20_000,
  secondLeadConfirms: true,
  minHumFreeQrsMv: 0.1,
  maxHumFreeShare: 0.25,
  minHumFreeProminence: 1.5,
  pacePulse: DEFAULT_PACE_PULSE_OPTIONS,
});

/** Gaps up to this long (s) are bridged rather than restarting the analysis (well under the lead-off time). */
const MAX_BRIDGE_S = 1;
/** A front end's short lead-off report is bridged only if the last bridged one ended at least this long before (ms). */
const MIN_BRIDGE_SPACING_MS = 3_000;
/**
 * After a restart the asystole clock starts this long after the lead is back (or the new stream began): the
 * QRS detector learns its thresholds on the first 2 s of a stream, so the first beat it can report comes
 * 2-5 s in, and an alarm `asystoleMs` (4 s) after the lead-back would be false on real ECG whose first beat
 * comes late. Measured by bench/ecg-lead-back.js on 910 lead-off/lead-back cases over the 26 shared
 * MIT-BIH records (the lead off 3 s, back every 50 s; 906 outside ventricular flutter): the first
 * detection taken as a heartbeat is reported 2.6 s after the lead is back (median; 99th percentile 3.4 s,
 * latest 4.8 s). With the clock at the lead-back two of those cases raise a false ecg-no-beats, with it 1 s
 * later none beyond the one at 2 s (116 at 1348 s). A QA re-check moved the lead-backs (2 s off every 20 s,
 * 4 phases, 25 records, 8,825 lead-backs): 11 false ecg-no-beats with the clock 1 s after, 10 with it 2 s
 * after (108 at 1652 s is the difference), so the rule (no more false alarms than before) keeps 2 s: a lead
 * put back on a patient with no heartbeat raises ecg-no-beats 6 s after it (it took 6.2 s before the
 * detector's learning fix), or 4 s after when the lead is quiet (`QUIET_LEAD`). Re-measured with the
 * bench's layout options: with the detector's learning-period beats reported at the end of the learning
 * (first heartbeat 2.2 s after the lead-back, median, against 2.6) and the clock at the lead-back, QA's
 * layout (2 s off every 20 s, 4 phases, 9,256 lead-backs) gave 12 false ecg-no-beats outside flutter
 * against 9 (108, 205 and 208, whose first beat the monitor believes comes 3.8-5.1 s after the lead-back);
 * 10 with the clock 1.5 or 2 s after.
 */
const RESTART_CLOCK_DELAY_MS = 2_000;
/**
 * A lead is quiet when no 120 ms window of it (`LeadDeflection`) spans `belowMv`, the smallest QRS complex
 * `QrsCredibility` believes: nothing on it a QRS detector could take for a heartbeat, where the detector
 * itself cannot tell. Two uses:
 * - A lead back on a patient whose heart has stopped shows a flat or baseline-only ECG: then the 2 s the
 *   detector learns (`RESTART_CLOCK_DELAY_MS`) are not waited for. At the first chunk end `asystoleMs` (4 s)
 *   after the lead-back, ecg-no-beats is raised if the lead has been quiet since the lead-back, unless a
 *   detection since repeated the shape of one before it or stood out `sureProminence` (`heartbeatAt`: other
 *   detections on a quiet lead are noise the learning detector picked). Anything larger (a QRS complex, muscle
 *   artefact, an electrode settling) keeps the 2 s.
 *   QA: a lead put back on baseline noise raised ecg-no-beats 6 s after it; now 4 s. bench/ecg-lead-back.js:
 *   no false ecg-no-beats added on the 26 MIT-BIH records with the lead-backs of the bench, of QA's
 *   re-check or 5 s off every 30 s; their 4 s stretches measure 0.32 mV at least, 0.03 mV SD noise 0.13.
 *   QA re-check: mains hum (50/60 Hz, 0.1-0.3 mV) on the stopped heart measured 0.2-0.7 mV with the 8 ms
 *   smoothing: 6 s, and at 128 Hz always 6 s; with the hum averaged out (`LeadDeflection` `mainsHz`) 4 s, and
 *   the bench's false ecg-no-beats unchanged (910 and 9,256 lead-backs, the same cases). QA, 128 Hz with 20 ADC
 *   units per mV, 0.02-0.05 mV of noise (880 seeds, some with 0.1 mV of wander): 105 alarmed 6-26 s after or not
 *   in 30 s, as a noise detection spanning 4 units against 2 ("credible") dropped the check; now 1 (two noise
 *   detections correlating 0.80); at 250 Hz 52, now none; at 360 Hz none either way. Lead-back bench at 360,
 *   250 and 128 Hz (20 units per mV): false ecg-no-beats unchanged (4, 4, 15 over 910 lead-backs).
 * - Contact lost too often for the detector to learn (`intermittentNoBeatMs`): urgent `ecg-no-beats` only
 *   when the lead was quiet between the losses (the last `intermittentNoBeatMs`), else the contact warning
 *   `ecg-intermittent-contact`. QA: a stopped heart under 0.1-0.3 mV of hum or 0.5 mV of baseline wander
 *   while the electrode flapped got only the warning, raised before the arrest, and no urgent alarm. QA again,
 *   0.5 mV of wander at 128 Hz: 18.5-19 s or none (the wander's slope measured), and with flaps under 1 s none at
 *   any rate (the step back from a held value measured). The held value is no longer measured; the wander's slope
 *   still is (taking it off gave living low-voltage patients false alarms, `LeadDeflection`), so that case stays late.
 */
const QUIET_LEAD = Object.freeze({
  belowMv: DEFAULT_QRS_CREDIBILITY_OPTIONS.minQrsMv,
  /**
   * A credible detection standing out this much (or repeating a shape, `heartbeatAt`) drops the quiet-lead check
   * of a lead-back: twice `minProminence`. Detections on a stopped heart's baseline noise (0.015-0.05 mV SD,
   * 0.1 mV of wander) after a lead-back, 40 seeds each, at 128 and 250 Hz with 20 ADC units per mV: at most 3
   * (2.5 but for one); at 360 Hz with 200 units none is credible. A low-voltage QRS on a clean baseline (MIT-BIH
   * 114 scaled x0.2, 0.11-0.17 mV) stands out 4.4 before its shape can repeat.
   */
  sureProminence: 2 * DEFAULT_QRS_CREDIBILITY_OPTIONS.minProminence,
});
/**
 * A flapping lead (its lead-off episodes less than `LEAD_OFF_FLAP_MS` apart) gets one lead-off warning
 * (`ecg-lead-off`, `ecg-secondary-lead-off`) per `LEAD_OFF_REPEAT_MS`; the episodes in between are counted
 * and the next warning gives the count. Episodes further apart are each warned, as before. QA: a loose
 * electrode flapping every 1-4 s raised 10-45 warnings a minute, each sounding the bedside alarm. The urgent
 * alarms (`ecg-flat-line`, `ecg-no-beats`, the intermittent-contact one) are never held back.
 */
const LEAD_OFF_REPEAT_MS = 60_000;
const LEAD_OFF_FLAP_MS = 15_000;

/**
 * The lead-off warnings of one lead (see `LEAD_OFF_REPEAT_MS`). The count a warning gives is of every time
 * the lead came off since the last warning: each report of the front end that the lead is off (those under
 * 1 s, bridged and never an episode, included: QA saw "15 times" for 30 reported flaps, 0.9 s off every
 * 2 s, of which every other one was bridged) and each flat-line episode the front end did not report.
 */
class LeadOffWarnings {
  private lastWarnedMs: number | undefined;
  private lastEpisodeMs: number | undefined;
  /** Times the lead came off since the last warning (that warning's own excluded). */
  private offs = 0;

  /** The front end reported the lead off (a report begins, whether it is bridged or becomes an episode). */
  reportedOff(): void {
    this.offs += 1;
  }

  /**
   * A lead-off episode at `endMs` (`reported`: by the front end, whose report was counted when it began):
   * undefined when it is not warned (counted), else the text to add to its warning.
   */
  episode(endMs: number, reported: boolean): string | undefined {
    if (!reported) this.offs += 1;
    const warned = this.lastWarnedMs;
    const flapping = this.lastEpisodeMs !== undefined && endMs >= this.lastEpisodeMs && endMs - this.lastEpisodeMs < LEAD_OFF_FLAP_MS;
    this.lastEpisodeMs = endMs;
    if (flapping && warned !== undefined && endMs >= warned && endMs - warned < LEAD_OFF_REPEAT_MS) return undefined;
    const offs = this.offs;
    this.offs = 0;
    this.lastWarnedMs = endMs;
    if (warned === undefined || offs < 2) return '';
    return ` The lead came off ${offs} times in the last ${Math.round((endMs - warned) / 1000)} s: an electrode is loose or its cable is pulled.`;
  }
}

/** A front end's saturation report flags findings as long as the signal quality remembers a window. */
const FRONT_END_SATURATION_MEMORY_MS = DEFAULT_SIGNAL_QUALITY_OPTIONS.windowMs * DEFAULT_SIGNAL_QUALITY_OPTIONS.memoryWindows;

export const QRS_MODEL_ID = 'algo:qrs-detector@1';
/** Provenance of findings: the hash of the detector's parameters. */
export const QRS_MODEL_SHA256 = sha256Hex(canonicalJson(DEFAULT_QRS_OPTIONS));
export const AF_MODEL_ID = 'algo:af-rr-irregularity@2';
export const AF_MODEL_SHA256 = sha256Hex(canonicalJson(DEFAULT_AF_OPTIONS));
const RULES_SHA256 = sha256Hex(canonicalJson({ id: RULE_CLASSIFIER_ID }));

export interface AfFindingProbability {
  /** AF duration positive predictivity: the share of the time the detector calls AF that is AF. */
  afSuspected: number;
  /** The share of the time the detector does not call AF that is not AF. */
  afNotSuspected: number;
}

/**
 * The probability an `ecg-af` finding carries, by the classifier whose beat classes the AF detector took
 * (bench/ecg-af-probability.js; models/ecg-beats/MODEL_CARD.md). EC57 reference, the 22 MIT-BIH records of
 * the beat model's cross-validation, from minute 5. ecg-beats 1.5.0: the card's cross-validation AF
 * duration +P (92.73 %), and the not-AF share derived from its Se (94.91 %) and the reference durations
 * (mostly time in records without AF: it says little about the minutes right after an episode). The rule
 * fallback: measured (+P 85.64 %). A classifier not listed gets the lower of each.
 */
export const AF_FINDING_PROBABILITY: Readonly<Record<string, Readonly<AfFindingProbability>>> = Object.freeze({
  'ecg-beats@1.5.0': Object.freeze({ afSuspected: 0.927, afNotSuspected: 0.998 }),
  [RULE_CLASSIFIER_ID]: Object.freeze({ afSuspected: 0.856, afNotSuspected: 0.999 }),
});

/** The probability of an `ecg-af` finding whose beats `classifierId` classified (`AF_FINDING_PROBABILITY`). */
export function afFindingProbability(classifierId: string, suspected: boolean): number {
  const measured = AF_FINDING_PROBABILITY[classifierId];
  const pick = (p: Readonly<AfFindingProbability>) => (suspected ? p.afSuspected : p.afNotSuspected);
  return measured ? pick(measured) : Math.min(...Object.values(AF_FINDING_PROBABILITY).map(pick));
}

/** The median of the second half of a chunk: the lead's level where it goes on (a lead coming back steps to it). */
function chunkLevel(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  const half = Array.from(samples.subarray(samples.length >> 1)).sort((a, b) => a - b);
  return half[half.length >> 1] as number;
}

export interface EcgMonitorOutput {
  readings: Reading[];
  findings: Finding[];
  alerts: RaisedAlert[];
}

const DECISION_SUPPORT = 'decision support, review by a clinician';

/**
 * The live ECG path of the runtime for one sensor: stream chunks in (channel 0); QRS detection, beat
 * features, beat classes (the model in an inference worker when one is given, coarse rules otherwise),
 * AF detection and a signal quality index; out: heart-rate readings, rate, beat-class and AF findings
 * (each with its input quality and quality flags), and local alerts in three severities: ventricular
 * run (2) and sustained ventricular run (3), AF onset (2), asystole (3; held back while a second lead, channel 1,
 * shows the heart beating: `secondLeadConfirms`), flat line after beats were
 * seen (3), lead off before any beat (2), lead off reported by the front end (2: chunks with `leadOff`; a
 * report under 1 s is bridged, see `flatMv`; the lead is not analysed until contact is back; status-only
 * chunks, with no samples, count from their time), contact lost too often to analyse (2:
 * `ecg-intermittent-contact`, or 3: `ecg-no-beats` when the lead is quiet between the losses, see
 * `intermittentContact`), and lead off on a lead it does not analyse (2: `ecg-secondary-lead-off`, channel 1
 * and up, see `pushOtherLead`). Findings made while the front end reports
 * saturation (chunks with `saturated`) carry the `saturation` quality flag.
 *
 * Driven by the chunks' own sample clock, so it runs the same on a board, in replay and in tests.
 * Classification is asynchronous: beats are batched to the classifier and what follows from their
 * classes comes out of a later `push` (or `drain`). After a (re)start the detector's beats count only
 * once it has found credible QRS complexes (see `acquisitionBeats`). Alerts fire once per episode and
 * re-arm when the condition clears. Wording is decision support, never a diagnosis.
 */
export class EcgMonitor {
  readonly sensor: string;
  private readonly options: EcgMonitorOptions;
  private classifier: BeatClassifier | undefined;
  private classifierError: string | undefined;
  private frontEnd: EcgFrontEnd | undefined;
  private quality: SignalQuality | undefined;
  private af: AfDetector | undefined;
  private atrial: AtrialActivity | undefined;
  /** Atrial correlation of the beats waiting for their class (by beat sample). */
  private readonly atrialOf = new Map<number, number>();
  private rateHz = 0;
  private t0 = 0;
  private firstSample = 0;
  private samplesSeen = 0;
  /** Device time (ms) the asystole clock runs from (see `asystoleMs`); undefined before any beat. */
  private noBeatSinceMs: number | undefined;
  /**
   * Device time (ms) of the last heartbeat, or of the lead-back (or new stream) after which none came: what
   * the asystole alert says has lasted (after a restart the clock starts later, `RESTART_CLOCK_DELAY_MS`).
   */
  private silentSinceMs = 0;
  /** A credible QRS has been seen on this sensor (in any stream). */
  private beatsSeen = false;
  private credibility: QrsCredibility | undefined;
  /** Whether the detector's beats are analysed (see `acquisitionBeats`). */
  private acquired = false;
  /**
   * A credible QRS has been seen on the current stream (since the last restart). Until then a detection that
   * only stands out a little holds the asystole alert back only if it is as large as a QRS complex
   * (`QrsCredibilityOptions.minFirstEvidenceMv`).
   */
  private streamCredible = false;
  /** The last detections of the stream (front-end samples), for `QrsCredibility.repeats`. */
  private recentDetections: number[] = [];
  /** Consecutive credible detections while acquiring, and the first of them (front-end sample). */
  private credibleRun = 0;
  private acquireFrom: number | undefined;
  /** Beats from `acquireFrom` on that came out while acquiring: analysed once acquired. */
  private pending: BeatFeatures[] = [];
  private readonly rrMs: number[] = [];
  private nextReadingMs = 0;
  private flatSinceMs: number | undefined;
  /** The flat line of this lead-off episode was raised as urgent. */
  private flatAlarmed = false;
  private leadOff = false;
  /** The lead-off is the front end's report (chunks with `leadOff`), not a flat line. */
  private contactLost = false;
  /** Device time (ms) the front end's current lead-off report began, while it is shorter than a bridge. */
  private reportedOffSinceMs: number | undefined;
  /** Whether the current report is being bridged, when the last bridged one ended, and whether this stream has had contact. */
  private bridging = false;
  private lastBridgeEndMs: number | undefined;
  private contactInStream = false;
  /**
   * Lead-offs reported by the front end since the last credible QRS, and whether that raised `ecg-no-beats`
   * (lead quiet between them) or `ecg-intermittent-contact` (not quiet).
   */
  private contactLossesSinceBeat = 0;
  private intermittentAlarmed = false;
  private contactAlarmed = false;
  /** Device time (ms) of the last credible QRS on this sensor (any stream). */
  private lastBeatMs: number | undefined;
  /** The lead's QRS-sized deflections (samples with contact), for `QUIET_LEAD` and the intermittent-contact alarm. */
  private deflection: LeadDeflection | undefined;
  /**
   * Device time (ms) of the lead-back (or new stream) whose asystole clock started late, while no heartbeat
   * has come since and the quiet-lead check (`QUIET_LEAD`) has not been made.
   */
  private quietCheckFromMs: number | undefined;
  /** Leads not analysed (channel 1 and up) that the front end reports off: since when (ms), and whether that was raised. */
  private readonly otherLeadsOff = new Map<number, { sinceMs: number; raised: boolean }>();
  /** The heartbeats lead 2 (channel 1) shows, when it streams one (`secondLeadConfirms`). */
  private readonly secondLead: SecondLeadBeats | undefined;
  /** Times `ecg-no-beats` was held back because lead 2 showed the heart beating (once per stretch; for benches). */
  heldBySecondLead = 0;
  private holding = false;
  /** Detections that were not heartbeats (`minHumFreeQrsMv`; front-end samples, the last 64): not analysed. */
  private readonly rejected = new Set<number>();
  /** Detections taken for pacemaker pulses without a QRS since the monitor started (`pacePulse`). */
  pacePulsesRejected = 0;
  /** ... since the last sign of a heartbeat (named in `ecg-no-beats`). */
  private pacePulsesSinceBeat = 0;
  /** Lead-off warnings raised, by channel (at most one per `LEAD_OFF_REPEAT_MS`). */
  private readonly leadOffWarnings = new Map<number, LeadOffWarnings>();
  /** Findings carry `saturation` until this device time (ms) of stream `generation`: the front end reported it. */
  private saturatedUntil: { generation: number; ms: number } | undefined;
  private asystole = false;
  /** Stream generation: results of a classification started on an older stream are dropped. */
  private generation = 0;
  private queue: BeatFeatures[] = [];
  private inflight: Promise<void> | undefined;
  private readonly ready: EcgMonitorOutput = { readings: [], findings: [], alerts: [] };
  private counts = new Map<AamiClass, number>();
  private ectopicProbability = 0;
  private ventricular: VentricularEpisodes | undefined;

  constructor(sensor: string, options: Partial<EcgMonitorOptions> = {}, classifier?: BeatClassifier) {
    this.sensor = sensor;
    this.options = { ...DEFAULT_ECG_MONITOR_OPTIONS, ...options };
    this.classifier = classifier;
    if (this.options.secondLeadConfirms) this.secondLead = new SecondLeadBeats({ pacePulse: this.options.pacePulse });
  }

  /** Called when the model fails (`error`: what the classifier rejected with) and the monitor falls back to the rules. */
  onClassifierError: ((reason: string, error: unknown) => void) | undefined;

  /** Uses `classifier` for the beats from now on (a model that finished loading). */
  setClassifier(classifier: BeatClassifier | undefined): void {
    this.classifier = classifier;
    this.classifierError = undefined;
  }

  /** The classifier in use: a model id, or the rule fallback. */
  get classifierId(): string {
    return this.classifier?.modelId ?? RULE_CLASSIFIER_ID;
  }

  /** Why the model was dropped, if it failed. */
  get lastClassifierError(): string | undefined {
    return this.classifierError;
  }

  /** While the samples held over lost frames are pushed (`push`): they are not the lead. */
  private fillingGap = false;
  /** The last sample seen (what a bridged gap holds). */
  private lastValue = 0;
  /**
   * The level of the stream's first chunk (`chunkLevel`), taken off what the front end sees: its filters
   * start from zero, so a lead's DC offset (electrode potentials) put a step at the start that the
   * detector took for the largest QRS of its 2 s of learning, and it then missed beats for seconds
   * (MIT-BIH 114 at 223 s: none for 15 s after a lead-back).
   */
  private offset = 0;
  /**
   * Whether `offset` came from a chunk with signal. A stream that opens flat (at a rail: electrodes off,
   * amplifier saturated) would take the rail as the lead's level and feed the front end a step of the
   * whole ADC range when the ECG comes: the detector then found nothing for the rest of the stream (QA: 101
   * after 0.1 s at the rail, no heart rate and no alarm in 1500 s; on a reconnect, a false no-beats). Its
   * level follows every flat chunk until the first chunk with signal.
   */
  private offsetSettled = true;

  /** Device time (ms) of a sample index of the current stream. */
  private timeOf(sample: number): number {
    return this.t0 + ((sample - this.firstSample) * 1000) / this.rateHz;
  }

  push(chunk: StreamChunk): EcgMonitorOutput {
    const out = this.takeReady();
    if (chunk.channel !== 0) {
      this.pushOtherLead(chunk, out);
      return out;
    }
    if (chunk.samples.length === 0) {
      this.pushStatus(chunk, out);
      return out;
    }
    // A short gap (frames lost to corruption: tens of ms) is bridged by holding the last value, so
    // beat timing and the rhythm history survive it; a longer one starts afresh (below).
    const expected = this.firstSample + this.samplesSeen;
    const gap = chunk.firstSample - expected;
    if (this.frontEnd && chunk.rateHz === this.rateHz && gap > 0 && gap <= Math.round(this.rateHz * MAX_BRIDGE_S)) {
      this.fillingGap = true;
      let bridged: EcgMonitorOutput;
      try {
        bridged = this.push({ ...chunk, firstSample: expected, t0: this.timeOf(expected), samples: new Int16Array(gap).fill(this.lastValue) });
      } finally {
        this.fillingGap = false;
      }
      const rest = this.push(chunk);
      return {
        readings: [...out.readings, ...bridged.readings, ...rest.readings],
        findings: [...out.findings, ...bridged.findings, ...rest.findings],
        alerts: [...out.alerts, ...bridged.alerts, ...rest.alerts],
      };
    }
    // A new stream (restart, rate change, or a jump in the sample counter) starts afresh.
    if (!this.frontEnd || chunk.rateHz !== this.rateHz || chunk.firstSample !== this.firstSample + this.samplesSeen) this.restart(chunk);
    const endMs = this.timeOf(chunk.firstSample + chunk.samples.length);
    // A front end's lead-off report shorter than a bridge (an electrode that lost contact for a moment) is
    // bridged as a short gap is, holding the last value: no restart, and the asystole clock runs on.
    // Only with contact seen on this stream (a stream that starts off has no value to hold: its level would be
    // the rail's), and only one report in `MIN_BRIDGE_SPACING_MS` (flaps taking a third of the time or more
    // would hide beats and halve the heart rate: they are lead-offs).
    let held = false;
    if (chunk.leadOff && !this.leadOff) {
      if (this.isBridged(chunk.t0, endMs)) {
        const { leadOff: _, ...rest } = chunk;
        chunk = { ...rest, samples: new Int16Array(chunk.samples.length).fill(this.lastValue) };
        held = true;
      }
    } else if (!chunk.leadOff) {
      if (this.reportedOffSinceMs !== undefined && this.bridging && !this.leadOff) this.lastBridgeEndMs = chunk.t0;
      this.reportedOffSinceMs = undefined;
    }
    const wasLeadOff = this.leadOff;
    this.checkLeadOff(chunk, endMs, out);
    if (chunk.saturated) this.saturatedUntil = { generation: this.generation, ms: endMs + FRONT_END_SATURATION_MEMORY_MS };
    // Electrodes put back on may sit elsewhere or the other way round: the references (dominant beat,
    // lead polarity, rhythm) are learnt afresh, as for a new stream.
    // The asystole clock restarts at the moment the lead is back: a patient with no heartbeat raises it.
    if (wasLeadOff && !this.leadOff) this.restart(chunk, true);
    if (!chunk.leadOff) this.contactInStream = true;
    if (chunk.leadOff) {
      // The front end reports the electrodes off: nothing on the lead is a heartbeat (an open input picks up
      // mains hum, which the detector takes for QRS complexes). With contact back the lead is learnt afresh.
      this.samplesSeen += chunk.samples.length;
      this.lastValue = chunk.samples[chunk.samples.length - 1] as number;
      this.deflection?.break();
      return out;
    }
    // A held value is not the lead: measured, its step from the hum or noise it froze looked like a QRS
    // complex (QA: a stopped heart under 0.2 mV of 50 Hz hum, contact lost 1.5 s in every 3 s, got no ecg-no-beats).
    // Nor is a window across it measured: the lead comes back from the hold where it has moved to meanwhile (QA:
    // 0.5 mV of baseline wander, contact lost 0.5 s in every 1.5 s: the steps measured 0.4-0.6 mV, no ecg-no-beats).
    // The same for the value held over lost frames (QA: one lost 100 ms chunk after a lead-back onto a stopped heart
    // under 0.3 mV of hum gave ecg-no-beats at 6 s instead of 4 s in 13 of 20 seeds).
    if (held || this.fillingGap) (this.deflection as LeadDeflection).break();
    else (this.deflection as LeadDeflection).push(chunk.samples, chunk.gain, endMs);
    // Until a chunk with signal comes, the level follows each flat chunk (a rail, then a quiet stretch of ECG
    // shorter than a chunk's worth of peak-to-peak, must not leave the rail as the level).
    if (!this.offsetSettled) {
      this.offset = chunkLevel(chunk.samples);
      this.offsetSettled = !this.isFlat(chunk);
    }
    const frontEnd = this.frontEnd as EcgFrontEnd;
    (this.quality as SignalQuality).push(chunk.samples, chunk.gain);
    (this.credibility as QrsCredibility).pushSamples(chunk.samples, chunk.gain);
    const atrial = this.atrial as AtrialActivity;
    atrial.pushSamples(chunk.samples);
    const beats = frontEnd.push(this.offset === 0 ? chunk.samples : Float64Array.from(chunk.samples, (v) => v - this.offset));
    for (const b of beats) this.atrialOf.set(b.sample, atrial.beat(b.sample));
    for (const d of frontEnd.detectedInLastPush) this.onDetected(d);
    const accepted = this.accept(beats);
    for (const b of accepted) {
      // The first beat's RR reaches back to a detection that was not analysed.
      // An RR interval from a detection that was not a heartbeat is no RR interval.
      if (b.rrPre > 0 && b.sample !== this.acquireFrom && !this.rejected.has(b.sample - Math.round(b.rrPre * this.rateHz))) {
        this.rrMs.push(b.rrPre * 1000);
        if (this.rrMs.length > 16) this.rrMs.shift();
      }
    }
    this.classify(accepted, out);
    this.samplesSeen += chunk.samples.length;
    this.lastValue = chunk.samples[chunk.samples.length - 1] as number;
    this.checkAsystole(endMs, out);
    if (endMs >= this.nextReadingMs) {
      this.nextReadingMs = endMs + this.options.readingIntervalMs;
      this.report(endMs, out);
    }
    return out;
  }

  /**
   * Whether a front end's lead-off report that is on at `endMs` is bridged (see `push`); notes that a
   * report began at `t0` when none was running.
   */
  private isBridged(t0: number, endMs: number): boolean {
    if (this.reportedOffSinceMs === undefined) {
      this.reportedOffSinceMs = t0;
      this.warningsOf(0).reportedOff();
      this.bridging = this.contactInStream && (this.lastBridgeEndMs === undefined || t0 - this.lastBridgeEndMs >= MIN_BRIDGE_SPACING_MS);
    }
    return this.bridging && endMs - this.reportedOffSinceMs < MAX_BRIDGE_S * 1000;
  }

  /**
   * A chunk with no samples: a front end's status-only report (§5.1 of the stream protocol) at `t0`. A
   * lead-off report counts as the samples flagged `leadOff` would, from its time: a contact loss that may
   * be bridged (under 1 s), then `ecg-lead-off`, so a front end that stops sampling while the electrodes are
   * off, sending only these reports, is still raised. Any other report changes nothing (contact and
   * signal are judged on the samples that follow, which carry their own flags); a report of saturation
   * flags the findings as a saturated chunk does. Nothing here reads a sample, so nothing divides by
   * their count.
   */
  private pushStatus(chunk: StreamChunk, out: EcgMonitorOutput): void {
    // A stream that begins with a report starts at it (its samples, when they come, continue from its index).
    if (!this.frontEnd || chunk.rateHz !== this.rateHz) this.restart(chunk);
    if (chunk.saturated) this.saturatedUntil = { generation: this.generation, ms: chunk.t0 + FRONT_END_SATURATION_MEMORY_MS };
    if (!chunk.leadOff || this.isBridged(chunk.t0, chunk.t0)) return;
    this.checkLeadOff(chunk, chunk.t0, out);
  }

  /**
   * A chunk of a lead this monitor does not analyse (channel 1 and up): its front end's lead-off reports.
   * Reported off for `MAX_BRIDGE_S` (1 s, flaps under it say nothing, as on channel 0) raises
   * `ecg-secondary-lead-off` once per episode, re-armed when a chunk of that lead with samples and without
   * `leadOff` comes. Severity 2, a warning, not 3: the heart rate and every rhythm alarm come from channel 0,
   * which is unaffected, so nothing about the patient is missed; but the lead's stored and displayed trace
   * is the rail or an open input's mains hum (which looks like a fast rhythm), not the heart, and someone
   * at the bedside can fix it by reattaching an electrode: the same level as `ecg-lead-off`. Not 1
   * (information, which does not sound the bedside alarm): a clinician reading a two-lead strip must be
   * told the second trace is not ECG, and an electrode that is not fixed is how the next lead comes off.
   */
  private pushOtherLead(chunk: StreamChunk, out: EcgMonitorOutput): void {
    if (chunk.channel === 1) this.secondLead?.push(chunk);
    const endMs = chunk.t0 + (chunk.samples.length * 1000) / chunk.rateHz;
    if (!chunk.leadOff) {
      if (chunk.samples.length > 0) this.otherLeadsOff.delete(chunk.channel);
      return;
    }
    let off = this.otherLeadsOff.get(chunk.channel);
    if (!off) {
      this.otherLeadsOff.set(chunk.channel, (off = { sinceMs: chunk.t0, raised: false }));
      this.warningsOf(chunk.channel).reportedOff();
    }
    if (off.raised || endMs - off.sinceMs < MAX_BRIDGE_S * 1000) return;
    off.raised = true;
    const repeats = this.warningsOf(chunk.channel).episode(endMs, true);
    if (repeats === undefined) return;
    out.alerts.push({
      kind: 'ecg-secondary-lead-off',
      severity: 2,
      t: endMs,
      sensor: this.sensor,
      message: `ECG front end reports electrode contact lost on lead ${chunk.channel + 1} (channel ${chunk.channel}) for ${((endMs - off.sinceMs) / 1000).toFixed(1)} s: its trace shows no heart signal; reattach the electrode. Heart rate and rhythm alarms come from lead 1 (channel 0) and go on.${repeats}`,
    });
  }

  /** Waits for the classification in flight and returns what it produced (also at shutdown and in tests). */
  async drain(): Promise<EcgMonitorOutput> {
    while (this.inflight) await this.inflight;
    return this.takeReady();
  }

  private takeReady(): EcgMonitorOutput {
    const out = { readings: this.ready.readings.splice(0), findings: this.ready.findings.splice(0), alerts: this.ready.alerts.splice(0) };
    return out;
  }

  /**
   * A new stream, or the lead back on (`leadBack`): everything is learnt afresh. The asystole clock runs
   * from `RESTART_CLOCK_DELAY_MS` after the lead is back, or after a new stream starts once beats have
   * been seen on the sensor (a patient was being monitored), or from the lead-back if the lead stays quiet
   * (`QUIET_LEAD`); else from the first credible QRS.
   */
  private restart(chunk: StreamChunk, leadBack = false): void {
    this.generation += 1;
    const fs = chunk.rateHz;
    this.frontEnd = new EcgFrontEnd({ fs });
    this.quality = new SignalQuality({ fs });
    this.credibility = new QrsCredibility({ fs });
    this.af = new AfDetector({ fs });
    this.atrial = new AtrialActivity({ fs });
    this.atrialOf.clear();
    this.rateHz = fs;
    this.t0 = chunk.t0;
    this.firstSample = chunk.firstSample;
    this.samplesSeen = 0;
    this.offset = chunkLevel(chunk.samples);
    this.offsetSettled = !this.isFlat(chunk);
    this.noBeatSinceMs = leadBack || this.beatsSeen ? chunk.t0 + RESTART_CLOCK_DELAY_MS : undefined;
    this.quietCheckFromMs = this.noBeatSinceMs === undefined ? undefined : chunk.t0;
    if (this.deflection?.options.fs !== fs) this.deflection = new LeadDeflection({ fs });
    this.deflection.break();
    this.silentSinceMs = chunk.t0;
    this.streamCredible = false;
    this.recentDetections = [];
    this.rejected.clear();
    this.asystole = false;
    // Flatness is judged on the new stream only: a flat stretch before a disconnection would otherwise
    // run on across the missing minutes and call the first quiet samples after it a long flat line.
    this.flatSinceMs = undefined;
    this.leadOff = false;
    this.flatAlarmed = false;
    this.contactInStream = false;
    this.loseAcquisition();
    this.queue = [];
    this.ventricular = new VentricularEpisodes({
      fs,
      runBeats: this.options.ventricularRunBeats,
      runBpm: this.options.ventricularRunBpm,
      sustainedMs: this.options.sustainedRunMs,
      sustainedShare: this.options.sustainedRunShare,
      rearmMs: this.options.ventricularRearmMs,
    });
    this.counts.clear();
    this.nextReadingMs = chunk.t0 + this.options.readingIntervalMs;
  }

  /**
   * Back to acquiring: no beat is analysed until credible QRS complexes come again, and the rate and
   * rhythm history (which would otherwise keep reporting the last heart rate) starts afresh.
   */
  private loseAcquisition(): void {
    this.acquired = false;
    this.credibleRun = 0;
    this.acquireFrom = undefined;
    this.dropPending();
    this.rrMs.length = 0;
    if (this.rateHz > 0) this.af = new AfDetector({ fs: this.rateHz });
  }

  private dropPending(): void {
    for (const b of this.pending) this.atrialOf.delete(b.sample);
    this.pending = [];
  }

  /**
   * A QRS detection at front-end sample `d`: the asystole clock and the acquisition. While acquiring, a
   * credible detection adds to the run that acquires only when it has the shape of one of the 3 detections
   * before it (`QrsCredibility.repeats`); else a run starts afresh from it. Muscle artefact stands out of
   * its background as a QRS does, but its bursts do not repeat a shape (bench/ecg-lead-back.js: the nstdb
   * `ma` record after a lead-back gave heart rates of 112-188 /min; now none). Any credible detection
   * still holds the asystole clock back: asking for repeated shapes there too raised a false no-beats
   * on MIT-BIH 108 (QRS shapes that vary from beat to beat) after a lead-back.
   */
  private onDetected(d: number): void {
    const t = this.timeOf(this.firstSample + d);
    const credibility = this.credibility as QrsCredibility;
    const humFree = credibility.humFreeQrsMv(d, DEFAULT_LEAD_DEFLECTION_OPTIONS.mainsHz);
    // A credible QRS that keeps its span with the hum fitted out is not hum (asked last: a fit per detection).
    const qrsUnderHum = () => (credibility.fittedHumFreeQrsMv(d) ?? 0) >= this.options.minHumFreeQrsMv && credibility.credible(d);
    if (humFree !== undefined && humFree < this.options.minHumFreeQrsMv && humFree <= this.options.maxHumFreeShare * (credibility.qrsMv(d) ?? 0) && !qrsUnderHum()) {
      // Mains hum taken for a QRS (see `minHumFreeQrsMv`, `maxHumFreeShare`): as if nothing had been detected.
      this.reject(d);
      return;
    }
    const measured = this.acquired ? credibility.measure(d) : undefined;
    if (measured?.humTakenOut && measured.prominence < this.options.minHumFreeProminence) {
      // Under mains hum, standing out of nothing once the hum is out (see `minHumFreeProminence`): not a heartbeat.
      this.reject(d);
      return;
    }
    if (credibility.pacePulseOnly(d, this.options.pacePulse)) {
      // A pacemaker pulse that captured nothing (see `pacePulse`): as if nothing had been detected.
      this.pacePulsesRejected += 1;
      this.pacePulsesSinceBeat += 1;
      this.reject(d);
      return;
    }
    const repeats = credibility.repeats(d, this.recentDetections);
    this.recentDetections.push(d);
    if (this.recentDetections.length > 3) this.recentDetections.shift();
    if (!this.acquired) {
      if (!credibility.credible(d)) {
        this.credibleRun = 0;
        this.acquireFrom = undefined;
        this.dropPending();
        // A QRS that stands out a little (noisy ECG) holds the asystole alert back; it does not re-arm it.
        const { minEvidenceProminence, minQrsMv, minFirstEvidenceMv } = credibility.options;
        if (!this.asystole && credibility.credible(d, minEvidenceProminence, this.streamCredible ? minQrsMv : minFirstEvidenceMv)) this.heartbeatAt(t);
        return;
      }
      this.streamCredible = true;
      if (!repeats && this.credibleRun > 0) {
        // Unlike the detections before it: a run starts afresh from it.
        this.credibleRun = 0;
        this.acquireFrom = undefined;
        this.dropPending();
      }
      this.credibleRun += 1;
      this.acquireFrom ??= d;
      if (this.credibleRun >= this.options.acquisitionBeats) this.acquired = true;
    }
    this.beatsSeen = true;
    this.heartbeatAt(t, repeats || this.acquired || (credibility.measure(d)?.prominence ?? 0) >= QUIET_LEAD.sureProminence);
    this.asystole = false;
  }

  /** Detection `d` is not a heartbeat: it is not analysed and gives no RR interval. */
  private reject(d: number): void {
    this.rejected.add(d);
    if (this.rejected.size > 64) this.rejected.delete(this.rejected.values().next().value as number);
  }

  /**
   * A sign of a heartbeat at device time `t` (ms): the asystole clock starts again. The quiet-lead check of a
   * lead-back (`QUIET_LEAD`) is dropped only by a `sure` one: a credible detection that repeats the shape of
   * one before it or stands out `QUIET_LEAD.sureProminence` (or any once acquired). A detector learning a lead
   * of baseline noise finds detections that stand out of it by chance, at a coarse ADC often enough to hold the
   * clock for good (0.05 mV units: noise of 0.03 mV SD spans 2 units, a detection on it 3-4, "prominence"
   * 1.5-2), but their shapes do not repeat (128 Hz, 20 units per mV, 80 seeds: best correlation with the 3
   * detections before 0.31 median, 5 of 3,597 >= 0.8; QRS complexes after a lead-back 0.99 median).
   */
  private heartbeatAt(t: number, sure = false): void {
    this.pacePulsesSinceBeat = 0;
    this.noBeatSinceMs = t;
    this.silentSinceMs = t;
    this.lastBeatMs = t;
    if (sure) this.quietCheckFromMs = undefined;
    this.contactLossesSinceBeat = 0;
    this.intermittentAlarmed = false;
    this.contactAlarmed = false;
    this.holding = false;
  }

  /** The beats to analyse: none while acquiring (kept until acquired), those from `acquireFrom` on once acquired. */
  private accept(beats: BeatFeatures[]): BeatFeatures[] {
    const from = this.acquireFrom;
    const keep = beats.filter((b) => from !== undefined && b.sample >= from && !this.rejected.has(b.sample));
    for (const b of beats) if (!keep.includes(b)) this.atrialOf.delete(b.sample);
    if (!this.acquired) {
      this.pending.push(...keep);
      return [];
    }
    const accepted = [...this.pending.filter((b) => from !== undefined && b.sample >= from), ...keep];
    this.pending = [];
    return accepted;
  }

  private classify(beats: BeatFeatures[], out: EcgMonitorOutput): void {
    if (!this.classifier) {
      for (const b of beats) this.onClassified(b, ruleBasedClass(b.features), 1, out);
      return;
    }
    this.queue.push(...beats);
    this.pump();
  }

  /** Sends the queued beats to the classifier as one batch when none is in flight. */
  private pump(): void {
    const classifier = this.classifier;
    if (this.inflight || this.queue.length === 0 || !classifier) return;
    const batch = this.queue;
    this.queue = [];
    const generation = this.generation;
    const width = (batch[0] as BeatFeatures).features.length;
    const x = new Float32Array(batch.length * width);
    batch.forEach((b, i) => x.set(b.features, i * width));
    this.inflight = classifier
      .classify(x, batch.length, width)
      .then(
        (p) => {
          if (generation !== this.generation) return;
          batch.forEach((b, i) => {
            const { cls, probability } = classOf(p, i * AAMI_CLASSES.length);
            this.onClassified(b, cls, probability, this.ready);
          });
        },
        (error: unknown) => {
          // The model failed (crashed, or missed its deadline: InferenceTimeoutError): fall back to the rules for
          // these beats, those queued behind them (before, they waited for a model that was gone) and later ones.
          this.classifierError = (error as Error).message;
          this.classifier = undefined;
          this.onClassifierError?.(this.classifierError, error);
          const queued = this.queue;
          this.queue = [];
          if (generation === this.generation) for (const b of batch) this.onClassified(b, ruleBasedClass(b.features), 1, this.ready);
          for (const b of queued) this.onClassified(b, ruleBasedClass(b.features), 1, this.ready);
        },
      )
      .finally(() => {
        this.inflight = undefined;
        this.pump();
      });
  }

  private qualityNow(): SignalQualityWindow {
    const q = this.quality?.current() ?? { quality: 1, flags: [], noise: 0, wander: 0 };
    const s = this.saturatedUntil;
    const saturated = s !== undefined && s.generation === this.generation && this.timeOf(this.firstSample + this.samplesSeen) <= s.ms;
    return saturated ? withQualityFlag(q, 'saturation') : q;
  }

  private modelProvenance(): { modelId: string; modelSha256: string } {
    return this.classifier ? { modelId: this.classifier.modelId, modelSha256: this.classifier.modelSha256 } : { modelId: RULE_CLASSIFIER_ID, modelSha256: RULES_SHA256 };
  }

  private onClassified(beat: BeatFeatures, modelCls: AamiClass, probability: number, out: EcgMonitorOutput): void {
    const q = this.qualityNow();
    // The AF detector takes the classifier's class; the beat is reported in its rhythm (S in AF -> N).
    const af = this.af as AfDetector;
    const atrial = this.atrialOf.get(beat.sample);
    this.atrialOf.delete(beat.sample);
    for (const e of af.push({ sample: beat.sample, cls: modelCls, atrial })) this.onAf(e, q, out);
    const cls = classInRhythm(modelCls, af.inAf);
    this.counts.set(cls, (this.counts.get(cls) ?? 0) + 1);
    if (cls !== 'N') this.ectopicProbability = Math.max(this.ectopicProbability, probability);
    for (const e of (this.ventricular as VentricularEpisodes).push(beat.sample, cls === 'V')) this.onVentricular(e, probability, q, out);
  }

  private onVentricular(e: VentricularEvent, probability: number, q: SignalQualityWindow, out: EcgMonitorOutput): void {
    const t = this.timeOf(this.firstSample + e.end);
    const bpm = Math.round(e.bpm);
    const sustained = e.type === 'sustained';
    const finding: Finding = {
      sensor: this.sensor,
      kind: 'ecg-ventricular-run',
      label: sustained ? 'sustained-ventricular-run-suspected' : 'ventricular-run-suspected',
      value: bpm,
      probability: Math.round(probability * 1000) / 1000,
      t,
      intervalStart: Math.round(this.timeOf(this.firstSample + e.start)),
      intervalEnd: Math.round(t),
      evidence: sustained
        ? `${e.ventricular} of the ${e.beats} beats of the last ${Math.round(this.options.sustainedRunMs / 1000)} s classified V, ${e.inRuns} of them in runs of two or more (episode since sample ${this.firstSample + e.start})`
        : `${e.beats} consecutive V beats (samples ${this.firstSample + e.start}-${this.firstSample + e.end})`,
      ...this.modelProvenance(),
      inputQuality: q.quality,
      qualityFlags: q.flags,
    };
    out.findings.push(finding);
    if (sustained) {
      const seconds = Math.round(((e.end - e.start) * 1000) / this.rateHz / 1000);
      out.alerts.push({
        kind: 'ecg-sustained-ventricular-run',
        severity: 3,
        t,
        sensor: this.sensor,
        message: `Sustained ventricular rhythm suspected: ventricular beats for ${seconds} s, ${Math.round((100 * e.ventricular) / e.beats)} % of the beats of the last ${Math.round(this.options.sustainedRunMs / 1000)} s, at ${bpm} /min; check the patient now (${DECISION_SUPPORT}).`,
        finding,
      });
    } else {
      out.alerts.push({ kind: 'ecg-ventricular-run', severity: 2, t, sensor: this.sensor, message: `${e.beats} consecutive beats classified ventricular at ${bpm} /min; check the patient (${DECISION_SUPPORT}).`, finding });
    }
  }

  /** The AF detector's atrial organisation now, for the evidence text. */
  private afAtrial(): string {
    const a = (this.af as AfDetector).atrialOrganization;
    return Number.isFinite(a) ? `${a.toFixed(2)} (P waves repeat at >= ${DEFAULT_AF_OPTIONS.organizedAtrial})` : 'unknown';
  }

  private onAf(e: AfEvent, q: SignalQualityWindow, out: EcgMonitorOutput): void {
    const t = this.timeOf(this.firstSample + e.at);
    const finding: Finding = {
      sensor: this.sensor,
      kind: 'ecg-af',
      label: e.type === 'onset' ? 'af-suspected' : 'af-not-suspected',
      value: Math.round(e.irregularity * 1000) / 1000,
      probability: afFindingProbability(this.classifierId, e.type === 'onset'),
      t,
      intervalStart: Math.round(this.timeOf(this.firstSample + e.sample)),
      intervalEnd: Math.round(t),
      evidence: `RR irregularity ${e.irregularity.toFixed(3)} of N-N intervals (beats classified by ${this.classifierId}); pre-QRS atrial correlation ${this.afAtrial()}`,
      modelId: AF_MODEL_ID,
      modelSha256: AF_MODEL_SHA256,
      inputQuality: q.quality,
      qualityFlags: q.flags,
    };
    out.findings.push(finding);
    if (e.type === 'onset' && q.quality >= 0.5) {
      out.alerts.push({ kind: 'ecg-af-onset', severity: 2, t, sensor: this.sensor, message: `Irregular RR intervals suggesting atrial fibrillation since ${Math.round((t - this.timeOf(this.firstSample + e.sample)) / 1000)} s; record a 12-lead ECG (${DECISION_SUPPORT}).`, finding });
    }
  }

  /** The lead-off warnings of `channel`. */
  private warningsOf(channel: number): LeadOffWarnings {
    let warnings = this.leadOffWarnings.get(channel);
    if (!warnings) this.leadOffWarnings.set(channel, (warnings = new LeadOffWarnings()));
    return warnings;
  }

  /** A lead-off episode starts: `ecg-lead-off` (severity 2), unless one was raised less than `LEAD_OFF_REPEAT_MS` before. */
  private raiseLeadOff(endMs: number, message: string, out: EcgMonitorOutput): void {
    this.leadOff = true;
    this.flatAlarmed = false;
    const repeats = this.warningsOf(0).episode(endMs, this.contactLost);
    if (repeats !== undefined) out.alerts.push({ kind: 'ecg-lead-off', severity: 2, t: endMs, sensor: this.sensor, message: `${message}${repeats}` });
  }

  /** Peak-to-peak under `flatMv`. */
  private isFlat(chunk: StreamChunk): boolean {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const v of chunk.samples) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return (max - min) / (chunk.gain || 1) < this.options.flatMv;
  }

  private checkLeadOff(chunk: StreamChunk, endMs: number, out: EcgMonitorOutput): void {
    if (chunk.leadOff) {
      // The front end knows it is the electrodes: a warning at once, no flat-line wait, never urgent.
      this.contactLost = true;
      this.flatSinceMs = undefined;
      if (this.leadOff) return;
      const since = this.reportedOffSinceMs ?? chunk.t0;
      const lasted = endMs > since ? ` for ${((endMs - since) / 1000).toFixed(1)} s` : '';
      this.raiseLeadOff(endMs, `ECG front end reports electrode contact lost (lead off)${lasted}: reattach the electrodes; no heart rate or rhythm analysis until contact is back.`, out);
      this.contactLossesSinceBeat += 1;
      const silentMs = this.lastBeatMs === undefined ? 0 : endMs - this.lastBeatMs;
      if (this.contactLossesSinceBeat >= 3 && silentMs >= this.options.intermittentNoBeatMs) this.intermittentContact(endMs, silentMs, out);
      return;
    }
    if (this.contactLost) {
      // Contact back (the caller learns the lead afresh, as for a lead back after a flat line).
      this.contactLost = false;
      if (this.leadOff) {
        this.leadOff = false;
        return;
      }
    }
    const flat = this.isFlat(chunk);
    if (!flat) {
      this.flatSinceMs = undefined;
      this.leadOff = false;
      return;
    }
    this.flatSinceMs ??= chunk.t0;
    const flatMs = endMs - this.flatSinceMs;
    if (!this.leadOff && flatMs >= this.options.leadOffMs) {
      this.raiseLeadOff(
        endMs,
        this.beatsSeen
          ? `ECG signal went flat: check the electrodes; if it stays flat for ${Math.round(this.options.asystoleMs / 1000)} s it is raised as urgent.`
          : 'ECG signal is flat and no heart beat has been detected on it yet: check that the electrodes are on the patient.',
        out,
      );
    }
    // A flat line cannot tell electrodes off from an arrest: once beats were seen, a flat line as long as
    // an asystole is urgent. Shorter (an electrode being adjusted) it stays a lead-off warning.
    if (this.leadOff && this.beatsSeen && !this.flatAlarmed && flatMs >= Math.max(this.options.leadOffMs, this.options.asystoleMs)) {
      this.flatAlarmed = true;
      out.alerts.push({ kind: 'ecg-flat-line', severity: 3, t: endMs, sensor: this.sensor, message: `No ECG signal (flat line) for ${Math.round(flatMs / 1000)} s: check the patient and the electrodes now (${DECISION_SUPPORT}).` });
    }
  }

  /**
   * Contact lost 3 times or more with no credible QRS for `intermittentNoBeatMs`: the lead never stays on
   * long enough for the detector to learn it. What the lead showed between the losses (the last
   * `intermittentNoBeatMs`) decides what is said. Quiet (`QUIET_LEAD`: flat or baseline only, nothing a
   * detector could take for a QRS): `ecg-no-beats` (3), an arrest with a loose electrode. Not quiet: it may
   * well be a living patient whose electrode flaps (QA: 101 with contact lost 0.9 s in every 2 s raised
   * "No QRS complex detected for 11 s", severity 3), so `ecg-intermittent-contact` (2), about the
   * electrodes: no heart rate or rhythm alarm can come while it goes on, and nothing is said of the heart.
   * Each once until a credible QRS comes; the warning does not hold the urgent alarm back if the lead then
   * goes quiet.
   */
  private intermittentContact(endMs: number, silentMs: number, out: EcgMonitorOutput): void {
    const largestMv = (this.deflection as LeadDeflection).largestSince(endMs - this.options.intermittentNoBeatMs);
    const losses = this.contactLossesSinceBeat;
    const seconds = Math.round(silentMs / 1000);
    if (largestMv < QUIET_LEAD.belowMv) {
      if (this.intermittentAlarmed) return;
      this.intermittentAlarmed = true;
      out.alerts.push({
        kind: 'ecg-no-beats',
        severity: 3,
        t: endMs,
        sensor: this.sensor,
        message: `No QRS complex detected for ${seconds} s, and the electrode contact was lost ${losses} times meanwhile; between the losses the lead showed nothing as large as a QRS complex (largest deflection ${largestMv.toFixed(2)} mV): check the patient and the electrodes now (${DECISION_SUPPORT}).`,
      });
      return;
    }
    if (this.contactAlarmed) return;
    this.contactAlarmed = true;
    out.alerts.push({
      kind: 'ecg-intermittent-contact',
      severity: 2,
      t: endMs,
      sensor: this.sensor,
      message: `ECG electrode contact lost ${losses} times in ${seconds} s, too often for heart rate and rhythm analysis: no heart rate and no rhythm alarm while it goes on. Reattach or replace the electrodes. This is a contact alarm: the lead between the losses shows signal (up to ${largestMv.toFixed(1)} mV), but no rhythm could be analysed in it.`,
    });
  }

  private checkAsystole(endMs: number, out: EcgMonitorOutput): void {
    if (this.leadOff || this.asystole || this.noBeatSinceMs === undefined) return;
    const quietSinceMs = this.quietSinceLeadBack(endMs);
    if (endMs - this.noBeatSinceMs >= this.options.asystoleMs || quietSinceMs !== undefined) {
      // Lead 2 shows the heart beating: no QRS on lead 1 for now, not an arrest (asked again every chunk).
      if (this.secondLead?.beating(endMs, endMs - this.options.asystoleMs)) {
        if (!this.holding) this.heldBySecondLead += 1;
        this.holding = true;
        return;
      }
      this.asystole = true;
      // Detections from now on must be credible QRS complexes again before they count.
      this.loseAcquisition();
      out.alerts.push({
        kind: 'ecg-no-beats',
        severity: 3,
        t: endMs,
        sensor: this.sensor,
        // The time it has really lasted: since the last heartbeat, or since the lead was back (a quiet lead: what
        // was detected on it since was not a QRS complex).
        message: `No QRS complex detected for ${Math.round((endMs - (quietSinceMs ?? this.silentSinceMs)) / 1000)} s on a connected lead${
          this.pacePulsesSinceBeat > 0 ? `, though ${this.pacePulsesSinceBeat} sharp spike${this.pacePulsesSinceBeat > 1 ? 's' : ''} (pacemaker pulses or artefact) came without a QRS after ${this.pacePulsesSinceBeat > 1 ? 'them' : 'it'}` : ''
        }; check the patient now (${DECISION_SUPPORT}).`,
      });
    }
  }

  /**
   * The time of the lead-back (ms) when the lead has been back `asystoleMs` with no sure heartbeat
   * (`heartbeatAt`) and nothing on it as large as a QRS complex (`QUIET_LEAD`), else undefined; asked
   * once per lead-back, at the first chunk end `asystoleMs` after it.
   */
  private quietSinceLeadBack(endMs: number): number | undefined {
    const from = this.quietCheckFromMs;
    if (from === undefined || endMs - from < this.options.asystoleMs) return undefined;
    this.quietCheckFromMs = undefined;
    return (this.deflection as LeadDeflection).largestSince(from) < QUIET_LEAD.belowMv ? from : undefined;
  }

  private report(tMs: number, out: EcgMonitorOutput): void {
    const q = this.qualityNow();
    const counts = this.counts;
    this.counts = new Map();
    const probability = this.ectopicProbability;
    this.ectopicProbability = 0;
    if (this.leadOff || !this.acquired || this.rrMs.length < 4) return;
    const sorted = [...this.rrMs].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1] as number;
    const bpm = Math.round(60_000 / median);
    out.readings.push({ sensor: this.sensor, type: 'heart-rate', value: bpm, unit: '/min', tDevice: tMs, context: { method: 'ecg-qrs' } });
    // Input quality: share of RR intervals within 20 % of the median (1 = steady detection), capped by the signal quality.
    const steady = this.rrMs.filter((rr) => Math.abs(rr - median) <= 0.2 * median).length / this.rrMs.length;
    out.findings.push({
      sensor: this.sensor,
      kind: 'ecg-rate',
      label: bpm < 50 ? 'slow' : bpm > 100 ? 'fast' : 'normal-range',
      value: bpm,
      probability: 1,
      t: tMs,
      intervalStart: Math.round(tMs - this.rrMs.reduce((a, b) => a + b, 0)),
      intervalEnd: Math.round(tMs),
      evidence: `median of ${this.rrMs.length} RR intervals`,
      modelId: QRS_MODEL_ID,
      modelSha256: QRS_MODEL_SHA256,
      inputQuality: Math.round(Math.min(steady, q.quality) * 100) / 100,
      qualityFlags: q.flags,
    });
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    if (total === 0) return;
    const v = counts.get('V') ?? 0;
    const s = counts.get('S') ?? 0;
    out.findings.push({
      sensor: this.sensor,
      kind: 'ecg-beat-classes',
      label: v > 0 && s > 0 ? 'ventricular-and-supraventricular-ectopy' : v > 0 ? 'ventricular-ectopy' : s > 0 ? 'supraventricular-ectopy' : 'no-ectopy',
      value: v + s,
      probability: v + s > 0 ? Math.round(probability * 1000) / 1000 : 1,
      t: tMs,
      intervalStart: Math.round(tMs - this.options.readingIntervalMs),
      intervalEnd: Math.round(tMs),
      evidence: AAMI_CLASSES.map((c) => `${c} ${counts.get(c) ?? 0}`).join(', '),
      ...this.modelProvenance(),
      inputQuality: q.quality,
      qualityFlags: q.flags,
    });
  }
}
