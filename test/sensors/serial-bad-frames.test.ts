/**
 * Bad frames from a serial ECG front end inside the real runtime (a socat pty pair, the real SQLite
 * ledger): a DATA frame whose sample rate no analysis can take must not end the link, and the bytes of
 * a frame cut short must be stored or quarantined while the runtime runs, not only at shutdown.
 * Skips without socat unless MEDGE_REQUIRE_SYSTEM=1.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../device-sdk/clock.js';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeBody } from '../../device-sdk/proto/index.js';
import { encodeFrame, type StreamDataFrame } from '../../device-sdk/protocols/stream-frame.js';
import { DEFAULT_SERIAL_ECG_OPTIONS, SerialStreamDriver } from '../../device-sdk/sensors/serial-stream.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { simulatedEcg } from '../helpers/ecg-chunks.js';
import { createPtyPair, findSocat, type PtyPair, systemAvailable } from '../helpers/pty.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');
const tempDir = useTempDirs('serial-bad-frames');
const PER_FRAME = 36;

/** 360 Hz DATA frames of the simulated 72 /min ECG, `PER_FRAME` samples each, seq and counter from `first`. */
function ecgFrames(seconds: number, first: { seq: number; sample: number }, rateHz = 360): StreamDataFrame[] {
  const samples = Int16Array.from(simulatedEcg(seconds).flatMap((c) => Array.from(c.samples)));
  const gain = simulatedEcg(0.25)[0]?.gain ?? 1;
  const frames: StreamDataFrame[] = [];
  for (let i = 0; i + PER_FRAME <= samples.length; i += PER_FRAME) {
    frames.push({
      kind: 'data',
      seq: (first.seq + frames.length) & 0xffff,
      seqReset: first.seq === 0 && frames.length === 0,
      deviceType: 'ecg',
      sampleFormat: 'int16le',
      unit: 'mV',
      rateHz,
      gain,
      firstSample: first.sample + i,
      clockReset: false,
      leadOff: 0,
      saturated: 0,
      channels: [samples.slice(i, i + PER_FRAME)],
    });
  }
  return frames;
}

async function withRuntime(deviceId: string, test: (io: { write: (bytes: Uint8Array) => Promise<unknown>; runtime: Runtime; pair: PtyPair }) => Promise<void>): Promise<string> {
  const dir = tempDir();
  const pair = await createPtyPair();
  const config = parseRuntimeConfig(
    { deviceId, dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: [{ type: 'device', sensor: 'ecg', driver: 'serial-ecg', options: { path: pair.b, identify: false } }] },
    dir,
  );
  const runtime = new Runtime(config, { logger: silentLogger });
  runtime.start();
  // Written through libuv's thread pool: a blocking write would stop the runtime (same process) from reading.
  const port = await open(pair.a, 'w');
  try {
    await waitFor(() => runtime.status().sensors.some((s) => s.sensor === 'ecg' && s.connected), 'the ECG port open');
    await test({ write: (bytes) => port.write(bytes), runtime, pair });
  } finally {
    await port.close();
    await runtime.stop();
    await pair.close();
  }
  return ledgerPath(join(dir, 'device'));
}

