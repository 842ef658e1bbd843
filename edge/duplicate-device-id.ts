import { MedgeError } from '../device-sdk/errors.js';

export interface DuplicateDeviceIdOptions {
  /** A boot of a deviceId is forgotten when none of its batches arrived for this long (edge ms). */
  windowMs: number;
  /** The switches of a deviceId are logged at most once this long (ms): QA's two boards switched hundreds of times in 30 s. */
  logRepeatMs: number;
  /**
   * Switches back between the same two boots, each within `windowMs` of the one before, that prove two live boards
   * (with `proofSpanMs`). A reboot gives none; a reboot with one late batch of the old boot gives two.
   */
  proofSwitchBacks: number;
  /** The first and the last of those switches back are at least this far apart (ms): late deliveries of a gone boot come in one burst. */
  proofSpanMs: number;
  /**
   * How long a proven pair stands while one of its boots is silent (ms). A board cut off by its link keeps its place
   * this long (a village link down for hours or days is normal; before, it lost its place after `windowMs` and the
   * other board's batches were stored); past it, the incumbent silent, the refused board takes over (the board it
   * replaced is taken as gone for good), or the refused board silent, the proof is dropped. An operator decides with
   * `medge edge duplicates release` (`EdgeStore.releaseDuplicate`, `BootWatchState.hold`): then this hold no longer applies.
   */
  holdMs: number;
}

export const DEFAULT_DUPLICATE_DEVICE_ID_OPTIONS: Readonly<DuplicateDeviceIdOptions> = Object.freeze({
  windowMs: 5 * 60_000,
  logRepeatMs: 10 * 60_000,
  proofSwitchBacks: 4,
  proofSpanMs: 60_000,
  holdMs: 7 * 24 * 3_600_000,
});

/** Counter (in `rejected`) of batches that switched back to another live boot of their deviceId. */
export const DUPLICATE_DEVICE_ID = 'duplicate-device-id';

/** Counter (in `rejected`) of batches refused because another live boot holds their deviceId (`Ack.refused` says so). */
export const DEVICE_ID_IN_USE = 'device-id-in-use';

/** Bound on the boots remembered per deviceId (without TLS anyone can publish under any id and any boot id). */
const MAX_BOOTS = 8;
/** How long after a boot was found gone its batches with new records are taken for late ones (ms): a reboot's in-flight batches arrive within seconds. */
export const LATE_BATCH_GRACE_MS = 60_000;

/** How many batches of new records a boot found gone may still send after `LATE_BATCH_GRACE_MS` (a broker's queue delivered late) before it is taken as running on. */
export const MAX_LATE_BATCHES = 3;

/** Bound on the gone boots remembered per deviceId (a batch may carry records of many earlier boots). */
const MAX_GONE = 32;

/**
 * What the edge store keeps per deviceId (as JSON in `boot_watch`), so that every ingest worker on a shared
 * subscription sees every batch. Times are edge wall-clock ms (`Clock.now`): workers may be separate processes.
 */
export interface BootWatchState {
  /** Boot of the last batch stored (a replay or a refused batch leaves it). */
  last: string;
  /**
   * Boots heard within `windowMs`: when last (a refused batch counts: its board is alive), and since when their
   * batches have been stored without a break (null while refused). The boot with the earlier `sinceMs` is the incumbent.
   */
  boots: Record<string, { lastMs: number; sinceMs: number | null }>;
  /**
   * Boots known to be gone, with when that was learnt: a later boot of the same ledger sent records they made (a
   * reboot resends the unacknowledged records of the boot before, under their own boot id; two boards never send
   * each other's records). Their late batches are stored and never counted as switches. Absent in older rows.
   */
  gone?: Record<string, number>;
  /** Per gone boot, its batches of new records after `LATE_BATCH_GRACE_MS` (`MAX_LATE_BATCHES`). Absent in older rows. */
  lateBatches?: Record<string, number>;
  /** The two boots of the current run of switches back (sorted), how many, the first and the last. */
  pair: [string, string] | null;
  switchBacks: number;
  firstSwitchMs: number;
  lastSwitchMs: number | null;
  /** Once proven: the boot that keeps syncing and the boot whose batches are refused, and since when. */
  incumbent: string | null;
  intruder: string | null;
  provenMs: number | null;
  /**
   * An operator's release (`releaseProof`): 'kept' (`--keep`), the proof stands until released again, whatever the
   * silence of either boot (QA: the old board powered up 8 days after `--keep` had 80,000 records stored before it was
   * proven again); 'released' (no `--keep`), the proof ends once the incumbent has been silent for `windowMs` (QA: the
   * still-running refused board's backlog, 79,950 records in 80 s, was stored before the pair was proven again).
   * Absent: the edge's own proof, held `holdMs`.
   */
  hold?: 'kept' | 'released';
  /** Batches refused per boot (`DEVICE_ID_IN_USE`), so that a turned-round pair's earlier refusals stay with the boot they refused. Absent in older rows. */
  refusedBy?: Record<string, number>;
  /** Switches back since the last one that was logged, and when that was. */
  unlogged: number;
  loggedAt: number | null;
}

