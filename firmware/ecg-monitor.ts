import { canonicalJson, sha256Hex } from '../device-sdk/security/signing.js';
import { DEFAULT_AF_OPTIONS, AfDetector, type AfEvent, AtrialActivity } from '../device-sdk/signal/ecg/af-detector.js';
import { type BeatClassifier, classInRhythm, classOf, RULE_CLASSIFIER_ID, ruleBasedClass } from '../device-sdk/signal/ecg/beat-classes.js';
import { AAMI_CLASSES, type AamiClass, type BeatFeatures } from '../device-sdk/signal/ecg/beat-features.js';
import { EcgFrontEnd } from '../device-sdk/signal/ecg/front-end.js';
import { DEFAULT_QRS_OPTIONS } from '../device-sdk/signal/ecg/qrs-detector.js';
import { SignalQuality, type SignalQualityWindow } from '../device-sdk/signal/ecg/signal-quality.js';
import type { Alert, Finding, Reading, StreamChunk } from '../device-sdk/records.js';

export interface EcgMonitorOptions {
  /** A heart-rate reading (and rate and beat-class findings) is stored this often (ms of signal). */
  readingIntervalMs: number;
  /** No beat for this long on a connected lead: asystole alert (severity 3). */
  asystoleMs: number;
  /** Peak-to-peak below this (mV) for `leadOffMs`: lead-off alert (severity 2). */
  flatMv: number;
  leadOffMs: number;
  /** Consecutive V beats at a rate above `ventricularRunBpm`: ventricular run alert (severity 2). */
  ventricularRunBeats: number;
  ventricularRunBpm: number;
  /** A ventricular run lasting this long: sustained run alert (severity 3). */
  sustainedRunMs: number;
}

export const DEFAULT_ECG_MONITOR_OPTIONS: Readonly<EcgMonitorOptions> = Object.freeze({
  readingIntervalMs: 5_000,
  asystoleMs: 4_000,
  flatMv: 0.05,
  leadOffMs: 2_000,
  ventricularRunBeats: 3,
  ventricularRunBpm: 100,
  sustainedRunMs: 30_000,
});

/** Gaps up to this long (s) are bridged rather than restarting the analysis (well under the lead-off time). */
const MAX_BRIDGE_S = 1;

export const QRS_MODEL_ID = 'algo:qrs-detector@1';
/** Provenance of findings: the hash of the detector's parameters. */
export const QRS_MODEL_SHA256 = sha256Hex(canonicalJson(DEFAULT_QRS_OPTIONS));
export const AF_MODEL_ID = 'algo:af-rr-irregularity@2';
export const AF_MODEL_SHA256 = sha256Hex(canonicalJson(DEFAULT_AF_OPTIONS));
const RULES_SHA256 = sha256Hex(canonicalJson({ id: RULE_CLASSIFIER_ID }));

export interface EcgMonitorOutput {
  readings: Reading[];
  findings: Finding[];
  alerts: Alert[];
}

const DECISION_SUPPORT = 'decision support, review by a clinician';

