/**
 * Driver `firmata-ecg`: an AD8232-style single-lead ECG front end on an analog pin of a
 * microcontroller running Firmata (an Arduino with StandardFirmata), read through the `IoBoard`
 * seam (`../transport/firmata.ts`, johnny-five by default), with optional alarm outputs (LED,
 * buzzer) on digital pins that the runtime drives when it raises an alert (`AlarmOutput`).
 *
 * Steps: `open` (handshake; retried with backoff, also after an unplug) → `configure` (sampling
 * interval, analog reporting, alarm pins to the alarm state) → `stream` → `close`.
 *
 * Alarm outputs latch (IEC 60601-1-8 style): an alert of at least `alarmMinSeverity` is active from
 * when it was raised until it is acknowledged locally (the clinic screen; the runtime calls
 * `acknowledged(seq)`), or at most `ledMs` (default 24 h, so a forgotten alarm does not light
 * forever). While any alert is active the LED is lit. The buzzer sounds for `buzzerMs` when an alert
 * is raised, whenever the board (re)connects while one is active (its pins are low after the reset
 * StandardFirmata does at boot), and again every `reminderMs` (default 2 min; 0: never) after it last
 * sounded while an active alert of at least `reminderMinSeverity` (default 3, urgent) remains. An
 * acknowledgement silences the buzzer; the LED goes off when no active alert remains. After a runtime
 * restart the runtime hands the driver the unacknowledged alerts of the last `latchMs` from the ledger
 * (`restoreAlarms`), so the LED comes back on when the board connects.
 *
 * Conversion: the AD8232 output rides at mid-rail; the ADC reads 0..1023. A chunk's samples are
 * `adc - baseline` (int16), unit `mV`, `gain` ADC counts per mV at the electrodes (default 341:
 * 1 mV × 1100 (AD8232 total gain) = 1.1 V, and 3.3 V = 1023 counts). Standard Firmata samples at
 * most every 10 ms (100 Hz), enough for heart rate and screening, not diagnostic ECG.
 *
 * Stream indices: Firmata carries no sample counter, so the driver counts the values it receives.
 * After a disconnect it reports the samples it missed as a gap (`reason` `disconnected`) and
 * continues the index after it. The missed span is the signal between the last value before the
 * disconnect and the first value after it: the patient's ECG goes on while the board is unplugged,
 * while it resets (an Arduino resets when its port opens, ~0.5-2 s in its bootloader) and while the
 * host repeats the Firmata handshake, and the board samples again only once reporting is enabled.
 * So the gap is the sample slots between those two values, at the sampling period observed before
 * the disconnect (so it also holds when the simulator plays faster than real time), reported before
 * the first chunk after the replug. Values arrive late (serial link, event loop) and in bursts, never
 * early, so times are read off the board's sampling line through the least-delayed values of a
 * window (`SessionTiming`), not from single arrivals: a burst or a busy event loop does not bias the
 * period or the gap; what is left is the least delay within a window (well under a sample period on
 * an idle machine) and rounding.
 *
 * Sampling rate: a chunk's `rateHz` is the asked rate (1000 / `samplingIntervalMs`) unless the board
 * is measured to sample slower: a firmware that ignores SAMPLING_INTERVAL (older Firmata, other
 * sketches) keeps its own interval (StandardFirmata's default is 19 ms), and ECG labelled 100 Hz but
 * sampled at 52.6 Hz would read every heart rate 1.9 times too fast. So each session holds its first
 * values until `SessionTiming` has measured the period (`MIN_PERIOD_SPAN_MS` of values); a period more
 * than `SLOW_SAMPLING_TOLERANCE` above the asked one is logged as an error, said in the sensor state,
 * and the session's chunks carry the measured rate (the runtime then flags the unvalidated rate). A
 * faster board (the simulator at `speed` > 1) keeps the asked rate.
 */