describe.skipIf(!socatFound)('bad frames from a serial ECG front end in the runtime (needs socat: apt-get install -y socat)', () => {
  it('one DATA frame at 1e9 Hz is stored and reported, and the ECG before and after it is stored and monitored: the link stays up', async () => {
    const before = ecgFrames(20, { seq: 0, sample: 0 });
    const bad: StreamDataFrame = { ...(before.at(-1) as StreamDataFrame), seq: before.length, firstSample: before.length * PER_FRAME, rateHz: 1e9 };
    const after = ecgFrames(20, { seq: before.length + 1, sample: (before.length + 1) * PER_FRAME });
    const sent = [...before, bad, ...after];
    const ledger = await withRuntime('serial-bad-1', async ({ write, runtime }) => {
      for (const frame of sent) await write(encodeFrame(frame));
      await waitFor(() => runtime.status().backlog.chunk === sent.length, `all ${sent.length} chunks stored`, 20_000);
      expect(runtime.status().sensors.find((s) => s.sensor === 'ecg')?.connected).toBe(true);
    });
    const chunks = readLedgerBodies(ledger, 'chunk').map((row) => decodeBody('chunk', row.body));
    expect(chunks.map((c) => c.firstSample)).toEqual(sent.map((f) => f.firstSample));
    expect(readLedgerBodies(ledger, 'quarantine')).toEqual([]);
    const alerts = readLedgerBodies(ledger, 'alert').map((row) => decodeBody('alert', row.body));
    const notMonitored = alerts.filter((a) => a.kind === 'ecg-not-monitored');
    expect(notMonitored.map((a) => a.severity)).toEqual([2]);
    expect(notMonitored[0]?.message).toMatch(/at 1000000000 Hz.*cannot run above 16000 Hz/);
    expect(alerts.filter((a) => a.kind === 'ecg-signal-lost' || a.kind === 'analysis-error')).toEqual([]);
    // Heart rates from the ECG after the bad frame (its first sample is at 20 s of device time).
    const rates = readLedgerBodies(ledger, 'reading').map((row) => decodeBody('reading', row.body)).filter((r) => r.type === 'heart-rate');
    const t20 = (chunks[0]?.t0 as number) + 20_000;
    expect(rates.filter((r) => r.tDevice > t20 + 5_000).length).toBeGreaterThan(0);
    for (const r of rates) expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
  }, 60_000);

  it('an exception in the sink (storage or analysis) does not end the session: the frames after it are delivered', async () => {
    const pair = await createPtyPair();
    const seen: number[] = [];
    const driver = new SerialStreamDriver('serial-ecg', 'ecg', 'ecg', { ...DEFAULT_SERIAL_ECG_OPTIONS, path: pair.b, identify: false }, { clock: systemClock, logger: silentLogger, lastMeterRecord: () => undefined });
    const frames = ecgFrames(2, { seq: 0, sample: 0 });
    const port = await open(pair.a, 'w');
    try {
      driver.start({
        chunk: (c) => {
          seen.push(c.firstSample);
          if (seen.length === 3) throw new Error('the analysis refused this chunk');
        },
        reading: () => undefined,
        quarantine: () => undefined,
        gap: () => undefined,
        state: () => undefined,
      });
      await waitFor(() => driver.stats.sessions === 1, 'the port open');
      for (const frame of frames) await port.write(encodeFrame(frame));
      await waitFor(() => seen.length === frames.length, `all ${frames.length} frames delivered`);
    } finally {
      await port.close();
      await driver.stop();
      await pair.close();
    }
    expect(seen).toEqual(frames.map((f) => f.firstSample));
    expect(driver.stats.sessions).toBe(1);
  }, 60_000);

  it('the bytes of a frame cut short are quarantined about 1 s after the device falls silent, not at shutdown', async () => {
    const frames = ecgFrames(2, { seq: 0, sample: 0 });
    const cut = encodeFrame(frames.at(-1) as StreamDataFrame).subarray(0, 40);
    let quarantinedWhileRunning = 0;
    const ledger = await withRuntime('serial-bad-2', async ({ write, runtime }) => {
      for (const frame of frames.slice(0, -1)) await write(encodeFrame(frame));
      await write(cut);
      await waitFor(() => runtime.status().backlog.chunk === frames.length - 1, 'the whole frames stored');
      await waitFor(() => runtime.status().backlog.quarantine === 1, 'the cut frame quarantined while the runtime runs', 5_000);
      quarantinedWhileRunning = runtime.status().backlog.quarantine;
    });
    expect(quarantinedWhileRunning).toBe(1);
    const rows = readLedgerBodies(ledger, 'quarantine').map((row) => decodeBody('quarantine', row.body));
    expect(rows.map((q) => [q.bytes.length, q.error])).toEqual([[40, expect.stringMatching(/ended 40 bytes into a/)]]);
  }, 60_000);

  it('a frame that trickles in over more than the 1 s idle time, 400 ms between its pieces, is parsed, not quarantined', async () => {
    const frames = ecgFrames(1, { seq: 0, sample: 0 });
    const last = encodeFrame(frames.at(-1) as StreamDataFrame);
    const step = Math.ceil(last.length / 6);
    const ledger = await withRuntime('serial-bad-3', async ({ write, runtime }) => {
      for (const frame of frames.slice(0, -1)) await write(encodeFrame(frame));
      // 6 pieces, 400 ms apart: 2 s from the first byte of the frame to its last, never 1 s without a byte.
      for (let at = 0; at < last.length; at += step) {
        await write(last.subarray(at, at + step));
        await new Promise((resolve) => setTimeout(resolve, 400));
      }
      await waitFor(() => runtime.status().backlog.chunk === frames.length, 'every frame stored');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    });
    expect(readLedgerBodies(ledger, 'chunk').map((row) => decodeBody('chunk', row.body).firstSample)).toEqual(frames.map((f) => f.firstSample));
    expect(readLedgerBodies(ledger, 'quarantine')).toEqual([]);
  }, 60_000);
});