/**
 * The live ECG path of the runtime for one sensor: stream chunks in (channel 0); QRS detection, beat
 * features, beat classes (the model in an inference worker when one is given, coarse rules otherwise),
 * AF detection and a signal quality index; out: heart-rate readings, rate, beat-class and AF findings
 * (each with its input quality and quality flags), and local alerts in three severities: ventricular
 * run (2) and sustained ventricular run (3), AF onset (2), asystole (3), lead off (2).
 *
 * Driven by the chunks' own sample clock, so it runs the same on a board, in replay and in tests.
 * Classification is asynchronous: beats are batched to the classifier and what follows from their
 * classes comes out of a later `push` (or `drain`). Alerts fire once per episode and re-arm when the
 * condition clears. Wording is decision support, never a diagnosis.
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
  private lastBeatSample: number | undefined;
  private readonly rrMs: number[] = [];
  private nextReadingMs = 0;
  private flatSinceMs: number | undefined;
  private leadOff = false;
  private asystole = false;
  /** Stream generation: results of a classification started on an older stream are dropped. */
  private generation = 0;
  private queue: BeatFeatures[] = [];
  private inflight: Promise<void> | undefined;
  private readonly ready: EcgMonitorOutput = { readings: [], findings: [], alerts: [] };
  private counts = new Map<AamiClass, number>();
  private ectopicProbability = 0;
  private run: { start: number; beats: number; lastSample: number; alerted: 0 | 2 | 3 } | undefined;

  constructor(sensor: string, options: Partial<EcgMonitorOptions> = {}, classifier?: BeatClassifier) {
    this.sensor = sensor;
    this.options = { ...DEFAULT_ECG_MONITOR_OPTIONS, ...options };
    this.classifier = classifier;
  }

  /** Called when the model fails and the monitor falls back to the rules. */
  onClassifierError: ((reason: string) => void) | undefined;

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

  /** The last sample seen (what a bridged gap holds). */
  private lastValue = 0;

  /** Device time (ms) of a sample index of the current stream. */
  private timeOf(sample: number): number {
    return this.t0 + ((sample - this.firstSample) * 1000) / this.rateHz;
  }

  push(chunk: StreamChunk): EcgMonitorOutput {
    const out = this.takeReady();
    if (chunk.channel !== 0 || chunk.samples.length === 0) return out;
    // A short gap (frames lost to corruption: tens of ms) is bridged by holding the last value, so
    // beat timing and the rhythm history survive it; a longer one starts afresh (below).
    const expected = this.firstSample + this.samplesSeen;
    const gap = chunk.firstSample - expected;
    if (this.frontEnd && chunk.rateHz === this.rateHz && gap > 0 && gap <= Math.round(this.rateHz * MAX_BRIDGE_S)) {
      const bridged = this.push({ ...chunk, firstSample: expected, t0: this.timeOf(expected), samples: new Int16Array(gap).fill(this.lastValue) });
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
    const wasLeadOff = this.leadOff;
    this.checkLeadOff(chunk, endMs, out);
    // Electrodes put back on may sit elsewhere or the other way round: the references (dominant beat,
    // lead polarity, rhythm) are learnt afresh, as for a new stream.
    if (wasLeadOff && !this.leadOff) this.restart(chunk);
    const frontEnd = this.frontEnd as EcgFrontEnd;
    (this.quality as SignalQuality).push(chunk.samples, chunk.gain);
    const atrial = this.atrial as AtrialActivity;
    atrial.pushSamples(chunk.samples);
    const beats = frontEnd.push(chunk.samples);
    for (const b of beats) this.atrialOf.set(b.sample, atrial.beat(b.sample));
    const detected = frontEnd.lastDetectedSample;
    if (detected !== undefined && (this.lastBeatSample === undefined || this.firstSample + detected !== this.lastBeatSample)) {
      this.lastBeatSample = this.firstSample + detected;
      this.asystole = false;
    }
    for (const b of beats) {
      if (b.rrPre > 0) {
        this.rrMs.push(b.rrPre * 1000);
        if (this.rrMs.length > 16) this.rrMs.shift();
      }
    }
    this.classify(beats, out);
    this.samplesSeen += chunk.samples.length;
    this.lastValue = chunk.samples[chunk.samples.length - 1] as number;
    this.checkAsystole(endMs, out);
    if (endMs >= this.nextReadingMs) {
      this.nextReadingMs = endMs + this.options.readingIntervalMs;
      this.report(endMs, out);
    }
    return out;
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

  private restart(chunk: StreamChunk): void {
    this.generation += 1;
    this.frontEnd = new EcgFrontEnd({ fs: chunk.rateHz });
    this.quality = new SignalQuality({ fs: chunk.rateHz });
    this.af = new AfDetector({ fs: chunk.rateHz });
    this.atrial = new AtrialActivity({ fs: chunk.rateHz });
    this.atrialOf.clear();
    this.rateHz = chunk.rateHz;
    this.t0 = chunk.t0;
    this.firstSample = chunk.firstSample;
    this.samplesSeen = 0;
    this.lastBeatSample = undefined;
    this.rrMs.length = 0;
    this.queue = [];
    this.run = undefined;
    this.counts.clear();
    this.nextReadingMs = chunk.t0 + this.options.readingIntervalMs;
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
          // The model failed: fall back to the rules for these and later beats; the reason is kept.
          this.classifierError = (error as Error).message;
          this.classifier = undefined;
          this.onClassifierError?.(this.classifierError);
          if (generation === this.generation) for (const b of batch) this.onClassified(b, ruleBasedClass(b.features), 1, this.ready);
        },
      )
      .finally(() => {
        this.inflight = undefined;
        this.pump();
      });
  }

  private qualityNow(): SignalQualityWindow {
    return this.quality?.current() ?? { quality: 1, flags: [], noise: 0, wander: 0 };
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
    const sample = this.firstSample + beat.sample;
    const t = this.timeOf(sample);
    // Ventricular runs.
    if (cls === 'V') {
      const run = this.run ?? { start: sample, beats: 0, lastSample: sample, alerted: 0 };
      run.beats += 1;
      run.lastSample = sample;
      this.run = run;
      const durationMs = ((run.lastSample - run.start) * 1000) / this.rateHz;
      const bpm = run.beats > 1 ? (60_000 * (run.beats - 1)) / durationMs : 0;
      if (run.alerted < 2 && run.beats >= this.options.ventricularRunBeats && bpm > this.options.ventricularRunBpm) {
        run.alerted = 2;
        this.runFinding(run, bpm, probability, q, out);
        out.alerts.push({ kind: 'ecg-ventricular-run', severity: 2, t, sensor: this.sensor, message: `${run.beats} consecutive beats classified ventricular at ${Math.round(bpm)} /min; check the patient (${DECISION_SUPPORT}).` });
      }
      if (run.alerted < 3 && run.alerted >= 2 && durationMs >= this.options.sustainedRunMs) {
        run.alerted = 3;
        this.runFinding(run, bpm, probability, q, out);
        out.alerts.push({ kind: 'ecg-sustained-ventricular-run', severity: 3, t, sensor: this.sensor, message: `Beats classified ventricular for ${Math.round(durationMs / 1000)} s at ${Math.round(bpm)} /min; check the patient now (${DECISION_SUPPORT}).` });
      }
    } else this.run = undefined;
  }

  private runFinding(run: NonNullable<EcgMonitor['run']>, bpm: number, probability: number, q: SignalQualityWindow, out: EcgMonitorOutput): void {
    out.findings.push({
      kind: 'ecg-ventricular-run',
      label: run.alerted === 3 ? 'sustained-ventricular-run-suspected' : 'ventricular-run-suspected',
      value: Math.round(bpm),
      probability: Math.round(probability * 1000) / 1000,
      t: this.timeOf(run.lastSample),
      intervalStart: Math.round(this.timeOf(run.start)),
      intervalEnd: Math.round(this.timeOf(run.lastSample)),
      evidence: `${run.beats} consecutive V beats (samples ${run.start}-${run.lastSample})`,
      ...this.modelProvenance(),
      inputQuality: q.quality,
      qualityFlags: q.flags,
    });
  }

  /** The AF detector's atrial organisation now, for the evidence text. */
  private afAtrial(): string {
    const a = (this.af as AfDetector).atrialOrganization;
    return Number.isFinite(a) ? `${a.toFixed(2)} (P waves repeat at >= ${DEFAULT_AF_OPTIONS.organizedAtrial})` : 'unknown';
  }

  private onAf(e: AfEvent, q: SignalQualityWindow, out: EcgMonitorOutput): void {
    const t = this.timeOf(this.firstSample + e.at);
    out.findings.push({
      kind: 'ecg-af',
      label: e.type === 'onset' ? 'af-suspected' : 'af-not-suspected',
      value: Math.round(e.irregularity * 1000) / 1000,
      probability: 1,
      t,
      intervalStart: Math.round(this.timeOf(this.firstSample + e.sample)),
      intervalEnd: Math.round(t),
      evidence: `RR irregularity ${e.irregularity.toFixed(3)} of N-N intervals (beats classified by ${this.classifierId}); pre-QRS atrial correlation ${this.afAtrial()}`,
      modelId: AF_MODEL_ID,
      modelSha256: AF_MODEL_SHA256,
      inputQuality: q.quality,
      qualityFlags: q.flags,
    });
    if (e.type === 'onset' && q.quality >= 0.5) {
      out.alerts.push({ kind: 'ecg-af-onset', severity: 2, t, sensor: this.sensor, message: `Irregular RR intervals suggesting atrial fibrillation since ${Math.round((t - this.timeOf(this.firstSample + e.sample)) / 1000)} s; record a 12-lead ECG (${DECISION_SUPPORT}).` });
    }
  }

  private checkLeadOff(chunk: StreamChunk, endMs: number, out: EcgMonitorOutput): void {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const v of chunk.samples) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const flat = (max - min) / (chunk.gain || 1) < this.options.flatMv;
    if (!flat) {
      this.flatSinceMs = undefined;
      this.leadOff = false;
      return;
    }
    this.flatSinceMs ??= chunk.t0;
    if (!this.leadOff && endMs - this.flatSinceMs >= this.options.leadOffMs) {
      this.leadOff = true;
      out.alerts.push({ kind: 'ecg-lead-off', severity: 2, t: endMs, sensor: this.sensor, message: 'ECG signal is flat: check the electrodes (lead off?).' });
    }
  }

  private checkAsystole(endMs: number, out: EcgMonitorOutput): void {
    if (this.leadOff || this.asystole || this.lastBeatSample === undefined) return;
    if (endMs - this.timeOf(this.lastBeatSample) >= this.options.asystoleMs) {
      this.asystole = true;
      out.alerts.push({
        kind: 'ecg-no-beats',
        severity: 3,
        t: endMs,
        sensor: this.sensor,
        message: `No QRS complex detected for ${Math.round(this.options.asystoleMs / 1000)} s on a connected lead; check the patient now (${DECISION_SUPPORT}).`,
      });
    }
  }

  private report(tMs: number, out: EcgMonitorOutput): void {
    const q = this.qualityNow();
    const counts = this.counts;
    this.counts = new Map();
    const probability = this.ectopicProbability;
    this.ectopicProbability = 0;
    if (this.leadOff || this.rrMs.length < 4) return;
    const sorted = [...this.rrMs].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1] as number;
    const bpm = Math.round(60_000 / median);
    out.readings.push({ sensor: this.sensor, type: 'heart-rate', value: bpm, unit: '/min', tDevice: tMs, context: { method: 'ecg-qrs' } });
    // Input quality: share of RR intervals within 20 % of the median (1 = steady detection), capped by the signal quality.
    const steady = this.rrMs.filter((rr) => Math.abs(rr - median) <= 0.2 * median).length / this.rrMs.length;
    out.findings.push({
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
