// An analysis that fails while the runtime flushes it (a recording ending, or the runtime stopping) is
// reported like one that fails on a chunk: `analysis-error` (severity 2), stored in the ledger. Before,
// the flush path only logged, so a clinic was not told that a recording's end went unanalysed.
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../device-sdk/proto/index.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import type { Analyzer } from '../../firmware/analyzers.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('analysis-flush-error');

describe('an analysis failing at a flush', () => {
  it('raises analysis-error and stores it; storage and the stop go on', async () => {
    const { runtime, clock, alerts, ledger } = startOfflineRuntime(tempDir(), 'flush-error', [{ type: 'sim-ecg', sensor: 'ecg', heartRateBpm: 70 }]);
    // The runtime's own ECG analyzer, its flush made to fail as a crashed inference worker would make it.
    const ecg = (runtime as unknown as { analyzers: Analyzer[] }).analyzers.find((a) => a.name === 'ecg');
    expect(ecg?.flush).toBeDefined();
    if (ecg) ecg.flush = () => Promise.reject(new Error('inference worker exited'));
    try {
      for (let k = 0; k < 10; k++) clock.advance(1000);
    } finally {
      await runtime.stop();
    }
    const raised = alerts.filter((a) => a.kind === 'analysis-error');
    expect(raised).toHaveLength(1);
    expect(raised[0]?.severity).toBe(2);
    expect(raised[0]?.message).toMatch(/ecg analysis of every sensor failed .*inference worker exited.*The data are stored/);
    const stored = readLedgerBodies(ledger, 'alert').map((r) => decodeBody('alert', r.body));
    expect(stored.filter((a) => a.kind === 'analysis-error')).toHaveLength(1);
    expect(readLedgerBodies(ledger, 'chunk').length).toBeGreaterThan(0);
  }, 60_000);
});
