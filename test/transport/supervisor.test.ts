/**
 * `TransportSupervisor`: its backoff, state machine and stop() on a virtual clock with the memory
 * pair (deterministic), then hot-plug for real: SerialTransport on a socat pty pair, socat SIGKILLed
 * (unplug) and started again at the same links (replug).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Clock, type ClockTimer, systemClock } from '../../device-sdk/clock.js';
import { MedgeError } from '../../device-sdk/errors.js';
import { mulberry32 } from '../../device-sdk/random.js';
import { backoffDelay } from '../../device-sdk/sync/backoff.js';
import type { ByteTransport } from '../../device-sdk/transport/byte-transport.js';
import { createMemoryTransportPair, type MemoryTransport } from '../../device-sdk/transport/memory-transport.js';
import { SerialTransport } from '../../device-sdk/transport/serial-transport.js';
import { type RetryInfo, type SupervisorState, TransportSupervisor } from '../../device-sdk/transport/supervisor.js';
import { createPtyPair, findSocat, type PtyPair, systemAvailable } from '../helpers/pty.js';
import { waitFor } from '../helpers/wait.js';
import { MockClock, settle } from './mock-clock.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');
const BACKOFF = { initialMs: 100, maxMs: 1_000 };

/** Records everything a supervisor emits, in order. */
function record<T extends ByteTransport>(supervisor: TransportSupervisor<T>): string[] {
  const log: string[] = [];
  supervisor.on('state', (s: SupervisorState) => log.push(`state:${s}`));
  supervisor.on('open', () => log.push('open'));
  supervisor.on('disconnect', (e) => log.push(`disconnect:${e.code}`));
  supervisor.on('replug', (n) => log.push(`replug:${n}`));
  supervisor.on('retry', (r: RetryInfo) => log.push(`retry:${r.attempt}:${r.error.code}`));
  return log;
}

