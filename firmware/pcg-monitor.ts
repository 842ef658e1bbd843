/**
 * Heart-sound screening on the device: the `pcg-abnormal` model (models/pcg-abnormal) behind the
 * pure analysis of device-sdk/signal/pcg, for the CLI (`medge pcg classify`) and the runtime
 * (`PcgMonitor`, one per stethoscope sensor). Output is decision support, never a diagnosis.
 */
import { join } from 'node:path';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ModelManifest } from '../device-sdk/inference/artifacts.js';
import type { BackendName } from '../device-sdk/inference/backend.js';
import { InferenceError } from '../device-sdk/errors.js';
import { InferenceWorker, type InferenceWorkerOptions } from '../device-sdk/inference/worker.js';
import type { Finding, RaisedAlert, Reading, StreamChunk } from '../device-sdk/records.js';
import { analyzePcg, decidePcg, DEFAULT_PCG_SCREEN_OPTIONS, featureBatch, type PcgAnalysis, type PcgLabel, type PcgScreenOptions } from '../device-sdk/signal/pcg/screen.js';
import { PCG_FEATURE_COUNT } from '../device-sdk/signal/pcg/features.js';
import { canonicalJson, sha256Hex } from '../device-sdk/security/signing.js';
import { packageRoot } from './package-root.js';

export const PCG_MODEL_NAME = 'pcg-abnormal';
/**
 * Share of a recording's samples that may be no heart sound before it is unreadable, not screened: NaN or
 * infinite samples of a WAV file (read as 0, `medge pcg classify`), samples a live stethoscope sent while it
 * reported contact lost (`PcgMonitor`). 1% is 0.3 s of a 30 s recording, about one heart cycle.
 */
export const PCG_MAX_INVALID_SHARE = 0.01;
/** What screens a window without the model: segmentation, heart rate and quality, no murmur screen. */
export const PCG_FALLBACK_ID = 'algo:pcg-segmentation@1';
/** Provenance of the fallback's findings: the hash of its id and screen options, as the ECG rules have one. */
export const PCG_FALLBACK_SHA256 = sha256Hex(canonicalJson({ id: PCG_FALLBACK_ID, ...DEFAULT_PCG_SCREEN_OPTIONS }));

/** A loaded model's id and version, as findings name it. */
export function pcgModelId(model: PcgModel): string {
  return `${model.manifest.id}@${model.manifest.version}`;
}

/** The shipped model directory. */
export function pcgModelDir(): string {
  return join(packageRoot(), 'models', PCG_MODEL_NAME);
}

/** A loaded screen model: where it runs is the caller's choice (in process, or an `InferenceWorker`). */
export interface PcgModel {
  readonly manifest: ModelManifest;
  readonly sha256: string;
  readonly backend: BackendName;
  /** Abnormal probability of each standardised feature row (`rows` x feature count). */
  predict(batch: Float32Array, rows: number): Promise<Float32Array>;
  close(): Promise<void>;
}

interface ScreenInput {
  featureNames: string[];
  standardise: { mean: number[]; sd: number[] };
  workingRateHz: number;
  bandHz: [number, number];
  windowS: number;
  hopS: number;
}

function inputSpec(manifest: ModelManifest): ScreenInput {
  const input = manifest.input as unknown as Partial<ScreenInput>;
  if (!input.standardise || input.standardise.mean?.length !== PCG_FEATURE_COUNT || input.standardise.sd?.length !== PCG_FEATURE_COUNT) {
    throw new InferenceError(`model ${manifest.id} ${manifest.version} expects ${input.standardise?.mean?.length ?? '?'} features; this build computes ${PCG_FEATURE_COUNT}: retrain with npm run train:pcg`);
  }
  return input as ScreenInput;
}

/** Screen options from the model manifest (what the model was trained and evaluated with). */
export function screenOptions(manifest: ModelManifest): Partial<PcgScreenOptions> {
  const input = inputSpec(manifest);
  const t = manifest.thresholds;
  return {
    workingRateHz: input.workingRateHz,
    bandHz: input.bandHz,
    windowS: input.windowS,
    hopS: input.hopS,
    ...(t.minQuality !== undefined ? { minQuality: t.minQuality } : {}),
    ...(t.minSeconds !== undefined ? { minSeconds: t.minSeconds } : {}),
    ...(t.maxClipped !== undefined ? { maxClipped: t.maxClipped } : {}),
    ...(t.minContrast !== undefined ? { minContrast: t.minContrast } : {}),
  };
}

