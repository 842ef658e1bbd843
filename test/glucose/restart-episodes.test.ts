import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Reading } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { useTempDirs } from '../helpers/temp.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

const tempDir = useTempDirs('restart-episodes');

const STEP_MS = 300_000;
const HOUR = 3600_000;
/**
 * The simulated meters' readings follow the clock (record = 5-min slots since 2024-01-01) plus a little
 * noise: from here, `high` (a 40 h swing) is above 250 mg/dL from about 2 h to 6.5 h, and `dips` (a 4 h
 * swing) falls to 50 mg/dL every 4 hours (troughs at about 0.8, 4.8 and 8.8 h).
 */
const ORIGIN = Date.UTC(2024, 0, 1) + (219 * 480 + 74) * STEP_MS;
const SOURCES = [
  { type: 'sim-glucose', sensor: 'high', intervalMs: STEP_MS, corruptRate: 0, periodReadings: 480 },
  { type: 'sim-glucose', sensor: 'dips', intervalMs: STEP_MS, corruptRate: 0, periodReadings: 48 },
];
const STEPS = 10 * 12;

interface Raised extends Pick<Alert, 'kind' | 'sensor' | 't'> {
  boot: number;
}

/**
 * Runs the runtime on one data directory for `STEPS` readings, stopping and starting it again (same ledger
 * file, the clock going on) whenever `restartAfter` says so after a step. Returns what it raised and stored.
 */
async function runWithRestarts(dir: string, restartAfter: (step: number, raised: readonly Raised[]) => boolean, more: Record<string, unknown> = {}): Promise<{ raised: Raised[]; stored: Alert[]; readings: Reading[] }> {
  const config = parseRuntimeConfig({ deviceId: 'glu-restart', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: SOURCES, ...more }, dir);
  const clock = new VirtualClock(ORIGIN);
  const raised: Raised[] = [];
  let boot = 0;
  for (let step = 0; step < STEPS; ) {
    boot += 1;
    const runtime = new Runtime(config, { logger: silentLogger, clock });
    const b = boot;
    runtime.on('alert', (a: Alert) => raised.push({ boot: b, kind: a.kind, t: a.t, ...(a.sensor !== undefined ? { sensor: a.sensor } : {}) }));
    runtime.start();
    try {
      do clock.advance(STEP_MS);
      while (++step < STEPS && !restartAfter(step, raised));
    } finally {
      await runtime.stop();
    }
  }
  const ledger = ledgerPath(join(dir, 'device'));
  return {
    raised,
    stored: readLedgerBodies(ledger, 'alert').map((r) => decodeBody('alert', r.body)),
    readings: readLedgerBodies(ledger, 'reading').map((r) => decodeBody('reading', r.body)),
  };
}

const hours = (t: number) => Math.round(((t - ORIGIN) / HOUR) * 100) / 100;
const of = (raised: readonly Pick<Alert, 'kind' | 'sensor' | 't'>[], kind: string) => raised.filter((a) => a.kind === kind).map((a) => `${a.sensor} ${hours(a.t)} h`);

/** The device time of the reading of `sensor` at which its stored trace has been above 250 mg/dL for 120 min (no gap over 15 min), first. */
function sustainedHighDue(readings: readonly Reading[], sensor: string): number | undefined {
  const trace = readings.filter((r) => r.sensor === sensor).sort((a, b) => (a.tMeter as number) - (b.tMeter as number));
  let start: number | undefined;
  for (let i = 0; i < trace.length; i++) {
    const r = trace[i] as Reading;
    const gap = i > 0 && (r.tMeter as number) - ((trace[i - 1] as Reading).tMeter as number) > 15 * 60_000;
    if (r.value <= 250 || gap) start = undefined;
    if (r.value > 250) start ??= r.tMeter as number;
    if (start !== undefined && (r.tMeter as number) - start >= 120 * 60_000) return r.tDevice;
  }
  return undefined;
}

/** Whether the stored readings of `sensor` rise above 180 mg/dL between each two of `times`: each is in a fall of its own. */
function inSeparateFalls(readings: readonly Reading[], sensor: string, times: readonly number[]): boolean {
  return times.slice(1).every((t, i) => readings.some((r) => r.sensor === sensor && r.tDevice > (times[i] as number) && r.tDevice < t && r.value > 180));
}

