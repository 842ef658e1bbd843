/**
 * A board whose clock is wrong (no real-time clock, booted offline) against a real TLS aedes edge: when a
 * certificate of the link is outside its validity by the board's clock, the uplink raises one
 * `sync-clock-invalid` alert (severity 2) naming the certificate, its validity window and the board's
 * clock, logs one error, and keeps retrying quietly (debug) until TLS works again; then it delivers. When
 * the edge refuses a certificate that is valid by the board's clock (the edge's clock is behind), the
 * edge does not say why: one `sync-certificate-refused` alert names the edge's clock first.
 *
 * OpenSSL reads the process's real clock, so "the board's clock is N days behind" is played by a
 * certificate dated N days ahead; the board's own clock (`Clock.now()`, what the alert names) is the
 * real one or, where the edge's clock is the one at fault, the real one plus days.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../device-sdk/clock.js';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { Alert } from '../../device-sdk/records.js';
import { type CertifiedKey, createSiteCa, describeCertificate, type EdgeTlsMaterial, initCaDir, issueDeviceCert, issueServerCert, readEdgeTls, readSiteCa, type SiteCa } from '../../device-sdk/security/pki.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EmbeddedBroker } from '../../edge/broker.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const SITE = 'ward-clk';
const DAY = 86_400_000;
const tempDir = useTempDirs('clock-invalid');
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

interface Board {
  uplink: Uplink;
  store: SqliteOutboxStore;
  alerts: Alert[];
  lines: LogLine[];
  /** Reconnects so far ("uplink lost, backing off", at any level). */
  reconnects: () => number;
  stop: () => Promise<void>;
}

const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

/** A board with one unsent reading, syncing to `url` with `identity`, its clock `clock`. */
function board(dir: string, url: string, caPem: string, identity: CertifiedKey, clock: Clock = systemClock): Board {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  const store = new SqliteOutboxStore(join(dir, 'ledger.sqlite'), { deviceId: 'dev-clk' });
  store.append([{ kind: 'reading', tMs: 1, body: encodeBody('reading', { sensor: 'g', type: 'glucose', value: 90, unit: 'mg/dL', tDevice: 1 }) }]);
  const uplink = new Uplink(store, { url, site: SITE, mqtt: { ca: caPem, cert: identity.certPem, key: identity.keyPem, rejectUnauthorized: true }, backoff: { initialMs: 50, maxMs: 200 }, clock, logger });
  const alerts: Alert[] = [];
  uplink.on('alert', (alert) => alerts.push(alert));
  uplink.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await uplink.stop();
    store.close();
  };
  stops.push(stop);
  return { uplink, store, alerts, lines, reconnects: () => lines.filter((l) => l.msg === 'uplink lost, backing off').length, stop };
}

async function edgeWith(dir: string, tls: EdgeTlsMaterial, port = 0): Promise<EdgeNode> {
  const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port, tls });
  await edge.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await edge.stop();
    edge.store.close();
  };
  stops.push(stop);
  return edge;
}

/** A temp dir with a site CA directory (`ca/`): the CA and the edge's TLS material. */
async function site(): Promise<{ dir: string; ca: SiteCa; tls: EdgeTlsMaterial }> {
  const dir = tempDir();
  const caDir = join(dir, 'ca');
  await initCaDir(caDir, { site: SITE });
  return { dir, ca: readSiteCa(caDir), tls: readEdgeTls(caDir) };
}

/** Waits for `reconnects` failed attempts, then expects exactly one alert (`kind`, severity 2) and one warn-or-worse log line. */
async function expectOneAlert(b: Board, kind = 'sync-clock-invalid', reconnects = 8): Promise<Alert> {
  await waitFor(() => b.reconnects() >= reconnects, `${reconnects} reconnect attempts`, 15_000);
  expect(b.alerts.map((a) => [a.kind, a.severity])).toEqual([[kind, 2]]);
  const loud = b.lines.filter((l) => l.level >= 40);
  expect(loud.map((l) => l.msg)).toEqual(['TLS to the edge fails on a certificate; retrying with backoff (alert raised)']);
  // No patient data in the alert: it speaks of certificates and clocks only.
  expect((b.alerts[0] as Alert).message).not.toMatch(/glucose|patient/i);
  return b.alerts[0] as Alert;
}

