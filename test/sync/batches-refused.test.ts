/**
 * A board whose batches the edge refuses, end to end: a real SQLite ledger, the real uplink, the embedded
 * aedes broker and the edge's ingest. The edge tells the board why (`Ack.refused`, here `malformed`: the
 * board's payloads are mangled on their way out); the board keeps its records, raises one
 * `sync-batches-refused` alert, resends slowly, and delivers everything once the edge takes its batches.
 * Before: no word from the edge, no alert, and the same batches resent on every ack timeout.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../device-sdk/records.js';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { SYNC_BATCHES_REFUSED, Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { waitFor } from '../helpers/wait.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('batches-refused');
const T0 = 1_700_000_000_000;

describe('an edge that refuses a board\'s batches (aedes)', () => {
  it('tells the board why; the board keeps its records, alerts once, resends slowly, and delivers once they are taken', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const store = new SqliteOutboxStore(join(dir, 'ledger.sqlite'), { deviceId: 'dev-bad' });
    let mangle = true;
    const uplink = new Uplink(store, {
      url: edge.url,
      site: 'clinic',
      batchMaxRecords: 10,
      window: 4,
      ackTimeoutMs: 200,
      backoff: { initialMs: 50, maxMs: 4_000 },
      // A truncated length-delimited field: not a Batch.
      sealPayload: (_topic, payload) => (mangle ? Uint8Array.from([0x0a, 0x7f, 0x01]) : payload),
    });
    const alerts: Alert[] = [];
    uplink.on('alert', (a) => alerts.push(a));
    const malformed = () => edge.store.stats().rejected.malformed ?? 0;
    try {
      store.append(Array.from({ length: 30 }, (_, i) => ({ kind: 'reading' as const, tMs: T0 + i, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 90, unit: 'mg/dL', tDevice: T0 + i }) })));
      uplink.start();
      await waitFor(() => alerts.length > 0, 'the sync-batches-refused alert', 5_000);
      expect(alerts[0]).toMatchObject({ kind: SYNC_BATCHES_REFUSED, severity: 2 });
      expect(alerts[0]?.message).toContain('reason: malformed');
      expect(alerts[0]?.message).toContain('Records stay on the board');
      expect(uplink.refused).toEqual({ reading: 'malformed' });
      // Nothing acknowledged: every record is still pending on the board.
      expect(store.ackedUpTo('reading')).toBe(0);
      expect(store.stats().reading.pending).toBe(30);

      // The next 2.5 s: resent on the slow schedule (backoff.maxMs, 4 s), one batch in flight. Measured: 0 refused batches
      // (main: 39, the 3 batches resent every 200 ms ack timeout, and no alert).
      const before = malformed();
      await new Promise((r) => setTimeout(r, 2_500));
      expect(malformed() - before).toBeLessThanOrEqual(1);
      expect(alerts).toHaveLength(1);

      // The edge takes the batches again: everything is delivered and the refusal clears.
      mangle = false;
      await waitFor(() => store.stats().reading.pending === 0, 'the records delivered', 15_000);
      expect(edge.store.stats().devices['dev-bad']?.reading).toBe(30);
      expect(uplink.refused).toEqual({});
      expect(alerts).toHaveLength(1);
    } finally {
      await uplink.stop();
      store.close();
      await edge.stop();
      edge.store.close();
    }
  }, 30_000);
});
