/** An ECG waveform excerpt says what the front end reported about its samples: lead-off, saturation. */
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, StreamChunk } from '../../device-sdk/records.js';
import { EdgeStore } from '../../edge/edge-store.js';
import { exportEdgeResources, transactionBundle } from '../../edge/fhir/export.js';
import { waveformObservation } from '../../edge/fhir/mapping.js';
import { validateFhir } from '../../edge/fhir/validate.js';
import { useTempDirs } from '../helpers/temp.js';

const tmp = useTempDirs('fhir-status');

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

describe('FHIR export with status-only chunks (no samples: a front end reporting lead-off between its frames)', () => {
  it('exports no empty waveform excerpt, and the bundle still validates against the R4 schema', () => {
    const dir = tmp();
    const store = new EdgeStore(dir);
    const t0 = chunk.t0;
    // 4 s of ECG in 1 s chunks, a status-only lead-off report after 2 s and one of contact back after 3 s, and the alert.
    const ecg = [0, 1, 2, 3].map((i) => ({ ...chunk, firstSample: 3600 + i * 360, t0: t0 + i * 1000, samples: new Int16Array(360).fill(100 * i) }));
    const reports: StreamChunk[] = [
      { ...chunk, firstSample: 3600 + 720, t0: t0 + 2000, samples: new Int16Array(0), leadOff: true },
      { ...chunk, firstSample: 3600 + 1080, t0: t0 + 3000, samples: new Int16Array(0) },
    ];
    const bodies = [ecg[0], ecg[1], reports[0], ecg[2], reports[1], ecg[3]] as StreamChunk[];
    const commit = (kind: 'chunk' | 'alert', records: { tMs: number; body: Uint8Array }[]) =>
      store.commit({ site: 'ward-3', deviceId: 'dev-1', kind, bootId: 'boot-1', afterSeq: 0, lastSeq: records.length, ackedUpTo: 0, records: records.map((r, i) => ({ seq: i + 1, bootId: 'boot-1', ...r })) });
    commit('chunk', bodies.map((c) => ({ tMs: c.t0, body: encodeBody('chunk', c) })));
    const alert: Alert = { kind: 'ecg-lead-off', severity: 2, t: t0 + 3000, sensor: 'ecg', message: 'ECG front end reports electrode contact lost (lead off) for 1.0 s: reattach the electrodes.' };
    commit('alert', [{ tMs: alert.t, body: encodeBody('alert', alert) }]);
    store.close();
    const resources = exportEdgeResources(dir, { now: t0 + 60_000 });
    const waveforms = resources.filter((r) => r.resourceType === 'Observation' && JSON.stringify(r.code).includes('ECG waveform excerpt'));
    expect(waveforms).toHaveLength(4);
    for (const w of waveforms) expect(((w.component as { valueSampledData: { data: string } }[])[0]?.valueSampledData.data.length ?? 0) > 0).toBe(true);
    const result = validateFhir(transactionBundle(resources, t0 + 60_000));
    expect(result.errors).toEqual([]);
  });
});
