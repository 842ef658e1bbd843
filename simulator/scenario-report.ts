/**
 * The scenario report: what the runtime STORED (read from its ledger, read-only) checked against
 * what the simulated devices SENT (`ScenarioExpectations`). Peers' own counters only say what was
 * sent and lost on the wire; every "stored" figure comes from the ledger's rows.
 *
 * Invariants (the issue's "Must pass"):
 * - each stored meter record appears exactly once with its meter sequence number and meter time;
 * - every sample of a replayed stream is stored exactly once, at the index the device's frames give
 *   it, except gap spans and samples lost around a power cycle; every gap span is accounted for by
 *   an injected fault (a frame damaged on the wire, samples dropped while unplugged, a counter
 *   jump), computed per acquisition (a `reset` restarts the device's counter);
 * - every damaged frame's exact bytes are in that sensor's quarantine;
 * - lead-off is stored as the front end reported it: every stored sample of a frame the device sent
 *   with a channel's lead-off bit (electrodes taken off, `faults.leadOff`) is flagged `leadOff`, and
 *   none outside them (a flag no injected lead-off explains);
 * - CGM notifications repeated by the device are stored once;
 * - the runtime never restarted (one `start` in the ledger's audit log, no unexpected exit).
 */
import { decodeBody } from '../device-sdk/proto/index.js';
import { meterRecordId, type Quarantined, type Reading, type RecordKind, type StreamChunk } from '../device-sdk/records.js';
import { readAuditEntries, readLedgerBodies, withReadOnlyDatabase } from '../device-sdk/store/sqlite-outbox-store.js';
import { frameDigest, type LostSpan } from './devices/stream-device.js';
import type { ScenarioExpectations, StreamExpectation, ValueExpectation } from './scenario-runner.js';

/** Decoded bodies of one record kind, optionally only those tagged `tag` (the sensor). */
function readBodies<K extends 'chunk' | 'reading' | 'quarantine'>(ledger: string, kind: K, tag?: string): ReturnType<typeof decodeBody<K>>[] {
  // Bodies are sealed at rest: readLedgerBodies opens them with the device key beside the ledger.
  return readLedgerBodies(ledger, kind as RecordKind, tag === undefined ? {} : { tag }).map((r) => decodeBody(kind as RecordKind, r.body) as ReturnType<typeof decodeBody<K>>);
}

/** What the device did to the samples of a gap: damaged a frame on the wire, lost it unplugged, or skipped its counter. */
export type GapCause = 'corrupted' | 'truncated' | 'unplugged' | 'counter-jump';

export interface StreamGap {
  channel: number;
  /** Stream index (the runtime's `StreamChunk.firstSample`) of the first missing sample. */
  firstSample: number;
  samples: number;
  /** The injected faults that account for it (none for an unexplained gap). */
  causes: GapCause[];
}

export interface UnexplainedGap extends StreamGap {
  /** Samples of the gap that no fault accounts for: the device sent them intact, or no frame of it had that index. */
  samplesWithoutCause: number;
}

/** One acquisition of a stream device: its first, then one per power cycle (unplug `reset`, CLOCK_RESET). */
export interface AcquisitionReport {
  /** Index in the recording of its first sample set. */
  sourceIndex: number;
  /** The stream index at which the runtime continues it (null: no frame of it arrived intact). */
  firstIndex: number | null;
  /**
   * Samples (all channels) lost where the acquisition ended or restarted (frames damaged or dropped
   * after its last intact frame or before its first): the host cannot see them as a gap, because
   * the stream index continues across a CLOCK_RESET.
   */
  samplesLostAtRestart: number;
}

