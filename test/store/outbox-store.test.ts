import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { Clock, ClockTimer } from '../../device-sdk/clock.js';
import { StoreError } from '../../device-sdk/errors.js';
import { decodeBody, encodeBody } from '../../device-sdk/proto/index.js';
import { RECORD_KINDS, type RecordKind } from '../../device-sdk/records.js';
import { Ledger } from '../../device-sdk/store/ledger.js';
import { MemoryOutboxStore } from '../../device-sdk/store/memory-outbox-store.js';
import { type Migration, runMigrations } from '../../device-sdk/store/migrations.js';
import type { OutboxStore } from '../../device-sdk/store/outbox-store.js';
import { applyDurablePragmas, DEVICE_MIGRATIONS, readLedgerSummary, SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { SEQ_FLOOR_LIMIT, SeqReservation, seqReservationPath } from '../../device-sdk/store/seq-reservation.js';
import { createDeviceKey } from '../../device-sdk/security/device-key.js';
import { CIPHER_SUITES } from '../../device-sdk/security/envelope.js';
import { describeOutboxStoreContract } from './outbox-store.contract.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('store');

describeOutboxStoreContract('MemoryOutboxStore', (options) => {
  const store = new MemoryOutboxStore(options);
  return { store, cleanup: () => store.close() };
}, false);

describeOutboxStoreContract('SqliteOutboxStore', (options) => {
  const dir = mkdtempSync(join(tmpdir(), 'medge-contract-'));
  const path = join(dir, 'ledger.sqlite');
  let current = new SqliteOutboxStore(path, options);
  return {
    store: current,
    reopen: () => {
      current.close();
      current = new SqliteOutboxStore(path, options);
      return current;
    },
    cleanup: () => {
      current.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, true);

for (const suite of CIPHER_SUITES) {
  describeOutboxStoreContract(`SqliteOutboxStore encrypted at rest (${suite})`, (options) => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-contract-enc-'));
    const path = join(dir, 'ledger.sqlite');
    const encryption = { suite, deviceKey: createDeviceKey(join(dir, 'device.key')) };
    let current = new SqliteOutboxStore(path, { ...options, encryption });
    return {
      store: current,
      reopen: () => {
        current.close();
        current = new SqliteOutboxStore(path, { ...options, encryption });
        return current;
      },
      cleanup: () => {
        current.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }, true);
}

const LATEST = DEVICE_MIGRATIONS.at(-1)?.version ?? 0;
const T0 = 1_700_000_000_000;
const reading = (i: number) => ({
  kind: 'reading' as const,
  tMs: T0 + i,
  body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 90 + i, unit: 'mg/dL', tDevice: T0 + i }),
});

/** Open file descriptors of this process on `path` and its -wal/-shm companions (Linux only). */
function openDescriptors(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path);
    } catch {
      return false;
    }
  }).length;
}
const hasProcFs = existsSync('/proc/self/fd');

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw, it returned');
}