import type { Clock, ClockTimer } from '../clock.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Alert } from '../records.js';
import { backoffDelay } from '../sync/backoff.js';
import type { TransportError } from '../transport/byte-transport.js';
import type { IoBoard, IoBoardFactory, IoBoardOptions } from '../transport/firmata.js';
import type { DriverDeps, DriverDescriptor, SensorDriver, SensorSink } from './types.js';

export interface FirmataAlarmPins {
  /** Digital pin of the alarm LED (e.g. 13, the Uno's on-board LED). */
  led?: number;
  /** Digital pin of an active buzzer (on = sounding). */
  buzzer?: number;
}

export interface FirmataEcgOptions {
  /** Serial port of the board, e.g. `/dev/ttyACM0`. */
  path: string;
  /** Analog channel of the ECG output (0 = A0). */
  pin: number;
  /** Firmata sampling interval (ms, >= 10): the sample rate is 1000 / interval. */
  samplingIntervalMs: number;
  /** Samples per chunk, as a duration. */
  chunkMs: number;
  /** ADC counts per mV at the electrodes. */
  gain: number;
  /** ADC value of 0 mV (the front end's reference, mid-rail). */
  baseline: number;
  /** Alarm outputs; `null`: none. */
  alarmPins: FirmataAlarmPins | null;
  /** Alerts of at least this severity sound the alarm. */
  alarmMinSeverity: 1 | 2 | 3;
  /** How long the buzzer sounds: when an alert is raised, when the board comes back while one is active, and at each reminder. */
  buzzerMs: number;
  /** The longest an unacknowledged alert stays active (LED lit, reminders) after it was raised: the latch's limit. */
  ledMs: number;
  /** The buzzer sounds again this long after it last sounded while an active alert of at least `reminderMinSeverity` remains; 0: no reminder. */
  reminderMs: number;
  /** Active alerts of at least this severity are sounded again every `reminderMs`. */
  reminderMinSeverity: 1 | 2 | 3;
  readyTimeoutMs: number;
  /** No value for this long while streaming = the board is gone. */
  staleMs: number;
  backoff: { initialMs: number; maxMs: number };
}

export const DEFAULT_FIRMATA_ECG_OPTIONS: Readonly<FirmataEcgOptions> = Object.freeze({
  path: '',
  pin: 0,
  samplingIntervalMs: 10,
  chunkMs: 1000,
  gain: 341,
  baseline: 512,
  alarmPins: null,
  alarmMinSeverity: 2,
  buzzerMs: 2000,
  ledMs: 86_400_000,
  reminderMs: 120_000,
  reminderMinSeverity: 3,
  readyTimeoutMs: 10_000,
  staleMs: 2_000,
  backoff: Object.freeze({ initialMs: 250, maxMs: 5_000 }),
});

const OPTIONS_SCHEMA = {
  type: 'object',
  properties: {
    path: { type: 'string', minLength: 1, examples: ['/dev/ttyACM0'] },
    pin: { type: 'integer', minimum: 0, maximum: 15 },
    samplingIntervalMs: { type: 'integer', minimum: 10, maximum: 1000 },
    chunkMs: { type: 'integer', minimum: 50, maximum: 10_000 },
    gain: { type: 'number', exclusiveMinimum: 0 },
    baseline: { type: 'integer', minimum: 0, maximum: 65_535 },
    alarmPins: {
      type: ['object', 'null'],
      properties: { led: { type: 'integer', minimum: 0, maximum: 127 }, buzzer: { type: 'integer', minimum: 0, maximum: 127 } },
      additionalProperties: false,
    },
    alarmMinSeverity: { type: 'integer', enum: [1, 2, 3] },
    buzzerMs: { type: 'integer', minimum: 0, maximum: 600_000 },
    ledMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
    reminderMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    reminderMinSeverity: { type: 'integer', enum: [1, 2, 3] },
    readyTimeoutMs: { type: 'integer', minimum: 100, maximum: 120_000 },
    staleMs: { type: 'integer', minimum: 0, maximum: 600_000 },
    backoff: {
      type: 'object',
      properties: { initialMs: { type: 'integer', minimum: 1 }, maxMs: { type: 'integer', minimum: 1 } },
      required: ['initialMs', 'maxMs'],
      additionalProperties: false,
    },
  },
  required: ['path'],
  additionalProperties: false,
};

