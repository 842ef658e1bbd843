/**
 * Bluetooth Glucose Service (GLS 1.0) characteristic codecs: Glucose Measurement (0x2A18),
 * Glucose Measurement Context (0x2A34) and Glucose Feature (0x2A51). The Record Access Control
 * Point (0x2A52) is shared with CGMS and lives in `racp.ts`.
 *
 * Layouts follow `shared/specs/ble-health-profiles.md` §3.2–3.4, checked against the nRF5 SDK
 * encoder (`components/ble/ble_services/ble_gls/ble_gls.c`, `gls_meas_encode`) and Nordic's
 * Android-BLE-Common-Library parsers (`ble-common/.../callback/glucose/*DataCallback.java`).
 *
 * Strictness (decoders throw only `DecodeError`, codec names below):
 * - reserved flag bits set (measurement bits 5–7) fail: they may announce fields this decoder
 *   does not know, so the offsets of everything after them would be guesses;
 * - trailing bytes fail for all three characteristics: every field is announced by a flag, so
 *   extra bytes mean a layout we do not understand. Nordic's Android library ignores them; the raw
 *   bytes go to quarantine here instead and can be re-parsed later;
 * - Glucose Feature must be exactly 2 bytes (as in Nordic's parser);
 * - reserved *values* (an unknown sample type, reserved status bits) do not fail: they are kept as
 *   numbers, named `'reserved'`, and round-trip unchanged.
 *
 * Disputed reading, Sensor Status Annunciation bits 5 and 6: this codec reads bit 5 (0x0020) as
 * "result higher than the device can process" and bit 6 (0x0040) as "result lower", as do the
 * nRF5 SDK firmware header (`ble_gls.h`: `BLE_GLS_MEAS_STATUS_RESULT_HIGH 0x0020`,
 * `..._RESULT_LOW 0x0040`), Wireshark's `packet-btatt.c`, Arm Cordio (`CH_GLM_STATUS_RESULT_HIGH
 * 0x0020`) and GigaDevice's GLP profile (`SENS_RES_HIGHER_POS = 5`), in the SIG table order.
 * Nordic's Android-BLE-Common-Library (`GlucoseMeasurementCallback.GlucoseStatus`) maps them the
 * other way round; that library is the outlier. The tests keep a fixture for each bit.
 *
 * Time offset: sint16 minutes (spec §3.2; GigaDevice `int16_t time_offset`; Nordic's current test
 * expects −5 from `FB FF`). Older Nordic parsers read it as uint16, which turns −5 into +65531.
 *
 * Context amounts: carbohydrate in kilograms and medication in kilograms or liters, as the SIG
 * defines them (GigaDevice: "Carbohydrate, units of kilograms"); Nordic's parser comments say
 * grams and mg/ml. The SFLOAT is kept as sent, with grams / milligrams / millilitres derived.
 *
 * Units: flag bit 2 selects kg/L or mol/L for the concentration. Both decoded forms carry
 * mg/dL (kg/L × 100 000) and mmol/L (mol/L × 1 000); the cross conversion uses the molar mass of
 * glucose, 180.156 g/mol (1 mmol/L = 18.0156 mg/dL). Nordic's library uses 18.2 for it.
 */
import { ConfigError, DecodeError } from '../../errors.js';
import { scaledValue, type Ieee11073Value } from '../ieee11073.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { coded, codeOf, namedBits, reservedBitsSet, type Coded, type CodeInput } from './codes.js';
import { readDateTime, writeDateTime, type BleDateTime, type BleDateTimeFields } from './date-time.js';

export const GLUCOSE_MEASUREMENT_UUID = 0x2a18;
export const GLUCOSE_MEASUREMENT_CONTEXT_UUID = 0x2a34;
export const GLUCOSE_FEATURE_UUID = 0x2a51;

export const GLUCOSE_MEASUREMENT_CODEC = 'ble-glucose-measurement';
export const GLUCOSE_MEASUREMENT_CONTEXT_CODEC = 'ble-glucose-measurement-context';
export const GLUCOSE_FEATURE_CODEC = 'ble-glucose-feature';

/** mg/dL per mmol/L: glucose C6H12O6, 180.156 g/mol. */
export const MG_PER_DL_PER_MMOL_PER_L = 18.0156;

// ---------------------------------------------------------------------------------------------
// Names

