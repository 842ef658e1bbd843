/**
 * The scenario report: what the runtime STORED (read from its ledger, read-only) checked against
 * what the simulated devices SENT (`ScenarioExpectations`). Peers' own counters only say what was
 * sent and lost on the wire; every "stored" figure comes from the ledger's rows.
 *
 * Invariants (the issue's "Must pass"):
 * - each stored meter record appears exactly once with its meter sequence number and meter time;
 * - every sample of a replayed stream is stored exactly once, except gap spans, and every gap span
 *   is one the device damaged on the wire (corrupted/truncated frame) while raw bytes of that sensor
 *   sit in quarantine;
 * - CGM notifications repeated by the device are stored once;
 * - the runtime never restarted (one `start` in the ledger's audit log, no unexpected exit).
 */
import { decodeBody } from '../device-sdk/proto/index.js';
import { meterRecordId, type Quarantined, type Reading, type RecordKind, type StreamChunk } from '../device-sdk/records.js';
import { readAuditEntries, readLedgerBodies, withReadOnlyDatabase } from '../device-sdk/store/sqlite-outbox-store.js';
import type { ScenarioExpectations, StreamExpectation, ValueExpectation } from './scenario-runner.js';

/** Decoded bodies of one record kind, optionally only those tagged `tag` (the sensor). */
function readBodies<K extends 'chunk' | 'reading' | 'quarantine'>(ledger: string, kind: K, tag?: string): ReturnType<typeof decodeBody<K>>[] {
  // Bodies are sealed at rest: readLedgerBodies opens them with the device key beside the ledger.
  return readLedgerBodies(ledger, kind as RecordKind, tag === undefined ? {} : { tag }).map((r) => decodeBody(kind as RecordKind, r.body) as ReturnType<typeof decodeBody<K>>);
}

export interface StreamReport {
  sensor: string;
  channels: number;
  /** Samples (all channels) of the replayed span. */
  samplesExpected: number;
  /** Distinct samples stored (all channels). */
  samplesStored: number;
  /** Samples stored more than once. */
  duplicateSamples: number;
  /** Samples of the span not stored (all channels), as gap spans per channel. */
  gapSamples: number;
  gapCount: number;
  /** The first gap spans (at most 20), per channel. */
  gaps: { channel: number; firstSample: number; samples: number }[];
  /** Gap spans that match no frame the device damaged on the wire. */
  unexplainedGaps: number;
  /** The first of them (at most 20). */
  unexplained: { channel: number; firstSample: number; samples: number }[];
  /** Frames the device damaged (corrupted + truncated) and lost while unplugged, by its own account. */
  framesDamaged: number;
  framesDroppedWhileUnplugged: number;
  /** Quarantine records of this sensor, and their bytes. */
  quarantinedRecords: number;
  quarantinedBytes: number;
}

export interface MeterReport {
  sensor: string;
  expected: number;
  /** Records stored exactly once with the right sequence number and meter time. */
  storedOnce: number;
  missing: number[];
  duplicated: number[];
  wrongTime: number[];
  wrongValue: number[];
  linkDrops: number;
}

export interface NotifyReport {
  sensor: string;
  sent: number;
  stored: number;
  duplicatesSent: number;
  /** Readings stored more than once (same measurement). */
  duplicatesStored: number;
  /** Duplicates the device sent that were not stored. */
  duplicatesSuppressed: number;
}

export interface ScenarioReport {
  scenario: string;
  speed: number;
  ok: boolean;
  /** Each invariant with whether it held. */
  invariants: Record<string, boolean>;
  meterRecords: number;
  meterRecordsExpected: number;
  ecgSamplesExpected: number;
  ecgSamplesStored: number;
  ecgGapSamples: number;
  quarantinedFrames: number;
  cgmDuplicatesSuppressed: number;
  runtimeRestarts: number;
  streams: StreamReport[];
  meters: MeterReport[];
  notifying: NotifyReport[];
  /** Delivery to the embedded edge. */
  edge?: { drained: boolean; missingAtEdge: number; duplicatesAtEdge: number };
  wallSeconds: number;
}