/** A batch that switched back to another live boot of its deviceId. */
export interface BootSwitch {
  bootIds: [previous: string, current: string];
  /** Switches back of this deviceId since the last one to log, this one included; undefined: not to be logged yet. */
  toLog: number | undefined;
}

/** Two live boots proven under one deviceId: from the next batch on, the intruder's are refused. */
export interface DeviceIdProof {
  incumbent: string;
  intruder: string;
  switchBacks: number;
  /** From the first switch back of the run to the proof (ms). */
  spanMs: number;
}

/**
 * `state` with every time later than `now` taken as `now`: the edge's clock was set back (the times are wall clock,
 * workers may be separate processes). Without it a step back of an hour kept a refused board refused for an hour
 * and five minutes after the incumbent went silent (QA re-check).
 */
function clamped(state: BootWatchState, now: number): BootWatchState {
  const at = (t: number) => Math.min(t, now);
  const atOrNull = (t: number | null) => (t === null ? null : Math.min(t, now));
  return {
    ...state,
    boots: Object.fromEntries(Object.entries(state.boots).map(([b, v]) => [b, { lastMs: at(v.lastMs), sinceMs: atOrNull(v.sinceMs) }])),
    gone: Object.fromEntries(Object.entries(state.gone ?? {}).map(([b, t]) => [b, at(t)])),
    firstSwitchMs: at(state.firstSwitchMs),
    lastSwitchMs: atOrNull(state.lastSwitchMs),
    provenMs: atOrNull(state.provenMs),
    loggedAt: atOrNull(state.loggedAt),
  };
}

/** `state` without its proof (and the operator's hold of it). */
function endProof(state: BootWatchState): void {
  state.incumbent = null;
  state.intruder = null;
  state.provenMs = null;
  delete state.hold;
}

/**
 * A copy of `state` without the boots silent for longer than `windowMs` (the two boots of a proven pair: `holdMs`;
 * kept by an operator: never), and without a proof one of whose boots is silent for longer than `holdMs` (kept by an
 * operator: never; released by one: the incumbent silent for `windowMs`).
 */
function expire(stored: BootWatchState, now: number, o: DuplicateDeviceIdOptions): BootWatchState {
  const state = clamped(stored, now);
  const proven = new Set([state.incumbent, state.intruder]);
  const kept = state.hold === 'kept' && state.incumbent !== null;
  const heldFor = (b: string) => (!proven.has(b) ? o.windowMs : kept ? Number.POSITIVE_INFINITY : Math.max(o.windowMs, o.holdMs));
  const boots = Object.fromEntries(Object.entries(state.boots).filter(([b, v]) => now - v.lastMs <= heldFor(b)));
  const gone = Object.fromEntries(Object.entries(state.gone ?? {}).filter(([, at]) => now - at <= o.windowMs));
  const next: BootWatchState = { ...state, boots, gone };
  // The incumbent silent for the hold: the refused board is taken as its replacement. The refused board silent: fixed.
  const incumbentHeard = next.incumbent !== null && next.incumbent in boots;
  const released = next.hold === 'released' && incumbentHeard && now - (boots[next.incumbent as string] as { lastMs: number }).lastMs > o.windowMs;
  if (next.incumbent !== null && (!incumbentHeard || released || next.intruder === null || !(next.intruder in boots))) endProof(next);
  if (next.pair !== null && (!next.pair.every((b) => b in boots) || (next.lastSwitchMs !== null && now - next.lastSwitchMs > o.windowMs))) {
    next.pair = null;
    next.switchBacks = 0;
  }
  return next;
}

