/**
 * The simulated Firmata board (simulator/devices/firmata-board.ts) on a real pty, driven by
 * johnny-five unmodified: johnny-five reaches "ready" (version, firmware, capabilities, analog
 * mapping), reads the analog ECG it plays, sets the sampling interval, and its digital writes are
 * recorded; the source is a live signal that goes on while the host does not listen. Skips without socat unless MEDGE_REQUIRE_SYSTEM=1.
 */
import five, { type Board } from 'johnny-five';
import { afterEach, describe, expect, it } from 'vitest';
import { createFirmataBoard, ecgToAdc, type SimFirmataBoard } from '../../simulator/devices/firmata-board.js';
import { findSocat, systemAvailable } from '../helpers/pty.js';
import { waitFor } from '../helpers/wait.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');

describe.skipIf(!socatFound)('simulated Firmata board driven by johnny-five (needs socat: apt-get install -y socat)', () => {
  let board: SimFirmataBoard | undefined;
  let j5: Board | undefined;
  afterEach(async () => {
    const transport = j5?.io?.transport;
    if (transport?.isOpen) await new Promise<void>((resolve) => transport.close(() => resolve()));
    j5 = undefined;
    await board?.stop();
    board = undefined;
  });

  it('johnny-five gets ready, reads the analog ECG sample by sample, sets the interval, and its digital writes are recorded', async () => {
    const mv = Array.from({ length: 400 }, (_, i) => Math.sin(i / 10));
    const adc = ecgToAdc(mv);
    let at = 0;
    board = await createFirmataBoard({ analog: { 0: (n) => (at < adc.length ? adc.subarray(at, (at += n)) : undefined) } });
    j5 = new five.Board({ port: board.hostPath, repl: false, debug: false, sigint: false });
    const ready = new Promise<void>((resolve, reject) => {
      j5!.once('ready', () => resolve());
      j5!.once('error', reject);
    });
    await ready;
    expect(j5.io.firmware.name).toBe('StandardFirmata.ino');
    expect(j5.io.analogPins).toEqual([14, 15, 16, 17, 18, 19]);
    j5.samplingInterval(10);
    const values: number[] = [];
    j5.analogRead(0, (v) => values.push(v));
    await waitFor(() => values.length >= 200, '200 analog values');
    expect(board.samplingIntervalMs).toBe(10);
    expect(board.reportingChannels).toEqual([0]);
    // Sample by sample, in order: the values johnny-five saw are a run of the source.
    const start = Array.from(adc).indexOf(values[0]!);
    expect(values.slice(0, 150)).toEqual(Array.from(adc.subarray(start, start + 150)));
    j5.pinMode(13, j5.MODES.OUTPUT!);
    j5.digitalWrite(13, 1);
    j5.pinMode(8, j5.MODES.OUTPUT!);
    j5.digitalWrite(8, 1);
    j5.digitalWrite(8, 0);
    await waitFor(() => board!.digitalWrites.length >= 3, 'three digital writes');
    expect(board.digitalWrites.map(({ pin, value }) => ({ pin, value }))).toEqual([
      { pin: 13, value: 1 },
      { pin: 8, value: 1 },
      { pin: 8, value: 0 },
    ]);
  });

  it('plays its source as a live signal: it goes on in real time while the host does not listen', async () => {
    // Every value distinct over 1000 samples: its position in the source is readable from the value.
    const adc = Uint16Array.from({ length: 100_000 }, (_, i) => 12 + (i % 1000));
    let at = 0;
    board = await createFirmataBoard({ analog: { 0: (n) => (at < adc.length ? adc.subarray(at, (at += n)) : undefined) } });
    j5 = new five.Board({ port: board.hostPath, repl: false, debug: false, sigint: false });
    await new Promise<void>((resolve, reject) => {
      j5!.once('ready', () => resolve());
      j5!.once('error', reject);
    });
    j5.samplingInterval(10);
    const values: Array<{ v: number; t: number }> = [];
    j5.analogRead(0, (v) => values.push({ v, t: performance.now() }));
    await waitFor(() => values.length >= 50, '50 analog values');
    expect(values[0]!.v).toBe(12); // the source starts when the host first listens
    j5.io.reportAnalogPin(0, 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = values.length;
    j5.io.reportAnalogPin(0, 1);
    await waitFor(() => values.length > before, 'values again');
    const last = values[before - 1]!;
    const first = values[before]!;
    // The values skipped are those due while nobody listened (10 ms each), dropped by the board.
    const skipped = (first.v - last.v - 1 + 1000) % 1000;
    expect(skipped).toBeGreaterThan(25);
    expect(Math.abs(skipped - ((first.t - last.t) / 10 - 1))).toBeLessThanOrEqual(3);
    expect(board.stats.samplesDropped).toBeGreaterThanOrEqual(skipped - 3);
  });

  it('resets its pins as StandardFirmata does, on SYSTEM_RESET and when it reboots after an unplug: all low, the host modes forgotten', async () => {
    board = await createFirmataBoard();
    const ready = async () => {
      j5 = new five.Board({ port: board!.hostPath, repl: false, debug: false, sigint: false });
      await new Promise<void>((resolve, reject) => {
        j5!.once('ready', () => resolve());
        j5!.once('error', reject);
      });
      j5.pinMode(13, j5.MODES.OUTPUT!);
      j5.digitalWrite(13, 1);
      await waitFor(() => board!.digitalValue(13) === 1, 'the LED pin high');
    };
    let resets = 0;
    board.on('reset', () => (resets += 1));
    await ready();
    expect(board.pinModes.get(13)).toBe(1);
    j5!.io.reset(); // SYSTEM_RESET
    await waitFor(() => resets === 1, 'the reset');
    expect(board.digitalValue(13)).toBe(0);
    expect(board.pinModes.size).toBe(0);
    expect(board.digitalWrites.map(({ pin, value }) => [pin, value])).toEqual([[13, 1]]); // host writes only
    // Reboot: drive it high again, unplug, and the board comes back with the pin low.
    j5!.digitalWrite(13, 0);
    j5!.digitalWrite(13, 1);
    await waitFor(() => board!.digitalValue(13) === 1, 'the LED pin high again');
    await board.unplug({ downMs: 200 });
    expect(resets).toBe(2);
    expect(board.digitalValue(13)).toBe(0);
    expect(board.pinModes.size).toBe(0);
  });
});