describe('SqliteOutboxStore on a file', () => {
  it('raiseSeqFloor makes the seq reservation cover the floor: a fresh ledger in the data directory starts above it too', () => {
    const dir = tempDir();
    const path = join(dir, 'ledger.sqlite');
    const floor = 1_765_000_000_000_000;
    let store = new SqliteOutboxStore(path, { deviceId: 'dev-1', seqReservation: new SeqReservation(seqReservationPath(path)) });
    store.append([reading(1)]);
    expect(store.raiseSeqFloor('reading', floor)).toBe(true);
    store.close();
    expect(new SeqReservation(seqReservationPath(path)).bound('reading')).toBeGreaterThanOrEqual(floor);
    // The ledger file is lost (moved aside as damaged, deleted): the fresh one starts above the raised floor.
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    store = new SqliteOutboxStore(path, { deviceId: 'dev-1', seqReservation: new SeqReservation(seqReservationPath(path)) });
    expect((store.append([reading(2)])[0] as number) > floor).toBe(true);
    store.close();
  });

  it('raiseSeqFloor refuses a floor that is no integer or past the exact range of seqs, and changes nothing', () => {
    const store = new SqliteOutboxStore(join(tempDir(), 'ledger.sqlite'), { deviceId: 'dev-1' });
    for (const bad of [SEQ_FLOOR_LIMIT + 1, 2 ** 53, 1.5, -1, Number.NaN]) {
      const error = thrown(() => store.raiseSeqFloor('reading', bad));
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).operation).toBe('raiseSeqFloor');
    }
    expect(store.append([reading(1)])).toEqual([1]);
    store.close();
  });

  it('a ledger that needs migrating while another connection holds its write lock is refused after the busy timeout, not waited for minutes', () => {
    // QA re-check: the edge store waits up to MIGRATION_WAIT_MS for another process's migration (workers opening it at
    // once); the device ledger at boot keeps its 5 s and says why, rather than hanging silently for 5 min.
    const path = join(tempDir(), 'ledger.sqlite');
    const v2 = new Database(path);
    runMigrations(v2, DEVICE_MIGRATIONS.slice(0, 2));
    v2.pragma('journal_mode = WAL');
    v2.exec('BEGIN IMMEDIATE');
    try {
      const error = thrown(() => new SqliteOutboxStore(path, { deviceId: 'dev-1' }));
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toMatch(/locked/);
    } finally {
      v2.exec('ROLLBACK');
      v2.close();
    }
  }, 60_000);

  it('a ledger of schema version 2 gets its produced counts from its seqs (which counted its records then)', () => {
    const path = join(tempDir(), 'ledger.sqlite');
    const v2 = new Database(path);
    runMigrations(v2, DEVICE_MIGRATIONS.slice(0, 2));
    v2.prepare("INSERT INTO device (key, value) VALUES ('device_id', 'dev-1')").run();
    v2.prepare('INSERT INTO boots (boot_id, started_ms) VALUES (?, ?)').run('b', T0);
    for (let i = 1; i <= 3; i++) v2.prepare('INSERT INTO rec_reading (boot_no, t_ms, tag, bytes, body) VALUES (1, ?, ?, 1, ?)').run(T0, 'x', Buffer.from([i]));
    v2.close();
    // Read-only, before any build of schema version 3 opened it: the seqs stand for the count.
    expect(readLedgerSummary(path).kinds.reading).toMatchObject({ lastSeq: 3, produced: 3 });
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1' });
    expect(store.stats().reading).toMatchObject({ lastSeq: 3, produced: 3 });
    store.append([reading(4)]);
    expect(store.stats().reading).toMatchObject({ lastSeq: 4, produced: 4 });
    store.close();
    expect(readLedgerSummary(path).kinds.reading).toMatchObject({ lastSeq: 4, produced: 4 });
  });

  it('puts the file in WAL mode with synchronous=FULL on its connection', () => {
    const path = join(tempDir(), 'nested', 'dir', 'ledger.sqlite');
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1' });
    store.append([reading(1)]);
    const other = new Database(path, { readonly: true });
    try {
      expect(other.pragma('journal_mode', { simple: true })).toBe('wal');
      // A second connection reads what the store committed while the store is open.
      expect(other.prepare('SELECT COUNT(*) FROM rec_reading').pluck().get()).toBe(1);
    } finally {
      other.close();
    }
    // `synchronous` is per connection, so it can only be read on the store's own connection.
    const own = (store as unknown as { db: Database.Database }).db;
    expect(own.pragma('synchronous', { simple: true })).toBe(2);
    store.close();
    const fresh = new Database(join(tempDir(), 'x.sqlite'));
    applyDurablePragmas(fresh);
    expect(fresh.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(fresh.pragma('synchronous', { simple: true })).toBe(2);
    fresh.close();
  });

  it('refuses a ledger that belongs to another device, and leaves it intact for its owner', () => {
    const path = join(tempDir(), 'ledger.sqlite');
    const owner = new SqliteOutboxStore(path, { deviceId: 'dev-A' });
    owner.append([reading(1), reading(2)]);
    owner.close();
    const error = thrown(() => new SqliteOutboxStore(path, { deviceId: 'dev-B' }));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).operation).toBe('open');
    const again = new SqliteOutboxStore(path, { deviceId: 'dev-A' });
    expect(again.stats().reading).toMatchObject({ lastSeq: 2, rows: 2 });
    again.close();
  });

  it('migrates a fresh file to the latest schema version', () => {
    const path = join(tempDir(), 'ledger.sqlite');
    new SqliteOutboxStore(path, { deviceId: 'dev-1' }).close();
    const db = new Database(path, { readonly: true });
    try {
      expect(LATEST).toBeGreaterThan(0);
      expect(db.pragma('user_version', { simple: true })).toBe(LATEST);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
      expect(tables).toEqual(expect.arrayContaining(['device', 'boots', 'sync_state', 'audit', ...RECORD_KINDS.map((k) => `rec_${k}`)]));
    } finally {
      db.close();
    }
    // Reopening an up-to-date file runs no migration again (a second CREATE TABLE would throw).
    new SqliteOutboxStore(path, { deviceId: 'dev-1' }).close();
  });

  it('refuses a file written by a newer schema version with StoreError', () => {
    const path = join(tempDir(), 'ledger.sqlite');
    const db = new Database(path);
    db.pragma(`user_version = ${LATEST + 1}`);
    db.close();
    const error = thrown(() => new SqliteOutboxStore(path, { deviceId: 'dev-1' }));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).operation).toBe('migrate');
    const check = new Database(path, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(LATEST + 1);
    check.close();
  });

  it.runIf(hasProcFs)('releases the file when it refuses a newer schema version', () => {
    const path = join(tempDir(), 'ledger.sqlite');
    const db = new Database(path);
    db.pragma(`user_version = ${LATEST + 1}`);
    db.close();
    expect(openDescriptors(path)).toBe(0);
    expect(() => new SqliteOutboxStore(path, { deviceId: 'dev-1' })).toThrow(StoreError);
    expect(openDescriptors(path)).toBe(0);
  });

  it('refuses a file that is not a SQLite database with StoreError', () => {
    const path = join(tempDir(), 'ledger.sqlite');
    writeFileSync(path, Buffer.alloc(8192, 0x41));
    const error = thrown(() => new SqliteOutboxStore(path, { deviceId: 'dev-1' }));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).operation).toBe('open');
    if (hasProcFs) expect(openDescriptors(path)).toBe(0);
  });

  it('keeps acknowledged watermarks, lastSeq and pending counts across a reopen', () => {
    const path = join(tempDir(), 'ledger.sqlite');
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1', retentionMs: { chunk: 0, reading: 0 } });
    const counts: Record<RecordKind, number> = { alert: 2, finding: 3, reading: 7, quarantine: 1, chunk: 5 };
    const acks: Record<RecordKind, number> = { alert: 1, finding: 0, reading: 6, quarantine: 1, chunk: 5 };
    for (const kind of RECORD_KINDS) {
      store.append(Array.from({ length: counts[kind] }, (_, i) => ({ kind, tMs: T0 + i, body: Uint8Array.of(i) })));
      store.acknowledge(kind, acks[kind]);
    }
    store.compact(T0 + 3600_000);
    const before = store.stats();
    expect(before.chunk).toMatchObject({ rows: 0, lastSeq: 5 });
    store.close();

    const reopened = new SqliteOutboxStore(path, { deviceId: 'dev-1' });
    for (const kind of RECORD_KINDS) {
      expect(reopened.ackedUpTo(kind)).toBe(acks[kind]);
      expect(reopened.stats()[kind]).toEqual(before[kind]);
    }
    expect(reopened.acknowledge('reading', 5)).toBe(false);
    expect(reopened.acknowledge('reading', 7)).toBe(true);
    expect(reopened.append([{ kind: 'chunk', tMs: T0, body: Uint8Array.of(1) }])).toEqual([6]);
    reopened.close();
  });
});

