import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isQrsCode } from '../../device-sdk/protocols/wfdb.js';
import { aamiClassOf } from '../../device-sdk/signal/ecg/beat-features.js';
import {
  afReference,
  type ClassScores,
  classPairs,
  classScores,
  type DetectionScore,
  type DurationScore,
  durationScore,
  grossClassScores,
  grossDurationScore,
  grossScore,
  scoreDetections,
} from '../../device-sdk/signal/ecg/ec57.js';
import { mixNoises, qrsSignalPower } from '../../device-sdk/signal/ecg/noise-mix.js';
import { analyzeSignal, detectBeats, nstNoises, PACED_RECORDS, reversedLead } from '../../firmware/cli/ecg.js';
import { readWfdbAnnotations, readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { useShippedBeatClassifier } from '../helpers/beat-classifier.js';
import { MITDB, missingNote, NSTDB, sharedDataRuns } from '../helpers/shared-data.js';

const RECORDS = '101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230 102 104 107 217'.split(' ');

function score(path: string) {
  const { fs, length, beats } = detectBeats(path);
  return scoreDetections(readWfdbAnnotations(path, 'atr').annotations, beats, { fs, length });
}

// The whole pipeline (QRS detection, beat features, the shipped classifier in a wasm worker, AF) over
// the 26 shared records, scored per EC57 as `medge ecg eval` does. QRS: the goal (gross Se and
// +P >= 99.8%). Beat classes and AF: regression floors a little under what the shipped model measures
// on these records, which it was trained on (in-sample); the out-of-sample cross-validation figures
// are in models/ecg-beats/MODEL_CARD.md.
describe.skipIf(!sharedDataRuns(MITDB))(`ECG pipeline on the shared MIT-BIH records (EC57)${missingNote(MITDB)}`, () => {
  const shipped = useShippedBeatClassifier();
  const qrs: DetectionScore[] = [];
  const classes: ClassScores[] = [];
  const af: DurationScore[] = [];
  /** Beats reported S while the AF detector was in an episode (from an onset's decision to the end's). */
  let sInAf = 0;
  let afBeats = 0;
  beforeAll(async () => {
    for (const name of RECORDS) {
      const path = join(MITDB, name);
      const record = readWfdbRecord(path);
      const fs = record.header.fs;
      const signal = record.signals[0] as Int16Array;
      const length = signal.length;
      const reference = readWfdbAnnotations(path, 'atr').annotations;
      const r = await analyzeSignal(signal, fs, shipped.current);
      qrs.push(scoreDetections(reference, r.beats.map((b) => b.sample), { fs, length }));
      if (!PACED_RECORDS.includes(name)) classes.push(classScores(classPairs(reference, r.beats, aamiClassOf, { fs, length })));
      for (const [k, e] of r.af.entries()) {
        if (e.type !== 'onset') continue;
        const until = r.af[k + 1]?.at ?? length;
        const inside = r.beats.filter((b) => b.sample > e.at && b.sample < until);
        afBeats += inside.length;
        sInAf += inside.filter((b) => b.cls === 'S').length;
      }
      const ref = afReference(reference, length);
      af.push(durationScore(ref.af, r.afEpisodes, { fs, length, excluded: ref.excluded }));
    }
  }, 240_000);

  it('reaches gross QRS Se and +P >= 99.8% over the 26 records', () => {
    const gross = grossScore(qrs);
    expect(gross.tp + gross.fn).toBeGreaterThan(49_000);
    expect(gross.se).toBeGreaterThanOrEqual(99.8);
    expect(gross.ppv).toBeGreaterThanOrEqual(99.8);
  });

  it('keeps the V and S figures of the shipped model on the 22 non-paced records', () => {
    const gross = grossClassScores(classes);
    expect(gross.V.tp + gross.V.fn).toBeGreaterThan(3_000);
    expect(gross.V.se).toBeGreaterThanOrEqual(V_SE_FLOOR);
    expect(gross.V.ppv).toBeGreaterThanOrEqual(V_PPV_FLOOR);
    expect(gross.S.se).toBeGreaterThanOrEqual(S_SE_FLOOR);
    expect(gross.S.ppv).toBeGreaterThanOrEqual(S_PPV_FLOOR);
  });

  it('reports no S beat while an AF episode is open (no sinus rhythm to be premature against)', () => {
    expect(afBeats).toBeGreaterThan(3_000);
    expect(sInAf).toBe(0);
  });

  it('types every beat the same when the lead is recorded with its polarity reversed', async () => {
    // 114 and 118 are turned to canonical polarity as recorded; 106, 201 and 203 as reversed.
    for (const name of ['106', '114', '118', '201', '203']) {
      const path = join(MITDB, name);
      const record = readWfdbRecord(path);
      const signal = record.signals[0] as Int16Array;
      const a = await analyzeSignal(signal, record.header.fs, shipped.current);
      const b = await analyzeSignal(reversedLead(signal, record.header.signals[0]?.baseline ?? 0), record.header.fs, shipped.current);
      expect(b.beats.map((x) => x.sample)).toEqual(a.beats.map((x) => x.sample));
      expect(b.beats.map((x) => x.cls), name).toEqual(a.beats.map((x) => x.cls));
      expect(b.afEpisodes, name).toEqual(a.afEpisodes);
    }
  }, 60_000);

  it('keeps its beat classes and AF episodes with 0.1 mV of 50 Hz mains hum on the lead', async () => {
    // Without the mains notch (ecg-beats 1.3.0's pipeline) the same hum took gross AF Se from 95.76 to 46.07.
    const clean: DurationScore[] = [];
    const hum: DurationScore[] = [];
    for (const name of ['201', '203']) {
      const path = join(MITDB, name);
      const record = readWfdbRecord(path);
      const fs = record.header.fs;
      const signal = record.signals[0] as Int16Array;
      const gain = record.header.signals[0]?.adcGain ?? 200;
      const noisy = Int16Array.from(signal, (v, k) => Math.round(v + 0.1 * gain * Math.sin((2 * Math.PI * 50 * k) / fs)));
      const reference = readWfdbAnnotations(path, 'atr').annotations;
      const ref = afReference(reference, signal.length);
      const a = await analyzeSignal(signal, fs, shipped.current);
      const b = await analyzeSignal(noisy, fs, shipped.current);
      clean.push(durationScore(ref.af, a.afEpisodes, { fs, length: signal.length, excluded: ref.excluded }));
      hum.push(durationScore(ref.af, b.afEpisodes, { fs, length: signal.length, excluded: ref.excluded }));
      // The R peak is placed on the lead as it comes, hum and all (notching that costs QRS Se and +P), which
      // moves it by a few samples on wide flat-topped beats: a beat is the same within 10 samples (28 ms).
      const humClass = new Map<number, string>();
      for (const x of b.beats) for (let d = -10; d <= 10; d++) if (!humClass.has(x.sample + d)) humClass.set(x.sample + d, x.cls);
      const same = a.beats.filter((x) => humClass.get(x.sample) === x.cls).length;
      expect(same / a.beats.length, name).toBeGreaterThanOrEqual(0.97);
    }
    const [c, h] = [grossDurationScore(clean), grossDurationScore(hum)];
    expect(c.se).toBeGreaterThanOrEqual(95);
    expect(h.se).toBeGreaterThanOrEqual(c.se - 3);
    // Measured on 201+203 with ecg-beats 1.4.0: +P 88.35 -> 85.06 (without the notch Se fell to about 49).
    expect(h.ppv).toBeGreaterThanOrEqual(c.ppv - 4);
  }, 60_000);

  it('keeps the AF duration figures over all 26 records (AF in 201 and 203)', () => {
    const gross = grossDurationScore(af);
    expect(gross.overlap + gross.refOnly).toBeGreaterThan(360 * 1000);
    expect(gross.se).toBeGreaterThanOrEqual(AF_SE_FLOOR);
    expect(gross.ppv).toBeGreaterThanOrEqual(AF_PPV_FLOOR);
  });
});

describe.skipIf(!sharedDataRuns(NSTDB))(`QRS detection under noise${missingNote(NSTDB)}`, () => {
  it('keeps Se and +P >= 99.5% on 118e24 (noise at 24 dB)', () => {
    const s = score(join(NSTDB, '118e24'));
    expect(s.se).toBeGreaterThanOrEqual(99.5);
    expect(s.ppv).toBeGreaterThanOrEqual(99.5);
  });

  it('loses at most 2 points of Se and +P with ma and bw noise each at 12 dB (4 records)', async () => {
    const noises = nstNoises(NSTDB);
    const clean: DetectionScore[] = [];
    const noisy: DetectionScore[] = [];
    for (const name of ['101', '115', '208', '223']) {
      const path = join(MITDB, name);
      const record = readWfdbRecord(path);
      const fs = record.header.fs;
      const signal = record.signals[0] as Int16Array;
      const reference = readWfdbAnnotations(path, 'atr').annotations;
      const power = qrsSignalPower(signal, reference.filter((a) => isQrsCode(a.code)).map((a) => a.sample), fs);
      for (const [list, s] of [
        [clean, signal],
        [noisy, mixNoises(signal, noises, power, 12)],
      ] as const) {
        const r = await analyzeSignal(s, fs, undefined);
        list.push(scoreDetections(reference, r.beats.map((b) => b.sample), { fs, length: signal.length }));
      }
    }
    const a = grossScore(clean);
    const b = grossScore(noisy);
    expect(a.se - b.se).toBeLessThanOrEqual(2);
    expect(a.ppv - b.ppv).toBeLessThanOrEqual(2);
  }, 60_000);
});

// Measured with ecg-beats 1.5.0 (`medge ecg eval --data ../shared/data/mitdb`, the same with
// `--reverse-polarity`): V Se 94.59 / +P 95.75, S Se 88.37 / +P 75.38 (in-sample; S in a regular rhythm is
// decided by the prematurity rule, which the training records do not fit, and a beat called S while AF is
// detected is reported N), AF duration (EC57 reference: (AFIB, flutter left out of +P) Se 90.26 / +P 87.05
// over the 26 records, with the atrial-activity rule. 1.3.0 gave AF 95.76 / 81.08: the Se difference is the
// paced record 217 (paced beats are not in training; its AF Se 76.1 -> 40.5, +P 60.8 -> 81.7), while 201
// and 203 are about the same.
const V_SE_FLOOR = 94;
const V_PPV_FLOOR = 93.5;
const S_SE_FLOOR = 86.5;
const S_PPV_FLOOR = 74.5;
const AF_SE_FLOOR = 90;
const AF_PPV_FLOOR = 84;