describe('TransportSupervisor (memory pair, virtual clock)', () => {
  function setup(seed = 1) {
    const clock = new MockClock();
    const pair = createMemoryTransportPair({ clock });
    let calls = 0;
    const supervisor = new TransportSupervisor<MemoryTransport>(
      () => {
        calls++;
        return pair.a;
      },
      { clock, random: mulberry32(seed), backoff: BACKOFF },
    );
    return { clock, pair, supervisor, calls: () => calls };
  }

  it('start(): idle -> opening -> open, emits open with the transport', async () => {
    const { supervisor, pair } = setup();
    const log = record(supervisor);
    expect(supervisor.state).toBe('idle');
    supervisor.start();
    supervisor.start();
    await settle();
    expect(log).toEqual(['state:opening', 'state:open', 'open']);
    expect(supervisor.transport).toBe(pair.a);
    expect(pair.a.isOpen).toBe(true);
    await supervisor.stop();
  });

  it('unplug -> disconnect, backoff with full jitter, failed retries, replug -> reopened, replug count 1', async () => {
    const { supervisor, pair, clock, calls } = setup(42);
    const log = record(supervisor);
    supervisor.start();
    await settle();
    await pair.b.open();
    log.length = 0;

    pair.disconnect();
    await settle();
    expect(supervisor.state).toBe('backoff');
    expect(supervisor.transport).toBeUndefined();
    expect(pair.a.state, 'the disconnected transport was released').toBe('closed');
    // The disconnect and two failed opens while unplugged: each delay is backoffDelay(n) drawn
    // with the same seeded random; the third wait ends after the replug.
    const expected = mulberry32(42);
    for (let n = 0; n < 3; n++) {
      const delay = clock.delays.at(-1) as number;
      expect(delay).toBe(backoffDelay(n, BACKOFF, expected));
      if (n < 2) await clock.advance(delay);
    }
    expect(supervisor.attempt).toBe(3);
    pair.reconnect();
    await clock.advance(clock.delays.at(-1) as number);
    expect(supervisor.state).toBe('open');
    expect(supervisor.replugs).toBe(1);
    expect(supervisor.attempt).toBe(0);
    expect(calls()).toBe(4);
    expect(log).toEqual([
      'disconnect:disconnected',
      'state:backoff',
      'retry:1:disconnected',
      'state:opening',
      'state:backoff',
      'retry:2:open-failed',
      'state:opening',
      'state:backoff',
      'retry:3:open-failed',
      'state:opening',
      'state:open',
      'replug:1',
      'open',
    ]);
    // Bytes flow again (the peer end was unplugged too and is reopened by hand).
    await pair.b.open();
    await pair.b.write(new Uint8Array([9]));
    const { value } = await (supervisor.transport as MemoryTransport)[Symbol.asyncIterator]().next();
    expect([...(value ?? [])]).toEqual([9]);
    await supervisor.stop();
  });

  it('open failures back off exponentially up to maxMs (random ~1: delays near the ceilings)', async () => {
    const clock = new MockClock();
    const supervisor = new TransportSupervisor(
      () => {
        const pair = createMemoryTransportPair({ clock });
        pair.disconnect();
        return pair.a;
      },
      { clock, random: () => 0.999, backoff: BACKOFF },
    );
    supervisor.start();
    await settle();
    for (let i = 0; i < 6; i++) await clock.advance(clock.delays.at(-1) as number);
    expect(clock.delays).toEqual([99, 199, 399, 799, 999, 999, 999]);
    await supervisor.stop();
  });

  it('stop() during backoff clears the timer, ends stopped and never reopens', async () => {
    const { supervisor, pair, clock, calls } = setup();
    supervisor.start();
    await settle();
    pair.disconnect();
    await settle();
    expect(supervisor.state).toBe('backoff');
    expect(clock.pending).toBe(1);
    const before = calls();
    pair.reconnect();
    await supervisor.stop();
    expect(clock.pending).toBe(0);
    expect(supervisor.state).toBe('stopped');
    await clock.advance(3_600_000);
    expect(calls()).toBe(before);
    expect(pair.a.state).toBe('closed');
    expect(() => supervisor.start()).toThrow(MedgeError);
  });

  it('stop() while opening cancels the open; nothing is left open or scheduled', async () => {
    const { supervisor, pair, clock, calls } = setup();
    const log = record(supervisor);
    supervisor.start();
    expect(supervisor.state).toBe('opening');
    await supervisor.stop();
    await clock.advance(60_000);
    expect(pair.a.state).toBe('closed');
    expect(clock.pending).toBe(0);
    expect(calls()).toBe(1);
    expect(log).toEqual(['state:opening', 'state:stopped']);
  });

  it('stop() while open closes the transport without a disconnect event; stop() is idempotent', async () => {
    const { supervisor, pair } = setup();
    const log = record(supervisor);
    supervisor.start();
    await settle();
    const first = supervisor.stop();
    expect(supervisor.stop()).toBe(first);
    await first;
    expect(pair.a.state).toBe('closed');
    expect(log).not.toContain('disconnect:disconnected');
    expect(log.at(-1)).toBe('state:stopped');
  });

  it('a factory that throws costs a retry, not the supervisor', async () => {
    const clock = new MockClock();
    const pair = createMemoryTransportPair({ clock });
    let calls = 0;
    const supervisor = new TransportSupervisor(
      () => {
        if (++calls === 1) throw new Error('no such board');
        return pair.a;
      },
      { clock, random: () => 0.5, backoff: BACKOFF },
    );
    const log = record(supervisor);
    supervisor.start();
    await settle();
    expect(log).toEqual(['state:opening', 'state:backoff', 'retry:1:open-failed']);
    await clock.advance(clock.delays.at(-1) as number);
    expect(supervisor.state).toBe('open');
    expect(supervisor.replugs).toBe(0);
    await supervisor.stop();
  });
});

/** The system clock, counting timers that are scheduled and not yet fired or cleared. */
function countingClock(): Clock & { readonly pending: number } {
  const live = new Set<unknown>();
  return {
    now: () => systemClock.now(),
    monotonic: () => systemClock.monotonic(),
    setTimeout(fn: () => void, ms: number): ClockTimer {
      const timer: ClockTimer = systemClock.setTimeout(() => {
        live.delete(timer.id);
        fn();
      }, ms);
      live.add(timer.id);
      return timer;
    },
    clearTimeout(timer: ClockTimer): void {
      live.delete(timer.id);
      systemClock.clearTimeout(timer);
    },
    get pending() {
      return live.size;
    },
  };
}

