/**
 * The `ByteTransport` contract suite (STYLE item 4): one suite, run against every implementation
 * (`byte-transport.test.ts`: the memory pair, and `SerialTransport` on both ends of a socat pty
 * pair). Each `it` names the clause of `device-sdk/transport/byte-transport.ts` it checks.
 *
 * `makePair()` returns two closed transports joined by a link, plus the link's fault hooks:
 * `unplug()` takes the link away from both ends (a cable pulled), `replug()` brings it back at the
 * same paths, `cleanup()` releases everything (transports are closed by the suite first).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../device-sdk/random.js';
import { type ByteTransport, TRANSPORT_KINDS, TransportError } from '../../device-sdk/transport/byte-transport.js';

export interface ByteTransportPairHarness {
  a: ByteTransport;
  b: ByteTransport;
  unplug(): Promise<void>;
  replug(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface ByteTransportContractOptions {
  /** A reason to skip the suite (a missing system service), or false to run it. */
  skip?: string | false;
}

const MiB = 1024 * 1024;
/** Per-step limit: generous for a loaded CI box, short enough to fail fast on a lost byte. */
const STEP_MS = 8_000;

/** Deterministic pseudo-random bytes: every offset has a value that reveals reordering or loss. */
function payload(size: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Reads until `size` bytes arrived (through one iterator, then `return()`); fails on more. */
async function readBytes(transport: ByteTransport, size: number, what: string): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let got = 0;
  const iterator = transport[Symbol.asyncIterator]();
  const run = async (): Promise<void> => {
    while (got < size) {
      const result = await iterator.next();
      if (result.done) throw new Error(`${what}: iterator ended after ${got} of ${size} bytes`);
      if (got + result.value.byteLength > size) throw new Error(`${what}: ${got + result.value.byteLength - size} bytes more than the ${size} sent`);
      out.set(result.value, got);
      got += result.value.byteLength;
    }
  };
  try {
    await withTimeout(run(), STEP_MS, `${what}: got ${got} of ${size} bytes`);
  } finally {
    await iterator.return?.();
  }
  return out;
}

/** Writes `bytes` in seeded random chunk sizes (1..maxChunk), up to `pipeline` writes in flight at once. */
async function writeChunked(transport: ByteTransport, bytes: Uint8Array, seed: number, maxChunk = 8192, pipeline = 8): Promise<number> {
  const random = mulberry32(seed);
  let writes = 0;
  let inFlight: Promise<void>[] = [];
  for (let offset = 0; offset < bytes.byteLength; ) {
    const size = Math.min(1 + Math.floor(random() * maxChunk), bytes.byteLength - offset);
    inFlight.push(transport.write(bytes.subarray(offset, offset + size)));
    writes++;
    offset += size;
    if (inFlight.length >= pipeline) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  return writes;
}

function expectSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  expect(actual.byteLength, `${what}: length`).toBe(expected.byteLength);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (!a.equals(e)) {
    let i = 0;
    while (i < a.length && a[i] === e[i]) i++;
    expect.fail(`${what}: first difference at byte ${i} (got 0x${a[i]?.toString(16)}, sent 0x${e[i]?.toString(16)})`);
  }
}

/** Resolves with the TransportError `promise` rejects with; fails if it resolves or rejects otherwise. */
async function rejection(promise: Promise<unknown>): Promise<TransportError> {
  const error = await withTimeout(
    promise.then(
      () => undefined,
      (e: unknown) => e,
    ),
    STEP_MS,
    'waiting for a rejection',
  );
  expect(error, 'expected a rejection with a TransportError').toBeInstanceOf(TransportError);
  return error as TransportError;
}

function nextDisconnect(transport: ByteTransport): Promise<TransportError> {
  return withTimeout(new Promise<TransportError>((resolve) => transport.once('disconnect', resolve)), STEP_MS, `'disconnect' on ${transport.info.path}`);
}

/** Sends a short message each way and checks it. */
async function exchange(a: ByteTransport, b: ByteTransport, tag: string): Promise<void> {
  const ab = new TextEncoder().encode(`${tag} a->b`);
  const ba = new TextEncoder().encode(`${tag} b->a`);
  const [gotB, gotA] = await Promise.all([readBytes(b, ab.byteLength, `${tag} at b`), readBytes(a, ba.byteLength, `${tag} at a`), a.write(ab), b.write(ba)]);
  expectSameBytes(gotB, ab, `${tag} a->b`);
  expectSameBytes(gotA, ba, `${tag} b->a`);
}

