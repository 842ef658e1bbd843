/**
 * Payload encryption on the wire, inside TLS: for deployments that must use the national algorithms
 * end to end (SM4-CTR + HMAC-SM3) or want the batch sealed beyond the broker (AES-256-GCM).
 *
 * `medge provision` gives each device a 32-byte wire key: `OUT/<id>.wire.key` for the device and
 * `<CA dir>/wire-keys/<id>.key` for the edge (both 0600). The device seals every batch payload
 * (`envelope.ts` layout: its first byte is the envelope version, 0x01, which no protobuf message
 * starts with) with the topic as associated data, so a payload moved to another device's or kind's
 * topic fails authentication. The edge opens it with the key of the device the topic names; an
 * edge that holds a wire key for a device refuses that device's clear payloads.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedgeError } from '../errors.js';
import { type CipherSuite, DATA_KEY_BYTES, open, seal } from './envelope.js';
import { makeDirs } from '../make-dirs.js';

export const WIRE_KEY_DIR = 'wire-keys';
const PREFIX = 'medge-wire-key v1 ';
/** First byte of every envelope (`envelope.ts` version); a protobuf Batch starts with 0x08. */
export const SEALED_PAYLOAD_MARK = 0x01;

export interface WireKey {
  /** `w-` and 12 hex digits of the key's sha256. */
  keyId: string;
  key: Uint8Array;
}

export class WireKeyError extends MedgeError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('wire-key', message);
    this.path = path;
  }
}

function toWireKey(key: Uint8Array): WireKey {
  return { keyId: `w-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`, key };
}

export function wireKeyPath(caDir: string, deviceId: string): string {
  return join(caDir, WIRE_KEY_DIR, `${deviceId}.key`);
}

/** Creates a device's wire key: `devicePath` (refuses to overwrite) and the edge's copy in the CA directory. */
export function issueWireKey(caDir: string, deviceId: string, devicePath: string): WireKey {
  const key = randomBytes(DATA_KEY_BYTES);
  const text = `${PREFIX}${key.toString('hex')}\n`;
  writeFileSync(devicePath, text, { mode: 0o600, flag: 'wx' });
  chmodSync(devicePath, 0o600);
  makeDirs(join(caDir, WIRE_KEY_DIR), 0o700);
  const edgeCopy = wireKeyPath(caDir, deviceId);
  writeFileSync(edgeCopy, text, { mode: 0o600 });
  chmodSync(edgeCopy, 0o600);
  return toWireKey(key);
}

/** Reads a wire key file (owner-only permissions). Throws `WireKeyError` naming the path. */
export function loadWireKey(path: string): WireKey {
  let text: string;
  try {
    const mode = statSync(path).mode;
    if ((mode & 0o077) !== 0) throw new WireKeyError(path, `wire key ${path} has mode ${(mode & 0o777).toString(8)}; chmod 600 ${path}`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof WireKeyError) throw error;
    throw new WireKeyError(path, `cannot read wire key ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const line = text.trim();
  const hex = line.startsWith(PREFIX) ? line.slice(PREFIX.length) : '';
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new WireKeyError(path, `${path} is not a medge wire key`);
  return toWireKey(Buffer.from(hex, 'hex'));
}

/** Seals a batch payload for `topic` (the AAD). */
export function sealPayload(suite: CipherSuite, wireKey: WireKey, topic: string, payload: Uint8Array): Uint8Array {
  return seal({ suite, keyId: wireKey.keyId, key: wireKey.key }, payload, Buffer.from(topic, 'utf8'));
}

/** Opens a sealed batch payload received on `topic`. Throws `EnvelopeError`. */
export function openPayload(wireKey: WireKey, topic: string, payload: Uint8Array): Uint8Array {
  return open((id) => (id === wireKey.keyId ? wireKey.key : undefined), payload, Buffer.from(topic, 'utf8'));
}

/** The edge's wire keys, read from a CA directory on first use per device (devices provisioned later are found too). */
export class WireKeyring {
  private readonly caDir: string;
  private readonly cache = new Map<string, WireKey>();

  constructor(caDir: string) {
    this.caDir = caDir;
  }

  /** The wire key of `deviceId`, or undefined when it has none (provisioned before wire keys). Throws `WireKeyError` for an unreadable one. */
  get(deviceId: string): WireKey | undefined {
    const cached = this.cache.get(deviceId);
    if (cached) return cached;
    const path = wireKeyPath(this.caDir, deviceId);
    if (!existsSync(path)) return undefined;
    const key = loadWireKey(path); // a present but unreadable key throws: never fall back to clear payloads
    this.cache.set(deviceId, key);
    return key;
  }
}
