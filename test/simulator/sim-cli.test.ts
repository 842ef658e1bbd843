/**
 * `medge sim` end to end: a shortened clinic day (2 minutes of MIT-BIH 208 with 5% corrupted frames
 * and an unplug, a PASCAL recording with 5% corrupted frames, a glucose meter with 80 records that
 * drops the link twice during backfill, a CGM repeating every third notification; the CSV and UVA/Padova
 * sources are exercised by the meter and by clinic-day.yaml) against the real
 * runtime process on real ptys and a private D-Bus; the invariants are checked on the report, which
 * the CLI computes from the runtime's ledger.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findDbusDaemon } from '../../simulator/bluez/index.js';
import type { ScenarioReport } from '../../simulator/scenario-report.js';
import { medge } from '../helpers/cli.js';
import { findSocat, systemAvailable } from '../helpers/pty.js';
import { missingNote, SHARED_DATA, sharedDataRuns } from '../helpers/shared-data.js';

const socat = systemAvailable('socat', findSocat() !== undefined, 'socat');
const dbus = systemAvailable('dbus-daemon', findDbusDaemon() !== undefined, 'dbus');
const data = sharedDataRuns(SHARED_DATA);

const SCENARIO = `
name: clinic-short
seed: 11
devices:
  - sensor: ecg
    kind: ecg
    transport: serial
    source: { type: wfdb, record: mitdb/208, startS: 60, durationS: 120 }
    faults: { corruptRate: 0.05, unplug: [{ atS: 50, downS: 60, mode: pause }] }
  - sensor: stethoscope
    kind: pcg
    transport: serial
    source: { type: wav, file: pcg/pascal-b/normal__146_1306778707532_D1.wav }
    faults: { corruptRate: 0.05 }
  - sensor: meter
    kind: glucose-meter
    transport: ble
    source: { type: uva-padova, patient: 'adult#001', minutes: 2880, dailyMeals: [{ atMin: 420, carbsG: 50 }, { atMin: 780, carbsG: 70 }], mealBoluses: true, periodMin: 30 }
    storedRecords: 80
    faults: { disconnectAfterRecords: [25, 30] }
  - sensor: cgm
    kind: cgm
    transport: ble
    source: { type: constant, value: 110, sd: 12, periodS: 60, count: 20 }
    faults: { duplicateEvery: 3 }
`;

/**
 * MIT-BIH 208 with damaged and vendor frames, an unplug that drops, a power cycle and a counter jump
 * (the QA repro, shortened), and the electrodes of lead 0 off for 8 s.
 */
const ECG_FAULTS = `
name: ecg-faults
seed: 3
devices:
  - sensor: ecg
    kind: ecg
    transport: serial
    source: { type: wfdb, record: mitdb/208, durationS: 90 }
    frameMs: 100
    faults:
      corruptRate: 0.05
      truncateRate: 0.03
      vendorFrameRate: 0.02
      unplug: [{ atS: 20, downS: 5, mode: drop }, { atS: 45, downS: 3, mode: reset }]
      counterJumps: [{ atS: 70, samples: 1800 }]
      leadOff: [{ atS: 30, durationS: 8, channels: 1 }]
`;

