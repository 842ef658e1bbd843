/**
 * `ble-cgm`: a continuous glucose monitor (CGM Service 0x181F, CGMS 1.0.1) streaming CGM Measurement
 * 0x2AA7 notifications.
 *
 * Steps per connection: read CGM Feature 0x2AA8 (CGMS §3.2: bit 12 tells whether every record carries
 * an E2E-CRC; when the feature cannot be read, `e2eCrc` from the options decides) → enable
 * notifications on 0x2AA7 → one reading per record until the link is lost.
 *
 * Duplicates are suppressed twice and counted (`duplicates`, also in the sensor state detail):
 * identical notification bytes within `dedupeWindowMs` (a retransmission) at the transport, and a
 * record whose Time Offset (minutes since session start, CGMS §3.1.1.4; it doubles as the record's
 * sequence number) was already handed over in this session of the sensor. A time offset more than
 * a day below the highest seen starts a new sensor session (a new sensor restarts at 0); a sensor
 * replaced within its first day is not detected this way (its first records are taken as duplicates
 * until its offsets pass the old ones; Session Start Time 0x2AAA is not read yet).
 *
 * Readings: type `glucose`, mg/dL (CGMS sends SFLOAT mg/dL), `meterRecord` = time offset, `tDevice` =
 * reception; context `source: cgm`, trend ((mg/dL)/min), quality (%) and status flags when sent.
 * Undecodable bytes (bad size, CRC mismatch, reserved flags) and records without a finite glucose
 * value go to quarantine with transport `ble:<address>/2aa7`.
 */
import { DecodeError } from '../errors.js';
import { CGM_FEATURE_UUID, CGM_MEASUREMENT_UUID, type CgmAnnunciationLayout, type CgmMeasurementRecord, decodeCgmFeature, decodeCgmMeasurement } from '../protocols/ble/cgm.js';
import { finiteValue } from '../protocols/ieee11073.js';
import type { Reading } from '../records.js';
import type { GattLink } from '../transport/ble.js';
import { BLE_CONNECTION_SCHEMA_PROPERTIES, type BleConnectionOptions, BleDriverBase, DEFAULT_BLE_CONNECTION_OPTIONS, type GattConnectorFactory } from './ble-common.js';
import type { DriverDeps, DriverDescriptor } from './types.js';

export const CGM_SERVICE_UUID = 0x181f;

export interface BleCgmOptions extends BleConnectionOptions {
  /** Whether records carry an E2E-CRC when the CGM Feature cannot be read. */
  e2eCrc: boolean;
  /** Order of the annunciation octets (see protocols/ble/cgm.ts): `sig` or `nordic`. */
  annunciationLayout: CgmAnnunciationLayout;
}

export const DEFAULT_BLE_CGM_OPTIONS: Readonly<BleCgmOptions> = Object.freeze({
  ...DEFAULT_BLE_CONNECTION_OPTIONS,
  e2eCrc: true,
  annunciationLayout: 'sig',
});

/** Time offsets remembered for duplicate detection (a day and a half of 1-minute records). */
const SEEN_LIMIT = 2048;
/**
 * A record this far (minutes) below the highest time offset seen starts a new sensor session (time
 * offsets restart at 0 with a new sensor, CGMS §3.1.1.4): the remembered offsets are forgotten.
 * A record resent after a reconnect is minutes old, not a day.
 */
const SESSION_RESTART_MINUTES = 24 * 60;

export class BleCgmDriver extends BleDriverBase<BleCgmOptions> {
  readonly driver = 'ble-cgm';
  readonly kind = 'cgm' as const;
  readonly rateUnit = 'readings/min' as const;
  readonly nominalRate = 0.2;
  /** Records handed to the sink. */
  records = 0;
  /** Records dropped as duplicates by their time offset. */
  duplicateRecords = 0;
  private duplicateBytesBefore = 0;
  private readonly seen = new Set<number>();
  private highestOffset = -1;
  /** New sensor sessions detected (time offsets restarting). */
  sessionRestarts = 0;

  constructor(sensor: string, options: BleCgmOptions, deps: DriverDeps, connectorFactory?: GattConnectorFactory) {
    super(sensor, CGM_SERVICE_UUID, options, deps, connectorFactory);
  }

