/**
 * `ble-cgm`: a continuous glucose monitor (CGM Service 0x181F, CGMS 1.0.1) streaming CGM Measurement
 * 0x2AA7 notifications.
 *
 * Steps per connection: identify the CGM (Device Information Service 0x180A when offered, `readDeviceInformation`
 * as the glucose meter driver: see "Identity") → read CGM Feature 0x2AA8 (CGMS §3.2: bit 12 tells whether every record carries
 * an E2E-CRC; when the feature cannot be read, `e2eCrc` from the options decides) → read CGM Session
 * Start Time 0x2AAA (CGMS §3.5) → enable notifications on 0x2AA7 → one reading per record until the
 * link is lost.
 *
 * Sensor sessions: a record is identified by (session start, Time Offset), the time offset being
 * minutes since the session start (CGMS §3.1.1.4; it doubles as the record's sequence number). A
 * session start different from the last one read is a new sensor session (`sessionRestarts`): its
 * records are never taken for duplicates of the old session's, even when a sensor replaced within
 * its first day sends offsets below the old ones. Within a connection, a record whose time offset
 * is not above the highest seen makes the driver read 0x2AAA again before it is judged (once until
 * the next new record), so a sensor replaced without a disconnect is detected too. A session start
 * different only because the CGM's clock was reset also counts as a new session: its records are
 * delivered again rather than risk dropping new ones.
 * When 0x2AAA is absent, unreadable, undecodable (bytes quarantined with transport
 * `ble:<address>/2aaa`) or not set (date unknown), the last known session start is kept and the
 * state detail says `session start unknown (...)`: then records are told apart by their values.
 *
 * Repeats (`CgmResendJudge`, cgm-seen-records.ts): the driver holds the exact glucose value of each record handed over
 * at its offset. A record is dropped as a repeat only when `CGM_RESEND_RUN` (3) records in a row (ascending offsets)
 * equal the values held at their offsets; the first two are held back (not handed over) until then, and handed over
 * when the run breaks, after `CGM_RESEND_HOLD_MS` (30 s), on a lost link, a new session start, another CGM or a stop:
 * never lost, at worst stored twice. A shorter run that repeats the session's newest records (a CGM resending its
 * last record or two after a reconnect) is dropped when it ends (`tailRun`). A record with another value at a held offset is
 * never a repeat: a new sensor under the same key (the session's values forgotten; a run just before it, up to 32
 * records, handed over after all as the new sensor's first). An offset not held below the highest is a gap when 0x2AAA
 * was read on this link, else, more than a day below the highest, a new sensor (the day rule). QA before -> after
 * (real traces, hall2018, 2,000 swaps of 10-day sessions under one key): new records dropped 46 -> 0 (main: 0); a
 * sensor replaced within the old one's first day while the runtime was off, no 0x2AAA, no serial: 0 -> 120 of 120
 * stored (test/sensors/ble-cgm-firstday.test.ts). Left: a new sensor whose every record equals the old session's at the
 * same offsets until its offsets pass the old highest is indistinguishable from a resend (seen once in 40,000 swaps of
 * 1-day sessions: the same trace drawn twice).
 *
 * Identity: a record is (CGM, session start, Time Offset). The CGM is its serial number (DIS Serial Number String
 * 0x2A25, read at each connect) when it tells one that is no placeholder (`isPlaceholderSerial`: `0000000000`, `N/A`,
 * ...: no serial). A read that does not give the serial of the CGM on this sensor's link before is read again
 * (`identifyPeripheral`, `CGM_SERIAL_RULES`; "before" since its address may be new at each connection): the serial
 * before on a re-read is a garbled read of that CGM (QA: a garbled read stored 2 resent records twice); a serial read
 * twice in any order is believed; without two alike the first serial read, possibly another CGM (a record stored twice
 * rather than one lost; QA re-check: a replaced CGM whose re-read was disturbed had 3 of its 5 records dropped as the
 * old one's repeats, 1 stored under the old one's serial); a placeholder at every read is another CGM without a serial,
 * and a serial after a CGM that answered a placeholder is another CGM (`adoptDevice`); a refused read or an absent characteristic
 * is the CGM before (a refused read once gave its resent records a second identity: QA). The serial known is in
 * memory (`this.device`): after a runtime restart it is the serial of the newest stored reading (`recall`; none when
 * that reading had none, and then the first serial read is believed). Without serials the CGM is the
 * sensor's, as before serials were read (an address is no identity: a CGM may use a new random address per
 * connection). Two CGMs may report the same session start (a start the factory or the collector wrote, or none
 * readable) and the same offsets: another CGM under the same sensor name (another serial: a transmitter replaced,
 * or auto-detection finding another one) is never judged against the old one's records: its records are neither
 * taken for the old one's nor dropped as repeats (`deviceChanges`; the session start, the highest offset and the
 * record clock start anew). A reading of a CGM with a serial names it (context `meter`: address, `meterSerial`), so
 * its record id (records.ts `meterRecordId`: `sn:<serial>/<session start>/<offset>`, the FHIR `meter-sequence`
 * identifier) is unique across CGMs; without a serial the id is `<session start>/<offset>` as before. The serial is
 * never logged. A CGM without a serial replaced by another reporting the same session start has its records told
 * from the old one's by their values (see "Repeats").
 *
 * Duplicates are suppressed twice and counted (`duplicates`, also in the sensor state detail):
 * identical notification bytes within `dedupeWindowMs` (a retransmission) at the transport, and a
 * record repeating the one handed over at its (CGM, session start, time offset) (see "Repeats"; `CgmSeenRecords`: a
 * uint16 per time offset of each of the `CGM_SEEN_SESSIONS` (8) sessions used last, whole sessions whatever their
 * interval: 40 KB for 14 days, 128 KB at most), counting those the runtime stored in the 21 days before the newest
 * before a restart (`deps.storedCgmRecords`, at most 32,768 rows, taken before the first link: `recall`, which replays
 * them by the same rules and merges records stored before the first session start was read into that start's
 * session), so a CGM resending its backlog, even a whole 14-day session, after a power loss has each record stored
 * once (test/sensors/ble-cgm-restart.test.ts, 4,032 records at 5 min: all 4,032 stored twice before). A record of a
 * session no longer held (8 other sessions used since, or stored more than 21 days before the newest at a start) is
 * stored again when resent.
 *
 * Readings: type `glucose`, mg/dL (CGMS sends SFLOAT mg/dL), `meterRecord` = time offset, `tDevice` =
 * reception; context `source: cgm`, `sessionStart` when known (ISO 8601 local wall clock of the CGM,
 * with its UTC offset = time zone + DST when it sends them: the record's time is sessionStart +
 * meterRecord minutes), `measuredAt` (when this device dates the record: `CgmRecordClock`; records are handed over
 * 0.5 s after the last of a burst, `CGM_BURST_QUIET_MS`, so that a burst is dated by its newest), trend
 * ((mg/dL)/min), quality (%) and status flags when sent. `tMeter` is
 * not set: CGMs without a clock of their own report whatever start the collector or the factory
 * wrote, and the glucose monitor times readings by `tMeter` when present, so a wrong CGM clock
 * would move live readings into the past.
 * Undecodable bytes (bad size, CRC mismatch, reserved flags) and records without a finite glucose
 * value go to quarantine with transport `ble:<address>/2aa7`; in a notification of several records, a
 * record with a bad E2E-CRC alone (`decodeCgmMeasurementParts`), the others are read.
 */
