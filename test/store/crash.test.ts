/**
 * Crash safety of the SQLite ledger with real SIGKILLs: a child process appends transactions of
 * random size and reports each commit on stdout; the parent kills it at a random moment, reopens the
 * file and checks durability, seq monotonicity and that no seq is ever handed out twice.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { RECORD_KINDS, type RecordKind } from '../../device-sdk/records.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { LEDGER_TABLES } from '../../device-sdk/store/ledger-keys.js';
import { SEQ_RESERVATION_FILE, SeqReservation } from '../../device-sdk/store/seq-reservation.js';
import { mulberry32 } from '../../device-sdk/random.js';
import { useTempDirs } from '../helpers/temp.js';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));
const DIST_STORE = fileURLToPath(new URL('../../dist/device-sdk/store/index.js', import.meta.url));
const ROUNDS = 8;
const DEVICE = 'crash-dev';

const tempDir = useTempDirs('crash');


interface Round {
  /** `[kind, seq]` for every `committed` line received in full. */
  committed: [RecordKind, number][];
  /** Whole lines that were neither `ready` nor `committed ...`. */
  unexpected: string[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/** Starts the writer, kills it with SIGKILL `delayMs` after it reported `ready`, and collects what it said. */
function runAndKill(dbPath: string, seed: number, delayMs: number, extra: string[] = []): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dbPath, String(seed), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    const committed: [RecordKind, number][] = [];
    const unexpected: string[] = [];
    let stdout = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const onLine = (line: string) => {
      if (line === 'ready') {
        killTimer = setTimeout(() => child.kill('SIGKILL'), delayMs);
        return;
      }
      const m = /^committed (\w+) (\d+)$/.exec(line);
      if (m) committed.push([m[1] as RecordKind, Number(m[2])]);
      else unexpected.push(line);
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      for (let nl = stdout.indexOf('\n'); nl >= 0; nl = stdout.indexOf('\n')) {
        onLine(stdout.slice(0, nl));
        stdout = stdout.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    // 'close' comes after stdout is drained: every line written before the kill has been seen.
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (killTimer) clearTimeout(killTimer);
      resolve({ committed, unexpected, signal, code, stderr });
    });
  });
}

/** Byte 0 is a key k and byte i is (k * 7 + i * 13) & 0xff (see the writer). */
function bodyIsIntact(body: Uint8Array): boolean {
  if (body.byteLength === 0) return false;
  const key = body[0] as number;
  for (let i = 1; i < body.byteLength; i++) if (body[i] !== ((key * 7 + i * 13) & 0xff)) return false;
  return true;
}

