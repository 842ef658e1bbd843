/**
 * A broker that refuses a board's subscription to its own ack topic (SUBACK 0x80): how Mosquitto's dynamic security
 * plugin answers a board the edge blocked while it was offline (`test/security/mosquitto-dynsec.test.ts` has the real
 * one). Here a bare aedes broker refuses or grants at will, with the real uplink. The board raises one
 * `sync-access-refused` alert per episode and reconnects slowly; a normal board (slow SUBACK, broker restart,
 * network cut) never raises it. Before: no alert, a reconnect every <= `backoff.maxMs` with info logs only.
 */
import { Aedes, type Client, type Subscription } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../device-sdk/records.js';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { MemoryOutboxStore } from '../../device-sdk/store/memory-outbox-store.js';
import { SYNC_ACCESS_REFUSED, Uplink } from '../../device-sdk/sync/uplink.js';
import { waitFor } from '../helpers/wait.js';

const T0 = 1_700_000_000_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An aedes broker on `port` (0: a free one) whose answer to each subscription `answer` decides. */
async function bareBroker(answer: () => 'grant' | 'refuse' | number, port = 0) {
  const aedes = await Aedes.createBroker({
    authorizeSubscribe: (_client: Client | null, sub: Subscription, callback: (error: Error | null, sub: Subscription | null) => void) => {
      const a = answer();
      if (a === 'refuse') return callback(null, null);
      if (a === 'grant') return callback(null, sub);
      setTimeout(() => callback(null, sub), a);
    },
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as { port: number }).port;
  return {
    port: bound,
    url: `mqtt://127.0.0.1:${bound}`,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}

function board(url: string) {
  const store = new MemoryOutboxStore({ deviceId: 'dev-a' });
  store.append([{ kind: 'reading', tMs: T0, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 90, unit: 'mg/dL', tDevice: T0 }) }]);
  const lines: { level: number; msg: string; subackCode?: number; why?: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const uplink = new Uplink(store, { url, site: 'clinic', ackTimeoutMs: 500, backoff: { initialMs: 50, maxMs: 2_000 }, logger });
  const alerts: Alert[] = [];
  uplink.on('alert', (a) => alerts.push(a));
  const connects = () => lines.filter((l) => l.msg === 'uplink lost, backing off').length;
  return { store, uplink, alerts, lines, connects };
}

describe('a broker that refuses the board\'s ack subscription (aedes)', () => {
  it('raises sync-access-refused once per episode with the broker\'s answer logged, backs off, and clears once it subscribes again', async () => {
    let refuse = true;
    const broker = await bareBroker(() => (refuse ? 'refuse' : 'grant'));
    const b = board(broker.url);
    try {
      b.uplink.start();
      await waitFor(() => b.alerts.length > 0, 'the sync-access-refused alert', 5_000);
      expect(b.alerts[0]).toMatchObject({ kind: SYNC_ACCESS_REFUSED, severity: 2 });
      expect(b.alerts[0]?.message).toContain('refuses this board\'s subscriptions');
      expect(b.alerts[0]?.message).toContain('certificate may have been revoked');
      expect(b.alerts[0]?.message).toContain('Re-provision it');
      // The broker's answer is in the log, at error level with the alert.
      expect(b.lines.find((l) => l.level >= 50)).toMatchObject({ subackCode: 128 });
      // The next 4.5 s: reconnects every 1-2 s (half to whole backoff.maxMs), no second alert. Before: no alert at all.
      const before = b.connects();
      await sleep(4_500);
      expect(b.connects() - before).toBeLessThanOrEqual(4);
      expect(b.alerts).toHaveLength(1);

      // Access restored: it subscribes, delivers nothing (no ingest here) but is connected; the episode ends.
      refuse = false;
      await waitFor(() => b.uplink.state === 'connected', 'the board connected again', 5_000);
      expect(b.lines.some((l) => l.msg === 'the broker grants this board\'s subscriptions again')).toBe(true);
      // A new episode alerts again.
      refuse = true;
      broker.cut();
      await waitFor(() => b.alerts.length === 2, 'the second episode\'s alert', 10_000);
      expect(b.alerts.map((a) => a.kind)).toEqual([SYNC_ACCESS_REFUSED, SYNC_ACCESS_REFUSED]);
    } finally {
      await b.uplink.stop();
      await broker.close();
    }
  }, 30_000);

  it('a normal board never raises it: a slow SUBACK, a broker restart, network cuts', async () => {
    let delay = 2_000;
    let broker = await bareBroker(() => delay);
    const b = board(broker.url);
    try {
      b.uplink.start();
      await waitFor(() => b.uplink.state === 'connected', 'connected after a 2 s SUBACK', 5_000);
      delay = 0;
      for (let i = 0; i < 4; i += 1) {
        broker.cut();
        await waitFor(() => b.uplink.state === 'connected', 'connected after a cut', 5_000);
      }
      const port = broker.port;
      await broker.close();
      await sleep(500);
      broker = await bareBroker(() => delay, port);
      await waitFor(() => b.uplink.state === 'connected', 'connected after a broker restart', 5_000);
      expect(b.alerts).toEqual([]);
      expect(b.lines.filter((l) => l.subackCode !== undefined)).toEqual([]);
    } finally {
      await b.uplink.stop();
      await broker.close();
    }
  }, 30_000);
});
