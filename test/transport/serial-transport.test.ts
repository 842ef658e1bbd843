/**
 * `SerialTransport` details the contract suite cannot reach on a pty: option handling, the class and
 * binding seam, error mapping, and backpressure on the port. Uses serialport's own `SerialPortMock`
 * and a scriptable `MockSerialPort` test double; the real-pty runs live in `byte-transport.test.ts`.
 */
import { EventEmitter } from 'node:events';
import { SerialPortMock } from 'serialport';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../device-sdk/errors.js';
import { TransportError } from '../../device-sdk/transport/byte-transport.js';
import { isDisconnectError, type SerialPortConstructorOptions, type SerialPortLike, SerialTransport } from '../../device-sdk/transport/serial-transport.js';
import { settle } from './mock-clock.js';

/** A scriptable stand-in for serialport's `SerialPort`: records what the transport does, lets the test act as the OS. */
class MockSerialPort extends EventEmitter implements SerialPortLike {
  static instances: MockSerialPort[] = [];
  static openError: Error | undefined;
  readonly options: SerialPortConstructorOptions;
  isOpen = false;
  paused = false;
  readonly writes: Array<{ chunk: Buffer; callback: (error: Error | null | undefined) => void }> = [];

  constructor(options: SerialPortConstructorOptions) {
    super();
    this.options = options;
    (this.constructor as typeof MockSerialPort).instances.push(this);
  }

  open(callback: (error: Error | null) => void): void {
    setImmediate(() => {
      const openError = (this.constructor as typeof MockSerialPort).openError;
      if (openError) return callback(openError);
      this.isOpen = true;
      callback(null);
    });
  }

  close(callback: (error: Error | null) => void): void {
    this.isOpen = false;
    setImmediate(() => {
      this.emit('close', null);
      callback(null);
    });
  }

  write(chunk: Buffer, callback: (error: Error | null | undefined) => void): boolean {
    this.writes.push({ chunk, callback });
    return true;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    return this;
  }

  /** serialport's disconnect path: the port closes itself and emits `close` with a DisconnectedError. */
  unplug(): void {
    this.isOpen = false;
    this.emit('close', Object.assign(new Error('bad file descriptor'), { disconnected: true }));
  }
}

/** A fresh class per test, so instance lists and open errors never leak between tests. */
function mockClass(): typeof MockSerialPort {
  return class extends MockSerialPort {
    static override instances: MockSerialPort[] = [];
    static override openError: Error | undefined;
  };
}

async function caught(promise: Promise<unknown>): Promise<TransportError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TransportError);
    return error as TransportError;
  }
  throw new Error('expected a rejection');
}