/** A driver with outputs the runtime drives when it raises an alert (LED, buzzer). */
export interface AlarmOutput {
  /**
   * Called for every alert the runtime raises, with its ledger `seq` when it was stored (what an
   * acknowledgement names; an alert not stored yet, e.g. on a full disk, comes without, and
   * `alertStored` gives its seq once a later flush stores it). The driver decides by severity. Never throws.
   */
  alarm(alert: Alert, seq?: number): void;
  /** The alert `alarm` was given without a seq has been stored as `seq`: from now on an acknowledgement of `seq` is one of it. Never throws. */
  alertStored(alert: Alert, seq: number): void;
  /** The alert stored as `seq` was acknowledged locally (clinic screen): it no longer counts as active (buzzer silenced, LED off when none remains). Never throws. */
  acknowledged(seq: number): void;
  /** How long (ms) an unacknowledged alert stays active at most: how far back the runtime looks for them at start. */
  readonly latchMs: number;
  /** Alerts active now (raised, not acknowledged, within `latchMs`): what the LED shows. */
  readonly activeAlarms: number;
  /**
   * At start, before `start()`: the unacknowledged alerts stored in the last `latchMs` (from the ledger,
   * acknowledgements from the audit log), oldest first. The driver counts the ones it would have
   * latched as active, aged by `alert.t`; the board's first connect drives the outputs. Never throws.
   */
  restoreAlarms(alerts: ReadonlyArray<{ alert: Alert; seq: number }>): void;
}

export function hasAlarmOutput(driver: SensorDriver): driver is SensorDriver & AlarmOutput {
  const output = driver as Partial<AlarmOutput>;
  return typeof output.alarm === 'function' && typeof output.alertStored === 'function' && typeof output.acknowledged === 'function' && typeof output.restoreAlarms === 'function';
}

export interface FirmataEcgStats {
  sessions: number;
  samples: number;
  gapSamples: number;
  /** Alerts that switched the alarm on. */
  alarms: number;
  /** (Re)connects that drove the outputs on again for active unacknowledged alerts. */
  alarmsRestored: number;
  /** Reminders: the buzzer sounded again for an active alert. */
  reminders: number;
}

/** An alert that switched the alarm on, while it is active (`FirmataEcgDriver.activeAlerts`). */
interface ActiveAlert {
  /** Ledger seq (what an acknowledgement names); undefined while the alert is not stored (`alertStored` sets it). */
  seq: number | undefined;
  /** The alert as raised, while it has no seq: what `alertStored` finds it by. */
  unstored?: Alert;
  severity: 1 | 2 | 3;
  /** `clock.monotonic()` when it was raised (for a restored alert: now minus its age by `alert.t`). */
  raisedAt: number;
}

let defaultFactory: Promise<IoBoardFactory> | undefined;
/** johnny-five, loaded on first use. */
function loadDefaultFactory(): Promise<IoBoardFactory> {
  defaultFactory ??= import('../transport/firmata-johnny-five.js').then((m) => m.createJohnnyFiveBoard);
  return defaultFactory;
}

/** Values per window of `SessionTiming`. */
const TIMING_WINDOW = 64;
/** A session that sampled this long at least (ms) measures the sampling period. */
const MIN_PERIOD_SPAN_MS = 500;
/** A measured sampling period this much (fraction) above the asked interval is the board's own rate, not jitter. */
const SLOW_SAMPLING_TOLERANCE = 0.2;

/**
 * Arrival times of one session's values, kept in two windows (its first and its last
 * `TIMING_WINDOW` values). A value k arrives at `due0 + k × period + delay` with `delay >= 0`, so
 * within a window the least-delayed value (the smallest `t - k × period`) lies nearest the sampling
 * line.
 */
