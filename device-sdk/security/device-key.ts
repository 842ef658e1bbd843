/**
 * The device key: the key-encryption key of a device's store. It never encrypts data itself; it
 * wraps the data keys that do (`envelope.ts` `wrapKey`), so rotating a data key never touches it
 * and the store file alone (a copied SD card) reveals nothing.
 *
 * File: one line `medge-device-key v1 <64 hex digits>`, mode 0600, in the data directory by default
 * (`device.key`) or wherever the config's `store.deviceKeyFile` points (a TPM-backed or removable
 * path on boards that have one).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { MedgeError } from '../errors.js';
import { DATA_KEY_BYTES } from './envelope.js';
import { makeDirs } from '../make-dirs.js';

export const DEVICE_KEY_FILE = 'device.key';
const PREFIX = 'medge-device-key v1 ';

export interface DeviceKey {
  /** `dev-` and 12 hex digits of the key's sha256: names the key in every wrapped data key. */
  keyId: string;
  key: Uint8Array;
}

export type DeviceKeyProblem = 'missing' | 'unreadable' | 'malformed' | 'permissions' | 'exists';

/** The device key file is missing, unreadable, malformed or readable by others. */
export class DeviceKeyError extends MedgeError {
  readonly reason: DeviceKeyProblem;
  readonly path: string;
  constructor(reason: DeviceKeyProblem, path: string, message: string) {
    super('device-key', message);
    this.reason = reason;
    this.path = path;
  }
}

export function deviceKeyId(key: Uint8Array): string {
  return `dev-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/** Reads a device key file; refuses one that group or others may read. */
export function loadDeviceKey(path: string): DeviceKey {
  let text: string;
  try {
    const mode = statSync(path).mode;
    if ((mode & 0o077) !== 0) {
      throw new DeviceKeyError('permissions', path, `device key ${path} has mode ${(mode & 0o777).toString(8)}; it must be readable by its owner only (chmod 600 ${path})`);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof DeviceKeyError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DeviceKeyError('missing', path, `no device key at ${path}; the store's data keys cannot be unwrapped without it`);
    throw new DeviceKeyError('unreadable', path, `cannot read device key ${path} (${code ?? String(error)})`);
  }
  const line = text.trim();
  const hex = line.startsWith(PREFIX) ? line.slice(PREFIX.length) : '';
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new DeviceKeyError('malformed', path, `${path} is not a medge device key (expected "${PREFIX}<64 hex digits>")`);
  const key = Buffer.from(hex, 'hex');
  if (key.byteLength !== DATA_KEY_BYTES) throw new DeviceKeyError('malformed', path, `${path} holds ${key.byteLength} bytes, not ${DATA_KEY_BYTES}`);
  return { keyId: deviceKeyId(key), key };
}

/** Writes a new random device key (mode 0600); refuses to overwrite one. */
export function createDeviceKey(path: string): DeviceKey {
  makeDirs(dirname(path));
  const key = randomBytes(DATA_KEY_BYTES);
  try {
    writeFileSync(path, `${PREFIX}${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new DeviceKeyError('exists', path, `${path} already exists; refusing to overwrite a device key`);
    throw new DeviceKeyError('unreadable', path, `cannot write device key ${path}: ${(error as Error).message}`);
  }
  chmodSync(path, 0o600);
  return { keyId: deviceKeyId(key), key };
}

/** The device key at `path`, created on first use. */
export function loadOrCreateDeviceKey(path: string): { deviceKey: DeviceKey; created: boolean } {
  try {
    return { deviceKey: loadDeviceKey(path), created: false };
  } catch (error) {
    if (!(error instanceof DeviceKeyError) || error.reason !== 'missing') throw error;
    return { deviceKey: createDeviceKey(path), created: true };
  }
}
