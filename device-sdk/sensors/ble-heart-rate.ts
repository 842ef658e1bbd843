/**
 * `ble-heart-rate`: a heart-rate strap (Heart Rate Service 0x180D, HRS 1.0) streaming Heart Rate
 * Measurement 0x2A37 notifications.
 *
 * Steps per connection: read Body Sensor Location 0x2A38 when present (HRS §3.2; logged) → enable
 * notifications on 0x2A37 → readings until the link is lost. No duplicate suppression: two equal
 * measurements a second apart are two measurements.
 *
 * Readings per notification (HRS §3.1.1): one `heart-rate` reading (/min) with context sensor contact,
 * energy expended (kJ, cumulative) and the RR intervals in ms; and one `rr-interval` reading (ms,
 * 1/1024 s units converted) per RR interval, in order, for heart-rate variability, each timed at the
 * beat that ends it (the last at the notification). Undecodable bytes
 * go to quarantine with transport `ble:<address>/2a37`.
 */
import { DecodeError } from '../errors.js';
import { decodeHeartRateMeasurement, HEART_RATE_MEASUREMENT_UUID, type HeartRateMeasurement } from '../protocols/ble/heart-rate.js';
import type { GattLink } from '../transport/ble.js';
import { BLE_CONNECTION_SCHEMA_PROPERTIES, type BleConnectionOptions, BleDriverBase, DEFAULT_BLE_CONNECTION_OPTIONS, type GattConnectorFactory } from './ble-common.js';
import type { DriverDeps, DriverDescriptor } from './types.js';

export const HEART_RATE_SERVICE_UUID = 0x180d;
export const BODY_SENSOR_LOCATION_UUID = 0x2a38;

const BODY_SENSOR_LOCATIONS: Readonly<Record<number, string>> = Object.freeze({ 0: 'other', 1: 'chest', 2: 'wrist', 3: 'finger', 4: 'hand', 5: 'ear-lobe', 6: 'foot' });

export type BleHeartRateOptions = BleConnectionOptions;

export const DEFAULT_BLE_HEART_RATE_OPTIONS: Readonly<BleHeartRateOptions> = Object.freeze({ ...DEFAULT_BLE_CONNECTION_OPTIONS });

export class BleHeartRateDriver extends BleDriverBase<BleHeartRateOptions> {
  readonly driver = 'ble-heart-rate';
  readonly kind = 'heart-rate' as const;
  readonly rateUnit = 'readings/min' as const;
  readonly nominalRate = 60;
  /** Heart Rate Measurements handed to the sink. */
  measurements = 0;

  constructor(sensor: string, options: BleHeartRateOptions, deps: DriverDeps, connectorFactory?: GattConnectorFactory) {
    super(sensor, HEART_RATE_SERVICE_UUID, options, deps, connectorFactory);
  }

  protected async session(link: GattLink): Promise<void> {
    let location: string | undefined;
    if (link.hasCharacteristic(HEART_RATE_SERVICE_UUID, BODY_SENSOR_LOCATION_UUID)) {
      const bytes = await link.read(HEART_RATE_SERVICE_UUID, BODY_SENSOR_LOCATION_UUID);
      location = bytes.length === 1 ? (BODY_SENSOR_LOCATIONS[bytes[0] as number] ?? 'reserved') : undefined;
      this.deps.logger.info({ sensor: this.sensor, address: link.address, location }, 'heart-rate strap body sensor location');
    }
    await link.subscribe(
      HEART_RATE_SERVICE_UUID,
      HEART_RATE_MEASUREMENT_UUID,
      (bytes) => {
        let m: HeartRateMeasurement;
        try {
          m = decodeHeartRateMeasurement(bytes);
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          this.quarantine(link, HEART_RATE_MEASUREMENT_UUID, bytes, error);
          return;
        }
        this.onMeasurement(m, location);
      },
      { dedupe: false },
    );
    this.setDetail('streaming');
  }

  private onMeasurement(m: HeartRateMeasurement, location: string | undefined): void {
    if (this.isStopped || !this.sink) return;
    const tDevice = this.deps.clock.now();
    const context: Record<string, string> = { contact: m.sensorContact.detected ? 'detected' : m.sensorContact.supported ? 'not-detected' : 'not-supported' };
    if (location !== undefined) context.location = location;
    if (m.energyExpendedKj !== undefined) context.energyExpendedKj = String(m.energyExpendedKj);
    const rr = m.rrIntervalsMs?.map((v) => Math.round(v * 10) / 10);
    if (rr && rr.length > 0) context.rrMs = rr.join(',');
    this.measurements += 1;
    this.sink.reading({ sensor: this.sensor, type: 'heart-rate', value: m.heartRate, unit: '/min', tDevice, context });
    // Each interval is timed at the beat that ends it: the last one at the notification, earlier ones
    // earlier by the intervals after them. Two equal intervals are thus two distinct readings.
    const intervals = rr ?? [];
    let end = tDevice;
    const timed: { ms: number; t: number }[] = [];
    for (let i = intervals.length - 1; i >= 0; i--) {
      const ms = intervals[i] as number;
      timed.unshift({ ms, t: Math.round(end) });
      end -= ms;
    }
    for (const { ms, t } of timed) this.sink.reading({ sensor: this.sensor, type: 'rr-interval', value: ms, unit: 'ms', tDevice: t });
  }
}

export const BLE_HEART_RATE_DRIVER: DriverDescriptor<BleHeartRateOptions> = {
  name: 'ble-heart-rate',
  kind: 'heart-rate',
  transport: 'ble',
  description: 'Heart-rate strap (Heart Rate Service 0x180D): heart rate with contact and energy expended, RR intervals as readings',
  optionsSchema: { type: 'object', properties: { ...BLE_CONNECTION_SCHEMA_PROPERTIES }, additionalProperties: false },
  defaults: DEFAULT_BLE_HEART_RATE_OPTIONS,
  create: (sensor, options, deps) => new BleHeartRateDriver(sensor, options, deps),
};