/** Loads the model in this thread (CLI, bench). TF.js is imported here, not by the runtime, whose models run in workers. */
export async function loadPcgModelInProcess(dir = pcgModelDir(), backend: BackendName = 'wasm'): Promise<PcgModel> {
  const { initBackend, tf } = await import('../device-sdk/inference/backend.js');
  const { loadModel } = await import('../device-sdk/inference/artifacts.js');
  const used = await initBackend(backend);
  const loaded = await loadModel(dir);
  inputSpec(loaded.manifest);
  const model: LayersModel = loaded.model;
  return {
    manifest: loaded.manifest,
    sha256: loaded.sha256,
    backend: used,
    predict: async (batch, rows) => {
      const x = tf.tensor2d(batch, [rows, PCG_FEATURE_COUNT]);
      const y = model.predict(x) as Tensor;
      const data = (await y.data()) as Float32Array;
      tf.dispose([x, y]);
      return data;
    },
    close: async () => {
      model.dispose();
    },
  };
}

/** Loads the model in an inference worker thread (the runtime), with the worker's deadlines (`DEFAULT_INFERENCE_WORKER_OPTIONS` merged with `options`). */
export async function loadPcgModelInWorker(dir = pcgModelDir(), backend: BackendName = 'wasm', options: Partial<InferenceWorkerOptions> = {}): Promise<PcgModel> {
  const worker = await InferenceWorker.start(dir, backend, options);
  // The runtime's lifetime is its sources' and timers'; an idle screen worker must not keep it alive.
  worker.unref();
  try {
    inputSpec(worker.manifest);
  } catch (error) {
    await worker.close();
    throw error;
  }
  return {
    manifest: worker.manifest,
    sha256: worker.sha256,
    backend: worker.backend,
    predict: async (batch, rows) => (await worker.predict(batch, [rows, PCG_FEATURE_COUNT])).data,
    close: () => worker.close(),
  };
}

export interface PcgResult {
  label: PcgLabel;
  /** Probability of `abnormal`; null when unreadable. */
  probability: number | null;
  heartRate: number | null;
  analysis: PcgAnalysis;
}

/** Screens one recording (mono, -1..1). */
export async function screenRecording(model: PcgModel, samples: Float32Array, rateHz: number): Promise<PcgResult> {
  const analysis = analyzePcg(samples, rateHz, screenOptions(model.manifest));
  const threshold = model.manifest.thresholds.abnormal ?? 0.5;
  if (!analysis.readable) return { ...decidePcg(analysis, [], threshold), analysis };
  const { mean, sd } = inputSpec(model.manifest).standardise;
  const probs = await model.predict(featureBatch(analysis.windows, mean, sd), analysis.windows.length);
  return { ...decidePcg(analysis, probs, threshold), analysis };
}

export interface PcgMonitorOptions {
  /** Seconds of signal screened at a time. */
  windowS: number;
  /** Probability of `abnormal` at or above which a severity-2 alert is raised (else the model's threshold gives severity 1). */
  warnProbability: number;
}

export const DEFAULT_PCG_MONITOR_OPTIONS: Readonly<PcgMonitorOptions> = Object.freeze({ windowS: 15, warnProbability: 0.8 });

/** What the stethoscope reported of a window's samples (the stream protocol's masks, §5.1) and how the window ended. */
interface WindowNotes {
  /** Samples of chunks flagged `leadOff` (contact lost: not heart sounds), and whether any chunk, status-only too, was. */
  leadOffSamples: number;
  leadOff: boolean;
  /** Samples of chunks flagged `saturated` (a sample at the ADC limit somewhere in each), and whether any chunk was. */
  saturatedSamples: number;
  saturated: boolean;
}

/** How the reason of a window closed by lost samples starts (`closeWindow`). */
const STREAM_GAP = 'a stream gap';

const NO_NOTES: Readonly<WindowNotes> = Object.freeze({ leadOffSamples: 0, leadOff: false, saturatedSamples: 0, saturated: false });