/**
 * Marks the boots whose records a batch of `bootId` carries as gone (see `BootWatchState.gone`): a run of switches
 * with one of them ends, and a proven incumbent or intruder among them is succeeded by `bootId` (a board that
 * reboots keeps its side), unless `bootId` is the other proven boot (then they were one board: the proof ends).
 */
function noteSuccession(state: BootWatchState, bootId: string, carried: readonly string[], now: number): void {
  for (const boot of carried.slice(0, MAX_GONE)) {
    if (boot === bootId || boot === '') continue;
    state.gone = { ...state.gone, [boot]: now };
    const before = state.boots[boot];
    if (before) {
      const { [boot]: _, ...rest } = state.boots;
      // The successor is the same board: it keeps the time since which its batches have been stored.
      state.boots = bootId in rest ? rest : { ...rest, [bootId]: { lastMs: now, sinceMs: before.sinceMs } };
    }
    if (state.last === boot) state.last = bootId;
    if (state.incumbent === boot || state.intruder === boot) {
      const other = state.incumbent === boot ? state.intruder : state.incumbent;
      if (other === bootId) {
        // The two proven boots are one ledger: a reboot after all, not two boards.
        endProof(state);
      } else if (state.incumbent === boot) state.incumbent = bootId;
      else {
        state.intruder = bootId;
        state.boots = { ...state.boots, [bootId]: { lastMs: now, sinceMs: null } };
      }
    }
    if (state.pair?.includes(boot)) {
      state.pair = null;
      state.switchBacks = 0;
    }
  }
  const gone = Object.entries(state.gone ?? {});
  if (gone.length > MAX_GONE) state.gone = Object.fromEntries(gone.sort((x, y) => y[1] - x[1]).slice(0, MAX_GONE));
}

/**
 * Whether a batch of boot `bootId` is to be refused before anything of it is stored: two live boots of its
 * deviceId were proven (`observeBoot`) and this is the one that is not the incumbent. `carried`: the boot ids of
 * the batch's records (a reboot resends the boot before's records: that boot is gone, `BootWatchState.gone`).
 * Returns the state to keep (the refused boot is still heard: its board is alive, so the proof stands while it
 * keeps sending).
 */
export function admitBoot(
  stored: BootWatchState | undefined,
  bootId: string,
  now: number,
  o: DuplicateDeviceIdOptions,
  carried: readonly string[] = [],
): { state: BootWatchState | undefined; refuse: boolean } {
  if (bootId === '' || !stored) return { state: stored, refuse: false };
  const state = expire(stored, now, o);
  noteSuccession(state, bootId, carried, now);
  if (state.intruder !== bootId) return { state, refuse: false };
  state.boots = { ...state.boots, [bootId]: { lastMs: now, sinceMs: null } };
  const refusedBy = Object.entries({ ...state.refusedBy, [bootId]: (state.refusedBy?.[bootId] ?? 0) + 1 });
  // The most recently refused boots last (bounded: anyone can publish under any boot id without TLS).
  state.refusedBy = Object.fromEntries([...refusedBy.filter(([b]) => b !== bootId), ...refusedBy.filter(([b]) => b === bootId)].slice(-MAX_BOOTS));
  return { state, refuse: true };
}

/**
 * Tells two boards running under one deviceId from a board that rebooted, after a batch of boot `bootId` was
 * stored (not for a replay: a QoS-1 redelivery of a gone boot's batch says nothing about it being alive). A
 * reboot switches a deviceId's batches from one boot to the next once; two boards with one id switch back and
 * forth, because each one's MQTT session evicts the other's and the evicted board reconnects. A batch whose
 * boot differs from the previous batch's, when both boots were heard within `windowMs`, is a switch back.
 * `proofSwitchBacks` of them between the same two boots spanning `proofSpanMs` prove two live boards: the
 * boot whose batches have been stored the longer without a break is the incumbent, the other the intruder.
 */
