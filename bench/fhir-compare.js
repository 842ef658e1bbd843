// Same FHIR output before and after a change of the export or the API, on a large store.
//
//   node bench/fhir-compare.js --old DIR [--new DIR] --store DIR [--out DIR]
//
// --old and --new are builds (`dist` folders; --new defaults to this checkout's). --store is an edge data
// directory (e.g. 400,000 readings seeded by bench/fhir-api.js's seeding). With one fixed time for both:
// - the export: the old build's exportEdgeResources + writeTransactionBundle, and the new build's
//   writeEdgeExport (what `medge edge export-fhir` runs; validation off, it does not change the bytes),
//   compared byte for byte;
// - the API: for each request of a set (every type, pages far into the store, date/code/patient/_id
//   searches, reads of stored and imported-conflict records, errors), the old build's answerFromResources
//   on the whole export, and the new build's answer (FhirSearchIndex when it has one; from its file, closed
//   and opened again, when it keeps one), compared as parsed JSON with the clock-made Bundle /
//   OperationOutcome ids set aside.
// Prints one JSON object: whether each matched, sizes and timings; exit 1 on any difference.

import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { progress, round } from './lib/common.js';

const argAfter = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const OLD = argAfter('old');
const NEW = resolve(argAfter('new') ?? new URL('../dist', import.meta.url).pathname);
const STORE = argAfter('store');
if (!OLD || !STORE) {
  process.stderr.write('usage: node bench/fhir-compare.js --old DIST --store DATADIR [--new DIST] [--out DIR]\n');
  process.exit(2);
}
const OUT = argAfter('out') ?? mkdtempSync(join(tmpdir(), 'medge-fhir-compare-'));
const NOW = Date.UTC(2026, 11, 1);

const load = async (dist) => ({
  exportMod: await import(`${resolve(dist)}/edge/fhir/export.js`),
  query: await import(`${resolve(dist)}/edge/fhir/query.js`),
  store: await import(`${resolve(dist)}/device-sdk/store/sqlite-outbox-store.js`),
  edge: await import(`${resolve(dist)}/edge/edge-store.js`),
  index: await import(`${resolve(dist)}/edge/fhir/search-index.js`).catch(() => undefined),
});
const oldBuild = await load(OLD);
const newBuild = await load(NEW);

