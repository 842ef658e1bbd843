import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Reading, StreamChunk } from '../../device-sdk/records.js';
import { Ledger } from '../../device-sdk/store/ledger.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import type { ScenarioExpectations } from '../../simulator/scenario-runner.js';
import { buildScenarioReport } from '../../simulator/scenario-report.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A real ledger file written through the runtime's own store and ledger classes. */
function ledgerWith(write: (ledger: Ledger, store: SqliteOutboxStore) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'medge-report-'));
  dirs.push(dir);
  const path = join(dir, 'ledger.sqlite');
  const store = new SqliteOutboxStore(path, { deviceId: 'sim-test' });
  const ledger = new Ledger(store, { clock: new VirtualClock() });
  store.appendAudit({ tMs: 0, actor: 'runtime', action: 'start', detail: 'boot 1' });
  write(ledger, store);
  ledger.flush();
  store.close();
  return path;
}

const chunk = (channel: number, firstSample: number, n: number): StreamChunk => ({
  sensor: 'ecg',
  channel,
  firstSample,
  t0: 0,
  rateHz: 360,
  unit: 'mV',
  gain: 200,
  samples: Int16Array.from({ length: n }, (_, i) => firstSample + i),
});

const reading = (sensor: string, extra: Partial<Reading>): Reading => ({ sensor, type: 'glucose', value: 100, unit: 'mg/dL', tDevice: 0, ...extra });

const T0 = Date.UTC(2026, 0, 1, 7);

function expectations(overrides: Partial<ScenarioExpectations['streams'][number]> = {}): ScenarioExpectations {
  return {
    streams: [
      {
        sensor: 'ecg',
        kind: 'ecg',
        channels: 2,
        rateHz: 360,
        samplesPerChannel: 100,
        corrupted: [{ seq: 3, firstSample: 40, samples: 20, sourceIndex: 40, bytes: 100 }],
        truncated: [],
        droppedWhileUnplugged: [],
        unplugs: 0,
        vendorFramesSent: 0,
        stats: {} as ScenarioExpectations['streams'][number]['stats'],
        ...overrides,
      },
    ],
    values: [
      { sensor: 'meter', kind: 'glucose-meter', records: [1, 2, 3].map((n) => ({ sequenceNumber: n, meterTimeMs: T0 + n * 3600_000, mgdl: 100 })), sent: 3, duplicatesSent: 1, linkDrops: 2 },
      { sensor: 'cgm', kind: 'cgm', records: [], sent: 3, duplicatesSent: 1, linkDrops: 0 },
    ],
  };
}

