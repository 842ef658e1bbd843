/**
 * ATT error codes as a GATT client sees them through BlueZ's D-Bus API, and the application error codes the
 * health services give a control point write (pure: no I/O).
 *
 * A server refuses a write with an ATT Error Response carrying a one-byte code (Core Spec Vol 3 Part F
 * §3.4.1.1): 0x01-0x13 ATT's own, 0x80-0x9F defined by each service ("application errors"), 0xE0-0xFF common
 * to all profiles and services (Core Specification Supplement Part B: 0xFC write request rejected, 0xFD CCCD
 * improperly configured, 0xFE procedure already in progress, 0xFF out of range).
 *
 * A write to the Record Access Control Point while a procedure runs is refused so, not answered by a RACP
 * indication:
 *
 * | service        | procedure already in progress | CCCD improperly configured | 0x80 / 0x81 mean             |
 * |----------------|-------------------------------|----------------------------|------------------------------|
 * | Glucose (GLS)  | 0x80                          | 0x81                       | those two                    |
 * | CGM (CGMS)     | 0xFE (common code)            | 0xFD (common code)         | missing CRC / invalid CRC    |
 *
 * As public stacks implement them: Stonestreet One Bluetopia `GLSTypes.h` (GLS_ERROR_CODE_PROCEDURE_ALREADY_IN_PROGRESS
 * 0x80, ..._CHARACTERISTIC_CONFIGURATION_IMPROPERLY_CONFIGURED 0x81) and `CGMSTypes.h` (CGMS_ERROR_CODE_MISSING_CRC
 * 0x80, _INVALID_CRC 0x81, _CHARACTERISTIC_CONFIGURATION_IMPROPERLY_CONFIGURED 0xFD, _PROCEDURE_ALREADY_IN_PROGRESS
 * 0xFE); RivieraWaves `glp_common.h` (GLP_ERR_PROC_ALREADY_IN_PROGRESS 0x80, GLP_ERR_IMPROPER_CLI_CHAR_CFG 0x81; its
 * `glps.c` refuses every RACP write but abort while a procedure runs with it) and `cgmp_common.h` (CGM_ERROR_MISSING_CRC
 * 0x80, CGM_ERROR_INVALID_CRC 0x81).
 *
 * BlueZ (src/gatt-client.c `create_gatt_dbus_error`, 5.x) answers the `ReadValue`/`WriteValue` of a characteristic
 * whose ATT request failed with a D-Bus error: 0x02 `org.bluez.Error.NotPermitted` "Read not permitted", 0x03
 * NotPermitted "Write not permitted", 0x05/0x0F/0x0C NotPermitted "Not paired", 0x07 `InvalidArguments` "Invalid
 * offset", 0x0D InvalidArguments "Invalid Length", 0x08 `NotAuthorized`, 0x06 `NotSupported`, and every other code
 * `org.bluez.Error.Failed` "Operation failed with ATT error: 0x%02x" (0x80 gives "Operation failed with ATT error:
 * 0x80"). `attErrorFromBluez` reads the code back; `bluezAttError` is the error BlueZ sends for a code.
 */

import { ConfigError } from '../../errors.js';

/** The ATT error codes of the Core Specification Supplement Part B, common to all services. */
export const ATT_COMMON_ERRORS = Object.freeze({
  0xfc: 'write-request-rejected',
  0xfd: 'cccd-improperly-configured',
  0xfe: 'procedure-already-in-progress',
  0xff: 'out-of-range',
} as const);

/** Application error codes (0x80-0x9F) per service. */
export const ATT_APPLICATION_ERRORS = Object.freeze({
  glucose: Object.freeze({ 0x80: 'procedure-already-in-progress', 0x81: 'cccd-improperly-configured' } as const),
  cgm: Object.freeze({ 0x80: 'missing-crc', 0x81: 'invalid-crc' } as const),
});

export type AttErrorService = keyof typeof ATT_APPLICATION_ERRORS;

