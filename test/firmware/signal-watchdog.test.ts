import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Alert } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ECG_SIGNAL_LOST, ECG_SIGNAL_RESTORED, SignalWatchdog } from '../../firmware/signal-watchdog.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('signal-watchdog');

const T0 = Date.UTC(2026, 0, 1);

describe('SignalWatchdog', () => {
  it('raises one lost alert per silent episode and a note when samples come back', () => {
    const w = new SignalWatchdog(['ecg', 'ecg2'], T0);
    expect(w.seen('ecg', T0 + 1000)).toBeUndefined();
    expect(w.seen('ecg2', T0 + 1000)).toBeUndefined();
    expect(w.check(T0 + 6000)).toEqual([]);
    w.seen('ecg2', T0 + 5500);
    const lost = w.check(T0 + 6001);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ kind: ECG_SIGNAL_LOST, severity: 2, sensor: 'ecg', t: T0 + 6001, message: expect.stringContaining('No ECG signal from sensor ecg for 5 s') });
    // Still silent: no second alert for the same episode.
    expect(w.check(T0 + 60_000).filter((a) => a.sensor === 'ecg')).toEqual([]);
    expect(w.seen('ecg', T0 + 70_000)).toMatchObject({ kind: ECG_SIGNAL_RESTORED, severity: 1, sensor: 'ecg', t: T0 + 70_000, message: expect.stringContaining('back after 69 s') });
    // A new episode alerts again.
    expect(w.check(T0 + 75_001).map((a) => a.sensor)).toContain('ecg');
  });

  it('gives a device time to connect before its first samples, and stops watching when cleared', () => {
    const w = new SignalWatchdog(['ble-ecg'], T0);
    expect(w.check(T0 + 29_000)).toEqual([]);
    const [never] = w.check(T0 + 31_000);
    expect(never?.message).toMatch(/since the device started 31 s ago/);
    const cleared = new SignalWatchdog(['ecg'], T0);
    cleared.clear();
    expect(cleared.check(T0 + 120_000)).toEqual([]);
    expect(cleared.seen('ecg', T0 + 120_000)).toBeUndefined();
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
