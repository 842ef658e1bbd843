/**
 * Keeps one device link open (STYLE item 11): hot-plug is the normal path, not an error path.
 *
 * Lifecycle (`state`):
 *
 * ```
 *   idle --start()--> opening --ok--> open --disconnect--> backoff --timer--> opening ...
 *                        |                                    ^
 *                        +--open-failed-----------------------+
 *   any --stop()--> stopped   (final)
 * ```
 *
 * Contract:
 * - Every attempt calls `factory()` and opens what it returns: a fresh transport, or the same one
 *   again (transports can be reopened). A device that comes back at the same path is simply opened
 *   again. A factory that throws counts as a failed open.
 * - After a failed open or a disconnect the supervisor waits `backoffDelay(attempt)` (exponential,
 *   full jitter, `device-sdk/sync/backoff.ts`) on the injected clock, then tries again. `attempt`
 *   resets to 0 on every successful open. A disconnected transport is closed (its device released)
 *   before the wait starts.
 * - `stop()` cancels any wait, closes the current transport (an open in progress is canceled) and
 *   resolves once nothing of the supervisor is left: no timer, no open device. After `stop()` nothing
 *   is ever opened again, and `start()` throws.
 * - Events, in order for a replug: `disconnect`, `state('backoff')`, `retry` (per failed attempt),
 *   `state('opening')`, `state('open')`, `replug`, `open`. Consumers take the new transport from
 *   `open` (or `transport`) and re-attach their readers: each session is a new transport object.
 */