export interface PcgMonitorOutput {
  readings: Reading[];
  findings: Finding[];
  alerts: RaisedAlert[];
}

/**
 * The live heart-sound path for one sensor: chunks (channel 0) are collected into windows of
 * `windowS` seconds of the chunks' own sample clock; each full window is screened asynchronously
 * (features here, the model in the inference worker) and what it found is returned by the next
 * `push`, or by `take`/`flush`. Until the model is available (or when it was refused) windows yield
 * the heart rate and a quality finding only. An "abnormal heart sound" alert fires once per episode
 * and re-arms after a window screened normal.
 *
 * A window is also closed before it is full: by a stream gap or a rate change (a jump of `firstSample`:
 * the parts are screened separately, never spliced), and by `end()` (the stream ended: the caller saw
 * no chunk for a while, the source disconnected, the runtime stops). A partial window of at least the
 * model's `thresholds.minSeconds` is screened (its evidence says so); a shorter one gives an
 * `unreadable` finding flagged `too-short`, so that no recording goes unreported.
 *
 * Input quality, as `medge pcg classify` annotates a damaged WAV file: a window closed by a stream gap
 * (samples lost) is flagged `truncated`; chunks the stethoscope flagged with contact lost (its lead-off mask)
 * or saturation (a sample at its ADC limit: the screen's own clipping count only sees the int16 limit)
 * flag the window `lead-off` / `saturation` and the evidence says how many samples those chunks hold. A
 * window with more than `PCG_MAX_INVALID_SHARE` of its samples sent during contact loss is `unreadable`:
 * those samples are rubbing or room noise, not heart sounds (the device sends them as measured, §5.1).
 * Int16 samples cannot be NaN or infinite, the WAV reader's other flag.
 */
export class PcgMonitor {
  readonly sensor: string;
  private readonly options: PcgMonitorOptions;
  private model: PcgModel | undefined;
  private buffer: Float32Array[] = [];
  private buffered = 0;
  private rateHz = 0;
  private t0 = 0;
  private nextSample = -1;
  private notes: WindowNotes = { ...NO_NOTES };
  private readonly ready: PcgMonitorOutput[] = [];
  private pending: Promise<void> = Promise.resolve();
  private alerting = false;
  private provided = false;

  private readonly provider: (() => Promise<PcgModel | undefined>) | undefined;
  /** Called when the model fails on a window and the monitor goes on without it. */
  onModelError: ((reason: string, error: unknown) => void) | undefined;

  /**
   * `model`: a loaded model, or a function that loads one when the first window is ready (so that a
   * runtime that stops early never starts the inference worker); undefined: heart rate and quality only.
   */
  constructor(sensor: string, model: PcgModel | (() => Promise<PcgModel | undefined>) | undefined, options: Partial<PcgMonitorOptions> = {}) {
    this.sensor = sensor;
    if (typeof model === 'function') this.provider = model;
    else this.model = model;
    this.options = { ...DEFAULT_PCG_MONITOR_OPTIONS, ...options };
  }

  /** Installs (or removes) the screen model. */
  setModel(model: PcgModel | undefined): void {
    this.model = model;
  }

  /** Resolves when every window queued so far has been screened (tests, shutdown). */
  idle(): Promise<void> {
    return this.pending;
  }

  push(chunk: StreamChunk): PcgMonitorOutput | undefined {
    if (chunk.channel === 0 && chunk.samples.length > 0) {
      if (chunk.rateHz !== this.rateHz || chunk.firstSample !== this.nextSample) {
        // A gap or a new stream: what was buffered is screened on its own, not spliced to what follows.
        this.closeWindow(this.rateHz !== chunk.rateHz ? `the sample rate changed to ${chunk.rateHz} Hz` : `${STREAM_GAP} (sample ${this.nextSample} expected, ${chunk.firstSample} came)`);
        this.rateHz = chunk.rateHz;
      }
      if (this.buffered === 0) this.t0 = chunk.t0;
      this.note(chunk);
      this.nextSample = chunk.firstSample + chunk.samples.length;
      // Int16 ADC units to full scale -1..1 (the screen is level-independent; quality checks use full scale).
      this.buffer.push(Float32Array.from(chunk.samples, (v) => v / 32768));
      this.buffered += chunk.samples.length;
      if (this.buffered >= this.options.windowS * this.rateHz) this.closeWindow(undefined);
    } else if (chunk.channel === 0) this.note(chunk); // a status-only frame: its report belongs to the window under way
    return this.take();
  }

