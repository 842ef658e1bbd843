import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from '../device-sdk/errors.js';
import Database from 'better-sqlite3';
import type { WireRecord } from '../device-sdk/proto/index.js';
import type { RecordKind } from '../device-sdk/records.js';
import { type Migration, MIGRATION_WAIT_MS } from '../device-sdk/store/migrations.js';
import { openDatabase, withReadOnlyDatabase } from '../device-sdk/store/sqlite-outbox-store.js';
import { makeDirs } from '../device-sdk/make-dirs.js';
import {
  admitBoot,
  DuplicateReleaseError,
  hearReplay,
  type BootSwitch,
  type BootWatchState,
  type DeviceIdProof,
  DUPLICATE_DEVICE_ID,
  type DuplicateDeviceIdOptions,
  observeBoot,
  otherBootLive,
  releaseProof,
} from './duplicate-device-id.js';
import { sha256Hex } from '../device-sdk/security/signing.js';

export const EDGE_MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'records, delivery progress, rejections',
    up: (db: Database.Database) => {
      db.exec(`
        CREATE TABLE records (
          id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL,
          site TEXT NOT NULL, boot_id TEXT NOT NULL, t_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, body BLOB NOT NULL,
          UNIQUE (device_id, kind, seq));
        CREATE TABLE devices (device_id TEXT PRIMARY KEY, site TEXT NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, last_boot_id TEXT NOT NULL);
        CREATE TABLE progress (
          device_id TEXT NOT NULL, kind TEXT NOT NULL, contiguous INTEGER NOT NULL, stored INTEGER NOT NULL, redelivered INTEGER NOT NULL,
          PRIMARY KEY (device_id, kind));
        CREATE TABLE pending_ranges (device_id TEXT NOT NULL, kind TEXT NOT NULL, after_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
          PRIMARY KEY (device_id, kind, after_seq));
        CREATE TABLE rejected (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
      `);
    },
  },
  {
    version: 2,
    name: 'conflicts: records that reuse a stored seq with other content',
    // The columns of `records`; unique by content too, so that a conflict resent after a lost ack is kept once.
    up: (db: Database.Database) =>
      db.exec(`CREATE TABLE conflicts (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL, site TEXT NOT NULL,
        boot_id TEXT NOT NULL, t_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, body BLOB NOT NULL, body_sha256 TEXT NOT NULL,
        UNIQUE (device_id, kind, seq, boot_id, t_ms, body_sha256))`),
  },
  {
    version: 3,
    name: "conflict resolutions: an operator's settlement of a kept conflict (who, when, why, which choice)",
    // One settlement per conflict, final; neither a conflict nor its settlement is ever deleted or changed.
    up: (db: Database.Database) =>
      db.exec(`CREATE TABLE conflict_resolutions (conflict_id INTEGER PRIMARY KEY REFERENCES conflicts (id),
          choice TEXT NOT NULL CHECK (choice IN ('keep-stored', 'import')), operator TEXT NOT NULL, reason TEXT NOT NULL, resolved_ms INTEGER NOT NULL);
        CREATE TRIGGER conflicts_kept BEFORE DELETE ON conflicts BEGIN SELECT RAISE(ABORT, 'conflicts are clinical records: never deleted'); END;
        CREATE TRIGGER conflicts_unchanged BEFORE UPDATE ON conflicts BEGIN SELECT RAISE(ABORT, 'conflicts are clinical records: never changed'); END;
        CREATE TRIGGER conflict_resolutions_final_update BEFORE UPDATE ON conflict_resolutions BEGIN SELECT RAISE(ABORT, 'a conflict resolution is final'); END;
        CREATE TRIGGER conflict_resolutions_final_delete BEFORE DELETE ON conflict_resolutions BEGIN SELECT RAISE(ABORT, 'a conflict resolution is final'); END;`),
  },
  {
    version: 4,
    name: 'duplicate device ids: batches of one deviceId alternating between two live boots',
    up: (db: Database.Database) =>
      db.exec(`CREATE TABLE duplicate_device_ids (device_id TEXT PRIMARY KEY, count INTEGER NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
        boot_ids TEXT NOT NULL /* JSON array: the last two */)`),
  },
  {
    version: 5,
    name: 'boot watch in the store (every ingest worker sees every batch); refusal of the intruding boot of a duplicate device id',
    up: (db: Database.Database) =>
      db.exec(`CREATE TABLE boot_watch (device_id TEXT PRIMARY KEY, state TEXT NOT NULL /* JSON: BootWatchState */);
        ALTER TABLE duplicate_device_ids ADD COLUMN incumbent TEXT;
        ALTER TABLE duplicate_device_ids ADD COLUMN refused_boot TEXT;
        ALTER TABLE duplicate_device_ids ADD COLUMN proven_ms INTEGER;
        ALTER TABLE duplicate_device_ids ADD COLUMN released_ms INTEGER;
        ALTER TABLE duplicate_device_ids ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE duplicate_device_ids ADD COLUMN involved TEXT NOT NULL DEFAULT '[]' /* JSON array: every boot id of a switch or a side, at most 32 */;`),
  },
  {
    version: 6,
    name: "duplicate device ids: an operator's release of a proven pair (who, when, why, which boot kept), never changed",
    up: (db: Database.Database) =>
      db.exec(`CREATE TABLE duplicate_releases (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, released_ms INTEGER NOT NULL, operator TEXT NOT NULL,
          reason TEXT NOT NULL, incumbent TEXT NOT NULL, refused_boot TEXT NOT NULL, kept_boot TEXT /* NULL: both stored again */);
        CREATE TRIGGER duplicate_releases_final_update BEFORE UPDATE ON duplicate_releases BEGIN SELECT RAISE(ABORT, 'a release is final'); END;
        CREATE TRIGGER duplicate_releases_final_delete BEFORE DELETE ON duplicate_releases BEGIN SELECT RAISE(ABORT, 'a release is final'); END;`),
  },
  {
    version: 7,
    name: "records per device, boot and kind, kept by each commit (edge stats' per-boot listing scanned the device's records once per boot: 10 s at 1M rows and 32 boots)",
    // Backfilled from `records` once (an existing store); from then on each commit adds what it inserted.
    up: (db: Database.Database) =>
      db.exec(`CREATE TABLE boot_records (device_id TEXT NOT NULL, boot_id TEXT NOT NULL, kind TEXT NOT NULL, stored INTEGER NOT NULL, min_seq INTEGER NOT NULL,
          max_seq INTEGER NOT NULL, PRIMARY KEY (device_id, boot_id, kind)) WITHOUT ROWID;
        INSERT INTO boot_records (device_id, boot_id, kind, stored, min_seq, max_seq)
          SELECT device_id, boot_id, kind, COUNT(*), MIN(seq), MAX(seq) FROM records GROUP BY device_id, boot_id, kind;
        CREATE INDEX conflicts_device_boot ON conflicts (device_id, boot_id);`),
  },
]);