import type { ClockTimer } from '../clock.js';
import { DecodeError } from '../errors.js';
import { CgmResendJudge, cgmHeldValue } from './cgm-seen-records.js';
import { CGM_MEASURED_AT } from './meter-time.js';
import {
  CGM_FEATURE_UUID,
  CGM_MEASUREMENT_UUID,
  CGM_SESSION_START_TIME_UUID,
  type CgmAnnunciationLayout,
  type CgmMeasurementRecord,
  type CgmSessionStartTime,
  decodeCgmFeature,
  decodeCgmMeasurementParts,
  decodeCgmSessionStartTime,
} from '../protocols/ble/cgm.js';
import { finiteValue } from '../protocols/ieee11073.js';
import { METER_NUMBERING_CONTEXT, type MeterIdentity, type Reading } from '../records.js';
import { BleError, type GattLink } from '../transport/ble.js';
import { BLE_CONNECTION_SCHEMA_PROPERTIES, type BleConnectionOptions, BleDriverBase, DEFAULT_BLE_CONNECTION_OPTIONS, type GattConnectorFactory, identifyPeripheral, type NoSerial, type SerialRules } from './ble-common.js';
import type { DriverDeps, DriverDescriptor } from './types.js';

export const CGM_SERVICE_UUID = 0x181f;

export interface BleCgmOptions extends BleConnectionOptions {
  /** Whether records carry an E2E-CRC when the CGM Feature cannot be read. */
  e2eCrc: boolean;
  /** Order of the annunciation octets (see protocols/ble/cgm.ts): `sig` or `nordic`. */
  annunciationLayout: CgmAnnunciationLayout;
}

