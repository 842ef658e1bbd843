import type { Clock } from '../device-sdk/clock.js';
import type { Alert, StreamChunk } from '../device-sdk/records.js';

export interface SignalWatchdogOptions {
  /** Silence after the last chunk that counts as a lost signal (ms). */
  lostAfterMs: number;
  /** Silence from the start before the first chunk that counts as lost (a device may take a while to connect). */
  firstChunkWithinMs: number;
}

export const DEFAULT_SIGNAL_WATCHDOG_OPTIONS: Readonly<SignalWatchdogOptions> = Object.freeze({ lostAfterMs: 5000, firstChunkWithinMs: 30_000 });

export const ECG_SIGNAL_LOST = 'ecg-signal-lost';
export const ECG_SIGNAL_RESTORED = 'ecg-signal-restored';

interface Watched {
  /** Monotonic time (ms) of the last chunk, or of the start before the first. */
  lastAt: number;
  seenAny: boolean;
  /** Monotonic time of the last chunk when the signal was declared lost. */
  lostSince: number | undefined;
}

/**
 * A technical alarm for monitored ECG sensors that stop sending (cable pulled, device off, radio
 * gone): the asystole and lead-off checks run on samples, so a sensor that sends nothing raised
 * nothing. One `ecg-signal-lost` alert (severity 2) per episode, and an `ecg-signal-restored` note
 * (severity 1) when samples come again. Silence is measured on the monotonic clock (the wall clock of a
 * board without a battery steps at its first NTP sync); alerts are dated by the device's wall clock.
 * The runtime calls `seen` per chunk and `check` on a timer.
 */
export class SignalWatchdog {
  private readonly watched = new Map<string, Watched>();
  private readonly options: SignalWatchdogOptions;

  constructor(
    sensors: readonly string[],
    private readonly clock: Pick<Clock, 'now' | 'monotonic'>,
    options: Partial<SignalWatchdogOptions> = {},
  ) {
    this.options = { ...DEFAULT_SIGNAL_WATCHDOG_OPTIONS, ...options };
    const start = clock.monotonic();
    for (const s of sensors) this.watched.set(s, { lastAt: start, seenAny: false, lostSince: undefined });
  }

  /** A chunk of `sensor` arrived; returns the restored note when its signal had been lost. */
  seen(sensor: string): Alert | undefined {
    const w = this.watched.get(sensor);
    if (!w) return undefined;
    const now = this.clock.monotonic();
    const lostSince = w.lostSince;
    w.lastAt = now;
    w.seenAny = true;
    w.lostSince = undefined;
    if (lostSince === undefined) return undefined;
    return {
      kind: ECG_SIGNAL_RESTORED,
      severity: 1,
      t: this.clock.now(),
      sensor,
      message: `ECG signal from sensor ${sensor} is back after ${seconds(now - lostSince)} s without samples; rhythm monitoring resumes.`,
    };
  }

  /**
   * A chunk of sensor `c.sensor` arrived: `seen` when it carries samples. A chunk with none (a front end's
   * status-only report) is no signal, with one exception: a report of lead-off on channel 0, the lead the
   * ECG monitor analyses and raises `ecg-lead-off` from, says the front end is there and why no samples
   * come, so it keeps a sensor that has not been declared lost from being declared lost (it does not end a
   * lost episode: rhythm monitoring has not resumed). A front end that sends only other reports is
   * monitoring nothing and is raised as lost.
   */
  chunk(c: Pick<StreamChunk, 'sensor' | 'channel' | 'samples' | 'leadOff'>): Alert | undefined {
    if (c.samples.length > 0) return this.seen(c.sensor);
    const w = this.watched.get(c.sensor);
    if (w && c.channel === 0 && c.leadOff && w.lostSince === undefined) {
      w.lastAt = this.clock.monotonic();
      w.seenAny = true;
    }
    return undefined;
  }

  /** Alerts for sensors silent for too long, once per episode. */
  check(): Alert[] {
    const now = this.clock.monotonic();
    const out: Alert[] = [];
    for (const [sensor, w] of this.watched) {
      if (w.lostSince !== undefined) continue;
      const limit = w.seenAny ? this.options.lostAfterMs : this.options.firstChunkWithinMs;
      if (now - w.lastAt <= limit) continue;
      w.lostSince = w.lastAt;
      out.push({
        kind: ECG_SIGNAL_LOST,
        severity: 2,
        t: this.clock.now(),
        sensor,
        message: w.seenAny
          ? `No ECG signal from sensor ${sensor} for ${seconds(now - w.lastAt)} s (disconnected or not sending): heart rhythm is not being monitored. Check the cable and the device.`
          : `No ECG signal from sensor ${sensor} since the device started ${seconds(now - w.lastAt)} s ago: heart rhythm is not being monitored. Check that the ECG device is on and connected.`,
      });
    }
    return out;
  }

  /** Stops watching (the sources were stopped on purpose). */
  clear(): void {
    this.watched.clear();
  }
}

const seconds = (ms: number) => Math.round(ms / 1000);
