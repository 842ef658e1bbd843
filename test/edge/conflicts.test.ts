/**
 * `medge edge conflicts` and `medge edge conflicts resolve` (child processes of the built CLI) on real
 * edge stores whose conflicts come through the real ingest path: the listing (text and JSON, decoded
 * summaries without free text), settlements recorded and final, nothing deleted, imported records in
 * the FHIR export once and only once, the normal path still exactly-once, and a store of schema 2.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { encodeBody, type WireRecord } from '../../device-sdk/proto/index.js';
import type { RecordBodies, RecordKind } from '../../device-sdk/records.js';
import { buildBatch } from '../../device-sdk/sync/batch.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { EDGE_MIGRATIONS, EdgeStore, edgeDatabasePath } from '../../edge/edge-store.js';
import { exportEdgeResources } from '../../edge/fhir/export.js';
import { FhirServer } from '../../edge/fhir/http.js';
import type { Resource } from '../../edge/fhir/mapping.js';
import { Ingest, type IngestOutcome } from '../../edge/ingest.js';
import { medge } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('edge-conflicts');
const SITE = 'clinic-7';
const T0 = Date.UTC(2026, 11, 1, 8, 0, 0);
/** Free text that records may carry and that a listing must never show. */
const SECRET = 'Amina Diallo 1974-03-02';

const sha = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

function glucose(value: number, t: number): RecordBodies['reading'] {
  return { sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice: t, tMeter: t - 1000, context: { note: SECRET } };
}

function hypoAlert(t: number, ledger: string): RecordBodies['alert'] {
  return { kind: 'glucose-low', severity: 3, message: `${SECRET}: glucose low (${ledger})`, t, sensor: 'meter' };
}

/** Sends records as one batch through the ingest (a device ledger's uplink would). */
function send<K extends RecordKind>(ingest: Ingest, deviceId: string, bootId: string, kind: K, afterSeq: number, bodies: RecordBodies[K][], tOf: (b: RecordBodies[K]) => number): IngestOutcome {
  const records: WireRecord[] = bodies.map((b, i) => ({ seq: afterSeq + i + 1, bootId, tMs: tOf(b), body: encodeBody(kind, b) }));
  return ingest.handle(upTopic(SITE, deviceId, kind), buildBatch({ deviceId, bootId, kind, afterSeq, ackedUpTo: 0, records, sentMs: T0 }));
}

const readingT = (r: RecordBodies['reading']) => r.tDevice;
const alertT = (a: RecordBodies['alert']) => a.t;

/** The first ledger of dev-1 (boot-a) and of dev-2. */
const LEDGER_A = Array.from({ length: 5 }, (_, i) => glucose(101 + i, T0 + i * 60_000));
const ALERTS_A = [hypoAlert(T0 + 10_000, 'a'), hypoAlert(T0 + 20_000, 'a')];
/** A re-imaged SD card under dev-1 (boot-b): seqs from 1 again, other records. */
const LEDGER_B = Array.from({ length: 3 }, (_, i) => glucose(61 + i, T0 + 3_600_000 + i * 60_000));
const ALERT_B = hypoAlert(T0 + 3_700_000, 'b');

/**
 * An edge store with 5 conflicts through the real ingest: ids 1-3 dev-1 readings seq 1-3 (boot-b),
 * 4 dev-1 alert seq 1 (boot-b), 5 dev-2 reading seq 2 (boot-c).
 */