/** An operator's release of a proven pair of boots under one device id (`medge edge duplicates release`). */
export interface DuplicateRelease {
  operator: string;
  reason: string;
  /** One of the two proven boots: it keeps syncing and the other is refused. Absent: both boots' batches are stored again. */
  keep?: string;
}

/** Bounds of a release's operator and reason (characters). */
export const DUPLICATE_RELEASE_LIMITS = Object.freeze({ operatorMaxChars: 200, reasonMaxChars: 2000 });

export interface CommitInput {
  site: string;
  deviceId: string;
  kind: RecordKind;
  bootId: string;
  afterSeq: number;
  lastSeq: number;
  ackedUpTo: number;
  /** Lowest seq of the kind the device still holds; 0 or undefined: a device that does not say. */
  heldFrom?: number;
  records: readonly WireRecord[];
}

export interface CommitResult {
  inserted: number;
  /** Records already stored, identical (at-least-once redelivery); ignored. */
  redelivered: number;
  /**
   * Seqs of the batch's records that were kept in `conflicts` by this commit: their (device, kind,
   * seq) is stored in `records` with another boot id, time or body (a device reusing seqs: a new or
   * restored ledger under an existing deviceId, or two devices with one id). Never dropped.
   */
  conflicts: number[];
  /** Every record of the kind up to this seq is committed here: the value to acknowledge. */
  upToSeq: number;
  /**
   * Every record of the batch was already stored (a redelivery after a lost ack, or a captured
   * publish played again): nothing was written but the `replay` rejection count.
   */
  replay: boolean;
  /**
   * The edge holds every record only up to `upToSeq`, below the device's `ackedUpTo` (its store lost
   * records it had acknowledged): the ack tells the device to send the rest again. Only for devices
   * that send `heldFrom`.
   */
  rewind: boolean;
  /**
   * Seqs above what the edge held contiguously that it now takes as delivered on the device's word
   * (its `ackedUpTo`, below `heldFrom`): the device no longer holds them, so if this edge never
   * stored them they are lost here. 0 normally.
   */
  assumed: number;
  /**
   * The batch reused seqs held here with other content (a new or restored ledger under this deviceId, or
   * two boards with one id), or stored new records at or below this edge's watermark of the device and kind
   * (a new ledger whose seqs lie below another ledger's, no clash): the highest seq of the kind stored for
   * the device, for the ack's `seqFloor` (the device's later seqs go above it). 0 otherwise.
   */
  seqFloor: number;
}

export interface EdgeStats {
  devices: Record<string, Partial<Record<RecordKind, number>>>;
  /** Counts by reason; `replay` and `seq-conflict` (records kept in `conflicts`) count batches and records that were not rejected. */
  rejected: Record<string, number>;
  /** Records kept in `conflicts` per device and kind: a device reused seqs. An operator must look at them. */
  conflicts: Record<string, Partial<Record<RecordKind, number>>>;
  /**
   * Device ids whose batches alternated between two boots running at once (two boards with one id),
   * counted per switch back (`duplicate-device-id`), with the last two boot ids and when (edge ms).
   */
  duplicateDeviceIds: Record<string, DuplicateDeviceIdStats>;
  /** Of `conflicts`, those no operator has settled yet (`medge edge conflicts resolve`); resolved = conflicts - open. */
  openConflicts: Record<string, Partial<Record<RecordKind, number>>>;
}

/**
 * Records of one boot under a device id, per kind: how many are in `records` and their seq range, and how many were
 * kept in `conflicts` (their seq was stored with other content: `medge edge conflicts`).
 */
export type StoredByKind = Partial<Record<RecordKind, { stored: number; minSeq: number | null; maxSeq: number | null; conflicts: number }>>;

