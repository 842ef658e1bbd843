// Serial stream throughput: the simulated stream device on a socat pty, read by the real
// serial-ecg / serial-stethoscope driver (SerialTransport, StreamFramer, chunking), as fast as the
// pair can go (the device's speed factor set far above what the link takes).
//
//   node bench/serial-stream.js [--seconds 600]
//
// For each device: signal seconds replayed, wall seconds, sample sets per second delivered to the
// sink, the real-time factor reached, and that every sample arrived once (no gaps, no quarantine).
// Needs socat. Prints one JSON object on stdout; progress goes to stderr.

import { systemClock } from '../dist/device-sdk/clock.js';
import { silentLogger } from '../dist/device-sdk/log.js';
import { createDriver } from '../dist/device-sdk/sensors/registry.js';
import { arraySource, createStreamDevice } from '../dist/simulator/devices/stream-device.js';
import { numberArg, progress, round } from './lib/common.js';

const SECONDS = numberArg('seconds', 600);

/**
 * @param {{ driver: string, deviceType: 'ecg' | 'pcg', channels: number, rateHz: number }} o
 */
async function run(o) {
  const sets = Math.round(SECONDS * o.rateHz);
  const signal = new Int16Array(sets * o.channels).map((_, i) => (i * 7) % 20000);
  const device = await createStreamDevice({ deviceType: o.deviceType, channels: o.channels, rateHz: o.rateHz, source: arraySource(signal, o.channels), speed: 100_000, startOn: 'identify' });
  const driver = createDriver(o.driver, 'bench', { path: device.hostPath }, { clock: systemClock, logger: silentLogger, lastMeterRecord: () => undefined });
  let samples = 0;
  let gaps = 0;
  let quarantined = 0;
  const started = performance.now();
  driver.start({
    chunk: (c) => {
      if (c.channel === 0) samples += c.samples.length;
    },
    reading: () => undefined,
    quarantine: () => (quarantined += 1),
    gap: () => (gaps += 1),
    state: () => undefined,
  });
  await device.ended;
  while (samples < sets && performance.now() - started < 600_000) await new Promise((resolve) => setTimeout(resolve, 5));
  const wall = (performance.now() - started) / 1000;
  await driver.stop();
  await device.stop();
  progress(`${o.driver}: ${samples} sets in ${round(wall, 2)} s`);
  return { signalSeconds: SECONDS, wallSeconds: round(wall, 3), setsPerSecond: Math.round(samples / wall), realTimeFactor: round(SECONDS / wall, 1), complete: samples === sets && gaps === 0 && quarantined === 0 };
}

const result = {
  'serial-ecg (2 ch, 360 Hz)': await run({ driver: 'serial-ecg', deviceType: 'ecg', channels: 2, rateHz: 360 }),
  'serial-stethoscope (1 ch, 4 kHz)': await run({ driver: 'serial-stethoscope', deviceType: 'pcg', channels: 1, rateHz: 4000 }),
};
process.stdout.write(`${JSON.stringify({ 'serial-stream': result }, null, 2)}\n`);
