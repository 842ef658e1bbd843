// What keeping the FHIR API's search index up to date costs (edge/fhir/search-index.ts).
//
//   node bench/fhir-index-refresh.js [--readings 400000] [--store DIR] [--batches 50]
//
// Seeds an edge store (bench/lib/fhir-store.js; or copies --store), then, in this process: `build`, the index
// built from the whole store into its file (edge-fhir-index.sqlite); `reopen`, the index opened again from
// its file (a new worker, an edge restart), with the rows it read from the store; `perBatch`, one batch of
// 10 readings committed as the ingest does (EdgeStore.commit, not timed) and then the refresh that takes it
// in (timed), --batches times: p50/p95/max ms. The ingest itself never touches the index. Prints one JSON
// object on stdout; progress on stderr.

import { cpSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { numberArg, progress, removeDir, round, tempDir } from './lib/common.js';
import { seedCgmStore } from './lib/fhir-store.js';

const READINGS = Math.floor(numberArg('readings', 400_000));
const BATCHES = Math.floor(numberArg('batches', 50));
const storeAt = process.argv.indexOf('--store');
const STORE = storeAt >= 0 ? process.argv[storeAt + 1] : undefined;
const DIST = new URL('../dist', import.meta.url).pathname;

const { EdgeStore, edgeDatabasePath } = await import(`${DIST}/edge/edge-store.js`);
const { encodeBody } = await import(`${DIST}/device-sdk/proto/index.js`);
const { openReadOnlyDatabase } = await import(`${DIST}/device-sdk/store/sqlite-outbox-store.js`);
const { FhirSearchIndex, fhirIndexPath } = await import(`${DIST}/edge/fhir/search-index.js`);

const dir = tempDir('fhir-index-refresh');
const dataDir = join(dir, 'edge');
if (STORE) cpSync(STORE, dataDir, { recursive: true });
else {
  progress(`seeding ${READINGS} readings`);
  seedCgmStore({ EdgeStore, encodeBody }, dataDir, READINGS);
}
const db = openReadOnlyDatabase(edgeDatabasePath(dataDir), 'edge store', '');
const settings = { path: fhirIndexPath(dataDir) };
const timed = (what) => {
  const from = performance.now();
  const value = what();
  return { ms: round(performance.now() - from), value };
};

progress('build');
const built = timed(() => new FhirSearchIndex(db, {}, settings));
const build = { ms: built.ms, ...built.value.lastRefresh, indexFileMb: round(statSync(settings.path).size / 2 ** 20) };
built.value.close();
progress(JSON.stringify(build));
progress('reopen');
const reopened = timed(() => new FhirSearchIndex(db, {}, settings));
const reopen = { ms: reopened.ms, ...reopened.value.lastRefresh };
progress(JSON.stringify(reopen));

const index = reopened.value;
const store = new EdgeStore(dataDir);
const ms = [];
let recordsRead = 0;
for (let b = 0; b < BATCHES; b++) {
  const afterSeq = b * 10;
  const records = Array.from({ length: 10 }, (_, i) => ({
    seq: afterSeq + i + 1,
    bootId: 'live',
    tMs: Date.now(),
    body: encodeBody('reading', { sensor: 'cgm', type: 'glucose', value: 100 + i, unit: 'mg/dL', tDevice: Date.now() }),
  }));
  store.commit({ site: 's', deviceId: 'dev-live', kind: 'reading', bootId: 'live', afterSeq, lastSeq: afterSeq + 10, ackedUpTo: 0, records });
  const refreshed = timed(() => index.refresh());
  ms.push(refreshed.ms);
  recordsRead += refreshed.value.recordsRead;
}
store.close();
const sorted = [...ms].sort((a, b) => a - b);
const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const perBatch = { batches: BATCHES, recordsRead, p50Ms: at(0.5), p95Ms: at(0.95), maxMs: sorted.at(-1) };
index.close();
db.close();
removeDir(dir);
console.log(JSON.stringify({ fhirIndexRefresh: { readings: STORE ? `copy of ${STORE}` : READINGS, build, reopen, perBatch, maxRssMb: round(process.resourceUsage().maxRSS / 1024) } }));
