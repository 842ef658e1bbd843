import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Alert } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ECG_SIGNAL_LOST, ECG_SIGNAL_RESTORED, SignalWatchdog } from '../../firmware/signal-watchdog.js';
import { SENSOR_DATA_UNREADABLE } from '../../firmware/unreadable-data.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('signal-watchdog');

const T0 = Date.UTC(2026, 0, 1);

/** A clock whose wall time and monotonic time are set by the test. */
function testClock(): { now: () => number; monotonic: () => number; at: (ms: number, wall?: number) => void } {
  let mono = 0;
  let wall = T0;
  return {
    now: () => wall,
    monotonic: () => mono,
    at: (ms, wallMs = T0 + ms) => {
      mono = ms;
      wall = wallMs;
    },
  };
}

describe('SignalWatchdog', () => {
  it('raises one lost alert per silent episode and a note when samples come back', () => {
    const clock = testClock();
    const w = new SignalWatchdog(['ecg', 'ecg2'], clock);
    clock.at(1000);
    expect(w.seen('ecg')).toBeUndefined();
    expect(w.seen('ecg2')).toBeUndefined();
    clock.at(5500);
    w.seen('ecg2');
    clock.at(6000);
    expect(w.check()).toEqual([]);
    clock.at(6001);
    const lost = w.check();
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ kind: ECG_SIGNAL_LOST, severity: 2, sensor: 'ecg', t: T0 + 6001, message: expect.stringContaining('No ECG signal from sensor ecg for 5 s') });
    // Still silent: no second alert for the same episode.
    clock.at(60_000);
    expect(w.check().filter((a) => a.sensor === 'ecg')).toEqual([]);
    clock.at(70_000);
    expect(w.seen('ecg')).toMatchObject({ kind: ECG_SIGNAL_RESTORED, severity: 1, sensor: 'ecg', t: T0 + 70_000, message: expect.stringContaining('back after 69 s') });
    // A new episode alerts again.
    clock.at(75_001);
    expect(w.check().map((a) => a.sensor)).toContain('ecg');
  });

  it('gives a device time to connect before its first samples, and stops watching when cleared', () => {
    const clock = testClock();
    const w = new SignalWatchdog(['ble-ecg'], clock);
    clock.at(29_000);
    expect(w.check()).toEqual([]);
    clock.at(31_000);
    const [never] = w.check();
    expect(never?.message).toMatch(/since the device started 31 s ago/);
    clock.at(40_000);
    expect(w.seen('ble-ecg')?.message).toMatch(/back after 40 s/);
    const cleared = new SignalWatchdog(['ecg'], clock);
    cleared.clear();
    clock.at(120_000);
    expect(cleared.check()).toEqual([]);
    expect(cleared.seen('ecg')).toBeUndefined();
  });

  it('measures silence on the monotonic clock, so a step of the wall clock neither raises nor hides it', () => {
    const clock = testClock();
    const w = new SignalWatchdog(['ecg'], clock);
    clock.at(1000);
    w.seen('ecg');
    // NTP sets the wall clock an hour ahead while chunks keep coming: nothing is lost.
    clock.at(2000, T0 + 3_600_000);
    expect(w.check()).toEqual([]);
    w.seen('ecg');
    // Then back an hour, and the sensor stops: lost 5 s later all the same, dated by the wall clock.
    clock.at(3000, T0 - 3_600_000);
    w.seen('ecg');
    clock.at(8001, T0 - 3_595_000);
    expect(w.check()).toEqual([expect.objectContaining({ kind: ECG_SIGNAL_LOST, t: T0 - 3_595_000 })]);
  });
});

