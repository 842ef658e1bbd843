import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { grossScore, scoreDetections } from '../../device-sdk/signal/ecg/ec57.js';
import { detectBeats } from '../../firmware/cli/ecg.js';
import { readWfdbAnnotations } from '../../simulator/sources/wfdb-files.js';
import { MITDB, missingNote, NSTDB, sharedDataRuns } from '../helpers/shared-data.js';

const RECORDS = '101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230 102 104 107 217'.split(' ');

function score(path: string) {
  const { fs, length, beats } = detectBeats(path);
  return scoreDetections(readWfdbAnnotations(path, 'atr').annotations, beats, { fs, length });
}

// The goal (gross Se and +P >= 99.8%); the detector measures Se 99.81%, +P 99.82% on these 26
// records and 100/100 on 118e24.
describe.skipIf(!sharedDataRuns(MITDB))(`QRS detection on the shared MIT-BIH records (EC57)${missingNote(MITDB)}`, () => {
  it('reaches gross Se and +P >= 99.8% over the 26 records', () => {
    const scores = RECORDS.map((r) => score(join(MITDB, r)));
    const gross = grossScore(scores);
    expect(gross.tp + gross.fn).toBeGreaterThan(49_000);
    expect(gross.se).toBeGreaterThanOrEqual(99.8);
    expect(gross.ppv).toBeGreaterThanOrEqual(99.8);
  });
});

describe.skipIf(!sharedDataRuns(NSTDB))(`QRS detection on 118e24 (noise at 24 dB)${missingNote(NSTDB)}`, () => {
  it('keeps Se and +P >= 99.5%', () => {
    const s = score(join(NSTDB, '118e24'));
    expect(s.se).toBeGreaterThanOrEqual(99.5);
    expect(s.ppv).toBeGreaterThanOrEqual(99.5);
  });
});
