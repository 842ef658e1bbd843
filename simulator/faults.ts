/**
 * Faults as data: what a scenario file may inject per device, by transport, and how each entry maps
 * onto the fault hooks of the device peers (`devices/stream-device.ts` for serial,
 * `bluez/*.ts` for BLE). Times (`atS`, `downS`) are signal seconds: at `--speed 60` an unplug at
 * `atS: 600` happens 10 s after the start.
 */
import type { SchemaObject } from 'ajv';
import type { StreamDeviceFaults } from './devices/stream-device.js';

/** Faults of a serial stream device (ECG front end, stethoscope). */
export interface SerialFaults {
  /** Probability per DATA frame that one byte is damaged (its CRC fails: the host quarantines it). */
  corruptRate: number;
  /** Probability per DATA frame that only a prefix is sent (a device reset mid-frame). */
  truncateRate: number;
  /** Probability per DATA frame that an unknown vendor frame precedes it (skipped by the host, not a loss). */
  vendorFrameRate: number;
  /** The device's crystal is off by this much: its real rate is `rateHz x (1 + ppm/1e6)`. */
  clockSkewPpm: number;
  /** A slow device: writes paced to this many bytes per second (0 = off). */
  slowBytesPerSecond: number;
  /** Frames written in pieces of this many bytes (split frames on the wire; 0 = whole frames). */
  writeChunkBytes: number;
  /**
   * Unplug/replug: the cable is pulled at `atS` for `downS`. `mode`: `pause` (the device buffers:
   * nothing lost), `drop` (samples acquired meanwhile are lost, a gap without bytes), `reset` (power cycle).
   */
  unplug: { atS: number; downS: number; mode: 'pause' | 'drop' | 'reset' }[];
  /** Clock jumps: the device's sample counter skips `samples` at `atS` (a device-side loss). */
  counterJumps: { atS: number; samples: number }[];
  /**
   * ECG only: electrodes off from `atS` for `durationS` of the recording, on the channels of the
   * `channels` mask (default all). The device sends what a front end sends then: the lead-off bit in
   * its DATA frames (announced as meaningful in INFO) and samples at the positive rail (`level: rail`,
   * default, with the saturation bit) or at baseline. Not a loss: every sample is sent. With
   * `statusFrames` it also reports each change in a status-only DATA frame (no samples, §5.1).
   */
  leadOff: { atS: number; durationS: number; channels?: number; level?: 'rail' | 'baseline'; statusFrames?: boolean }[];
}

/** Faults of a BLE peripheral (glucose meter, CGM, heart-rate strap). */
export interface BleFaults {
  /** Every n-th notification is sent twice (0 = never). */
  duplicateEvery: number;
  /** A slow device: wait this long before each notification (ms, real time). */
  notifyDelayMs: number;
  /** Glucose meter: the link drops after this many records of the 1st, 2nd, ... RACP transfer. */
  disconnectAfterRecords: number[];
  /** Glucose meter: wait before each RACP indication (ms). */
  responseDelayMs: number;
  /** Glucose meter: its clock is off by this much (s; positive = fast). */
  clockSkewS: number;
  /** Glucose meter: from record `atRecord` on, its clock is off by a further `byS` (someone set it). */
  clockJump?: { atRecord: number; byS: number };
  /** The peripheral drops the link at these signal times. */
  dropLinkAtS: number[];
  /** CGM: the sensor is replaced at these signal times (a new session start, time offsets from 0; the link stays up). */
  replaceSensorAtS: number[];
}

export const DEFAULT_SERIAL_FAULTS: Readonly<SerialFaults> = Object.freeze({
  corruptRate: 0,
  truncateRate: 0,
  vendorFrameRate: 0,
  clockSkewPpm: 0,
  slowBytesPerSecond: 0,
  writeChunkBytes: 0,
  unplug: [],
  counterJumps: [],
  leadOff: [],
});

export const DEFAULT_BLE_FAULTS: Readonly<BleFaults> = Object.freeze({
  duplicateEvery: 0,
  notifyDelayMs: 0,
  disconnectAfterRecords: [],
  responseDelayMs: 0,
  clockSkewS: 0,
  dropLinkAtS: [],
  replaceSensorAtS: [],
});

const probability = { type: 'number', minimum: 0, maximum: 1, description: 'a probability between 0 and 1', examples: [0.05] };
const seconds = { type: 'number', minimum: 0, description: 'signal seconds (>= 0)', examples: [600] };

