import { type Clock, systemClock } from '../../device-sdk/clock.js';
import { isRecordKind, RECORD_KINDS, type RecordKind } from '../../device-sdk/records.js';
import {
  CONFLICT_CHOICES,
  CONFLICT_RESOLUTION_LIMITS,
  type ConflictEntry,
  type ConflictSide,
  type ConflictTarget,
  isConflictChoice,
  readConflictPage,
  resolveStoredConflicts,
  summaryText,
} from '../../edge/conflicts.js';
import { edgeDatabasePath } from '../../edge/edge-store.js';
import { intFlag, parse, UsageError } from './args.js';

/** Conflicts the text list shows when no --limit is given: QA's 100,000 conflicts printed 48 MB in one go. */
const DEFAULT_TEXT_LIMIT = 50;

export const CONFLICTS_USAGE = `Usage: medge edge conflicts (--data DIR | --store FILE) [--device ID] [--kind K] [--status open|resolved]
                            [--after ID] [--limit N] [--json]
       medge edge conflicts resolve (--data DIR | --store FILE) (--id N | --device ID --all [--kind K])
                                    --choice keep-stored|import --operator NAME --reason TEXT [--json]

Seq conflicts are records whose (device, kind, seq) the edge already stored with another boot id,
time or body: a re-imaged SD card, a device ledger restored from a copy, or two boards with one device
id. The edge keeps them apart in its store (DIR/edge.sqlite, or --store FILE) and never deletes them.

'conflicts' lists them, oldest first: id, device, kind, seq, the boot id, time and body sha256 of the
stored record and of the conflicting one, a summary of both (structured fields only: no alert
message, finding evidence, reading context or quarantined bytes), when it arrived and whether it is
open or resolved (with who, when, why and which choice). Read-only; works while the edge runs.
The text list shows the first ${DEFAULT_TEXT_LIMIT} (--limit N, 0 for all) and says how to get the next
page (--after the last id shown); --json lists every match unless --limit is given.

'conflicts resolve' settles one conflict (--id N) or every open conflict of a device (--device ID
--all, optionally only of --kind K) and records the operator, time, reason and choice in the store.
A resolution is final, and neither record is ever deleted:
  keep-stored  the stored record stands; the conflicting one stays archived (a duplicate in effect,
               or judged invalid)
  import       the conflicting record is real data too: FHIR export and the FHIR API include it next
               to the stored one, under ids of its own (device, kind, seq and a hash of its content)

Exit status: 1 for an unknown id or device, a conflict already resolved or nothing open; 2 for a bad
command line.`;

const iso = (ms: number) => new Date(ms).toISOString();
const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

const STORE_OPTIONS = { data: { type: 'string' }, store: { type: 'string' }, device: { type: 'string' }, kind: { type: 'string' }, json: { type: 'boolean' } } as const;

/** The store file from --data DIR or --store FILE (exactly one). */
function storePath(values: { data?: string; store?: string }): string {
  if ((values.data === undefined) === (values.store === undefined)) throw new UsageError('give the edge store as --data DIR or as --store FILE (one of them)', CONFLICTS_USAGE);
  return values.store ?? edgeDatabasePath(values.data as string);
}

function statusFlag(value: string | undefined): 'open' | 'resolved' | undefined {
  if (value === undefined || value === 'open' || value === 'resolved') return value;
  throw new UsageError(`--status must be open or resolved, got ${JSON.stringify(value)}`, CONFLICTS_USAGE);
}

function kindFlag(value: string | undefined): RecordKind | undefined {
  if (value === undefined) return undefined;
  if (!isRecordKind(value)) throw new UsageError(`--kind must be one of ${RECORD_KINDS.join(', ')}, got ${JSON.stringify(value)}`, CONFLICTS_USAGE);
  return value;
}

export function conflictsCommand(args: string[], clock: Pick<Clock, 'now'> = systemClock): number {
  if (args[0] === 'resolve') return resolveCommand(args.slice(1), clock);
  const { values } = parse(args, { ...STORE_OPTIONS, status: { type: 'string' }, after: { type: 'string' }, limit: { type: 'string' } }, CONFLICTS_USAGE);
  if (values.help) {
    process.stdout.write(`${CONFLICTS_USAGE}\n`);
    return 0;
  }
  const path = storePath(values);
  const kind = kindFlag(values.kind);
  const status = statusFlag(values.status);
  const afterId = intFlag(values.after, '--after', CONFLICTS_USAGE, 0);
  const limit = intFlag(values.limit, '--limit', CONFLICTS_USAGE, 0) ?? (values.json ? 0 : DEFAULT_TEXT_LIMIT);
  const filter = {
    ...(values.device === undefined ? {} : { deviceId: values.device }),
    ...(kind === undefined ? {} : { kind }),
    ...(status === undefined ? {} : { status }),
    ...(afterId === undefined ? {} : { afterId }),
    // One more than the page: whether there is a next one.
    limit: limit > 0 ? limit + 1 : 0,
  };
  const page = readConflictPage(path, filter);
  const { total, open } = page;
  const more = limit > 0 && page.entries.length > limit;
  const entries = more ? page.entries.slice(0, limit) : page.entries;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(entries.map(jsonEntry))}\n`);
    return 0;
  }
  const lines = entries.flatMap(entryLines);
  const matching = status === undefined ? `${plural(total, 'conflict')}: ${open} open, ${total - open} resolved` : plural(total, `${status} conflict`);
  if (total === 0) lines.push(status === undefined ? 'no seq conflicts kept' : `no ${status} seq conflicts`);
  else lines.push(matching);
  const last = entries.at(-1);
  if (more && last) lines.push(`shown ${entries.length}, ids ${entries[0]?.id} to ${last.id}; next page: the same command with --after ${last.id}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** Ids as ranges: 1-4, 7, 9-10 (QA: settling 275,000 conflicts printed every id on one line). */
