/**
 * The simulated stream device (simulator/devices/stream-device.ts) on a real socat pty, read by a
 * plain SerialTransport + StreamFramer (no driver): what it sends matches its counters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StreamFramer } from '../../device-sdk/protocols/stream-framer.js';
import { SerialTransport } from '../../device-sdk/transport/serial-transport.js';
import { arraySource, createStreamDevice, type SimStreamDevice } from '../../simulator/devices/stream-device.js';
import { findSocat, systemAvailable } from '../helpers/pty.js';

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