export const SERIAL_FAULTS_SCHEMA: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    corruptRate: probability,
    truncateRate: probability,
    vendorFrameRate: probability,
    clockSkewPpm: { type: 'number', minimum: -100_000, maximum: 100_000, examples: [50] },
    slowBytesPerSecond: { type: 'integer', minimum: 0, examples: [2000] },
    writeChunkBytes: { type: 'integer', minimum: 0, maximum: 4112, examples: [16] },
    unplug: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['atS'],
        properties: { atS: seconds, downS: { type: 'number', minimum: 0, maximum: 3600, examples: [2] }, mode: { type: 'string', enum: ['pause', 'drop', 'reset'] } },
      },
    },
    counterJumps: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['atS', 'samples'], properties: { atS: seconds, samples: { type: 'integer', minimum: 1, examples: [360] } } },
    },
    leadOff: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['atS', 'durationS'],
        properties: {
          atS: seconds,
          durationS: { type: 'number', exclusiveMinimum: 0, maximum: 86_400, description: 'signal seconds the electrodes stay off (> 0)', examples: [20] },
          channels: { type: 'integer', minimum: 1, maximum: 0xffffffff, description: 'a mask of the channels whose electrodes come off (bit c = channel c)', examples: [1] },
          level: { type: 'string', enum: ['rail', 'baseline'] },
          statusFrames: { type: 'boolean', description: 'the front end also sends a status-only DATA frame (no samples) when the electrodes come off and when they are back' },
        },
      },
    },
  },
};

export const BLE_FAULTS_SCHEMA: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    duplicateEvery: { type: 'integer', minimum: 0, examples: [3] },
    notifyDelayMs: { type: 'integer', minimum: 0, maximum: 10_000, examples: [20] },
    disconnectAfterRecords: { type: 'array', items: { type: 'integer', minimum: 0, examples: [150] } },
    responseDelayMs: { type: 'integer', minimum: 0, maximum: 10_000, examples: [20] },
    clockSkewS: { type: 'number', examples: [3600] },
    clockJump: {
      type: 'object',
      additionalProperties: false,
      required: ['atRecord', 'byS'],
      properties: { atRecord: { type: 'integer', minimum: 0, examples: [300] }, byS: { type: 'number', examples: [-86400] } },
    },
    dropLinkAtS: { type: 'array', items: seconds },
    replaceSensorAtS: { type: 'array', items: seconds },
  },
};

/** Merges a scenario's serial faults over the defaults (a new object; unplug defaults: 1 s, `pause`). */
export function resolveSerialFaults(input: Partial<SerialFaults> | undefined): SerialFaults {
  const f = { ...DEFAULT_SERIAL_FAULTS, ...input };
  return {
    ...f,
    unplug: (f.unplug ?? []).map((u) => ({ atS: u.atS, downS: u.downS ?? 1, mode: u.mode ?? 'pause' })).sort((a, b) => a.atS - b.atS),
    counterJumps: [...(f.counterJumps ?? [])].sort((a, b) => a.atS - b.atS),
    leadOff: (f.leadOff ?? []).map((l) => ({ ...l })).sort((a, b) => a.atS - b.atS),
  };
}

export function resolveBleFaults(input: Partial<BleFaults> | undefined): BleFaults {
  return { ...DEFAULT_BLE_FAULTS, ...input, disconnectAfterRecords: [...(input?.disconnectAfterRecords ?? [])], dropLinkAtS: [...(input?.dropLinkAtS ?? [])].sort((a, b) => a - b), replaceSensorAtS: [...(input?.replaceSensorAtS ?? [])].sort((a, b) => a - b) };
}

/**
 * The stream device peer's fault options for the serial faults (unplugs and counter jumps are
 * scheduled by the runner; lead-off spans become sample ranges of the recording at `rateHz`).
 */
export function streamDeviceFaults(f: SerialFaults, seed: number, rateHz: number): Partial<StreamDeviceFaults> {
  return {
    leadOff: f.leadOff.map((l) => ({
      fromSample: Math.round(l.atS * rateHz),
      samples: Math.max(1, Math.round(l.durationS * rateHz)),
      ...(l.channels !== undefined ? { channels: l.channels } : {}),
      ...(l.level !== undefined ? { level: l.level } : {}),
      ...(l.statusFrames !== undefined ? { statusFrames: l.statusFrames } : {}),
    })),
    corruptRate: f.corruptRate,
    truncateRate: f.truncateRate,
    vendorFrameRate: f.vendorFrameRate,
    clockSkewPpm: f.clockSkewPpm,
    slowBytesPerSecond: f.slowBytesPerSecond,
    writeChunkBytes: f.writeChunkBytes,
    seed,
  };
}

/** The simulated glucose meter's fault fields for the BLE faults. */
export function glucoseMeterFaults(f: BleFaults): {
  duplicateEvery: number;
  notifyDelayMs: number;
  disconnectAfterRecords: number[];
  responseDelayMs: number;
  clockSkewMs: number;
  clockJump: { atSequence: number; byMs: number } | undefined;
} {
  return {
    duplicateEvery: f.duplicateEvery,
    notifyDelayMs: f.notifyDelayMs,
    disconnectAfterRecords: [...f.disconnectAfterRecords],
    responseDelayMs: f.responseDelayMs,
    clockSkewMs: Math.round(f.clockSkewS * 1000),
    clockJump: f.clockJump ? { atSequence: f.clockJump.atRecord, byMs: Math.round(f.clockJump.byS * 1000) } : undefined,
  };
}