function storeWithConflicts(dir: string): void {
  const store = new EdgeStore(dir);
  const ingest = new Ingest(store, () => {}, silentLogger);
  const results = [
    send(ingest, 'dev-1', 'boot-a', 'reading', 0, LEDGER_A, readingT),
    send(ingest, 'dev-1', 'boot-a', 'alert', 0, ALERTS_A, alertT),
    send(ingest, 'dev-2', 'boot-z', 'reading', 0, [glucose(140, T0), glucose(141, T0 + 60_000)], readingT),
    send(ingest, 'dev-1', 'boot-b', 'reading', 0, LEDGER_B, readingT),
    send(ingest, 'dev-1', 'boot-b', 'alert', 0, [ALERT_B], alertT),
    send(ingest, 'dev-2', 'boot-c', 'reading', 1, [glucose(99, T0 + 120_000)], readingT),
  ];
  expect(results.map((r) => (r.ok ? r.result.conflicts : r.reason))).toEqual([[], [], [], [1, 2, 3], [1], [2]]);
  store.close();
}

/** Every row of records and conflicts, bodies in hex: what must never change. */
function snapshot(dir: string): unknown {
  const db = new Database(edgeDatabasePath(dir), { readonly: true });
  try {
    const rows = (table: string) => (db.prepare(`SELECT * FROM ${table} ORDER BY id`).all() as Record<string, unknown>[]).map((r) => ({ ...r, body: Buffer.from(r.body as Buffer).toString('hex') }));
    return { records: rows('records'), conflicts: rows('conflicts') };
  } finally {
    db.close();
  }
}

interface ListedSide {
  bootId: string;
  tMs: number;
  time: string;
  bodySha256: string;
  summary: Record<string, unknown>;
}
interface Listed {
  id: number;
  deviceId: string;
  kind: string;
  seq: number;
  status: string;
  received: string;
  stored: ListedSide;
  incoming: ListedSide;
  resolution?: { choice: string; operator: string; reason: string; resolvedMs: number };
}