export const DEFAULT_BLE_CGM_OPTIONS: Readonly<BleCgmOptions> = Object.freeze({
  ...DEFAULT_BLE_CONNECTION_OPTIONS,
  e2eCrc: true,
  annunciationLayout: 'sig',
});

/**
 * The CGM's reading of serial reads that do not settle it against the serial known (`identifyPeripheral`): nothing but
 * the serial tells a replaced CGM with the factory's session start from the old one, and a record stored twice is
 * better than one lost. Other serials, none twice (`B`, garbled, garbled; `B`, refused, refused): the first serial read,
 * possibly another CGM (QA: taken for the old one, 3 of the new one's 5 records lost); a placeholder answered: another
 * CGM, without a serial (QA: a CGM replaced by one answering `0000000000`, 3 of 5 lost); refused or absent: the known
 * CGM (QA: a refused read gave its resent records a second identity).
 */
const CGM_SERIAL_RULES: Readonly<SerialRules> = Object.freeze({ unconfirmed: 'first', unread: 'known' });

/**
 * Records held back as a possible resend (`CgmResendJudge`: fewer than `CGM_RESEND_RUN` repeats in a row) are handed
 * over after this long (ms) without the run being confirmed or broken, as on a lost link or a stop: never lost.
 */
export const CGM_RESEND_HOLD_MS = 30_000;
/**
 * A record is handed over once no other record has come for this long (ms): the records of a burst (stored
 * records sent oldest first when the CGM connects mid-session, or those missed during a link loss) are dated
 * together by the newest of them (`CgmRecordClock`). A live record waits this long; CGMs measure every 1-5 min.
 */
export const CGM_BURST_QUIET_MS = 500;
/** A burst longer than this is handed over in parts (more than 14 days of 5-minute records): bounded memory. */
const CGM_BURST_MAX_RECORDS = 4096;

/** A Session Start Time usable to tell sessions apart (its date is known). */
export interface BleCgmSessionStart {
  /** Identifies the session: the UTC start, or the wall clock when the zone is not known. */
  key: string;
  /** ISO 8601, with the UTC offset when the CGM sends its time zone and DST. */
  iso: string;
}

type SessionStartRead = { known: BleCgmSessionStart } | { unknown: string };