export class SessionTiming {
  private readonly first: number[] = [];
  private readonly last = new Float64Array(TIMING_WINDOW);
  private n = 0;

  get count(): number {
    return this.n;
  }

  add(t: number): void {
    if (this.n < TIMING_WINDOW) this.first.push(t);
    this.last[this.n % TIMING_WINDOW] = t;
    this.n += 1;
  }

  /**
   * The sampling period (ms) through the least-delayed values of both windows; `undefined` when the
   * session sampled less than `MIN_PERIOD_SPAN_MS` (its values × the period, not the arrival span,
   * which a late first burst shortens).
   */
  period(): number | undefined {
    if (this.n < 2) return undefined;
    let period = (this.at(this.n - 1) - this.first[0]!) / (this.n - 1);
    // Twice: the least-delayed values picked with the plain estimate, then with the refined one.
    for (let pass = 0; pass < 2; pass++) {
      const a = this.leastDelayed(0, this.first.length, period);
      const b = this.leastDelayed(Math.max(0, this.n - TIMING_WINDOW), this.n, period);
      if (b <= a) break;
      period = (this.at(b) - this.at(a)) / (b - a);
    }
    return period > 0 && (this.n - 1) * period >= MIN_PERIOD_SPAN_MS ? period : undefined;
  }

  /**
   * When value `k` (in one of the windows) was due to arrive: on the line through the least-delayed
   * value of its window, or its arrival time when the period is unknown.
   */
  dueAt(k: number, period: number | undefined): number {
    if (period === undefined) return this.at(k);
    const [from, to] = k < this.first.length ? [0, this.first.length] : [Math.max(0, this.n - TIMING_WINDOW), this.n];
    const j = this.leastDelayed(from, to, period);
    return this.at(j) + (k - j) * period;
  }

  private leastDelayed(from: number, to: number, period: number): number {
    let best = from;
    for (let k = from + 1; k < to; k++) if (this.at(k) - k * period < this.at(best) - best * period) best = k;
    return best;
  }

  private at(k: number): number {
    return k < this.first.length ? this.first[k]! : this.last[k % TIMING_WINDOW]!;
  }
}

export class FirmataEcgDriver implements SensorDriver, AlarmOutput {
  readonly sensor: string;
  readonly driver = 'firmata-ecg';
  readonly kind = 'ecg' as const;
  readonly rateUnit = 'samples/s' as const;
  readonly nominalRate: number;
  readonly options: Readonly<FirmataEcgOptions>;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly factory: IoBoardFactory | undefined;
  private sink: SensorSink | undefined;
  private board: IoBoard | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private wakeRetry: (() => void) | undefined;
  private retryTimer: ClockTimer | undefined;
  private resolveStop!: () => void;
  private readonly stopSignal = new Promise<undefined>((resolve) => (this.resolveStop = () => resolve(undefined)));
  private readonly counters: FirmataEcgStats = { sessions: 0, samples: 0, gapSamples: 0, alarms: 0, alarmsRestored: 0, reminders: 0 };
  // stream
  private index = 0;
  private pending: number[] = [];
  private pendingIndex = 0;
  private anchor: { t: number; index: number } | undefined;
  private timing = new SessionTiming();
  /** The rate of this session's chunks: the asked rate, or the slower one the board was measured at. */
  private rateHz: number;
  /** This session's sampling period was measured (its values are held until then). */
  private rateChecked = false;
  /** The sampling period (ms) measured over the last long enough session. */
  private observedPeriodMs: number | undefined;
  /** When the last value before the disconnect was due (monotonic ms). */
  private lastDueAt: number | undefined;
  /** A disconnect happened since the last value: the gap goes before the session's first chunk. */
  private resuming = false;
  // alarm
  private ledOn = false;
  private buzzerOn = false;
  /** When the newest active alert's latch ends (`ledMs` after it was raised). */
  private latchTimer: ClockTimer | undefined;
  private buzzerTimer: ClockTimer | undefined;
  private reminderTimer: ClockTimer | undefined;
  /** Alerts that switched the alarm on, oldest first, until acknowledged or `ledMs` after they were raised. */
  private activeAlerts: ActiveAlert[] = [];