export const GLUCOSE_SAMPLE_TYPES = Object.freeze({
  1: 'capillary-whole-blood',
  2: 'capillary-plasma',
  3: 'venous-whole-blood',
  4: 'venous-plasma',
  5: 'arterial-whole-blood',
  6: 'arterial-plasma',
  7: 'undetermined-whole-blood',
  8: 'undetermined-plasma',
  9: 'interstitial-fluid',
  10: 'control-solution',
} as const);
export type GlucoseSampleTypeName = (typeof GLUCOSE_SAMPLE_TYPES)[keyof typeof GLUCOSE_SAMPLE_TYPES];

export const GLUCOSE_SAMPLE_LOCATIONS = Object.freeze({
  1: 'finger',
  2: 'alternate-site-test',
  3: 'earlobe',
  4: 'control-solution',
  15: 'not-available',
} as const);
export type GlucoseSampleLocationName = (typeof GLUCOSE_SAMPLE_LOCATIONS)[keyof typeof GLUCOSE_SAMPLE_LOCATIONS];

/** Sensor Status Annunciation (uint16): flag name -> bit. Bits 12–15 are reserved. See the note on bits 5/6 above. */
export const GLUCOSE_SENSOR_STATUS_BITS = Object.freeze({
  batteryLow: 0,
  sensorMalfunction: 1,
  sampleSizeInsufficient: 2,
  stripInsertionError: 3,
  stripTypeIncorrect: 4,
  resultTooHigh: 5,
  resultTooLow: 6,
  temperatureTooHigh: 7,
  temperatureTooLow: 8,
  readInterrupted: 9,
  generalDeviceFault: 10,
  timeFault: 11,
} as const);
export type GlucoseSensorStatusFlag = keyof typeof GLUCOSE_SENSOR_STATUS_BITS;

/** Glucose Feature (uint16): flag name -> bit. Bits 11–15 are reserved. */
export const GLUCOSE_FEATURE_BITS = Object.freeze({
  lowBatteryDetection: 0,
  sensorMalfunctionDetection: 1,
  sensorSampleSize: 2,
  stripInsertionErrorDetection: 3,
  stripTypeErrorDetection: 4,
  resultHighLowDetection: 5,
  temperatureHighLowDetection: 6,
  readInterruptDetection: 7,
  generalDeviceFault: 8,
  timeFault: 9,
  multipleBond: 10,
} as const);
export type GlucoseFeatureFlag = keyof typeof GLUCOSE_FEATURE_BITS;

export const GLUCOSE_CARBOHYDRATES = Object.freeze({
  1: 'breakfast',
  2: 'lunch',
  3: 'dinner',
  4: 'snack',
  5: 'drink',
  6: 'supper',
  7: 'brunch',
} as const);
export type GlucoseCarbohydrateName = (typeof GLUCOSE_CARBOHYDRATES)[keyof typeof GLUCOSE_CARBOHYDRATES];

export const GLUCOSE_MEALS = Object.freeze({
  1: 'preprandial',
  2: 'postprandial',
  3: 'fasting',
  4: 'casual',
  5: 'bedtime',
} as const);
export type GlucoseMealName = (typeof GLUCOSE_MEALS)[keyof typeof GLUCOSE_MEALS];

export const GLUCOSE_TESTERS = Object.freeze({
  1: 'self',
  2: 'health-care-professional',
  3: 'lab-test',
  15: 'not-available',
} as const);
export type GlucoseTesterName = (typeof GLUCOSE_TESTERS)[keyof typeof GLUCOSE_TESTERS];

export const GLUCOSE_HEALTH = Object.freeze({
  1: 'minor-health-issues',
  2: 'major-health-issues',
  3: 'during-menses',
  4: 'under-stress',
  5: 'no-health-issues',
  15: 'not-available',
} as const);
export type GlucoseHealthName = (typeof GLUCOSE_HEALTH)[keyof typeof GLUCOSE_HEALTH];

export const GLUCOSE_MEDICATIONS = Object.freeze({
  1: 'rapid-acting-insulin',
  2: 'short-acting-insulin',
  3: 'intermediate-acting-insulin',
  4: 'long-acting-insulin',
  5: 'pre-mixed-insulin',
} as const);
export type GlucoseMedicationName = (typeof GLUCOSE_MEDICATIONS)[keyof typeof GLUCOSE_MEDICATIONS];

// ---------------------------------------------------------------------------------------------
// Glucose Measurement 0x2A18

export type GlucoseUnits = 'kg/L' | 'mol/L';

