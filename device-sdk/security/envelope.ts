import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { MedgeError } from '../errors.js';

/**
 * Cipher suites of medge envelopes:
 * - `aes-256-gcm`: AES-256 in GCM, 96-bit random nonce, 128-bit tag (NIST SP 800-38D).
 * - `sm4-ctr-hmac-sm3`: for deployments that must use the Chinese national algorithms. SM4 (GB/T
 *   32907) in CTR mode with a random 128-bit IV, then HMAC-SM3 (GB/T 32905) over header, IV and
 *   ciphertext (encrypt-then-MAC). This Node build has no SM4-GCM. Both take a 32-byte data key;
 *   the SM4 suite derives its 16-byte cipher key and 32-byte MAC key from it with HMAC-SM3.
 */
export const CIPHER_SUITES = ['aes-256-gcm', 'sm4-ctr-hmac-sm3'] as const;
export type CipherSuite = (typeof CIPHER_SUITES)[number];

const SUITE_CODE: Readonly<Record<CipherSuite, number>> = Object.freeze({ 'aes-256-gcm': 1, 'sm4-ctr-hmac-sm3': 2 });
const ENVELOPE_VERSION = 1;
/**
 * Compact header (version 2) for key ids of the ledger's form `dk-` + 8 lowercase hex digits: the
 * 4 key id bytes in binary instead of 11 ASCII characters and a length (6 header bytes, not 14).
 * Same suites, nonce, tag and AAD rule (the header is authenticated with the AAD); `open` reads both.
 */
const ENVELOPE_VERSION_COMPACT = 2;
const COMPACT_KEY_ID = /^dk-[0-9a-f]{8}$/;
export const DATA_KEY_BYTES = 32;

/** An envelope cannot be opened: unknown key, wrong AAD, tampered bytes or a malformed layout. */
export class EnvelopeError extends MedgeError {
  readonly reason: 'malformed' | 'unknown-key' | 'auth' | 'key';
  constructor(reason: EnvelopeError['reason'], message: string) {
    super('envelope', message);
    this.reason = reason;
  }
}

export interface SealKey {
  suite: CipherSuite;
  /** 1-64 ASCII characters; written in clear into every envelope so that a keyring can find the key. */
  keyId: string;
  key: Uint8Array;
  /** Write the 6-byte version-2 header when the key id has the form `dk-` + 8 lowercase hex digits (default false). */
  compactHeader?: boolean;
}

function sm4Keys(key: Uint8Array): { enc: Buffer; mac: Buffer } {
  return {
    enc: createHmac('sm3', key).update('medge sm4-ctr enc').digest().subarray(0, 16),
    mac: createHmac('sm3', key).update('medge hmac-sm3 mac').digest(),
  };
}

/**
 * The clear header every envelope starts with: version 1, suite, key id length, key id; or, with
 * `compact` and a key id `dk-` + 8 hex digits, version 2, suite, the key id's 4 bytes.
 */
export function envelopeHeader(suite: CipherSuite, keyId: string, compact = false): Buffer {
  const id = Buffer.from(keyId, 'ascii');
  if (id.length < 1 || id.length > 64 || !/^[\x21-\x7e]+$/.test(keyId)) throw new EnvelopeError('key', `key id ${JSON.stringify(keyId)} must be 1-64 printable ASCII characters`);
  if (compact && COMPACT_KEY_ID.test(keyId)) return Buffer.concat([Buffer.of(ENVELOPE_VERSION_COMPACT, SUITE_CODE[suite]), Buffer.from(keyId.slice(3), 'hex')]);
  return Buffer.concat([Buffer.of(ENVELOPE_VERSION, SUITE_CODE[suite], id.length), id]);
}

/** Length of the header `envelope` starts with (either version), after checking it fits. */
export function envelopeHeaderLength(envelope: Uint8Array): number {
  if (envelope.byteLength >= 6 && envelope[0] === ENVELOPE_VERSION_COMPACT) return 6;
  if (envelope.byteLength < 4 || envelope[0] !== ENVELOPE_VERSION) throw new EnvelopeError('malformed', 'not a medge envelope (version)');
  const n = envelope[2] as number;
  if (n < 1 || 3 + n > envelope.byteLength) throw new EnvelopeError('malformed', 'key id runs past the end');
  return 3 + n;
}

