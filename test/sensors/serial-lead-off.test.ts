/**
 * The front end's lead-off and saturation masks through the real pty, the real SerialTransport and
 * the `serial-ecg` driver: a chunk carries `leadOff` / `saturated` exactly when its frame's mask bit
 * for its channel is set AND the device's INFO announced that mask as meaningful (§6.2). The device
 * is the simulator's stream device with electrodes taken off (`faults.leadOff`). Skips without socat
 * unless MEDGE_REQUIRE_SYSTEM=1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { STREAM_CAPABILITIES } from '../../device-sdk/protocols/stream-frame.js';
import { arraySource, LEAD_OFF_RAIL, type StreamDeviceOptionsInput } from '../../simulator/devices/stream-device.js';
import { findSocat, systemAvailable } from '../helpers/pty.js';
import { recordOverPty, testSignal } from './serial-stream.contract.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');
const SETS = 360 * 6;
/** Electrodes of lead 0 (channel 0) off from 1.5 s for 2 s; 18 samples per frame (50 ms). */
const OFF = { fromSample: 540, samples: 720 };

describe.skipIf(!socatFound)('serial-ecg: lead-off and saturation masks (needs socat: apt-get install -y socat)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  function run(extra: Partial<StreamDeviceOptionsInput>) {
    return recordOverPty({ deviceType: 'ecg', channels: 2, rateHz: 360, source: arraySource(testSignal(SETS, 2), 2), speed: 20, startOn: 'identify', ...extra }, 'serial-ecg', 'ecg', cleanups);
  }

  const overlapsOff = (c: { firstSample: number; samples: Int16Array }) => c.firstSample < OFF.fromSample + OFF.samples && c.firstSample + c.samples.length > OFF.fromSample;

  it('flags the chunks of the lead that is off, and only those, when INFO says the masks are meaningful', async () => {
    const { device, sink } = await run({ faults: { leadOff: [{ ...OFF, channels: 0b01 }] } });
    expect(sink.samples[0]?.size).toBe(SETS);
    const flagged = sink.chunks.filter((c) => c.leadOff);
    expect(flagged.length).toBe(device.stats.leadOff.length);
    expect(flagged.length).toBeGreaterThan(0);
    for (const c of sink.chunks) {
      const off = c.channel === 0 && overlapsOff(c);
      expect(c.leadOff === true, `channel ${c.channel} at ${c.firstSample}`).toBe(off);
      // At the rail: the ADC limit, so the saturation bit too.
      expect(c.saturated === true, `channel ${c.channel} at ${c.firstSample}`).toBe(off);
    }
    for (let i = OFF.fromSample; i < OFF.fromSample + OFF.samples; i++) expect(sink.samples[0]?.get(i)).toBe(LEAD_OFF_RAIL);
    // The other lead's samples are the recording's.
    expect(sink.chunks.filter((c) => c.channel === 1).every((c) => !('leadOff' in c) && !('saturated' in c))).toBe(true);
  });

  it('sends a baseline without the saturation bit when asked to', async () => {
    const { sink } = await run({ faults: { leadOff: [{ ...OFF, level: 'baseline' }] } });
    const flagged = sink.chunks.filter((c) => c.leadOff);
    expect(new Set(flagged.map((c) => c.channel))).toEqual(new Set([0, 1]));
    expect(flagged.some((c) => c.saturated)).toBe(false);
    for (let i = OFF.fromSample; i < OFF.fromSample + OFF.samples; i++) expect(sink.samples[1]?.get(i)).toBe(0);
  });

  it('ignores a mask the device did not announce: bits set, but INFO without the lead-off capability', async () => {
    const { device, sink } = await run({ info: { capabilities: STREAM_CAPABILITIES.saturation }, faults: { leadOff: [{ ...OFF, channels: 0b01 }] } });
    expect(device.stats.leadOff.length).toBeGreaterThan(0);
    expect(sink.chunks.some((c) => 'leadOff' in c)).toBe(false);
    // The saturation mask was announced: still read.
    expect(sink.chunks.filter((c) => c.saturated).length).toBe(device.stats.leadOff.length);
  });

  // A status-only DATA frame (§5.1: no samples, "a status-only frame carrying lead-off"), dated mid-frame
  // (5 samples into the frames holding the changes), sent before the frame that holds that sample.
  const STATUS_OFF = { fromSample: 545, samples: 720, channels: 0b01, statusFrames: true };

  it('stores a status-only frame as one zero-sample chunk per channel at its sample, with its flags, and no gap', async () => {
    const { device, sink } = await run({ faults: { leadOff: [STATUS_OFF] } });
    expect(device.stats.statusFrames.map((f) => f.firstSample)).toEqual([545, 1265]);
    const status = sink.chunks.filter((c) => c.samples.length === 0);
    expect(status.map((c) => [c.channel, c.firstSample, c.leadOff === true, c.saturated === true])).toEqual([
      [0, 545, true, true],
      [1, 545, false, false],
      [0, 1265, false, false],
      [1, 1265, false, false],
    ]);
    // Dated on the stream's clock: 5 samples after the t0 of the DATA frame that holds its sample.
    const holding = sink.chunks.find((c) => c.channel === 0 && c.firstSample === 540);
    expect(Math.abs(status[0]!.t0 - (holding!.t0 + (5 * 1000) / 360))).toBeLessThanOrEqual(1);
    // It moves no counter: no gap, no sample lost or stored twice, every DATA frame's flags as before.
    expect(sink.gaps).toEqual([]);
    expect(sink.samples[0]?.size).toBe(SETS);
    expect(sink.samples[1]?.size).toBe(SETS);
    expect(sink.duplicates).toBe(0);
    expect(sink.chunks.filter((c) => c.samples.length > 0 && c.leadOff).length).toBe(device.stats.leadOff.length);
  });

  it('gives no chunk for a status-only frame whose masks INFO did not announce', async () => {
    const { device, sink } = await run({ info: { capabilities: 0 }, faults: { leadOff: [STATUS_OFF] } });
    expect(device.stats.statusFrames.length).toBe(2);
    expect(sink.chunks.filter((c) => c.samples.length === 0)).toEqual([]);
    expect(sink.gaps).toEqual([]);
    expect(sink.samples[0]?.size).toBe(SETS);
  });
});