/** What the encoder needs. SFLOAT fields take a decoded value or a plain number (shortest exact encoding). */
export interface GlucoseMeasurementFields {
  /** uint16, the meter's record number; matches the context record. */
  sequenceNumber: number;
  /** Date Time of the measurement, before the time offset. */
  baseTime: BleDateTimeFields;
  /** sint16 minutes to add to `baseTime`; present iff flags bit 0. */
  timeOffsetMinutes?: number;
  /** Flags bit 2, the unit of `concentration`. Kept even when no concentration is sent. */
  units: GlucoseUnits;
  /** Flags bit 1: concentration (SFLOAT in `units`), sample type (low nibble), sample location (high nibble). */
  concentration?: {
    value: Ieee11073Value | number;
    type: CodeInput;
    sampleLocation: CodeInput;
  };
  /** Flags bit 3: Sensor Status Annunciation, uint16 (use `GLUCOSE_SENSOR_STATUS_BITS`). */
  sensorStatus?: { bits: number };
  /** Flags bit 4: a Glucose Measurement Context with the same sequence number follows. */
  contextFollows: boolean;
}

export interface GlucoseConcentration {
  /** As transmitted, in the measurement's `units`. */
  value: Ieee11073Value;
  /** Absent when `value` is NaN/NRes/INF/reserved. */
  mgPerDl?: number;
  mmolPerL?: number;
  type: Coded<GlucoseSampleTypeName>;
  sampleLocation: Coded<GlucoseSampleLocationName>;
}

export type GlucoseSensorStatus = { bits: number } & Record<GlucoseSensorStatusFlag, boolean>;

export interface GlucoseMeasurement extends GlucoseMeasurementFields {
  baseTime: BleDateTime;
  /** `baseTime` plus the offset, in ms (wall clock read as UTC); absent when the base time is incomplete. */
  measuredAtMs?: number;
  concentration?: GlucoseConcentration;
  sensorStatus?: GlucoseSensorStatus;
}

const MEASUREMENT_FLAGS = 0x1f;

export function decodeGlucoseMeasurement(bytes: Uint8Array): GlucoseMeasurement {
  const r = new ByteReader(GLUCOSE_MEASUREMENT_CODEC, bytes);
  const flags = r.uint8('flags');
  const reserved = reservedBitsSet(flags, MEASUREMENT_FLAGS);
  if (reserved.length > 0) {
    throw new DecodeError(GLUCOSE_MEASUREMENT_CODEC, `reserved flag bit${reserved.length > 1 ? 's' : ''} ${reserved.join(', ')} set (flags 0x${hex8(flags)}); the fields they announce are unknown`);
  }
  const sequenceNumber = r.uint16('sequence number');
  const baseTime = readDateTime(r, 'base time');
  const out: GlucoseMeasurement = { sequenceNumber, baseTime, units: flags & 0x04 ? 'mol/L' : 'kg/L', contextFollows: (flags & 0x10) !== 0 };
  if (flags & 0x01) out.timeOffsetMinutes = r.int16('time offset');
  if (flags & 0x02) {
    const value = r.sfloat('glucose concentration');
    const typeAndLocation = r.uint8('type-sample location');
    out.concentration = glucoseConcentration(value, out.units, typeAndLocation & 0x0f, typeAndLocation >>> 4);
  }
  if (flags & 0x08) out.sensorStatus = glucoseSensorStatus(r.uint16('sensor status annunciation'));
  r.expectEnd('the last field announced by the flags');
  if (baseTime.epochMs !== undefined) out.measuredAtMs = baseTime.epochMs + (out.timeOffsetMinutes ?? 0) * 60_000;
  return out;
}

export function encodeGlucoseMeasurement(measurement: GlucoseMeasurementFields): Uint8Array {
  const m = measurement;
  if (m.units !== 'kg/L' && m.units !== 'mol/L') {
    throw new ConfigError('/units', m.units, 'is not a Glucose Measurement unit', "use 'kg/L' or 'mol/L'");
  }
  const flags =
    (m.timeOffsetMinutes !== undefined ? 0x01 : 0) |
    (m.concentration !== undefined ? 0x02 : 0) |
    (m.units === 'mol/L' ? 0x04 : 0) |
    (m.sensorStatus !== undefined ? 0x08 : 0) |
    (m.contextFollows ? 0x10 : 0);
  const w = new ByteWriter().uint8(flags, '/flags').uint16(m.sequenceNumber, '/sequenceNumber');
  writeDateTime(w, m.baseTime, '/baseTime');
  if (m.timeOffsetMinutes !== undefined) w.int16(m.timeOffsetMinutes, '/timeOffsetMinutes');
  if (m.concentration !== undefined) {
    const c = m.concentration;
    w.sfloat(c.value, '/concentration/value');
    w.uint8((codeOf(c.sampleLocation, 4, '/concentration/sampleLocation') << 4) | codeOf(c.type, 4, '/concentration/type'), '/concentration');
  }
  if (m.sensorStatus !== undefined) w.uint16(m.sensorStatus.bits, '/sensorStatus/bits');
  return w.toBytes();
}

