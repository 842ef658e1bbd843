/** Small pieces the simulated devices share: waits on an injected clock that can all be ended at once. */
import type { Clock, ClockTimer } from '../../device-sdk/clock.js';

/** Waits on `clock`; `wakeAll()` ends every pending wait early (stop, replug, a host command). */
export class ClockSleeper {
  private readonly sleepers = new Set<{ timer: ClockTimer; resolve: () => void }>();
  constructor(private readonly clock: Clock) {}

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: this.clock.setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
        resolve,
      };
      this.sleepers.add(sleeper);
    });
  }

  wakeAll(): void {
    for (const sleeper of this.sleepers) {
      this.clock.clearTimeout(sleeper.timer);
      sleeper.resolve();
    }
    this.sleepers.clear();
  }
}

/** `o` without its `undefined` properties, so that spreading it over defaults keeps the defaults. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
