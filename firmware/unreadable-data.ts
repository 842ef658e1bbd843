import type { Clock } from '../device-sdk/clock.js';
import type { Alert } from '../device-sdk/records.js';

export const SENSOR_DATA_UNREADABLE = 'sensor-data-unreadable';

export interface UnreadableDataOptions {
  /** Quarantined frames or messages in a row, with nothing readable between them ... */
  minCount: number;
  /** ... over at least this long (ms, monotonic), before the alert. */
  minMs: number;
}

export const DEFAULT_UNREADABLE_DATA_OPTIONS: Readonly<UnreadableDataOptions> = Object.freeze({ minCount: 20, minMs: 10_000 });

interface Streak {
  count: number;
  since: number;
  alerted: boolean;
}

/**
 * A technical alarm for a sensor whose data are all unreadable: every frame or message goes to
 * quarantine (a device configured for another sample rate, another protocol version, a broken cable
 * that garbles every byte), so nothing from it is stored as data or analysed, and no other check
 * fires because bytes keep coming. One `sensor-data-unreadable` alert (severity 2) per episode, with
 * the last decoding error; anything readable from the sensor ends the episode.
 */
export class UnreadableDataWatch {
  private readonly streaks = new Map<string, Streak>();
  private readonly options: UnreadableDataOptions;

  constructor(
    private readonly clock: Pick<Clock, 'now' | 'monotonic'>,
    options: Partial<UnreadableDataOptions> = {},
  ) {
    this.options = { ...DEFAULT_UNREADABLE_DATA_OPTIONS, ...options };
  }

  /** Something from `sensor` went to quarantine with `error`; returns the alert when the episode is long enough. */
  quarantined(sensor: string, error: string): Alert | undefined {
    const now = this.clock.monotonic();
    const s = this.streaks.get(sensor) ?? { count: 0, since: now, alerted: false };
    s.count += 1;
    this.streaks.set(sensor, s);
    if (s.alerted || s.count < this.options.minCount || now - s.since < this.options.minMs) return undefined;
    s.alerted = true;
    return {
      kind: SENSOR_DATA_UNREADABLE,
      severity: 2,
      t: this.clock.now(),
      sensor,
      message: `Everything sensor ${sensor} sent for ${Math.round((now - s.since) / 1000)} s (${s.count} frames or messages) was unreadable and is kept in quarantine, so none of it is analysed; the last error: ${error}. Check the device and its configuration.`,
    };
  }

  /** `sensor` delivered readable data: its episode, if any, is over. */
  readable(sensor: string): void {
    this.streaks.delete(sensor);
  }
}
