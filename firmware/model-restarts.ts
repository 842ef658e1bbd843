import type { Logger } from '../device-sdk/log.js';
import type { Clock, ClockTimer } from '../device-sdk/clock.js';
import { InferenceTimeoutError } from '../device-sdk/errors.js';

/** The advice of an `analysis-degraded` alert for a model that was refused, crashed or will not be restarted. */
export const INSTALL_SIGNED_MODEL = 'A technician should install a model signed by a trusted key.';

/**
 * Restarts of a model whose inference worker stopped answering (`InferenceTimeoutError`: the worker was
 * stopped, the analysis is on its rules): the i-th restart comes `delaysMs[i]` after the hang, at most
 * `delaysMs.length` per runtime start, so a model that hangs every time raises at most that many more
 * `analysis-degraded` alerts, hours apart, and then stays on the rules until the runtime restarts. A crash
 * or a refused model is not restarted (a technician must act), nor anything once the analysis is closed.
 */
export const DEFAULT_MODEL_RESTARTS: Readonly<{ delaysMs: readonly number[] }> = Object.freeze({ delaysMs: Object.freeze([60_000, 600_000, 3_600_000]) });

const duration = (ms: number) => (ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`);

/** The restart schedule of one analysis's model (`DEFAULT_MODEL_RESTARTS`); `restart` reloads the model. */
export class ModelRestarts {
  private used = 0;
  private timer: ClockTimer | undefined;
  private closed = false;

  constructor(
    private readonly delaysMs: readonly number[],
    private readonly clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>,
    private readonly logger: Pick<Logger, 'info'>,
    private readonly analyzer: string,
    private readonly restart: () => void,
  ) {}

  /** The model failed with `error` (while running or reloading): schedules a restart when it hung and restarts are left; returns the alert's advice. */
  failed(error: unknown): string {
    if (!(error instanceof InferenceTimeoutError)) return INSTALL_SIGNED_MODEL;
    const delay = this.delaysMs[this.used];
    if (this.timer === undefined && !this.closed && delay !== undefined) {
      this.used += 1;
      this.logger.info({ analysis: this.analyzer, restart: this.used, of: this.delaysMs.length, inMs: delay }, 'model worker stopped answering; restart scheduled');
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        if (!this.closed) this.restart();
      }, delay);
      return `The model is restarted in ${duration(delay)} (restart ${this.used} of ${this.delaysMs.length} since the runtime started); if it keeps stopping, a technician should check the board's load and the model.`;
    }
    return `It is not restarted again until the device runtime restarts; a technician should check the board's load and the model.`;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

