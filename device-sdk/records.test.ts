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

  it('drops an undated record sent again in its numbering; stores one of the same number and content in another numbering (a cleared meter: QA re-check, 1 of 3 new records stored before)', () => {
    const book = new MeterRecordBook(() => 16, () => true);
    expect(book.note(dated(1, '2026-12-01T08:00:00'))).toBe(true);
    expect(book.note(undated(2, 132))).toBe(true);
    expect(book.note(undated(2, 132))).toBe(false);
    // A numbering begun by mistake: its dated record 1 is known by its clock; an undated record is stored again.
    expect(book.note(dated(1, '2026-12-01T08:00:00', { meterEpoch: E1 }))).toBe(false);
    expect(book.note(undated(2, 132, { meterEpoch: E1 }))).toBe(true);
    expect(book.note(undated(2, 132, { meterEpoch: E1 }))).toBe(false);
    expect(book.note(undated(2, 132, { meterEpoch: E2 }))).toBe(true);
  });

  it('keeps two different undated records: another number, another value or context', () => {
    const book = new MeterRecordBook(() => 16, () => true);
    expect(book.note(undated(2, 132))).toBe(true);
    expect(book.note(undated(3, 132))).toBe(true);
    expect(book.note(undated(2, 133))).toBe(true);
    expect(book.note(undated(2, 132, { meal: 'fasting' }))).toBe(true);
  });

  it('a year of weekly clears of an undated meter, 30 readings each: none dropped (before: 272 of 1,560)', () => {
    const book = new MeterRecordBook(() => 16, () => true);
    let dropped = 0;
    for (let week = 0; week < 52; week++) {
      const epoch: Record<string, string> = week === 0 ? {} : { meterEpoch: new Date(Date.UTC(2026, 0, 1 + week * 7)).toISOString() };
      for (let n = 1; n <= 30; n++) if (!book.note(undated(n, 100 + ((n * 7 + week) % 6), epoch))) dropped++;
    }
    expect(dropped).toBe(0);
  });

  it('takes a meter clock that two record numbers were stored with for no date (a clock that does not run): its records are known by content in their numbering', () => {
    const book = new MeterRecordBook(() => 16, () => true);
    const frozen = (n: number, value: number, context: Record<string, string> = {}) => ({ ...dated(n, '2000-01-01T00:00:00', context), value });
    for (let n = 1; n <= 10; n++) expect(book.note(frozen(n, 100 + n * 7))).toBe(true);
    expect(book.note(frozen(3, 121))).toBe(false); // sent again
    // The memory cleared: new records 1..3 at the same frozen clock (before: dropped as records 1..3 stored before).
    for (const [n, v] of [[1, 181], [2, 64], [3, 243]] as const) expect(book.note(frozen(n, v, { meterEpoch: E1 }))).toBe(true);
    expect(book.holds('meter', { address: A }, 3, '2000-01-01T00:00:00')).toBe(false);
    expect(book.datedAtOrBefore('meter', { address: A }, 10)).toBeUndefined();
  });

  it('stores a dated record whose number and meter clock an old one had with another content (a clock stopped at its factory default after each clear: QA round 2, 11 of 240 dropped over 12 resets before)', () => {
    const book = new MeterRecordBook(() => 16, () => true);
    const FROZEN = '2000-01-01T00:00:00';
    let dropped = 0;
    for (let reset = 0; reset < 12; reset++) {
      const epoch: Record<string, string> = reset === 0 ? {} : { meterEpoch: new Date(Date.UTC(2026, 0, 1 + reset * 30)).toISOString() };
      for (let n = 1; n <= 20; n++) {
        const clock = n === 1 ? FROZEN : new Date(Date.UTC(2026, 0, 1 + reset * 30, n)).toISOString().slice(0, 19);
        if (!book.note({ ...dated(n, clock, epoch), value: 100 + ((reset * 7 + n * 13) % 90) })) dropped++;
      }
    }
    expect(dropped).toBe(0);
    expect(book.note({ ...dated(1, FROZEN, { meterEpoch: new Date(Date.UTC(2026, 0, 331)).toISOString() }), value: 100 + ((11 * 7 + 13) % 90) })).toBe(false); // sent again
    // Held only with the same content: a cleared meter's new record 1 is not the memory stored from.
    expect(book.holds('meter', { address: A }, 1, FROZEN)).toBe(true);
    expect(book.holds('meter', { address: A }, 1, FROZEN, { ...dated(1, FROZEN), value: 181 })).toBe(false);
    expect(book.holds('meter', { address: A }, 1, FROZEN, { ...dated(1, FROZEN), value: 113 })).toBe(true);
    expect(book.holdsAsSent({ ...dated(1, FROZEN), value: 181 })).toBe(false);
  });

  it('gives the newest dated record at or before a number of the current numbering only (before: of any epoch)', () => {
    const book = new MeterRecordBook(() => 16, () => true);
    for (let n = 1; n <= 30; n++) book.note(dated(n, `2026-01-${String(n).padStart(2, '0')}T08:00:00`));
    for (let n = 1; n <= 20; n++) book.note(n <= 10 ? dated(n, `2026-03-${String(n).padStart(2, '0')}T09:00:00`, { meterEpoch: E1 }) : undated(n, 90 + n, { meterEpoch: E1 }));
    expect(book.datedAtOrBefore('meter', { address: A }, 19)).toBe(10);
    expect(book.datedAtOrBefore('meter', { address: A }, 5)).toBe(5);
  });

  it('tells whether a record as sent is stored: by its date, else by its content in the current numbering', () => {
    const book = new MeterRecordBook(() => 16, () => true);
    book.note(dated(1, '2026-12-01T08:00:00'));
    book.note(undated(2, 132));
    expect(book.holdsAsSent(dated(1, '2026-12-01T08:00:00'))).toBe(true);
    expect(book.holdsAsSent(dated(1, '2026-12-01T08:00:01'))).toBe(false);
    expect(book.holdsAsSent(undated(2, 132))).toBe(true);
    expect(book.holdsAsSent(undated(2, 131))).toBe(false);
    book.note(undated(1, 90, { meterEpoch: E1 }));
    expect(book.holdsAsSent(undated(2, 132))).toBe(false); // stored in the numbering before
  });

  it('keeps nothing per reading of a sensor not known by content (a CGM: no meter clock, one reading every 5 min)', () => {
    const book = new MeterRecordBook(() => 16, (sensor) => sensor === 'meter');
    for (let n = 0; n < 2000; n++) expect(book.note({ sensor: 'cgm', meterRecord: n * 5, type: 'glucose', value: 100, unit: 'mg/dL', context: { meter: A, meterSerial: 'CGM-1', sessionStart: '2026-12-01T08:00:00' } })).toBe(true);
    // Before: one entry per reading for the whole run (40 MB a year).
    const kept = book as unknown as { contents?: Map<string, unknown>; undated?: Map<string, unknown> };
    expect((kept.contents ?? kept.undated)?.size).toBe(0);
    expect(book.last('cgm', { address: A, serial: 'CGM-1' })).toMatchObject({ record: 9995 });
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
