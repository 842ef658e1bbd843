// What the runtime reads back from its ledger at start for the CGM drivers (`storedCgmRecords`), on a real encrypted
// SQLite ledger: the CGM readings of the 21 days before the newest of each CGM sensor, by session, opening no older row nor another sensor's, and a damaged
// row that does not stop the start.
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { Reading } from '../../device-sdk/records.js';
import { LEDGER_TABLES } from '../../device-sdk/store/ledger-keys.js';
import type { OutboxStore, StoredRecord } from '../../device-sdk/store/outbox-store.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { loadOrCreateDeviceKey } from '../../device-sdk/security/device-key.js';
import { silentLogger } from '../../device-sdk/log.js';
import { storedCgmRecords } from '../../firmware/runtime.js';
import { CGM_SEEN_SESSIONS, cgmHeldValue } from '../../device-sdk/sensors/cgm-seen-records.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('stored-cgm-records');
const T0 = Date.UTC(2026, 11, 1);
const MIN = 60_000;
const START = '2026-11-30T08:00:00+01:00';

function cgmReading(offset: number, context: Record<string, string> = {}): Reading {
  return { sensor: 'cgm', type: 'glucose', value: 100 + offset, unit: 'mg/dL', tDevice: T0 + offset * MIN, meterRecord: offset, context: { source: 'cgm', sessionStart: START, meter: 'C0:FF:EE:00:00:02', meterSerial: 'CGM-A-0001', ...context } };
}

function openStore(dir: string): SqliteOutboxStore {
  return new SqliteOutboxStore(join(dir, 'ledger.db'), { deviceId: 'dev-cgm', encryption: { suite: 'aes-256-gcm', deviceKey: loadOrCreateDeviceKey(join(dir, 'device.key')).deviceKey } });
}

/** Appends `readings` in order, each tagged with its sensor; returns their seqs. */
function append(store: OutboxStore, readings: readonly Reading[]): number[] {
  return store.append(readings.map((r) => ({ kind: 'reading' as const, tMs: r.tDevice, tag: r.sensor, body: encodeBody('reading', r) })));
}

describe('storedCgmRecords on an encrypted SQLite ledger', () => {
  it('returns the CGM readings of the 21 days before the newest, by session, opening no older row nor another sensor’s', () => {
    const dir = tempDir();
    const store = openStore(dir);
    try {
      // A session 30 days before the newest: outside the window.
      const readings: Reading[] = [{ ...cgmReading(0, { sessionStart: '2026-10-31T08:00:00+01:00' }), tDevice: T0 - 30 * 1440 * MIN }];
      for (let offset = 0; offset < 300; offset += 5) {
        readings.push(cgmReading(offset));
        // A heart rate every minute between them.
        for (let m = 0; m < 5; m++) readings.push({ sensor: 'hr', type: 'heart-rate', value: 70, unit: 'bpm', tDevice: T0 + (offset + m) * MIN });
      }
      // A new session of a CGM without a serial; another source under the same sensor name; an offset no uint16.
      readings.push({ ...cgmReading(0), context: { source: 'cgm', sessionStart: '2026-12-01T09:00:00+01:00' } });
      readings.push({ sensor: 'cgm', type: 'glucose', value: 99, unit: 'mg/dL', tDevice: T0 + 400 * MIN, meterRecord: 7 });
      readings.push(cgmReading(70_000));
      readings.push(cgmReading(5, { sessionStart: '2026-12-01T09:00:00+01:00' }));
      append(store, readings);
      let opened = 0;
      const counted = Object.create(store) as OutboxStore;
      counted.readBefore = (...args) => {
        const rows: StoredRecord[] = store.readBefore(...args);
        opened += rows.length;
        return rows;
      };
      counted.readMatching = (...args) => {
        const rows: StoredRecord[] = store.readMatching(...args);
        opened += rows.length;
        return rows;
      };
      const records = storedCgmRecords(counted, ['cgm', 'cgm-2'], silentLogger);
      // The newest `cgm` row (the window's end), then the 64 `cgm` rows of the window (the newest again among them).
      expect(opened).toBe(1 + 64);
      const offsets = Array.from({ length: 60 }, (_, i) => 5 * i);
      expect(records.get('cgm')).toEqual([
        { sessionStart: START, serial: 'CGM-A-0001', address: 'C0:FF:EE:00:00:02', offsets: Uint16Array.from(offsets), values: Uint16Array.from(offsets.map((o) => cgmHeldValue(100 + o))) },
        { sessionStart: '2026-12-01T09:00:00+01:00', offsets: Uint16Array.of(0), values: Uint16Array.of(cgmHeldValue(100)) },
        { sessionStart: '2026-12-01T09:00:00+01:00', serial: 'CGM-A-0001', address: 'C0:FF:EE:00:00:02', offsets: Uint16Array.of(5), values: Uint16Array.of(cgmHeldValue(105)) },
      ]);
      expect(records.has('cgm-2')).toBe(false);
    } finally {
      store.close();
    }
  });

  it(`keeps the ${CGM_SEEN_SESSIONS} sessions stored last`, () => {
    const dir = tempDir();
    const store = openStore(dir);
    try {
      const starts = Array.from({ length: CGM_SEEN_SESSIONS + 2 }, (_, i) => `2026-11-${String(10 + i).padStart(2, '0')}T08:00:00+01:00`);
      append(store, starts.map((sessionStart, i) => ({ ...cgmReading(5, { sessionStart }), tDevice: T0 + i * MIN })));
      // The first session again last: stored last, it is kept.
      append(store, [{ ...cgmReading(10, { sessionStart: starts[0] as string }), tDevice: T0 + 60 * MIN }]);
      const sessions = storedCgmRecords(store, ['cgm'], silentLogger).get('cgm') ?? [];
      expect(sessions.map((s) => [s.sessionStart, [...s.offsets]])).toEqual([...starts.slice(3).map((start) => [start, [5]]), [starts[0], [5, 10]]]);
    } finally {
      store.close();
    }
  });

  it('a damaged row is skipped and logged (its seq, no serial); the rows around it are kept (QA F4: none kept before)', () => {
    const dir = tempDir();
    const store = openStore(dir);
    const [, first] = append(store, [cgmReading(0), cgmReading(5), cgmReading(10)]);
    store.close();
    // One sealed body altered on the card: it no longer opens.
    const db = new Database(join(dir, 'ledger.db'));
    db.prepare(`UPDATE ${LEDGER_TABLES.reading} SET body = zeroblob(length(body)) WHERE seq = ?`).run(first);
    db.close();
    const lines: string[] = [];
    const log = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const reopened = openStore(dir);
    try {
      expect(storedCgmRecords(reopened, ['cgm'], log).get('cgm')?.map((g) => [...g.offsets])).toEqual([[0, 10]]);
    } finally {
      reopened.close();
    }
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 40, sensor: 'cgm', seq: first, msg: expect.stringMatching(/^CGM reading stored before this start not readable: skipped/) });
    expect(lines[0]).not.toContain('CGM-A-0001');
  });
});
