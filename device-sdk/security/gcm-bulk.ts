/**
 * AES-256-GCM for many small messages at once, byte-identical to `seal`/`open` of `envelope.ts`
 * (suite `aes-256-gcm`): what the device ledger uses to encrypt every record body it commits.
 *
 * Why: Node creates a cipher context (AES key schedule, GHASH tables) per `createCipheriv`, about
 * 5 µs, more than SQLite takes to insert the row. Here one AES-256-ECB call per batch produces the
 * counter-mode key stream of every message (native, AES-NI), and GHASH runs in JavaScript with
 * Shoup's 8-bit tables (4 KiB per key; the 4-bit variant is OpenSSL's `gcm_gmult_4bit`). Messages
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
/**
 * Reduction of the byte shifted out of Z by an 8-bit shift, as the top 16 bits of Z: bit j of the
 * byte leaves on shift j+1, and its reduction (R = 0xE1 << 120) moves right 7 - j more places.
 */
const REM_8BIT = Int32Array.from({ length: 256 }, (_, r) => {
  let v = 0;
  for (let j = 0; j < 8; j++) if (r & (1 << j)) v ^= 0xe100 >> (7 - j);
  return v << 16;
});

/** n·H in GF(2^128), GCM bit order, for every byte n: entry n at [4n, 4n+4), most significant word first (Shoup's 8-bit table). */
function ghashTable(h: Buffer): Int32Array {
  const table = new Int32Array(256 * 4);
  let v0 = h.readInt32BE(0);
  let v1 = h.readInt32BE(4);
  let v2 = h.readInt32BE(8);
  let v3 = h.readInt32BE(12);
  for (let bit = 128; bit >= 1; bit >>= 1) {
    table.set([v0, v1, v2, v3], bit * 4);
    const reduce = v3 & 1 ? 0xe1000000 | 0 : 0;
    v3 = (v3 >>> 1) | (v2 << 31);
    v2 = (v2 >>> 1) | (v1 << 31);
    v1 = (v1 >>> 1) | (v0 << 31);
    v0 = (v0 >>> 1) ^ reduce;
  }
  for (let n = 1; n < 256; n++) {
    const low = n & -n;
    if (low === n) continue;
    for (let k = 0; k < 4; k++) table[n * 4 + k] = (table[low * 4 + k] as number) ^ (table[(n ^ low) * 4 + k] as number);
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

/** Big-endian 32-bit word of `buf` at `off` (all four bytes inside the buffer). */
function word4(buf: Uint8Array, off: number): number {
  return ((buf[off] as number) << 24) | ((buf[off + 1] as number) << 16) | ((buf[off + 2] as number) << 8) | (buf[off + 3] as number);
}

/**
 * One GHASH step, y = x·H where x = y XOR block (given as four big-endian words), with Shoup's
 * table: the 16 bytes of x from the last, each step shifting Z right by 8 bits (reduced with
 * REM_8BIT) and adding the table entry of the byte; unrolled.
 */
function ghashBlock(t: Int32Array, y: Int32Array, x0: number, x1: number, x2: number, x3: number): void {
  let idx = (x3 & 0xff) << 2;
  let rem: number;
  let z0 = t[idx] as number;
  let z1 = t[idx + 1] as number;
  let z2 = t[idx + 2] as number;
  let z3 = t[idx + 3] as number;
  idx = ((x3 >>> 8) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x3 >>> 16) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x3 >>> 24) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = (x2 & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x2 >>> 8) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x2 >>> 16) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x2 >>> 24) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = (x1 & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x1 >>> 8) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x1 >>> 16) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x1 >>> 24) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = (x0 & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x0 >>> 8) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x0 >>> 16) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  idx = ((x0 >>> 24) & 0xff) << 2;
  rem = z3 & 0xff;
  z3 = ((z3 >>> 8) | (z2 << 24)) ^ (t[idx + 3] as number);
  z2 = ((z2 >>> 8) | (z1 << 24)) ^ (t[idx + 2] as number);
  z1 = ((z1 >>> 8) | (z0 << 24)) ^ (t[idx + 1] as number);
  z0 = (z0 >>> 8) ^ (REM_8BIT[rem] as number) ^ (t[idx] as number);
  y[0] = z0;
  y[1] = z1;
  y[2] = z2;
  y[3] = z3;
}