/** The decoded concentration for an SFLOAT in `units` and the two nibbles. */
export function glucoseConcentration(value: Ieee11073Value, units: GlucoseUnits, type: number, sampleLocation: number): GlucoseConcentration {
  const out: GlucoseConcentration = { value, type: coded(GLUCOSE_SAMPLE_TYPES, type), sampleLocation: coded(GLUCOSE_SAMPLE_LOCATIONS, sampleLocation) };
  if (value.kind === 'number') {
    if (units === 'kg/L') {
      out.mgPerDl = scaledValue(value.mantissa, value.exponent + 5);
      out.mmolPerL = out.mgPerDl / MG_PER_DL_PER_MMOL_PER_L;
    } else {
      out.mmolPerL = scaledValue(value.mantissa, value.exponent + 3);
      out.mgPerDl = out.mmolPerL * MG_PER_DL_PER_MMOL_PER_L;
    }
  }
  return out;
}

export function glucoseSensorStatus(bits: number): GlucoseSensorStatus {
  return { bits, ...namedBits(GLUCOSE_SENSOR_STATUS_BITS, bits) };
}

// ---------------------------------------------------------------------------------------------
// Glucose Measurement Context 0x2A34

export type MedicationUnits = 'kg' | 'L';

export interface GlucoseMeasurementContextFields {
  /** uint16, equal to the measurement's. */
  sequenceNumber: number;
  /** Flags bit 7: the Extended Flags byte. All its bits are reserved in GLS 1.0; the value is kept as sent. */
  extendedFlags?: number;
  /** Flags bit 0: carbohydrate ID and amount (SFLOAT, kilograms per the SIG definition). */
  carbohydrate?: { id: CodeInput; amount: Ieee11073Value | number };
  /** Flags bit 1. */
  meal?: CodeInput;
  /** Flags bit 2: tester (low nibble) and health (high nibble). */
  testerHealth?: { tester: CodeInput; health: CodeInput };
  /** Flags bit 3: duration uint16 s (0xFFFF = overrun), intensity uint8 %. */
  exercise?: { durationSeconds: number; intensityPercent: number };
  /** Flags bit 5, the unit of `medication.amount`. Kept even when no medication is sent. */
  medicationUnits: MedicationUnits;
  /** Flags bit 4: medication ID and amount (SFLOAT in `medicationUnits`). */
  medication?: { id: CodeInput; amount: Ieee11073Value | number };
  /** Flags bit 6: HbA1c, SFLOAT, percent. */
  hba1c?: Ieee11073Value | number;
}

export interface GlucoseMeasurementContext extends GlucoseMeasurementContextFields {
  /** `amount` in kg as sent; `grams` derived (absent for special values). */
  carbohydrate?: { id: Coded<GlucoseCarbohydrateName>; amount: Ieee11073Value; grams?: number };
  meal?: Coded<GlucoseMealName>;
  testerHealth?: { tester: Coded<GlucoseTesterName>; health: Coded<GlucoseHealthName> };
  exercise?: { durationSeconds: number; intensityPercent: number; overrun: boolean };
  /** `amount` in `medicationUnits` as sent; milligrams (kg) or millilitres (L) derived. */
  medication?: { id: Coded<GlucoseMedicationName>; amount: Ieee11073Value; milligrams?: number; millilitres?: number };
  hba1c?: Ieee11073Value;
}

