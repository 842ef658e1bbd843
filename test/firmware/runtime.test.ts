import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { Alert } from '../../device-sdk/records.js';
import { readLedgerSummary, SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { SYNC_DEVICE_ID_IN_USE } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { waitFor } from '../helpers/wait.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('runtime');

describe('Runtime', () => {
  it('raises a storage-full alert, refuses waveform and keeps storing clinical records when only unsynced clinical records fill the budget', async () => {
    const dir = tempDir();
    const budgetBytes = 1024 * 1024;
    // Fill the ledger past its budget with unsynced readings: nothing in it may be evicted.
    const store = new SqliteOutboxStore(ledgerPath(join(dir, 'device')), { deviceId: 'full-1' });
    const body = encodeBody('reading', { sensor: 'g', type: 'glucose', value: 100, unit: 'mg/dL', tDevice: 1, context: { note: 'x'.repeat(900) } });
    store.append(Array.from({ length: 1200 }, (_, i) => ({ kind: 'reading' as const, tMs: i, body })));
    store.close();

    const config = parseRuntimeConfig(
      {
        deviceId: 'full-1',
        dataDir: 'device',
        edge: { url: 'mqtt://127.0.0.1:1' }, // nothing listens: the device is offline
        store: { budgetBytes },
        sources: [
          { type: 'sim-ecg', chunkMs: 100 },
          { type: 'sim-hr', intervalMs: 100 },
        ],
      },
      dir,
    );
    const runtime = new Runtime(config, { logger: silentLogger });
    const alerts: Alert[] = [];
    runtime.on('alert', (a) => alerts.push(a));
    runtime.start();
    try {
      expect(alerts.map((a) => a.kind)).toEqual(['storage-full']);
      expect(alerts[0]?.severity).toBe(3);
      const before = runtime.status().produced;
      await waitFor(() => runtime.status().produced.reading >= before.reading + 5, 'heart-rate readings stored while full');
      const after = runtime.status();
      expect(after.produced.chunk).toBe(before.chunk);
      expect(after.storage.overBudget).toBe(true);
      expect(after.produced.alert).toBe(1);
    } finally {
      await runtime.stop();
    }
    const summary = readLedgerSummary(ledgerPath(join(dir, 'device')));
    expect(summary.kinds.reading.rows).toBeGreaterThan(1200); // nothing clinical was evicted
    expect(summary.kinds.chunk.rows).toBe(0);
  });
});

describe('Runtime with another board under its deviceId', () => {
  it('stores and raises sync-device-id-in-use (severity 2) on both boards', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const boards = ['a', 'b'].map((name) => {
      const config = parseRuntimeConfig({ deviceId: 'twin-1', dataDir: name, edge: { url: edge.url, backoff: { initialMs: 50, maxMs: 500 } } }, dir);
      const runtime = new Runtime(config, { logger: silentLogger });
      const alerts: Alert[] = [];
      runtime.on('alert', (a) => alerts.push(a));
      return { runtime, alerts, ledger: ledgerPath(join(dir, name)) };
    });
    for (const b of boards) b.runtime.start();
    try {
      await waitFor(() => boards.every((b) => b.alerts.some((a) => a.kind === SYNC_DEVICE_ID_IN_USE)), 'both boards raise sync-device-id-in-use', 20_000);
    } finally {
      for (const b of boards) await b.runtime.stop();
      await edge.stop();
    }
    for (const b of boards) {
      expect(b.alerts.filter((a) => a.kind === SYNC_DEVICE_ID_IN_USE).map((a) => a.severity)).toEqual([2]);
      // Stored in the ledger like any alert (and synced to the edge with it).
      expect(readLedgerSummary(b.ledger).kinds.alert.rows).toBeGreaterThanOrEqual(1);
    }
  }, 40_000);
});

describe('README', () => {
  it('shows a runtime config that the runtime accepts', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Runtime config'));
    const example = /```json\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toBeDefined();
    const config = parseRuntimeConfig(JSON.parse(example as string), '/srv/medge');
    expect(config.dataDir).toBe('/srv/medge/data');
    expect(config.sources.map((s) => s.type)).toEqual(['sim-ecg', 'sim-glucose']);
  });
});
