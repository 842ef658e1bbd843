import { describe, expect, it } from 'vitest';
import { meterRecordAfter, newerMeterRecord } from './records.js';

describe('meterRecordAfter: record numbers on the counter width of their source', () => {
  it('on a Bluetooth meter (16 bits) takes less than half the range ahead modulo 65,536 as newer', () => {
    expect(meterRecordAfter(0, 65_535, 16)).toBe(true); // the counter started again
    expect(meterRecordAfter(3, 65_530, 16)).toBe(true);
    expect(meterRecordAfter(65_535, 2, 16)).toBe(false); // three records behind 2, not 65,533 ahead
    expect(meterRecordAfter(2, 65_535, 16)).toBe(true);
    expect(meterRecordAfter(32_767, 0, 16)).toBe(true);
    expect(meterRecordAfter(32_768, 0, 16)).toBe(false); // half the range: undefined, so not newer
    expect(meterRecordAfter(0, 32_768, 16)).toBe(false);
    expect(meterRecordAfter(7, 7, 16)).toBe(false);
  });

  it('on a serial meter (32 bits) does not wrap at 65,536', () => {
    expect(meterRecordAfter(3, 65_535, 32)).toBe(false);
    expect(meterRecordAfter(65_536, 65_535, 32)).toBe(true);
    expect(meterRecordAfter(70_000, 2, 32)).toBe(true);
    expect(meterRecordAfter(50_000, 70_000, 32)).toBe(false);
    expect(meterRecordAfter(0, 2 ** 32 - 1, 32)).toBe(true); // its own wrap, after 4,294,967,295
  });

  it('takes a number outside the counter for no record of it: never newer, older than any record', () => {
    expect(meterRecordAfter(70_000, 5, 16)).toBe(false);
    expect(meterRecordAfter(5, 70_000, 16)).toBe(true);
    expect(meterRecordAfter(-1, 5, 32)).toBe(false);
    expect(newerMeterRecord(5, 70_000, 16)).toBe(5);
    expect(newerMeterRecord(undefined, 9, 16)).toBe(9);
    expect(newerMeterRecord(65_535, 2, 16)).toBe(2);
    expect(newerMeterRecord(65_535, 2, 32)).toBe(65_535);
  });
});