export function decodeGlucoseMeasurementContext(bytes: Uint8Array): GlucoseMeasurementContext {
  const r = new ByteReader(GLUCOSE_MEASUREMENT_CONTEXT_CODEC, bytes);
  const flags = r.uint8('flags');
  const out: GlucoseMeasurementContext = { sequenceNumber: r.uint16('sequence number'), medicationUnits: flags & 0x20 ? 'L' : 'kg' };
  if (flags & 0x80) out.extendedFlags = r.uint8('extended flags');
  if (flags & 0x01) {
    const id = coded(GLUCOSE_CARBOHYDRATES, r.uint8('carbohydrate ID'));
    const amount = r.sfloat('carbohydrate');
    out.carbohydrate = amount.kind === 'number' ? { id, amount, grams: scaledValue(amount.mantissa, amount.exponent + 3) } : { id, amount };
  }
  if (flags & 0x02) out.meal = coded(GLUCOSE_MEALS, r.uint8('meal'));
  if (flags & 0x04) {
    const b = r.uint8('tester-health');
    out.testerHealth = { tester: coded(GLUCOSE_TESTERS, b & 0x0f), health: coded(GLUCOSE_HEALTH, b >>> 4) };
  }
  if (flags & 0x08) {
    const durationSeconds = r.uint16('exercise duration');
    out.exercise = { durationSeconds, intensityPercent: r.uint8('exercise intensity'), overrun: durationSeconds === 0xffff };
  }
  if (flags & 0x10) {
    const id = coded(GLUCOSE_MEDICATIONS, r.uint8('medication ID'));
    const amount = r.sfloat('medication');
    out.medication = { id, amount };
    if (amount.kind === 'number') {
      if (out.medicationUnits === 'kg') out.medication.milligrams = scaledValue(amount.mantissa, amount.exponent + 6);
      else out.medication.millilitres = scaledValue(amount.mantissa, amount.exponent + 3);
    }
  }
  if (flags & 0x40) out.hba1c = r.sfloat('HbA1c');
  r.expectEnd('the last field announced by the flags');
  return out;
}

export function encodeGlucoseMeasurementContext(context: GlucoseMeasurementContextFields): Uint8Array {
  const c = context;
  if (c.medicationUnits !== 'kg' && c.medicationUnits !== 'L') {
    throw new ConfigError('/medicationUnits', c.medicationUnits, 'is not a medication unit', "use 'kg' or 'L'");
  }
  const flags =
    (c.carbohydrate !== undefined ? 0x01 : 0) |
    (c.meal !== undefined ? 0x02 : 0) |
    (c.testerHealth !== undefined ? 0x04 : 0) |
    (c.exercise !== undefined ? 0x08 : 0) |
    (c.medication !== undefined ? 0x10 : 0) |
    (c.medicationUnits === 'L' ? 0x20 : 0) |
    (c.hba1c !== undefined ? 0x40 : 0) |
    (c.extendedFlags !== undefined ? 0x80 : 0);
  const w = new ByteWriter().uint8(flags, '/flags').uint16(c.sequenceNumber, '/sequenceNumber');
  if (c.extendedFlags !== undefined) w.uint8(c.extendedFlags, '/extendedFlags');
  if (c.carbohydrate !== undefined) {
    w.uint8(codeOf(c.carbohydrate.id, 8, '/carbohydrate/id'), '/carbohydrate/id').sfloat(c.carbohydrate.amount, '/carbohydrate/amount');
  }
  if (c.meal !== undefined) w.uint8(codeOf(c.meal, 8, '/meal'), '/meal');
  if (c.testerHealth !== undefined) {
    const { tester, health } = c.testerHealth;
    w.uint8((codeOf(health, 4, '/testerHealth/health') << 4) | codeOf(tester, 4, '/testerHealth/tester'), '/testerHealth');
  }
  if (c.exercise !== undefined) {
    w.uint16(c.exercise.durationSeconds, '/exercise/durationSeconds').uint8(c.exercise.intensityPercent, '/exercise/intensityPercent');
  }
  if (c.medication !== undefined) {
    w.uint8(codeOf(c.medication.id, 8, '/medication/id'), '/medication/id').sfloat(c.medication.amount, '/medication/amount');
  }
  if (c.hba1c !== undefined) w.sfloat(c.hba1c, '/hba1c');
  return w.toBytes();
}

// ---------------------------------------------------------------------------------------------
// Glucose Feature 0x2A51

export type GlucoseFeature = { bits: number } & Record<GlucoseFeatureFlag, boolean>;

/** Exactly two bytes (uint16). */
export function decodeGlucoseFeature(bytes: Uint8Array): GlucoseFeature {
  const r = new ByteReader(GLUCOSE_FEATURE_CODEC, bytes);
  const bits = r.uint16('features');
  r.expectEnd('the uint16 feature bits');
  return { bits, ...namedBits(GLUCOSE_FEATURE_BITS, bits) };
}

export function encodeGlucoseFeature(feature: { bits: number }): Uint8Array {
  return new ByteWriter().uint16(feature.bits, '/bits').toBytes();
}

function hex8(value: number): string {
  return value.toString(16).toUpperCase().padStart(2, '0');
}