  /** Counts what the stethoscope reported of a chunk's samples into the window's notes. */
  private note(chunk: StreamChunk): void {
    if (chunk.leadOff) this.notes = { ...this.notes, leadOff: true, leadOffSamples: this.notes.leadOffSamples + chunk.samples.length };
    if (chunk.saturated) this.notes = { ...this.notes, saturated: true, saturatedSamples: this.notes.saturatedSamples + chunk.samples.length };
  }

  /**
   * The stream ended (`reason`, for the evidence): the partial window is screened, or reported too short.
   * What it gives comes out of a later `push`, `take` or `flush`. The next chunk starts a new window.
   */
  end(reason = 'the stream ended'): void {
    this.closeWindow(reason);
    this.nextSample = -1;
  }

  /** Ends the stream (`end`), waits for every queued window and returns what they gave. */
  async flush(reason?: string): Promise<PcgMonitorOutput | undefined> {
    this.end(reason);
    await this.idle();
    return this.take();
  }

  /** Queues the buffered samples for screening; `partial` says why a window closes before it is full. */
  private closeWindow(partial: string | undefined): void {
    if (this.buffered === 0) return;
    const window = new Float32Array(this.buffered);
    let at = 0;
    for (const b of this.buffer) {
      window.set(b, at);
      at += b.length;
    }
    const start = this.t0;
    const rate = this.rateHz;
    const notes = this.notes;
    // Samples lost at a gap cut the window short, as a WAV file cut short is (its `truncated` flag).
    const truncated = partial?.startsWith(STREAM_GAP) === true;
    this.buffer = [];
    this.buffered = 0;
    this.notes = { ...NO_NOTES };
    // A window that fails to screen must not stop the ones after it (nor reject into the runtime).
    this.pending = this.pending.then(() => this.screen(window, rate, start, partial, notes, truncated)).catch((error: unknown) => this.onModelError?.(`screening failed: ${(error as Error).message}`, error));
  }

  /** What the windows screened so far gave, or undefined when nothing is ready. */
  take(): PcgMonitorOutput | undefined {
    if (this.ready.length === 0) return undefined;
    const out: PcgMonitorOutput = { readings: [], findings: [], alerts: [] };
    for (const o of this.ready.splice(0)) {
      out.readings.push(...o.readings);
      out.findings.push(...o.findings);
      out.alerts.push(...o.alerts);
    }
    return out;
  }