describe('SerialTransport', () => {
  it('rejects bad options with a ConfigError naming the field', () => {
    const cases: Array<[() => unknown, string]> = [
      [() => new SerialTransport({ path: '' }), 'path'],
      [() => new SerialTransport({ path: '/dev/ttyUSB0', baudRate: 0 }), 'baudRate'],
      [() => new SerialTransport({ path: '/dev/ttyUSB0', baudRate: 9600.5 }), 'baudRate'],
      [() => new SerialTransport({ path: '/dev/ttyUSB0', highWaterMark: 10 }), 'highWaterMark'],
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

  it("info is { kind: 'serial', path }; the default baud rate is 115200", () => {
    const t = new SerialTransport({ path: '/dev/ttyACM0' });
    expect(t.info).toEqual({ kind: 'serial', path: '/dev/ttyACM0' });
    expect(t.baudRate).toBe(115_200);
  });

  it('constructs the injected class with autoOpen false, the baud rate and a fresh port per open()', async () => {
    const Port = mockClass();
    const t = new SerialTransport({ path: '/dev/fake0', baudRate: 9600, SerialPort: Port });
    expect(Port.instances).toHaveLength(0);
    await t.open();
    await t.close();
    await t.open();
    expect(Port.instances).toHaveLength(2);
    expect(Port.instances[0]?.options).toMatchObject({ path: '/dev/fake0', baudRate: 9600, autoOpen: false, highWaterMark: 65536 });
    expect(Port.instances[0]).not.toBe(Port.instances[1]);
    await t.close();
  });

  it("maps an open error to 'open-failed' with the OS error as cause", async () => {
    const Port = mockClass();
    const osError = Object.assign(new Error('Error: No such file or directory, cannot open /dev/fake1'), { code: undefined });
    Port.openError = osError;
    const t = new SerialTransport({ path: '/dev/fake1', SerialPort: Port });
    const error = await caught(t.open());
    expect(error.code).toBe('open-failed');
    expect(error.disconnected).toBe(false);
    expect(error.cause).toBe(osError);
    expect(t.state).toBe('closed');
  });

  it("serialport 'close' with a DisconnectedError becomes 'disconnect'; pending writes reject disconnected", async () => {
    const Port = mockClass();
    const t = new SerialTransport({ path: '/dev/fake2', SerialPort: Port });
    await t.open();
    const port = Port.instances[0] as MockSerialPort;
    const write = caught(t.write(new Uint8Array([1])));
    const disconnect = new Promise<TransportError>((resolve) => t.once('disconnect', resolve));
    port.unplug();
    const event = await disconnect;
    expect(event.code).toBe('disconnected');
    expect(event.disconnected).toBe(true);
    expect((event.cause as { disconnected?: boolean }).disconnected).toBe(true);
    expect((await write).code).toBe('disconnected');
    expect(t.state).toBe('disconnected');
  });

  it("a write failing with EIO/ENXIO is a disconnect; any other write error is 'write-failed'", async () => {
    const Port = mockClass();
    const t = new SerialTransport({ path: '/dev/fake3', SerialPort: Port });
    await t.open();
    const port = Port.instances[0] as MockSerialPort;
    const failed = caught(t.write(new Uint8Array([1])));
    port.writes[0]?.callback(Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' }));
    const writeFailed = await failed;
    expect(writeFailed.code).toBe('write-failed');
    expect(writeFailed.disconnected).toBe(false);
    expect(t.state).toBe('open');

    let disconnects = 0;
    t.on('disconnect', () => disconnects++);
    const lost = caught(t.write(new Uint8Array([2])));
    port.writes[1]?.callback(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
    const error = await lost;
    expect(error.code).toBe('disconnected');
    expect(error.disconnected).toBe(true);
    expect(disconnects).toBe(1);
  });

  it("an 'error' event that means the device is gone (ENXIO) becomes 'disconnect'; others are ignored", async () => {
    const Port = mockClass();
    const t = new SerialTransport({ path: '/dev/fake4', SerialPort: Port });
    await t.open();
    const port = Port.instances[0] as MockSerialPort;
    let disconnects = 0;
    t.on('disconnect', () => disconnects++);
    port.emit('error', Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' }));
    expect(disconnects).toBe(0);
    port.emit('error', Object.assign(new Error('ENXIO: no such device or address'), { code: 'ENXIO' }));
    expect(disconnects).toBe(1);
    // A late error from the dead port object is swallowed, never unhandled.
    port.emit('error', new Error('late'));
  });

  it('a close we asked for is not a disconnect', async () => {
    const Port = mockClass();
    const t = new SerialTransport({ path: '/dev/fake5', SerialPort: Port });
    await t.open();
    let disconnects = 0;
    t.on('disconnect', () => disconnects++);
    await t.close();
    await settle();
    expect(disconnects).toBe(0);
  });

  it('pauses the port while highWaterMark bytes are unread and resumes below half', async () => {
    const Port = mockClass();
    const t = new SerialTransport({ path: '/dev/fake6', SerialPort: Port, highWaterMark: 4096 });
    await t.open();
    const port = Port.instances[0] as MockSerialPort;
    port.emit('data', Buffer.alloc(3000));
    expect(port.paused).toBe(false);
    port.emit('data', Buffer.alloc(2000));
    expect(port.paused).toBe(true);
    const iterator = t[Symbol.asyncIterator]();
    await iterator.next();
    await settle();
    expect(port.paused).toBe(false);
    await t.close();
  });

  it("passes the class's own binding wrapped by withUnixIoFixes, or raw with unixIoFixes: false", async () => {
    const binding = { list: async () => [], open: async () => Promise.reject(new Error('unused')) };
    const Port = Object.assign(mockClass(), { binding });
    const fixed = new SerialTransport({ path: '/dev/fake7', SerialPort: Port });
    await fixed.open();
    const raw = new SerialTransport({ path: '/dev/fake8', SerialPort: Port, unixIoFixes: false });
    await raw.open();
    const [first, second] = Port.instances;
    expect(first?.options.binding).toBeDefined();
    expect(first?.options.binding).not.toBe(binding);
    expect(second?.options.binding).toBe(binding);
    await Promise.all([fixed.close(), raw.close()]);
  });

  it("works with serialport's SerialPortMock (MockBinding, echo): bytes written come back", async () => {
    const path = `/dev/medge-mock-${process.pid}-${Date.now()}`;
    SerialPortMock.binding.createPort(path, { echo: true });
    const t = new SerialTransport({ path, SerialPort: SerialPortMock });
    await t.open();
    await t.write(new TextEncoder().encode('ping'));
    const { value } = await t[Symbol.asyncIterator]().next();
    expect(Buffer.from(value ?? []).toString()).toBe('ping');
    await t.close();
    expect(t.state).toBe('closed');
  });

  it('isDisconnectError: disconnected/disconnect flags and EIO/ENXIO/EBADF/ENODEV/EPIPE; never a canceled error', () => {
    expect(isDisconnectError({ disconnected: true })).toBe(true);
    expect(isDisconnectError({ disconnect: true })).toBe(true);
    for (const code of ['EIO', 'ENXIO', 'EBADF', 'ENODEV', 'EPIPE']) expect(isDisconnectError({ code })).toBe(true);
    expect(isDisconnectError({ code: 'EAGAIN' })).toBe(false);
    expect(isDisconnectError({ code: 'EIO', canceled: true })).toBe(false);
    expect(isDisconnectError(undefined)).toBe(false);
  });
});
