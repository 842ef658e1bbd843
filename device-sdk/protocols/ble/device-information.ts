/**
 * Device Information Service (DIS 1.1, service 0x180A): the text characteristics a collector reads to
 * tell devices apart. A glucose meter's Serial Number String is its identity where its Bluetooth
 * address is not one (a random address that changes with a battery, `device-sdk/records.ts` `MeterIdentity`).
 *
 * | uuid   | characteristic           | type (GATT Specification Supplement) |
 * |--------|--------------------------|--------------------------------------|
 * | 0x2A29 | Manufacturer Name String | utf8s                                |
 * | 0x2A24 | Model Number String      | utf8s                                |
 * | 0x2A25 | Serial Number String     | utf8s                                |
 * | 0x2A26 | Firmware Revision String | utf8s                                |
 *
 * utf8s: the whole value is the string, UTF-8, no length byte and no terminator; an attribute value is
 * at most 512 bytes (Core Spec Vol 3 Part F §3.2.9). Tolerated, as devices send them: trailing NUL
 * padding (a fixed-size buffer) and surrounding spaces, both removed. Refused (`DecodeError`, the bytes go
 * to quarantine): bytes that are not UTF-8, a NUL or another control character inside the text, and more
 * than 512 bytes. A value that is empty once trimmed decodes as `undefined` (the device has none).
 *
 * A Serial Number String may also be a placeholder that many units send alike (`isPlaceholderSerial`): a stack's
 * default (NXP EdgeFast's `CONFIG_BT_DIS_SERIAL_NUMBER_STR` is "00000000"), erased flash read as text ("FFFFFFFF"),
 * a firmware template's value ("123456789") or a word ("N/A", "unknown"). It is text, decoded as such; what it
 * identifies is for the collector to judge.
 */
import { ConfigError, DecodeError } from '../../errors.js';

export const DEVICE_INFORMATION_SERVICE_UUID = 0x180a;
export const MANUFACTURER_NAME_UUID = 0x2a29;
export const MODEL_NUMBER_UUID = 0x2a24;
export const SERIAL_NUMBER_UUID = 0x2a25;
export const FIRMWARE_REVISION_UUID = 0x2a26;

export const DEVICE_INFORMATION_CODEC = 'ble-device-information';

/** The largest attribute value (Core Spec Vol 3 Part F §3.2.9). */
export const MAX_ATTRIBUTE_LENGTH = 512;

/** The DIS strings medge reads, by field, and their characteristics. */
export const DEVICE_INFORMATION_FIELDS = Object.freeze({
  manufacturer: MANUFACTURER_NAME_UUID,
  model: MODEL_NUMBER_UUID,
  serial: SERIAL_NUMBER_UUID,
  firmware: FIRMWARE_REVISION_UUID,
} as const);
export type DeviceInformationField = keyof typeof DEVICE_INFORMATION_FIELDS;

/** What a device told of itself; a field is absent when the device has no such characteristic, refused it, or sent an empty one. */
export type DeviceInformation = Partial<Record<DeviceInformationField, string>>;

/** C0 and C1 control characters and DEL (QA re-check: C1, U+0080-U+009F, passed). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Decodes a DIS utf8s value (see the module comment); undefined when it is empty once trimmed. */
export function decodeDisString(bytes: Uint8Array): string | undefined {
  if (bytes.length > MAX_ATTRIBUTE_LENGTH) throw new DecodeError(DEVICE_INFORMATION_CODEC, `${bytes.length} bytes: an attribute value is at most ${MAX_ATTRIBUTE_LENGTH}`);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end -= 1;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, end));
  } catch (error) {
    throw new DecodeError(DEVICE_INFORMATION_CODEC, 'not UTF-8', { cause: error });
  }
  const trimmed = text.trim();
  const control = CONTROL.exec(trimmed);
  if (control) throw new DecodeError(DEVICE_INFORMATION_CODEC, `control character 0x${control[0].charCodeAt(0).toString(16).padStart(2, '0')} at ${control.index} of the text`);
  return trimmed === '' ? undefined : trimmed;
}

