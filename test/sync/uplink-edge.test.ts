import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { RECORD_KINDS, type RecordKind } from '../../device-sdk/records.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { waitFor } from '../helpers/wait.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('sync');

function reading(i: number) {
  return { kind: 'reading' as const, tMs: 1_700_000_000_000 + i, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 80 + (i % 50), unit: 'mg/dL', tDevice: 1_700_000_000_000 + i }) };
}

describe('uplink to edge through the embedded aedes broker', () => {
  it('delivers every record once, acks after commit, and survives a broker restart mid-stream', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const store = new SqliteOutboxStore(join(dir, 'device', 'ledger.sqlite'), { deviceId: 'dev-1', retentionMs: { reading: 0, chunk: 0 } });
    store.append(Array.from({ length: 3000 }, (_, i) => reading(i)));
    store.append([{ kind: 'alert', tMs: 1, body: encodeBody('alert', { kind: 'test', severity: 3, message: 'm', t: 1 }) }]);
    const uplink = new Uplink(store, { url: edge.url, site: 'clinic', batchMaxRecords: 100, window: 4, ackTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 200 } });
    const order: RecordKind[] = [];
    uplink.on('ack', ({ kind }) => order.push(kind));
    uplink.start();
    await waitFor(() => store.ackedUpTo('reading') >= 1000, 'first 1000 readings acked');
    await edge.stopBroker();
    store.append(Array.from({ length: 500 }, (_, i) => reading(3000 + i)));
    await new Promise((r) => setTimeout(r, 300));
    await edge.startBroker();
    await waitFor(() => uplink.drained, 'uplink drained');
    expect(order[0]).toBe('alert');
    expect(edge.store.stats().devices['dev-1']).toEqual({ alert: 1, reading: 3500 });
    const audit = edge.store.audit('dev-1');
    expect(audit.reading).toMatchObject({ stored: 3500, minSeq: 1, maxSeq: 3500, duplicateBodies: 0 });
    const stats = store.stats();
    for (const kind of RECORD_KINDS) expect(stats[kind].pending).toBe(0);
    expect(stats.reading.ackedUpTo).toBe(3500);
    await uplink.stop();
    store.close();
    await edge.stop();
  });
});