export interface StreamReport {
  sensor: string;
  channels: number;
  /** Samples (all channels) of the replayed span. */
  samplesExpected: number;
  /** Distinct samples stored (all channels) at an index where the device sent one. */
  samplesStored: number;
  /** Samples stored more than once. */
  duplicateSamples: number;
  /** Samples stored at an index where the device sent none (inside a counter jump, or outside every frame). */
  unexpectedSamples: number;
  /** Samples of the span missing from the stored stream (all channels), in gap spans per channel. */
  gapSamples: number;
  /** Samples (all channels) lost at an acquisition restart, not visible as a gap (`acquisitions`). */
  samplesLostAtRestart: number;
  /** Stream indices (all channels) the device skipped with a counter jump: gaps that never held samples. */
  counterSkipSamples: number;
  gapCount: number;
  /** The first gap spans (at most 20), per channel. */
  gaps: StreamGap[];
  /** Gaps per cause; a gap with two causes (a damaged frame next to an unplug) counts under both. */
  gapsByCause: Record<GapCause, number>;
  /** Gaps with samples that no injected fault accounts for. */
  unexplainedGaps: number;
  /** The first of them (at most 20). */
  unexplained: UnexplainedGap[];
  acquisitions: AcquisitionReport[];
  /** Frames the device damaged on the wire (corrupted + truncated), by its own account. */
  framesDamaged: number;
  framesDroppedWhileUnplugged: number;
  counterJumps: number;
  /** Quarantine records of this sensor, and their bytes. */
  quarantinedRecords: number;
  quarantinedBytes: number;
  /** Damaged frames whose exact bytes are in this sensor's quarantine. */
  damagedFramesInQuarantine: number;
  /** Damaged frames whose bytes are not (first 20). */
  damagedFramesNotInQuarantine: { seq: number; sourceIndex: number }[];
  /**
   * Quarantine records holding more than one damaged frame (first 20; `record`: position among this
   * sensor's records, `seqs`: the frames' seq): the framer quarantines a run of bytes from one
   * failed frame start to the next, and a frame whose damaged byte is in its sync word or header (or
   * a truncated frame shorter than a header) is no frame start, so its bytes join the record of
   * the damaged frame right before it. Then `quarantinedRecords` < `framesDamaged`.
   */
  quarantineRecordsWithSeveralFrames: { record: number; seqs: number[] }[];
  /** Damaged frames whose bytes span two quarantine records (a false frame start inside them). */
  damagedFramesSplitAcrossRecords: number;
  /** Quarantined bytes of this sensor that belong to no damaged frame (e.g. a frame cut by an unplug). */
  quarantinedBytesOfNoDamagedFrame: number;
  /** DATA frames the device sent with lead-off bits (electrodes taken off), whatever their fate. */
  leadOffFrames: number;
  /** Samples (all channels) stored with `leadOff` where the device had sent the channel's lead-off bit. */
  leadOffSamplesFlagged: number;
  /** Samples stored with `leadOff` where the device had not: no injected lead-off explains them. */
  leadOffSamplesUnexplained: number;
  /** Samples stored without `leadOff` from frames the device sent with the channel's lead-off bit. */
  leadOffSamplesUnflagged: number;
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

/** A piece of what the device did with its recording, in source order: frames sent intact or lost, and counter jumps. */
interface Segment {
  kind: 'intact' | GapCause;
  /** Index in the recording of its first sample set. */
  sourceIndex: number;
  /** Device counter of its first sample set. */
  counter: number;
  /** Sample sets (counter values for a jump). */
  samples: number;
}

/** An index range of the stored stream and what the device put there. */
interface IndexSpan {
  from: number;
  to: number;
  kind: Segment['kind'];
}

/**
 * Where each sample the device sent should be in the runtime's stream, per acquisition (the
 * device's account: `acquisitions`, lost spans, `counterJumps`). Stream index contract
 * (`StreamChunk.firstSample`, §5.4): the first frame the host sees anchors the index at its
 * counter; after a CLOCK_RESET the index continues after the last DATA frame received. So within an
 * acquisition, index = counter + a constant, and the frames lost after an acquisition's last intact
 * frame and before the next one's first cannot be seen as a gap: they are counted as lost at the restart.
 */
function expectedIndices(e: StreamExpectation): { spans: IndexSpan[]; acquisitions: AcquisitionReport[]; leadOff: LeadOffIndexSpan[] } {
  const n = e.samplesPerChannel;
  const acquisitions = (e.acquisitions.length > 0 ? [...e.acquisitions] : [{ sourceIndex: 0, firstSample: 0 }]).sort((a, b) => a.sourceIndex - b.sourceIndex);
  const acquisitionOf = (sourceIndex: number) => {
    let k = 0;
    while (k + 1 < acquisitions.length && acquisitions[k + 1]!.sourceIndex <= sourceIndex) k += 1;
    return k;
  };
  const lost = new Map<number, { kind: GapCause; span: LostSpan }>();
  for (const [kind, spans] of [['corrupted', e.corrupted], ['truncated', e.truncated], ['unplugged', e.droppedWhileUnplugged]] as const) for (const span of spans) lost.set(span.sourceIndex, { kind, span });
  const jumps = e.counterJumps.map((j) => ({ ...j, acquisition: j.acquisition ?? acquisitionOf(j.sourceIndex) }));
  const cuts = [...new Set([0, n, ...acquisitions.map((a) => a.sourceIndex), ...jumps.map((j) => j.sourceIndex), ...[...lost.values()].flatMap(({ span }) => [span.sourceIndex, span.sourceIndex + span.samples])])]
    .filter((x) => x >= 0 && x <= n)
    .sort((a, b) => a - b);
  const counterAt = (sourceIndex: number, k: number) => {
    const a = acquisitions[k]!;
    return a.firstSample + (sourceIndex - a.sourceIndex) + jumps.filter((j) => j.acquisition === k && j.sourceIndex <= sourceIndex).reduce((x, j) => x + j.samples, 0);
  };
  const segments: Segment[][] = acquisitions.map(() => []);
  for (let i = 0; i + 1 < cuts.length; i++) {
    const from = cuts[i]!;
    const k = acquisitionOf(from);
    for (const j of jumps) if (j.sourceIndex === from && j.acquisition === k) segments[k]!.push({ kind: 'counter-jump', sourceIndex: from, counter: counterAt(from, k) - j.samples, samples: j.samples });
    const l = lost.get(from);
    if (l) segments[k]!.push({ kind: l.kind, sourceIndex: from, counter: l.span.firstSample, samples: l.span.samples });
    else segments[k]!.push({ kind: 'intact', sourceIndex: from, counter: counterAt(from, k), samples: cuts[i + 1]! - from });
  }
  const visible = segments.map((list, k) => (list.some((x) => x.kind === 'intact') ? k : -1)).filter((k) => k >= 0);
  if (visible.length === 0) visible.push(0);
  const spans: IndexSpan[] = [];
  const leadOff: LeadOffIndexSpan[] = [];
  const report: AcquisitionReport[] = acquisitions.map((a) => ({ sourceIndex: a.sourceIndex, firstIndex: null, samplesLostAtRestart: 0 }));
  let end: number | undefined;
  for (const [k, list] of segments.entries()) {
    const v = visible.indexOf(k);
    const firstIntact = list.findIndex((x) => x.kind === 'intact');
    const lastIntact = list.findLastIndex((x) => x.kind === 'intact');
    const offset = v <= 0 || end === undefined ? 0 : end - list[firstIntact]!.counter;
    for (const [i, seg] of list.entries()) {
      const seen = v >= 0 && (v === 0 || i >= firstIntact) && (v === visible.length - 1 || i <= lastIntact);
      if (!seen) {
        if (seg.kind !== 'counter-jump') report[k]!.samplesLostAtRestart += seg.samples * e.channels;
        continue;
      }
      spans.push({ from: seg.counter + offset, to: seg.counter + offset + seg.samples, kind: seg.kind });
      if (seg.kind !== 'intact') continue;
      // Samples of frames sent intact with lead-off bits, at the indices the runtime stores them.
      for (const f of e.leadOff ?? []) {
        const a = Math.max(f.sourceIndex, seg.sourceIndex);
        const b = Math.min(f.sourceIndex + f.samples, seg.sourceIndex + seg.samples);
        if (a < b) leadOff.push({ from: seg.counter + offset + a - seg.sourceIndex, to: seg.counter + offset + b - seg.sourceIndex, kind: 'intact', channels: f.channels });
      }
    }
    if (v >= 0 && firstIntact >= 0) {
      report[k]!.firstIndex = list[firstIntact]!.counter + offset;
      end = list[lastIntact]!.counter + offset + list[lastIntact]!.samples;
    }
  }
  return { spans: spans.sort((a, b) => a.from - b.from), acquisitions: report, leadOff: leadOff.sort((a, b) => a.from - b.from) };
}

/** Stream indices of samples the device sent with the lead-off bits `channels`. */
interface LeadOffIndexSpan extends IndexSpan {
  channels: number;
}

/** Per channel: stored samples flagged lead-off where the device said so, flagged where it did not, and not flagged where it did. */
function leadOffReport(chunks: readonly StreamChunk[], expected: readonly LeadOffIndexSpan[], channels: number): { flagged: number; unexplained: number; unflagged: number } {
  let flagged = 0;
  let unexplained = 0;
  let unflagged = 0;
  for (let c = 0; c < channels; c++) {
    const off = expected.filter((x) => ((x.channels >>> c) & 1) === 1);
    for (const ch of chunks) {
      if (ch.channel !== c || ch.samples.length === 0) continue;
      const n = ch.samples.length;
      const inside = n - overlap(off, ch.firstSample, ch.firstSample + n).uncovered;
      if (ch.leadOff) {
        flagged += inside;
        unexplained += n - inside;
      } else unflagged += inside;
    }
  }
  return { flagged, unexplained, unflagged };
}

/** Index (into sorted, non-overlapping `spans`) of the first span ending after `at`. */
function firstEndingAfter(spans: readonly { to: number }[], at: number): number {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (spans[mid]!.to <= at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** What of `[from, to)` each kind of span covers, and how much no span covers. */
function overlap(spans: readonly IndexSpan[], from: number, to: number): { byKind: Map<Segment['kind'], number>; uncovered: number } {
  const byKind = new Map<Segment['kind'], number>();
  let covered = 0;
  for (let i = firstEndingAfter(spans, from); i < spans.length && spans[i]!.from < to; i++) {
    const s = spans[i]!;
    const len = Math.min(to, s.to) - Math.max(from, s.from);
    if (len <= 0) continue;
    byKind.set(s.kind, (byKind.get(s.kind) ?? 0) + len);
    covered += len;
  }
  return { byKind, uncovered: to - from - covered };
}

/**
 * Finds each damaged frame's exact bytes (by `digest`) in the sensor's quarantined bytes, in wire
 * order: at the end of the previous one found, or at the start of one of the next records.
 */
function attributeQuarantine(records: readonly Uint8Array[], damaged: readonly LostSpan[]) {
  const starts: number[] = [];
  let total = 0;
  for (const r of records) {
    starts.push(total);
    total += r.length;
  }
  const stream = new Uint8Array(total);
  records.forEach((r, i) => stream.set(r, starts[i]));
  const ends = starts.map((s, i) => ({ to: s + records[i]!.length }));
  const recordAt = (pos: number) => firstEndingAfter(ends, pos);
  const found: { at: number; bytes: number; seq: number }[] = [];
  const missing: LostSpan[] = [];
  let cursor = 0;
  for (const d of [...damaged].sort((a, b) => a.sourceIndex - b.sourceIndex)) {
    const next = firstEndingAfter(ends, cursor);
    const candidates = [cursor, ...starts.slice(next, next + 9).filter((s) => s > cursor)];
    const at = d.digest === undefined ? undefined : candidates.find((p) => p + d.bytes <= total && frameDigest(stream.subarray(p, p + d.bytes)) === d.digest);
    if (at === undefined) missing.push(d);
    else {
      found.push({ at, bytes: d.bytes, seq: d.seq });
      cursor = at + d.bytes;
    }
  }
  const perRecord = new Map<number, number[]>();
  let split = 0;
  for (const f of found) {
    const r = recordAt(f.at);
    perRecord.set(r, [...(perRecord.get(r) ?? []), f.seq]);
    if (f.bytes > 0 && recordAt(f.at + f.bytes - 1) !== r) split += 1;
  }
  return {
    found: found.length,
    missing,
    recordsWithSeveralFrames: [...perRecord.entries()].filter(([, seqs]) => seqs.length > 1).map(([record, seqs]) => ({ record, seqs })),
    split,
    bytesOfNoFrame: total - found.reduce((a, f) => a + f.bytes, 0),
  };
}

function streamReport(ledger: string, e: StreamExpectation): StreamReport {
  const chunks = readBodies(ledger, 'chunk', e.sensor) as StreamChunk[];
  const quarantined = readBodies(ledger, 'quarantine').filter((q) => (q as Quarantined).source === e.sensor) as Quarantined[];
  const { spans, acquisitions, leadOff } = expectedIndices(e);
  const lo = spans[0]?.from ?? 0;
  const hi = spans.reduce((a, s) => Math.max(a, s.to), lo);
  let stored = 0;
  let unexpected = 0;
  let duplicates = 0;
  let gapSamples = 0;
  let counterSkip = 0;
  const gaps: UnexplainedGap[] = [];
  for (let c = 0; c < e.channels; c++) {
    // The stored index ranges of this channel, merged; what is stored twice counts as duplicates.
    const ranges = chunks
      .filter((ch) => ch.channel === c && ch.samples.length > 0)
      .map((ch) => [ch.firstSample, ch.firstSample + ch.samples.length] as const)
      .sort((a, b) => a[0] - b[0]);
    const cover: [number, number][] = [];
    let reach = -Infinity;
    for (const [a, b] of ranges) {
      duplicates += Math.max(0, Math.min(b, reach) - a);
      if (b <= reach) continue;
      const from = Math.max(a, reach);
      const last = cover.at(-1);
      if (last && last[1] === from) last[1] = b;
      else cover.push([from, b]);
      reach = b;
    }
    for (const [a, b] of cover) {
      const o = overlap(spans, a, b);
      const atSamples = b - a - o.uncovered - (o.byKind.get('counter-jump') ?? 0);
      stored += atSamples;
      unexpected += b - a - atSamples;
    }
    // Gaps: what is not stored between the first and the last index the device's frames map to.
    let at = lo;
    for (const [a, b] of [...cover, [Infinity, Infinity] as const]) {
      const to = Math.min(a, hi);
      if (to > at) {
        const o = overlap(spans, at, to);
        const skip = o.byKind.get('counter-jump') ?? 0;
        const withoutCause = (o.byKind.get('intact') ?? 0) + o.uncovered;
        gapSamples += to - at - o.uncovered - skip;
        counterSkip += skip;
        const causes = (['corrupted', 'truncated', 'unplugged', 'counter-jump'] as const).filter((k) => (o.byKind.get(k) ?? 0) > 0);
        gaps.push({ channel: c, firstSample: at, samples: to - at, causes, samplesWithoutCause: withoutCause });
      }
      at = Math.max(at, b);
      if (at >= hi) break;
    }
  }
  const unexplained = gaps.filter((g) => g.samplesWithoutCause > 0);
  const gapsByCause: Record<GapCause, number> = { corrupted: 0, truncated: 0, unplugged: 0, 'counter-jump': 0 };
  for (const g of gaps) for (const k of g.causes) gapsByCause[k] += 1;
  const q = attributeQuarantine(
    quarantined.map((x) => x.bytes),
    [...e.corrupted, ...e.truncated],
  );
  const leadOffCounts = leadOffReport(chunks, leadOff, e.channels);
  return {
    sensor: e.sensor,
    channels: e.channels,
    samplesExpected: e.samplesPerChannel * e.channels,
    samplesStored: stored,
    duplicateSamples: duplicates,
    unexpectedSamples: unexpected,
    gapSamples,
    samplesLostAtRestart: acquisitions.reduce((a, x) => a + x.samplesLostAtRestart, 0),
    counterSkipSamples: counterSkip,
    gapCount: gaps.length,
    gaps: gaps.slice(0, 20).map(({ samplesWithoutCause: _, ...g }) => g),
    gapsByCause,
    unexplainedGaps: unexplained.length,
    unexplained: unexplained.slice(0, 20),
    acquisitions,
    framesDamaged: e.corrupted.length + e.truncated.length,
    framesDroppedWhileUnplugged: e.droppedWhileUnplugged.length,
    counterJumps: e.counterJumps.length,
    quarantinedRecords: quarantined.length,
    quarantinedBytes: quarantined.reduce((a, x) => a + x.bytes.length, 0),
    damagedFramesInQuarantine: q.found,
    damagedFramesNotInQuarantine: q.missing.slice(0, 20).map((d) => ({ seq: d.seq, sourceIndex: d.sourceIndex })),
    quarantineRecordsWithSeveralFrames: q.recordsWithSeveralFrames.slice(0, 20),
    damagedFramesSplitAcrossRecords: q.split,
    quarantinedBytesOfNoDamagedFrame: q.bytesOfNoFrame,
    leadOffFrames: (e.leadOff ?? []).length,
    leadOffSamplesFlagged: leadOffCounts.flagged,
    leadOffSamplesUnexplained: leadOffCounts.unexplained,
    leadOffSamplesUnflagged: leadOffCounts.unflagged,
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
    streamSamplesStoredOnce: streams.every((s) => s.duplicateSamples === 0 && s.unexpectedSamples === 0),
    streamSamplesComplete: streams.every((s) => s.samplesStored + s.gapSamples + s.samplesLostAtRestart === s.samplesExpected),
    gapsHaveInjectedCauses: streams.every((s) => s.unexplainedGaps === 0),
    damagedFramesInQuarantine: streams.every((s) => s.damagedFramesNotInQuarantine.length === 0),
    leadOffStoredAsReported: streams.every((s) => s.leadOffSamplesUnexplained === 0 && s.leadOffSamplesUnflagged === 0),
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
