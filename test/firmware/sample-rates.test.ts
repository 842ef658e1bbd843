// Streams at sample rates the analyses are not validated for (QA D8): reported once per sensor as a log
// warning and a sample-rate-unvalidated alert (severity 1) naming the sensor, its rate and the range; ECG
// findings outside 128-360 Hz are flagged and their input quality halved; ECG at or below 36 Hz (which
// `medge ecg` refuses) is not analysed. Validated rates are untouched.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Finding, StreamChunk } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ECG_NOT_MONITORED, ecgAnalyzer, SAMPLE_RATE_UNVALIDATED, UNVALIDATED_SAMPLE_RATE } from '../../firmware/analyzers.js';
import { requireBuild } from '../helpers/cli.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('sample-rates');

describe('sample rates outside the validated ranges', () => {
  it('in the runtime: ECG at 50 Hz and heart sounds at 1 kHz are reported once each; 50 Hz ECG findings are flagged, 360 Hz ones are not', async () => {
    requireBuild();
    const { runtime, clock, alerts, ledger } = startOfflineRuntime(tempDir(), 'rates-1', [
      { type: 'sim-ecg', sensor: 'ecg-50', rateHz: 50, chunkMs: 500 },
      { type: 'sim-ecg', sensor: 'ecg-360', rateHz: 360, chunkMs: 500 },
      { type: 'sim-pcg', sensor: 'steth-1k', rateHz: 1000, chunkMs: 500 },
    ]);
    try {
      for (let k = 0; k < 40; k++) clock.advance(500);
    } finally {
      await runtime.stop();
    }
    const degraded = alerts.filter((a) => a.kind === SAMPLE_RATE_UNVALIDATED);
    expect(degraded.map((a) => [a.sensor, a.severity])).toEqual([
      ['ecg-50', 1],
      ['steth-1k', 1],
    ]);
    expect(degraded[0]!.message).toBe(
      `Sensor ecg-50 sends ECG at 50 Hz; the ECG beat analysis is validated for 128-360 Hz: its findings are flagged ${UNVALIDATED_SAMPLE_RATE} with halved input quality. Configure the device to sample within 128-360 Hz.`,
    );
    expect(degraded[1]!.message).toMatch(/^Sensor steth-1k sends heart sounds at 1000 Hz; the heart-sound screen is validated for 1600 Hz or more: every window will be unreadable \(low-sample-rate\)/);
    const findings = readLedgerBodies(ledger, 'finding').map((row) => decodeBody('finding', row.body) as Finding);
    // Findings carry no sensor: only the 50 Hz stream is outside its range, so the flagged ones are its.
    const flagged = findings.filter((f) => f.qualityFlags?.includes(UNVALIDATED_SAMPLE_RATE));
    expect(flagged.filter((f) => f.kind === 'ecg-beat-classes').length).toBeGreaterThan(0);
    for (const f of flagged) {
      expect(f.kind).toMatch(/^ecg-/);
      expect(f.inputQuality).toBeLessThanOrEqual(0.5);
    }
    expect(findings.filter((f) => f.kind === 'ecg-beat-classes' && !f.qualityFlags?.includes(UNVALIDATED_SAMPLE_RATE)).length).toBeGreaterThan(0);
  }, 60_000);

  it('does not report the same unvalidated rate again when the device starts again; a new rate, or the rate back after a validated one, is reported', async () => {
    requireBuild();
    const dir = tempDir();
    const boot = async (rateHz: number) => {
      const { runtime, clock, alerts } = startOfflineRuntime(dir, 'rates-boots', [{ type: 'sim-pcg', sensor: 'steth', rateHz, chunkMs: 500 }]);
      try {
        for (let k = 0; k < 4; k++) clock.advance(500);
      } finally {
        await runtime.stop();
      }
      return alerts.filter((a) => a.kind === SAMPLE_RATE_UNVALIDATED).map((a) => a.message.match(/at (\d+) Hz/)?.[1]);
    };
    expect(await boot(1000)).toEqual(['1000']);
    expect(await boot(1000)).toEqual([]);
    expect(await boot(1200)).toEqual(['1200']);
    expect(await boot(4000)).toEqual([]);
    expect(await boot(1200)).toEqual(['1200']);
  }, 60_000);

  it('does not analyse ECG at or below 36 Hz (the QRS band-pass cannot run), and says so once', () => {
    const now = () => Date.UTC(2026, 0, 1);
    const analyzer = ecgAnalyzer(['ecg'], { logger: silentLogger, now, verify: undefined });
    const outs = Array.from({ length: 30 }, (_, k): StreamChunk => {
      const samples = Int16Array.from({ length: 30 }, (_, i) => (i % 30 === 0 ? 1000 : 0) + ((k * 7 + i) % 5));
      return { sensor: 'ecg', channel: 0, firstSample: k * 30, t0: now() + k * 1000, rateHz: 30, unit: 'mV', gain: 1000, samples };
    }).map((c) => analyzer.onChunk?.(c));
    expect(outs.flatMap((o) => o?.findings ?? [])).toEqual([]);
    expect(outs.flatMap((o) => o?.readings ?? [])).toEqual([]);
    const alerts = outs.flatMap((o) => o?.alerts ?? []);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ kind: ECG_NOT_MONITORED, severity: 2, sensor: 'ecg', t: now() });
    expect(alerts[0]!.message).toContain('sends ECG at 30 Hz; the ECG beat analysis is validated for 128-360 Hz and cannot run at or below 36 Hz: this ECG is stored but not analysed: heart rhythm is not being monitored');
  });
});