export type AttErrorName =
  | (typeof ATT_COMMON_ERRORS)[keyof typeof ATT_COMMON_ERRORS]
  | (typeof ATT_APPLICATION_ERRORS)[AttErrorService][keyof (typeof ATT_APPLICATION_ERRORS)[AttErrorService]];

/** The code a service's server refuses a RACP write with while a procedure runs (see the table above). */
export const RACP_PROCEDURE_ALREADY_IN_PROGRESS: Readonly<Record<AttErrorService, number>> = Object.freeze({ glucose: 0x80, cgm: 0xfe });
/** The code a service's server refuses a RACP write with while the client has not enabled its indications. */
export const RACP_CCCD_IMPROPERLY_CONFIGURED: Readonly<Record<AttErrorService, number>> = Object.freeze({ glucose: 0x81, cgm: 0xfd });

/** What an ATT error code means for `service`; undefined for ATT's own codes and codes no table names. */
export function attErrorName(code: number, service: AttErrorService): AttErrorName | undefined {
  if (code >= 0x80 && code <= 0x9f) return (ATT_APPLICATION_ERRORS[service] as Readonly<Record<number, AttErrorName>> | undefined)?.[code];
  return (ATT_COMMON_ERRORS as Readonly<Record<number, AttErrorName>>)[code];
}

const BLUEZ = 'org.bluez.Error.';
const GENERIC = /^Operation failed with ATT error: 0x([0-9a-fA-F]{2})$/;

/** BlueZ's named D-Bus errors that stand for exactly one ATT code (`create_gatt_dbus_error`). */
const NAMED: readonly { name: string; text: string | undefined; code: number }[] = Object.freeze([
  { name: 'NotPermitted', text: 'Read not permitted', code: 0x02 },
  { name: 'NotPermitted', text: 'Write not permitted', code: 0x03 },
  { name: 'NotSupported', text: undefined, code: 0x06 },
  { name: 'InvalidArguments', text: 'Invalid offset', code: 0x07 },
  { name: 'NotAuthorized', text: undefined, code: 0x08 },
  { name: 'InvalidArguments', text: 'Invalid Length', code: 0x0d },
]);

/**
 * The ATT error code of a D-Bus error BlueZ answered a characteristic read or write with (`name`: the D-Bus error
 * name, e.g. `org.bluez.Error.Failed`; `text`: its message). Undefined when the error does not name one code
 * ("Not paired" stands for three; "Not connected", a timeout, another bus's error).
 */
export function attErrorFromBluez(name: string, text: string): number | undefined {
  if (typeof name !== 'string' || typeof text !== 'string') return undefined;
  // BlueZ before 5.41 named the generic error `org.bluez.Error` alone (QA re-check).
  if (name !== BLUEZ.slice(0, -1) && !name.startsWith(BLUEZ)) return undefined;
  const short = name.slice(BLUEZ.length);
  const generic = short === 'Failed' || short === '' ? GENERIC.exec(text.trim()) : null;
  if (generic) {
    const code = Number.parseInt(generic[1] as string, 16);
    return code === 0 ? undefined : code; // 0 is no ATT error code
  }
  return NAMED.find((n) => n.name === short && (n.text === undefined || n.text === text.trim()))?.code;
}

/** The D-Bus error (name and message) BlueZ answers a read or write with when the server refused it with `code` (1..255). */
export function bluezAttError(code: number): { name: string; text: string } {
  if (!Number.isInteger(code) || code < 1 || code > 0xff) throw new ConfigError('code', code, 'is not an ATT error code', 'use an integer 1..255');
  const named = NAMED.find((n) => n.code === code);
  if (named) return { name: `${BLUEZ}${named.name}`, text: named.text ?? (named.name === 'NotSupported' ? 'Operation is not supported' : 'Operation Not Authorized') };
  return { name: `${BLUEZ}Failed`, text: `Operation failed with ATT error: 0x${code.toString(16).padStart(2, '0')}` };
}