/** The first byte offset where two files differ, or -1. */
function firstDifference(a, b) {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const ba = Buffer.alloc(1 << 24);
  const bb = Buffer.alloc(1 << 24);
  try {
    for (let at = 0; ; ) {
      const na = readSync(fa, ba, 0, ba.length, at);
      const nb = readSync(fb, bb, 0, bb.length, at);
      const n = Math.min(na, nb);
      for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return at + i;
      if (na !== nb) return at + n;
      if (na === 0) return -1;
      at += na;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

// The export.
const oldFile = join(OUT, 'old.json');
const newFile = join(OUT, 'new.json');
let t = performance.now();
progress('old export');
oldBuild.exportMod.writeTransactionBundle(oldFile, oldBuild.exportMod.exportEdgeResources(STORE, { now: NOW }), NOW);
const oldExportMs = performance.now() - t;
t = performance.now();
progress('new export');
if (newBuild.exportMod.writeEdgeExport) newBuild.exportMod.writeEdgeExport(STORE, newFile, { now: NOW, validate: false });
else newBuild.exportMod.writeTransactionBundle(newFile, newBuild.exportMod.exportEdgeResources(STORE, { now: NOW }), NOW);
const newExportMs = performance.now() - t;
const difference = firstDifference(oldFile, newFile);
const exportResult = { bytes: statSync(oldFile).size, newBytes: statSync(newFile).size, identical: difference < 0, ...(difference < 0 ? {} : { firstDifferenceAt: difference }), oldMs: round(oldExportMs), newMs: round(newExportMs) };
progress(JSON.stringify(exportResult));
rmSync(oldFile, { force: true });
rmSync(newFile, { force: true });

// The API.
const db = oldBuild.store.openReadOnlyDatabase(oldBuild.edge.edgeDatabasePath(STORE), 'edge store', '');
t = performance.now();
progress('old: whole export in memory');
const resources = oldBuild.exportMod.exportResources(db, { now: NOW });
const oldBuildMs = performance.now() - t;
t = performance.now();
progress('new: search index');
// A build that keeps its index in a file (fhirIndexPath) answers from the file as a restarted API opens it:
// built, closed, opened again (reading nothing from the store).
const kept = newBuild.index?.fhirIndexPath ? { path: join(OUT, 'edge-fhir-index.sqlite') } : undefined;
let index = newBuild.index ? new newBuild.index.FhirSearchIndex(db, { now: NOW }, kept) : undefined;
const newBuildMs = performance.now() - t;
let reopened;
if (kept && index) {
  index.close();
  t = performance.now();
  index = new newBuild.index.FhirSearchIndex(db, { now: NOW }, kept);
  reopened = { ms: round(performance.now() - t), ...index.lastRefresh };
  progress(`reopened: ${JSON.stringify(reopened)}`);
}
const newAnswer = index ? (url) => index.answer(url) : (url) => newBuild.query.answerFromResources(url, resources);

const observations = resources.filter((r) => r.resourceType === 'Observation');
const patient = resources.find((r) => r.resourceType === 'Patient')?.id;
const imported = observations.filter((o) => /-[0-9a-f]{12}$/.test(o.id)).map((o) => o.id);
const n = observations.length;
const paths = [
  '/fhir/Device',
  '/fhir/Patient',
  '/fhir/DiagnosticReport?_count=1',
  ...[0, 1000, 123_457, Math.max(0, n - 1000), n - 1, n, n + 5].map((offset) => `/fhir/Observation?_count=1000&_offset=${offset}`),
  '/fhir/Observation?_count=0',
  '/fhir/Observation?date=2026-11-02&_count=100',
  '/fhir/Observation?date=2026-11-02&_count=100&_offset=1400',
  '/fhir/Observation?date=2031-01-01',
  '/fhir/Observation?date=ge2027-01-01&date=lt2027-01-02',
  '/fhir/Observation?date=2026-11-01T00:01&_count=10',
  '/fhir/Observation?date=ne2026-11-01&_count=10&_offset=300000',
  '/fhir/Observation?date=gt2027-06&_count=5',
  '/fhir/Observation?date=le2026-11-01T00:03:00Z&_count=5',
  '/fhir/Observation?date=lt2026-11-01T00:03:00%2B01:00',
  '/fhir/Observation?code=99504-3&_count=50&_offset=123456',
  '/fhir/Observation?code=http://loinc.org%7C99504-3&_count=3',
  '/fhir/Observation?code=8867-4',
  '/fhir/Observation?code=41653-7,99504-3&date=2026-12&_count=7',
  `/fhir/Observation?patient=Patient/${patient}&date=2026-11&_count=1000&_offset=40000`,
  '/fhir/Observation?patient=pt-nobody',
  `/fhir/Observation?_id=r-dev-1-5,r-dev-1-399999,${imported[0] ?? 'x'}`,
  ...['r-dev-1-1', 'r-dev-1-200000', `r-dev-1-${n}`, ...imported, 'nope'].map((id) => `/fhir/Observation/${id}`),
  `/fhir/Patient/${patient}`,
  '/fhir/Observation?colour=red',
  '/fhir/Observation?date=yesterday',
  '/fhir/Observation?_count=-1',
];

const comparable = (body) => {
  const parsed = JSON.parse(body);
  if (typeof parsed.id === 'string' && /^(search|oo)-\d+$/.test(parsed.id)) parsed.id = 'clock';
  return JSON.stringify(parsed);
};
const api = [];
for (const path of paths) {
  const url = new URL(`http://edge.test${path}`);
  let from = performance.now();
  const expected = oldBuild.query.answerFromResources(url, resources);
  const oldMs = performance.now() - from;
  from = performance.now();
  const actual = newAnswer(url);
  const newMs = performance.now() - from;
  const same = expected.status === actual.status && comparable(expected.body) === comparable(actual.body);
  const total = JSON.parse(actual.body).total;
  api.push({ path, status: actual.status, ...(total === undefined ? {} : { total }), same, oldMs: round(oldMs), newMs: round(newMs) });
  if (!same) progress(`DIFFERENT: ${path}`);
}
index?.close();
db.close();
if (!argAfter('out')) rmSync(OUT, { recursive: true, force: true });

const ok = exportResult.identical && api.every((a) => a.same);
console.log(
  JSON.stringify({
    fhirCompare: {
      old: resolve(OLD),
      new: NEW,
      store: STORE,
      observations: n,
      importedConflictIds: imported.length,
      export: exportResult,
      api: { requests: api.length, allSame: api.every((a) => a.same), oldBuildMs: round(oldBuildMs), newIndexMs: round(newBuildMs), ...(reopened ? { reopened } : {}), answers: api },
    },
  }),
);
process.exit(ok ? 0 : 1);
