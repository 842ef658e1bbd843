/**
 * A simulated heart-rate chest strap (Heart Rate Service 0x180D): Heart Rate Measurement 0x2A37
 * (notify) with sensor contact, energy expended and RR intervals; Body Sensor Location 0x2A38
 * (read, chest); Heart Rate Control Point 0x2A39 (write `01` resets the energy expended). Encoded
 * with device-sdk/protocols/ble/heart-rate.ts (HRS 1.0 §3; shared spec §3.6).
 */
import { encodeHeartRateMeasurement, HEART_RATE_MEASUREMENT_UUID } from '../../device-sdk/protocols/ble/heart-rate.js';
import type { SimServiceSpec } from './bluez.js';
import { SimPeripheralBase, type SimPeripheralFaults } from './peripheral.js';

export const HEART_RATE_SERVICE_UUID = 0x180d;
export const BODY_SENSOR_LOCATION_UUID = 0x2a38;
export const HEART_RATE_CONTROL_POINT_UUID = 0x2a39;

export interface SimHeartRateStrapOptions {
  address: string;
  name: string;
  faults: Partial<SimPeripheralFaults>;
}

export class SimHeartRateStrap extends SimPeripheralBase {
  readonly services: readonly SimServiceSpec[];
  readonly faults: SimPeripheralFaults;
  /** Cumulative energy expended (kJ) since the last reset through the control point. */
  energyKj = 0;
  resets = 0;

  constructor(options: Partial<SimHeartRateStrapOptions> & { address: string }) {
    super(options.address, options.name ?? 'medge sim HR strap');
    this.faults = { duplicateEvery: 0, notifyDelayMs: 0, ...options.faults };
    this.services = [
      {
        uuid: HEART_RATE_SERVICE_UUID,
        characteristics: [
          { uuid: HEART_RATE_MEASUREMENT_UUID, flags: ['notify'] },
          { uuid: BODY_SENSOR_LOCATION_UUID, flags: ['read'], value: Uint8Array.of(1) },
          {
            uuid: HEART_RATE_CONTROL_POINT_UUID,
            flags: ['write'],
            onWrite: (bytes) => {
              if (bytes.length !== 1 || bytes[0] !== 1) throw new Error('Control Point value not supported (ATT 0x80)');
              this.energyKj = 0;
              this.resets += 1;
            },
          },
        ],
      },
    ];
  }

  /**
   * Notifies one measurement: `bpm`, optional RR intervals in ms (sent in 1/1024 s units, rounded),
   * energy expended added (kJ) when `energyKj` is given. Resolves false when not connected/subscribed.
   */
  measure(input: { bpm: number; rrMs?: readonly number[]; energyKj?: number; contact?: boolean }): Promise<boolean> {
    if (input.energyKj !== undefined) this.energyKj = Math.min(0xffff, this.energyKj + input.energyKj);
    const bytes = encodeHeartRateMeasurement({
      heartRate: input.bpm,
      sensorContact: { code: input.contact === false ? 2 : 3 },
      ...(input.energyKj !== undefined ? { energyExpendedKj: this.energyKj } : {}),
      ...(input.rrMs !== undefined ? { rrIntervals: input.rrMs.map((ms) => Math.round((ms * 1024) / 1000)) } : {}),
    });
    return this.notify(HEART_RATE_MEASUREMENT_UUID, bytes);
  }
}
