/**
 * A live stethoscope's own input reports reach the heart-sound screen's findings, as `medge pcg classify`
 * flags a damaged WAV file: the simulator's stream device (a digital stethoscope, §5.1 masks announced in
 * INFO) over a real pty and the `serial-stethoscope` driver, its chunks screened by PcgMonitor with the
 * shipped model in an inference worker. Skips without socat unless MEDGE_REQUIRE_SYSTEM=1.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STREAM_CAPABILITIES } from '../../device-sdk/protocols/stream-frame.js';
import type { Finding, StreamChunk } from '../../device-sdk/records.js';
import { loadPcgModelInWorker, type PcgModel, pcgModelDir, PcgMonitor } from '../../firmware/pcg-monitor.js';
import { arraySource, type LeadOffSpan } from '../../simulator/devices/stream-device.js';
import { requireBuild } from '../helpers/cli.js';
import { findSocat, systemAvailable } from '../helpers/pty.js';
import { recordOverPty } from '../sensors/serial-stream.contract.js';
import { syntheticPcg } from './synthetic.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');
const RATE = 4000;
const SECONDS = 15;

describe.skipIf(!socatFound)('PcgMonitor on a live stethoscope stream: the device\'s lead-off and saturation reports (needs socat)', () => {
  let model: PcgModel;
  beforeAll(async () => {
    requireBuild();
    model = await loadPcgModelInWorker(pcgModelDir(), 'wasm');
  });
  afterAll(async () => {
    await model?.close();
  });
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  /** 15 s of heart sounds from the simulated stethoscope with `leadOff` spans, through the driver; the chunks it delivered. */
  async function record(leadOff: LeadOffSpan[], capabilities: number): Promise<StreamChunk[]> {
    const pcg = syntheticPcg({ seconds: SECONDS, bpm: 75, rateHz: RATE });
    const signal = Int16Array.from(pcg.samples, (v) => Math.round(v * 32767));
    const device = { deviceType: 'pcg', channels: 1, rateHz: RATE, unit: 'au', gain: 32768, source: arraySource(signal, 1), speed: 20, startOn: 'identify', info: { capabilities }, faults: { leadOff } } as const;
    const { sink } = await recordOverPty(device, 'serial-stethoscope', 'steth', cleanups);
    expect(sink.samples[0]?.size).toBe(SECONDS * RATE);
    return sink.chunks;
  }

  async function screen(chunks: StreamChunk[]): Promise<Finding[]> {
    const monitor = new PcgMonitor('steth', model, { windowS: SECONDS });
    for (const c of chunks) monitor.push(c);
    return (await monitor.flush())?.findings ?? [];
  }

  const BOTH = STREAM_CAPABILITIES.leadOff | STREAM_CAPABILITIES.saturation;

  it('does not screen a window recorded partly with the chestpiece off the skin (contact lost for 2 of 15 s), and says why', async () => {
    // The front end's output at mid-scale while contact is lost (no saturation): 2 s of near silence.
    const chunks = await record([{ fromSample: 5 * RATE, samples: 2 * RATE, level: 'baseline' }], BOTH);
    const flagged = chunks.filter((c) => c.leadOff).reduce((n, c) => n + c.samples.length, 0);
    expect(flagged).toBeGreaterThanOrEqual(2 * RATE);
    const findings = await screen(chunks);
    // Before: screened (label normal or abnormal, probability from the model) with no flag at all.
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ label: 'unreadable', probability: 0, inputQuality: 0, qualityFlags: ['lead-off'] });
    expect(findings[0]!.evidence).toBe(`not screened: more than 1% of the 15.0 s came while the stethoscope reported contact lost; contact lost (the stethoscope's lead-off report) in chunks holding ${flagged} of ${SECONDS * RATE} samples`);
  }, 60_000);

  it('screens a window with a short saturation the device reported, flagged saturation with how many samples its frames hold', async () => {
    // 0.1 s at the ADC limit; only the saturation mask is announced (no lead-off detection).
    const chunks = await record([{ fromSample: 5 * RATE, samples: RATE / 10, level: 'rail' }], STREAM_CAPABILITIES.saturation);
    expect(chunks.some((c) => c.leadOff)).toBe(false);
    const saturated = chunks.filter((c) => c.saturated).reduce((n, c) => n + c.samples.length, 0);
    expect(saturated).toBeGreaterThanOrEqual(RATE / 10);
    const findings = await screen(chunks);
    expect(findings).toHaveLength(1);
    // Before: the same label, without the flag or the evidence.
    expect(['normal', 'abnormal']).toContain(findings[0]!.label);
    expect(findings[0]!.qualityFlags).toContain('saturation');
    expect(findings[0]!.evidence).toContain(`; saturation (a sample at the stethoscope's ADC limit) reported in chunks holding ${saturated} of ${SECONDS * RATE} samples`);
  }, 60_000);
});
