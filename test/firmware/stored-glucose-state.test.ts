// What the runtime reads back from its ledger at start for the glucose analyses (`storedGlucoseState`), on a
// real encrypted SQLite ledger holding months of other records: the meters' highest record numbers, and the
// last day's readings and alerts of the replayed sensors, in the order they were stored. QA: it opened and
// scanned every stored reading and alert: 300k heart-rate readings (3.5 days at one a second) added 2.5 s to
// every start of a runtime with a glucose source.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBody, encodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Reading } from '../../device-sdk/records.js';
import type { OutboxStore, StoredRecord } from '../../device-sdk/store/outbox-store.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { createDeviceKey } from '../../device-sdk/security/device-key.js';
import { storedGlucoseState } from '../../firmware/runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('stored-glucose-state');
const NOW = Date.UTC(2026, 11, 7);
const MIN = 60_000;
const SINCE = NOW - 1440 * MIN;

/** Counts the bodies a store opens (the records its reads return). */
function counting(store: OutboxStore): { store: OutboxStore; opened: () => number } {
  let opened = 0;
  const count = (rows: StoredRecord[]) => {
    opened += rows.length;
    return rows;
  };
  const wrapped = Object.create(store) as OutboxStore;
  wrapped.readAfter = (...args) => count(store.readAfter(...args));
  wrapped.readMatching = (...args) => count(store.readMatching(...args));
  return { store: wrapped, opened: () => opened };
}

describe('storedGlucoseState on an encrypted SQLite ledger', () => {
  it('returns the meters’ record numbers and the last day of the replayed sensors, opening no older or other sensor’s record', () => {
    const dir = tempDir();
    const store = new SqliteOutboxStore(join(dir, 'ledger.db'), { deviceId: 'dev-glu', encryption: { suite: 'aes-256-gcm', deviceKey: createDeviceKey(join(dir, 'device.key')) } });
    try {
      // 3 days, one record a minute each: a meter (record numbers), a CGM, a heart rate; an alert an hour.
      const readings: Reading[] = [];
      const alerts: Alert[] = [];
      for (let m = 3 * 1440; m > 0; m--) {
        const t = NOW - m * MIN;
        const batch: Reading[] = [
          { sensor: 'meter', type: 'glucose', value: 100 + (m % 7), unit: 'mg/dL', tDevice: t, meterRecord: 5000 - m },
          { sensor: 'cgm', type: 'glucose', value: 120 + (m % 5), unit: 'mg/dL', tDevice: t, tMeter: t },
          { sensor: 'hr', type: 'heart-rate', value: 70, unit: '/min', tDevice: t },
        ];
        readings.push(...batch);
        store.append(batch.map((r) => ({ kind: 'reading', tMs: t, tag: r.sensor, body: encodeBody('reading', r) })));
        if (m % 60 === 0) {
          const a: Alert = { kind: m % 120 === 0 ? 'hyperglycaemia-sustained' : 'ecg-no-beats', severity: 2, t, sensor: m % 120 === 0 ? 'cgm' : 'hr', message: 'm' };
          alerts.push(a);
          store.append([{ kind: 'alert', tMs: t, tag: a.kind, body: encodeBody('alert', a) }]);
        }
      }
      const { store: s, opened } = counting(store);
      const state = storedGlucoseState(s, { meters: { meter: 16 }, replayed: ['meter', 'cgm'] }, SINCE);
      expect(state.meterRecords.last('meter')?.record).toBe(4999);
      const want = readings.filter((r) => (r.sensor === 'meter' || r.sensor === 'cgm') && r.tDevice >= SINCE);
      expect(state.readings).toEqual(want);
      expect(state.alerts.map((a) => [a.kind, a.sensor, a.t])).toEqual(alerts.filter((a) => a.sensor === 'cgm' && a.t >= SINCE).map((a) => [a.kind, a.sensor, a.t]));
      // The meter's 3 days (its record numbers), the CGM's last day, the last day's alerts: nothing else.
      expect(opened()).toBe(3 * 1440 + 1440 + 24);
      // Decoded as stored.
      expect(decodeBody('reading', store.readMatching('reading', { tags: ['cgm'] }, 0, 1)[0]!.body)).toEqual(readings[1]);
    } finally {
      store.close();
    }
  });
});