  constructor(sensor: string, options: FirmataEcgOptions, deps: DriverDeps, factory?: IoBoardFactory) {
    this.sensor = sensor;
    if (options.reminderMs > 0 && options.reminderMs <= options.buzzerMs) {
      throw new ConfigError('options.reminderMs', options.reminderMs, `is not longer than buzzerMs (${options.buzzerMs}): the reminder would sound before the buzzer stops`, 'set reminderMs above buzzerMs (default 120000), or 0 for no reminder');
    }
    this.options = Object.freeze({ ...options, alarmPins: options.alarmPins ? { ...options.alarmPins } : null, backoff: { ...options.backoff } });
    this.nominalRate = 1000 / options.samplingIntervalMs;
    this.rateHz = this.nominalRate;
    this.clock = deps.clock;
    this.log = deps.logger.child({ driver: this.driver, sensor, path: options.path });
    this.factory = factory;
  }

  get stats(): FirmataEcgStats {
    return { ...this.counters };
  }

  /** The alarm outputs' state: what the board's pins were last driven to. */
  get alarmState(): { led: boolean; buzzer: boolean } {
    return { led: this.ledOn, buzzer: this.buzzerOn };
  }

  start(sink: SensorSink): void {
    if (this.running || this.stopped) return;
    this.sink = sink;
    this.running = this.loop().catch((error: unknown) => this.log.error({ err: error }, 'driver loop failed'));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.resolveStop();
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    this.clearAlarmTimers();
    // Silence the outputs before letting go of the board.
    if (this.board?.isOpen) {
      this.setOutput('buzzer', false);
      this.setOutput('led', false);
    }
    await this.board?.close();
    await this.running;
    this.flush();
    this.sink?.state({ sensor: this.sensor, connected: false, detail: 'stopped' });
    this.sink = undefined;
  }

  get latchMs(): number {
    return this.options.ledMs;
  }

  get activeAlarms(): number {
    return this.stillActive().length;
  }

  alarm(alert: Alert, seq?: number): void {
    if (!this.options.alarmPins || alert.severity < this.options.alarmMinSeverity || this.stopped) return;
    this.counters.alarms += 1;
    this.activeAlerts = this.stillActive();
    this.activeAlerts.push({ seq, severity: alert.severity, raisedAt: this.clock.monotonic(), ...(seq === undefined ? { unstored: alert } : {}) });
    this.log.info({ alert: alert.kind, severity: alert.severity, seq }, 'alarm outputs on');
    this.driveOn();
  }

  alertStored(alert: Alert, seq: number): void {
    const active = this.activeAlerts.find((a) => a.unstored === alert);
    if (!active) return;
    active.seq = seq;
    delete active.unstored;
  }

  acknowledged(seq: number): void {
    const before = this.stillActive();
    this.activeAlerts = before.filter((a) => a.seq !== seq);
    if (this.activeAlerts.length === before.length || this.stopped) return;
    // Acknowledged: silence the buzzer; the LED stays lit while another alert is active.
    if (this.buzzerTimer) this.clock.clearTimeout(this.buzzerTimer);
    this.setOutput('buzzer', false);
    this.log.info({ seq, stillActive: this.activeAlerts.length }, 'alarm acknowledged: buzzer silenced');
    this.scheduleLatch();
  }

