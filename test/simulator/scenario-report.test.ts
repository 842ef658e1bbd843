import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Reading, StreamChunk } from '../../device-sdk/records.js';
import { Ledger } from '../../device-sdk/store/ledger.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import type { ScenarioExpectations } from '../../simulator/scenario-runner.js';
import { frameDigest } from '../../simulator/devices/stream-device.js';
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
/** The bytes of a damaged frame as the device wrote them (and the runtime quarantined them). */
const DAMAGED = Uint8Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff);

function expectations(overrides: Partial<ScenarioExpectations['streams'][number]> = {}): ScenarioExpectations {
  return {
    streams: [
      {
        sensor: 'ecg',
        kind: 'ecg',
        channels: 2,
        rateHz: 360,
        samplesPerChannel: 100,
        corrupted: [{ seq: 3, firstSample: 40, samples: 20, sourceIndex: 40, bytes: 100, digest: frameDigest(DAMAGED) }],
        truncated: [],
        droppedWhileUnplugged: [],
        acquisitions: [{ sourceIndex: 0, firstSample: 0 }],
        counterJumps: [],
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
      ledger.add('quarantine', { transport: 'serial:/dev/pts/9', source: 'ecg', t: 0, error: 'crc', bytes: DAMAGED });
      for (const n of [1, 2, 3]) ledger.add('reading', reading('meter', { meterRecord: n, tMeter: T0 + n * 3600_000 }));
      for (const n of [0, 5, 10]) ledger.add('reading', reading('cgm', { meterRecord: n }));
    });
    const r = buildScenarioReport({ scenario: 't', speed: 60, ledger: path, expected: expectations(), unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    expect(r.invariants).toEqual({
      meterRecordsStoredOnceWithSequenceAndTime: true,
      streamSamplesStoredOnce: true,
      streamSamplesComplete: true,
      gapsHaveInjectedCauses: true,
      damagedFramesInQuarantine: true,
      leadOffStoredAsReported: true,
      cgmDuplicatesStoredOnce: true,
      runtimeNeverRestarted: true,
    });
    expect(r.ok).toBe(true);
    expect([r.ecgSamplesExpected, r.ecgSamplesStored, r.ecgGapSamples, r.quarantinedFrames, r.meterRecords, r.cgmDuplicatesSuppressed, r.runtimeRestarts]).toEqual([200, 160, 40, 1, 3, 1, 0]);
    expect(r.streams[0]?.gaps).toEqual([
      { channel: 0, firstSample: 40, samples: 20, causes: ['corrupted'] },
      { channel: 1, firstSample: 40, samples: 20, causes: ['corrupted'] },
    ]);
    expect(r.streams[0]).toMatchObject({ quarantinedRecords: 1, damagedFramesInQuarantine: 1, damagedFramesNotInQuarantine: [], quarantinedBytesOfNoDamagedFrame: 0 });
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
      gapsHaveInjectedCauses: false,
      damagedFramesInQuarantine: false,
      cgmDuplicatesStoredOnce: false,
      runtimeNeverRestarted: false,
    });
    expect(r.streams[0]).toMatchObject({ duplicateSamples: 10, gapCount: 1, unexplainedGaps: 1, unexplained: [{ channel: 0, firstSample: 40, samples: 30, causes: ['corrupted'], samplesWithoutCause: 10 }] });
    // No quarantine record at all: the damaged frame's bytes are not where the runtime should have put them.
    expect(r.streams[0]).toMatchObject({ quarantinedRecords: 0, damagedFramesInQuarantine: 0, damagedFramesNotInQuarantine: [{ seq: 3, sourceIndex: 40 }] });
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

/**
 * A 1-channel device with frames of 10 sample sets replaying 200 sets (source index = position in
 * the recording; counter = the device's sample counter; index = the runtime's stream index):
 *
 *   source   counter  fate                      index
 *   0..9     0..9     intact                    0..9
 *   10..29   10..29   corrupted x2 (one record) gap 10..29
 *   30..49   30..49   intact                    30..49
 *   50..69   50..69   dropped (unplug 'drop')   gap 50..69
 *   70..89   70..89   intact                    70..89
 *   -        90..119  counter jump of 30        gap 90..119 (no samples)
 *   90..109  120..139 intact                    120..139
 *   110..119 140..149 dropped (unplug 'reset')  not visible: the index continues after the reset
 *   --- power cycle: CLOCK_RESET, counter from 0 ---
 *   120..129 0..9     dropped (host not back)   not visible
 *   130..149 10..29   intact                    140..159
 *   150..159 30..39   truncated                 gap 160..169
 *   160..199 40..79   intact                    170..209
 */
describe('scenario report: every gap by its injected cause, per acquisition', () => {
  const span = (seq: number, sourceIndex: number, firstSample: number, bytes = 0) => ({ seq, firstSample, samples: 10, sourceIndex, bytes, ...(bytes > 0 ? { digest: frameDigest(frameBytes(seq, bytes)) } : {}) });
  const frameBytes = (seq: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (seq * 31 + i) & 0xff);
  const expected = (): ScenarioExpectations => ({
    streams: [
      {
        sensor: 'ecg',
        kind: 'ecg',
        channels: 1,
        rateHz: 360,
        samplesPerChannel: 200,
        corrupted: [span(1, 10, 10, 40), span(2, 20, 20, 40)],
        truncated: [span(17, 150, 30, 9)],
        droppedWhileUnplugged: [span(5, 50, 50), span(6, 60, 60), span(14, 110, 140), span(0, 120, 0)],
        acquisitions: [
          { sourceIndex: 0, firstSample: 0 },
          { sourceIndex: 120, firstSample: 0 },
        ],
        counterJumps: [{ atSample: 90, samples: 30, sourceIndex: 90, acquisition: 0 }],
        unplugs: 2,
        vendorFramesSent: 0,
        stats: {} as ScenarioExpectations['streams'][number]['stats'],
      },
    ],
    values: [],
  });
  const one = (firstSample: number, n: number): StreamChunk => ({ ...chunk(0, firstSample, n) });
  /** What the runtime stores for that device when it loses nothing itself. */
  const stored: [number, number][] = [
    [0, 10],
    [30, 20],
    [70, 20],
    [120, 20],
    [140, 20],
    [170, 40],
  ];
  const quarantine = (bytes: Uint8Array) => ({ transport: 'serial:/dev/pts/9', source: 'ecg', t: 0, error: 'crc', bytes });
  const merged = new Uint8Array([...frameBytes(1, 40), ...frameBytes(2, 40)]);

  it('explains a drop, a reset and a counter jump, so the run passes, and says which damaged frames share a quarantine record', () => {
    const path = ledgerWith((ledger) => {
      for (const [a, n] of stored) ledger.add('chunk', one(a, n));
      ledger.add('quarantine', quarantine(merged));
      ledger.add('quarantine', quarantine(frameBytes(17, 9)));
    });
    const r = buildScenarioReport({ scenario: 't', speed: 60, ledger: path, expected: expected(), unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    const s = r.streams[0]!;
    expect(s.unexplained).toEqual([]);
    expect(s.gaps).toEqual([
      { channel: 0, firstSample: 10, samples: 20, causes: ['corrupted'] },
      { channel: 0, firstSample: 50, samples: 20, causes: ['unplugged'] },
      { channel: 0, firstSample: 90, samples: 30, causes: ['counter-jump'] },
      { channel: 0, firstSample: 160, samples: 10, causes: ['truncated'] },
    ]);
    expect(s).toMatchObject({
      samplesExpected: 200,
      samplesStored: 130,
      gapSamples: 50,
      samplesLostAtRestart: 20,
      counterSkipSamples: 30,
      duplicateSamples: 0,
      unexpectedSamples: 0,
      unexplainedGaps: 0,
      gapsByCause: { corrupted: 1, truncated: 1, unplugged: 1, 'counter-jump': 1 },
      acquisitions: [
        { sourceIndex: 0, firstIndex: 0, samplesLostAtRestart: 10 },
        { sourceIndex: 120, firstIndex: 140, samplesLostAtRestart: 10 },
      ],
      framesDamaged: 3,
      quarantinedRecords: 2,
      damagedFramesInQuarantine: 3,
      damagedFramesNotInQuarantine: [],
      quarantineRecordsWithSeveralFrames: [{ record: 0, seqs: [1, 2] }],
      damagedFramesSplitAcrossRecords: 0,
      quarantinedBytesOfNoDamagedFrame: 0,
    });
    expect(r.invariants).toMatchObject({ streamSamplesStoredOnce: true, streamSamplesComplete: true, gapsHaveInjectedCauses: true, damagedFramesInQuarantine: true });
    expect(r.ok).toBe(true);
  });

  it('fails on samples the runtime lost outside any fault, also next to a fault, on samples stored inside a counter jump, and on damaged bytes missing from quarantine', () => {
    const path = ledgerWith((ledger) => {
      ledger.add('chunk', one(0, 10));
      ledger.add('chunk', one(40, 10)); // 30..39 lost by the runtime, next to the damaged frames
      ledger.add('chunk', one(70, 20));
      ledger.add('chunk', one(100, 5)); // stored inside the counter jump: no sample was sent there
      ledger.add('chunk', one(120, 20));
      ledger.add('chunk', one(140, 20));
      ledger.add('chunk', one(170, 20)); // 190..209 lost by the runtime after the reset
      ledger.add('quarantine', quarantine(merged));
      ledger.add('quarantine', quarantine(Uint8Array.of(1, 2, 3))); // not the truncated frame's bytes
    });
    const r = buildScenarioReport({ scenario: 't', speed: 60, ledger: path, expected: expected(), unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    const s = r.streams[0]!;
    expect(s.unexplained).toEqual([
      { channel: 0, firstSample: 10, samples: 30, causes: ['corrupted'], samplesWithoutCause: 10 },
      { channel: 0, firstSample: 190, samples: 20, causes: [], samplesWithoutCause: 20 },
    ]);
    expect(s).toMatchObject({ unexplainedGaps: 2, unexpectedSamples: 5, damagedFramesInQuarantine: 2, damagedFramesNotInQuarantine: [{ seq: 17, sourceIndex: 150 }], quarantinedBytesOfNoDamagedFrame: 3 });
    expect(r.invariants).toMatchObject({ streamSamplesStoredOnce: false, gapsHaveInjectedCauses: false, damagedFramesInQuarantine: false, streamSamplesComplete: true });
    expect(r.ok).toBe(false);
  });
});

describe('scenario report: electrodes taken off (faults.leadOff)', () => {
  // Channel 0's electrodes off for the frame of samples 40..59 (sent intact, with its lead-off bit);
  // the frame 60..79 is damaged on the wire. Every sample is sent: lead-off is no gap.
  const flagged = (c: StreamChunk): StreamChunk => ({ ...c, leadOff: true });
  const expected = () =>
    expectations({
      corrupted: [{ seq: 4, firstSample: 60, samples: 20, sourceIndex: 60, bytes: 100, digest: frameDigest(DAMAGED) }],
      leadOff: [
        { seq: 3, sourceIndex: 40, samples: 20, channels: 0b01 },
        { seq: 4, sourceIndex: 60, samples: 20, channels: 0b01 },
      ],
    });

  it('holds when the runtime stored exactly those samples flagged: no gap, nothing unexplained', () => {
    const path = ledgerWith((ledger) => {
      ledger.add('chunk', chunk(0, 0, 40));
      ledger.add('chunk', flagged(chunk(0, 40, 20)));
      ledger.add('chunk', chunk(0, 80, 20));
      ledger.add('chunk', chunk(1, 0, 60));
      ledger.add('chunk', chunk(1, 80, 20));
      ledger.add('quarantine', { transport: 'serial:/dev/pts/9', source: 'ecg', t: 0, error: 'crc', bytes: DAMAGED });
    });
    const r = buildScenarioReport({ scenario: 't', speed: 60, ledger: path, expected: expected(), unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    expect(r.invariants).toMatchObject({ leadOffStoredAsReported: true, gapsHaveInjectedCauses: true, streamSamplesComplete: true });
    expect(r.streams[0]).toMatchObject({ leadOffFrames: 2, leadOffSamplesFlagged: 20, leadOffSamplesUnexplained: 0, leadOffSamplesUnflagged: 0, unexplainedGaps: 0, gapSamples: 40 });
  });

  it('fails when a lead-off the device reported is stored unflagged, or a flag no injected lead-off explains is stored', () => {
    const path = ledgerWith((ledger) => {
      ledger.add('chunk', chunk(0, 0, 40));
      ledger.add('chunk', chunk(0, 40, 20)); // the front end said lead-off: lost
      ledger.add('chunk', chunk(0, 80, 20));
      ledger.add('chunk', chunk(1, 0, 40));
      ledger.add('chunk', flagged(chunk(1, 40, 20))); // channel 1's electrodes were on
      ledger.add('chunk', chunk(1, 80, 20));
    });
    const r = buildScenarioReport({ scenario: 't', speed: 60, ledger: path, expected: expected(), unexpectedExits: 0, plannedStarts: 1, wallSeconds: 1 });
    expect(r.invariants.leadOffStoredAsReported).toBe(false);
    expect(r.streams[0]).toMatchObject({ leadOffSamplesFlagged: 0, leadOffSamplesUnexplained: 20, leadOffSamplesUnflagged: 20 });
  });
});