/** Absorbs buf[start, end) into the GHASH state `y`, zero-padding the last block. */
function ghashUpdate(table: Int32Array, y: Int32Array, buf: Uint8Array, start: number, end: number): void {
  for (let off = start; off < end; off += 16) {
    if (off + 16 <= end) {
      ghashBlock(table, y, (y[0] as number) ^ word4(buf, off), (y[1] as number) ^ word4(buf, off + 4), (y[2] as number) ^ word4(buf, off + 8), (y[3] as number) ^ word4(buf, off + 12));
    } else {
      ghashBlock(
        table,
        y,
        (y[0] as number) ^ word(buf, off, end),
        (y[1] as number) ^ word(buf, off + 4, end),
        (y[2] as number) ^ word(buf, off + 8, end),
        (y[3] as number) ^ word(buf, off + 12, end),
      );
    }
  }
}

/** out[at, at + n) = a[0, n) XOR stream[from, from + n). (Byte by byte: Buffer's readInt32LE/writeInt32LE are slower here.) */
function xorInto(out: Uint8Array, at: number, a: Uint8Array, stream: Uint8Array, from: number, n: number): void {
  for (let b = 0; b < n; b++) out[at + b] = (a[b] as number) ^ (stream[from + b] as number);
}

export interface BulkItem {
  plaintext: Uint8Array;
  aad: Uint8Array;
}

export interface BulkItem {
  plaintext: Uint8Array;
  aad: Uint8Array;
}

export interface GcmBulkOptions {
  /**
   * Seal with the 6-byte version-2 header (`envelopeHeader(..., compact)`) when the key id has the
   * ledger's form `dk-` + 8 hex digits (default true). Opening accepts both headers either way.
   */
  compactHeader?: boolean;
}