  restoreAlarms(alerts: ReadonlyArray<{ alert: Alert; seq: number }>): void {
    if (!this.options.alarmPins || this.stopped) return;
    const now = this.clock.monotonic();
    const wallNow = this.clock.now();
    const known = new Set(this.activeAlerts.map((a) => a.seq));
    for (const { alert, seq } of alerts) {
      if (alert.severity < this.options.alarmMinSeverity || known.has(seq)) continue;
      this.activeAlerts.push({ seq, severity: alert.severity, raisedAt: now - Math.max(0, wallNow - alert.t) });
    }
    this.activeAlerts = this.stillActive().sort((x, y) => x.raisedAt - y.raisedAt);
    if (this.activeAlerts.length === 0) return;
    this.log.warn({ alerts: this.activeAlerts.length, seqs: this.activeAlerts.map((a) => a.seq) }, 'unacknowledged alerts from before the restart: alarm latched');
    if (this.options.alarmPins.led !== undefined) this.setOutput('led', true);
    this.scheduleLatch();
  }

  /** The active alerts: those raised less than `ledMs` ago (acknowledged ones are already removed). */
  private stillActive(): ActiveAlert[] {
    const now = this.clock.monotonic();
    return this.activeAlerts.filter((a) => now - a.raisedAt < this.options.ledMs);
  }

  /** LED on (latched), buzzer on for `buzzerMs` (each when configured). */
  private driveOn(): void {
    if (this.options.alarmPins?.led !== undefined) this.setOutput('led', true);
    this.soundBuzzer();
    this.scheduleLatch();
  }

  /** The buzzer for `buzzerMs`; the next reminder `reminderMs` after this. */
  private soundBuzzer(): void {
    if (this.options.alarmPins?.buzzer !== undefined && this.options.buzzerMs > 0) {
      this.setOutput('buzzer', true);
      if (this.buzzerTimer) this.clock.clearTimeout(this.buzzerTimer);
      this.buzzerTimer = this.clock.setTimeout(() => this.setOutput('buzzer', false), this.options.buzzerMs);
    }
    if (this.reminderTimer) this.clock.clearTimeout(this.reminderTimer);
    this.reminderTimer = undefined;
    if (this.options.reminderMs > 0 && this.needsReminder()) this.reminderTimer = this.clock.setTimeout(() => this.remind(), this.options.reminderMs);
  }

  private needsReminder(): boolean {
    return this.activeAlerts.some((a) => a.severity >= this.options.reminderMinSeverity);
  }

  private remind(): void {
    this.reminderTimer = undefined;
    this.activeAlerts = this.stillActive();
    if (this.stopped || !this.needsReminder()) return;
    this.counters.reminders += 1;
    this.log.warn({ alerts: this.activeAlerts.length, seqs: this.activeAlerts.map((a) => a.seq) }, 'unacknowledged alarm: buzzer reminder');
    this.soundBuzzer();
  }

  /**
   * Timers from the active alerts: the latch ends `ledMs` after the newest was raised (then the LED
   * goes off); no reminder is due once no alert of `reminderMinSeverity` is active. With none active,
   * the LED is off.
   */
  private scheduleLatch(): void {
    this.activeAlerts = this.stillActive();
    if (this.latchTimer) this.clock.clearTimeout(this.latchTimer);
    this.latchTimer = undefined;
    if (!this.needsReminder() && this.reminderTimer) {
      this.clock.clearTimeout(this.reminderTimer);
      this.reminderTimer = undefined;
    }
    if (this.activeAlerts.length === 0) {
      this.setOutput('led', false);
      return;
    }
    const newest = Math.max(...this.activeAlerts.map((a) => a.raisedAt));
    this.latchTimer = this.clock.setTimeout(() => this.scheduleLatch(), newest + this.options.ledMs - this.clock.monotonic());
  }

  private clearAlarmTimers(): void {
    for (const t of [this.latchTimer, this.buzzerTimer, this.reminderTimer]) if (t) this.clock.clearTimeout(t);
    this.latchTimer = this.buzzerTimer = this.reminderTimer = undefined;
  }

