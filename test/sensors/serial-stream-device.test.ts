/**
 * The simulated stream device (simulator/devices/stream-device.ts) on a real socat pty, read by a
 * plain SerialTransport + StreamFramer (no driver): what it sends matches its counters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StreamFramer } from '../../device-sdk/protocols/stream-framer.js';
import { SerialTransport } from '../../device-sdk/transport/serial-transport.js';
import { systemClock } from '../../device-sdk/clock.js';
import { silentLogger } from '../../device-sdk/log.js';
import { createDriver } from '../../device-sdk/sensors/registry.js';
import type { SerialStreamDriver } from '../../device-sdk/sensors/serial-stream.js';
import { arraySource, createStreamDevice, type SimStreamDevice, type StreamDeviceOptionsInput } from '../../simulator/devices/stream-device.js';
import { findSocat, systemAvailable } from '../helpers/pty.js';
import { waitFor } from '../helpers/wait.js';
import { RecordingSink, testSignal } from './serial-stream.contract.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');

describe.skipIf(!socatFound)('simulated stream device on a pty (needs socat: apt-get install -y socat)', () => {
  let device: SimStreamDevice | undefined;
  afterEach(async () => {
    await device?.stop();
    device = undefined;
  });

  it('sends INFO, then DATA frames whose samples, seq and faults match its counters', async () => {
    const sets = 3600;
    const samples = new Int16Array(sets * 2).map((_, i) => (i % 2 === 0 ? i / 2 : -(i - 1) / 2) % 30000);
    device = await createStreamDevice({ deviceType: 'ecg', channels: 2, rateHz: 360, source: arraySource(samples, 2), speed: 30, faults: { corruptRate: 0.1, vendorFrameRate: 0.1, seed: 3 }, start: false });
    const host = new SerialTransport({ path: device.hostPath! });
    await host.open();
    const framer = new StreamFramer();
    const kinds: Record<string, number> = {};
    const received = new Int16Array(sets).fill(-1);
    let bytes = 0;
    let garbageBytes = 0;
    const reading = (async () => {
      try {
        for await (const chunk of host) {
          bytes += chunk.length;
          for (const e of framer.push(chunk)) {
            const k = e.type === 'frame' ? e.frame.kind : e.type;
            kinds[k] = (kinds[k] ?? 0) + 1;
            if (e.type === 'garbage') garbageBytes += e.bytes.length;
            if (e.type === 'frame' && e.frame.kind === 'data') received.set(e.frame.channels[0]!, e.frame.firstSample);
          }
        }
      } catch {
        // closed
      }
    })();
    await device.start();
    await device.ended;
    await new Promise((resolve) => setTimeout(resolve, 200));
    await host.close();
    await reading;
    const stats = device.stats;
    expect(stats.ended).toBe(true);
    expect(stats.sourceSamples).toBe(sets);
    expect(kinds.info).toBe(1);
    expect(kinds.data).toBe(stats.dataFramesSent);
    expect(kinds.vendor).toBe(stats.vendorFramesSent);
    expect(stats.corrupted.length).toBeGreaterThan(0);
    expect(bytes).toBe(stats.bytesWritten);
    expect(garbageBytes).toBe(stats.corrupted.reduce((n, s) => n + s.bytes, 0));
    // Every sample outside the corrupted spans arrived at its counter position.
    const lost = new Set<number>();
    for (const span of stats.corrupted) for (let i = 0; i < span.samples; i++) lost.add(span.firstSample + i);
    for (let i = 0; i < sets; i++) {
      if (lost.has(i)) expect(received[i]).toBe(-1);
      else expect(received[i]).toBe(samples[2 * i]);
    }
  });
});

describe.skipIf(!socatFound)('serial-ecg under device faults: counter wrap, device-side skips, power cycles, a slow device, clock skew (needs socat)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  async function run(sets: number, extra: Partial<StreamDeviceOptionsInput>, during?: (device: SimStreamDevice, sink: RecordingSink) => Promise<void>) {
    const signal = testSignal(sets, 1);
    const device = await createStreamDevice({ deviceType: 'ecg', channels: 1, rateHz: 360, source: arraySource(signal), speed: 20, startOn: 'identify', ...extra });
    cleanups.push(() => device.stop());
    const driver = createDriver('serial-ecg', 'ecg', { path: device.hostPath, backoff: { initialMs: 20, maxMs: 200 } }, { clock: systemClock, logger: silentLogger, lastMeterRecord: () => undefined }) as SerialStreamDriver;
    cleanups.push(() => driver.stop());
    const sink = new RecordingSink();
    driver.start(sink);
    if (during) await during(device, sink);
    await device.ended;
    await waitFor(() => driver.stats.bytesReceived === device.stats.bytesWritten, 'every byte received');
    await driver.stop();
    return { device, driver, sink, signal };
  }

  it('unwraps the 32-bit sample counter: indices continue past 2^32 - 1 without a gap', async () => {
    const start = 2 ** 32 - 1000;
    const { sink, signal } = await run(3600, { startSample: start });
    const got = [...sink.samples[0]!.entries()].sort((a, b) => a[0] - b[0]);
    expect(got.length).toBe(3600);
    expect(got[0]![0]).toBe(start);
    expect(got.at(-1)![0]).toBe(start + 3599);
    expect(got.every(([index, value]) => value === signal[index - start])).toBe(true);
    expect(sink.gaps).toEqual([]);
  });

  it('reports a device-side counter jump as a device-skip gap (no seq gap)', async () => {
    const { sink } = await run(3600, { speed: 10 }, async (device, s) => {
      await waitFor(() => (s.samples[0]?.size ?? 0) > 500, 'some samples');
      device.jumpCounter(123);
    });
    expect(sink.gaps.map((g) => [g.samples, g.reason])).toEqual([[123, 'device-skip']]);
    expect(sink.samples[0]!.size).toBe(3600);
    expect(sink.duplicates).toBe(0);
  });

  it('keeps indices going forward across a power cycle (SEQ_RESET + CLOCK_RESET): nothing stored twice', async () => {
    const { sink, device } = await run(3600, { speed: 6 }, async (d, s) => {
      await waitFor(() => (s.samples[0]?.size ?? 0) > 500, 'some samples');
      await d.unplug({ downMs: 200, mode: 'reset' });
    });
    const indices = [...sink.samples[0]!.keys()].sort((a, b) => a - b);
    expect(sink.duplicates).toBe(0);
    // The device counter restarted at 0; the stream index continued after the last one stored.
    expect(indices.length).toBe(3600 - device.stats.droppedWhileUnplugged.reduce((n, s) => n + s.samples, 0));
    for (let i = 1; i < indices.length; i++) expect(indices[i]).toBe(indices[i - 1]! + 1);
    expect(device.stats.infoFramesSent).toBeGreaterThanOrEqual(2);
  });

  it('takes a slow, trickling device and a skewed device clock without loss', async () => {
    const slow = await run(720, { speed: 4, faults: { slowBytesPerSecond: 20_000, writeChunkBytes: 7 } });
    expect(slow.sink.samples[0]!.size).toBe(720);
    expect(slow.sink.gaps).toEqual([]);
    const skewed = await run(1800, { speed: 10, faults: { clockSkewPpm: 50_000 } });
    expect(skewed.sink.samples[0]!.size).toBe(1800);
    expect(skewed.sink.chunks.every((c) => c.rateHz === 360)).toBe(true);
  });
});