/** A device id whose batches alternated between two boots running at once (two boards with one id). */
export interface DuplicateDeviceIdStats {
  /** Switches back (`duplicate-device-id`), with the last two boot ids and the first and last (edge ms). */
  count: number;
  bootIds: string[];
  firstMs: number;
  lastMs: number;
  /** Once proven two live boots (`DuplicateDeviceIdOptions`): the boot that keeps syncing, the refused one, since when. */
  incumbent?: string;
  refusedBoot?: string;
  provenMs?: number;
  /** When the refusal ended (the incumbent or the refused boot silent for `holdMs`, or an operator's release); absent while it goes on. */
  releasedMs?: number;
  /** Batches refused as `device-id-in-use` (their records stay on that board), all boots together. */
  refusedBatches: number;
  /** Of `refusedBatches`, per refused boot (since this build: a pair turned round by `--keep` keeps each boot's own count). */
  refusedByBoot: Record<string, number>;
  /**
   * When each boot of the proof was last heard (edge ms; refused batches count): an incumbent silent for days was
   * likely replaced, and an operator may release it.
   */
  lastHeardMs?: Record<string, number>;
  /**
   * An operator's hold on the proof: 'kept' (`--keep`: it stands until released again), 'released' (without `--keep`:
   * the refused boot is stored once the incumbent has been silent for the edge's window, 5 min by default). Absent: the edge's own proof.
   */
  hold?: 'kept' | 'released';
  /** The last operator's release (`medge edge duplicates release`): who, when, why, the pair it ended and the boot kept (absent: none). */
  lastRelease?: { operator: string; reason: string; releasedMs: number; incumbent: string; refusedBoot: string; keptBoot?: string };
  /**
   * Records stored under the device id per boot id of every switch back and every proven side (up to 32; the
   * records' own boot id), per kind: the refused boot's are those that arrived before the proof, mixed with the other's.
   */
  storedByBoot: Record<string, StoredByKind>;
}

/** What `EdgeStore.commitFromBoot` did with a batch. */
export type WatchedCommit =
  | { refused: true; incumbent: string }
  | {
      refused: false;
      result: CommitResult;
      /** The batch switched back to another live boot of its device id. */
      switched?: BootSwitch;
      /** This batch proved two live boots: the intruder's next batches are refused. */
      proven?: DeviceIdProof;
      /** For the ack's `otherBootLive`. */
      otherBootLive: boolean;
    };

/** A row of `records` (and the same columns of `conflicts`) as SQLite returns it. */
export interface RecordRow {
  device_id: string;
  kind: RecordKind;
  seq: number;
  site: string;
  boot_id: string;
  t_ms: number;
  body: Buffer;
}

/** Counter (in `rejected`) of records kept in `conflicts`. */
export const SEQ_CONFLICT = 'seq-conflict';

/** A record kept apart because its (device, kind, seq) was already stored with other content. */
export interface ConflictRecord extends WireRecord {
  site: string;
  receivedMs: number;
}

/** Identity of a record for telling a resend from a seq reused with other content. */
function sameRecord(held: { boot_id: string; t_ms: number; body: Buffer }, r: WireRecord): boolean {
  return held.boot_id === r.bootId && held.t_ms === r.tMs && Buffer.compare(held.body, r.body) === 0;
}

export function edgeDatabasePath(dataDir: string): string {
  return join(dataDir, 'edge.sqlite');
}

/**
 * The edge node's store. Records are unique by (deviceId, kind, seq): a batch whose records are all
 * stored already changes nothing but the `replay` count (exactly-once in this store, at-least-once on the wire).
 * A record whose (deviceId, kind, seq) is stored with another boot id, time or body is not a resend:
 * a device reused the seq (new or restored ledger under an existing deviceId, two devices with one
 * id). It is kept in `conflicts` in the same transaction and counted as `seq-conflict` before anything
 * is acknowledged, so the device may compact it without it being lost.
 *
 * `contiguous` per (device, kind) is the highest seq up to which the edge holds every record the
 * device sent. A batch covers (afterSeq, lastSeq] whole, so it extends `contiguous` when it starts at
 * or below it; batches that arrive ahead of a gap are remembered in `pending_ranges` until the gap
 * is filled. The device's own acknowledged watermark (`ackedUpTo`) also counts as covered, so an edge
 * that lost its data does not wait forever for records the device has already compacted; but only
 * below the lowest seq the device still holds (`heldFrom`, when it says): above it, an edge restored
 * from an older backup acks what it really holds with `rewind`, and the device sends the rest again.
 */