  /**
   * A board session starts with its pins low (StandardFirmata resets them at boot): the outputs go to the
   * alarm state. With active unacknowledged alerts, the alarm pattern again: LED on, the buzzer for
   * `buzzerMs`. Without: both off.
   */
  private restoreOutputs(): void {
    this.activeAlerts = this.stillActive();
    if (this.activeAlerts.length === 0) {
      this.clearAlarmTimers();
      this.setOutput('led', false);
      this.setOutput('buzzer', false);
      return;
    }
    this.counters.alarmsRestored += 1;
    this.log.warn({ alerts: this.activeAlerts.length, seqs: this.activeAlerts.map((a) => a.seq) }, 'board back with unacknowledged alerts active: alarm outputs on again');
    this.driveOn();
  }

  private setOutput(which: 'led' | 'buzzer', on: boolean): void {
    if (which === 'led') this.ledOn = on;
    else this.buzzerOn = on;
    const pin = this.options.alarmPins?.[which];
    if (pin === undefined || !this.board?.isOpen) return; // applied when the board is back
    try {
      this.board.digitalWrite(pin, on ? 1 : 0);
    } catch (error) {
      this.log.warn({ err: (error as Error).message, pin }, 'alarm output not driven');
    }
  }

  private state(connected: boolean, detail: string): void {
    if (!this.stopped) this.sink?.state({ sensor: this.sensor, connected, detail });
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    const factory = this.factory ?? (await loadDefaultFactory());
    while (!this.stopped) {
      this.state(false, attempt === 0 ? 'opening' : 'reopening');
      const ioOptions: IoBoardOptions = { path: this.options.path, readyTimeoutMs: this.options.readyTimeoutMs, staleMs: this.options.staleMs };
      const board = factory(ioOptions);
      this.board = board;
      try {
        await board.open();
      } catch (error) {
        await board.close();
        if (this.stopped) return;
        const delayMs = backoffDelay(attempt, this.options.backoff, Math.random);
        attempt += 1;
        this.log.debug({ err: (error as Error).message, attempt }, 'board not ready');
        this.state(false, `reconnecting in ${delayMs} ms (attempt ${attempt})`);
        await this.wait(delayMs);
        continue;
      }
      if (this.stopped) {
        await board.close();
        return;
      }
      const lost = new Promise<TransportError>((resolve) => board.on('disconnect', resolve));
      this.session(board);
      const error = await Promise.race([lost, this.stopSignal]);
      if (this.stopped) return;
      this.log.warn({ err: (error as TransportError).message }, 'board disconnected');
      this.endSession();
      this.state(false, 'disconnected');
      const delayMs = backoffDelay(0, this.options.backoff, Math.random);
      this.state(false, `reconnecting in ${delayMs} ms (attempt 1)`);
      attempt = 1;
      await this.wait(delayMs);
    }
  }

  private session(board: IoBoard): void {
    this.counters.sessions += 1;
    board.setSamplingInterval(this.options.samplingIntervalMs);
    // Alarm outputs to the alarm state (an alert may have come, or been acknowledged, while the board was away).
    if (this.options.alarmPins) this.restoreOutputs();
    this.resuming ||= this.lastDueAt !== undefined;
    this.timing = new SessionTiming();
    this.rateChecked = false;
    this.pending = [];
    this.pendingIndex = this.index;
    const fw = board.firmware;
    this.state(true, `connected: ${fw?.name ?? 'Firmata'} (protocol ${fw?.protocol ?? '?'}), A${this.options.pin} at ${this.nominalRate} Hz`);
    board.analogRead(this.options.pin, (value) => this.onValue(value));
  }

  private onValue(value: number): void {
    this.timing.add(this.clock.monotonic());
    this.anchor ??= { t: this.clock.now(), index: this.index };
    if (this.pending.length === 0) this.pendingIndex = this.index;
    this.pending.push(value - this.options.baseline);
    this.index += 1;
    if (!this.rateChecked) this.checkRate();
    if (this.rateChecked && this.pending.length >= Math.max(1, Math.round((this.options.chunkMs * this.rateHz) / 1000))) this.flush();
  }

