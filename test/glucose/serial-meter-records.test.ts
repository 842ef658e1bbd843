// A serial line meter's record numbers are 32-bit (firmware/sources/glucose-line-codec.ts): the glucose
// analysis orders them as the runtime does, on the width the source declares, and does not wrap them at
// 65,536. Lines written by the simulator's line meter (simulator/devices/glucose-line-meter.ts, not the
// codec), decoded by the runtime's codec, analysed by the analyzer createAnalyzers builds for the config.
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../device-sdk/clock.js';
import { silentLogger } from '../../device-sdk/log.js';
import type { Finding, Reading } from '../../device-sdk/records.js';
import { createAnalyzers } from '../../firmware/analyzers.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { decodeGlucoseLine } from '../../firmware/sources/glucose-line-codec.js';
import { createSimSource } from '../../firmware/sources/sim-sources.js';
import { glucoseLine } from '../../simulator/devices/glucose-line-meter.js';

const T0 = Date.UTC(2026, 5, 1, 8);
const MIN = 60_000;

describe('the glucose analysis of a serial line meter (32-bit record numbers)', () => {
  it('takes record 50,000 after 70,002 for an older record that joins the history, not for a counter that started again', () => {
    const config = parseRuntimeConfig({ deviceId: 'd', dataDir: '/tmp/x', sources: [{ type: 'sim-glucose', sensor: 'meter' }] }, '/tmp');
    // The width as the runtime takes it: declared by the source.
    const source = createSimSource(config.sources[0]!, systemClock, 1);
    expect(source.meterRecordBits).toBe(32);
    const glucose = createAnalyzers(config, {}, { logger: silentLogger, meterRecordBits: { meter: source.meterRecordBits! } }).find((a) => a.name === 'glucose')!;
    /** Record `record` measured at minute `minute`, received at minute `received`. */
    const line = (record: number, minute: number, mgdl: number, received = minute): Reading =>
      decodeGlucoseLine(Buffer.from(glucoseLine(record, T0 + minute * MIN, mgdl, 'unknown'), 'ascii'), T0 + received * MIN, 'meter', 'UTC');
    const trends = (r: Reading) => (glucose.onReading!(r)?.findings ?? []).filter((f: Finding) => f.kind === 'glucose-trend').map((f) => [(f.t - T0) / MIN, f.evidence?.split(';')[0]]);
    const said = [line(70_000, 0, 100), line(70_001, 5, 105), line(70_002, 10, 110), line(50_000, 2, 101, 12), line(70_003, 15, 115)].map(trends);
    // Before: record 50,000 (20,002 below) was taken for a counter that started again, so for the newest record
    // dated by a clock set back: the readings dated after it left the trace, it got a trend of its own, and
    // record 70,003's trend was fitted on 3 readings: [[], [[5, ...2]], [[10, ...3]], [[2, 'least squares over 2 readings in 15 min']], [[15, '...3 readings...']]].
    expect(said).toEqual([
      [],
      [[5, 'least squares over 2 readings in 15 min']],
      [[10, 'least squares over 3 readings in 15 min']],
      [],
      [[15, 'least squares over 5 readings in 15 min']],
    ]);
  });
});
