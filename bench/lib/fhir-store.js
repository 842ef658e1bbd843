// The large edge store the FHIR benchmarks run on (QA's seeding, fhir-big.mjs): N CGM readings of dev-1,
// one a minute from 2026-11-01, committed 2000 at a time as the ingest does.

/** 2026-11-01T00:00Z: the first seeded reading. */
export const FHIR_STORE_T0 = Date.UTC(2026, 10, 1);

/**
 * Seeds an edge store in `dir` with `n` readings, using the build under test (`EdgeStore`, `encodeBody`).
 * @param {{ EdgeStore: new (dir: string) => { commit(input: object): unknown; close(): void }, encodeBody: (kind: string, body: object) => Uint8Array }} build
 * @param {string} dir
 * @param {number} n
 */
export function seedCgmStore({ EdgeStore, encodeBody }, dir, n) {
  const cgm = (i) => encodeBody('reading', { sensor: 'cgm', type: 'glucose', value: 60 + (i % 200), unit: 'mg/dL', tDevice: FHIR_STORE_T0 + i * 60_000, context: { specimen: 'interstitial' } });
  const store = new EdgeStore(dir);
  for (let off = 0; off < n; off += 2000) {
    const k = Math.min(2000, n - off);
    store.commit({
      site: 's',
      deviceId: 'dev-1',
      kind: 'reading',
      bootId: 'b1',
      afterSeq: off,
      lastSeq: off + k,
      ackedUpTo: 0,
      records: Array.from({ length: k }, (_, i) => ({ seq: off + i + 1, bootId: 'b1', tMs: FHIR_STORE_T0 + (off + i) * 60_000, body: cgm(off + i) })),
    });
  }
  store.close();
}
