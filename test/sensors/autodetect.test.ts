/**
 * Probing-based auto-detection on real ptys, against each simulated device: the ECG and the
 * stethoscope on the medge stream protocol (streaming, and waiting silently for IDENTIFY), the
 * Firmata board, a glucose meter pushing text lines, and a silent port. Also `medge sensors detect`
 * and `medge sensors list` through the built CLI. Skips without socat unless MEDGE_REQUIRE_SYSTEM=1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { builtinProbes, detectPort, lineProbe } from '../../device-sdk/sensors/autodetect.js';
import { decodeGlucoseLine } from '../../firmware/sources/glucose-line-codec.js';
import { createFirmataBoard } from '../../simulator/devices/firmata-board.js';
import { createGlucoseLineMeter } from '../../simulator/devices/glucose-line-meter.js';
import { createStreamDevice } from '../../simulator/devices/stream-device.js';
import { createPtyPair, findSocat, systemAvailable } from '../helpers/pty.js';
import { medge } from '../helpers/cli.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');

const probes = [...builtinProbes({ firmataWaitMs: 500 }), lineProbe({ name: 'glucose-line', driver: undefined, detail: 'glucose lines', decode: (l) => decodeGlucoseLine(l, 0, 'probe') })];
const sine = (n: number) => Int16Array.from({ length: n }, (_, i) => Math.round(1000 * Math.sin(i / 20)));

describe.skipIf(!socatFound)('auto-detection on a serial port (needs socat: apt-get install -y socat)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  it('finds a silent medge ECG by IDENTIFY and names serial-ecg with its INFO identity', async () => {
    const device = await createStreamDevice({ deviceType: 'ecg', channels: 2, rateHz: 360, source: () => sine(36), startOn: 'identify', info: { vendor: 'Acme', model: 'ECG-2', firmware: '1.4.0', serial: 'A1B2C3' } });
    cleanups.push(() => device.stop());
    const report = await detectPort(device.hostPath!, { probes, baudRates: [115_200] });
    expect(report.found).toMatchObject({ protocol: 'medge-stream', driver: 'serial-ecg', probe: 'medge-stream', identity: { deviceType: 'ecg', vendor: 'Acme', model: 'ECG-2', firmware: '1.4.0', serial: 'A1B2C3' } });
    expect(report.attempts.map((a) => [a.step, a.outcome])).toEqual([
      ['listen', 'silent'],
      ['query medge-stream', 'match'],
    ]);
  });

  it('recognises a streaming stethoscope by listening and names serial-stethoscope', async () => {
    const device = await createStreamDevice({ deviceType: 'pcg', channels: 1, rateHz: 4000, source: () => sine(200) });
    cleanups.push(() => device.stop());
    const report = await detectPort(device.hostPath!, { probes, baudRates: [115_200] });
    expect(report.found).toMatchObject({ protocol: 'medge-stream', driver: 'serial-stethoscope', identity: { deviceType: 'pcg' } });
    expect(report.attempts[0]).toMatchObject({ step: 'listen', outcome: 'match' });
  });

  it('finds the Firmata board and names firmata-ecg', async () => {
    const board = await createFirmataBoard();
    cleanups.push(() => board.stop());
    const report = await detectPort(board.hostPath, { probes, baudRates: [57_600] });
    expect(report.found).toMatchObject({ protocol: 'firmata', driver: 'firmata-ecg', identity: { protocol: '2.5', firmware: 'StandardFirmata.ino' } });
  });

  it('recognises a glucose meter pushing text lines (no driver), and reports a silent port as nothing', async () => {
    const meter = await createGlucoseLineMeter({ intervalMs: 100 });
    cleanups.push(() => meter.stop());
    const report = await detectPort(meter.hostPath, { probes, baudRates: [9600] });
    expect(report.found).toMatchObject({ protocol: 'glucose-line', driver: undefined });

    const pair = await createPtyPair();
    cleanups.push(() => pair.close());
    const silent = await detectPort(pair.b, { probes, baudRates: [115_200, 57_600], listenMs: 100, identifyTimeoutMs: 100 });
    expect(silent.found).toBeUndefined();
    expect(silent.attempts.filter((a) => a.step === 'listen').map((a) => a.baudRate)).toEqual([115_200, 57_600]);
    expect(silent.attempts.every((a) => a.outcome === 'silent')).toBe(true);

    const missing = await detectPort(`${pair.dir}/no-such-port`, { probes });
    expect(missing.attempts).toMatchObject([{ step: 'open', outcome: 'error' }]);
  });

  it('medge sensors detect --port prints the driver; medge sensors list shows the serial and Firmata drivers', async () => {
    const device = await createStreamDevice({ deviceType: 'ecg', channels: 1, rateHz: 250, source: () => sine(25), startOn: 'identify' });
    cleanups.push(() => device.stop());
    const detected = await medge(['sensors', 'detect', '--port', device.hostPath!, '--baud', '115200', '--json']);
    expect(detected.code).toBe(0);
    expect(JSON.parse(detected.stdout).found).toMatchObject({ protocol: 'medge-stream', driver: 'serial-ecg' });
    const text = await medge(['sensors', 'detect', '--port', device.hostPath!, '--baud', '115200']);
    expect(text.stdout).toContain('medge-stream at 115200 baud -> driver serial-ecg');

    const listed = await medge(['sensors', 'list', '--json']);
    expect(listed.code).toBe(0);
    const names = (JSON.parse(listed.stdout) as { drivers: Array<{ name: string; kind: string; transport: string }> }).drivers.map((d) => `${d.name}/${d.kind}/${d.transport}`);
    expect(names).toEqual(expect.arrayContaining(['serial-ecg/ecg/serial', 'serial-stethoscope/pcg/serial', 'firmata-ecg/ecg/firmata']));
  });
});