  /** Duplicates suppressed so far: identical notifications (transport) plus records already seen. */
  get duplicates(): number {
    return this.duplicateBytesBefore + (this.link?.duplicatesSuppressed ?? 0) + this.duplicateRecords;
  }

  private link: GattLink | undefined;

  protected async session(link: GattLink): Promise<void> {
    if (this.link) this.duplicateBytesBefore += this.link.duplicatesSuppressed;
    this.link = link;
    let e2eCrc = this.options.e2eCrc;
    if (link.hasCharacteristic(CGM_SERVICE_UUID, CGM_FEATURE_UUID)) {
      const bytes = await link.read(CGM_SERVICE_UUID, CGM_FEATURE_UUID);
      try {
        e2eCrc = decodeCgmFeature(bytes).e2eCrc;
      } catch (error) {
        this.quarantine(link, CGM_FEATURE_UUID, bytes, error);
      }
    }
    const options = { e2eCrc, annunciationLayout: this.options.annunciationLayout };
    await link.subscribe(CGM_SERVICE_UUID, CGM_MEASUREMENT_UUID, (bytes) => {
      let records: CgmMeasurementRecord[];
      try {
        records = decodeCgmMeasurement(bytes, options);
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        this.quarantine(link, CGM_MEASUREMENT_UUID, bytes, error);
        return;
      }
      for (const r of records) this.onRecord(link, r, bytes);
    });
    this.setDetail('streaming');
  }

  private onRecord(link: GattLink, r: CgmMeasurementRecord, bytes: Uint8Array): void {
    if (this.isStopped || !this.sink) return;
    if (r.timeOffsetMinutes < this.highestOffset - SESSION_RESTART_MINUTES) {
      this.seen.clear();
      this.highestOffset = -1;
      this.sessionRestarts += 1;
      this.deps.logger.info({ sensor: this.sensor, timeOffset: r.timeOffsetMinutes }, 'CGM time offsets restarted: a new sensor session');
    }
    this.highestOffset = Math.max(this.highestOffset, r.timeOffsetMinutes);
    if (this.seen.has(r.timeOffsetMinutes)) {
      this.duplicateRecords += 1;
      this.setDetail(`streaming, ${this.duplicates} duplicates suppressed`);
      return;
    }
    this.seen.add(r.timeOffsetMinutes);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as number);
    const value = finiteValue(r.glucose);
    if (value === undefined) {
      this.quarantine(link, CGM_MEASUREMENT_UUID, bytes, new DecodeError('ble-cgm-measurement', `record at time offset ${r.timeOffsetMinutes} has no glucose value (${r.glucose.kind})`));
      return;
    }
    const context: Record<string, string> = { source: 'cgm' };
    const trend = r.trend && finiteValue(r.trend);
    if (trend !== undefined) context.trendMgPerDlPerMin = String(trend);
    const quality = r.quality && finiteValue(r.quality);
    if (quality !== undefined) context.qualityPercent = String(quality);
    if (r.annunciation && r.annunciation.bits !== 0) {
      context.sensorStatus = Object.entries(r.annunciation)
        .filter(([, v]) => v === true)
        .map(([k]) => k)
        .join(',');
    }
    const reading: Reading = { sensor: this.sensor, type: 'glucose', value, unit: 'mg/dL', tDevice: this.deps.clock.now(), meterRecord: r.timeOffsetMinutes, context };
    this.records += 1;
    this.sink.reading(reading);
  }
}

export const BLE_CGM_DRIVER: DriverDescriptor<BleCgmOptions> = {
  name: 'ble-cgm',
  kind: 'cgm',
  transport: 'ble',
  description: 'Continuous glucose monitor (CGM Service 0x181F): CGM Measurement with E2E-CRC, duplicates suppressed and counted',
  optionsSchema: {
    type: 'object',
    properties: {
      ...BLE_CONNECTION_SCHEMA_PROPERTIES,
      e2eCrc: { type: 'boolean' },
      annunciationLayout: { enum: ['sig', 'nordic'] },
    },
    additionalProperties: false,
  },
  defaults: DEFAULT_BLE_CGM_OPTIONS,
  create: (sensor, options, deps) => new BleCgmDriver(sensor, options, deps),
};
