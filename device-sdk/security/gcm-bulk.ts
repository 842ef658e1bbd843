/**
 * AES-256-GCM for many small messages at once, byte-identical to `seal`/`open` of `envelope.ts`
 * (suite `aes-256-gcm`): what the device ledger uses to encrypt every record body it commits.
 *
 * Why: Node creates a cipher context (AES key schedule, GHASH tables) per `createCipheriv`, about
 * 5 µs, more than SQLite takes to insert the row. Here one AES-256-ECB call per batch produces the
 * counter-mode key stream of every message (native, AES-NI), and GHASH runs in JavaScript with
 * Shoup's 4-bit tables (as OpenSSL's `gcm_gmult_4bit`), about 0.15 µs per 16-byte block. Messages
 * above `BULK_MAX_BYTES` go through Node's own GCM, where GHASH in JavaScript would cost more.
 * `gcm-bulk.test.ts` checks every output against Node's GCM (and the reverse) for random inputs.
 *
 * Nonces are 96-bit: a random 64-bit prefix per sealer and a 32-bit message counter; the prefix is
 * drawn again before the counter wraps. (NIST SP 800-38D 8.2.1, deterministic construction, with a
 * random field instead of a device field so that several processes may seal under one key.)
 * Table-driven GHASH is not constant-time against a local cache-timing observer; the key it
 * protects is a per-device data key on a board whose disk, not CPU cache, is the threat.
 */
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { DATA_KEY_BYTES, EnvelopeError, envelopeHeader } from './envelope.js';

/** Larger messages are sealed by Node's GCM, one context each. */
export const BULK_MAX_BYTES = 1024;

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const REM_4BIT = Int32Array.from([0x0000, 0x1c20, 0x3840, 0x2460, 0x7080, 0x6ca0, 0x48c0, 0x54e0, 0xe100, 0xfd20, 0xd940, 0xc560, 0x9180, 0x8da0, 0xa9c0, 0xb5e0], (x) => x << 16);

/** Multiples of H in GF(2^128), GCM bit order: entry i at [4i, 4i+4), most significant word first. */
function ghashTable(h: Uint8Array): Int32Array {
  const table = new Int32Array(64);
  const view = new DataView(h.buffer, h.byteOffset, 16);
  let v0 = view.getInt32(0);
  let v1 = view.getInt32(4);
  let v2 = view.getInt32(8);
  let v3 = view.getInt32(12);
  const put = (i: number) => table.set([v0, v1, v2, v3], i * 4);
  put(8);
  for (const i of [4, 2, 1]) {
    const reduce = v3 & 1 ? 0xe1000000 | 0 : 0;
    v3 = (v3 >>> 1) | (v2 << 31);
    v2 = (v2 >>> 1) | (v1 << 31);
    v1 = (v1 >>> 1) | (v0 << 31);
    v0 = (v0 >>> 1) ^ reduce;
    put(i);
  }
  for (const [d, a, b] of [[3, 2, 1], [5, 4, 1], [6, 4, 2], [7, 6, 1], [9, 8, 1], [10, 8, 2], [11, 10, 1], [12, 8, 4], [13, 12, 1], [14, 12, 2], [15, 14, 1]] as const) {
    for (let k = 0; k < 4; k++) table[d * 4 + k] = (table[a * 4 + k] as number) ^ (table[b * 4 + k] as number);
  }
  return table;
}

/** Big-endian 32-bit word of `buf` at `off`, zero past `end`. */
function word(buf: Uint8Array, off: number, end: number): number {
  if (off + 4 <= end) return ((buf[off] as number) << 24) | ((buf[off + 1] as number) << 16) | ((buf[off + 2] as number) << 8) | (buf[off + 3] as number);
  let w = 0;
  for (let i = 0; i < 4 && off + i < end; i++) w |= (buf[off + i] as number) << (24 - 8 * i);
  return w;
}