describe('scenario report from the ledger', () => {
  it('holds every invariant when the ledger has each sample, record and measurement once and gaps only where frames were damaged', () => {
    const path = ledgerWith((ledger) => {
      for (const c of [0, 1]) {
        ledger.add('chunk', chunk(c, 0, 40));
        ledger.add('chunk', chunk(c, 60, 40));
      }
      ledger.add('quarantine', { transport: 'serial:/dev/pts/9', source: 'ecg', t: 0, error: 'crc', bytes: new Uint8Array(100) });
      for (const n of [1, 2, 3]) ledger.add('reading', reading('meter', { meterRecord: n, tMeter: T0 + n * 3600_000 }));
      for (const n of [0, 5, 10]) ledger.add('reading', reading('cgm', { meterRecord: n }));
    });
    const r = buildScenarioReport({ scenario: 't', speed: 60, ledger: path, expected: expectations(), unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    expect(r.invariants).toEqual({
      meterRecordsStoredOnceWithSequenceAndTime: true,
      streamSamplesStoredOnce: true,
      streamSamplesComplete: true,
      gapsAreDamagedFramesInQuarantine: true,
      cgmDuplicatesStoredOnce: true,
      runtimeNeverRestarted: true,
    });
    expect(r.ok).toBe(true);
    expect([r.ecgSamplesExpected, r.ecgSamplesStored, r.ecgGapSamples, r.quarantinedFrames, r.meterRecords, r.cgmDuplicatesSuppressed, r.runtimeRestarts]).toEqual([200, 160, 40, 1, 3, 1, 0]);
    expect(r.streams[0]?.gaps).toEqual([
      { channel: 0, firstSample: 40, samples: 20 },
      { channel: 1, firstSample: 40, samples: 20 },
    ]);
  });

  it('fails each invariant that the ledger breaks', () => {
    const path = ledgerWith((ledger, store) => {
      ledger.add('chunk', chunk(0, 0, 40));
      ledger.add('chunk', chunk(0, 30, 10)); // stored twice
      ledger.add('chunk', chunk(0, 70, 30)); // 40..70 missing: only 40..60 was a damaged frame
      ledger.add('chunk', chunk(1, 0, 100));
      ledger.add('reading', reading('meter', { meterRecord: 1, tMeter: T0 + 3600_000 }));
      ledger.add('reading', reading('meter', { meterRecord: 1, tMeter: T0 + 3600_000 })); // stored twice
      ledger.add('reading', reading('meter', { meterRecord: 2, tMeter: T0 })); // wrong meter time; record 3 missing
      for (const n of [0, 5, 5, 10]) ledger.add('reading', reading('cgm', { meterRecord: n }));
      store.appendAudit({ tMs: 1, actor: 'runtime', action: 'start', detail: 'boot 2' });
    });
    const r = buildScenarioReport({ scenario: 't', speed: 60, ledger: path, expected: expectations(), unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    expect(r.ok).toBe(false);
    expect(r.invariants).toMatchObject({
      meterRecordsStoredOnceWithSequenceAndTime: false,
      streamSamplesStoredOnce: false,
      gapsAreDamagedFramesInQuarantine: false,
      cgmDuplicatesStoredOnce: false,
      runtimeNeverRestarted: false,
    });
    expect(r.streams[0]).toMatchObject({ duplicateSamples: 10, gapCount: 1, unexplainedGaps: 1, unexplained: [{ channel: 0, firstSample: 40, samples: 30 }] });
    expect(r.meters[0]).toMatchObject({ storedOnce: 0, missing: [3], duplicated: [1], wrongTime: [2] });
    expect(r.notifying[0]).toMatchObject({ stored: 4, duplicatesStored: 1, duplicatesSuppressed: 0 });
    expect(r.runtimeRestarts).toBe(1);
  });

  it('counts a CGM time offset repeated in a new sensor session (another sessionStart) as a new record, and repeated within one session as a duplicate', () => {
    const one = '2026-01-05T08:00:00+01:00';
    const two = '2026-01-05T09:00:00+01:00';
    const path = ledgerWith((ledger) => {
      for (const n of [0, 5, 10]) ledger.add('reading', reading('cgm', { meterRecord: n, context: { source: 'cgm', sessionStart: one } }));
      for (const n of [0, 5]) ledger.add('reading', reading('cgm', { meterRecord: n, context: { source: 'cgm', sessionStart: two } }));
    });
    const expected = { streams: [], values: [{ sensor: 'cgm', kind: 'cgm' as const, records: [], sent: 5, duplicatesSent: 0, linkDrops: 0 }] };
    const r = buildScenarioReport({ scenario: 't', speed: 60, ledger: path, expected, unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    expect(r.notifying[0]).toMatchObject({ sent: 5, stored: 5, duplicatesStored: 0 });
    expect(r.invariants.cgmDuplicatesStoredOnce).toBe(true);
    const twice = ledgerWith((ledger) => {
      for (const n of [0, 5, 5]) ledger.add('reading', reading('cgm', { meterRecord: n, context: { source: 'cgm', sessionStart: one } }));
    });
    const r2 = buildScenarioReport({ scenario: 't', speed: 60, ledger: twice, expected: { streams: [], values: [{ ...expected.values[0]!, sent: 2 }] }, unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    expect(r2.notifying[0]).toMatchObject({ stored: 3, duplicatesStored: 1 });
    expect(r2.invariants.cgmDuplicatesStoredOnce).toBe(false);
  });
});
