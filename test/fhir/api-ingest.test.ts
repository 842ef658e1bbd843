import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeAck, encodeBody } from '../../device-sdk/proto/index.js';
import { buildBatch } from '../../device-sdk/sync/batch.js';
import { downTopic, upTopic } from '../../device-sdk/sync/topics.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { EdgeStore } from '../../edge/edge-store.js';
import { FhirServer } from '../../edge/fhir/http.js';
import { requireBuild } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

// QA F3: the FHIR API rebuilt the whole export on the broker's thread for every request; with 400,000
// readings GET /fhir/Device took 16 s and acks stopped meanwhile (devices' ack timeouts fired).

const tmp = useTempDirs('fhir-api');
const T0 = Date.UTC(2026, 10, 1);
const SITE = 's';
const N = 100_000; // about 4 s of export on the old code; enough that a stall shows, small enough to seed in seconds

const cgm = (i: number) => encodeBody('reading', { sensor: 'cgm', type: 'glucose', value: 60 + (i % 200), unit: 'mg/dL', tDevice: T0 + i * 60_000, context: { specimen: 'interstitial' } });

/** The live device's readings: measured now (outside the seeded days). */
const live = (i: number) => encodeBody('reading', { sensor: 'cgm', type: 'glucose', value: 60 + (i % 200), unit: 'mg/dL', tDevice: Date.now() });

/** N CGM readings of dev-1, one a minute from 2026-11-01 (QA's fhir-big.mjs). */
function seed(dir: string, n: number): void {
  const store = new EdgeStore(dir);
  for (let off = 0; off < n; off += 5000) {
    const k = Math.min(5000, n - off);
    const records = Array.from({ length: k }, (_, i) => ({ seq: off + i + 1, bootId: 'b1', tMs: T0 + (off + i) * 60_000, body: cgm(off + i) }));
    store.commit({ site: SITE, deviceId: 'dev-1', kind: 'reading', bootId: 'b1', afterSeq: off, lastSeq: off + k, ackedUpTo: 0, records });
  }
  store.close();
}

type Bundle = { resourceType: string; total?: number; entry?: { resource: { id: string; effectiveDateTime?: string } }[]; link?: { relation: string; url: string }[] };

describe('FHIR API beside a syncing device (QA F3)', () => {
  const stops: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  async function start(limits: ConstructorParameters<typeof FhirServer>[0]['limits'] = {}) {
    requireBuild(); // the query worker runs the compiled code
    const dataDir = join(tmp(), 'edge');
    seed(dataDir, N);
    const edge = new EdgeNode({ dataDir, port: 0 });
    await edge.start();
    stops.push(() => edge.stop());
    const fhir = new FhirServer({ dataDir, port: 0, limits });
    await fhir.start();
    stops.push(() => fhir.stop());
    return { edge, fhir };
  }

  /** A device that sends a batch of 10 readings, and the next one on each ack; `acks` are the times (ms) acks came. */
  async function liveDevice(url: string) {
    const acks: number[] = [];
    const client = await mqtt.connectAsync(url, { clientId: 'dev-live', clean: true });
    let running = true;
    stops.push(() => {
      running = false;
      client.end(true);
    });
    await client.subscribeAsync(downTopic(SITE, 'dev-live', 'ack'), { qos: 1 });
    let seq = 0;
    const send = () => {
      const records = Array.from({ length: 10 }, (_, i) => ({ seq: seq + i + 1, bootId: 'live', tMs: Date.now(), body: live(seq + i) }));
      const payload = buildBatch({ deviceId: 'dev-live', bootId: 'live', kind: 'reading', afterSeq: seq, ackedUpTo: 0, records, sentMs: Date.now() });
      seq += 10;
      client.publish(upTopic(SITE, 'dev-live', 'reading'), Buffer.from(payload), { qos: 1 });
    };
    client.on('message', (_topic, payload) => {
      if (decodeAck(payload).upToSeq < seq) return;
      acks.push(performance.now());
      if (running) send();
    });
    send();
    await new Promise((r) => setTimeout(r, 500));
    expect(acks.length).toBeGreaterThan(5); // the device is syncing before any request
    return { acks, sent: () => seq };
  }

  /** GET, retrying a 503/429 after its Retry-After as a client should. */
  async function get(fhir: FhirServer, path: string): Promise<{ status: number; body: Bundle; tries: number[] }> {
    const tries: number[] = [];
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${fhir.port}${path}`);
      tries.push(res.status);
      const body = (await res.json()) as Bundle;
      if (res.status !== 503 && res.status !== 429) return { status: res.status, body, tries };
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const longestGap = (acks: number[], from: number, to: number) => {
    const times = [from, ...acks.filter((t) => t > from && t < to), to];
    return Math.max(...times.slice(1).map((t, i) => t - (times[i] as number)));
  };

  it('keeps acknowledging a device while a large search runs, and pages the answer', { timeout: 120_000 }, async () => {
    const { edge, fhir } = await start();
    const device = await liveDevice(edge.url);

    const from = performance.now();
    const [search, devices] = await Promise.all([get(fhir, '/fhir/Observation?date=ge2026-11-02&date=lt2026-11-03&_count=500'), get(fhir, '/fhir/Device')]);
    const to = performance.now();
    const gap = longestGap(device.acks, from, to);
    // A real-behaviour bound, not a benchmark: on the old code the ingest stood still for the whole export (4-5 s here).
    expect(gap, `longest time between acks while the FHIR requests ran: ${Math.round(gap)} ms (requests took ${Math.round(to - from)} ms)`).toBeLessThan(2000);

    expect(search.status).toBe(200);
    expect(search.body.total).toBe(1440); // one day of one-a-minute readings
    expect(search.body.entry).toHaveLength(500);
    const next = search.body.link?.find((l) => l.relation === 'next')?.url;
    expect(next).toMatch(/_count=500&_offset=500$/);
    expect(devices.status).toBe(200);
    expect(devices.body.entry?.map((e) => e.resource.id)).toContain('dev-dev-1');

    // The pages together are the day's readings, each once, in time order.
    const ids = new Set(search.body.entry?.map((e) => e.resource.id));
    let url: string | undefined = next;
    while (url) {
      const pageResult = await get(fhir, new URL(url).pathname + new URL(url).search);
      for (const e of pageResult.body.entry ?? []) ids.add(e.resource.id);
      expect(pageResult.body.link?.find((l) => l.relation === 'previous')).toBeDefined();
      url = pageResult.body.link?.find((l) => l.relation === 'next')?.url;
    }
    expect(ids.size).toBe(1440);
    expect(device.acks.length).toBeGreaterThan(20);
  });

  it('answers 503 with Retry-After instead of holding a request past answerTimeoutMs, and 429 past maxPending', { timeout: 120_000 }, async () => {
    const { fhir } = await start({ answerTimeoutMs: 100, maxPending: 1 });
    const first = fetch(`http://127.0.0.1:${fhir.port}/fhir/Device`);
    const second = await fetch(`http://127.0.0.1:${fhir.port}/fhir/Patient`);
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(((await second.json()) as { issue: { code: string }[] }).issue[0]?.code).toBe('throttled');
    const started = performance.now();
    const slow = await first;
    expect(slow.status).toBe(503);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(((await slow.json()) as { issue: { diagnostics: string }[] }).issue[0]?.diagnostics).toMatch(/not ready within 100 ms/);
    // The worker carried on: once the export is built, the same request is answered.
    const answered = await get(fhir, '/fhir/Device');
    expect(answered.status).toBe(200);
    expect(answered.tries.at(-1)).toBe(200);
    expect(answered.body.total).toBe(1);
  });
});