  private async screen(window: Float32Array, rateHz: number, t0: number, partial: string | undefined, notes: WindowNotes, truncated: boolean): Promise<void> {
    const out: PcgMonitorOutput = { readings: [], findings: [], alerts: [] };
    const tEnd = t0 + (window.length * 1000) / rateHz;
    const durationS = window.length / rateHz;
    const inputFlags = [...(truncated ? ['truncated'] : []), ...(notes.leadOff ? ['lead-off'] : []), ...(notes.saturated ? ['saturation'] : [])];
    const reported = [
      ...(notes.leadOff ? [`contact lost (the stethoscope's lead-off report) in chunks holding ${notes.leadOffSamples} of ${window.length} samples`] : []),
      ...(notes.saturated ? [`saturation (a sample at the stethoscope's ADC limit) reported in chunks holding ${notes.saturatedSamples} of ${window.length} samples`] : []),
    ]
      .map((r) => `; ${r}`)
      .join('');
    const noContact = notes.leadOffSamples > PCG_MAX_INVALID_SHARE * window.length;
    const minSeconds = this.model?.manifest.thresholds.minSeconds ?? DEFAULT_PCG_SCREEN_OPTIONS.minSeconds;
    // Too short to say anything, or not heart sounds: not screened (no model load for it), reported with why, not silently dropped.
    const why =
      partial !== undefined && durationS < minSeconds
        ? { evidence: `too short: ${durationS.toFixed(1)} s of heart sounds before ${partial}; at least ${minSeconds} s are needed to screen${reported}`, flags: ['too-short', ...inputFlags] }
        : noContact
          ? { evidence: `not screened: more than ${PCG_MAX_INVALID_SHARE * 100}% of the ${durationS.toFixed(1)} s came while the stethoscope reported contact lost${reported}${partial !== undefined ? `; partial window: closed by ${partial}` : ''}`, flags: inputFlags }
          : undefined;
    if (why !== undefined) {
      out.findings.push({
        sensor: this.sensor,
        kind: 'heart-sound-screen',
        label: 'unreadable',
        probability: 0,
        t: tEnd,
        intervalStart: Math.round(t0),
        intervalEnd: Math.round(tEnd),
        evidence: why.evidence,
        modelId: this.model ? pcgModelId(this.model) : PCG_FALLBACK_ID,
        modelSha256: this.model?.sha256 ?? PCG_FALLBACK_SHA256,
        inputQuality: 0,
        qualityFlags: why.flags,
      });
      this.ready.push(out);
      return;
    }
    if (!this.model && this.provider && !this.provided) {
      this.provided = true;
      this.model = await this.provider();
    }
    let model = this.model;
    let result: { label: PcgLabel; probability: number | null; heartRate: number | null; analysis: PcgAnalysis };
    try {
      if (model) result = await screenRecording(model, window, rateHz);
      else {
        const analysis = analyzePcg(window, rateHz);
        result = { ...decidePcg(analysis, [], 0.5), analysis };
      }
    } catch (error) {
      // The worker failed (crashed, or stopped answering): keep monitoring without the model; this window's
      // finding names the fallback, which is what screened it.
      this.model = undefined;
      model = undefined;
      this.onModelError?.((error as Error).message, error);
      const analysis = analyzePcg(window, rateHz);
      result = { ...decidePcg(analysis, [], 0.5), analysis };
    }
    const q = result.analysis.quality;
    if (result.heartRate !== null && result.analysis.readable) {
      out.readings.push({ sensor: this.sensor, type: 'heart-rate', value: result.heartRate, unit: '/min', tDevice: tEnd, context: { method: 'pcg-s1' } });
    }
    const screened = model !== undefined && result.label !== 'unreadable';
    const finding: Finding = {
      sensor: this.sensor,
      kind: 'heart-sound-screen',
      label: screened ? result.label : result.analysis.readable ? 'not-screened' : 'unreadable',
      ...(result.heartRate !== null ? { value: result.heartRate } : {}),
      probability: result.probability ?? 0,
      t: tEnd,
      intervalStart: Math.round(t0),
      intervalEnd: Math.round(tEnd),
      evidence: `${screened ? 'probability: of an abnormal recording (murmur or extra sound), whatever the label; ' : ''}${result.analysis.segmentation.cycles.length} S1/S2 cycles in ${q.durationS.toFixed(1)} s; ${result.analysis.windows.length} feature window(s)${q.mainsHz.length ? `; mains hum removed at ${q.mainsHz.join(', ')} Hz` : ''}${reported}${partial !== undefined ? `; partial window (${q.durationS.toFixed(1)} of ${this.options.windowS} s): closed by ${partial}` : ''}`,
      modelId: model ? pcgModelId(model) : PCG_FALLBACK_ID,
      modelSha256: model?.sha256 ?? PCG_FALLBACK_SHA256,
      inputQuality: q.score,
      // Mains hum that was found and subtracted is annotated, not silently fixed; so is what the stream reported.
      ...(q.flags.length || q.mainsHz.length || inputFlags.length ? { qualityFlags: [...q.flags, ...(q.mainsHz.length ? ['mains-hum-removed'] : []), ...inputFlags] } : {}),
    };
    out.findings.push(finding);
    if (screened && result.label === 'abnormal' && !this.alerting) {
      this.alerting = true;
      const p = result.probability ?? 0;
      out.alerts.push({
        kind: 'pcg-abnormal-heart-sound',
        severity: p >= this.options.warnProbability ? 2 : 1,
        t: tEnd,
        sensor: this.sensor,
        message: `Heart sounds suggest a murmur or an extra sound (screen probability ${Math.round(p * 100)} %); decision support only: have a clinician auscultate and consider referral.`,
        finding,
      });
    } else if (screened && result.label === 'normal') this.alerting = false;
    this.ready.push(out);
  }
}