/** Absorbs buf[start, end) into the GHASH state `y`, zero-padding the last block. */
function ghashUpdate(table: Int32Array, y: Int32Array, buf: Uint8Array, start: number, end: number): void {
  let y0 = y[0] as number;
  let y1 = y[1] as number;
  let y2 = y[2] as number;
  let y3 = y[3] as number;
  for (let off = start; off < end; off += 16) {
    const x0 = y0 ^ word(buf, off, end);
    const x1 = y1 ^ word(buf, off + 4, end);
    const x2 = y2 ^ word(buf, off + 8, end);
    const x3 = y3 ^ word(buf, off + 12, end);
    let z0 = 0;
    let z1 = 0;
    let z2 = 0;
    let z3 = 0;
    for (let i = 15; i >= 0; i--) {
      const w = i < 4 ? x0 : i < 8 ? x1 : i < 12 ? x2 : x3;
      const n = (w >>> (24 - 8 * (i & 3))) & 0xff;
      if (i !== 15) {
        const rem = z3 & 15;
        z3 = (z3 >>> 4) | (z2 << 28);
        z2 = (z2 >>> 4) | (z1 << 28);
        z1 = (z1 >>> 4) | (z0 << 28);
        z0 = (z0 >>> 4) ^ (REM_4BIT[rem] as number);
      }
      let idx = (n & 15) * 4;
      z0 ^= table[idx] as number;
      z1 ^= table[idx + 1] as number;
      z2 ^= table[idx + 2] as number;
      z3 ^= table[idx + 3] as number;
      const rem = z3 & 15;
      z3 = (z3 >>> 4) | (z2 << 28);
      z2 = (z2 >>> 4) | (z1 << 28);
      z1 = (z1 >>> 4) | (z0 << 28);
      z0 = (z0 >>> 4) ^ (REM_4BIT[rem] as number);
      idx = (n >> 4) * 4;
      z0 ^= table[idx] as number;
      z1 ^= table[idx + 1] as number;
      z2 ^= table[idx + 2] as number;
      z3 ^= table[idx + 3] as number;
    }
    y0 = z0;
    y1 = z1;
    y2 = z2;
    y3 = z3;
  }
  y[0] = y0;
  y[1] = y1;
  y[2] = y2;
  y[3] = y3;
}

export interface BulkItem {
  plaintext: Uint8Array;
  aad: Uint8Array;
}

/** Seals and opens `aes-256-gcm` envelopes under one data key, many per call. */
export class GcmBulkCipher {
  readonly keyId: string;
  private readonly key: Uint8Array;
  private readonly head: Buffer;
  private readonly table: Int32Array;
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private counter = 0;

  constructor(keyId: string, key: Uint8Array) {
    if (key.byteLength !== DATA_KEY_BYTES) throw new EnvelopeError('key', `data keys are ${DATA_KEY_BYTES} bytes, got ${key.byteLength}`);
    this.keyId = keyId;
    this.key = key;
    this.head = envelopeHeader('aes-256-gcm', keyId);
    this.table = ghashTable(this.ecb(Buffer.alloc(16)));
    this.freshPrefix();
  }

  private freshPrefix(): void {
    randomBytes(8).copy(this.nonce, 0);
    this.counter = 0;
  }

  private nextNonce(): Buffer {
    if (this.counter === 0xffffffff) this.freshPrefix();
    this.nonce.writeUInt32BE(this.counter++, 8);
    return Buffer.from(this.nonce);
  }

  private ecb(blocks: Uint8Array): Buffer {
    const cipher = createCipheriv('aes-256-ecb', this.key, null).setAutoPadding(false);
    return cipher.update(blocks);
  }

  /** GHASH of (head ‖ aad, ciphertext) XOR E(J0), written to out[tagAt, tagAt + 16). */
  private tag(aad: Uint8Array, ct: Uint8Array, ctStart: number, ctEnd: number, ek0: Uint8Array, out: Uint8Array, tagAt: number): void {
    const y = new Int32Array(4);
    const aadAll = Buffer.concat([this.head, aad]);
    ghashUpdate(this.table, y, aadAll, 0, aadAll.length);
    ghashUpdate(this.table, y, ct, ctStart, ctEnd);
    const lengths = Buffer.alloc(16);
    lengths.writeUInt32BE(Math.floor(aadAll.length / 0x20000000), 0);
    lengths.writeUInt32BE((aadAll.length * 8) >>> 0, 4);
    lengths.writeUInt32BE(Math.floor((ctEnd - ctStart) / 0x20000000), 8);
    lengths.writeUInt32BE(((ctEnd - ctStart) * 8) >>> 0, 12);
    ghashUpdate(this.table, y, lengths, 0, 16);
    const view = new DataView(out.buffer, out.byteOffset + tagAt, 16);
    const mask = new DataView(ek0.buffer, ek0.byteOffset, 16);
    for (let k = 0; k < 4; k++) view.setInt32(k * 4, (y[k] as number) ^ mask.getInt32(k * 4));
  }

  /** Counter blocks J0, J0+1, ... for each nonce and length, and their encryption in one ECB call. */
  private keyStream(nonces: readonly Uint8Array[], lengths: readonly number[]): { stream: Buffer; offsets: number[] } {
    const offsets: number[] = [];
    let blocks = 0;
    for (const n of lengths) {
      offsets.push(blocks * 16);
      blocks += 1 + Math.ceil(n / 16);
    }
    const counters = Buffer.allocUnsafe(blocks * 16);
    nonces.forEach((nonce, i) => {
      const first = (offsets[i] as number) / 16;
      const count = 1 + Math.ceil((lengths[i] as number) / 16);
      for (let b = 0; b < count; b++) {
        const at = (first + b) * 16;
        counters.set(nonce, at);
        counters.writeUInt32BE(b + 1, at + 12);
      }
    });
    return { stream: blocks === 0 ? Buffer.alloc(0) : this.ecb(counters), offsets };
  }

