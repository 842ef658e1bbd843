import { type Clock, type ClockTimer, systemClock } from '../../device-sdk/clock.js';

/** A virtual clock: `advance(ms)` fires due timers in time order, each seeing its own due time. */
export class VirtualClock implements Clock {
  private time = 0;
  private nextId = 0;
  private timers: { id: number; due: number; fn: () => void }[] = [];
  /** Added to every timer, to model a late event loop. */
  lateByMs = 0;
  constructor(private readonly wallOrigin = Date.UTC(2025, 0, 1)) {}
  now(): number {
    return this.wallOrigin + this.time;
  }
  monotonic(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): ClockTimer {
    const id = ++this.nextId;
    this.timers.push({ id, due: this.time + Math.max(0, ms) + this.lateByMs, fn });
    return { id };
  }
  clearTimeout(timer: ClockTimer): void {
    this.timers = this.timers.filter((t) => t.id !== timer.id);
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const next = this.timers.reduce<(typeof this.timers)[number] | undefined>(
        (best, t) => (t.due <= end && (best === undefined || t.due < best.due || (t.due === best.due && t.id < best.id)) ? t : best),
        undefined,
      );
      if (next === undefined) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = next.due;
      next.fn();
    }
    this.time = end;
  }
  get pending(): number {
    return this.timers.length;
  }
}

/**
 * The system clock, plus time that `skip(ms)` lets pass at once: `now()` and `monotonic()` jump
 * ahead by it, timers run in real time. For a driver that must see a long span go by (a 40 s unplug)
 * while a real pty, johnny-five and a simulated board run at their own real pace.
 */
export class SkippingClock implements Clock {
  private skipped = 0;
  now(): number {
    return Date.now() + this.skipped;
  }
  monotonic(): number {
    return performance.now() + this.skipped;
  }
  setTimeout(fn: () => void, ms: number): ClockTimer {
    return systemClock.setTimeout(fn, ms);
  }
  clearTimeout(timer: ClockTimer): void {
    systemClock.clearTimeout(timer);
  }
  skip(ms: number): void {
    this.skipped += ms;
  }
}
