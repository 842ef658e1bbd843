/**
 * Bluetooth UUIDs as BlueZ spells them: 128-bit, lower case. A 16-bit SIG number `0x2a18` is
 * `00002a18-0000-1000-8000-00805f9b34fb` (Bluetooth Core, Vol 3 Part B §2.5.1, the Base UUID).
 */
import { ConfigError } from '../errors.js';

const BASE_SUFFIX = '-0000-1000-8000-00805f9b34fb';
const FULL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The 128-bit lower-case form of a 16/32-bit number, a hex string (`'2a18'`, `'0x2A18'`) or a 128-bit UUID. */
export function bleUuid(uuid: number | string): string {
  if (typeof uuid === 'number') {
    if (!Number.isInteger(uuid) || uuid < 0 || uuid > 0xffffffff) throw new ConfigError('uuid', uuid, 'is not a 16- or 32-bit UUID', 'use e.g. 0x2a18');
    return `${uuid.toString(16).padStart(8, '0')}${BASE_SUFFIX}`;
  }
  const text = uuid.trim().toLowerCase().replace(/^0x/, '');
  if (/^[0-9a-f]{4}$|^[0-9a-f]{8}$/.test(text)) return `${text.padStart(8, '0')}${BASE_SUFFIX}`;
  if (FULL.test(text)) return text;
  throw new ConfigError('uuid', uuid, 'is not a Bluetooth UUID', "use a 16-bit number like 0x2a18, '2a18', or a 128-bit UUID");
}

/** `2a18` for a SIG UUID built on the Base UUID, the full 128-bit form otherwise. */
export function shortUuid(uuid: number | string): string {
  const full = bleUuid(uuid);
  return full.endsWith(BASE_SUFFIX) && full.startsWith('0000') ? full.slice(4, 8) : full;
}