import { EventEmitter } from 'node:events';
import { type Clock, type ClockTimer, systemClock } from '../clock.js';
import { MedgeError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import type { Random } from '../random.js';
import { type BackoffOptions, backoffDelay } from '../sync/backoff.js';
import { type ByteTransport, TransportError } from './byte-transport.js';
import { messageOf } from './transport-base.js';

export type SupervisorState = 'idle' | 'opening' | 'open' | 'backoff' | 'stopped';

export interface TransportSupervisorOptions {
  /** Retry delays. Serial hot-plug wants a short first retry: a replugged adapter is back in ~1 s. */
  backoff: BackoffOptions;
  clock: Clock;
  random: Random;
  logger: Logger;
}

export const DEFAULT_TRANSPORT_SUPERVISOR_OPTIONS: Readonly<TransportSupervisorOptions> = Object.freeze({
  backoff: Object.freeze({ initialMs: 100, maxMs: 5_000 }),
  clock: systemClock,
  random: Math.random,
  logger: silentLogger,
});

export interface RetryInfo {
  /** Failures in a row so far (1 after the first). */
  attempt: number;
  delayMs: number;
  error: TransportError;
}

export interface TransportSupervisorEvents<T extends ByteTransport> {
  state: [state: SupervisorState];
  /** A transport is open (first time and after every reopen). */
  open: [transport: T];
  /** The open transport's device went away. */
  disconnect: [error: TransportError];
  /** A transport opened again after a disconnect; `count` is the number of replugs so far. */
  replug: [count: number];
  /** An open failed (or a disconnect happened) and the next attempt is due in `delayMs`. */
  retry: [info: RetryInfo];
}

export class TransportSupervisor<T extends ByteTransport = ByteTransport> extends EventEmitter<TransportSupervisorEvents<T>> {
  private readonly factory: () => T;
  private readonly options: TransportSupervisorOptions;
  private readonly log: Logger;
  private stateValue: SupervisorState = 'idle';
  private current: T | undefined;
  private attemptValue = 0;
  private replugCount = 0;
  private lostSinceOpen = false;
  private timer: ClockTimer | undefined;
  /** Closing of a disconnected transport, awaited before the next attempt and by `stop()`. */
  private releasing: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** Removes the `disconnect` listener from the open transport (a reused transport must not keep it). */
  private detach: (() => void) | undefined;

  constructor(factory: () => T, options: Partial<TransportSupervisorOptions> = {}) {
    super();
    this.factory = factory;
    this.options = { ...DEFAULT_TRANSPORT_SUPERVISOR_OPTIONS, ...options, backoff: { ...DEFAULT_TRANSPORT_SUPERVISOR_OPTIONS.backoff, ...options.backoff } };
    this.log = this.options.logger.child({ component: 'transport-supervisor' });
  }

  get state(): SupervisorState {
    return this.stateValue;
  }

  /** The open transport, or `undefined` while opening, in backoff or stopped. */
  get transport(): T | undefined {
    return this.stateValue === 'open' ? this.current : undefined;
  }

  /** How many times a transport was reopened after a disconnect. */
  get replugs(): number {
    return this.replugCount;
  }

  /** Failed attempts in a row (0 while open). */
  get attempt(): number {
    return this.attemptValue;
  }

  /** Starts opening. No-op unless `idle`; throws after `stop()`. */
  start(): void {
    if (this.stopping) throw new MedgeError('stopped', 'TransportSupervisor.start() after stop(): create a new supervisor');
    if (this.stateValue !== 'idle') return;
    this.run();
  }

  /** Stops for good; resolves when no timer is pending and no transport is open. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const transport = this.current;
    this.current = undefined;
    this.detach?.();
    this.detach = undefined;
    // Closing cancels an open in progress: attemptOpen sees `stopping` and returns.
    await Promise.all([transport?.close().catch(() => undefined), this.releasing]);
    this.setState('stopped');
    this.log.info('stopped');
  }

  /** One attempt; a transport that breaks its contract (a rejecting close) costs a retry, not the supervisor. */
  private run(): void {
    this.attemptOpen().catch((error: unknown) => {
      this.log.error({ err: error }, 'transport broke its contract');
      this.current = undefined;
      this.scheduleRetry(new TransportError('open-failed', 'supervisor', messageOf(error), { cause: error }));
    });
  }

  private async attemptOpen(): Promise<void> {
    if (this.stopping) return;
    this.setState('opening');
    let transport: T;
    try {
      transport = this.factory();
    } catch (error) {
      this.log.error({ err: error }, 'transport factory threw');
      this.scheduleRetry(new TransportError('open-failed', 'factory', `transport factory threw: ${messageOf(error)}`, { cause: error }));
      return;
    }
    this.current = transport;
    try {
      await transport.open();
    } catch (error) {
      if (this.stopping) return;
      this.current = undefined;
      await transport.close();
      if (this.stopping) return;
      const failure = error instanceof TransportError ? error : new TransportError('open-failed', transport.info.path, messageOf(error), { cause: error });
      this.log.debug({ path: transport.info.path, code: failure.code, attempt: this.attemptValue }, 'open failed');
      this.scheduleRetry(failure);
      return;
    }
    if (this.stopping) return;
    this.attemptValue = 0;
    const onDisconnect = (error: TransportError): void => this.onDisconnect(transport, error);
    transport.once('disconnect', onDisconnect);
    this.detach = () => transport.off('disconnect', onDisconnect);
    this.setState('open');
    this.log.info({ path: transport.info.path, kind: transport.info.kind }, 'transport open');
    if (this.lostSinceOpen) {
      this.lostSinceOpen = false;
      this.replugCount++;
      this.emit('replug', this.replugCount);
    }
    this.emit('open', transport);
  }

  private onDisconnect(transport: T, error: TransportError): void {
    if (this.stopping || transport !== this.current) return;
    this.log.warn({ path: transport.info.path, err: error }, 'transport disconnected');
    this.current = undefined;
    this.detach = undefined;
    this.lostSinceOpen = true;
    this.emit('disconnect', error);
    this.setState('backoff');
    const releasing = transport.close().catch(() => undefined);
    this.releasing = releasing;
    void releasing.then(() => {
      if (this.releasing === releasing) this.releasing = undefined;
      this.scheduleRetry(error);
    });
  }

  private scheduleRetry(error: TransportError): void {
    if (this.stopping) return;
    const delayMs = backoffDelay(this.attemptValue, this.options.backoff, this.options.random);
    this.attemptValue++;
    this.setState('backoff');
    this.emit('retry', { attempt: this.attemptValue, delayMs, error });
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.run();
    }, delayMs);
  }

  private setState(state: SupervisorState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.emit('state', state);
  }
}