function knownSessionStart(v: CgmSessionStartTime): BleCgmSessionStart | undefined {
  const wall = v.startTime.epochMs;
  if (wall === undefined) return undefined;
  const local = new Date(wall).toISOString().slice(0, 19);
  if (v.utcMs === undefined) return { key: `local ${local}`, iso: local };
  const offset = (v.timeZoneMinutes ?? 0) + (v.dstOffsetMinutes ?? 0);
  const abs = Math.abs(offset);
  const zone = `${offset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return { key: `utc ${v.utcMs}`, iso: `${local}${zone}` };
}

/** The session start a stored reading names (`context.sessionStart`, the `iso` of `knownSessionStart`), with its key. */
function storedSessionStart(iso: string): BleCgmSessionStart {
  // With its UTC offset the key is the UTC start (wall clock - offset, as `utcMs`), else the wall clock.
  return { key: /[+-]\d\d:\d\d$/.test(iso) ? `utc ${Date.parse(iso)}` : `local ${iso}`, iso };
}

/** The key of a CGM in `seen`: `sn:<serial>` when it told one, else '' (the configured sensor's CGM). */
function deviceKeyOf(serial: string | undefined): string {
  return serial !== undefined ? `sn:${serial}` : '';
}

/** A sensor session's key in `seen`: `<CGM key> <session key>` (the session key '' when not known). */
function sessionKeyOf(deviceKey: string, start: BleCgmSessionStart | undefined): string {
  return `${deviceKey} ${start?.key ?? ''}`;
}

export class BleCgmDriver extends BleDriverBase<BleCgmOptions> {
  readonly driver = 'ble-cgm';
  readonly kind = 'cgm' as const;
  readonly rateUnit = 'readings/min' as const;
  /** `meterRecord` is the CGM Measurement's Time Offset, a uint16 of minutes (CGMS §3.1.1.4). */
  readonly meterRecordBits = 16;
  readonly nominalRate = 0.2;
  /** Records handed to the sink. */
  records = 0;
  /** Records dropped as duplicates by their (session start, time offset). */
  duplicateRecords = 0;
  private duplicateBytesBefore = 0;
  /** The records handed over, by `<CGM key> <session key>` and time offset (the sessions used last), and the current session's highest offset. */
  private readonly judge = new CgmResendJudge<HeldRecord>();
  private resendTimer: ClockTimer | undefined;
  /** New sensor sessions detected (a different Session Start Time, or time offsets restarting). */
  sessionRestarts = 0;
  /** The records stored before this start were taken (`recall`). */
  private recalled = false;
  /** Another CGM found on a link than the one before (another serial; a serial and none: `adoptDevice`). */
  deviceChanges = 0;
  /** The CGM on the link (see "Identity"); undefined before the first link. */
  private device: MeterIdentity | undefined;
  /** Whether a CGM on this driver told a serial (`adoptDevice`: a CGM telling one for the first time is the same). */
  private serialTold = false;
  /** Whether the CGM on the link, without a serial, answered its serial read at one of its links with something that identifies nothing (`NoSerial`). */
  private noSerialAnswered = false;
  /** The link whose records `onRecord` judged last: a record on another is the first judged on its link (`CgmResendJudge.tailRun`). */
  private judgedOnLink: GattLink | undefined;
  /** Addresses whose CGM told no serial: logged once. */
  private noSerialLogged = new Set<string>();
  private currentStart: BleCgmSessionStart | undefined;
  /** Whether 0x2AAA could be read on the current link (re-reads are tried only then). */
  private sessionStartReadable = false;
  private readonly recordClock = new CgmRecordClock();
  /** 0x2AAA was (re-)read since the last new record: no re-read before the next one. */
  private sessionStartConfirmed = false;
  /** Records of the current link, handled one after the other (a record may wait for a 0x2AAA read). */
  private queue: Promise<void> = Promise.resolve();
  private streamDetail = 'streaming';
  /** Records received but not yet dated and handed over: the burst still coming (see `CGM_BURST_QUIET_MS`). */
  private pending: PendingRecord[] = [];
  private pendingTimer: ClockTimer | undefined;

  constructor(sensor: string, options: BleCgmOptions, deps: DriverDeps, connectorFactory?: GattConnectorFactory) {
    super(sensor, CGM_SERVICE_UUID, options, deps, connectorFactory);
  }

  /** The session start last read from 0x2AAA (kept while it cannot be read); undefined before one was read. */
  get sessionStart(): BleCgmSessionStart | undefined {
    return this.currentStart;
  }

  /** Duplicates suppressed so far: identical notifications (transport) plus records already seen. */
  get duplicates(): number {
    return this.duplicateBytesBefore + (this.link?.duplicatesSuppressed ?? 0) + this.duplicateRecords;
  }

  private link: GattLink | undefined;

  protected async session(link: GattLink): Promise<void> {
    this.recall();
    if (this.link) this.duplicateBytesBefore += this.link.duplicatesSuppressed;
    this.link = link;
    // Records held back as a possible resend are handed over when the link is lost: never lost with it.
    void link.lost.then(() => {
      this.queue = this.queue.then(() => this.releaseHeld());
    });
    const { identity, noSerial } = await this.identify(link);
    this.adoptDevice(identity, noSerial);
    let e2eCrc = this.options.e2eCrc;
    if (link.hasCharacteristic(CGM_SERVICE_UUID, CGM_FEATURE_UUID)) {
      const bytes = await link.read(CGM_SERVICE_UUID, CGM_FEATURE_UUID);
      try {
        e2eCrc = decodeCgmFeature(bytes).e2eCrc;
      } catch (error) {
        this.quarantine(link, CGM_FEATURE_UUID, bytes, error);
      }
    }
    const read = await this.readSessionStart(link, e2eCrc);
    this.sessionStartReadable = 'known' in read;
    this.sessionStartConfirmed = true;
    if ('known' in read) this.useSessionStart(read.known);
    this.streamDetail = 'unknown' in read ? `streaming, session start unknown (${read.unknown}): new sensor sessions detected by time offsets only` : 'streaming';
    const options = { e2eCrc, annunciationLayout: this.options.annunciationLayout };
    await link.subscribe(CGM_SERVICE_UUID, CGM_MEASUREMENT_UUID, (bytes) => {
      // Each record on its own: one with a bad E2E-CRC is quarantined, the records beside it in the notification are read.
      const records: { record: CgmMeasurementRecord; bytes: Uint8Array }[] = [];
      for (const part of decodeCgmMeasurementParts(bytes, options)) {
        if ('error' in part) this.quarantine(link, CGM_MEASUREMENT_UUID, part.bytes, part.error);
        else records.push(part);
      }
      if (records.length === 0) return;
      this.queue = this.queue
        .then(async () => {
          for (const r of records) await this.onRecord(link, r.record, r.bytes, e2eCrc);
        })
        .catch((error: unknown) => this.deps.logger.error({ sensor: this.sensor, err: error instanceof Error ? error.message : String(error) }, 'CGM record handling failed'));
    });
    this.setDetail(this.streamDetail);
  }

  /**
   * Who the CGM on the link is (`identifyPeripheral` by `CGM_SERIAL_RULES`): its serial when it tells one that is no
   * placeholder. The serial known is the one of the CGM on this sensor's link before, `this.device` (an address is no
   * identity here; none after a restart): another serial is believed once read twice, or
   * when no re-read gives two alike nor the known one (a duplicate rather than a loss); a re-read giving the known one is
   * a garbled read of that CGM (QA: a garbled read gave the CGM's resent records a second identity). Refused or absent
   * while a serial is known: that CGM. A placeholder: a CGM without a serial. A lost link rejects.
   */
  private async identify(link: GattLink): Promise<{ identity: MeterIdentity; noSerial?: NoSerial }> {
    const log = { sensor: this.sensor, logger: this.deps.logger, noSerialLogged: this.noSerialLogged };
    const known = this.device?.serial;
    // Without a serial where one is known (a placeholder, empty, no text): another CGM (`adoptDevice`).
    const withoutSerial = known !== undefined ? 'taken for another CGM than the one known on this sensor' : 'the CGM is taken for this sensor\'s CGM';
    const names = { device: 'CGM', it: 'the CGM', withoutSerial };
    return identifyPeripheral(link, names, log, (characteristic, bytes, error) => this.quarantine(link, characteristic, bytes, error), known !== undefined ? { serial: known, where: 'on this sensor', ...CGM_SERIAL_RULES } : undefined);
  }

  /**
   * Once, before the first link: the records stored before this start (`deps.storedCgmRecords`: those of the 21 days
   * before the newest, by session) are taken as handed over, so that those the CGM resends when it reconnects after a
   * restart of the runtime are repeats (before: stored again). Each session's are taken in the order stored, by the day
   * rule as when they came (a new sensor under the same session key forgets the old one's). The CGM, session start and
   * highest time offset of the session stored last are taken as those of the link before, so a restart changes nothing
   * the driver judges by: another serial is another CGM, another session start a new session, a time offset more than a
   * day below the highest a new session unless it repeats the record held there.
   */
  private recall(): void {
    if (this.recalled) return;
    this.recalled = true;
    const stored = this.deps.storedCgmRecords?.(this.sensor) ?? [];
    const newest = stored.at(-1);
    if (newest === undefined) return;
    // The start each CGM's records were stored under last, as the live path had it: records stored before the first
    // start was read move to that start's session (`useSessionStart`), so a resend from offset 0 repeats them.
    const startOf = new Map<string, string | undefined>();
    for (const group of stored) {
      const device = deviceKeyOf(group.serial);
      const start = group.sessionStart === undefined ? undefined : storedSessionStart(group.sessionStart);
      const session = sessionKeyOf(device, start);
      if (start !== undefined && startOf.has(device) && startOf.get(device) === undefined) this.judge.seen.move(sessionKeyOf(device, undefined), session);
      if (start !== undefined || !startOf.has(device)) startOf.set(device, start?.key);
      this.judge.highest = this.judge.seen.highest(session);
      group.offsets.forEach((offset, i) => this.judge.replay(session, start !== undefined, offset, group.values[i] as number));
    }
    // Without a serial the CGM is the sensor's: its identity is only that it told none (no address is stored).
    this.device = { address: newest.address ?? '', ...(newest.serial !== undefined ? { serial: newest.serial } : {}) };
    this.currentStart = newest.sessionStart === undefined ? undefined : storedSessionStart(newest.sessionStart);
    // Whether a CGM stored without a serial answered a placeholder or did not answer is not stored: taken as answered,
    // so a CGM telling a serial after the restart is another CGM (its records judged apart: stored twice at worst, QA:
    // a CGM with a serial replacing a placeholder one across a restart had 6 of its 8 records dropped as repeats).
    if (newest.serial === undefined) this.noSerialAnswered = true;
    this.deps.logger.info({ sensor: this.sensor, ...this.judge.seen.size }, 'CGM records stored before the restart taken as handed over');
  }

  /**
   * The CGM on a new link (`noSerial`: what it did when it told no serial). The same one when both told the same serial,
   * or neither told one (without a serial the address is no identity: a CGM may use a new random address per
   * connection, and QA saw its resent records stored again), or when a CGM tells a serial, none was told before on this
   * driver and the CGM without one never answered its serial read (refused, or no such characteristic: the same CGM
   * telling its serial for the first time; its records seen move to the serial's keys). Otherwise another one (another
   * serial; a CGM without a serial after one with a serial, or the other way; a serial after a CGM that answered a
   * placeholder, an empty or no text: QA, a CGM answering `0000000000` replaced by one with a serial, same session
   * start, had 4 of the new one's 5 records dropped as repeats): the records still waiting are handed over as the old
   * one's, and its session start, highest offset and record clock are forgotten, so that its records are judged by its
   * own (its keys carry its serial, or none). Duplicates are possible, no loss.
   */
  private adoptDevice(next: MeterIdentity, noSerial: NoSerial | undefined): void {
    const previous = this.device;
    const before = this.deviceKey;
    const answeredBefore = this.noSerialAnswered;
    this.device = next;
    const serialToldBefore = this.serialTold || previous?.serial !== undefined;
    this.serialTold = serialToldBefore || next.serial !== undefined;
    const same = previous !== undefined && (previous.serial === next.serial || (previous.serial === undefined && !serialToldBefore && !answeredBefore));
    this.noSerialAnswered = (same && answeredBefore) || noSerial === 'answered';
    if (previous === undefined) return;
    if (same) {
      const after = this.deviceKey;
      if (after !== before) for (const k of this.judge.seen.keysStartingWith(`${before} `)) this.judge.seen.move(k, `${after}${k.slice(before.length)}`);
      return;
    }
    this.releaseHeld();
    this.handOver();
    this.deviceChanges += 1;
    this.currentStart = undefined;
    this.judge.highest = -1;
    this.recordClock.reset();
    this.deps.logger.warn({ sensor: this.sensor, address: next.address, previous: previous.address }, 'another CGM under this sensor: its records are judged apart from the previous one\'s');
  }

  /** The key of the CGM on the link in `seen` (`deviceKeyOf`). */
  private get deviceKey(): string {
    return deviceKeyOf(this.device?.serial);
  }

  /** The key of the current session in `seen` (`sessionKeyOf`). */
  private get sessionKey(): string {
    return sessionKeyOf(this.deviceKey, this.currentStart);
  }

  /** Session Start Time 0x2AAA of this link, or why it is not usable. A lost link rejects. */
  private async readSessionStart(link: GattLink, e2eCrc: boolean): Promise<SessionStartRead> {
    if (!link.hasCharacteristic(CGM_SERVICE_UUID, CGM_SESSION_START_TIME_UUID)) return { unknown: '0x2AAA absent' };
    let bytes: Uint8Array;
    try {
      bytes = await link.read(CGM_SERVICE_UUID, CGM_SESSION_START_TIME_UUID);
    } catch (error) {
      if (error instanceof BleError && error.code === 'disconnected') throw error;
      this.deps.logger.warn({ sensor: this.sensor, err: error instanceof Error ? error.message : String(error) }, 'CGM Session Start Time 0x2AAA not readable');
      return { unknown: `0x2AAA not readable: ${error instanceof BleError ? error.code : 'error'}` };
    }
    let value: CgmSessionStartTime;
    try {
      value = decodeCgmSessionStartTime(bytes, { e2eCrc });
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.quarantine(link, CGM_SESSION_START_TIME_UUID, bytes, error);
      return { unknown: '0x2AAA undecodable' };
    }
    const known = knownSessionStart(value);
    return known ? { known } : { unknown: '0x2AAA date not set' };
  }

  private useSessionStart(start: BleCgmSessionStart): void {
    const previous = this.currentStart;
    if (previous?.key === start.key) return;
    this.releaseHeld();
    this.currentStart = start;
    if (previous === undefined) {
      // The first start read (0x2AAA was unreadable until now): the records taken before it are taken as
      // this session's, so the ones the CGM resends after a reconnect stay duplicates.
      this.judge.seen.move(sessionKeyOf(this.deviceKey, undefined), sessionKeyOf(this.deviceKey, start));
      return;
    }
    this.sessionRestarts += 1;
    this.deps.logger.info({ sensor: this.sensor, from: previous.iso, to: start.iso }, 'CGM Session Start Time changed: a new sensor session');
    this.judge.highest = -1;
    this.handOver();
    this.recordClock.reset();
  }

  private async onRecord(link: GattLink, r: CgmMeasurementRecord, bytes: Uint8Array, e2eCrc: boolean): Promise<void> {
    if (this.isStopped || !this.sink) return;
    if (r.timeOffsetMinutes <= this.judge.highest && this.sessionStartReadable && !this.sessionStartConfirmed) {
      // A time offset not above the highest: a resent record, or a new sensor. 0x2AAA tells which.
      this.sessionStartConfirmed = true;
      try {
        const read = await this.readSessionStart(link, e2eCrc);
        if ('known' in read) this.useSessionStart(read.known);
      } catch (error) {
        this.deps.logger.warn({ sensor: this.sensor, err: error instanceof Error ? error.message : String(error) }, 'CGM Session Start Time 0x2AAA re-read failed; judging the record by its time offset');
      }
      if (this.isStopped || !this.sink) return;
    }
    const value = finiteValue(r.glucose);
    const offset = r.timeOffsetMinutes;
    const above = offset > this.judge.highest;
    const record: HeldRecord = { link, r, bytes, value, start: this.currentStart, device: this.device, now: this.deps.clock.now(), monotonic: this.deps.clock.monotonic() };
    // The session key tells sessions apart when 0x2AAA was read on this link (re-read above for an offset not above the highest).
    const known = this.sessionStartReadable && this.currentStart !== undefined;
    const judged = this.judge.judge(this.sessionKey, known, offset, cgmHeldValue(value), record, this.judgedOnLink !== link);
    this.judgedOnLink = link;
    for (const held of judged.release) this.accept(held);
    if (judged.recovered > 0) {
      // A run taken for a resend was a new sensor's first records (its next record has another value): handed over.
      this.deps.logger.warn({ sensor: this.sensor, records: judged.recovered }, 'CGM records taken for a resend were a new sensor\'s: handed over');
    }
    if (judged.newSession) {
      this.handOver();
      this.recordClock.reset();
      this.sessionRestarts += 1;
      this.deps.logger.info({ sensor: this.sensor, timeOffset: offset }, 'CGM record not the one held at its time offset, or time offsets restarted: a new sensor session');
    }
    if (above || judged.newSession) this.sessionStartConfirmed = false;
    if (judged.dropped > 0 || judged.recovered > 0) this.countRepeats(judged.dropped - judged.recovered);
    if (judged.handOver) this.accept(record);
    if (this.judge.holding === 0) {
      if (this.resendTimer) this.deps.clock.clearTimeout(this.resendTimer);
      this.resendTimer = undefined;
    } else if (this.resendTimer === undefined) {
      this.resendTimer = this.deps.clock.setTimeout(() => {
        this.resendTimer = undefined;
        this.queue = this.queue.then(() => this.releaseHeld());
      }, CGM_RESEND_HOLD_MS);
    }
  }

  /** Hands over the records held back as a possible resend (a timeout, a lost link, another session or CGM, a stop). */
  private releaseHeld(): void {
    if (this.resendTimer) this.deps.clock.clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
    const tail = this.judge.dropTail();
    if (tail > 0) this.countRepeats(tail);
    for (const held of this.judge.release()) this.accept(held);
  }

  /** Records dropped as repeats (negative: handed over after all), counted and shown in the state detail. */
  private countRepeats(records: number): void {
    this.duplicateRecords += records;
    this.setDetail(`${this.streamDetail}, ${this.duplicates} duplicates suppressed`);
  }

  /** A record judged new: quarantined without a glucose value, else waits for the end of its burst (`handOver`). */
  private accept(h: HeldRecord): void {
    const r = h.r;
    if (h.value === undefined) {
      this.quarantine(h.link, CGM_MEASUREMENT_UUID, h.bytes, new DecodeError('ble-cgm-measurement', `record at time offset ${r.timeOffsetMinutes} has no glucose value (${r.glucose.kind})`));
      return;
    }
    const context: Record<string, string> = { source: 'cgm' };
    if (h.start) context.sessionStart = h.start.iso;
    // The CGM named only by its serial: without one a record id is (session start, offset) as before serials were read,
    // since an address may change at each connection (a random address) and would give the same record another id.
    if (h.device?.serial !== undefined) {
      context[METER_NUMBERING_CONTEXT.meter] = h.device.address;
      context[METER_NUMBERING_CONTEXT.serial] = h.device.serial;
    }
    this.recordClock.observe(r.timeOffsetMinutes, h.monotonic);
    const trend = r.trend && finiteValue(r.trend);
    if (trend !== undefined) context.trendMgPerDlPerMin = String(trend);
    const quality = r.quality && finiteValue(r.quality);
    if (quality !== undefined) context.qualityPercent = String(quality);
    if (r.annunciation && r.annunciation.bits !== 0) {
      context.sensorStatus = Object.entries(r.annunciation)
        .filter(([, v]) => v === true)
        .map(([k]) => k)
        .join(',');
    }
    const reading: Reading = { sensor: this.sensor, type: 'glucose', value: h.value, unit: 'mg/dL', tDevice: h.now, meterRecord: r.timeOffsetMinutes, context };
    this.pending.push({ reading, offsetMinutes: r.timeOffsetMinutes, now: h.now, monotonic: h.monotonic });
    if (this.pendingTimer) this.deps.clock.clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    if (this.pending.length >= CGM_BURST_MAX_RECORDS) this.handOver();
    else this.pendingTimer = this.deps.clock.setTimeout(() => this.handOver(), CGM_BURST_QUIET_MS);
  }

  /** Dates the records received so far by the session bound they give together, and hands them to the sink. */
  private handOver(): void {
    if (this.pendingTimer) this.deps.clock.clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    const batch = this.pending;
    this.pending = [];
    for (const p of batch) {
      if (!this.sink) return;
      const context = p.reading.context ?? {};
      context[CGM_MEASURED_AT] = new Date(this.recordClock.dateOf(p.offsetMinutes, p.now, p.monotonic)).toISOString();
      this.records += 1;
      this.sink.reading({ ...p.reading, context });
    }
  }

  /** Hands over the records held back as a possible resend and those still waiting for the end of their burst, then stops. */
  override async stop(): Promise<void> {
    this.releaseHeld();
    this.handOver();
    await super.stop();
  }
}

/** A record as received, until it is judged new (`accept`) or a repeat: held back while a run of repeats is not confirmed. */
interface HeldRecord {
  link: GattLink;
  r: CgmMeasurementRecord;
  bytes: Uint8Array;
  value: number | undefined;
  /** The session start and CGM when it came. */
  start: BleCgmSessionStart | undefined;
  device: MeterIdentity | undefined;
  /** Wall and monotonic clocks at its arrival. */
  now: number;
  monotonic: number;
}

interface PendingRecord {
  reading: Reading;
  offsetMinutes: number;
  /** Wall and monotonic clocks at its arrival. */
  now: number;
  monotonic: number;
}

/**
 * When each CGM record was measured, by this device's clocks. A record cannot arrive before it is measured,
 * so the session's start is at most (arrival - time offset) of every record; the least such bound over the
 * session, kept on the monotonic clock (a wall-clock step moves nothing), dates each record at start +
 * offset. Live records arrive within seconds of being measured, so the bound is tight from the first one;
 * records missed during a link loss and sent in a burst at the reconnect get their own times back instead
 * of all the reconnect's (QA: a 35 min burst gave a false gap, a trend of -4,800 mg/dL/min and a forecast
 * of -143,858 mg/dL). The driver observes every record of a burst before it dates any (`observe`, then
 * `dateOf`), so stored records sent oldest first when the device connects mid-session are dated by the
 * newest of them, not each at its own arrival (QA: 24 `falling-fast` trends of about -5,000 mg/dL/min).
 * Independent of the CGM's own clock, which may be wrong.
 */
export class CgmRecordClock {
  private startMono: number | undefined;

  /** A new sensor session. */
  reset(): void {
    this.startMono = undefined;
  }

  /** Takes the bound a record arriving at `monotonic` gives on the session start. */
  observe(offsetMinutes: number, monotonic: number): void {
    const bound = monotonic - offsetMinutes * 60_000;
    if (this.startMono === undefined || bound < this.startMono) this.startMono = bound;
  }

  /** The device wall-clock time (ms) record `offsetMinutes` was measured, by the bounds observed so far, given the clocks at its arrival. */
  dateOf(offsetMinutes: number, now: number, monotonic: number): number {
    const start = this.startMono ?? monotonic - offsetMinutes * 60_000;
    return now - (monotonic - (start + offsetMinutes * 60_000));
  }

}

export const BLE_CGM_DRIVER: DriverDescriptor<BleCgmOptions> = {
  name: 'ble-cgm',
  kind: 'cgm',
  transport: 'ble',
  description: 'Continuous glucose monitor (CGM Service 0x181F): CGM Measurement with E2E-CRC, sensor sessions by Session Start Time, duplicates suppressed and counted',
  optionsSchema: {
    type: 'object',
    properties: {
      ...BLE_CONNECTION_SCHEMA_PROPERTIES,
      e2eCrc: { type: 'boolean' },
      annunciationLayout: { enum: ['sig', 'nordic'] },
    },
    additionalProperties: false,
  },
  defaults: DEFAULT_BLE_CGM_OPTIONS,
  create: (sensor, options, deps) => new BleCgmDriver(sensor, options, deps),
};