/** Encodes a DIS utf8s value (no terminator). Refuses a control character or more than 512 bytes (`ConfigError`). */
export function encodeDisString(text: string, field = '/value'): Uint8Array {
  if (typeof text !== 'string' || CONTROL.test(text)) throw new ConfigError(field, text, 'is not a DIS text (a string without control characters)', 'remove the control characters');
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > MAX_ATTRIBUTE_LENGTH) throw new ConfigError(field, `${bytes.length} bytes`, `is longer than an attribute value (${MAX_ATTRIBUTE_LENGTH} bytes)`, 'shorten it');
  return bytes;
}

/** Separators ignored when a serial is compared with the placeholders: spaces, `-`, `_`, `.`, `:`, `/`, `\`, `#`. */
const SERIAL_SEPARATORS = /[\s\-_.:/\\#]/g;
/**
 * A label or notation before the serial itself, removed before the text is judged: `SN:`, `SN `, `S/N:`, `Serial:`,
 * `Serial No.`, `Serial Number:` (case ignored), with the separators after it (`:`, `-`, space, `#`, `.`: at least one,
 * so `SNAAAAAA`, `SN12345678`, `SNNA` are serials, QA round 2), and `0x`.
 */
const SERIAL_LABEL = /^\s*(?:(?:s\s*\/?\s*n|serial(?:\s*(?:number|num|no|nr))?)[\s.:#-]+|0x)/i;
/** Words that are no serial, lower case and without separators (`N/A` is `na`, `S/N` is `sn`). */
const PLACEHOLDER_SERIAL_WORDS: ReadonlySet<string> = new Set(['na', 'none', 'null', 'nil', 'unknown', 'undefined', 'serial', 'serialnumber', 'sn', 'default', 'notset', 'notavailable', 'empty', 'invalid', 'tbd']);
/** One character repeated, at least 6 times (`000000`, `FFFFFFFF`): shorter runs are serials of some makers (`1111`). */
const ONE_CHARACTER_REPEATED = /^(.)\1{5,}$/su;
/** The digits alone counting up from 0 or 1, eight or more (`12345678`, `123456789`, `0123456789`, `1234567890`). */
const COUNTING_DIGITS = /^0?12345678(?:90?)?$/;

/**
 * Whether a decoded Serial Number String is a placeholder rather than one unit's serial: the same on every unit that
 * sends it, so no identity. Conservative (a serial taken for a placeholder is a device not told apart from another),
 * case ignored, judged on the text as sent and on the text after a label (`SERIAL_LABEL`: `SN:`, `S/N:`, `Serial:`,
 * `Serial No.`, `0x`):
 * - nothing but separators (`SERIAL_SEPARATORS`), or one character repeated 6 times or more, separators ignored
 *   (`000000`, `0000000000`, `FFFFFFFF`, `00-00-00`, `SN:00000000`, `0x00000000`);
 * - the digits alone counting up from 0 or 1, 8 or more (`12345678`, `123456789`, `0123456789`, `1234567890`);
 * - a word that says there is none, separators ignored (`PLACEHOLDER_SERIAL_WORDS`: `N/A`, `none`, `null`,
 *   `unknown`, `serial`, `S/N`, `default`, `not set`, ...; `S/N: N/A`, `Serial: unknown`).
 * Anything else is a serial: `1234`, `12345`, `123456`, `01234`, `1111`, `7`, `A`, `1234-5678`, `123-456-789`, and a
 * serial that merely contains zeros (`SN-000123`).
 */
export function isPlaceholderSerial(text: string): boolean {
  const unlabelled = text.replace(SERIAL_LABEL, '');
  return placeholderText(text) || (unlabelled !== text && placeholderText(unlabelled));
}

function placeholderText(text: string): boolean {
  const bare = text.replace(SERIAL_SEPARATORS, '').toLowerCase();
  return bare === '' || ONE_CHARACTER_REPEATED.test(bare) || COUNTING_DIGITS.test(text.trim()) || PLACEHOLDER_SERIAL_WORDS.has(bare);
}