  /** Envelopes of every item, in order; identical in layout to `seal({ suite: 'aes-256-gcm', ... })`. */
  sealMany(items: readonly BulkItem[]): Buffer[] {
    const out = new Array<Buffer>(items.length);
    const small: number[] = [];
    const nonces: Buffer[] = [];
    items.forEach((item, i) => {
      const nonce = this.nextNonce();
      if (item.plaintext.byteLength > BULK_MAX_BYTES) {
        const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
        cipher.setAAD(Buffer.concat([this.head, item.aad]));
        const body = Buffer.concat([cipher.update(item.plaintext), cipher.final()]);
        out[i] = Buffer.concat([this.head, nonce, body, cipher.getAuthTag()]);
      } else {
        small.push(i);
        nonces.push(nonce);
      }
    });
    const { stream, offsets } = this.keyStream(
      nonces,
      small.map((i) => (items[i] as BulkItem).plaintext.byteLength),
    );
    const h = this.head.length;
    small.forEach((i, j) => {
      const { plaintext, aad } = items[i] as BulkItem;
      const n = plaintext.byteLength;
      const env = Buffer.allocUnsafe(h + NONCE_BYTES + n + TAG_BYTES);
      this.head.copy(env, 0);
      (nonces[j] as Buffer).copy(env, h);
      const ks = (offsets[j] as number) + 16;
      const ct = h + NONCE_BYTES;
      for (let b = 0; b < n; b++) env[ct + b] = (plaintext[b] as number) ^ (stream[ks + b] as number);
      this.tag(aad, env, ct, ct + n, stream.subarray(ks - 16, ks), env, ct + n);
      out[i] = env;
    });
    return out;
  }

  /**
   * Plaintexts of `envelopes` (each sealed under this key with its `aads[i]`), in order. Throws
   * `EnvelopeError` (`malformed`, `unknown-key` or `auth`, with the index in the message) on the first bad one.
   */
  openMany(envelopes: readonly Uint8Array[], aads: readonly Uint8Array[]): Buffer[] {
    const h = this.head.length;
    const out = new Array<Buffer>(envelopes.length);
    const small: number[] = [];
    envelopes.forEach((env, i) => {
      if (env.byteLength < h + NONCE_BYTES + TAG_BYTES) throw new EnvelopeError('malformed', `envelope ${i} is truncated`);
      if (!this.head.equals(env.subarray(0, h))) throw new EnvelopeError('unknown-key', `envelope ${i} is not sealed under aes-256-gcm key ${this.keyId}`);
      const n = env.byteLength - h - NONCE_BYTES - TAG_BYTES;
      if (n > BULK_MAX_BYTES) {
        try {
          const decipher = createDecipheriv('aes-256-gcm', this.key, env.subarray(h, h + NONCE_BYTES));
          decipher.setAAD(Buffer.concat([this.head, aads[i] ?? new Uint8Array(0)]));
          decipher.setAuthTag(env.subarray(env.byteLength - TAG_BYTES));
          out[i] = Buffer.concat([decipher.update(env.subarray(h + NONCE_BYTES, env.byteLength - TAG_BYTES)), decipher.final()]);
        } catch {
          throw new EnvelopeError('auth', `envelope ${i} under key ${this.keyId} failed authentication (tampered, or the wrong AAD)`);
        }
      } else small.push(i);
    });
    const { stream, offsets } = this.keyStream(
      small.map((i) => (envelopes[i] as Uint8Array).subarray(h, h + NONCE_BYTES)),
      small.map((i) => (envelopes[i] as Uint8Array).byteLength - h - NONCE_BYTES - TAG_BYTES),
    );
    const expected = Buffer.allocUnsafe(TAG_BYTES);
    small.forEach((i, j) => {
      const env = envelopes[i] as Uint8Array;
      const ct = h + NONCE_BYTES;
      const end = env.byteLength - TAG_BYTES;
      const ks = (offsets[j] as number) + 16;
      this.tag(aads[i] ?? new Uint8Array(0), env, ct, end, stream.subarray(ks - 16, ks), expected, 0);
      if (!timingSafeEqual(expected, env.subarray(end))) throw new EnvelopeError('auth', `envelope ${i} under key ${this.keyId} failed authentication (tampered, or the wrong AAD)`);
      const plain = Buffer.allocUnsafe(end - ct);
      for (let b = 0; b < plain.length; b++) plain[b] = (env[ct + b] as number) ^ (stream[ks + b] as number);
      out[i] = plain;
    });
    return out;
  }
}
