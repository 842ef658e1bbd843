/**
 * `withUnixIoFixes` on real pseudo-terminals, next to the raw bindings-cpp binding it fixes. The
 * "raw" tests are canaries: they pin down the serialport 13.0.0 behaviour the wrapper exists for.
 * When one fails after a serialport upgrade, that bug is fixed upstream and the matching part of
 * `device-sdk/transport/unix-io-binding.ts` can go.
 */
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { HangupError, withUnixIoFixes } from '../../device-sdk/transport/unix-io-binding.js';
import { createPtyPair, findSocat, type PtyPair, systemAvailable } from '../helpers/pty.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');

type Binding = Parameters<typeof withUnixIoFixes>[0];
type Port = Awaited<ReturnType<Binding['open']>>;

const PENDING = Symbol('pending');

/** What `promise` settled with within `ms`, or PENDING. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | Error | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    promise.catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))),
    new Promise<typeof PENDING>((resolve) => {
      timer = setTimeout(() => resolve(PENDING), ms);
    }),
  ]);
  clearTimeout(timer);
  return result;
}

describe.skipIf(!socatFound)(`withUnixIoFixes on socat ptys${socatFound ? '' : ' (skipped: needs socat: apt-get install -y socat)'}`, () => {
  const raw: Binding = SerialPort.binding;
  const fixed = withUnixIoFixes(raw);
  let pty: PtyPair | undefined;
  const ports: Port[] = [];

  async function open(binding: Binding, path: string): Promise<Port> {
    const port = await binding.open({ path, baudRate: 115_200 });
    ports.push(port);
    return port;
  }

  afterEach(async () => {
    for (const port of ports.splice(0)) if (port.isOpen) await port.close();
    await pty?.close();
    pty = undefined;
  });

  it('raw (canary, bindings-cpp#162): a read issued after the hang-up never settles', async () => {
    pty = await createPtyPair();
    const port = await open(raw, pty.a);
    await pty.kill();
    const read = port.read(Buffer.alloc(64), 0, 64);
    expect(await within(read, 300)).toBe(PENDING);
    // Only closing the port ends the loop (canceled, or EBADF when an fs.read was in flight).
    await port.close();
    expect(await within(read, 2_000)).toBeInstanceOf(Error);
  });

  it('fixed: a read issued after the hang-up rejects with HangupError (disconnect: true)', async () => {
    pty = await createPtyPair();
    const port = await open(fixed, pty.a);
    await pty.kill();
    const settled = await within(port.read(Buffer.alloc(64), 0, 64), 2_000);
    expect(settled).toBeInstanceOf(HangupError);
    expect((settled as HangupError).disconnect).toBe(true);
  });

  it('fixed: a read waiting in the poller at the hang-up rejects with the poller error (not canceled)', async () => {
    pty = await createPtyPair();
    const port = await open(fixed, pty.a);
    const read = port.read(Buffer.alloc(64), 0, 64);
    expect(await within(read, 50)).toBe(PENDING);
    await pty.kill();
    const settled = await within(read, 2_000);
    expect(settled).toBeInstanceOf(Error);
    expect((settled as { canceled?: boolean }).canceled).not.toBe(true);
  });

  it('fixed: close() cancels a waiting read with canceled: true', async () => {
    pty = await createPtyPair();
    const port = await open(fixed, pty.a);
    const read = port.read(Buffer.alloc(64), 0, 64);
    expect(await within(read, 50)).toBe(PENDING);
    await port.close();
    expect(((await within(read, 2_000)) as { canceled?: boolean }).canceled).toBe(true);
  });
});

/**
 * The poller half of the fix, deterministically: a fake bindings-cpp port whose fd is a non-blocking
 * FIFO (reads EAGAIN while empty, writes EAGAIN while full) and whose poller records every
 * `poll(flags)`. bindings-cpp itself would call `poll(WRITABLE)` here and drop the read's watch.
 */
describe('withUnixIoFixes poller use (FIFO + recording poller)', () => {
  const READABLE = 1;
  const WRITABLE = 2;

  class RecordingPoller extends EventEmitter {
    readonly flags: number[] = [];
    poll(flags: number): void {
      this.flags.push(flags);
    }
  }

  it('watches the union of what the pending read and write wait for, and only that', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-fifo-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const poller = new RecordingPoller();
    const fake = {
      openOptions: { path: fifo },
      isOpen: true,
      fd: fd as number | null,
      poller,
      async close() {
        fake.isOpen = false;
        fake.fd = null;
        const canceled = Object.assign(new Error('Canceled'), { canceled: true });
        poller.emit('readable', canceled);
        poller.emit('writable', canceled);
      },
    };
    const binding = { list: async () => [], open: async () => fake };
    try {
      const port = await withUnixIoFixes(binding as unknown as Binding).open({ path: fifo, baudRate: 9600 });
      const read = port.read(Buffer.alloc(16), 0, 16);
      await within(read, 20);
      expect(poller.flags.at(-1)).toBe(READABLE);
      const write = port.write(Buffer.alloc(1024 * 1024));
      await within(write, 50);
      expect(poller.flags.at(-1), 'a blocked write keeps the read watched').toBe(READABLE | WRITABLE);
      poller.emit('readable', null);
      expect(await within(read, 200)).toMatchObject({ bytesRead: 16 });
      expect(poller.flags.at(-1), 'once the read is served only the write is watched').toBe(WRITABLE);
      await port.close();
      expect(await within(write, 200)).toMatchObject({ canceled: true });
      const after = poller.flags.length;
      poller.emit('readable', null);
      expect(poller.flags.length, 'no polling after close').toBe(after);
    } finally {
      if (fake.fd !== null) closeSync(fake.fd);
      else closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
