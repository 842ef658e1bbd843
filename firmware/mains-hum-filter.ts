/**
 * Mains hum taken out of an ECG lead (pure: no I/O, no timers): one moving average a period of each mains
 * frequency long, one after the other (each nulls its frequency and its harmonics where the period is a whole
 * number of samples), then a notch at each mains frequency the averages leave more than `maxResidual` of (a
 * rate holding no whole period: at 128 Hz the 3- and 2-sample averages leave 6 % of 50 Hz and 20 % of 60 Hz;
 * at 250 and 360 Hz no notch is needed). The notch is three taps with zeros at exactly the frequency and unit
 * gain at DC. White noise shrinks (about half its SD at 128 Hz); a QRS complex keeps most of its size.
 *
 * The one hum filter of the ECG monitor: `LeadDeflection` streams it (the quiet-lead checks) and
 * `QrsCredibility.humFreeQrsMv` runs it over a detection's window, so both judge the same hum-free lead.
 */

export interface MainsHumFilterOptions {
  fs: number;
  /** Mains frequencies (Hz) to take out (both where a site's mains is not known). */
  mainsHz: readonly number[];
  /** Largest share of a mains frequency the moving averages may leave before a notch is added. */
  maxResidual: number;
}

export const DEFAULT_MAINS_HUM_FILTER_OPTIONS: Readonly<Omit<MainsHumFilterOptions, 'fs'>> = Object.freeze({
  mainsHz: Object.freeze([50, 60]),
  maxResidual: 0.02,
});

/**
 * Where `hz` shows up when sampled at `fs` (Hz, 0 to fs / 2). `MainsHumFilter` notches only mains below fs / 2 (a notch at
 * an alias of 60 Hz at 100 Hz sampling was broad enough to cut the QRS band and was taken back); `QrsCredibility`'s hum
 * fit places its sinusoids here.
 */
export function aliasHz(hz: number, fs: number): number {
  return Math.abs(hz - fs * Math.round(hz / fs));
}

/** The gain of a moving average `n` samples long at `hz` (sampling at `fs`). */
function averageGain(n: number, hz: number, fs: number): number {
  const den = n * Math.sin((Math.PI * hz) / fs);
  return den === 0 ? 1 : Math.abs(Math.sin((n * Math.PI * hz) / fs) / den);
}

export class MainsHumFilter {
  readonly options: MainsHumFilterOptions;
  /** Lengths (samples) of the moving averages, one per mains frequency. */
  readonly averages: readonly number[];
  /** The frequencies notched after the averages. */
  readonly notchedHz: readonly number[];
  /** Inputs taken before the first output (the filter's run-in). */
  readonly runIn: number;
  private readonly notchC: readonly number[];
  /** The last inputs of each moving average, and of each notch (at most 2). */
  private inputs: number[][] = [];
  private notchInputs: number[][] = [];

  constructor(options: Partial<MainsHumFilterOptions> & { fs: number }) {
    this.options = { ...DEFAULT_MAINS_HUM_FILTER_OPTIONS, ...options };
    const { fs, mainsHz, maxResidual } = this.options;
    this.averages = mainsHz.map((hz) => Math.max(1, Math.round(fs / hz)));
    this.notchedHz = mainsHz.filter((hz) => hz < fs / 2 && this.averages.reduce((g, n) => g * averageGain(n, hz, fs), 1) > maxResidual);
    this.notchC = this.notchedHz.map((hz) => 2 * Math.cos((2 * Math.PI * hz) / fs));
    this.runIn = this.averages.reduce((a, n) => a + n - 1, 0) + 2 * this.notchedHz.length;
    this.reset();
  }

  /** Starts afresh (contact lost, a new stream): the next `runIn` inputs give no output. */
  reset(): void {
    this.inputs = this.averages.map(() => []);
    this.notchInputs = this.notchC.map(() => []);
  }

  /** The next sample (mV) in; the next hum-free sample out, undefined during the run-in. */
  push(sample: number): number | undefined {
    let v: number | undefined = sample;
    for (let s = 0; s < this.averages.length && v !== undefined; s++) {
      const n = this.averages[s] as number;
      const input = this.inputs[s] as number[];
      input.push(v);
      if (input.length > n) input.shift();
      v = input.length === n ? input.reduce((a, b) => a + b, 0) / n : undefined;
    }
    for (let s = 0; s < this.notchC.length && v !== undefined; s++) {
      const c = this.notchC[s] as number;
      const input = this.notchInputs[s] as number[];
      input.push(v);
      if (input.length > 3) input.shift();
      v = input.length === 3 ? ((input[2] as number) - c * (input[1] as number) + (input[0] as number)) / (2 - c) : undefined;
    }
    return v;
  }

  /** `samples` (mV) through a fresh filter: `samples.length - runIn` hum-free samples (none when fewer). */
  static apply(samples: ArrayLike<number>, options: Partial<MainsHumFilterOptions> & { fs: number }): number[] {
    const filter = new MainsHumFilter(options);
    const out: number[] = [];
    for (let i = 0; i < samples.length; i++) {
      const v = filter.push(samples[i] as number);
      if (v !== undefined) out.push(v);
    }
    return out;
  }
}
