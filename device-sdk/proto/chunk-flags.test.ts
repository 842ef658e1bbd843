/**
 * The lead-off and saturation flags of a stream chunk on the wire (StreamChunk fields 10 and 11):
 * stored in the ledger and synced to the edge as these bytes. Old records decode without them.
 */
import { describe, expect, it } from 'vitest';
import type { StreamChunk } from '../records.js';
import { decodeBody, encodeBody } from './index.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const CHUNK: StreamChunk = { sensor: 'ecg', channel: 1, firstSample: 1440, t0: 4000, rateHz: 360, unit: 'mV', gain: 200, samples: Int16Array.of(100, -20) };

describe('StreamChunk lead-off and saturation flags', () => {
  it('round-trips both flags', () => {
    const back = decodeBody('chunk', encodeBody('chunk', { ...CHUNK, leadOff: true, saturated: true }));
    expect(back).toEqual({ ...CHUNK, leadOff: true, saturated: true });
  });

  it('appends them as fields 10 and 11 after the fields a chunk always had (50 01 = lead_off true, 58 01 = saturated true)', () => {
    const plain = hex(encodeBody('chunk', CHUNK));
    expect(hex(encodeBody('chunk', { ...CHUNK, leadOff: true }))).toBe(`${plain}5001`);
    expect(hex(encodeBody('chunk', { ...CHUNK, saturated: true }))).toBe(`${plain}5801`);
  });

  it('writes a chunk without flags byte for byte as before, and decodes it (an old record) without the properties', () => {
    // 08 01 schema_version, 12 03 "ecg", 18 01 channel, 20 a0 0b first_sample 1440, 28 a0 1f t0 4000,
    // 31 rate 360.0 (double), 3a 02 "mV", 41 gain 200.0 (double), 4a 04 samples 100, -20 (int16 LE).
    const old = '080112036563671801' + '20a00b' + '28a01f' + '310000000000807640' + '3a026d56' + '410000000000006940' + '4a046400ecff';
    expect(hex(encodeBody('chunk', CHUNK))).toBe(old);
    const back = decodeBody('chunk', Buffer.from(old, 'hex'));
    expect(back).toEqual(CHUNK);
    expect(back).not.toHaveProperty('leadOff');
    expect(back).not.toHaveProperty('saturated');
  });

  it('round-trips a chunk with no samples (a status-only report): no samples field on the wire', () => {
    const status: StreamChunk = { ...CHUNK, samples: new Int16Array(0), leadOff: true };
    const bytes = encodeBody('chunk', status);
    // The fields up to gain as above, then 50 01 (lead_off): an empty bytes field is not written.
    expect(hex(bytes)).toBe('080112036563671801' + '20a00b' + '28a01f' + '310000000000807640' + '3a026d56' + '410000000000006940' + '5001');
    expect(decodeBody('chunk', bytes)).toEqual(status);
  });
});