describe('SqliteOutboxStore under SIGKILL', () => {
  it(`keeps every reported commit and never repeats a seq over ${ROUNDS} kill/reopen rounds`, async () => {
    expect(existsSync(DIST_STORE), `${DIST_STORE} is missing: run \`npm run build\` first (the crash writer runs the compiled store)`).toBe(true);
    const dir = tempDir();
    const dbPath = join(dir, 'ledger.sqlite');
    const random = mulberry32(42);
    /** Highest seq per kind ever reported by a writer, returned to the parent, or found in the file. */
    const highest = Object.fromEntries(RECORD_KINDS.map((k) => [k, 0])) as Record<RecordKind, number>;
    let totalReported = 0;
    let killedWhileWriting = 0;

    for (let round = 0; round < ROUNDS; round++) {
      const delayMs = 10 + Math.floor(random() * 71);
      const result = await runAndKill(dbPath, 1000 + round, delayMs);
      const context = `round ${round} (kill after ${delayMs} ms, writer seed ${1000 + round})`;
      expect(result.signal, `${context}: the writer exited on its own (code ${result.code}): ${result.stderr}`).toBe('SIGKILL');
      expect(result.unexpected, `${context}: unexpected writer output`).toEqual([]);
      if (result.committed.length > 0) killedWhileWriting += 1;
      totalReported += result.committed.length;

      const integrity = new Database(dbPath, { readonly: true });
      expect(integrity.pragma('integrity_check', { simple: true }), context).toBe('ok');
      integrity.close();

      const store = new SqliteOutboxStore(dbPath, { deviceId: DEVICE });
      try {
        const stats = store.stats();
        const present = new Map<RecordKind, Set<number>>();
        /** Rows per writer append (tag `<seed>:<append>:<size>`), over all kinds. */
        const perAppend = new Map<string, number>();
        for (const kind of RECORD_KINDS) {
          const rows = store.readAfter(kind, 0, 10_000_000);
          for (const r of rows) perAppend.set(r.tag, (perAppend.get(r.tag) ?? 0) + 1);
          const seqs = rows.map((r) => r.seq);
          // Strictly increasing, no duplicates, and (the writer never deletes) no gaps: 1..N.
          expect(seqs, `${context}: ${kind} seqs`).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
          expect(stats[kind].lastSeq, `${context}: ${kind} lastSeq`).toBe(seqs.length);
          // Earlier rounds' commits (the writers' and the parent's) are all still there.
          expect(seqs.length, `${context}: ${kind} lost records`).toBeGreaterThanOrEqual(highest[kind]);
          const damaged = rows.filter((r) => !bodyIsIntact(r.body)).map((r) => r.seq);
          expect(damaged, `${context}: ${kind} bodies damaged`).toEqual([]);
          present.set(kind, new Set(seqs));
        }
        // Atomicity: every append is in the file whole or not at all, including the one the kill interrupted.
        const torn = [...perAppend].filter(([tag, n]) => tag !== 'parent' && Number(tag.split(':')[2]) !== n);
        expect(torn, `${context}: appends stored in part`).toEqual([]);
        // Durability: every commit the writer reported before it died is in the file.
        const missing = result.committed.filter(([kind, seq]) => !present.get(kind)?.has(seq));
        expect(missing, `${context}: reported committed but missing`).toEqual([]);
        for (const [kind, seq] of result.committed) highest[kind] = Math.max(highest[kind], seq);
        for (const kind of RECORD_KINDS) highest[kind] = Math.max(highest[kind], stats[kind].lastSeq);

        // The next seq after the crash is above everything ever reported or present.
        const body = Uint8Array.of(9, (9 * 7 + 13) & 0xff);
        const next = store.append(RECORD_KINDS.map((kind) => ({ kind, tMs: Date.now(), body, tag: 'parent' })));
        RECORD_KINDS.forEach((kind, i) => {
          expect(next[i], `${context}: next ${kind} seq`).toBe(highest[kind] + 1);
          highest[kind] = next[i] as number;
        });
      } finally {
        store.close();
      }
    }
    // The kills must have landed while the writer was committing, or the proof proves nothing.
    expect(totalReported).toBeGreaterThan(0);
    expect(killedWhileWriting).toBeGreaterThanOrEqual(ROUNDS / 2);
  });

  it(`keeps the seq reservation at or above every committed seq over ${ROUNDS} kill rounds (a block of 64: a reservation every few appends)`, async () => {
    expect(existsSync(DIST_STORE), `${DIST_STORE} is missing: run \`npm run build\` first`).toBe(true);
    const dir = tempDir();
    const dbPath = join(dir, 'ledger.sqlite');
    const random = mulberry32(7);
    let writes = 0;
    let previous = '';
    for (let round = 0; round < ROUNDS; round++) {
      const delayMs = 10 + Math.floor(random() * 71);
      const result = await runAndKill(dbPath, 2000 + round, delayMs, ['64']);
      const context = `round ${round} (kill after ${delayMs} ms)`;
      expect(result.signal, `${context}: ${result.stderr}`).toBe('SIGKILL');
      const text = readFileSync(join(dir, SEQ_RESERVATION_FILE), 'utf8');
      if (text !== previous) writes += 1;
      previous = text;
      const reservation = new SeqReservation(join(dir, SEQ_RESERVATION_FILE));
      expect(reservation.damaged, context).toBeUndefined();
      const db = new Database(dbPath, { readonly: true });
      for (const kind of RECORD_KINDS) {
        const max = (db.prepare(`SELECT MAX(seq) FROM ${LEDGER_TABLES[kind]}`).pluck().get() as number | null) ?? 0;
        expect(reservation.bound(kind), `${context}: ${kind} bound vs committed ${max}`).toBeGreaterThanOrEqual(max);
      }
      db.close();
    }
    // Most kills must land after new reservations were written, or the proof proves little.
    expect(writes).toBeGreaterThanOrEqual(ROUNDS / 2);
  });
});
