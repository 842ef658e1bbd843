import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ClinicData } from './clinic-data.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 0, 1);
const glucose = (value: number) => ({ kind: 'reading' as const, tMs: T0, body: encodeBody('reading', { sensor: 'meter', type: 'glucose', value, unit: 'mg/dL', tDevice: T0 }) });

describe('ClinicData.recent', () => {
  it('pages back across the seq jump of a restart (wall-clock floor: about 6e10 seqs a minute)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-clinic-data-'));
    dirs.push(dir);
    const path = join(dir, 'ledger.sqlite');
    let store = new SqliteOutboxStore(path, { deviceId: 'ui-1', seqFloorClock: { now: () => T0 } });
    store.append([100, 101, 102].map(glucose));
    store.close();
    // Restarted a minute later: the seqs of the new records are 6e7 above the old ones.
    store = new SqliteOutboxStore(path, { deviceId: 'ui-1', seqFloorClock: { now: () => T0 + 60_000 } });
    store.append([103, 104].map(glucose));
    const data = new ClinicData(store);
    const values = (rows: { value: { value: number } }[]) => rows.map((r) => r.value.value);
    expect(values(data.recent('reading', 4))).toEqual([101, 102, 103, 104]);
    expect(values(data.recent('reading', 10))).toEqual([100, 101, 102, 103, 104]);
    expect(values(data.recent('reading', 2, (r) => r.value < 103))).toEqual([101, 102]);
    // scanLimit counts records read, not seqs: 3 records read reach back over the jump.
    expect(values(data.recent('reading', 10, () => true, 3))).toEqual([102, 103, 104]);
    store.close();
  });
});
