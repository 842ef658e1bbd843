// Every finding names the sensor it is about: with two ECGs on one device (one at 60/min, one at
// 150/min) the rate findings of each are told apart, in the ledger and through the wire format.
import { describe, expect, it } from 'vitest';
import { decodeBody, encodeBody } from '../../device-sdk/proto/index.js';
import type { Finding } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('finding-sensor');

describe('findings name their sensor', () => {
  it('keeps two ECGs apart', async () => {
    const { runtime, clock, ledger } = startOfflineRuntime(tempDir(), 'two-ecg', [
      { type: 'sim-ecg', sensor: 'ecg-slow', heartRateBpm: 60 },
      { type: 'sim-ecg', sensor: 'ecg-fast', heartRateBpm: 150 },
    ]);
    try {
      for (let k = 0; k < 40; k++) clock.advance(1000);
    } finally {
      await runtime.stop();
    }
    const rates = readLedgerBodies(ledger, 'finding')
      .map((r) => decodeBody('finding', r.body) as Finding)
      .filter((f) => f.kind === 'ecg-rate');
    const bySensor = (sensor: string) => rates.filter((f) => f.sensor === sensor);
    expect(rates.every((f) => f.sensor === 'ecg-slow' || f.sensor === 'ecg-fast')).toBe(true);
    expect(bySensor('ecg-slow').length).toBeGreaterThan(3);
    expect(bySensor('ecg-fast').length).toBeGreaterThan(3);
    const median = (fs: Finding[]) => [...fs.map((f) => f.value ?? Number.NaN)].sort((a, b) => a - b)[Math.floor(fs.length / 2)];
    expect(median(bySensor('ecg-slow'))).toBeCloseTo(60, -1);
    expect(median(bySensor('ecg-fast'))).toBeCloseTo(150, -1);
  }, 60_000);

  it('carries the sensor through the wire format; a record written before it decodes without one', () => {
    const finding: Finding = { kind: 'glucose-trend', label: 'falling', probability: 1, t: 1_700_000_000_000, modelId: 'trend@1', modelSha256: 'ab'.repeat(32), inputQuality: 1, sensor: 'cgm' };
    expect(decodeBody('finding', encodeBody('finding', finding))).toEqual(finding);
    const { sensor: _dropped, ...older } = finding;
    expect(decodeBody('finding', encodeBody('finding', older))).toEqual(older);
  });
});
