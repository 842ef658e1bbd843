/**
 * The one-screen text status of `medge demo`: a pure function of a `DemoStatus`, no I/O.
 * Fits `options.width` columns (80 is the target) and at most 24 lines; ANSI colour only when
 * `options.color`. Ages ("12 s ago") need `options.now` (device clock, ms); without it the
 * screen shows the UTC time of day instead.
 */
import { RECORD_KINDS, type AlertSeverity, type RecordKind } from '../device-sdk/records.js';
import { SEQ_CONFLICT } from '../edge/edge-store.js';
import type { DemoStatus, LinkState, SensorStatus } from './status.js';

export interface RuntimeScreenOptions {
  width: number;
  color: boolean;
  /** Device clock now (ms), for ages. */
  now?: number;
}

export const SCREEN_MAX_LINES = 24;
export const SEVERITY_WORDS: Readonly<Record<AlertSeverity, string>> = Object.freeze({ 1: 'info', 2: 'warning', 3: 'urgent' });

const ANSI = Object.freeze({ reset: '\x1b[0m', bold: '\x1b[1m', dim: '\x1b[2m', red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', cyan: '\x1b[36m' });
type Style = Exclude<keyof typeof ANSI, 'reset'>;
const ANSI_SEQUENCE = /\x1b\[[0-9;]*m/y;
const ANSI_ALL = /\x1b\[[0-9;]*m/g;

const LINK_STYLE: Readonly<Record<LinkState, Style>> = Object.freeze({ connected: 'green', connecting: 'yellow', backoff: 'yellow', offline: 'red' });
const SEVERITY_STYLE: Readonly<Record<AlertSeverity, Style>> = Object.freeze({ 1: 'cyan', 2: 'yellow', 3: 'red' });

/** Cuts `line` to `width` visible characters (ANSI sequences do not count), marking a cut with `…`. */
function clip(line: string, width: number, color: boolean): string {
  if (line.replace(ANSI_ALL, '').length <= width) return line;
  let visible = 0;
  let i = 0;
  while (i < line.length && visible < width - 1) {
    ANSI_SEQUENCE.lastIndex = i;
    const sequence = ANSI_SEQUENCE.exec(line);
    if (sequence === null) visible++;
    i += sequence === null ? 1 : sequence[0].length;
  }
  return `${line.slice(0, i)}…${color ? ANSI.reset : ''}`;
}

function duration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

function when(t: number, now: number | undefined): string {
  if (now === undefined) return `at ${new Date(t).toISOString().slice(11, 19)}Z`;
  const age = now - t;
  if (age < 0) return 'just now';
  if (age < 10_000) return `${(age / 1000).toFixed(1)} s ago`;
  if (age < 120_000) return `${Math.round(age / 1000)} s ago`;
  return `${duration(age)} ago`;
}

function rate(sensor: SensorStatus): string {
  const value = sensor.rate >= 10 || Number.isInteger(sensor.rate) ? Math.round(sensor.rate).toString() : sensor.rate.toFixed(1);
  return `${value} ${sensor.rateUnit}`;
}

const pad = (text: string, width: number) => (text.length >= width ? `${text.slice(0, width - 1)} ` : text.padEnd(width));
const mib = (bytes: number) => (bytes / 1_048_576).toFixed(1);

export function renderRuntimeScreen(status: DemoStatus, options: RuntimeScreenOptions): string {
  const { width, color, now } = options;
  const paint = (style: Style, text: string) => (color ? `${ANSI[style]}${text}${ANSI.reset}` : text);
  const label = (text: string) => paint('dim', text);
  const kindRow = (name: string, counts: (kind: RecordKind) => number | string) =>
    `${label(pad(name, 12))}${RECORD_KINDS.map((kind) => String(counts(kind)).padStart(kind.length + 2)).join('')}`;

  const total = status.totalMs === undefined ? '' : ` / ${duration(status.totalMs)}`;
  const phase = paint(status.phase === 'running' ? 'green' : 'yellow', status.phase);
  const head = [paint('bold', 'medge demo'), `${duration(status.elapsedMs)}${total}`, phase];

  const { edge } = status;
  // Records kept apart because a device reused seqs: not a rejection, and the one count here that needs an operator.
  const seqConflicts = edge.rejected[SEQ_CONFLICT] ?? 0;
  const rejected = Object.entries(edge.rejected).filter(([why, n]) => n > 0 && why !== SEQ_CONFLICT);
  const rejectedCount = rejected.reduce((sum, [, n]) => sum + n, 0);
  const rejectedText = `rejected ${rejectedCount}${rejected.length > 0 ? ` (${rejected.map(([why, n]) => `${why} ${n}`).join(', ')})` : ''}`;
  const conflictText = seqConflicts > 0 ? `  ${paint('red', `seq conflicts ${seqConflicts} (kept apart; review with medge edge conflicts)`)}` : '';
  const lines = [
    head.join('  '),
    `${label('edge    ')}${edge.url}  broker ${edge.brokerUp ? paint('green', 'up') : paint('red', 'down')}  ${
      rejectedCount > 0 ? paint('yellow', rejectedText) : rejectedText
    }${conflictText}`,
    `${label('stored  ')}${RECORD_KINDS.map((kind) => `${kind} ${edge.stored[kind] ?? 0}`).join('  ')}`,
  ];

  const rt = status.runtime;
  const tail: string[] = [];
  let sensors: SensorStatus[] = [];
  if (rt === undefined) {
    lines.push(`${label('device  ')}${paint('yellow', 'runtime not reporting (starting or restarting)')}`);
  } else {
    const ack = rt.lastAckMs === undefined ? 'no ack yet' : `last ack ${when(rt.lastAckMs, now)}`;
    lines.push(`${label('device  ')}${rt.deviceId}  up ${duration(rt.uptimeMs)}  link ${paint(LINK_STYLE[rt.link], rt.link)}  ${ack}`);
    sensors = rt.sensors;
    tail.push(
      `${label(pad('records', 12))}${RECORD_KINDS.map((kind) => `  ${kind}`).join('')}`,
      kindRow('produced', (kind) => rt.produced[kind]),
      kindRow('backlog', (kind) => rt.backlog[kind]),
      `${label('quarantined ')}${rt.quarantined > 0 ? paint('yellow', String(rt.quarantined)) : '0'}`,
    );
    const { bytesUsed, budgetBytes, overBudget } = rt.storage;
    const percent = budgetBytes > 0 ? ` (${((100 * bytesUsed) / budgetBytes).toFixed(1)}%)` : '';
    tail.push(`${label('storage     ')}${mib(bytesUsed)} / ${mib(budgetBytes)} MiB${percent}${overBudget ? `  ${paint('red', 'OVER BUDGET')}` : ''}`);
    // Models in use on one line (their ids name the analysis); each analysis on its fallback on its own.
    const analysis = rt.analysis ?? [];
    const inUse = analysis.filter((a) => a.state !== 'fallback').map((a) => (a.state === 'model' ? a.algo : `${a.analyzer} ${paint('dim', 'loading')}`));
    if (inUse.length > 0) tail.push(`${label('models      ')}${inUse.join('  ')}`);
    for (const a of analysis.filter((x) => x.state === 'fallback')) tail.push(`${label('fallback    ')}${paint('yellow', `${a.analyzer}: rules only (${a.algo})`)}`);
    const alert = rt.lastAlert;
    if (alert === undefined) tail.push(`${label('last alert  ')}none`);
    else {
      const word = paint(SEVERITY_STYLE[alert.severity], SEVERITY_WORDS[alert.severity]);
      tail.push(`${label('last alert  ')}${word}  ${alert.kind}  ${when(alert.t, now)}`, `${' '.repeat(12)}${alert.message}`);
    }
    // The local alarm (LED, buzzer) latches until acknowledged on the clinic screen.
    if ((rt.alarmsLatched ?? 0) > 0) tail.push(`${label('alarm       ')}${paint('red', `latched: ${rt.alarmsLatched} unacknowledged`)} (acknowledge on the clinic screen)`);
  }
  tail.push(`${label('chaos       ')}broker restarts ${status.brokerRestarts}  runtime kills ${status.runtimeKills}`);

  if (rt !== undefined) {
    const room = SCREEN_MAX_LINES - lines.length - tail.length - 1;
    const shown = sensors.length > room ? sensors.slice(0, Math.max(0, room - 1)) : sensors;
    lines.push(label(`${pad('sensor', 16)}${pad('source', 22)}${pad('state', 14)}rate`));
    for (const s of shown) {
      const state = s.connected ? paint('green', pad('connected', 14)) : paint('red', pad('disconnected', 14));
      lines.push(`${pad(s.sensor, 16)}${pad(s.source, 22)}${state}${rate(s)}`);
    }
    if (shown.length < sensors.length) lines.push(label(`… ${sensors.length - shown.length} more sensors`));
  }
  return [...lines, ...tail].map((line) => clip(line, width, color)).join('\n');
}