function streamReport(ledger: string, e: StreamExpectation): StreamReport {
  const chunks = readBodies(ledger, 'chunk', e.sensor) as StreamChunk[];
  const quarantined = readBodies(ledger, 'quarantine').filter((q) => (q as Quarantined).source === e.sensor) as Quarantined[];
  const n = e.samplesPerChannel;
  let stored = 0;
  let duplicates = 0;
  const gaps: StreamReport['gaps'] = [];
  for (let c = 0; c < e.channels; c++) {
    const seen = new Uint8Array(n);
    for (const ch of chunks) {
      if (ch.channel !== c) continue;
      for (let i = 0; i < ch.samples.length; i++) {
        const k = ch.firstSample + i;
        if (k < 0 || k >= n) continue;
        if (seen[k]) duplicates += 1;
        else {
          seen[k] = 1;
          stored += 1;
        }
      }
    }
    for (let k = 0; k < n; ) {
      if (seen[k]) {
        k += 1;
        continue;
      }
      const from = k;
      while (k < n && !seen[k]) k += 1;
      gaps.push({ channel: c, firstSample: from, samples: k - from });
    }
  }
  // A gap is explained when it is covered by spans the device damaged on the wire (consecutive
  // damaged frames make one gap). Device counter = stream index: the peers start at sample 0.
  const damaged = [...e.corrupted, ...e.truncated].map((s) => [s.firstSample, s.firstSample + s.samples] as const);
  const covered = (from: number, to: number) => {
    let at = from;
    for (const [a, b] of [...damaged].sort((x, y) => x[0] - y[0])) if (a <= at && b > at) at = b;
    return at >= to;
  };
  const unexplained = gaps.filter((g) => !covered(g.firstSample, g.firstSample + g.samples));
  return {
    sensor: e.sensor,
    channels: e.channels,
    samplesExpected: n * e.channels,
    samplesStored: stored,
    duplicateSamples: duplicates,
    gapSamples: gaps.reduce((a, g) => a + g.samples, 0),
    gapCount: gaps.length,
    gaps: gaps.slice(0, 20),
    unexplainedGaps: unexplained.length,
    unexplained: unexplained.slice(0, 20),
    framesDamaged: e.corrupted.length + e.truncated.length,
    framesDroppedWhileUnplugged: e.droppedWhileUnplugged.length,
    quarantinedRecords: quarantined.length,
    quarantinedBytes: quarantined.reduce((a, q) => a + q.bytes.length, 0),
  };
}

function meterReport(ledger: string, e: ValueExpectation): MeterReport {
  const readings = readBodies(ledger, 'reading', e.sensor) as Reading[];
  const byRecord = new Map<number, Reading[]>();
  for (const r of readings) {
    if (r.meterRecord === undefined) continue;
    const list = byRecord.get(r.meterRecord) ?? [];
    list.push(r);
    byRecord.set(r.meterRecord, list);
  }
  const missing: number[] = [];
  const duplicated: number[] = [];
  const wrongTime: number[] = [];
  const wrongValue: number[] = [];
  let storedOnce = 0;
  for (const x of e.records) {
    const got = (byRecord.get(x.sequenceNumber) ?? []).filter((r) => r.type === 'glucose' || r.unit.toLowerCase().startsWith('mg'));
    const all = got.length > 0 ? got : (byRecord.get(x.sequenceNumber) ?? []);
    if (all.length === 0) missing.push(x.sequenceNumber);
    else if (all.length > 1) duplicated.push(x.sequenceNumber);
    const r = all[0];
    if (!r) continue;
    // BLE Date Time has 1 s resolution.
    const timeOk = r.tMeter !== undefined && Math.abs(r.tMeter - x.meterTimeMs) < 1000;
    const valueOk = Math.abs(toMgdl(r) - x.mgdl) <= 0.5;
    if (!timeOk) wrongTime.push(x.sequenceNumber);
    if (!valueOk) wrongValue.push(x.sequenceNumber);
    if (all.length === 1 && timeOk && valueOk) storedOnce += 1;
  }
  return { sensor: e.sensor, expected: e.records.length, storedOnce, missing, duplicated, wrongTime, wrongValue, linkDrops: e.linkDrops };
}

function toMgdl(r: Reading): number {
  const u = r.unit.toLowerCase();
  if (u === 'mmol/l') return r.value * 18.0182;
  if (u === 'kg/l') return r.value * 1e5;
  return r.value;
}

