/**
 * A simulated continuous glucose monitor (CGM Service 0x181F): CGM Measurement 0x2AA7 (notify) with
 * the E2E-CRC, CGM Feature 0x2AA8 (read; E2E-CRC, trend and quality bits set), CGM Session Start
 * Time 0x2AAA (read; with the E2E-CRC when it is on). Encoded with device-sdk/protocols/ble/cgm.ts
 * (CGMS 1.0.1 §3.1-3.2, §3.5; shared spec §3.7-3.8).
 *
 * `measure()` sends one record with the next time offset (minutes since session start, the
 * `intervalMinutes` apart); `sendRecords()` sends a backlog, several records to a notification; `faults.duplicateEvery` re-sends every n-th notification unchanged, as
 * a flaky link layer retransmission would; `sendRaw()` sends any bytes.
 *
 * Sessions: the sensor session started at `sessionStartMs` (UTC); 0x2AAA reports it as the local
 * wall clock of `timeZone` (15-minute units) and `dstOffset` (code 0/2/4/8). `replaceSensor()` is a
 * new sensor: a new session start, time offsets from 0 again; the link stays up, as with a CGM
 * whose transmitter outlives its sensors. `faults.sessionStartUnreadable` makes reads of 0x2AAA fail
 * (`org.bluez.Error.NotPermitted`, as a characteristic that needs encryption),
 * `faults.sessionStartCorrupt` flips a bit of the time zone (E2E-CRC mismatch); the option
 * `sessionStartTime: false` leaves 0x2AAA out of the GATT table.
 *
 * Device Information Service 0x180A (`deviceInformation`; `false` leaves it out): manufacturer, model, serial
 * (default `SCGM-` and the address's hex digits) and firmware, as `peripheral.ts` `simDeviceInformationService`.
 * `faults.serialNumberRefused` fails the serial read with an error reply; `faults.serialNumberReads`: the next
 * serial reads answer these strings, one each, in order (a garbled read, a placeholder; `SIM_SERIAL_REFUSED`: that read
 * refused), then the serial again.
 */
import { CGM_DST_OFFSET_MINUTES, CGM_FEATURE_BITS, CGM_FEATURE_UUID, CGM_MEASUREMENT_UUID, CGM_SESSION_START_TIME_UUID, encodeCgmFeature, encodeCgmMeasurement, encodeCgmSessionStartTime } from '../../device-sdk/protocols/ble/cgm.js';
import type { SimCharacteristicSpec, SimServiceSpec } from './bluez.js';
import { bluezError } from './dbus-objects.js';
import type { DeviceInformation } from '../../device-sdk/protocols/ble/device-information.js';
import { SimPeripheralBase, type SimPeripheralFaults, type SimSerialNumberFaults, simDeviceInformationService } from './peripheral.js';

export const CGM_SERVICE_UUID = 0x181f;

export interface SimCgmOptions {
  address: string;
  name: string;
  /** Minutes between measurements (the time offset step). */
  intervalMinutes: number;
  /** Time offset of the first measurement. */
  firstTimeOffset: number;
  e2eCrc: boolean;
  /** Whether the GATT table has Session Start Time 0x2AAA. */
  sessionStartTime: boolean;
  /** UTC start of the first sensor session (ms). */
  sessionStartMs: number;
  /** Time zone of the CGM's clock, 15-minute units (-48..+56). */
  timeZone: number;
  /** DST offset code of the CGM's clock (0, 2, 4, 8). */
  dstOffset: number;
  /** The Device Information Service strings; false: no such service. */
  deviceInformation: DeviceInformation | false;
  faults: Partial<SimCgmFaults>;
}

export interface SimCgmFaults extends SimPeripheralFaults, SimSerialNumberFaults {
  /** Reads of Session Start Time 0x2AAA fail. */
  sessionStartUnreadable: boolean;
  /** Session Start Time 0x2AAA is sent with one bit of its time zone flipped (a CRC mismatch when the E2E-CRC is on). */
  sessionStartCorrupt: boolean;
}

export const DEFAULT_SIM_CGM_OPTIONS: Readonly<Omit<SimCgmOptions, 'address' | 'faults' | 'deviceInformation'>> = Object.freeze({
  name: 'medge sim CGM',
  intervalMinutes: 5,
  firstTimeOffset: 0,
  e2eCrc: true,
  sessionStartTime: true,
  sessionStartMs: Date.UTC(2026, 0, 5, 7, 0, 0),
  timeZone: 4,
  dstOffset: 0,
});

export class SimCgm extends SimPeripheralBase {
  readonly services: readonly SimServiceSpec[];
  readonly faults: SimCgmFaults;
  private readonly options: Omit<SimCgmOptions, 'faults' | 'deviceInformation'>;
  private nextOffset: number;
  private startMs: number;
  /** Sensor sessions so far (1 + `replaceSensor` calls). */
  sessions = 1;