export function observeBoot(
  stored: BootWatchState | undefined,
  bootId: string,
  now: number,
  o: DuplicateDeviceIdOptions,
): { state: BootWatchState; switched?: BootSwitch; proven?: DeviceIdProof } {
  if (!stored) {
    const state: BootWatchState = {
      last: bootId,
      boots: { [bootId]: { lastMs: now, sinceMs: now } },
      pair: null,
      switchBacks: 0,
      firstSwitchMs: now,
      lastSwitchMs: null,
      incumbent: null,
      intruder: null,
      provenMs: null,
      unlogged: 0,
      loggedAt: null,
      gone: {},
    };
    return { state };
  }
  const state = expire(stored, now, o);
  // A late batch of a boot known to be gone (a rebooted board's): stored, not a sign of a second board. More than
  // `MAX_LATE_BATCHES` batches of new records from it longer than `LATE_BATCH_GRACE_MS` after it was found gone are
  // not late: the board runs on, and the boot that resent its records was a copy of its ledger (a backup restored on
  // a spare board, a copied SD card; QA: 20 min of two such boards alternating went uncounted, each batch renewing the mark).
  const goneAt = state.gone?.[bootId];
  if (goneAt !== undefined) {
    const late = (state.lateBatches?.[bootId] ?? 0) + (now - goneAt > LATE_BATCH_GRACE_MS ? 1 : 0);
    if (late <= MAX_LATE_BATCHES) {
      state.lateBatches = { ...state.lateBatches, [bootId]: late };
      return { state };
    }
    const { [bootId]: _, ...rest } = state.gone ?? {};
    const { [bootId]: __, ...lateRest } = state.lateBatches ?? {};
    state.gone = rest;
    state.lateBatches = lateRest;
  }
  const previous = state.last;
  const switchedBack = previous !== bootId && bootId in state.boots && previous in state.boots;
  state.boots = { ...state.boots, [bootId]: { lastMs: now, sinceMs: state.boots[bootId]?.sinceMs ?? now } };
  state.last = bootId;
  const heard = Object.entries(state.boots);
  if (heard.length > MAX_BOOTS) {
    const keep = new Set([bootId, previous, state.incumbent, state.intruder]);
    const oldest = heard.filter(([b]) => !keep.has(b)).sort((x, y) => x[1].lastMs - y[1].lastMs)[0];
    if (oldest) delete state.boots[oldest[0]];
  }
  if (!switchedBack) return { state };
  const pair = [previous, bootId].sort() as [string, string];
  if (state.pair === null || state.pair[0] !== pair[0] || state.pair[1] !== pair[1]) {
    state.pair = pair;
    state.switchBacks = 0;
    state.firstSwitchMs = now;
  }
  state.switchBacks += 1;
  state.lastSwitchMs = now;
  let proven: DeviceIdProof | undefined;
  if (state.incumbent === null && state.switchBacks >= o.proofSwitchBacks && now - state.firstSwitchMs >= o.proofSpanMs) {
    const since = (b: string) => state.boots[b]?.sinceMs ?? now;
    // Established first; on a tie the one this batch switched away from.
    const [incumbent, intruder] = since(bootId) < since(previous) ? [bootId, previous] : [previous, bootId];
    state.incumbent = incumbent;
    state.intruder = intruder;
    state.provenMs = now;
    proven = { incumbent, intruder, switchBacks: state.switchBacks, spanMs: now - state.firstSwitchMs };
  }
  state.unlogged += 1;
  const due = state.loggedAt === null || now - state.loggedAt >= o.logRepeatMs;
  if (!due) return { state, switched: { bootIds: [previous, bootId], toLog: undefined }, proven };
  const toLog = state.unlogged;
  state.unlogged = 0;
  state.loggedAt = now;
  return { state, switched: { bootIds: [previous, bootId], toLog }, proven };
}

