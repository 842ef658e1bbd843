// Whether the CGM driver's resend rule (device-sdk/sensors/cgm-seen-records.ts `CgmResendJudge`) loses a replaced
// sensor's records, on real traces (hall2018, CGM CSV of the shared data): sessions of random trace stretches one after
// another under one key that cannot tell sensors apart (no Session Start Time, no serial), so that every record is a
// new sensor's and a dropped one is a lost one. Also how often a new sensor's first 1..6 records equal the old
// session's at the same offsets (random points of two traces), what the run of `CGM_RESEND_RUN` repeats guards against.
//
//   node bench/cgm-resend-judge.js [--swaps 2000] [--days 10] [--pairs 1000000] [--csv ../shared/data/cgm/hall2018.csv] [--dist DIR]
//
// Prints one JSON object: sent, handed over, dropped (lost), new sessions detected, runs recovered; sessions identical
// value for value to the one before (the same stretch drawn twice: a resend to any rule); equal-prefix counts.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { numberArg, stringArg } from './lib/common.js';

const DIST = resolve(stringArg('dist', new URL('../dist', import.meta.url).pathname));
const CSV = resolve(stringArg('csv', new URL('../../shared/data/cgm/hall2018.csv', import.meta.url).pathname));
const SWAPS = numberArg('swaps', 2000);
const DAYS = numberArg('days', 10);
const PAIRS = numberArg('pairs', 1_000_000);
const { CgmResendJudge, cgmHeldValue } = await import(pathToFileURL(join(DIST, 'device-sdk/sensors/cgm-seen-records.js')).href);

const bySubject = new Map();
for (const line of readFileSync(CSV, 'utf8').trim().split('\n').slice(1)) {
  const [id, , gl] = line.split(',');
  const v = Number(gl);
  if (!Number.isFinite(v)) continue;
  (bySubject.get(id) ?? bySubject.set(id, []).get(id)).push(v);
}
const traces = [...bySubject.values()];
let seed = 12345;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
/** `n` values: stretches of random traces from random points, one after another. */
function stream(n) {
  const out = [];
  while (out.length < n) {
    const t = traces[Math.floor(rnd() * traces.length)];
    for (let i = Math.floor(rnd() * t.length); i < t.length && out.length < n; ) out.push(t[i++]);
  }
  return out;
}

const sessions = Array.from({ length: SWAPS + 1 }, () => stream(DAYS * 288));
const judge = new CgmResendJudge();
const swap = { sent: 0, handedOver: 0, dropped: 0, newSessions: 0, recovered: 0 };
for (const s of sessions) {
  s.forEach((v, i) => {
    swap.sent += 1;
    const j = judge.judge(' ', false, i * 5, cgmHeldValue(v), 1);
    swap.handedOver += j.release.length + (j.handOver ? 1 : 0);
    swap.dropped += j.dropped - j.recovered;
    swap.recovered += j.recovered;
    if (j.newSession) swap.newSessions += 1;
  });
}
swap.handedOver += judge.release().length;
const identicalSessions = sessions.filter((s, k) => k > 0 && s.every((v, i) => v === sessions[k - 1][i])).length;

const firstEqual = [0, 0, 0, 0, 0, 0];
for (let k = 0; k < PAIRS; k++) {
  const [a, b] = [stream(6), stream(6)];
  for (let i = 0; i < 6 && a[i] === b[i]; i++) firstEqual[i] += 1;
}
process.stdout.write(`${JSON.stringify({ cgmResendJudge: { swaps: SWAPS, sessionDays: DAYS, ...swap, identicalSessions, pairs: PAIRS, firstEqual } }, null, 2)}\n`);