export function describeByteTransportContract(name: string, makePair: () => Promise<ByteTransportPairHarness>, options: ByteTransportContractOptions = {}): void {
  const skip = options.skip ?? false;
  describe.skipIf(skip !== false)(`ByteTransport contract: ${name}${skip === false ? '' : ` (skipped: ${skip})`}`, () => {
    let harness: ByteTransportPairHarness | undefined;

    async function pair(): Promise<ByteTransportPairHarness> {
      harness = await makePair();
      return harness;
    }

    async function openPair(): Promise<ByteTransportPairHarness> {
      const h = await pair();
      await Promise.all([h.a.open(), h.b.open()]);
      return h;
    }

    afterEach(async () => {
      const h = harness;
      harness = undefined;
      if (!h) return;
      await Promise.all([h.a.close(), h.b.close()]);
      await h.cleanup();
    });

    it('info: kind is one of TRANSPORT_KINDS, path is set; a new transport is closed', async () => {
      const { a, b } = await pair();
      for (const t of [a, b]) {
        expect(TRANSPORT_KINDS).toContain(t.info.kind);
        expect(t.info.path.length).toBeGreaterThan(0);
        expect(t.state).toBe('closed');
        expect(t.isOpen).toBe(false);
      }
      expect(a.info.path).not.toBe(b.info.path);
    });

    it("write and read before open reject with code 'not-open', disconnected false", async () => {
      const { a } = await pair();
      const write = await rejection(a.write(new Uint8Array([1, 2, 3])));
      expect(write.code).toBe('not-open');
      expect(write.disconnected).toBe(false);
      expect(write.canceled).toBe(false);
      const read = await rejection(a[Symbol.asyncIterator]().next());
      expect(read.code).toBe('not-open');
    });

    it('open: resolves when open; a second open() while open resolves too; zero-byte writes resolve', async () => {
      const { a, b } = await openPair();
      expect(a.state).toBe('open');
      expect(a.isOpen).toBe(true);
      await a.open();
      await a.write(new Uint8Array(0));
      await exchange(a, b, 'hello');
    });

    it('ordering: 1 MiB each way in seeded random chunk sizes arrives complete and in order', async () => {
      const { a, b } = await openPair();
      const ab = payload(MiB, 1);
      const ba = payload(MiB, 2);
      const [gotB, gotA, writesAB, writesBA] = await Promise.all([
        readBytes(b, ab.byteLength, 'a->b'),
        readBytes(a, ba.byteLength, 'b->a'),
        writeChunked(a, ab, 3),
        writeChunked(b, ba, 4),
      ]);
      expect(writesAB).toBeGreaterThan(100);
      expect(writesBA).toBeGreaterThan(100);
      expectSameBytes(gotB, ab, 'a->b');
      expectSameBytes(gotA, ba, 'b->a');
    });

    it('one consumer: each chunk goes to exactly one next(), in call order', async () => {
      const { a, b } = await openPair();
      const first = a[Symbol.asyncIterator]().next();
      const second = a[Symbol.asyncIterator]().next();
      await b.write(new Uint8Array([1, 2, 3]));
      const r1 = await withTimeout(first, STEP_MS, 'first next()');
      await b.write(new Uint8Array([4, 5, 6]));
      const r2 = await withTimeout(second, STEP_MS, 'second next()');
      const got = [...(r1.value ?? []), ...(r2.value ?? [])];
      const rest = await readBytes(a, 6 - got.length, 'rest');
      expect([...got, ...rest]).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('return() (break) ends only that iterator: the transport stays open and unread bytes stay queued', async () => {
      const { a, b } = await openPair();
      const message = payload(4096, 5);
      await b.write(message);
      const head: Uint8Array[] = [];
      for await (const chunk of a) {
        head.push(chunk);
        break;
      }
      expect(a.isOpen).toBe(true);
      const headBytes = Buffer.concat(head);
      const tail = await readBytes(a, message.byteLength - headBytes.byteLength, 'tail');
      expectSameBytes(Buffer.concat([headBytes, tail]), message, 'head + tail');
    });

    it("close: pending reads reject with code 'closed', canceled true; no 'disconnect'; later reads and writes reject 'not-open'", async () => {
      const { a } = await openPair();
      let disconnects = 0;
      a.on('disconnect', () => disconnects++);
      const pending = rejection(a[Symbol.asyncIterator]().next());
      await a.close();
      const error = await pending;
      expect(error.code).toBe('closed');
      expect(error.canceled).toBe(true);
      expect(error.disconnected).toBe(false);
      expect(a.state).toBe('closed');
      expect((await rejection(a[Symbol.asyncIterator]().next())).code).toBe('not-open');
      expect((await rejection(a.write(new Uint8Array([1])))).code).toBe('not-open');
      await a.close();
      expect(disconnects).toBe(0);
    });

    it("close() before open() finished: open rejects with 'closed' (canceled), the transport ends closed and opens again", async () => {
      const { a, b } = await pair();
      const opening = a.open();
      expect(a.state).toBe('opening');
      await a.close();
      const error = await rejection(opening);
      expect(error.code).toBe('closed');
      expect(error.canceled).toBe(true);
      expect(a.state).toBe('closed');
      await Promise.all([a.open(), b.open()]);
      await exchange(a, b, 'after canceled open');
    });

    it('backpressure: a write stalls while the peer does not read, nothing is lost when it reads again', async () => {
      const { a, b } = await openPair();
      const big = payload(2 * MiB, 6);
      let written = false;
      const write = a.write(big).then(() => {
        written = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(written, 'a 2 MiB write to a peer that does not read must not be handed over at once').toBe(false);
      const got = await readBytes(b, big.byteLength, 'after stall');
      await withTimeout(write, STEP_MS, 'the stalled write');
      expectSameBytes(got, big, 'stalled write');
    });

    it("close rejects a write that is still waiting (stalled by backpressure) with 'closed', canceled true", async () => {
      const { a } = await openPair();
      const write = rejection(a.write(payload(2 * MiB, 7)));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await a.close();
      const error = await write;
      expect(error.code).toBe('closed');
      expect(error.canceled).toBe(true);
    });

    it('reopen after close works, on either end and both', async () => {
      const { a, b } = await openPair();
      await exchange(a, b, 'first');
      await a.close();
      await a.open();
      await exchange(a, b, 'a reopened');
      await Promise.all([a.close(), b.close()]);
      await Promise.all([a.open(), b.open()]);
      await exchange(a, b, 'both reopened');
    });

    it("unplug: both ends emit 'disconnect' (disconnected: true); reads and writes reject disconnected; open fails until replug, then bytes flow", async () => {
      const h = await openPair();
      const { a, b } = h;
      await exchange(a, b, 'before unplug');
      const pendingRead = rejection(a[Symbol.asyncIterator]().next());
      const events = Promise.all([nextDisconnect(a), nextDisconnect(b)]);
      await h.unplug();
      const [ea, eb] = await events;
      for (const e of [ea, eb]) {
        expect(e).toBeInstanceOf(TransportError);
        expect(e.code).toBe('disconnected');
        expect(e.disconnected).toBe(true);
        expect(e.canceled).toBe(false);
      }
      expect(a.state).toBe('disconnected');
      expect(a.isOpen).toBe(false);
      const read = await pendingRead;
      expect(read.code).toBe('disconnected');
      expect(read.disconnected).toBe(true);
      for (const t of [a, b]) {
        const write = await rejection(t.write(new Uint8Array([1, 2, 3])));
        expect(write.code).toBe('disconnected');
        expect(write.disconnected).toBe(true);
      }
      const reopen = await rejection(a.open());
      expect(reopen.code).toBe('open-failed');
      expect(reopen.disconnected).toBe(false);
      expect(a.state).toBe('closed');
      await h.replug();
      await Promise.all([a.open(), b.open()]);
      await exchange(a, b, 'after replug');
    });

    it("close after a disconnect resolves and emits nothing more; the next open starts clean", async () => {
      const h = await openPair();
      const { a, b } = h;
      const events = Promise.all([nextDisconnect(a), nextDisconnect(b)]);
      await h.unplug();
      await events;
      let more = 0;
      a.on('disconnect', () => more++);
      await Promise.all([a.close(), b.close()]);
      expect(a.state).toBe('closed');
      await h.replug();
      await Promise.all([a.open(), b.open()]);
      await exchange(a, b, 'clean session');
      expect(more).toBe(0);
    });
  });
}
