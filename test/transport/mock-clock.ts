import type { Clock, ClockTimer } from '../../device-sdk/clock.js';

interface Scheduled {
  timer: ClockTimer;
  at: number;
  seq: number;
  fn: () => void;
}

/** A virtual `Clock` for unit tests: time moves only in `advance()`, and pending timers can be counted. */
export class MockClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<unknown, Scheduled>();
  /** Every delay passed to `setTimeout`, in call order. */
  readonly delays: number[] = [];

  now(): number {
    return 1_700_000_000_000 + this.t;
  }

  monotonic(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const id = ++this.seq;
    const timer: ClockTimer = { id };
    this.delays.push(ms);
    this.timers.set(id, { timer, at: this.t + Math.max(0, ms), seq: id, fn });
    return timer;
  }

  clearTimeout(timer: ClockTimer): void {
    this.timers.delete(timer.id);
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      const next = [...this.timers.values()].filter((s) => s.at <= end).sort((x, y) => x.at - y.at || x.seq - y.seq)[0];
      if (!next) break;
      this.timers.delete(next.timer.id);
      this.t = next.at;
      next.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Lets every pending promise chain run (a macrotask turn after the microtask queue drained). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}