describe('SignalWatchdog and chunks without samples (status-only reports of the front end)', () => {
  const chunk = (sensor: string, channel: number, samples: number, leadOff = false) => ({ sensor, channel, samples: new Int16Array(samples), ...(leadOff ? { leadOff: true as const } : {}) });
  /** A watchdog of sensor `ecg` that saw samples at 1 s. */
  function watching() {
    const clock = testClock();
    const w = new SignalWatchdog(['ecg'], clock);
    clock.at(1000);
    w.chunk(chunk('ecg', 0, 90));
    return { clock, w };
  }

  it('takes status-only chunks for no signal: a front end that sends only those is raised as lost', () => {
    const { clock, w } = watching();
    for (let ms = 2000; ms <= 6000; ms += 1000) {
      clock.at(ms);
      expect(w.chunk(chunk('ecg', 0, 0))).toBeUndefined();
      w.chunk(chunk('ecg', 1, 0, true));
    }
    clock.at(6001);
    expect(w.check()).toEqual([expect.objectContaining({ kind: ECG_SIGNAL_LOST, sensor: 'ecg' })]);
    // Samples end the episode.
    clock.at(7000);
    expect(w.chunk(chunk('ecg', 0, 90))).toMatchObject({ kind: ECG_SIGNAL_RESTORED });
  });

  it('keeps quiet for a front end that reports lead-off on channel 0 (ecg-lead-off says it), without ending a lost episode', () => {
    const { clock, w } = watching();
    for (let ms = 2000; ms <= 20_000; ms += 1000) {
      clock.at(ms);
      w.chunk(chunk('ecg', 0, 0, true));
      expect(w.check()).toEqual([]);
    }
    // Lost first (nothing for 5 s), then lead-off reports: still lost, no "monitoring resumes" note.
    clock.at(25_001);
    expect(w.check()).toHaveLength(1);
    clock.at(26_000);
    expect(w.chunk(chunk('ecg', 0, 0, true))).toBeUndefined();
    clock.at(40_000);
    expect(w.check()).toEqual([]);
    expect(w.chunk(chunk('ecg', 0, 90))).toMatchObject({ kind: ECG_SIGNAL_RESTORED });
  });
});

describe('the runtime watches its ECG sensors (virtual clock, offline)', () => {
  it('raises the lost-signal alarm for an ECG device that never sends, and none for sources stopped on purpose', async () => {
    const dir = tempDir();
    const { runtime, clock, alerts, ledger } = startOfflineRuntime(dir, 'watchdog', [
      // A serial ECG front end whose port is not there: the driver keeps retrying, nothing arrives.
      { type: 'device', sensor: 'ecg-unplugged', driver: 'serial-ecg', options: { path: join(dir, 'no-such-tty') } },
      { type: 'sim-ecg', sensor: 'ecg-ok' },
    ]);
    try {
      for (let k = 0; k < 29; k++) clock.advance(1000);
      expect(alerts.filter((a) => a.kind === ECG_SIGNAL_LOST)).toEqual([]);
      for (let k = 0; k < 3; k++) clock.advance(1000);
      expect(alerts.filter((a) => a.kind === ECG_SIGNAL_LOST).map((a) => a.sensor)).toEqual(['ecg-unplugged']);
      await runtime.stopSources();
      for (let k = 0; k < 60; k++) clock.advance(1000);
    } finally {
      await runtime.stop();
    }
    expect(alerts.filter((a) => a.kind.startsWith('ecg-signal-')).map((a) => a.sensor)).toEqual(['ecg-unplugged']);
    const stored = readLedgerBodies(ledger, 'alert').map((r) => decodeBody('alert', r.body) as Alert);
    expect(stored.filter((a) => a.kind === ECG_SIGNAL_LOST)).toEqual([expect.objectContaining({ sensor: 'ecg-unplugged', severity: 2 })]);
  }, 60_000);
});

describe('a sensor whose data are all unreadable (virtual clock, offline)', () => {
  it('raises one sensor-data-unreadable alert with the last error, and none for a sensor with some readable data', async () => {
    const { runtime, clock, alerts } = startOfflineRuntime(tempDir(), 'unreadable', [
      // Every message of this meter is corrupt: all of it goes to quarantine.
      { type: 'sim-glucose', sensor: 'garbled', intervalMs: 1000, corruptRate: 1 },
      // Half of this one's are: the rest are readings, so it is not reported.
      { type: 'sim-glucose', sensor: 'noisy', intervalMs: 1000, corruptRate: 0.5 },
    ]);
    try {
      for (let k = 0; k < 15; k++) clock.advance(1000);
      expect(alerts.filter((a) => a.kind === SENSOR_DATA_UNREADABLE)).toEqual([]);
      for (let k = 0; k < 40; k++) clock.advance(1000);
    } finally {
      await runtime.stop();
    }
    const unreadable = alerts.filter((a) => a.kind === SENSOR_DATA_UNREADABLE);
    expect(unreadable.map((a) => [a.sensor, a.severity])).toEqual([['garbled', 2]]);
    expect(unreadable[0]!.message).toMatch(/^Everything sensor garbled sent for \d+ s \(20 frames or messages\) was unreadable and is kept in quarantine, so none of it is analysed; the last error: .+\. Check the device/);
  }, 60_000);
});