/**
 * Encrypts and authenticates `plaintext`, binding `aad` (e.g. `reading:seq:42`, so a ciphertext cannot
 * be moved to another row). Layout: version(1) suite(1) keyIdLength(1) keyId nonce ciphertext tag.
 */
export function seal(k: SealKey, plaintext: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (k.key.byteLength !== DATA_KEY_BYTES) throw new EnvelopeError('key', `data keys are ${DATA_KEY_BYTES} bytes, got ${k.key.byteLength}`);
  const head = envelopeHeader(k.suite, k.keyId, k.compactHeader);
  if (k.suite === 'aes-256-gcm') {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', k.key, nonce);
    cipher.setAAD(Buffer.concat([head, aad]));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([head, nonce, body, cipher.getAuthTag()]);
  }
  const { enc, mac } = sm4Keys(k.key);
  const iv = randomBytes(16);
  const cipher = createCipheriv('sm4-ctr', enc, iv);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = createHmac('sm3', mac).update(head).update(iv).update(body).update(aad).digest();
  return Buffer.concat([head, iv, body, tag]);
}

/** The key id an envelope names, without opening it. */
export function envelopeKeyId(envelope: Uint8Array): string {
  const headLength = envelopeHeaderLength(envelope);
  if (envelope[0] === ENVELOPE_VERSION_COMPACT) return `dk-${Buffer.from(envelope.subarray(2, 6)).toString('hex')}`;
  return Buffer.from(envelope.subarray(3, headLength)).toString('ascii');
}

/** Decrypts an envelope with the key `keyring` returns for its key id. Throws `EnvelopeError`, nothing else. */
export function open(keyring: (keyId: string) => Uint8Array | undefined, envelope: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Uint8Array {
  const keyId = envelopeKeyId(envelope);
  const suite = CIPHER_SUITES.find((s) => SUITE_CODE[s] === envelope[1]);
  if (!suite) throw new EnvelopeError('malformed', `unknown cipher suite ${envelope[1]}`);
  const key = keyring(keyId);
  if (!key) throw new EnvelopeError('unknown-key', `no key ${keyId} in the keyring`);
  if (key.byteLength !== DATA_KEY_BYTES) throw new EnvelopeError('key', `key ${keyId} is ${key.byteLength} bytes, not ${DATA_KEY_BYTES}`);
  const headLength = envelopeHeaderLength(envelope);
  const head = envelope.subarray(0, headLength);
  const [nonceLength, tagLength] = suite === 'aes-256-gcm' ? [12, 16] : [16, 32];
  if (envelope.byteLength < headLength + nonceLength + tagLength) throw new EnvelopeError('malformed', 'envelope is truncated');
  const nonce = envelope.subarray(headLength, headLength + nonceLength);
  const body = envelope.subarray(headLength + nonceLength, envelope.byteLength - tagLength);
  const tag = envelope.subarray(envelope.byteLength - tagLength);
  if (suite === 'aes-256-gcm') {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(Buffer.concat([head, aad]));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      throw new EnvelopeError('auth', `envelope under key ${keyId} failed authentication (tampered, or the wrong AAD)`);
    }
  }
  const { enc, mac } = sm4Keys(key);
  const expected = createHmac('sm3', mac).update(head).update(nonce).update(body).update(aad).digest();
  if (!timingSafeEqual(expected, tag)) throw new EnvelopeError('auth', `envelope under key ${keyId} failed authentication (tampered, or the wrong AAD)`);
  const decipher = createDecipheriv('sm4-ctr', enc, nonce);
  return Buffer.concat([decipher.update(body), decipher.final()]);
}

/** Wraps a data key under a key-encryption key (the device key): an envelope with a fixed AAD. */
export function wrapKey(kek: SealKey, dataKey: Uint8Array): Uint8Array {
  return seal(kek, dataKey, Buffer.from('medge key-wrap v1'));
}

export function unwrapKey(keyring: (keyId: string) => Uint8Array | undefined, wrapped: Uint8Array): Uint8Array {
  return open(keyring, wrapped, Buffer.from('medge key-wrap v1'));
}
