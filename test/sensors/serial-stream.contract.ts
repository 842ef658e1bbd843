/**
 * The contract every medge-stream serial driver meets, run over the simulated stream device
 * (simulator/devices/stream-device.ts) on a real socat pty and the real SerialTransport:
 * - every sample the device sent intact is delivered exactly once, at its stream index, with its value;
 * - samples of corrupted and truncated frames are reported as gaps (exactly those spans) and their
 *   bytes sit in quarantine with transport `serial:<path>`: every received byte is accounted for;
 * - vendor frames are skipped, not quarantined and not gaps;
 * - after an unplug/replug the driver reopens the port by itself and the stream resumes;
 * - a device of the other kind is not stored: its frames go to quarantine.
 * Skips without socat unless MEDGE_REQUIRE_SYSTEM=1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../device-sdk/clock.js';
import { silentLogger } from '../../device-sdk/log.js';
import type { StreamUnit } from '../../device-sdk/protocols/stream-frame.js';
import { createDriver } from '../../device-sdk/sensors/registry.js';
import type { SerialStreamDriver } from '../../device-sdk/sensors/serial-stream.js';
import type { QuarantineReport, SensorSink, SensorState, StreamGap } from '../../device-sdk/sensors/types.js';
import type { StreamChunk } from '../../device-sdk/records.js';
import { arraySource, createStreamDevice, type LostSpan, type SimStreamDevice, type StreamDeviceOptionsInput } from '../../simulator/devices/stream-device.js';
import { findSocat, systemAvailable } from '../helpers/pty.js';
import { waitFor } from '../helpers/wait.js';

export interface SerialStreamContractOptions {
  driver: 'serial-ecg' | 'serial-stethoscope';
  deviceType: 'ecg' | 'pcg';
  channels: number;
  rateHz: number;
  unit: StreamUnit;
  gain: number;
  /** Seconds of signal per test. */
  seconds: number;
  speed: number;
}

/**
 * Plays `device` (the simulated stream device, on its own pty) into the `driver` for `sensor` until the device
 * has sent everything and the driver has received every byte, then stops the driver. Both are stopped by
 * `cleanups` (run them after the test). Returns the device and what the driver delivered.
 */
export async function recordOverPty(device: StreamDeviceOptionsInput, driver: SerialStreamContractOptions['driver'], sensor: string, cleanups: Array<() => Promise<void>>): Promise<{ device: SimStreamDevice; sink: RecordingSink }> {
  const sim = await createStreamDevice(device);
  cleanups.push(() => sim.stop());
  const d = createDriver(driver, sensor, { path: sim.hostPath }, { clock: systemClock, logger: silentLogger, lastMeterRecord: () => undefined }) as SerialStreamDriver;
  cleanups.push(() => d.stop());
  const sink = new RecordingSink();
  d.start(sink);
  await sim.ended;
  await waitFor(() => d.stats.bytesReceived === sim.stats.bytesWritten, 'the driver to receive every byte written');
  await d.stop();
  return { device: sim, sink };
}

/** A sink that keeps everything, and checks that no sample index is delivered twice. */
export class RecordingSink implements SensorSink {
  readonly chunks: StreamChunk[] = [];
  readonly gaps: StreamGap[] = [];
  readonly quarantined: QuarantineReport[] = [];
  readonly states: SensorState[] = [];
  /** Per channel: stream index -> sample value. */
  readonly samples: Map<number, number>[] = [];
  duplicates = 0;
  chunk(c: StreamChunk): void {
    this.chunks.push(c);
    const channel = (this.samples[c.channel] ??= new Map());
    c.samples.forEach((v, i) => {
      if (channel.has(c.firstSample + i)) this.duplicates += 1;
      channel.set(c.firstSample + i, v);
    });
  }
  reading(): void {
    throw new Error('a stream driver delivers no readings');
  }
  quarantine(q: QuarantineReport): void {
    this.quarantined.push(q);
  }
  gap(g: StreamGap): void {
    this.gaps.push(g);
  }
  state(s: SensorState): void {
    this.states.push(s);
  }
  get quarantinedBytes(): number {
    return this.quarantined.reduce((n, q) => n + q.bytes.length, 0);
  }
  gapIndices(channel: number): Set<number> {
    const out = new Set<number>();
    for (const g of this.gaps) if (g.channel === channel) for (let i = 0; i < g.samples; i++) out.add(g.firstSample + i);
    return out;
  }
}