async function listJson(args: string[]): Promise<Listed[]> {
  const r = await medge(['edge', 'conflicts', ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Listed[];
}

const resolve = (dir: string, target: string[], choice: string, reason = 'checked against the clinic paper log') =>
  medge(['edge', 'conflicts', 'resolve', '--data', dir, ...target, '--choice', choice, '--operator', 'R. Osei', '--reason', reason]);

const observations = (resources: Resource[]) => resources.filter((r) => r.resourceType === 'Observation');
const identifierOf = (r: Resource) => (r.identifier as { value: string }[])[0]?.value as string;
const valueOf = (r: Resource) => (r.valueQuantity as { value: number }).value;

describe('medge edge conflicts', () => {
  it('lists both records of each conflict, decoded, with no free text; filters by device and kind', async () => {
    const dir = tempDir();
    storeWithConflicts(dir);
    const text = await medge(['edge', 'conflicts', '--data', dir]);
    expect(text.code, text.stderr).toBe(0);
    const first = sha(encodeBody('reading', LEDGER_A[0] as RecordBodies['reading']));
    const firstB = sha(encodeBody('reading', LEDGER_B[0] as RecordBodies['reading']));
    expect(text.stdout).toMatch(/^conflict 1: dev-1 reading seq 1, received \d{4}-\d\d-\d\dT[\d:.]+Z, open$/m);
    expect(text.stdout).toContain(`  stored:   boot boot-a, time 2026-12-01T08:00:00.000Z, sha256 ${first}\n            glucose 101 mg/dL at 2026-12-01T07:59:59.000Z (sensor meter)`);
    expect(text.stdout).toContain(`  incoming: boot boot-b, time 2026-12-01T09:00:00.000Z, sha256 ${firstB}\n            glucose 61 mg/dL at 2026-12-01T08:59:59.000Z (sensor meter)`);
    expect(text.stdout).toContain('alert glucose-low severity 3 at 2026-12-01T08:00:10.000Z (sensor meter)');
    expect(text.stdout).toContain('alert glucose-low severity 3 at 2026-12-01T09:01:40.000Z (sensor meter)');
    expect(text.stdout.trim().split('\n').at(-1)).toBe('5 conflicts: 5 open, 0 resolved');
    // Reading context and alert messages are free text: never shown.
    expect(text.stdout).not.toContain('Amina');
    expect(text.stdout).not.toContain('glucose low');

    const all = await listJson(['--data', dir]);
    expect(all.map((e) => [e.id, e.deviceId, e.kind, e.seq, e.stored.bootId, e.incoming.bootId, e.status])).toEqual([
      [1, 'dev-1', 'reading', 1, 'boot-a', 'boot-b', 'open'],
      [2, 'dev-1', 'reading', 2, 'boot-a', 'boot-b', 'open'],
      [3, 'dev-1', 'reading', 3, 'boot-a', 'boot-b', 'open'],
      [4, 'dev-1', 'alert', 1, 'boot-a', 'boot-b', 'open'],
      [5, 'dev-2', 'reading', 2, 'boot-z', 'boot-c', 'open'],
    ]);
    expect(all[0]).toMatchObject({
      stored: { tMs: T0, time: '2026-12-01T08:00:00.000Z', bodySha256: first, summary: { kind: 'reading', type: 'glucose', value: 101, unit: 'mg/dL', sensor: 'meter' } },
      incoming: { tMs: T0 + 3_600_000, bodySha256: firstB, summary: { value: 61 } },
    });
    expect(all[3]?.incoming.summary).toEqual({ kind: 'alert', alert: 'glucose-low', severity: 3, time: '2026-12-01T09:01:40.000Z', sensor: 'meter' });
    expect(JSON.stringify(all)).not.toContain('Amina');

    // --store FILE is the same store; --device and --kind narrow it.
    expect(await listJson(['--store', edgeDatabasePath(dir)])).toEqual(all);
    expect((await listJson(['--data', dir, '--device', 'dev-2'])).map((e) => e.id)).toEqual([5]);
    expect((await listJson(['--data', dir, '--device', 'dev-1', '--kind', 'alert'])).map((e) => e.id)).toEqual([4]);

    const [unknown, badKind, both, missing] = await Promise.all([
      medge(['edge', 'conflicts', '--data', dir, '--device', 'dev-9']),
      medge(['edge', 'conflicts', '--data', dir, '--kind', 'readings']),
      medge(['edge', 'conflicts', '--data', dir, '--store', edgeDatabasePath(dir)]),
      medge(['edge', 'conflicts', '--data', join(dir, 'nowhere')]),
    ]);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([1, `medge: no device "dev-9" in the edge store ${edgeDatabasePath(dir)}`]);
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toContain('--kind must be one of alert, finding, reading, quarantine, chunk, got "readings"');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give the edge store as --data DIR or as --store FILE (one of them)');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no edge store at');
  });

  it('records who settled which conflict, when, why and how; a settlement is final and deletes nothing', async () => {
    const dir = tempDir();
    storeWithConflicts(dir);
    const before = snapshot(dir);
    const t0 = Date.now();
    const one = await resolve(dir, ['--id', '4'], 'keep-stored', 'same hypo episode as alert seq 1 of boot-a');
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain('resolved 1 conflict (dev-1 alert 1; id 4) as keep-stored by R. Osei');

    const [again, unknownId, unknownDevice, noAll, idAndDevice, badChoice, noReason] = await Promise.all([
      resolve(dir, ['--id', '4'], 'import'),
      resolve(dir, ['--id', '99'], 'import'),
      resolve(dir, ['--device', 'dev-9', '--all'], 'import'),
      resolve(dir, ['--device', 'dev-1'], 'import'),
      resolve(dir, ['--id', '1', '--device', 'dev-1'], 'import'),
      resolve(dir, ['--id', '1'], 'delete'),
      medge(['edge', 'conflicts', 'resolve', '--data', dir, '--id', '1', '--choice', 'import', '--operator', 'R. Osei']),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^medge: conflict 4 was already resolved \(keep-stored by R\. Osei at \d{4}-[\d-]+T[\d:.]+Z\); a resolution is final\n$/);
    expect([unknownId.code, unknownId.stderr]).toEqual([1, "medge: no conflict with id 99; 'medge edge conflicts' lists them\n"]);
    expect([unknownDevice.code, unknownDevice.stderr]).toEqual([1, 'medge: no device "dev-9" in this edge store\n']);
    for (const r of [noAll, idAndDevice, badChoice, noReason]) expect(r.code, r.stderr).toBe(2);
    expect(noAll.stderr).toContain('--device dev-1 needs --all');
    expect(badChoice.stderr).toContain('--choice must be one of keep-stored, import, got "delete"');
    expect(noReason.stderr).toContain('--reason TEXT is required');

    // The rest of dev-1 (its readings; the alert is settled already) in one go.
    const device = await resolve(dir, ['--device', 'dev-1', '--all'], 'import', 'SD card re-imaged on 2026-12-01; both ledgers are this patient');
    expect(device.code, device.stderr).toBe(0);
    expect(device.stdout).toContain('resolved 3 conflicts (dev-1 reading 3; ids 1-3) as import by R. Osei');
    const none = await resolve(dir, ['--device', 'dev-1', '--all'], 'import');
    expect([none.code, none.stderr]).toEqual([1, 'medge: device dev-1 has no open conflicts\n']);

    const db = new Database(edgeDatabasePath(dir), { readonly: true });
    const settled = db.prepare('SELECT conflict_id, choice, operator, reason, resolved_ms FROM conflict_resolutions ORDER BY conflict_id').all() as { resolved_ms: number }[];
    db.close();
    expect(settled.map(({ resolved_ms: _, ...rest }) => rest)).toEqual([
      ...[1, 2, 3].map((id) => ({ conflict_id: id, choice: 'import', operator: 'R. Osei', reason: 'SD card re-imaged on 2026-12-01; both ledgers are this patient' })),
      { conflict_id: 4, choice: 'keep-stored', operator: 'R. Osei', reason: 'same hypo episode as alert seq 1 of boot-a' },
    ]);
    for (const s of settled) expect(s.resolved_ms).toBeGreaterThanOrEqual(t0);
    expect(snapshot(dir)).toEqual(before);
    // Neither a conflict nor a settlement can be deleted or changed, by any client of the file.
    const rw = new Database(edgeDatabasePath(dir));
    expect(() => rw.prepare('DELETE FROM conflicts WHERE id = 1').run()).toThrow('conflicts are clinical records: never deleted');
    expect(() => rw.prepare("UPDATE conflict_resolutions SET choice = 'keep-stored' WHERE conflict_id = 1").run()).toThrow('a conflict resolution is final');
    rw.close();

    const listed = await listJson(['--data', dir]);
    expect(listed.map((e) => [e.id, e.status, e.resolution?.choice])).toEqual([
      [1, 'resolved', 'import'],
      [2, 'resolved', 'import'],
      [3, 'resolved', 'import'],
      [4, 'resolved', 'keep-stored'],
      [5, 'open', undefined],
    ]);
    const text = await medge(['edge', 'conflicts', '--data', dir, '--device', 'dev-1', '--kind', 'alert']);
    expect(text.stdout).toMatch(/ {2}resolved: keep-stored by R\. Osei at [\dT:.Z-]+: same hypo episode as alert seq 1 of boot-a\n1 conflict: 0 open, 1 resolved\n$/);

    // By status, and page by page (QA: 100,000 conflicts printed 48 MB in one go).
    expect((await listJson(['--data', dir, '--status', 'open'])).map((e) => e.id)).toEqual([5]);
    expect((await listJson(['--data', dir, '--status', 'resolved'])).map((e) => e.id)).toEqual([1, 2, 3, 4]);
    const pages = await Promise.all([['--limit', '2'], ['--limit', '2', '--after', '2'], ['--limit', '2', '--after', '4'], ['--status', 'sideways']].map((a) => medge(['edge', 'conflicts', '--data', dir, ...a])));
    const headers = (out: string) => out.split('\n').filter((l) => l.startsWith('conflict ')).map((l) => Number(/^conflict (\d+):/.exec(l)?.[1]));
    expect(pages.slice(0, 3).map((p) => headers(p.stdout))).toEqual([[1, 2], [3, 4], [5]]);
    expect(pages[0]?.stdout).toMatch(/\n5 conflicts: 1 open, 4 resolved\nshown 2, ids 1 to 2; next page: the same command with --after 2\n$/);
    expect(pages[1]?.stdout).toMatch(/next page: the same command with --after 4\n$/);
    expect(pages[2]?.stdout).toMatch(/\n5 conflicts: 1 open, 4 resolved\n$/);
    expect([pages[3]?.code, pages[3]?.stderr]).toEqual([2, expect.stringContaining('--status must be open or resolved, got "sideways"')]);

    const stats = await medge(['edge', 'stats', '--data', dir]);
    expect(stats.stdout).toContain('SEQ CONFLICTS: 1 open, 4 resolved');
    expect(stats.stdout).toContain('dev-1 alert 0 open of 1, dev-1 reading 0 open of 3, dev-2 reading 1 open of 1');
    const statsJson = JSON.parse((await medge(['edge', 'stats', '--data', dir, '--json'])).stdout) as Record<string, unknown>;
    expect(statsJson).toMatchObject({ conflicts: { 'dev-1': { alert: 1, reading: 3 }, 'dev-2': { reading: 1 } }, openConflicts: { 'dev-2': { reading: 1 } } });
  });

  it('imported records reach the FHIR export once and only once, next to the stored ones; ingest stays exactly-once', async () => {
    const dir = tempDir();
    storeWithConflicts(dir);
    expect((await resolve(dir, ['--id', '4'], 'keep-stored')).code).toBe(0);
    expect((await resolve(dir, ['--device', 'dev-1', '--all'], 'import')).code).toBe(0);

    const out = join(dir, 'bundle.json');
    const exported = await medge(['edge', 'export-fhir', '--data', dir, '--out', out]);
    expect(exported.code, exported.stderr).toBe(0);
    const bundle = JSON.parse(readFileSync(out, 'utf8')) as { entry: { resource: Resource }[] };
    const resources = bundle.entry.map((e) => e.resource);
    const ids = resources.map((r) => `${r.resourceType}/${r.id}`);
    expect(new Set(ids).size).toBe(ids.length);
    const dev1 = observations(resources).filter((o) => identifierOf(o).startsWith('dev-1/'));
    // The 5 stored readings once each, and the 3 imported ones once each under ids of their own.
    expect(dev1.map(valueOf).sort((a, b) => a - b)).toEqual([61, 62, 63, 101, 102, 103, 104, 105]);
    const imported = dev1.filter((o) => valueOf(o) < 100);
    expect(imported.map(identifierOf)).toEqual([1, 2, 3].map((seq) => expect.stringMatching(new RegExp(`^dev-1/reading/${seq}/[0-9a-f]{12}$`))));
    expect(dev1.filter((o) => valueOf(o) > 100).map(identifierOf)).toEqual([1, 2, 3, 4, 5].map((seq) => `dev-1/reading/${seq}`));
    // The boot-b session reports the imported readings; the alert kept out (keep-stored) is in no report.
    const reports = resources.filter((r) => r.resourceType === 'DiagnosticReport');
    const bootB = reports.find((r) => (r.identifier as { value: string }[])[0]?.value === 'dev-1/boot-b');
    expect((bootB?.result as { reference: string }[]).map((x) => x.reference)).toEqual(imported.map((o) => `Observation/${o.id}`));
    expect(JSON.stringify(reports)).not.toContain('(b)');
    // dev-2's conflict is open: only its two stored readings.
    expect(observations(resources).filter((o) => identifierOf(o).startsWith('dev-2/')).map(valueOf)).toEqual([140, 141]);

    // The HTTP API, page by page (2 a page, following Bundle.link next): the same Observations, each once.
    const fhir = new FhirServer({ dataDir: dir, port: 0 });
    await fhir.start();
    const paged: Resource[] = [];
    try {
      let url: string | undefined = `http://127.0.0.1:${fhir.port}/fhir/Observation?_count=2`;
      while (url) {
        const body = (await (await fetch(url)).json()) as { total: number; entry?: { resource: Resource }[]; link: { relation: string; url: string }[] };
        expect(body.total).toBe(observations(resources).length);
        paged.push(...(body.entry ?? []).map((e) => e.resource));
        url = body.link.find((l) => l.relation === 'next')?.url;
      }
    } finally {
      await fhir.stop();
    }
    expect(paged.map((o) => o.id)).toEqual(observations(resources).map((o) => o.id));

    // The normal path after an import: resends of both ledgers change nothing, a new record is added once.
    const store = new EdgeStore(dir);
    const ingest = new Ingest(store, () => {}, silentLogger);
    expect(send(ingest, 'dev-1', 'boot-a', 'reading', 0, LEDGER_A, readingT)).toMatchObject({ ok: false, reason: 'replay' });
    expect(send(ingest, 'dev-1', 'boot-b', 'reading', 0, LEDGER_B, readingT)).toMatchObject({ ok: false, reason: 'replay' });
    expect(send(ingest, 'dev-1', 'boot-a', 'reading', 5, [glucose(106, T0 + 300_000)], readingT)).toMatchObject({ ok: true, result: { inserted: 1, conflicts: [] } });
    store.close();
    const again = exportEdgeResources(dir);
    const again1 = observations(again).filter((o) => identifierOf(o).startsWith('dev-1/'));
    expect(again1.map(valueOf).sort((a, b) => a - b)).toEqual([61, 62, 63, 101, 102, 103, 104, 105, 106]);
    expect(again1.filter((o) => valueOf(o) < 100).map((o) => o.id)).toEqual(imported.map((o) => o.id));
  });

  it('a store of schema 2 (before settlements) is listed read-only, then migrated by the first settlement', async () => {
    const dir = tempDir();
    storeWithConflicts(dir);
    // What the previous build leaves: schema 2, no settlement table (nor the later duplicate_device_ids, boot_watch, duplicate_releases, boot_records).
    const db = new Database(edgeDatabasePath(dir));
    db.exec(`DROP TRIGGER conflicts_kept; DROP TRIGGER conflicts_unchanged; DROP TRIGGER conflict_resolutions_final_update;
      DROP TRIGGER conflict_resolutions_final_delete; DROP TABLE conflict_resolutions; DROP TABLE duplicate_device_ids; DROP TABLE boot_watch;
      DROP TABLE duplicate_releases; DROP TABLE boot_records; DROP INDEX conflicts_device_boot; PRAGMA user_version = 2;`);
    db.close();
    const version = () => {
      const d = new Database(edgeDatabasePath(dir), { readonly: true });
      const v = d.pragma('user_version', { simple: true });
      d.close();
      return v;
    };
    expect((await listJson(['--data', dir])).map((e) => e.status)).toEqual(['open', 'open', 'open', 'open', 'open']);
    expect((await medge(['edge', 'stats', '--data', dir])).stdout).toContain('SEQ CONFLICTS: 5 open, 0 resolved');
    expect(observations(exportEdgeResources(dir))).toHaveLength(7);
    expect(version()).toBe(2);

    const r = await resolve(dir, ['--id', '5'], 'import');
    expect(r.code, r.stderr).toBe(0);
    expect(version()).toBe(EDGE_MIGRATIONS.length);
    expect((await listJson(['--data', dir, '--device', 'dev-2'])).map((e) => [e.id, e.status, e.resolution?.operator])).toEqual([[5, 'resolved', 'R. Osei']]);
    expect(observations(exportEdgeResources(dir)).filter((o) => identifierOf(o).startsWith('dev-2/')).map(valueOf)).toEqual([140, 141, 99]);
  });
});