export class EdgeStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly commitTx: (input: CommitInput, now: number) => CommitResult;
  private readonly watchedCommitTx: Database.Transaction<(input: CommitInput, options: DuplicateDeviceIdOptions, now: number) => WatchedCommit>;
  /** Adds to a `rejected` counter: (reason, count). */
  private readonly countRejectedStmt: Database.Statement<[string, number]>;

  constructor(dataDir: string) {
    makeDirs(dataDir);
    this.path = edgeDatabasePath(dataDir);
    this.db = openDatabase(this.path, EDGE_MIGRATIONS, 'edge store', MIGRATION_WAIT_MS);
    const insert = this.db.prepare(
      'INSERT OR IGNORE INTO records (device_id, kind, seq, site, boot_id, t_ms, received_ms, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const upsertDevice = this.db.prepare(`INSERT INTO devices (device_id, site, first_seen_ms, last_seen_ms, last_boot_id) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET site = excluded.site, last_seen_ms = excluded.last_seen_ms, last_boot_id = excluded.last_boot_id`);
    const getProgress = this.db.prepare('SELECT contiguous FROM progress WHERE device_id = ? AND kind = ?').pluck();
    const putProgress = this.db.prepare(`INSERT INTO progress (device_id, kind, contiguous, stored, redelivered) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (device_id, kind) DO UPDATE SET contiguous = excluded.contiguous, stored = stored + excluded.stored, redelivered = redelivered + excluded.redelivered`);
    const nextRange = this.db.prepare(
      'SELECT after_seq, last_seq FROM pending_ranges WHERE device_id = ? AND kind = ? AND after_seq <= ? ORDER BY after_seq LIMIT 1',
    );
    const dropRange = this.db.prepare('DELETE FROM pending_ranges WHERE device_id = ? AND kind = ? AND after_seq = ?');
    const addRange = this.db.prepare(
      'INSERT INTO pending_ranges (device_id, kind, after_seq, last_seq) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)',
    );
    const countRejected = (this.countRejectedStmt = this.db.prepare('INSERT INTO rejected (reason, count) VALUES (?, ?) ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count'));
    const highestStored = this.db.prepare('SELECT MAX(seq) FROM records WHERE device_id = ? AND kind = ?').pluck();
    const getStored = this.db.prepare('SELECT boot_id, t_ms, body FROM records WHERE device_id = ? AND kind = ? AND seq = ?');
    const keepConflict = this.db.prepare(
      'INSERT OR IGNORE INTO conflicts (device_id, kind, seq, site, boot_id, t_ms, received_ms, body, body_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const countBootRecords = this.db.prepare(`INSERT INTO boot_records (device_id, boot_id, kind, stored, min_seq, max_seq) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (device_id, boot_id, kind) DO UPDATE SET stored = stored + excluded.stored, min_seq = MIN(min_seq, excluded.min_seq), max_seq = MAX(max_seq, excluded.max_seq)`);
    const upsertDuplicate = this.db.prepare(`INSERT INTO duplicate_device_ids (device_id, count, first_ms, last_ms, boot_ids) VALUES (?, 1, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET count = count + 1, last_ms = excluded.last_ms, boot_ids = excluded.boot_ids`);
    // The commit itself, run inside a transaction (alone, or with the boot watch: no nested savepoint).
    const commitInTx = (input: CommitInput, now: number): CommitResult => {
      const { deviceId, kind } = input;
      let inserted = 0;
      let clashes = 0;
      const conflicts: number[] = [];
      const before = (getProgress.get(deviceId, kind) as number | undefined) ?? 0;
      // New records at or below the watermark: a ledger whose seqs lie below another one's under this deviceId.
      let belowWatermark = 0;
      // Per boot id of the records inserted: how many, lowest and highest seq (`boot_records`).
      const byBoot = new Map<string, { n: number; min: number; max: number }>();
      for (const r of input.records) {
        if (insert.run(deviceId, kind, r.seq, input.site, r.bootId, r.tMs, now, r.body).changes === 1) {
          inserted += 1;
          if (r.seq <= before) belowWatermark += 1;
          const counted = byBoot.get(r.bootId);
          if (counted) {
            counted.n += 1;
            counted.min = Math.min(counted.min, r.seq);
            counted.max = Math.max(counted.max, r.seq);
          } else byBoot.set(r.bootId, { n: 1, min: r.seq, max: r.seq });
          continue;
        }
        const held = getStored.get(deviceId, kind, r.seq) as { boot_id: string; t_ms: number; body: Buffer };
        if (sameRecord(held, r)) continue;
        clashes += 1;
        const sha256 = sha256Hex(r.body);
        // A conflict resent (its ack was lost) is kept once.
        if (keepConflict.run(deviceId, kind, r.seq, input.site, r.bootId, r.tMs, now, r.body, sha256).changes === 1) conflicts.push(r.seq);
      }
      for (const [boot, c] of byBoot) countBootRecords.run(deviceId, boot, kind, c.n, c.min, c.max);
      if (conflicts.length > 0) countRejected.run(SEQ_CONFLICT, conflicts.length);
      // The watermark of a (device, kind) whose seqs were reused covers records of the other ledger: a
      // device that clamps an ack to its own last seq would take it for records it has not sent yet.
      const ackable = (upToSeq: number) => (clashes > 0 ? Math.min(upToSeq, input.lastSeq) : upToSeq);
      const replay = inserted === 0 && conflicts.length === 0;
      if (replay) countRejected.run('replay', 1);
      else upsertDevice.run(deviceId, input.site, now, now, input.bootId);
      // The device's watermark is taken as covered only below what it still holds: what it holds it can send again.
      const trusted = input.heldFrom ? Math.min(input.ackedUpTo, input.heldFrom - 1) : input.ackedUpTo;
      let contiguous = Math.max(before, trusted);
      // A replay extends it too when it starts at or below it (all its records are stored): a device
      // whose rewound batches were all stored ahead of the gap would otherwise never get past it.
      if (input.afterSeq <= contiguous) contiguous = Math.max(contiguous, input.lastSeq);
      else if (!replay) addRange.run(deviceId, kind, input.afterSeq, input.lastSeq);
      for (;;) {
        const range = nextRange.get(deviceId, kind, contiguous) as { after_seq: number; last_seq: number } | undefined;
        if (!range) break;
        contiguous = Math.max(contiguous, range.last_seq);
        dropRange.run(deviceId, kind, range.after_seq);
      }
      const redelivered = input.records.length - inserted - conflicts.length;
      if (!replay || contiguous !== before) putProgress.run(deviceId, kind, contiguous, inserted, redelivered);
      return {
        inserted,
        redelivered,
        conflicts,
        upToSeq: ackable(contiguous),
        replay,
        rewind: Boolean(input.heldFrom) && contiguous < input.ackedUpTo,
        assumed: Math.max(0, trusted - before),
        // Also for a conflict resent after a lost ack (kept once already): its ack may have been the one lost.
        // And for new records below the watermark (a new SD card whose clock is behind the old card's ledger
        // start, no clash): above it, this edge tracks the ledger's gaps again and can ask it to rewind.
        seqFloor: clashes > 0 || belowWatermark > 0 ? ((highestStored.get(deviceId, kind) as number | null) ?? 0) : 0,
      };
    };
    this.commitTx = this.db.transaction(commitInTx);
    const getWatch = this.db.prepare('SELECT state FROM boot_watch WHERE device_id = ?').pluck();
    const putWatch = this.db.prepare('INSERT INTO boot_watch (device_id, state) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET state = excluded.state');
    const countRefusedBoot = this.db.prepare('UPDATE duplicate_device_ids SET refused = refused + 1 WHERE device_id = ?');
    const markProven = this.db.prepare('UPDATE duplicate_device_ids SET incumbent = ?, refused_boot = ?, proven_ms = ?, released_ms = NULL WHERE device_id = ?');
    const markReleased = this.db.prepare('UPDATE duplicate_device_ids SET released_ms = ? WHERE device_id = ? AND released_ms IS NULL');
    const markSides = this.db.prepare('UPDATE duplicate_device_ids SET incumbent = ?, refused_boot = ? WHERE device_id = ?');
    const getInvolved = this.db.prepare('SELECT involved FROM duplicate_device_ids WHERE device_id = ?').pluck();
    const putInvolved = this.db.prepare('UPDATE duplicate_device_ids SET involved = ? WHERE device_id = ?');
    /** Adds boot ids to the device's `involved` (kept so that `storedByBoot` still lists them after later switches). */
    const involve = (deviceId: string, boots: readonly (string | null)[]) => {
      const raw = getInvolved.get(deviceId);
      if (typeof raw !== 'string') return;
      let known: string[] = [];
      try {
        known = JSON.parse(raw) as string[];
      } catch {
        // A damaged cell starts afresh.
      }
      // A boot involved again moves to the end; the 32 most recent stay (QA: the list stopped growing at 32).
      const added = boots.filter((b): b is string => b !== null);
      const all = [...known.filter((b) => !added.includes(b)), ...new Set(added)].slice(-32);
      if (JSON.stringify(all) !== JSON.stringify(known)) putInvolved.run(JSON.stringify(all), deviceId);
    };
    this.watchedCommitTx = this.db.transaction((input: CommitInput, options: DuplicateDeviceIdOptions, now: number): WatchedCommit => {
      const { deviceId } = input;
      const stored = parseWatch(getWatch.get(deviceId));
      // The boot ids of the batch's records other than its own: a reboot resends the records of the boot before.
      const carried = new Set<string>();
      for (const r of input.records) if (r.bootId !== input.bootId) carried.add(r.bootId);
      const admitted = admitBoot(stored, input.bootId, now, options, [...carried]);
      const sides = admitted.state;
      if (stored?.intruder && !sides?.intruder) markReleased.run(now, deviceId);
      // A proven boot rebooted (its successor resent its records): the successor holds its side.
      else if (stored?.intruder && sides?.intruder && (sides.intruder !== stored.intruder || sides.incumbent !== stored.incumbent)) {
        markSides.run(sides.incumbent, sides.intruder, deviceId);
        involve(deviceId, [sides.incumbent, sides.intruder]);
      }
      if (admitted.refuse && admitted.state) {
        putWatch.run(deviceId, JSON.stringify(admitted.state));
        countRefusedBoot.run(deviceId);
        return { refused: true, incumbent: admitted.state.incumbent ?? '' };
      }
      const result = commitInTx(input, now);
      // A replay (a QoS-1 redelivery, possibly of a boot that is gone) says nothing about a boot being alive.
      // A replay (a QoS-1 redelivery, or the newest acknowledged record a board resends at each connect) proves nothing
      // (`hearReplay`), but one of a live boot keeps it heard and, alternating with another live boot, says so in the acks.
      if (result.replay || input.bootId === '') {
        const heard = result.replay ? hearReplay(admitted.state, input.bootId, now) : admitted.state;
        if (heard && stored && JSON.stringify(heard) !== JSON.stringify(stored)) putWatch.run(deviceId, JSON.stringify(heard));
        return { refused: false, result, otherBootLive: otherBootLive(heard, now, options) };
      }
      const seen = observeBoot(admitted.state, input.bootId, now, options);
      putWatch.run(deviceId, JSON.stringify(seen.state));
      if (seen.switched) {
        upsertDuplicate.run(deviceId, now, now, JSON.stringify(seen.switched.bootIds));
        countRejected.run(DUPLICATE_DEVICE_ID, 1);
        involve(deviceId, seen.switched.bootIds);
      }
      if (seen.proven) markProven.run(seen.proven.incumbent, seen.proven.intruder, now, deviceId);
      return { refused: false, result, switched: seen.switched, proven: seen.proven, otherBootLive: otherBootLive(seen.state, now, options) };
    });
  }

  /**
   * Commits a batch (`commit`) unless two live boots of its device id are proven and this batch's boot is not the
   * incumbent (`duplicate-device-id.ts`): then nothing of it is stored and it is counted under the device's
   * `refused`. The boot watch lives in the store (`boot_watch`), read and written in the same IMMEDIATE
   * transaction as the records, so ingest workers in other processes on one store all see every batch.
   */
  commitFromBoot(input: CommitInput, options: DuplicateDeviceIdOptions, now = Date.now()): WatchedCommit {
    return this.watchedCommitTx.immediate(input, options, now);
  }

  /** `releaseDuplicate` on this store's connection. */
  releaseDuplicate(deviceId: string, release: DuplicateRelease, now = Date.now()): ReleasedDuplicate {
    return releaseDuplicate(this.db, deviceId, release, now);
  }

  /** Commits a validated batch durably (one transaction, fsync'd) and returns what to acknowledge. */
  commit(input: CommitInput, now = Date.now()): CommitResult {
    return this.commitTx(input, now);
  }

  countRejected(reason: string): void {
    this.countRejectedStmt.run(reason, 1);
  }

  /** Records of a device and kind kept in `conflicts` (a seq reused with other content), by seq then arrival. */
  conflicts(deviceId: string, kind: RecordKind): ConflictRecord[] {
    return this.db
      .prepare('SELECT seq, boot_id AS bootId, t_ms AS tMs, body, site, received_ms AS receivedMs FROM conflicts WHERE device_id = ? AND kind = ? ORDER BY seq, id')
      .all(deviceId, kind) as ConflictRecord[];
  }

  stats(): EdgeStats {
    return readStats(this.db);
  }

  /** Per kind: stored rows, lowest and highest seq, and rows whose body is byte-identical to another row's. */
  audit(deviceId: string): Partial<Record<RecordKind, { stored: number; minSeq: number; maxSeq: number; duplicateBodies: number }>> {
    const rows = this.db
      .prepare(
        `SELECT kind, COUNT(*) AS stored, MIN(seq) AS minSeq, MAX(seq) AS maxSeq, COUNT(*) - COUNT(DISTINCT body) AS duplicateBodies
         FROM records WHERE device_id = ? GROUP BY kind`,
      )
      .all(deviceId) as { kind: RecordKind; stored: number; minSeq: number; maxSeq: number; duplicateBodies: number }[];
    return Object.fromEntries(rows.map(({ kind, ...rest }) => [kind, rest]));
  }

  /** Records of a device and kind in seq order (for export and tests). */
  records(deviceId: string, kind: RecordKind, afterSeq = 0, limit = 1000): WireRecord[] {
    return (
      this.db
        .prepare('SELECT seq, boot_id AS bootId, t_ms AS tMs, body FROM records WHERE device_id = ? AND kind = ? AND seq > ? ORDER BY seq LIMIT ?')
        .all(deviceId, kind, afterSeq, limit) as { seq: number; bootId: string; tMs: number; body: Buffer }[]
    ).map((r) => ({ seq: r.seq, bootId: r.bootId, tMs: r.tMs, body: r.body }));
  }

  close(): void {
    this.db.close();
  }
}

function readStats(db: Database.Database): EdgeStats {
  const devices: EdgeStats['devices'] = {};
  for (const row of db.prepare('SELECT device_id, kind, stored FROM progress ORDER BY device_id, kind').all() as {
    device_id: string;
    kind: RecordKind;
    stored: number;
  }[]) {
    devices[row.device_id] ??= {};
    (devices[row.device_id] as Partial<Record<RecordKind, number>>)[row.kind] = row.stored;
  }
  const rejected: Record<string, number> = {};
  for (const row of db.prepare('SELECT reason, count FROM rejected ORDER BY reason').all() as { reason: string; count: number }[]) {
    rejected[row.reason] = row.count;
  }
  const conflicts: EdgeStats['conflicts'] = {};
  const openConflicts: EdgeStats['openConflicts'] = {};
  for (const row of conflictCounts(db)) {
    (conflicts[row.device_id] ??= {})[row.kind] = row.n;
    if (row.open > 0) (openConflicts[row.device_id] ??= {})[row.kind] = row.open;
  }
  return { devices, rejected, conflicts, openConflicts, duplicateDeviceIds: readDuplicateDeviceIds(db) };
}

function readDuplicateDeviceIds(db: Database.Database): EdgeStats['duplicateDeviceIds'] {
  const duplicateDeviceIds: EdgeStats['duplicateDeviceIds'] = {};
  if (!hasTable(db, 'duplicate_device_ids')) return duplicateDeviceIds;
  // A store not yet opened by this build (read-only here) lacks the refusal columns.
  const refusal = hasTable(db, 'boot_watch')
    ? 'incumbent, refused_boot, proven_ms, released_ms, refused, involved'
    : "NULL AS incumbent, NULL AS refused_boot, NULL AS proven_ms, NULL AS released_ms, 0 AS refused, '[]' AS involved";
  // Kept by each commit (`boot_records`); a store not yet opened by this build (read-only here) is scanned instead.
  const byBoot = hasTable(db, 'boot_records')
    ? db.prepare('SELECT kind, stored, min_seq AS minSeq, max_seq AS maxSeq FROM boot_records WHERE device_id = ? AND boot_id = ? ORDER BY kind')
    : db.prepare('SELECT kind, COUNT(*) AS stored, MIN(seq) AS minSeq, MAX(seq) AS maxSeq FROM records WHERE device_id = ? AND boot_id = ? GROUP BY kind');
  const conflictsByBoot = db.prepare('SELECT kind, COUNT(*) AS n FROM conflicts WHERE device_id = ? AND boot_id = ? GROUP BY kind');
  const getWatch = hasTable(db, 'boot_watch') ? db.prepare('SELECT state FROM boot_watch WHERE device_id = ?').pluck() : undefined;
  const lastRelease = hasTable(db, 'duplicate_releases')
    ? db.prepare('SELECT operator, reason, released_ms AS releasedMs, incumbent, refused_boot AS refusedBoot, kept_boot AS keptBoot FROM duplicate_releases WHERE device_id = ? ORDER BY id DESC LIMIT 1')
    : undefined;
  for (const row of db.prepare(`SELECT device_id, count, first_ms, last_ms, boot_ids, ${refusal} FROM duplicate_device_ids ORDER BY device_id`).all() as {
    device_id: string;
    count: number;
    first_ms: number;
    last_ms: number;
    boot_ids: string;
    incumbent: string | null;
    refused_boot: string | null;
    proven_ms: number | null;
    released_ms: number | null;
    refused: number;
    involved: string;
  }[]) {
    const bootIds = JSON.parse(row.boot_ids) as string[];
    const storedByBoot: Record<string, StoredByKind> = {};
    for (const boot of new Set([...parseBootIds(row.involved), ...bootIds, row.incumbent, row.refused_boot])) {
      if (boot === null) continue;
      const kinds: StoredByKind = {};
      for (const k of byBoot.all(row.device_id, boot) as { kind: RecordKind; stored: number; minSeq: number; maxSeq: number }[]) {
        kinds[k.kind] = { stored: k.stored, minSeq: k.minSeq, maxSeq: k.maxSeq, conflicts: 0 };
      }
      for (const k of conflictsByBoot.all(row.device_id, boot) as { kind: RecordKind; n: number }[]) {
        kinds[k.kind] = { ...(kinds[k.kind] ?? { stored: 0, minSeq: null, maxSeq: null }), conflicts: k.n };
      }
      storedByBoot[boot] = kinds;
    }
    duplicateDeviceIds[row.device_id] = {
      count: row.count,
      bootIds,
      firstMs: row.first_ms,
      lastMs: row.last_ms,
      ...(row.incumbent !== null ? { incumbent: row.incumbent } : {}),
      ...(row.refused_boot !== null ? { refusedBoot: row.refused_boot } : {}),
      ...(row.proven_ms !== null ? { provenMs: row.proven_ms } : {}),
      ...(row.released_ms !== null ? { releasedMs: row.released_ms } : {}),
      refusedBatches: row.refused,
      refusedByBoot: {},
      storedByBoot,
    };
    const watch = parseWatch(getWatch?.get(row.device_id));
    const stats = duplicateDeviceIds[row.device_id] as DuplicateDeviceIdStats;
    if (watch) {
      stats.refusedByBoot = { ...watch.refusedBy };
      if (watch.incumbent !== null && watch.intruder !== null) {
        const heard = (b: string) => watch.boots[b]?.lastMs;
        stats.lastHeardMs = Object.fromEntries(
          [watch.incumbent, watch.intruder].flatMap((b) => (heard(b) === undefined ? [] : [[b, heard(b) as number]])),
        );
        if (watch.hold) stats.hold = watch.hold;
      }
    }
    const release = lastRelease?.get(row.device_id) as { operator: string; reason: string; releasedMs: number; incumbent: string; refusedBoot: string; keptBoot: string | null } | undefined;
    if (release) {
      const { keptBoot, ...rest } = release;
      (duplicateDeviceIds[row.device_id] as DuplicateDeviceIdStats).lastRelease = { ...rest, ...(keptBoot !== null ? { keptBoot } : {}) };
    }
  }
  return duplicateDeviceIds;
}

/**
 * An operator's release of the proven pair of boots of `deviceId` (`releaseProof`), in one IMMEDIATE transaction with
 * the ingest's (ingest workers see it at their next batch), recorded in `duplicate_releases` (never changed) and in
 * the device's `duplicate_device_ids` row. Throws `DuplicateReleaseError` when there is no proof, `keep` is not one of
 * its boots, or the operator or reason is empty or too long.
 */
export function releaseDuplicate(db: Database.Database, deviceId: string, release: DuplicateRelease, now: number): ReleasedDuplicate {
  const { operatorMaxChars, reasonMaxChars } = DUPLICATE_RELEASE_LIMITS;
  const bad = (field: string, value: string, max: number) =>
    value.trim() === '' ? `the ${field} is blank` : value.length > max ? `the ${field} must be 1 to ${max} characters, got ${value.length}` : undefined;
  const problem = bad("operator's name", release.operator, operatorMaxChars) ?? bad('reason', release.reason, reasonMaxChars);
  if (problem !== undefined) throw new DuplicateReleaseError('bad-release', deviceId, problem);
  return db.transaction((): ReleasedDuplicate => {
    const stored = parseWatch(db.prepare('SELECT state FROM boot_watch WHERE device_id = ?').pluck().get(deviceId));
    const next = releaseProof(stored, now, release.keep);
    if (next === 'not-proven' || next === 'unknown-boot' || next === 'bad-release') {
      const message =
        next === 'unknown-boot'
          ? `--keep ${JSON.stringify(release.keep)} is neither boot of the pair proven under ${deviceId} (${stored?.incumbent}, refused ${stored?.intruder})`
          : `no pair of boots is proven under device id ${JSON.stringify(deviceId)} now; 'medge edge stats' lists the device ids and their state`;
      throw new DuplicateReleaseError(next, deviceId, message);
    }
    const before = stored as BootWatchState;
    db.prepare('UPDATE boot_watch SET state = ? WHERE device_id = ?').run(JSON.stringify(next), deviceId);
    db.prepare('INSERT INTO duplicate_releases (device_id, released_ms, operator, reason, incumbent, refused_boot, kept_boot) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      deviceId,
      now,
      release.operator,
      release.reason,
      before.incumbent,
      before.intruder,
      release.keep ?? null,
    );
    // Without --keep the proof stands until the incumbent is silent (the ingest then marks it released).
    if (release.keep !== undefined) {
      db.prepare('UPDATE duplicate_device_ids SET incumbent = ?, refused_boot = ?, proven_ms = ?, released_ms = NULL WHERE device_id = ?').run(next.incumbent, next.intruder, now, deviceId);
    }
    const incumbent = next.incumbent as string;
    const refusedBoot = next.intruder as string;
    return { incumbent, refusedBoot, incumbentHeardMs: next.boots[incumbent]?.lastMs ?? null, refusedHeardMs: next.boots[refusedBoot]?.lastMs ?? null };
  }).immediate();
}

/** A release done (`releaseDuplicate`): the boot that keeps syncing and the refused one now, and when each was last heard (edge ms). */
export interface ReleasedDuplicate {
  incumbent: string;
  refusedBoot: string;
  incumbentHeardMs: number | null;
  refusedHeardMs: number | null;
}

/**
 * `releaseDuplicate` on the edge store at `path` (an edge may be running on it: SQLite serialises the writes). A store
 * at an older schema is refused, not migrated: an older edge may be running on it (start this build's edge first).
 */
export function releaseStoredDuplicate(path: string, deviceId: string, release: DuplicateRelease, now: number): ReleasedDuplicate {
  if (!existsSync(path)) throw new StoreError('open', `no edge store at ${path}`);
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: true });
  } catch (error) {
    throw new StoreError('open', `cannot open edge store ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    // The edge switched it to WAL; these two are per connection.
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = FULL');
    const version = db.pragma('user_version', { simple: true }) as number;
    const latest = (EDGE_MIGRATIONS[EDGE_MIGRATIONS.length - 1] as Migration).version;
    if (version !== latest) {
      throw new StoreError(
        'open',
        version > latest
          ? `edge store ${path} is at schema version ${version}, newer than this build knows (${latest}); upgrade medge`
          : `edge store ${path} is at schema version ${version}, older than this build's ${latest}: an older edge may be running on it; start this build's edge on it (medge edge --data DIR migrates it), then release`,
      );
    }
    return releaseDuplicate(db, deviceId, release, now);
  } finally {
    db.close();
  }
}

/** The boot watch state of a device as stored; undefined for none, or for a row that does not parse (a damaged store starts it afresh). */
function parseWatch(raw: unknown): BootWatchState | undefined {
  if (typeof raw !== 'string') return undefined;
  try {
    const state = JSON.parse(raw) as BootWatchState;
    return typeof state === 'object' && state !== null && typeof state.boots === 'object' && state.boots !== null ? state : undefined;
  } catch {
    return undefined;
  }
}

/** A JSON array of boot ids as stored; [] for a cell that does not parse. */
function parseBootIds(raw: string): string[] {
  try {
    const ids: unknown = JSON.parse(raw);
    return Array.isArray(ids) ? ids.filter((b): b is string => typeof b === 'string') : [];
  } catch {
    return [];
  }
}

/** Whether the database has `table` (a store not yet opened by this build, read here read-only, lacks the newer ones). */
export function hasTable(db: Database.Database, table: string): boolean {
  return db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(table) === 1;
}

/** Kept and open (not yet resolved) conflicts per device and kind. */
function conflictCounts(db: Database.Database): { device_id: string; kind: RecordKind; n: number; open: number }[] {
  if (!hasTable(db, 'conflicts')) return [];
  const resolved = hasTable(db, 'conflict_resolutions') ? 'COUNT(r.conflict_id)' : '0';
  const join = hasTable(db, 'conflict_resolutions') ? 'LEFT JOIN conflict_resolutions r ON r.conflict_id = c.id' : '';
  return db
    .prepare(`SELECT c.device_id, c.kind, COUNT(*) AS n, COUNT(*) - ${resolved} AS open FROM conflicts c ${join} GROUP BY c.device_id, c.kind ORDER BY c.device_id, c.kind`)
    .all() as { device_id: string; kind: RecordKind; n: number; open: number }[];
}

/** Reads the stats of an edge data directory without disturbing a running edge (read-only, WAL). */
export function readEdgeStats(dataDir: string): EdgeStats {
  return withReadOnlyDatabase(edgeDatabasePath(dataDir), 'edge store', readStats, `start one with: medge edge --data ${dataDir}`);
}
