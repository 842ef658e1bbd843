// The runtime with a stethoscope whose recording ends before a full screening window (QA D6): the
// partial window is screened when the sources stop (drain, stop) and stored in the ledger. (The
// 2 s quiet timer and its emit hook: test/pcg/monitor.test.ts; in medge sim: the QA repro.)
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Finding } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { requireBuild } from '../helpers/cli.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('runtime-pcg');

function screens(ledger: string): Finding[] {
  return readLedgerBodies(ledger, 'finding')
    .map((row) => decodeBody('finding', row.body) as Finding)
    .filter((f) => f.kind === 'heart-sound-screen');
}

describe('the runtime with a stethoscope recording shorter than the 15 s window (virtual clock, offline)', () => {
  const start = () => startOfflineRuntime(tempDir(), 'pcg-1', [{ type: 'sim-pcg', sensor: 'steth', rateHz: 4000, chunkMs: 250, heartRateBpm: 72, noise: 50 }]);

  it('screens the 10 s recorded when the runtime stops, and stores the finding', async () => {
    requireBuild();
    const { runtime, clock, ledger } = start();
    try {
      for (let k = 0; k < 40; k++) clock.advance(250);
    } finally {
      await runtime.stop();
    }
    const found = screens(ledger);
    expect(found).toHaveLength(1);
    expect(found[0]!.evidence).toMatch(/partial window \(10\.0 of 15 s\): closed by the sources stopped$/);
    expect(found[0]!.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    expect((found[0]!.intervalEnd as number) - (found[0]!.intervalStart as number)).toBe(10_000);
  }, 60_000);

  it('has it stored when the sources stop (what a drain before stop waits for), and nothing more at stop', async () => {
    requireBuild();
    const { runtime, clock, ledger } = start();
    try {
      for (let k = 0; k < 24; k++) clock.advance(250);
      await runtime.stopSources();
      expect(runtime.status().produced.finding).toBe(1);
    } finally {
      await runtime.stop();
    }
    const found = screens(ledger);
    expect(found).toHaveLength(1);
    expect(found[0]!.evidence).toMatch(/partial window \(6\.0 of 15 s\): closed by the sources stopped$/);
  }, 60_000);
});
