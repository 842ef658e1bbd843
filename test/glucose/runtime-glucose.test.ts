import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Finding } from '../../device-sdk/records.js';
import { readLedgerBodies, readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('runtime-glucose');

describe('the runtime with a simulated glucose meter (virtual clock, offline)', () => {
  it('stores glucose findings and raises the predicted-low alert locally before the reading-level low alert', async () => {
    const { runtime, clock, alerts, ledger } = startOfflineRuntime(tempDir(), 'glu-1', [{ type: 'sim-glucose', intervalMs: 300_000, corruptRate: 0, periodReadings: 48 }]);
    try {
      // 12 hours of 5-minute readings: the simulated meter swings 50-260 mg/dL every 4 hours.
      for (let k = 0; k < 144; k++) clock.advance(300_000);
    } finally {
      await runtime.stop();
    }
    const kinds = alerts.map((a) => a.kind);
    const predicted = kinds.indexOf('glucose-predicted-low');
    const low = kinds.findIndex((k) => k.startsWith('hypoglycaemia-level'));
    expect(predicted).toBeGreaterThanOrEqual(0);
    expect(low).toBeGreaterThan(predicted);
    expect(alerts[predicted]!.severity).toBe(2);
    // Three dips in 12 hours: in each, one predicted-low alert (not one per reading) before the low itself.
    const dips = kinds.join(' ').split('hyperglycaemia').slice(1);
    expect(dips).toHaveLength(3);
    for (const dip of dips) expect(dip.trim().split(' ')).toEqual(['glucose-predicted-low', 'hypoglycaemia-level-1', 'hypoglycaemia-level-2']);
    const summary = readLedgerSummary(ledger);
    expect(summary.kinds.reading.rows).toBeGreaterThanOrEqual(140);
    // Trend findings on every reading after the first, forecasts once 30 minutes of history exist.
    expect(summary.kinds.finding.rows).toBeGreaterThan(2 * 130);
    // Each predicted-low alert leads to the forecast that raised it: the model, its hash, the probability.
    const findings = new Map(readLedgerBodies(ledger, 'finding').map((r) => [r.seq, decodeBody('finding', r.body) as Finding]));
    const stored = readLedgerBodies(ledger, 'alert').map((r) => decodeBody('alert', r.body) as Alert);
    const predictedLows = stored.filter((a) => a.kind === 'glucose-predicted-low');
    expect(predictedLows).toHaveLength(3);
    for (const a of predictedLows) {
      const f = findings.get(a.findingSeq ?? -1);
      expect(f, JSON.stringify(a)).toMatchObject({ kind: 'glucose-forecast', t: a.t, sensor: 'glucose-meter', modelId: expect.stringMatching(/^glucose-forecast@/) });
      expect(a.message).toContain(`probability ${Math.round((f as Finding).probability * 100)} %`);
    }
    // Alerts from a reading rule have no finding to point at.
    expect(stored.filter((a) => a.kind.startsWith('hypoglycaemia-level')).every((a) => a.findingSeq === undefined)).toBe(true);
  }, 60_000);

  it("converts the simulated line meter's times by the configured zone, and marks them zone-unknown without one", async () => {
    // The simulated meter's clock is set to the site's zone: its lines carry Kolkata wall time (UTC+5:30).
    for (const timeZone of ['Asia/Kolkata', undefined]) {
      const dir = tempDir();
      const { runtime, clock, ledger } = startOfflineRuntime(dir, 'glu-zone', [{ type: 'sim-glucose', intervalMs: 300_000, corruptRate: 0 }], timeZone === undefined ? {} : { timeZone });
      try {
        for (let k = 0; k < 12; k++) clock.advance(300_000);
      } finally {
        await runtime.stop();
      }
      const readings = readLedgerBodies(ledger, 'reading')
        .map((r) => decodeBody('reading', r.body))
        .filter((r) => r.type === 'glucose');
      expect(readings.length).toBeGreaterThanOrEqual(11);
      for (const r of readings) {
        // Before: no meter time basis, and with a zone configured the wall time was taken for UTC.
        expect(r.tMeter, timeZone).toBe(r.tDevice);
        const wall = new Date(r.tDevice + (timeZone === undefined ? 0 : 5.5 * 3600_000)).toISOString().slice(0, 19);
        expect(r.context, timeZone).toMatchObject(timeZone === undefined ? { meterTimeBasis: 'zone-unknown', meterClock: wall } : { meterTimeBasis: 'configured-zone', meterTimeZone: timeZone, meterClock: wall });
      }
    }
  }, 60_000);
});