/** Whether buf starts with prefix. */
function startsWith(buf: Uint8Array, prefix: Uint8Array): boolean {
  if (buf.byteLength < prefix.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

/**
 * Seals and opens `aes-256-gcm` envelopes under one data key, many per call.
 *
 * A batch is laid out in one buffer: every small envelope (header, nonce, ciphertext, tag) is
 * written in place and returned as a view (`subarray`) of it, so a batch costs two allocations
 * (envelopes, counter blocks) plus the ECB output, not one per record. A caller that keeps one
 * envelope keeps the batch's buffer alive; copy it (`Buffer.from`) to keep it for long.
 */
export class GcmBulkCipher {
  readonly keyId: string;
  private readonly key: Uint8Array;
  /** Header of the envelopes this sealer writes. */
  private readonly head: Buffer;
  /** Headers `openMany` accepts: the compact one (if the key id allows it) and the version-1 one. */
  private readonly heads: readonly Buffer[];
  private readonly table: Int32Array;
  private readonly prefix = Buffer.alloc(8);
  private counter = 0;
  private readonly y = new Int32Array(4);
  private aadScratch = Buffer.alloc(256);
  /** The header currently at the start of `aadScratch`. */
  private scratchHead: Buffer | undefined;

  constructor(keyId: string, key: Uint8Array, options: GcmBulkOptions = {}) {
    if (key.byteLength !== DATA_KEY_BYTES) throw new EnvelopeError('key', `data keys are ${DATA_KEY_BYTES} bytes, got ${key.byteLength}`);
    this.keyId = keyId;
    this.key = key;
    const full = envelopeHeader('aes-256-gcm', keyId);
    const compact = envelopeHeader('aes-256-gcm', keyId, true);
    this.head = options.compactHeader === false ? full : compact;
    this.heads = compact.equals(full) ? [full] : [compact, full];
    this.table = ghashTable(this.ecb(Buffer.alloc(16)));
    this.freshPrefix();
  }

  private freshPrefix(): void {
    randomBytes(8).copy(this.prefix, 0);
    this.counter = 0;
  }

  /** Writes the next nonce (random 64-bit prefix, 32-bit counter) to out[at, at + 12). */
  private nextNonce(out: Buffer, at: number): void {
    if (this.counter === 0xffffffff) this.freshPrefix();
    for (let k = 0; k < 8; k++) out[at + k] = this.prefix[k] as number;
    out.writeUInt32BE(this.counter++, at + 8);
  }

  private ecb(blocks: Uint8Array): Buffer {
    const cipher = createCipheriv('aes-256-ecb', this.key, null).setAutoPadding(false);
    return cipher.update(blocks);
  }

  /** GHASH of (head ‖ aad, ciphertext) XOR E(J0), written to out[tagAt, tagAt + 16). */
  private tag(head: Buffer, aad: Uint8Array, ct: Uint8Array, ctStart: number, ctEnd: number, stream: Buffer, j0At: number, out: Buffer, tagAt: number): void {
    const y = this.y;
    y.fill(0);
    const aadLength = head.length + aad.byteLength;
    if (this.aadScratch.length < aadLength) {
      this.aadScratch = Buffer.alloc(aadLength * 2);
      this.scratchHead = undefined;
    }
    if (this.scratchHead !== head) {
      head.copy(this.aadScratch, 0);
      this.scratchHead = head;
    }
    const scratch = this.aadScratch;
    for (let k = 0; k < aad.byteLength; k++) scratch[head.length + k] = aad[k] as number;
    ghashUpdate(this.table, y, scratch, 0, aadLength);
    ghashUpdate(this.table, y, ct, ctStart, ctEnd);
    const ctLength = ctEnd - ctStart;
    // The lengths block: bit lengths of the AAD and the ciphertext, 64 bits each (both < 2^53 bits here).
    ghashBlock(
      this.table,
      y,
      (y[0] as number) ^ Math.floor(aadLength / 0x20000000),
      (y[1] as number) ^ ((aadLength * 8) >>> 0),
      (y[2] as number) ^ Math.floor(ctLength / 0x20000000),
      (y[3] as number) ^ ((ctLength * 8) >>> 0),
    );
    for (let k = 0; k < 4; k++) {
      const v = (y[k] as number) ^ word4(stream, j0At + k * 4);
      const o = tagAt + k * 4;
      out[o] = v >>> 24;
      out[o + 1] = v >>> 16;
      out[o + 2] = v >>> 8;
      out[o + 3] = v;
    }
  }

  /** Writes counter blocks J0, J0+1, ... J0+count-1 of the nonce at nonce[nonceAt, nonceAt + 12) to counters[at...). */
  private static counterBlocks(counters: Buffer, at: number, nonce: Uint8Array, nonceAt: number, count: number): void {
    const n0 = nonce[nonceAt] as number;
    const n1 = nonce[nonceAt + 1] as number;
    const n2 = nonce[nonceAt + 2] as number;
    const n3 = nonce[nonceAt + 3] as number;
    const n4 = nonce[nonceAt + 4] as number;
    const n5 = nonce[nonceAt + 5] as number;
    const n6 = nonce[nonceAt + 6] as number;
    const n7 = nonce[nonceAt + 7] as number;
    const n8 = nonce[nonceAt + 8] as number;
    const n9 = nonce[nonceAt + 9] as number;
    const n10 = nonce[nonceAt + 10] as number;
    const n11 = nonce[nonceAt + 11] as number;
    for (let b = 0; b < count; b++) {
      const c = at + b * 16;
      const v = b + 1;
      counters[c] = n0;
      counters[c + 1] = n1;
      counters[c + 2] = n2;
      counters[c + 3] = n3;
      counters[c + 4] = n4;
      counters[c + 5] = n5;
      counters[c + 6] = n6;
      counters[c + 7] = n7;
      counters[c + 8] = n8;
      counters[c + 9] = n9;
      counters[c + 10] = n10;
      counters[c + 11] = n11;
      counters[c + 12] = v >>> 24;
      counters[c + 13] = v >>> 16;
      counters[c + 14] = v >>> 8;
      counters[c + 15] = v;
    }
  }

  /** Envelopes of every item, in order; identical in layout to `seal({ suite: 'aes-256-gcm', compactHeader, ... })`. */
  sealMany(items: readonly BulkItem[]): Buffer[] {
    const head = this.head;
    const h = head.length;
    const count = items.length;
    const out = new Array<Buffer>(count);
    let bytes = 0;
    let blocks = 0;
    for (let i = 0; i < count; i++) {
      const n = (items[i] as BulkItem).plaintext.byteLength;
      if (n <= BULK_MAX_BYTES) {
        bytes += h + NONCE_BYTES + n + TAG_BYTES;
        blocks += 1 + Math.ceil(n / 16);
      }
    }
    const buf = Buffer.allocUnsafe(bytes);
    const counters = Buffer.allocUnsafe(blocks * 16);
    /** Where envelope i starts in buf (-1: sealed by Node's GCM), and its first counter block. */
    const starts = new Int32Array(count);
    const firstBlock = new Int32Array(count);
    let at = 0;
    let block = 0;
    for (let i = 0; i < count; i++) {
      const item = items[i] as BulkItem;
      const n = item.plaintext.byteLength;
      if (n > BULK_MAX_BYTES) {
        const iv = Buffer.allocUnsafe(NONCE_BYTES);
        this.nextNonce(iv, 0);
        const cipher = createCipheriv('aes-256-gcm', this.key, iv);
        cipher.setAAD(Buffer.concat([head, item.aad]));
        const body = Buffer.concat([cipher.update(item.plaintext), cipher.final()]);
        out[i] = Buffer.concat([head, iv, body, cipher.getAuthTag()]);
        starts[i] = -1;
        continue;
      }
      for (let k = 0; k < h; k++) buf[at + k] = head[k] as number;
      this.nextNonce(buf, at + h);
      const nb = 1 + Math.ceil(n / 16);
      GcmBulkCipher.counterBlocks(counters, block * 16, buf, at + h, nb);
      starts[i] = at;
      firstBlock[i] = block;
      at += h + NONCE_BYTES + n + TAG_BYTES;
      block += nb;
    }
    if (blocks === 0) return out;
    const stream = this.ecb(counters);
    for (let i = 0; i < count; i++) {
      const start = starts[i] as number;
      if (start < 0) continue;
      const { plaintext, aad } = items[i] as BulkItem;
      const n = plaintext.byteLength;
      const ct = start + h + NONCE_BYTES;
      const j0 = (firstBlock[i] as number) * 16;
      xorInto(buf, ct, plaintext, stream, j0 + 16, n);
      this.tag(head, aad, buf, ct, ct + n, stream, j0, buf, ct + n);
      out[i] = buf.subarray(start, ct + n + TAG_BYTES);
    }
    return out;
  }

  /**
   * Plaintexts of `envelopes` (each sealed under this key with its `aads[i]`, either header), in
   * order. Throws `EnvelopeError` (`malformed`, `unknown-key` or `auth`, with the index in the message) on the first bad one.
   */
  openMany(envelopes: readonly Uint8Array[], aads: readonly Uint8Array[]): Buffer[] {
    const count = envelopes.length;
    const out = new Array<Buffer>(count);
    const headOf = new Array<Buffer>(count);
    const firstBlock = new Int32Array(count).fill(-1);
    let blocks = 0;
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const env = envelopes[i] as Uint8Array;
      const head = this.heads.find((hd) => startsWith(env, hd));
      if (head === undefined) {
        if (env.byteLength < 6 + NONCE_BYTES + TAG_BYTES) throw new EnvelopeError('malformed', `envelope ${i} is truncated`);
        throw new EnvelopeError('unknown-key', `envelope ${i} is not sealed under aes-256-gcm key ${this.keyId}`);
      }
      const h = head.length;
      if (env.byteLength < h + NONCE_BYTES + TAG_BYTES) throw new EnvelopeError('malformed', `envelope ${i} is truncated`);
      headOf[i] = head;
      const n = env.byteLength - h - NONCE_BYTES - TAG_BYTES;
      if (n > BULK_MAX_BYTES) {
        try {
          const decipher = createDecipheriv('aes-256-gcm', this.key, env.subarray(h, h + NONCE_BYTES));
          decipher.setAAD(Buffer.concat([head, aads[i] ?? new Uint8Array(0)]));
          decipher.setAuthTag(env.subarray(env.byteLength - TAG_BYTES));
          out[i] = Buffer.concat([decipher.update(env.subarray(h + NONCE_BYTES, env.byteLength - TAG_BYTES)), decipher.final()]);
        } catch {
          throw new EnvelopeError('auth', `envelope ${i} under key ${this.keyId} failed authentication (tampered, or the wrong AAD)`);
        }
        continue;
      }
      firstBlock[i] = blocks;
      blocks += 1 + Math.ceil(n / 16);
      bytes += n;
    }
    if (blocks === 0) return out;
    const counters = Buffer.allocUnsafe(blocks * 16);
    for (let i = 0; i < count; i++) {
      const first = firstBlock[i] as number;
      if (first < 0) continue;
      const env = envelopes[i] as Uint8Array;
      const h = (headOf[i] as Buffer).length;
      GcmBulkCipher.counterBlocks(counters, first * 16, env, h, 1 + Math.ceil((env.byteLength - h - NONCE_BYTES - TAG_BYTES) / 16));
    }
    const stream = this.ecb(counters);
    const plain = Buffer.allocUnsafe(bytes);
    const expected = Buffer.allocUnsafe(TAG_BYTES);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const first = firstBlock[i] as number;
      if (first < 0) continue;
      const env = envelopes[i] as Uint8Array;
      const head = headOf[i] as Buffer;
      const ct = head.length + NONCE_BYTES;
      const end = env.byteLength - TAG_BYTES;
      const j0 = first * 16;
      this.tag(head, aads[i] ?? new Uint8Array(0), env, ct, end, stream, j0, expected, 0);
      if (!timingSafeEqual(expected, env.subarray(end))) throw new EnvelopeError('auth', `envelope ${i} under key ${this.keyId} failed authentication (tampered, or the wrong AAD)`);
      xorInto(plain, at, env.subarray(ct, end), stream, j0 + 16, end - ct);
      out[i] = plain.subarray(at, at + end - ct);
      at += end - ct;
    }
    return out;
  }
}