/** A deterministic multi-channel test signal: interleaved, every value distinct per channel within 30 000 sets. */
export function testSignal(sets: number, channels: number): Int16Array {
  const out = new Int16Array(sets * channels);
  for (let i = 0; i < sets; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = ((i * (c + 1)) % 30_000) - 15_000 + c;
  return out;
}

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');

export function serialStreamContract(o: SerialStreamContractOptions): void {
  describe.skipIf(!socatFound)(`${o.driver} contract over the simulated device on a pty (needs socat: apt-get install -y socat)`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of cleanups.reverse()) await c();
      cleanups.length = 0;
    });

    const sets = Math.round(o.seconds * o.rateHz);
    const signal = testSignal(sets, o.channels);

    async function setup(extra: Partial<StreamDeviceOptionsInput> = {}, driverOptions: Record<string, unknown> = {}) {
      const device = await createStreamDevice({
        deviceType: o.deviceType,
        channels: o.channels,
        rateHz: o.rateHz,
        unit: o.unit,
        gain: o.gain,
        source: arraySource(signal, o.channels),
        speed: o.speed,
        startOn: 'identify',
        ...extra,
      });
      cleanups.push(() => device.stop());
      const driver = createDriver(o.driver, 'sensor-1', { path: device.hostPath, backoff: { initialMs: 20, maxMs: 200 }, ...driverOptions }, { clock: systemClock, logger: silentLogger, lastMeterRecord: () => undefined }) as SerialStreamDriver;
      cleanups.push(() => driver.stop());
      const sink = new RecordingSink();
      driver.start(sink);
      return { device, driver, sink };
    }

    /** Waits until the device ended and the driver has classified every byte it sent. */
    async function settle(device: SimStreamDevice, driver: SerialStreamDriver): Promise<void> {
      await device.ended;
      await waitFor(() => driver.stats.bytesReceived === device.stats.bytesWritten, 'the driver to receive every byte written', 20_000);
      await driver.stop();
    }

    function expectExactlyOnce(sink: RecordingSink, lost: readonly LostSpan[], lastSample: number): void {
      expect(sink.duplicates).toBe(0);
      const lostIndices = new Set<number>();
      for (const span of lost) for (let i = 0; i < span.samples; i++) lostIndices.add(span.firstSample + i);
      for (let c = 0; c < o.channels; c++) {
        const got = sink.samples[c] ?? new Map<number, number>();
        const gaps = sink.gapIndices(c);
        for (let i = 0; i < lastSample; i++) {
          if (lostIndices.has(i)) {
            expect(got.has(i), `channel ${c} sample ${i} was lost but stored`).toBe(false);
            expect(gaps.has(i), `channel ${c} sample ${i} was lost but not in a gap`).toBe(true);
          } else {
            expect(got.get(i), `channel ${c} sample ${i}`).toBe(signal[i * o.channels + c]);
            expect(gaps.has(i)).toBe(false);
          }
        }
      }
    }

    it('stores every sample exactly once at its stream index, with the device identity, rate, unit and gain', async () => {
      const { device, driver, sink } = await setup();
      await settle(device, driver);
      expect(device.stats.sourceSamples).toBe(sets);
      expectExactlyOnce(sink, [], sets);
      for (let c = 0; c < o.channels; c++) expect(sink.samples[c]?.size).toBe(sets);
      expect(sink.gaps).toEqual([]);
      expect(sink.quarantined).toEqual([]);
      const chunk = sink.chunks[0]!;
      expect(chunk).toMatchObject({ sensor: 'sensor-1', rateHz: o.rateHz, unit: o.unit, gain: o.gain, firstSample: 0 });
      expect(driver.deviceIdentity).toMatchObject({ deviceType: o.deviceType, channelCount: o.channels, vendor: 'medge-sim' });
      expect(sink.states.some((s) => s.connected && s.detail.startsWith('connected: medge-sim'))).toBe(true);
      expect(driver.stats).toMatchObject({ bytesQuarantined: 0, bytesBuffered: 0, gapSamples: 0, samples: sets });
      expect(driver.stats.bytesFramed).toBe(device.stats.bytesWritten);
    });

    it('reports corrupted and truncated frames as gaps of exactly their samples, quarantines their bytes, and skips vendor frames', async () => {
      const { device, driver, sink } = await setup({ faults: { corruptRate: 0.08, truncateRate: 0.04, vendorFrameRate: 0.1, writeChunkBytes: 61, seed: 11 } });
      await settle(device, driver);
      const stats = device.stats;
      const lost = [...stats.corrupted, ...stats.truncated];
      expect(stats.corrupted.length).toBeGreaterThan(2);
      expect(stats.truncated.length).toBeGreaterThan(0);
      expect(stats.vendorFramesSent).toBeGreaterThan(2);
      // A loss after the last intact frame is only visible once another frame arrives: not asserted as a gap.
      const lastStored = Math.max(...[...(sink.samples[0]?.keys() ?? [])]) + 1;
      expectExactlyOnce(
        sink,
        lost.filter((s) => s.firstSample < lastStored),
        lastStored,
      );
      // Every byte: intact frames + quarantine = everything written.
      expect(sink.quarantinedBytes).toBe(lost.reduce((n, s) => n + s.bytes, 0));
      expect(driver.stats.bytesFramed + driver.stats.bytesQuarantined).toBe(stats.bytesWritten);
      expect(driver.stats.bytesBuffered).toBe(0);
      expect(driver.stats.vendorFrames).toBe(stats.vendorFramesSent);
      for (const q of sink.quarantined) {
        expect(q.transport).toBe(`serial:${device.hostPath}`);
        expect(q.error).toMatch(/^medge-stream: /);
      }
      expect(new Set(sink.gaps.map((g) => g.reason))).toEqual(new Set(['corrupted']));
    });

    it('resumes after an unplug/replug: the driver reopens the port, the samples lost meanwhile are one gap', async () => {
      const { device, driver, sink } = await setup({ speed: Math.max(1, o.speed / 2) });
      await waitFor(() => (sink.samples[0]?.size ?? 0) > o.rateHz / 2, 'the first samples');
      await device.unplug({ downMs: 300, mode: 'drop' });
      await settle(device, driver);
      const stats = device.stats;
      expect(stats.unplugs).toBe(1);
      expect(stats.droppedWhileUnplugged.length).toBeGreaterThan(0);
      expect(driver.stats.sessions).toBe(2);
      expect(sink.states.some((s) => !s.connected && s.detail.startsWith('reconnecting'))).toBe(true);
      expectExactlyOnce(sink, stats.droppedWhileUnplugged, sets);
      const reasons = sink.gaps.filter((g) => g.channel === 0).map((g) => g.reason);
      expect(reasons).toEqual(['disconnected']);
    });

    it('does not store a device of the other kind: its DATA frames go to quarantine whole, and the state says so', async () => {
      const other = o.deviceType === 'ecg' ? 'pcg' : 'ecg';
      const { device, driver, sink } = await setup({ deviceType: other, channels: 1, rateHz: o.rateHz, unit: other === 'ecg' ? 'mV' : 'au', source: arraySource(signal.subarray(0, Math.min(signal.length, 2000))) });
      await settle(device, driver);
      expect(sink.chunks).toEqual([]);
      expect(sink.quarantined.length).toBe(device.stats.dataFramesSent);
      expect(sink.quarantined.every((q) => q.error.includes('device-type'))).toBe(true);
      expect(driver.stats.bytesFramed + driver.stats.bytesQuarantined).toBe(device.stats.bytesWritten);
      expect(sink.states.some((s) => s.detail === `wrong device: ${other} on ${o.driver}`)).toBe(true);
    });

    it('loses nothing when the device holds its recording while unplugged (pause mode)', async () => {
      const { device, driver, sink } = await setup({ speed: Math.max(1, o.speed / 2) });
      await waitFor(() => (sink.samples[0]?.size ?? 0) > o.rateHz / 2, 'the first samples');
      await device.unplug({ downMs: 200, mode: 'pause' });
      await settle(device, driver);
      expect(device.stats.droppedWhileUnplugged).toEqual([]);
      expectExactlyOnce(sink, [], sets);
      expect(sink.gaps).toEqual([]);
    });
  });
}