describe.skipIf(!socatFound)(`TransportSupervisor hot-plug on a socat pty pair${socatFound ? '' : ' (skipped: needs socat: apt-get install -y socat)'}`, () => {
  let pty: PtyPair | undefined;
  const supervisors: TransportSupervisor<SerialTransport>[] = [];

  afterEach(async () => {
    await Promise.all(supervisors.splice(0).map((s) => s.stop()));
    await pty?.close();
    pty = undefined;
  });

  function supervise(path: string, clock: Clock = systemClock) {
    let calls = 0;
    const supervisor = new TransportSupervisor(
      () => {
        calls++;
        return new SerialTransport({ path, baudRate: 115_200 });
      },
      { clock, backoff: { initialMs: 20, maxMs: 200 }, random: mulberry32(path.length) },
    );
    supervisors.push(supervisor);
    supervisor.start();
    return { supervisor, calls: () => calls };
  }

  async function roundTrip(from: ByteTransport, to: ByteTransport, text: string): Promise<void> {
    const reading = (async () => {
      let got = '';
      for await (const chunk of to) {
        got += Buffer.from(chunk).toString();
        if (got.length >= text.length) return got;
      }
      return got;
    })();
    await from.write(new TextEncoder().encode(text));
    expect(await reading).toBe(text);
  }

  it('unplug (SIGKILL socat) then replug (new socat, same links): both ends reopen and bytes flow again', async () => {
    pty = await createPtyPair();
    const a = supervise(pty.a);
    const b = supervise(pty.b);
    await waitFor(() => a.supervisor.state === 'open' && b.supervisor.state === 'open', 'both ends open', 5_000, 5);
    await roundTrip(a.supervisor.transport as SerialTransport, b.supervisor.transport as SerialTransport, 'before unplug');

    const disconnects = Promise.all([a, b].map(({ supervisor }) => new Promise((resolve) => supervisor.once('disconnect', resolve))));
    await pty.kill();
    await disconnects;
    // While unplugged every attempt fails: the links are gone.
    await waitFor(() => a.calls() >= 3 && b.calls() >= 3, 'retries while unplugged', 5_000, 5);
    expect(a.supervisor.state).not.toBe('open');

    const replugs = Promise.all([a, b].map(({ supervisor }) => new Promise((resolve) => supervisor.once('replug', resolve))));
    await pty.replug();
    await replugs;
    await waitFor(() => a.supervisor.state === 'open' && b.supervisor.state === 'open', 'both ends reopened', 5_000, 5);
    expect(a.supervisor.replugs).toBe(1);
    expect(b.supervisor.replugs).toBe(1);
    await roundTrip(a.supervisor.transport as SerialTransport, b.supervisor.transport as SerialTransport, 'after replug a->b');
    await roundTrip(b.supervisor.transport as SerialTransport, a.supervisor.transport as SerialTransport, 'after replug b->a');
  });

  it('stop() during backoff leaves no timers and never reopens, even when the device comes back', async () => {
    pty = await createPtyPair();
    const clock = countingClock();
    const a = supervise(pty.a, clock);
    await waitFor(() => a.supervisor.state === 'open', 'open', 5_000, 5);
    await pty.kill();
    await waitFor(() => a.supervisor.state === 'backoff' && a.calls() >= 2, 'backoff after a failed retry', 5_000, 5);
    await a.supervisor.stop();
    expect(clock.pending).toBe(0);
    const calls = a.calls();
    await pty.replug();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(a.calls()).toBe(calls);
    expect(a.supervisor.state).toBe('stopped');
    // Nobody holds the port: it opens exclusively here.
    const probe = new SerialTransport({ path: pty.a });
    await probe.open();
    await probe.close();
  });
});