describe('runMigrations', () => {
  const table =
    (name: string): Migration['up'] =>
    (db) =>
      db.exec(`CREATE TABLE ${name} (x INTEGER)`);

  it('applies each newer migration once, in its own transaction with the version bump', () => {
    const db = new Database(join(tempDir(), 'm.sqlite'));
    try {
      expect(runMigrations(db, [{ version: 1, name: 'a', up: table('a') }])).toBe(1);
      expect(
        runMigrations(db, [
          { version: 1, name: 'a', up: table('a') },
          { version: 2, name: 'b', up: table('b') },
        ]),
      ).toBe(2);
      expect(db.pragma('user_version', { simple: true })).toBe(2);
      const failing: Migration[] = [
        { version: 1, name: 'a', up: table('a') },
        { version: 2, name: 'b', up: table('b') },
        { version: 3, name: 'c', up: table('c') },
        {
          version: 4,
          name: 'd fails half way',
          up: (d) => {
            d.exec('CREATE TABLE d (x INTEGER)');
            throw new Error('power cut');
          },
        },
      ];
      expect(() => runMigrations(db, failing)).toThrow('power cut');
      // Version 3 is whole and kept; version 4 left nothing behind.
      expect(db.pragma('user_version', { simple: true })).toBe(3);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(['a', 'b', 'c']);
    } finally {
      db.close();
    }
  });

  it('refuses a database newer than the migrations it is given', () => {
    const db = new Database(':memory:');
    db.pragma('user_version = 5');
    const error = thrown(() => runMigrations(db, [{ version: 1, name: 'a', up: table('a') }]));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).operation).toBe('migrate');
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").pluck().get()).toBe(0);
    db.close();
  });
});