/**
 * A replay (every record already stored) of boot `bootId`. It proves nothing (a QoS-1 redelivery of a rebooted board's
 * old boot is one), so it never counts toward a proof; but a board with nothing new still resends its newest
 * acknowledged record at each connect, so a boot heard within `windowMs` and not gone is kept heard (QA re-check: an
 * idle incumbent lost its place after `windowMs` and the refused board's backlog was stored), and replays alternating
 * between two live boots mark a switch for the acks' `otherBootLive` (two idle boards under one id, which send nothing
 * else, raise `sync-device-id-in-use` as before the boot watch moved into the store).
 */
export function hearReplay(state: BootWatchState | undefined, bootId: string, now: number): BootWatchState | undefined {
  if (!state || bootId === '' || !(bootId in state.boots) || (state.gone && bootId in state.gone)) return state;
  const before = state.boots[bootId] as { lastMs: number; sinceMs: number | null };
  const alternated = state.last !== bootId && state.last in state.boots && !(state.gone && state.last in state.gone);
  return {
    ...state,
    boots: { ...state.boots, [bootId]: { ...before, lastMs: Math.max(before.lastMs, now) } },
    // `last` stays the boot of the last batch stored: a replay never makes the next stored batch a switch back.
    ...(alternated ? { lastSwitchMs: now } : {}),
  };
}

/**
 * Whether the acks of the deviceId are to say `otherBootLive`: its batches switched back between two live boots
 * within `windowMs`, or two live boots are proven and the refused one was heard within `windowMs` (a proof held
 * across its silence says nothing about it being live).
 */
export function otherBootLive(state: BootWatchState | undefined, now: number, o: DuplicateDeviceIdOptions): boolean {
  if (!state) return false;
  const refusedHeard = state.intruder !== null && now - (state.boots[state.intruder]?.lastMs ?? Number.NEGATIVE_INFINITY) <= o.windowMs;
  return (state.incumbent !== null && refusedHeard) || (state.lastSwitchMs !== null && now - state.lastSwitchMs <= o.windowMs);
}

/** Why an operator's release of a device id's proof was refused (`EdgeStore.releaseDuplicate`). */
export type DuplicateReleaseProblem = 'not-proven' | 'unknown-boot' | 'bad-release';

/** An operator's release that cannot be done: `problem` says why, `deviceId` which device id it was about. */
export class DuplicateReleaseError extends MedgeError {
  readonly problem: DuplicateReleaseProblem;
  readonly deviceId: string;
  constructor(problem: DuplicateReleaseProblem, deviceId: string, message: string) {
    super('duplicate-device-id', message);
    this.problem = problem;
    this.deviceId = deviceId;
  }
}

/**
 * `state` after an operator's release (`medge edge duplicates release`). Without `keep`, the refused boot's batches
 * are stored once the incumbent has been silent for `windowMs` (`hold: 'released'`; a replaced incumbent, gone for
 * longer, at once): while both boards run, the refused one stays refused, since storing it until the pair is proven
 * again stored its whole backlog (QA: 79,950 records in 80 s). With `keep` (one of the proven boots), that boot keeps
 * syncing and the other is refused until an operator releases the pair again, however long either is silent
 * (`hold: 'kept'`; an operator who knows which board is the clinic's). Returns the problem instead when there is no
 * proof or `keep` is not one of its boots.
 */
export function releaseProof(state: BootWatchState | undefined, now: number, keep?: string): BootWatchState | DuplicateReleaseProblem {
  if (!state || state.incumbent === null || state.intruder === null) return 'not-proven';
  const base = { ...state, pair: null, switchBacks: 0, lastSwitchMs: null };
  if (keep === undefined) return { ...base, hold: 'released' };
  if (keep !== state.incumbent && keep !== state.intruder) return 'unknown-boot';
  const other = keep === state.incumbent ? state.intruder : state.incumbent;
  const at = (b: string) => state.boots[b]?.lastMs ?? now;
  return {
    ...base,
    incumbent: keep,
    intruder: other,
    provenMs: now,
    hold: 'kept',
    boots: { ...state.boots, [keep]: { lastMs: at(keep), sinceMs: state.boots[keep]?.sinceMs ?? now }, [other]: { lastMs: at(other), sinceMs: null } },
  };
}
