/** An ECG waveform excerpt says what the front end reported about its samples: lead-off, saturation. */
import { describe, expect, it } from 'vitest';
import type { StreamChunk } from '../../device-sdk/records.js';
import { waveformObservation } from '../../edge/fhir/mapping.js';

const chunk: StreamChunk = { sensor: 'ecg', channel: 0, firstSample: 3600, t0: Date.UTC(2026, 0, 1), rateHz: 360, unit: 'mV', gain: 200, samples: Int16Array.of(32767, 32767, 32767) };
const record = (body: StreamChunk) => ({ deviceId: 'dev-1', site: 'site-1', bootId: 'boot-1', seq: 7, tMs: body.t0, body });

describe('waveformObservation and the front end flags', () => {
  it('notes lead-off and saturation when the chunk carries them', () => {
    const notes = (waveformObservation(record({ ...chunk, leadOff: true, saturated: true })).note as { text: string }[]).map((n) => n.text);
    expect(notes).toEqual([
      'Sensor ecg, channel 0, samples 3600..3602 at 360 Hz.',
      'The ECG front end reported lead-off (electrode contact lost) during these samples.',
      'The ECG front end reported samples at the ADC limit (saturation) in this excerpt.',
    ]);
  });

  it('has only the excerpt note without them', () => {
    expect(waveformObservation(record(chunk)).note).toEqual([{ text: 'Sensor ecg, channel 0, samples 3600..3602 at 360 Hz.' }]);
  });
});