/** A clock whose timers fire only when the test says so. */
function manualClock(): Clock & { fire(): void; pending(): number } {
  let now = T0;
  const timers = new Map<number, () => void>();
  let next = 0;
  return {
    now: () => now,
    monotonic: () => now - T0,
    setTimeout(fn: () => void, _ms: number): ClockTimer {
      next += 1;
      timers.set(next, fn);
      return { id: next };
    },
    clearTimeout(timer: ClockTimer): void {
      timers.delete(timer.id as number);
    },
    fire() {
      now += 1000;
      const due = [...timers.values()];
      timers.clear();
      for (const fn of due) fn();
    },
    pending: () => timers.size,
  };
}

describe('Ledger on a SqliteOutboxStore', () => {
  it('buffers typed records until the timer, maxBuffered or an alert flushes them', () => {
    const store = new SqliteOutboxStore(join(tempDir(), 'ledger.sqlite'), { deviceId: 'dev-1' });
    const clock = manualClock();
    const ledger = new Ledger(store, { clock, maxBuffered: 3, flushIntervalMs: 200 });
    ledger.add('reading', { sensor: 'glucose', type: 'glucose', value: 101, unit: 'mg/dL', tDevice: T0 });
    expect(store.stats().reading.rows).toBe(0);
    expect(clock.pending()).toBe(1);
    clock.fire();
    expect(store.stats().reading.rows).toBe(1);
    const [stored] = store.readAfter('reading', 0, 1);
    expect(stored?.tag).toBe('glucose');
    expect(decodeBody('reading', stored?.body ?? new Uint8Array(0))).toEqual({ sensor: 'glucose', type: 'glucose', value: 101, unit: 'mg/dL', tDevice: T0 });

    for (let i = 0; i < 3; i++)
      ledger.add('chunk', { sensor: 'ecg', channel: 0, firstSample: i * 4, t0: T0, rateHz: 250, unit: 'mV', gain: 200, samples: Int16Array.of(i, -i, 3, 4) });
    expect(store.stats().chunk.rows).toBe(3);
    expect(ledger.buffered).toBe(0);
    expect(clock.pending()).toBe(0);

    ledger.add('finding', { kind: 'af', label: 'possible AF', probability: 0.7, t: T0, modelId: 'm', modelSha256: 'ab', inputQuality: 0.9 });
    const seq = ledger.addAlert({ kind: 'hypo', severity: 3, message: 'glucose below 54 mg/dL', t: T0 });
    expect(seq).toBe(1);
    // The alert is durable on return, with everything buffered before it.
    expect(store.stats().finding.rows).toBe(1);
    expect(store.readAfter('alert', 0, 5).map((r) => [r.seq, r.tag])).toEqual([[1, 'hypo']]);
    expect(clock.pending()).toBe(0);
    store.close();
  });

  it('keeps buffered records when a flush fails, and commits them on the next flush', () => {
    const inner = new MemoryOutboxStore({ deviceId: 'dev-1' });
    let failures = 1;
    const flaky = new Proxy(inner, {
      get(target, prop) {
        if (prop === 'append') {
          return (entries: Parameters<OutboxStore['append']>[0]) => {
            if (failures > 0) {
              failures -= 1;
              throw new StoreError('append', 'database or disk is full');
            }
            return target.append(entries);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const ledger = new Ledger(flaky, { clock: manualClock(), maxBuffered: 100 });
    ledger.add('reading', { sensor: 'glucose', type: 'glucose', value: 50, unit: 'mg/dL', tDevice: T0 });
    ledger.add('reading', { sensor: 'glucose', type: 'glucose', value: 51, unit: 'mg/dL', tDevice: T0 + 1 });
    expect(() => ledger.flush()).toThrow(StoreError);
    expect(ledger.buffered).toBe(2);
    expect(ledger.flush()).toEqual([1, 2]);
    expect(inner.stats().reading.rows).toBe(2);
  });

  it('tells an alert refused by a full disk its seq when a later flush stores it (what an acknowledgement names)', () => {
    // Stop 17 left: an alert raised while the disk was full had no seq, so the clinic screen could never
    // acknowledge it and the Firmata alarm stayed latched for ledMs (24 h).
    const store = new SqliteOutboxStore(join(tempDir(), 'ledger.sqlite'), { deviceId: 'dev-1' });
    const ledger = new Ledger(store, { clock: manualClock(), maxBuffered: 100 });
    ledger.add('reading', { sensor: 'glucose', type: 'glucose', value: 60, unit: 'mg/dL', tDevice: T0 });
    ledger.flush();
    const db = store['db'] as Database.Database;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const told: number[] = [];
    const big = 'x'.repeat(20_000); // larger than the free pages left: the insert needs the file to grow
    expect(() => ledger.addAlert({ kind: 'storage-full', severity: 3, message: big, t: T0 }, (seq) => told.push(seq))).toThrow(StoreError);
    expect(() => ledger.addAlertWithFinding({ kind: 'hypo', severity: 3, message: big, t: T0 }, { kind: 'hypo', label: 'low', probability: 1, t: T0, modelId: 'm', modelSha256: 'ab', inputQuality: 1 }, (seq) => told.push(seq))).toThrow(StoreError);
    expect(told).toEqual([]);
    expect(ledger.buffered).toBe(3);
    db.pragma('max_page_count = 1073741823');
    ledger.flush();
    const alerts = store.readAfter('alert', 0, 10).map((r) => [r.seq, r.tag]);
    expect(alerts).toEqual([[1, 'storage-full'], [2, 'hypo']]);
    expect(told).toEqual([1, 2]);
    // Told once: a later flush does not repeat it.
    ledger.add('reading', { sensor: 'glucose', type: 'glucose', value: 61, unit: 'mg/dL', tDevice: T0 });
    ledger.flush();
    expect(told).toEqual([1, 2]);
    store.close();
  });
});
