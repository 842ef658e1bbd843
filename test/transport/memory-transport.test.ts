/**
 * What the memory pair adds to the contract (which `byte-transport.test.ts` runs on it): fault hooks
 * on a virtual clock, the wire model, and option validation.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../device-sdk/errors.js';
import { mulberry32 } from '../../device-sdk/random.js';
import { TransportError } from '../../device-sdk/transport/byte-transport.js';
import { createMemoryTransportPair, randomSplitter } from '../../device-sdk/transport/memory-transport.js';
import { MockClock, settle } from './mock-clock.js';

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('createMemoryTransportPair', () => {
  it('delayMs: bytes arrive exactly delayMs later on the injected clock', async () => {
    const clock = new MockClock();
    const { a, b } = createMemoryTransportPair({ delayMs: 50, clock });
    await Promise.all([a.open(), b.open()]);
    const received: number[][] = [];
    const reader = (async () => {
      for await (const chunk of b) received.push([...chunk]);
    })().catch(() => undefined);
    await a.write(new Uint8Array([1, 2, 3]));
    await clock.advance(49);
    expect(received).toEqual([]);
    await clock.advance(1);
    expect(received).toEqual([[1, 2, 3]]);
    await b.close();
    await reader;
  });

  it('split: randomSplitter cuts writes into seeded chunks of 1..maxChunk bytes, order kept', async () => {
    const { a, b } = createMemoryTransportPair({ split: randomSplitter(mulberry32(3), 5) });
    await Promise.all([a.open(), b.open()]);
    const message = Uint8Array.from({ length: 200 }, (_, i) => i);
    await a.write(message);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of b) {
      chunks.push(chunk);
      total += chunk.byteLength;
      if (total >= message.byteLength) break;
    }
    expect(chunks.length).toBeGreaterThan(200 / 5);
    for (const chunk of chunks) expect(chunk.byteLength).toBeLessThanOrEqual(5);
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(message));
    // The same seed cuts the same way.
    const again = randomSplitter(mulberry32(3), 5)(message).map((c) => c.byteLength);
    expect(chunks.map((c) => c.byteLength)).toEqual(again);
  });

  it('the writer may reuse its buffer as soon as write() resolved', async () => {
    const { a, b } = createMemoryTransportPair({ delayMs: 5 });
    await Promise.all([a.open(), b.open()]);
    const buffer = new Uint8Array([7, 7, 7]);
    await a.write(buffer);
    buffer.fill(0);
    const { value } = await b[Symbol.asyncIterator]().next();
    expect([...(value ?? [])]).toEqual([7, 7, 7]);
  });

  it('disconnect(): bytes already received are still read, then reads reject disconnected; in-flight bytes are lost', async () => {
    const clock = new MockClock();
    const pair = createMemoryTransportPair({ delayMs: 10, clock });
    const { a, b } = pair;
    await Promise.all([a.open(), b.open()]);
    await a.write(new Uint8Array([1, 2]));
    await clock.advance(10);
    await a.write(new Uint8Array([3, 4]));
    const events: string[] = [];
    a.on('disconnect', (e) => events.push(`a:${e.code}`));
    b.on('disconnect', (e) => events.push(`b:${e.code}`));
    pair.disconnect();
    expect(pair.connected).toBe(false);
    expect(events).toEqual(['a:disconnected', 'b:disconnected']);
    await clock.advance(100);
    const iterator = b[Symbol.asyncIterator]();
    expect([...((await iterator.next()).value ?? [])]).toEqual([1, 2]);
    const error = await caught(iterator.next());
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).disconnected).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it("open() while unplugged rejects 'open-failed'; after reconnect() it opens", async () => {
    const pair = createMemoryTransportPair();
    pair.disconnect();
    const error = await caught(pair.a.open());
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).code).toBe('open-failed');
    expect((error as TransportError).cause).toBeInstanceOf(Error);
    pair.reconnect();
    await pair.a.open();
    expect(pair.a.isOpen).toBe(true);
  });

  it('an unplug while opening fails the open', async () => {
    const pair = createMemoryTransportPair();
    const opening = pair.a.open();
    pair.disconnect();
    expect(((await caught(opening)) as TransportError).code).toBe('open-failed');
    expect(pair.a.state).toBe('closed');
  });

  it('bytes written while the peer is closed are lost, as on a wire with nothing listening', async () => {
    const { a, b } = createMemoryTransportPair();
    await a.open();
    await a.write(new Uint8Array([1]));
    await b.open();
    await a.write(new Uint8Array([2]));
    const { value } = await b[Symbol.asyncIterator]().next();
    expect([...(value ?? [])]).toEqual([2]);
  });

  it('concurrent open() calls share one open; concurrent close() calls share one close', async () => {
    const { a } = createMemoryTransportPair();
    const first = a.open();
    const second = a.open();
    expect(second).toBe(first);
    await first;
    const c1 = a.close();
    const c2 = a.close();
    expect(c2).toBe(c1);
    await c1;
    expect(a.state).toBe('closed');
  });

  it('open() during close() opens after the close finished', async () => {
    const { a } = createMemoryTransportPair();
    await a.open();
    const closing = a.close();
    const opening = a.open();
    await closing;
    await opening;
    expect(a.state).toBe('open');
  });

  it('highWaterMark: a writer waits while the reader holds a full window, and resumes at half', async () => {
    const { a, b } = createMemoryTransportPair({ highWaterMark: 1000 });
    await Promise.all([a.open(), b.open()]);
    await a.write(new Uint8Array(1000));
    let second = false;
    const write = a.write(new Uint8Array(10)).then(() => (second = true));
    await settle();
    expect(second).toBe(false);
    const iterator = b[Symbol.asyncIterator]();
    await iterator.next();
    await write;
    expect(second).toBe(true);
  });

  it('rejects bad options with a ConfigError naming the field', () => {
    const cases: Array<[() => unknown, string]> = [
      [() => createMemoryTransportPair({ delayMs: -1 }), 'delayMs'],
      [() => createMemoryTransportPair({ highWaterMark: 0 }), 'highWaterMark'],
      [() => createMemoryTransportPair({ names: ['x', 'x'] }), 'names'],
      [() => randomSplitter(Math.random, 0), 'maxChunk'],
    ];
    for (const [make, field] of cases) {
      let error: unknown;
      try {
        make();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).field).toBe(field);
    }
  });

  it('does not mutate caller options', () => {
    const options = Object.freeze({ delayMs: 1, names: Object.freeze(['p', 'q']) as readonly [string, string] });
    const { a, b } = createMemoryTransportPair(options);
    expect([a.info.path, b.info.path]).toEqual(['p', 'q']);
    expect(a.info.kind).toBe('memory');
  });
});
