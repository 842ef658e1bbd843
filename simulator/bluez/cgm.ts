/**
 * A simulated continuous glucose monitor (CGM Service 0x181F): CGM Measurement 0x2AA7 (notify) with
 * the E2E-CRC, CGM Feature 0x2AA8 (read; E2E-CRC, trend and quality bits set). Encoded with
 * device-sdk/protocols/ble/cgm.ts (CGMS 1.0.1 §3.1-3.2; shared spec §3.7-3.8).
 *
 * `measure()` sends one record with the next time offset (minutes since session start, the
 * `intervalMinutes` apart); `faults.duplicateEvery` re-sends every n-th notification unchanged, as
 * a flaky link layer retransmission would; `sendRaw()` sends any bytes.
 */
import { CGM_FEATURE_BITS, CGM_FEATURE_UUID, CGM_MEASUREMENT_UUID, encodeCgmFeature, encodeCgmMeasurement } from '../../device-sdk/protocols/ble/cgm.js';
import type { SimServiceSpec } from './bluez.js';
import { SimPeripheralBase, type SimPeripheralFaults } from './peripheral.js';

export const CGM_SERVICE_UUID = 0x181f;

export interface SimCgmOptions {
  address: string;
  name: string;
  /** Minutes between measurements (the time offset step). */
  intervalMinutes: number;
  /** Time offset of the first measurement. */
  firstTimeOffset: number;
  e2eCrc: boolean;
  faults: Partial<SimPeripheralFaults>;
}

export const DEFAULT_SIM_CGM_OPTIONS: Readonly<Omit<SimCgmOptions, 'address' | 'faults'>> = Object.freeze({
  name: 'medge sim CGM',
  intervalMinutes: 5,
  firstTimeOffset: 0,
  e2eCrc: true,
});

export class SimCgm extends SimPeripheralBase {
  readonly services: readonly SimServiceSpec[];
  readonly faults: SimPeripheralFaults;
  private readonly options: Omit<SimCgmOptions, 'faults'>;
  private nextOffset: number;

  constructor(options: Partial<SimCgmOptions> & { address: string }) {
    const o = { ...DEFAULT_SIM_CGM_OPTIONS, ...options };
    super(o.address, o.name);
    this.options = o;
    this.nextOffset = o.firstTimeOffset;
    this.faults = { duplicateEvery: 0, notifyDelayMs: 0, ...options.faults };
    const bits = (1 << CGM_FEATURE_BITS.trendInformation) | (1 << CGM_FEATURE_BITS.quality) | (1 << CGM_FEATURE_BITS.lowBatteryDetection) | (o.e2eCrc ? 1 << CGM_FEATURE_BITS.e2eCrc : 0);
    this.services = [
      {
        uuid: CGM_SERVICE_UUID,
        characteristics: [
          { uuid: CGM_MEASUREMENT_UUID, flags: ['notify'] },
          // type 9 interstitial fluid, location 5 subcutaneous tissue
          { uuid: CGM_FEATURE_UUID, flags: ['read'], onRead: () => encodeCgmFeature({ bits, type: { code: 9 }, sampleLocation: { code: 5 } }) },
        ],
      },
    ];
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

  /** Notifies one measurement (the next time offset unless given). Resolves to the time offset sent, or undefined when not connected/subscribed. */
  async measure(input: { mgPerDl: number; timeOffset?: number; trend?: number; quality?: number; batteryLow?: boolean }): Promise<number | undefined> {
    const timeOffset = input.timeOffset ?? this.nextOffset;
    const sent = await this.notify(CGM_MEASUREMENT_UUID, this.encode({ ...input, timeOffset }));
    if (!sent) return undefined;
    this.nextOffset = timeOffset + this.options.intervalMinutes;
    return timeOffset;
  }
}