export function idRanges(ids: readonly number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j += 1;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

function resolveCommand(args: string[], clock: Pick<Clock, 'now'>): number {
  const { values } = parse(
    args,
    { ...STORE_OPTIONS, id: { type: 'string' }, all: { type: 'boolean' }, choice: { type: 'string' }, operator: { type: 'string' }, reason: { type: 'string' } },
    CONFLICTS_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${CONFLICTS_USAGE}\n`);
    return 0;
  }
  const path = storePath(values);
  const kind = kindFlag(values.kind);
  let target: ConflictTarget;
  if (values.id !== undefined) {
    if (values.device !== undefined || values.all || kind !== undefined) throw new UsageError('--id N settles one conflict: give it without --device, --all or --kind', CONFLICTS_USAGE);
    target = { id: intFlag(values.id, '--id', CONFLICTS_USAGE, 1) as number };
  } else if (values.device !== undefined) {
    if (!values.all) throw new UsageError(`--device ${values.device} needs --all to settle every open conflict of the device (or give --id N for one)`, CONFLICTS_USAGE);
    target = { deviceId: values.device, ...(kind === undefined ? {} : { kind }) };
  } else throw new UsageError('give --id N (one conflict) or --device ID --all (every open conflict of the device)', CONFLICTS_USAGE);
  if (values.choice === undefined || !isConflictChoice(values.choice)) {
    throw new UsageError(`--choice must be one of ${CONFLICT_CHOICES.join(', ')}, got ${values.choice === undefined ? 'nothing' : JSON.stringify(values.choice)}`, CONFLICTS_USAGE);
  }
  const { operatorMaxChars, reasonMaxChars } = CONFLICT_RESOLUTION_LIMITS;
  if (!values.operator?.trim() || values.operator.length > operatorMaxChars) {
    throw new UsageError(`--operator NAME is required (1 to ${operatorMaxChars} characters): who settles the conflicts`, CONFLICTS_USAGE);
  }
  if (!values.reason?.trim() || values.reason.length > reasonMaxChars) throw new UsageError(`--reason TEXT is required (1 to ${reasonMaxChars} characters): why this choice`, CONFLICTS_USAGE);
  const settled = resolveStoredConflicts(path, target, { choice: values.choice, operator: values.operator, reason: values.reason }, clock.now());
  if (values.json) {
    process.stdout.write(`${JSON.stringify(settled.map(jsonEntry))}\n`);
    return 0;
  }
  const byKind = new Map<string, number>();
  for (const e of settled) byKind.set(`${e.deviceId} ${e.kind}`, (byKind.get(`${e.deviceId} ${e.kind}`) ?? 0) + 1);
  const what = values.choice === 'import' ? 'imported: FHIR export and the FHIR API now include them' : 'the stored records stand; the conflicting ones stay archived';
  process.stdout.write(
    `resolved ${plural(settled.length, 'conflict')} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}; ${settled.length === 1 ? 'id' : 'ids'} ${idRanges(settled.map((e) => e.id))}) as ${values.choice} by ${values.operator}: ${what}\n`,
  );
  return 0;
}

function sideLines(label: string, side: ConflictSide | undefined): string[] {
  if (!side) return [`  ${label} (missing from the records table)`];
  return [`  ${label} boot ${side.bootId}, time ${iso(side.tMs)}, sha256 ${side.bodySha256}`, `            ${summaryText(side.summary)}`];
}

function entryLines(e: ConflictEntry): string[] {
  const r = e.resolution;
  return [
    `conflict ${e.id}: ${e.deviceId} ${e.kind} seq ${e.seq}, received ${iso(e.receivedMs)}, ${e.status}`,
    ...sideLines('stored:  ', e.stored),
    ...sideLines('incoming:', e.incoming),
    ...(r ? [`  resolved: ${r.choice} by ${r.operator} at ${iso(r.resolvedMs)}: ${r.reason}`] : []),
  ];
}

/** The JSON form: times as ISO 8601 too, no bodies. */
function jsonEntry(e: ConflictEntry) {
  const side = (s: ConflictSide) => ({ ...s, time: iso(s.tMs) });
  return {
    ...e,
    received: iso(e.receivedMs),
    ...(e.stored ? { stored: side(e.stored) } : {}),
    incoming: side(e.incoming),
    ...(e.resolution ? { resolution: { ...e.resolution, resolved: iso(e.resolution.resolvedMs) } } : {}),
  };
}
