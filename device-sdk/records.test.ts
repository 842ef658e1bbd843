import { describe, expect, it } from 'vitest';
import { isSameMeter, MeterRecordBook, meterRecordAfter, meterRecordId, newerMeterRecord, type StoredMeterRecord } from './records.js';

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

describe('MeterRecordBook: a meter is its serial when it told one, else its address', () => {
  const A = 'C0:FF:EE:00:00:01';
  const B = 'D4:2A:19:7E:00:05';
  const reading = (meterRecord: number, context: Record<string, string>) => ({ sensor: 'meter', meterRecord, context: { meterClock: `2026-12-07T08:${String(meterRecord).padStart(2, '0')}:00`, ...context } });

  it('continues a meter by its serial at another address, and drops its record seen at the old address', () => {
    const book = new MeterRecordBook(() => 16);
    for (let n = 1; n <= 10; n++) expect(book.note(reading(n, { meter: A, meterSerial: 'S1' }))).toBe(true);
    expect(book.last('meter', { address: B, serial: 'S1' })).toEqual({ record: 10, meter: A, serial: 'S1', meterClock: '2026-12-07T08:10:00' });
    expect(book.note(reading(10, { meter: B, meterSerial: 'S1' }))).toBe(false); // the same record, fetched again
    expect(book.note(reading(11, { meter: B, meterSerial: 'S1' }))).toBe(true);
    expect(book.last('meter', { address: B, serial: 'S1' })).toMatchObject({ record: 11, meter: B, serial: 'S1' });
  });

  it('tells two meters at one address apart by serial; without a serial this time, the meter last stored at the address', () => {
    const book = new MeterRecordBook(() => 16);
    book.note(reading(10, { meter: A, meterSerial: 'S1' }));
    // Another serial at A: not found; the sensor's last meter is returned, whose serial says it is another one.
    const last = book.last('meter', { address: A, serial: 'S2' }) as StoredMeterRecord;
    expect(last).toMatchObject({ record: 10, serial: 'S1' });
    expect(isSameMeter(last, { address: A, serial: 'S2' })).toBe(false);
    expect(book.note(reading(10, { meter: A, meterSerial: 'S2' }))).toBe(true); // its own record 10, not a repeat
    expect(book.last('meter', { address: A, serial: 'S2' })).toMatchObject({ record: 10, serial: 'S2' });
    expect(book.last('meter', { address: A, serial: 'S1' })).toMatchObject({ record: 10, serial: 'S1' });
    // Its serial unread on this link: the meter last stored at A (S2), which keeps its serial.
    expect(book.last('meter', { address: A })).toMatchObject({ record: 10, serial: 'S2' });
    expect(isSameMeter(book.last('meter', { address: A }) as StoredMeterRecord, { address: A })).toBe(true);
  });

  it('gives rows stored without a serial (older rows) to the first serial read at their address', () => {
    const book = new MeterRecordBook(() => 16);
    for (let n = 1; n <= 5; n++) book.note(reading(n, { meter: A }));
    expect(book.last('meter', { address: A, serial: 'S1' })).toEqual({ record: 5, meter: A, meterClock: '2026-12-07T08:05:00' });
    expect(book.note(reading(5, { meter: A, meterSerial: 'S1' }))).toBe(false);
    book.note(reading(6, { meter: A, meterSerial: 'S1' }));
    expect(book.last('meter', { address: B, serial: 'S1' })).toMatchObject({ record: 6, meter: A, serial: 'S1' });
  });

  it('names the numbering by serial when known (the FHIR meter-sequence identifier), else by address', () => {
    expect(meterRecordId({ meterRecord: 7, context: { meter: A, meterSerial: 'S1' } })).toBe('sn:S1/7');
    expect(meterRecordId({ meterRecord: 7, context: { meter: B, meterSerial: 'S1', meterEpoch: '2026-12-07T09:00:00.000Z' } })).toBe('sn:S1@2026-12-07T09:00:00.000Z/7');
    expect(meterRecordId({ meterRecord: 7, context: { meter: A } })).toBe(`${A}/7`);
    expect(meterRecordId({ meterRecord: 7 })).toBe('7');
  });
});

describe('MeterRecordBook: records without a date (no meter clock) and the records a meter still holds', () => {
  const A = 'C0:FF:EE:00:00:01';
  const E1 = '2026-12-07T09:00:00.000Z';
  const E2 = '2026-12-07T10:00:00.000Z';
  const undated = (meterRecord: number, value: number, context: Record<string, string> = {}) => ({ sensor: 'meter', meterRecord, type: 'glucose', value, unit: 'mg/dL', context: { meter: A, sampleType: 'capillary-whole-blood', ...context } });
  const dated = (meterRecord: number, clock: string, context: Record<string, string> = {}) => ({ sensor: 'meter', meterRecord, type: 'glucose', value: 100, unit: 'mg/dL', context: { meter: A, meterClock: clock, ...context } });

  it('drops an undated record sent again, in its numbering or in one begun by mistake (before: stored again in every epoch)', () => {
    const book = new MeterRecordBook(() => 16);
    expect(book.note(dated(1, '2026-12-01T08:00:00'))).toBe(true);
    expect(book.note(undated(2, 132))).toBe(true);
    expect(book.note(undated(2, 132))).toBe(false);
    // A numbering begun by mistake (the meter still holds its memory): its dated record 1 comes again, then record 2.
    expect(book.note(dated(1, '2026-12-01T08:00:00', { meterEpoch: E1 }))).toBe(false);
    expect(book.note(undated(2, 132, { meterEpoch: E1 }))).toBe(false);
    expect(book.note(undated(2, 132, { meterEpoch: E2 }))).toBe(false);
  });

  it('keeps two different undated records: another number, another value or context, or the same in a numbering shown to be another memory', () => {
    const book = new MeterRecordBook(() => 16);
    book.note(dated(1, '2026-12-01T08:00:00'));
    expect(book.note(undated(2, 132))).toBe(true);
    expect(book.note(undated(3, 132))).toBe(true);
    expect(book.note(undated(2, 133, { meterEpoch: E1 }))).toBe(true);
    expect(book.note(undated(2, 132, { meterEpoch: E1, meal: 'fasting' }))).toBe(true);
    // A real reset: its record 1 has another meter clock than the stored record 1; its record 2 equal in content to the old one is its own.
    expect(book.note(dated(1, '2026-12-07T08:00:00', { meterEpoch: E2 }))).toBe(true);
    expect(book.note(undated(2, 132, { meterEpoch: E2 }))).toBe(true);
    expect(book.note(undated(2, 132, { meterEpoch: E2 }))).toBe(false);
  });

  it('tells whether a meter record is stored with a meter clock, in any epoch, by its serial at another address', () => {
    const book = new MeterRecordBook(() => 16);
    book.note({ ...dated(9, '2026-12-01T08:00:00'), context: { meter: A, meterSerial: 'S1', meterClock: '2026-12-01T08:00:00' } });
    expect(book.holds('meter', { address: 'D4:2A:19:7E:00:05', serial: 'S1' }, 9, '2026-12-01T08:00:00')).toBe(true);
    expect(book.holds('meter', { address: A, serial: 'S1' }, 9, '2026-12-01T08:00:01')).toBe(false);
    expect(book.holds('meter', { address: A, serial: 'S2' }, 9, '2026-12-01T08:00:00')).toBe(false);
    expect(book.holds('meter', { address: A, serial: 'S1' }, 8, '2026-12-01T08:00:00')).toBe(false);
  });
});
