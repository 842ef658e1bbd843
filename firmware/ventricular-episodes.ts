/**
 * Ventricular episodes from classified beats (pure: no I/O, no timers): what the ECG monitor's
 * ventricular alerts are raised from, once per episode.
 *
 * - An episode starts with a run: `runBeats` consecutive beats classified V at more than `runBpm`
 *   (event `run`).
 * - It lasts while runs keep coming: it ends when `rearmMs` pass without one, and only then can a new
 *   episode (and a new `run` event) start. Beats classified otherwise inside a ventricular rhythm
 *   (the classifier calls part of a flutter's waves N or S) do not end it.
 * - It becomes sustained (event `sustained`, once) when it has lasted `sustainedMs` and over the last
 *   `sustainedMs` the beats came at more than `runBpm` and at least `sustainedShare` of them were V
 *   beats in runs of two or more (isolated V beats, as in bigeminy, do not count).
 * Samples are sample indices of one stream at `fs`.
 */

export interface VentricularEpisodeOptions {
  fs: number;
  runBeats: number;
  runBpm: number;
  sustainedMs: number;
  sustainedShare: number;
  rearmMs: number;
}

export type VentricularEvent =
  | { type: 'run'; start: number; end: number; beats: number; bpm: number }
  | { type: 'sustained'; start: number; end: number; beats: number; ventricular: number; inRuns: number; bpm: number };

interface Beat {
  sample: number;
  v: boolean;
}

export class VentricularEpisodes {
  readonly options: VentricularEpisodeOptions;
  /** Beats of the last `sustainedMs`, plus the one before them (its class decides whether the first V is in a run). */
  private readonly recent: Beat[] = [];
  private run: { start: number; beats: number } | undefined;
  private episode: { start: number; lastRun: number; sustained: boolean } | undefined;

  constructor(options: VentricularEpisodeOptions) {
    this.options = { ...options };
  }

  private samples(ms: number): number {
    return (ms * this.options.fs) / 1000;
  }

  /** Whether an episode is going on (started and not yet re-armed). */
  get active(): boolean {
    return this.episode !== undefined;
  }

  push(sample: number, ventricular: boolean): VentricularEvent[] {
    const { runBeats, runBpm, sustainedMs, sustainedShare, rearmMs } = this.options;
    const events: VentricularEvent[] = [];
    this.recent.push({ sample, v: ventricular });
    const window = this.samples(sustainedMs);
    while (this.recent.length > 2 && (this.recent[1] as Beat).sample <= sample - window) this.recent.shift();
    if (this.episode && sample - this.episode.lastRun > this.samples(rearmMs)) this.episode = undefined;
    if (!ventricular) {
      this.run = undefined;
      return events;
    }
    const run = this.run ?? { start: sample, beats: 0 };
    run.beats += 1;
    this.run = run;
    const bpm = run.beats > 1 ? (60 * this.options.fs * (run.beats - 1)) / (sample - run.start) : 0;
    if (run.beats >= runBeats && bpm > runBpm) {
      if (this.episode) this.episode.lastRun = sample;
      else {
        this.episode = { start: run.start, lastRun: sample, sustained: false };
        events.push({ type: 'run', start: run.start, end: sample, beats: run.beats, bpm });
      }
    }
    const episode = this.episode;
    if (episode && !episode.sustained && sample - episode.start >= window) {
      const first = (this.recent[0] as Beat).sample > sample - window ? 0 : 1;
      const beats = this.recent.length - first;
      let ventricular = 0;
      let inRuns = 0;
      for (let i = first; i < this.recent.length; i++) {
        if (!(this.recent[i] as Beat).v) continue;
        ventricular += 1;
        if (this.recent[i - 1]?.v === true || this.recent[i + 1]?.v === true) inRuns += 1;
      }
      const rate = (beats * 60_000) / sustainedMs;
      if (rate > runBpm && inRuns >= sustainedShare * beats) {
        episode.sustained = true;
        events.push({ type: 'sustained', start: episode.start, end: sample, beats, ventricular, inRuns, bpm: rate });
      }
    }
    return events;
  }
}