describe.skipIf(!(socat && dbus && data))(`medge sim --scenario (needs socat and dbus-daemon: apt-get install -y socat dbus)${missingNote(SHARED_DATA)}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'medge-sim-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stores every meter record once, every ECG sample once except damaged frames (in quarantine), CGM duplicates once, with no runtime restart', async () => {
    const file = join(dir, 'clinic-short.yaml');
    writeFileSync(file, SCENARIO);
    const run = await medge(['sim', '--scenario', file, '--speed', '60', '--json', '--data', SHARED_DATA, '--timeout', '240'], { timeoutMs: 300_000 });
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0] as string) as ScenarioReport;
    expect(r.invariants).toEqual({
      meterRecordsStoredOnceWithSequenceAndTime: true,
      streamSamplesStoredOnce: true,
      streamSamplesComplete: true,
      gapsHaveInjectedCauses: true,
      damagedFramesInQuarantine: true,
      leadOffStoredAsReported: true,
      cgmDuplicatesStoredOnce: true,
      runtimeNeverRestarted: true,
      edgeHasEverything: true,
    });
    // The figures of the issue, and that the faults really happened (so the invariants are not vacuous).
    expect(r.meterRecords).toBe(80);
    expect(r.meters[0]?.linkDrops).toBe(2);
    expect(r.ecgSamplesExpected).toBe(120 * 360 * 2);
    expect(r.ecgSamplesStored + r.ecgGapSamples).toBe(r.ecgSamplesExpected);
    expect(r.ecgGapSamples).toBeGreaterThan(0);
    expect(r.streams[0]?.unexplainedGaps).toBe(0);
    expect(r.quarantinedFrames).toBeGreaterThan(0);
    expect(r.cgmDuplicatesSuppressed).toBeGreaterThan(0);
    expect(r.notifying[0]?.duplicatesStored).toBe(0);
    expect(r.runtimeRestarts).toBe(0);
    expect(r.streams.map((s) => s.sensor)).toEqual(['ecg', 'stethoscope']);
    expect(r.streams[1]?.samplesStored).toBeGreaterThan(0);
  }, 320_000);

  it('replays a 2 kHz heart-sound recording to a stethoscope driver configured for its rate: every sample stored', async () => {
    // The driver took only 4 kHz frames by default: all 900 frames of this recording went to quarantine.
    const file = join(dir, 'pcg-2k.yaml');
    writeFileSync(file, 'name: pcg-2k\nseed: 6\ndevices:\n  - sensor: steth\n    kind: pcg\n    transport: serial\n    source: { type: wav, file: pcg/physionet2016/a0159.wav, durationS: 20 }\n');
    const run = await medge(['sim', '--scenario', file, '--speed', '10', '--json', '--data', SHARED_DATA, '--timeout', '120'], { timeoutMs: 180_000 });
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const r = JSON.parse(run.stdout.trim()) as ScenarioReport;
    expect(r.streams[0]).toMatchObject({ sensor: 'steth', samplesStored: 20 * 2000, unexplainedGaps: 0 });
    expect(r.quarantinedFrames).toBe(0);
  }, 200_000);

  it('accounts for every ECG gap by its cause after an unplug that drops, a power cycle (reset) and a counter jump, and passes', async () => {
    const file = join(dir, 'ecg-faults.yaml');
    writeFileSync(file, ECG_FAULTS);
    const run = await medge(['sim', '--scenario', file, '--speed', '15', '--json', '--data', SHARED_DATA, '--timeout', '200'], { timeoutMs: 240_000 });
    const r = JSON.parse(run.stdout.trim()) as ScenarioReport;
    const s = r.streams[0]!;
    expect(s.unexplained, run.stderr.slice(-3000)).toEqual([]);
    expect(run.code).toBe(0);
    expect(r.ok).toBe(true);
    // The faults happened: a damaged-frame gap, the drop, the jump; a second acquisition after the reset.
    expect(s.gapsByCause.unplugged).toBeGreaterThan(0);
    expect(s.gapsByCause['counter-jump']).toBe(2);
    expect(s.counterSkipSamples).toBe(2 * 1800);
    expect(s.gapsByCause.corrupted + s.gapsByCause.truncated).toBeGreaterThan(0);
    expect(s.acquisitions).toHaveLength(2);
    expect(s.acquisitions[1]?.firstIndex).not.toBeNull();
    expect(s.damagedFramesInQuarantine).toBe(s.framesDamaged);
    expect(s.samplesStored + s.gapSamples + s.samplesLostAtRestart).toBe(s.samplesExpected);
    // The electrodes off: stored flagged where the front end said so, nowhere else; no gap of their own.
    expect(r.invariants.leadOffStoredAsReported).toBe(true);
    expect(s.leadOffFrames).toBeGreaterThan(0);
    expect(s.leadOffSamplesFlagged).toBeGreaterThan(0);
  }, 260_000);

  it('names the field of a bad scenario and exits 2', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'name: bad\ndevices:\n  - { sensor: ecg, kind: ecg, transport: serial, source: { type: wfdb, record: x }, faults: { corruptRate: 2 } }\n');
    const run = await medge(['sim', '--scenario', file, '--json'], { timeoutMs: 30_000 });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/devices\[0\]\.faults\.corruptRate: must be <= 1 \(got 2\)/);
  });
});