describe('glucose alert episodes across a runtime restart (real SQLite ledger, virtual clock)', () => {
  it('raises each predicted-low and sustained-high alert once and on time when the runtime restarts during the high and during a predicted low', async () => {
    const continuous = await runWithRestarts(tempDir(), () => false);
    // Restarts: 1 h into the high (before its 2 h alert), on the reading after the first predicted low (the
    // high still going, its alert raised; the low not yet reached), and 30 min later (the episode still open).
    let predictedAt: number | undefined;
    const restarted = await runWithRestarts(tempDir(), (step, raised) => {
      if (predictedAt === undefined && raised.some((a) => a.kind === 'glucose-predicted-low')) predictedAt = step;
      return step === 36 || step === (predictedAt ?? -10) + 1 || step === (predictedAt ?? -10) + 7;
    });
    expect(predictedAt).toBeGreaterThan(36);
    expect(new Set(restarted.raised.map((a) => a.boot)).size).toBe(4);
    for (const run of [continuous, restarted]) {
      // One sustained-high alert, when the stored trace had been above 250 mg/dL for two hours.
      const due = sustainedHighDue(run.readings, 'high');
      expect(due).toBeDefined();
      expect(of(run.raised, 'hyperglycaemia-sustained')).toEqual([`high ${hours(due as number)} h`]);
      // One predicted-low alert per fall of `dips`.
      const lows = run.raised.filter((a) => a.kind === 'glucose-predicted-low');
      expect(inSeparateFalls(run.readings, 'dips', lows.map((a) => a.t)), of(run.raised, 'glucose-predicted-low').join(', ')).toBe(true);
      // What was raised is what the ledger holds.
      for (const kind of ['hyperglycaemia-sustained', 'glucose-predicted-low']) expect(of(run.stored, kind)).toEqual(of(run.raised, kind));
    }
    // The falls that alerted without a restart alert with them too.
    expect(of(restarted.raised, 'glucose-predicted-low').length).toBe(of(continuous.raised, 'glucose-predicted-low').length);
  }, 120_000);

  it('keeps a predicted-low episode of the rule-based fallback (no forecast model) open across a restart', async () => {
    // Without a model the 15-minute trend extrapolation predicts the low: a few readings after a restart are
    // enough for it to predict the same low again.
    const models = { glucoseForecast: join(tempDir(), 'no-model') };
    mkdirSync(models.glucoseForecast);
    const continuous = await runWithRestarts(tempDir(), () => false, { artifacts: { models } });
    let predictedAt: number | undefined;
    const restarted = await runWithRestarts(
      tempDir(),
      (step, raised) => {
        // The first predicted low after 2 h (the one at the start has no history to replay).
        if (predictedAt === undefined && raised.some((a) => a.kind === 'glucose-predicted-low' && a.t - ORIGIN > 2 * HOUR)) predictedAt = step;
        return step === (predictedAt ?? -10) + 1;
      },
      { artifacts: { models } },
    );
    expect(predictedAt).toBeDefined();
    for (const run of [continuous, restarted]) {
      const lows = run.raised.filter((a) => a.kind === 'glucose-predicted-low');
      expect(lows.length).toBeGreaterThanOrEqual(3);
      expect(inSeparateFalls(run.readings, 'dips', lows.map((a) => a.t)), of(run.raised, 'glucose-predicted-low').join(', ')).toBe(true);
    }
    expect(of(restarted.raised, 'glucose-predicted-low').length).toBe(of(continuous.raised, 'glucose-predicted-low').length);
  }, 120_000);

  it('replays no stored reading dated after now: a restart after the device clock was set back 48 h alerts as a first start does', async () => {
    // QA: the readings of the first boot, dated up to 48 h ahead of the clock after the restart, were replayed
    // as the last day's: every new reading came before the trace's end, was taken for a backfilled one, and
    // no glucose-predicted-low or hyperglycaemia-sustained came in the 10 h after the restart (a first start
    // raises a predicted low of the falls of `dips` and the sustained high of `high`).
    const config = (dir: string) => parseRuntimeConfig({ deviceId: 'glu-clock-back', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: SOURCES }, dir);
    const run = async (dir: string, clock: VirtualClock, steps: number): Promise<Raised[]> => {
      const raised: Raised[] = [];
      const runtime = new Runtime(config(dir), { logger: silentLogger, clock });
      runtime.on('alert', (a: Alert) => raised.push({ boot: 0, kind: a.kind, t: a.t, ...(a.sensor !== undefined ? { sensor: a.sensor } : {}) }));
      runtime.start();
      try {
        for (let i = 0; i < steps; i++) clock.advance(STEP_MS);
      } finally {
        await runtime.stop();
      }
      return raised;
    };
    const dir = tempDir();
    await run(dir, new VirtualClock(ORIGIN), STEPS);
    const back = ORIGIN - 48 * HOUR;
    const restarted = await run(dir, new VirtualClock(back), STEPS);
    const first = await run(tempDir(), new VirtualClock(back), STEPS);
    const monitorAlerts = (raised: Raised[]) => raised.filter((a) => a.kind === 'glucose-predicted-low' || a.kind === 'hyperglycaemia-sustained').map((a) => `${a.kind} ${a.sensor} ${hours(a.t)} h`);
    expect(monitorAlerts(first).length).toBeGreaterThanOrEqual(2);
    expect(monitorAlerts(restarted)).toEqual(monitorAlerts(first));
  }, 120_000);
});
