/**
 * The source of time for everything that stamps, waits or backs off.
 *
 * Contract:
 * - `now()` is wall-clock milliseconds since the Unix epoch as the device believes it (may be wrong,
 *   may jump when the operator sets it). Stored rows carry it; it is never rewritten afterwards.
 * - `monotonic()` is milliseconds from an arbitrary origin that never goes backwards; use it for
 *   timeouts, rates and backoff.
 * - `setTimeout`/`clearTimeout` schedule on the same clock, so a virtual clock can run hours of
 *   signal in seconds deterministically.
 */
export interface Clock {
  now(): number;
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** Opaque handle returned by `Clock.setTimeout`. */
export interface ClockTimer {
  readonly id: unknown;
}

/** The process clock: `Date.now()`, `performance.now()` and Node timers (unref'd, so they never keep a process alive). */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn: () => void, ms: number): ClockTimer {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return { id: handle };
  },
  clearTimeout(timer: ClockTimer): void {
    clearTimeout(timer.id as NodeJS.Timeout);
  },
});