  /** Once the session's sampling period is measured: the rate its chunks carry (see the module comment). */
  private checkRate(): void {
    const period = this.timing.period();
    if (period === undefined) return;
    this.rateChecked = true;
    const asked = this.options.samplingIntervalMs;
    const rate = period > asked * (1 + SLOW_SAMPLING_TOLERANCE) ? Math.round(10_000 / period) / 10 : this.nominalRate;
    if (rate !== this.nominalRate) {
      const fw = this.board?.firmware;
      const detail = `A${this.options.pin} sampled every ${period.toFixed(1)} ms, not the ${asked} ms asked (${fw?.name ?? 'Firmata'}, protocol ${fw?.protocol ?? '?'}, ignores the sampling interval): stored at the measured ${rate} Hz`;
      this.log.error({ measuredPeriodMs: period, askedMs: asked, rateHz: rate, firmware: fw }, 'Firmata board samples slower than asked');
      this.state(true, detail);
    }
    if (rate === this.rateHz) return;
    // The values held so far were sampled at `rate`: the time line restarts at the first of them (after the gap of a replug).
    if (this.resuming) this.reportMissed();
    this.rateHz = rate;
    this.anchor = { t: this.clock.now() - ((this.index - 1 - this.pendingIndex) * 1000) / rate, index: this.pendingIndex };
  }

  /**
   * Before the first chunk after a disconnect: the samples of the signal between the last value
   * before and the first after (the time unplugged, the board's reset, the handshake) are reported as
   * a gap, and this session's values move after it.
   */
  private reportMissed(): void {
    this.resuming = false;
    const measured = this.observedPeriodMs;
    const period = measured ?? 1000 / this.nominalRate;
    const missed = Math.max(0, Math.round((this.timing.dueAt(0, measured) - this.lastDueAt!) / period) - 1);
    if (missed === 0) return;
    this.counters.gapSamples += missed;
    this.sink?.gap({ sensor: this.sensor, channel: 0, firstSample: this.pendingIndex, samples: missed, reason: 'disconnected' });
    this.pendingIndex += missed;
    this.index += missed;
  }

  private endSession(): void {
    this.flush();
    const timing = this.timing;
    if (timing.count > 0) {
      this.observedPeriodMs = timing.period() ?? this.observedPeriodMs;
      this.lastDueAt = timing.dueAt(timing.count - 1, this.observedPeriodMs);
    }
    this.board = undefined;
  }

  /** Delivers the samples collected so far as one chunk. */
  private flush(): void {
    if (this.pending.length === 0) return;
    if (this.resuming) this.reportMissed();
    const samples = Int16Array.from(this.pending);
    const first = this.pendingIndex;
    this.pending = [];
    this.counters.samples += samples.length;
    const anchor = this.anchor ?? { t: this.clock.now(), index: first };
    const t0 = Math.round(anchor.t + ((first - anchor.index) * 1000) / this.rateHz);
    this.sink?.chunk({ sensor: this.sensor, channel: 0, firstSample: first, t0, rateHz: this.rateHz, unit: 'mV', gain: this.options.gain, samples });
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeRetry = () => {
        this.wakeRetry = undefined;
        resolve();
      };
      this.retryTimer = this.clock.setTimeout(() => {
        this.retryTimer = undefined;
        this.wakeRetry = undefined;
        resolve();
      }, ms);
    });
  }
}

export const FIRMATA_ECG_DRIVER: DriverDescriptor<FirmataEcgOptions> = Object.freeze({
  name: 'firmata-ecg',
  kind: 'ecg',
  transport: 'firmata',
  description: 'AD8232-style analog ECG on an Arduino analog pin over Firmata (johnny-five), with alarm LED and buzzer outputs',
  optionsSchema: OPTIONS_SCHEMA,
  defaults: DEFAULT_FIRMATA_ECG_OPTIONS,
  create: (sensor: string, options: FirmataEcgOptions, deps: DriverDeps) => new FirmataEcgDriver(sensor, options, deps),
});