  constructor(options: Partial<SimCgmOptions> & { address: string }) {
    const o = { ...DEFAULT_SIM_CGM_OPTIONS, ...options };
    super(o.address, o.name);
    this.options = o;
    this.nextOffset = o.firstTimeOffset;
    this.startMs = o.sessionStartMs;
    this.faults = { duplicateEvery: 0, notifyDelayMs: 0, sessionStartUnreadable: false, sessionStartCorrupt: false, serialNumberRefused: false, serialNumberReads: [], ...options.faults };
    const bits = (1 << CGM_FEATURE_BITS.trendInformation) | (1 << CGM_FEATURE_BITS.quality) | (1 << CGM_FEATURE_BITS.lowBatteryDetection) | (o.e2eCrc ? 1 << CGM_FEATURE_BITS.e2eCrc : 0);
    const sessionStartSpec: SimCharacteristicSpec = {
      uuid: CGM_SESSION_START_TIME_UUID,
      flags: ['read'],
      onRead: () => {
        if (this.faults.sessionStartUnreadable) throw bluezError('NotPermitted', 'Read not permitted');
        const bytes = this.encodeSessionStartTime();
        if (this.faults.sessionStartCorrupt) bytes[7] = (bytes[7] as number) ^ 0x01;
        return bytes;
      },
    };
    this.services = [
      {
        uuid: CGM_SERVICE_UUID,
        characteristics: [
          { uuid: CGM_MEASUREMENT_UUID, flags: ['notify'] },
          // type 9 interstitial fluid, location 5 subcutaneous tissue
          { uuid: CGM_FEATURE_UUID, flags: ['read'], onRead: () => encodeCgmFeature({ bits, type: { code: 9 }, sampleLocation: { code: 5 } }) },
          ...(o.sessionStartTime ? [sessionStartSpec] : []),
        ],
      },
      ...(options.deviceInformation === false
        ? []
        : [
            simDeviceInformationService(
              options.deviceInformation ?? { manufacturer: 'medge simulated devices', model: 'SCGM-1', serial: `SCGM-${o.address.replace(/:/g, '').toUpperCase()}`, firmware: '2.0.1' },
              () => this.faults.serialNumberRefused,
              () => this.faults.serialNumberReads.shift(),
            ),
          ]),
    ];
  }

  /** UTC start of the current sensor session (ms). */
  get sessionStartMs(): number {
    return this.startMs;
  }

  /** The bytes of Session Start Time 0x2AAA now: the session start as local wall clock, zone, DST, [CRC]. */
  encodeSessionStartTime(): Uint8Array {
    const local = new Date(this.startMs + (this.options.timeZone * 15 + (CGM_DST_OFFSET_MINUTES[this.options.dstOffset] ?? 0)) * 60_000);
    return encodeCgmSessionStartTime(
      {
        startTime: { year: local.getUTCFullYear(), month: local.getUTCMonth() + 1, day: local.getUTCDate(), hours: local.getUTCHours(), minutes: local.getUTCMinutes(), seconds: local.getUTCSeconds() },
        timeZone: this.options.timeZone,
        dstOffset: this.options.dstOffset,
      },
      { e2eCrc: this.options.e2eCrc },
    );
  }

  /**
   * A new sensor: a new session starting at `startMs` (default: when the next record of the old
   * session was due, at least a minute after the old start), time offsets from 0 again.
   */
  replaceSensor(input: { startMs?: number } = {}): void {
    this.startMs = input.startMs ?? this.startMs + Math.max(this.nextOffset, 1) * 60_000;
    this.nextOffset = 0;
    this.sessions += 1;
  }

  /** The bytes of one record (what `measure` sends), with an explicit or the next time offset. */
  encode(input: { mgPerDl: number; timeOffset: number; trend?: number; quality?: number; batteryLow?: boolean }): Uint8Array {
    return encodeCgmMeasurement(
      [
        {
          glucose: input.mgPerDl,
          timeOffsetMinutes: input.timeOffset,
          ...(input.batteryLow ? { annunciation: { status: 0x02 } } : {}),
          ...(input.trend !== undefined ? { trend: input.trend } : {}),
          ...(input.quality !== undefined ? { quality: input.quality } : {}),
        },
      ],
      { e2eCrc: this.options.e2eCrc },
    );
  }

  /**
   * Notifies `records` in order, `perNotification` to a notification (CGMS §3.1: records concatenated up to the ATT MTU;
   * 8 records of 15 bytes fit an MTU of 185): a backlog, such as a whole session resent at a reconnect. Resolves to the
   * number of records sent, stopping at the first notification that could not be sent.
   */
  async sendRecords(records: readonly { mgPerDl: number; timeOffset: number }[], perNotification = 8): Promise<number> {
    let sent = 0;
    for (let i = 0; i < records.length; i += perNotification) {
      const part = records.slice(i, i + perNotification);
      const bytes = encodeCgmMeasurement(
        part.map((r) => ({ glucose: r.mgPerDl, timeOffsetMinutes: r.timeOffset })),
        { e2eCrc: this.options.e2eCrc },
      );
      if (!(await this.notify(CGM_MEASUREMENT_UUID, bytes))) break;
      sent += part.length;
      this.nextOffset = (part.at(-1)?.timeOffset ?? 0) + this.options.intervalMinutes;
    }
    return sent;
  }

  /** Notifies one measurement (the next time offset unless given). Resolves to the time offset sent, or undefined when not connected/subscribed. */
  async measure(input: { mgPerDl: number; timeOffset?: number; trend?: number; quality?: number; batteryLow?: boolean }): Promise<number | undefined> {
    const timeOffset = input.timeOffset ?? this.nextOffset;
    const sent = await this.notify(CGM_MEASUREMENT_UUID, this.encode({ ...input, timeOffset }));
    if (!sent) return undefined;
    this.nextOffset = timeOffset + this.options.intervalMinutes;
    return timeOffset;
  }
}
