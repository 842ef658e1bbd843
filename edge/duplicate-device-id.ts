import type { Clock } from '../device-sdk/clock.js';

export interface DuplicateDeviceIdOptions {
  /** A boot of a deviceId is forgotten when none of its batches arrived for this long (ms). */
  windowMs: number;
  /** The switches of a deviceId are logged at most once this long (ms): QA's two boards switched hundreds of times in 30 s. */
  logRepeatMs: number;
}

export const DEFAULT_DUPLICATE_DEVICE_ID_OPTIONS: Readonly<DuplicateDeviceIdOptions> = Object.freeze({ windowMs: 5 * 60_000, logRepeatMs: 10 * 60_000 });

/** Counter (in `rejected`) of batches that switched back to another live boot of their deviceId. */
export const DUPLICATE_DEVICE_ID = 'duplicate-device-id';

interface DeviceBoots {
  /** Boot id of the last batch of the device. */
  last: string;
  /** Boot ids seen within `windowMs`, with the monotonic time of their last batch. */
  seen: Map<string, number>;
  /** Switches back since the last one that was to be logged, and when that was. */
  unlogged: number;
  loggedAt: number | undefined;
}

/** A batch that switched back to another live boot of its deviceId. */
export interface BootSwitch {
  bootIds: [previous: string, current: string];
  /** Switches back of this deviceId since the last one to log, this one included; undefined: not to be logged yet. */
  toLog: number | undefined;
}

/**
 * Tells two boards running under one deviceId from a board that rebooted. Every batch names the boot
 * of the ledger process that sent it. A reboot switches a deviceId's batches from one boot to the next
 * once; two boards with one id switch back and forth, because each one's MQTT session evicts the
 * other's and the evicted board reconnects. A batch whose boot differs from the previous batch's, when
 * both boots sent batches within `windowMs`, is such a switch back. In memory, per ingest: with several
 * ingest workers on a shared subscription each sees part of the batches and counts fewer switches.
 */
export class DuplicateDeviceIdWatch {
  private readonly devices = new Map<string, DeviceBoots>();
  private readonly options: DuplicateDeviceIdOptions;

  constructor(
    private readonly clock: Pick<Clock, 'monotonic'>,
    options: Partial<DuplicateDeviceIdOptions> = {},
  ) {
    this.options = { ...DEFAULT_DUPLICATE_DEVICE_ID_OPTIONS, ...options };
  }

  /** A batch of `deviceId` from boot `bootId` arrived; returns the switch when it switched back to a live other boot. */
  batch(deviceId: string, bootId: string): BootSwitch | undefined {
    // An older device that sends no boot id cannot be told apart.
    if (bootId === '') return undefined;
    const now = this.clock.monotonic();
    const device = this.devices.get(deviceId);
    if (!device) {
      this.devices.set(deviceId, { last: bootId, seen: new Map([[bootId, now]]), unlogged: 0, loggedAt: undefined });
      return undefined;
    }
    for (const [boot, at] of device.seen) if (now - at > this.options.windowMs) device.seen.delete(boot);
    const previous = device.last;
    const switchedBack = previous !== bootId && device.seen.has(bootId) && device.seen.has(previous);
    device.seen.set(bootId, now);
    device.last = bootId;
    if (!switchedBack) return undefined;
    device.unlogged += 1;
    const due = device.loggedAt === undefined || now - device.loggedAt >= this.options.logRepeatMs;
    if (!due) return { bootIds: [previous, bootId], toLog: undefined };
    const toLog = device.unlogged;
    device.unlogged = 0;
    device.loggedAt = now;
    return { bootIds: [previous, bootId], toLog };
  }
}