describe('sync-clock-invalid: TLS failures caused by a clock, against a real TLS aedes edge', () => {
  it("the edge's certificate starts after the board's clock: one alert naming both, quiet retries, delivery once TLS works", async () => {
    const { dir, ca, tls } = await site();
    // A server certificate starting 2 days from now: the board's clock is 2 days behind it.
    const server = await issueServerCert(ca, { notBefore: new Date(Date.now() + 2 * DAY), validDays: 30 });
    // The broker alone: the edge's own ingest, on the same clock, could not connect to it either.
    const port = await freePort();
    const broker = new EmbeddedBroker({ port, site: SITE, tls: { ca: tls.ca, cert: server.certPem, key: server.keyPem } });
    await broker.start();
    stops.push(() => broker.stop());
    const b = board(dir, broker.url, tls.ca, await issueDeviceCert(ca, { deviceId: 'dev-clk', site: SITE }));
    const alert = await expectOneAlert(b);
    const window = describeCertificate(server.certPem);
    expect(alert.message).toContain(`the edge's server certificate (valid from ${iso(window.notBefore)} to ${iso(window.notAfter)}) is not yet valid by this board's clock`);
    expect(alert.message).toContain(`this board's clock says ${day(Date.now())}`);
    expect(alert.message).toContain("This board's clock is behind: set its date and time");
    expect(b.uplink.tlsProblem).toMatchObject({ code: 'sync-clock-invalid', certificate: 'edge', validity: 'not-yet-valid', suspect: 'device-clock', tlsCode: 'CERT_NOT_YET_VALID' });
    expect(b.store.ackedUpTo('reading')).toBe(0);

    // The edge gets a certificate valid now (as if the board's clock had been set): the board connects and delivers by itself.
    await broker.stop();
    await edgeWith(dir, tls, port);
    await waitFor(() => b.store.ackedUpTo('reading') === 1, 'the reading delivered once TLS works', 15_000);
    expect(b.uplink.tlsProblem).toBeUndefined();
    expect(b.lines.some((l) => l.msg === 'TLS to the edge works again')).toBe(true);
    await b.stop();
  }, 40_000);

  it("the edge refuses the board's certificate, which the board's clock finds valid: sync-certificate-refused names the edge's clock first", async () => {
    const { dir, ca, tls } = await site();
    const edge = await edgeWith(dir, tls);
    // The board's certificate starts in 2 days; the board's clock is 3 days ahead of the edge's (the edge is behind).
    const identity = await issueDeviceCert(ca, { deviceId: 'dev-clk', site: SITE, notBefore: new Date(Date.now() + 2 * DAY) });
    const ahead: Clock = { ...systemClock, now: () => Date.now() + 3 * DAY };
    const b = board(dir, edge.url, tls.ca, identity, ahead);
    const alert = await expectOneAlert(b, 'sync-certificate-refused');
    const window = describeCertificate(identity.certPem);
    expect(alert.message).toContain(`refusing this board's certificate (valid from ${iso(window.notBefore)} to ${iso(window.notAfter)}), which is valid by this board's clock (${day(Date.now() + 3 * DAY)}`);
    expect(alert.message).toContain("check, in this order: the edge's date and time");
    expect(b.uplink.tlsProblem).toMatchObject({ code: 'sync-certificate-refused', refusals: 3 });
    // The edge counted each refused handshake.
    expect(edge.store.stats().rejected.auth ?? 0).toBeGreaterThanOrEqual(8);
    await b.stop();
  }, 40_000);

  it("the board's own certificate has expired: names it and says to provision a new one", async () => {
    const { dir, ca, tls } = await site();
    const edge = await edgeWith(dir, tls);
    const identity = await issueDeviceCert(ca, { deviceId: 'dev-clk', site: SITE, notBefore: new Date(Date.now() - 10 * DAY), validDays: 2 });
    const b = board(dir, edge.url, tls.ca, identity);
    const alert = await expectOneAlert(b);
    expect(alert.message).toContain("This board's certificate has expired: ask the site technician to provision a new one (medge provision)");
    expect(alert.message).toContain("the edge refuses this board's certificate");
    expect(alert.message).toContain('which is expired by this board\'s clock too');
    expect(b.uplink.tlsProblem).toMatchObject({ code: 'sync-clock-invalid', certificate: 'device', validity: 'expired', suspect: 'certificate', tlsCode: 'refused' });
    await b.stop();
  }, 40_000);

  it("a site CA that starts after the board's clock: the CA is named", async () => {
    const dir = tempDir();
    const ca = await createSiteCa({ site: SITE, notBefore: new Date(Date.now() + 2 * DAY) });
    const server = await issueServerCert(ca);
    // The broker alone: the edge's ingest could not connect either (the same clock, the same CA).
    const broker = new EmbeddedBroker({ port: 0, site: SITE, tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } });
    await broker.start();
    stops.push(() => broker.stop());
    const b = board(dir, broker.url, ca.certPem, await issueDeviceCert(ca, { deviceId: 'dev-clk', site: SITE }));
    const alert = await expectOneAlert(b);
    expect(alert.message).toContain(`the site CA's certificate (valid from ${iso(describeCertificate(ca.certPem).notBefore)}`);
    expect(b.uplink.tlsProblem).toMatchObject({ certificate: 'ca', validity: 'not-yet-valid', suspect: 'device-clock' });
    await b.stop();
  }, 40_000);
});