function notifyReport(ledger: string, e: ValueExpectation): NotifyReport {
  const readings = (readBodies(ledger, 'reading', e.sensor) as Reading[]).filter((r) => r.type !== 'heart-rate-derived');
  // A CGM's record number (time offset) repeats in each sensor session: the session start is part of its identity.
  const key = (r: Reading) => {
    const record = meterRecordId(r);
    return record !== undefined ? `r${record}` : r.tMeter !== undefined ? `t${r.tMeter}` : `d${r.tDevice}:${r.value}`;
  };
  const distinct = new Set(readings.map(key)).size;
  const duplicatesStored = readings.length - distinct;
  return { sensor: e.sensor, sent: e.sent, stored: readings.length, duplicatesSent: e.duplicatesSent, duplicatesStored, duplicatesSuppressed: Math.max(0, e.duplicatesSent - duplicatesStored) };
}

/** Readings stored for `sensor` so far (read-only; usable while the runtime runs). */
export function countReadings(ledger: string, sensor: string): number {
  return withReadOnlyDatabase(ledger, 'ledger', (db) => db.prepare('SELECT COUNT(*) FROM rec_reading WHERE tag = ?').pluck().get(sensor) as number);
}

/** Counts runtime boots in the ledger's audit log (one `start` per process start). */
export function runtimeStarts(ledger: string): number {
  return readAuditEntries(ledger).filter((a) => a.actor === 'runtime' && a.action === 'start').length;
}

export function buildScenarioReport(input: {
  scenario: string;
  speed: number;
  ledger: string;
  expected: ScenarioExpectations;
  /** Runtime processes that exited unexpectedly while the scenario ran (seen by the supervisor). */
  unexpectedExits: number;
  /** Runtime starts that belong to the harness itself (e.g. the drain-only start), not restarts. */
  plannedStarts: number;
  edge?: ScenarioReport['edge'];
  wallSeconds: number;
}): ScenarioReport {
  const { ledger, expected } = input;
  const streams = expected.streams.map((e) => streamReport(ledger, e));
  const meters = expected.values.filter((v) => v.kind === 'glucose-meter').map((e) => meterReport(ledger, e));
  const notifying = expected.values.filter((v) => v.kind !== 'glucose-meter').map((e) => notifyReport(ledger, e));
  const ecg = streams.filter((s) => expected.streams.find((e) => e.sensor === s.sensor)?.kind === 'ecg');
  const quarantinedFrames = withReadOnlyDatabase(ledger, 'ledger', (db) => db.prepare('SELECT COUNT(*) FROM rec_quarantine').pluck().get() as number);
  const starts = runtimeStarts(ledger);
  const runtimeRestarts = Math.max(input.unexpectedExits, starts - input.plannedStarts);
  const cgm = notifying.filter((n) => expected.values.find((v) => v.sensor === n.sensor)?.kind === 'cgm');
  const invariants: Record<string, boolean> = {
    meterRecordsStoredOnceWithSequenceAndTime: meters.every((m) => m.storedOnce === m.expected && m.expected > 0),
    streamSamplesStoredOnce: streams.every((s) => s.duplicateSamples === 0),
    streamSamplesComplete: streams.every((s) => s.samplesStored + s.gapSamples === s.samplesExpected),
    gapsAreDamagedFramesInQuarantine: streams.every((s) => s.unexplainedGaps === 0 && (s.gapCount === 0 || s.quarantinedRecords > 0)),
    cgmDuplicatesStoredOnce: cgm.every((c) => c.duplicatesStored === 0 && c.stored === c.sent),
    runtimeNeverRestarted: runtimeRestarts === 0,
  };
  if (input.edge) invariants.edgeHasEverything = input.edge.drained && input.edge.missingAtEdge === 0 && input.edge.duplicatesAtEdge === 0;
  return {
    scenario: input.scenario,
    speed: input.speed,
    ok: Object.values(invariants).every(Boolean),
    invariants,
    meterRecords: meters.reduce((a, m) => a + m.storedOnce, 0),
    meterRecordsExpected: meters.reduce((a, m) => a + m.expected, 0),
    ecgSamplesExpected: ecg.reduce((a, s) => a + s.samplesExpected, 0),
    ecgSamplesStored: ecg.reduce((a, s) => a + s.samplesStored, 0),
    ecgGapSamples: ecg.reduce((a, s) => a + s.gapSamples, 0),
    quarantinedFrames,
    cgmDuplicatesSuppressed: cgm.reduce((a, c) => a + c.duplicatesSuppressed, 0),
    runtimeRestarts,
    streams,
    meters,
    notifying,
    ...(input.edge ? { edge: input.edge } : {}),
    wallSeconds: input.wallSeconds,
  };
}
