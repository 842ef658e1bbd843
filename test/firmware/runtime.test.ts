import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeBody, encodeBody } from '../../device-sdk/proto/index.js';
import type { Alert } from '../../device-sdk/records.js';
import { readLedgerBodies, readLedgerSummary, SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
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

describe('Runtime on a full disk', () => {
  it('raises storage-full once, stops taking waveform into memory, keeps clinical records and stores them once there is room', async () => {
    // QA: on a full file system every flush failed (5 error lines a second), nothing raised an alert, the
    // ECG chunks piled up in memory and everything buffered was lost at shutdown.
    const dir = tempDir();
    const config = parseRuntimeConfig(
      { deviceId: 'disk-full-1', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: [{ type: 'sim-ecg', chunkMs: 100 }, { type: 'sim-hr', intervalMs: 100 }] },
      dir,
    );
    const runtime = new Runtime(config, { logger: silentLogger });
    const alerts: Alert[] = [];
    runtime.on('alert', (a) => alerts.push(a));
    // What an alarm output (a Firmata board's LED and buzzer) is told: the storage-full alert cannot be stored
    // when raised, and must get the seq an acknowledgement will name once it is (stop 17 left it unacknowledgeable).
    const told: { raised: [string, number | undefined][]; stored: [string, number][] } = { raised: [], stored: [] };
    runtime['alarmOutputs'].push({
      alarm: (a: Alert, seq?: number) => told.raised.push([a.kind, seq]),
      alertStored: (a: Alert, seq: number) => told.stored.push([a.kind, seq]),
      acknowledged: () => undefined,
      restoreAlarms: () => undefined,
      latchMs: 60_000,
      activeAlarms: 0,
    });
    runtime.start();
    // SQLite's page limit on the runtime's own connection: its next growth fails with SQLITE_FULL, as on a full disk.
    const db = runtime['store']['db'];
    try {
      await waitFor(() => runtime.status().produced.chunk >= 10, 'waveform stored');
      db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
      await waitFor(() => alerts.some((a) => a.kind === 'storage-full'), 'the storage-full alert', 20_000);
      expect(alerts.filter((a) => a.kind === 'storage-full').map((a) => a.severity)).toEqual([3]);
      expect(runtime.status().storage.diskFull).toBe(true);
      // An urgent alert too large for the pages left: it cannot be stored now.
      runtime.raise({ kind: 'ecg-no-beats', severity: 3, message: `No QRS complex detected ${'.'.repeat(20_000)}`, t: Date.now() });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      // Waveform is not held in memory while the disk is full: what waits is the clinical records (10 HR readings a second).
      expect(runtime['ledger'].buffered).toBeLessThan(60);
      db.pragma('max_page_count = 1073741823'); // space freed
      await waitFor(() => runtime.status().storage.diskFull === false, 'storing again (checked every 10 s)', 20_000);
      const chunks = runtime.status().produced.chunk;
      await waitFor(() => runtime.status().produced.chunk > chunks, 'waveform stored again');
    } finally {
      await runtime.stop();
    }
    // Every heart-rate reading of the full period was stored: no two 100 ms readings more than 0.5 s apart.
    const path = ledgerPath(join(dir, 'device'));
    const t = readLedgerBodies(path, 'reading', { tag: 'hr-strap' }).map((row) => decodeBody('reading', row.body).tDevice);
    expect(t.length).toBeGreaterThan(100);
    const widest = Math.max(...t.slice(1).map((v, i) => v - (t[i] as number)));
    expect(widest).toBeLessThan(500);
    expect(readLedgerBodies(path, 'alert').map((row) => row.tag)).toContain('storage-full');
    const stored = readLedgerBodies(path, 'alert').filter((row) => row.tag === 'ecg-no-beats');
    expect(stored).toHaveLength(1);
    expect(told.raised.find(([kind]) => kind === 'ecg-no-beats')).toEqual(['ecg-no-beats', undefined]);
    expect(told.stored).toContainEqual(['ecg-no-beats', stored[0]?.seq]);
  }, 60_000);
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
