/**
 * The EcgMonitor with a front end that reports electrode contact (the stream protocol's lead-off
 * mask, as `StreamChunk.leadOff`) and saturation (`StreamChunk.saturated`).
 */
import { describe, expect, it } from 'vitest';
import type { StreamChunk } from '../device-sdk/records.js';
import { continuation, run, simulatedEcg } from '../test/helpers/ecg-chunks.js';
import { EcgMonitor } from './ecg-monitor.js';

/** What a front end sends with the electrodes off: its input pulled to the positive rail, flagged. */
const RAIL = 32767;
const off = (chunks: StreamChunk[]): StreamChunk[] => chunks.map((c) => ({ ...c, leadOff: true }));
/** The last chunk of `chunks` without the front end's flags: what a continuation with contact is made from. */
function lastOf(chunks: StreamChunk[]): StreamChunk {
  const { leadOff: _, saturated: __, ...c } = chunks.at(-1) as StreamChunk;
  return c;
}
/** Chunks of `source` renumbered to continue `after`'s stream (the same beats, later). */
function again(after: StreamChunk, source: StreamChunk[]): StreamChunk[] {
  const per = (source[0] as StreamChunk).samples.length;
  return continuation(after, source.length / 4, (i) => (source[Math.floor(i / per)] as StreamChunk).samples[i % per] as number);
}
const kinds = (alerts: { kind: string; severity: number }[]) => alerts.map((a) => [a.kind, a.severity]);

describe('EcgMonitor with a front end that reports lead-off', () => {
  it('raises ecg-lead-off (severity 2) once the front end has reported the electrodes off for 1 s, saying so, and reports no heart rate', () => {
    const ecg = simulatedEcg(12);
    // Not flat: what an unconnected input picks up (mains hum at 50 Hz, 1 mV): only the front end can tell.
    const hum = off(continuation(ecg.at(-1) as StreamChunk, 10, (i) => Math.round(200 * Math.sin((2 * Math.PI * 50 * i) / 360))));
    const monitor = new EcgMonitor('ecg');
    const before = run(monitor, ecg);
    expect(before.readings.length).toBeGreaterThan(0);
    const out = run(monitor, hum);
    expect(kinds(out.alerts)).toEqual([['ecg-lead-off', 2]]);
    const first = hum[0] as StreamChunk;
    expect(out.alerts[0]?.t).toBe(first.t0 + 1000);
    expect(out.alerts[0]?.message).toMatch(/^ECG front end reports electrode contact lost \(lead off\) for 1\.0 s: reattach the electrodes/);
    expect(out.readings).toEqual([]);
    expect(out.findings).toEqual([]);
  });

  it('never escalates to flat-line or no-beats (severity 3) while the front end reports the electrodes off, however long', () => {
    const ecg = simulatedEcg(12);
    const rail = off(continuation(ecg.at(-1) as StreamChunk, 60, () => RAIL));
    const out = run(new EcgMonitor('ecg'), [...ecg, ...rail]);
    expect(kinds(out.alerts)).toEqual([['ecg-lead-off', 2]]);
    expect(out.readings.filter((r) => r.tDevice > (rail[0] as StreamChunk).t0)).toEqual([]);
  });

  it('takes contact back as a lead back on, even after an electrode off for less than the 2 s a flat line needs: learnt afresh, the heart rate comes back', () => {
    const ecg = simulatedEcg(20);
    const rail = off(continuation(ecg.at(-1) as StreamChunk, 1, () => RAIL));
    const back = again(lastOf(rail), simulatedEcg(20));
    const monitor = new EcgMonitor('ecg');
    const before = run(monitor, [...ecg, ...rail]);
    expect(kinds(before.alerts)).toEqual([['ecg-lead-off', 2]]);
    const generation = monitor['generation'];
    run(monitor, back.slice(0, 1));
    expect(monitor['generation']).toBe(generation + 1);
    const out = run(monitor, back.slice(1));
    expect(out.alerts).toEqual([]);
    const hr = out.readings.filter((r) => r.type === 'heart-rate');
    expect(hr.length).toBeGreaterThanOrEqual(2);
    for (const r of hr) expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
  });

  it('raises no-beats (severity 3) when contact comes back on a lead with no QRS: the asystole clock runs from the lead back', () => {
    const ecg = simulatedEcg(20);
    const rail = off(continuation(ecg.at(-1) as StreamChunk, 8, () => RAIL));
    let seed = 5;
    const noise = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31 - 0.5) * 12;
    const quiet = continuation(lastOf(rail), 12, () => 1000 + Math.round(noise()));
    const out = run(new EcgMonitor('ecg'), [...ecg, ...rail, ...quiet]);
    expect(kinds(out.alerts)).toEqual([
      ['ecg-lead-off', 2],
      ['ecg-no-beats', 3],
    ]);
    // 4 s after it (asystoleMs): nothing on the lead as large as a QRS complex (it took 6 s).
    expect((out.alerts[1]?.t as number) - (quiet[0] as StreamChunk).t0).toBeGreaterThanOrEqual(4_000);
    expect((out.alerts[1]?.t as number) - (quiet[0] as StreamChunk).t0).toBeLessThanOrEqual(4_100);
  });

  it('keeps the flat-line path when the front end reports contact: lead-off, then flat-line (severity 3) after 4 s', () => {
    // Contact lost and back, then a flat line with the electrodes reported on: possibly an arrest.
    const ecg = simulatedEcg(20);
    const rail = off(continuation(ecg.at(-1) as StreamChunk, 3, () => RAIL));
    const back = again(lastOf(rail), simulatedEcg(15));
    const flat = continuation(back.at(-1) as StreamChunk, 6, () => 1000);
    const out = run(new EcgMonitor('ecg'), [...ecg, ...rail, ...back, ...flat]);
    expect(kinds(out.alerts)).toEqual([
      ['ecg-lead-off', 2],
      ['ecg-lead-off', 2],
      ['ecg-flat-line', 3],
    ]);
    expect(out.alerts[1]?.message).toMatch(/^ECG signal went flat: check the electrodes/);
    expect((out.alerts[2]?.t as number) - (out.alerts[1]?.t as number)).toBe(2000);
  });
});

/** A status-only report (a DATA frame with no samples, §5.1) of `after`'s stream, `ms` after its end. */
function status(after: StreamChunk, ms: number, flags: Pick<StreamChunk, 'leadOff' | 'saturated'> = {}): StreamChunk {
  const { leadOff: _, saturated: __, ...c } = after;
  const ended = (after.samples.length * 1000) / after.rateHz;
  return { ...c, ...flags, firstSample: after.firstSample + after.samples.length + Math.round((ms * after.rateHz) / 1000), t0: after.t0 + ended + ms, samples: new Int16Array(0) };
}

describe('EcgMonitor with status-only reports (chunks with no samples)', () => {
  it('raises ecg-lead-off (severity 2) from status-only reports alone: a front end that stops sampling while the electrodes are off', () => {
    const ecg = simulatedEcg(20);
    const last = ecg.at(-1) as StreamChunk;
    // One report a second, no samples: before, the monitor saw nothing (and the stream's silence was all there was).
    const reports = [0, 1000, 2000, 3000, 4000, 5000].map((ms) => status(last, ms, { leadOff: true }));
    const monitor = new EcgMonitor('ecg');
    run(monitor, ecg);
    const out = run(monitor, reports);
    expect(kinds(out.alerts)).toEqual([['ecg-lead-off', 2]]);
    // The first report is a contact loss that may still be a flap (bridged up to 1 s); the next one, 1 s on, is not.
    expect(out.alerts[0]?.t).toBe((reports[1] as StreamChunk).t0);
    expect(out.alerts[0]?.message).toMatch(/^ECG front end reports electrode contact lost \(lead off\) for 1\.0 s: reattach the electrodes/);
    expect(out.readings).toEqual([]);
    // Contact back: the lead is learnt afresh and the heart rate comes back, no other alarm.
    const back = again({ ...last, firstSample: (reports.at(-1) as StreamChunk).firstSample - last.samples.length, t0: (reports.at(-1) as StreamChunk).t0 - 250 }, simulatedEcg(20));
    const after = run(monitor, back);
    expect(after.alerts).toEqual([]);
    expect(after.readings.filter((r) => r.type === 'heart-rate').length).toBeGreaterThanOrEqual(2);
  });

  it('raises one ecg-lead-off when a status-only report comes before the flagged samples', () => {
    const ecg = simulatedEcg(20);
    const report = status(ecg.at(-1) as StreamChunk, 0, { leadOff: true, saturated: true });
    const rail = off(continuation(ecg.at(-1) as StreamChunk, 5, () => RAIL));
    const monitor = new EcgMonitor('ecg');
    run(monitor, ecg);
    const out = run(monitor, [report, ...rail]);
    expect(kinds(out.alerts)).toEqual([['ecg-lead-off', 2]]);
    expect(out.alerts[0]?.t).toBe(report.t0 + 1000);
  });

  it('starts a stream from a status-only lead-off report: lead-off at once, once, then the heart rate when contact comes', () => {
    const ecg = simulatedEcg(20);
    const first = ecg[0] as StreamChunk;
    const report = { ...first, leadOff: true as const, samples: new Int16Array(0) };
    const monitor = new EcgMonitor('ecg');
    const out = run(monitor, [report, ...off(ecg.slice(0, 4).map((c) => ({ ...c, samples: new Int16Array(c.samples.length).fill(RAIL) })))]);
    expect(kinds(out.alerts)).toEqual([['ecg-lead-off', 2]]);
    expect(out.alerts[0]?.t).toBe(first.t0);
    const rest = run(monitor, ecg.slice(4));
    expect(rest.alerts).toEqual([]);
    expect(rest.readings.filter((r) => r.type === 'heart-rate').length).toBeGreaterThanOrEqual(2);
  });

  it('changes nothing with status-only chunks that report no lead-off, on any channel: same readings, findings and alerts', () => {
    const ecg = simulatedEcg(30);
    const withStatus = ecg.flatMap((c, i) => (i % 3 === 0 ? [c, status(c, 0), status({ ...c, channel: 1 }, 0, { leadOff: true }), status(c, 0, { saturated: undefined })] : [c]));
    const plain = run(new EcgMonitor('ecg'), ecg);
    const mixed = run(new EcgMonitor('ecg'), withStatus);
    expect(plain.readings.length).toBeGreaterThan(3);
    expect(mixed.readings).toEqual(plain.readings);
    expect(mixed.findings).toEqual(plain.findings);
    expect(mixed.alerts.filter((a) => a.kind !== 'ecg-secondary-lead-off')).toEqual(plain.alerts);
  });
});

/** Channel `channel` of `chunks`: the same samples on another lead, flagged `leadOff` where `off(chunk index)`. */
function lead(chunks: StreamChunk[], channel: number, off: (i: number) => boolean): StreamChunk[] {
  return chunks.map((c, i) => (off(i) ? { ...c, channel, leadOff: true as const, samples: new Int16Array(c.samples.length).fill(RAIL) } : { ...c, channel }));
}
/** Two leads as a 2-channel front end sends them: channel 0 then channel 1 of each frame. */
const interleave = (a: StreamChunk[], b: StreamChunk[]) => a.flatMap((c, i) => [c, b[i] as StreamChunk]);

describe('EcgMonitor and the leads it does not analyse (channels 1 and up)', () => {
  it('raises ecg-secondary-lead-off (severity 2) once when lead 2 is reported off for 1 s; lead 1 analysis goes on', () => {
    const ecg = simulatedEcg(60);
    // Chunks of 250 ms: lead 2 off from 20 s to 40 s.
    const second = lead(ecg, 1, (i) => i >= 80 && i < 160);
    const out = run(new EcgMonitor('ecg'), interleave(ecg, second));
    expect(kinds(out.alerts)).toEqual([['ecg-secondary-lead-off', 2]]);
    expect(out.alerts[0]?.t).toBe((ecg[80] as StreamChunk).t0 + 1000);
    expect(out.alerts[0]?.message).toMatch(/^ECG front end reports electrode contact lost on lead 2 \(channel 1\) for 1\.0 s: its trace shows no heart signal; reattach the electrode\. Heart rate and rhythm alarms come from lead 1 \(channel 0\) and go on\./);
    // The heart rate of lead 1 all along, the lead-off included.
    const hr = out.readings.filter((r) => r.type === 'heart-rate');
    const during = hr.filter((r) => r.tDevice > (ecg[84] as StreamChunk).t0 && r.tDevice < (ecg[160] as StreamChunk).t0);
    expect(during.length).toBeGreaterThanOrEqual(3);
    for (const r of hr) expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
  });

  it('says nothing of lead 2 contact lost for less than 1 s, and raises it again after contact came back', () => {
    const ecg = simulatedEcg(60);
    // 0.75 s off at 10 s; then 2 s off at 20 s, back, 3 s off at 40 s.
    const second = lead(ecg, 1, (i) => (i >= 40 && i < 43) || (i >= 80 && i < 88) || (i >= 160 && i < 172));
    const out = run(new EcgMonitor('ecg'), interleave(ecg, second));
    expect(kinds(out.alerts)).toEqual([
      ['ecg-secondary-lead-off', 2],
      ['ecg-secondary-lead-off', 2],
    ]);
    expect(out.alerts.map((a) => a.t)).toEqual([(ecg[80] as StreamChunk).t0 + 1000, (ecg[160] as StreamChunk).t0 + 1000]);
  });

  it('counts every report of lead 2 off in a flapping lead\'s warning, those under 1 s (never warned) included', () => {
    const ecg = simulatedEcg(140);
    // Chunks of 250 ms; from 10 s, every 2 s lead 2 is reported off, for 0.5 s and 1.25 s in turn.
    const starts: number[] = [];
    const isOff = (i: number) => {
      if (i < 40) return false;
      const cycle = Math.floor((i - 40) / 8);
      const at = (i - 40) % 8;
      if (at === 0) starts.push(i);
      return at < (cycle % 2 === 0 ? 2 : 5);
    };
    const second = lead(ecg, 1, isOff);
    const out = run(new EcgMonitor('ecg'), interleave(ecg, second));
    const warnings = out.alerts.filter((a) => a.kind === 'ecg-secondary-lead-off');
    expect(warnings.length).toBe(3);
    for (let k = 1; k < warnings.length; k++) {
      const since = warnings[k - 1]!.t;
      const reported = starts.filter((i) => (ecg[i] as StreamChunk).t0 > since && (ecg[i] as StreamChunk).t0 <= warnings[k]!.t).length;
      // 30 reports in a minute, 15 of them under 1 s (the count gave 15).
      expect(reported).toBeGreaterThanOrEqual(29);
      expect(warnings[k]!.message).toMatch(new RegExp(` The lead came off ${reported} times in the last 6[01] s`));
    }
  });

  it('raises it from status-only reports of lead 2 (no samples), and names the channel of a third lead', () => {
    const ecg = simulatedEcg(20);
    const last = ecg.at(-1) as StreamChunk;
    const reports = [0, 500, 1000].map((ms) => status({ ...last, channel: 1 }, ms, { leadOff: true }));
    const monitor = new EcgMonitor('ecg');
    run(monitor, ecg);
    const out = run(monitor, reports);
    expect(kinds(out.alerts)).toEqual([['ecg-secondary-lead-off', 2]]);
    expect(out.alerts[0]?.t).toBe((reports[2] as StreamChunk).t0);
    const third = run(new EcgMonitor('ecg'), lead(ecg, 2, () => true));
    expect(third.alerts[0]?.message).toMatch(/^ECG front end reports electrode contact lost on lead 3 \(channel 2\) for 1\.0 s/);
  });
});

describe('EcgMonitor with a front end that reports saturation', () => {
  it('flags the findings of a stretch the front end reported saturated with `saturation`, and lowers their input quality', () => {
    const ecg = simulatedEcg(30);
    const marked = ecg.map((c, i) => (i >= 60 && i < 64 ? { ...c, saturated: true as const } : c));
    const plain = run(new EcgMonitor('ecg'), ecg).findings.filter((f) => f.kind === 'ecg-rate');
    const flagged = run(new EcgMonitor('ecg'), marked).findings.filter((f) => f.kind === 'ecg-rate');
    const saturatedAt = (ecg[63] as StreamChunk).t0 + 250;
    expect(plain.every((f) => !f.qualityFlags?.includes('saturation'))).toBe(true);
    const near = flagged.filter((f) => f.t >= saturatedAt && f.t <= saturatedAt + 6_000);
    expect(near.length).toBeGreaterThan(0);
    for (const f of near) {
      expect(f.qualityFlags).toContain('saturation');
      expect(f.inputQuality).toBeLessThanOrEqual(0.5);
    }
    // Before it and once the quality memory (6 s) has passed: as without.
    for (const f of flagged.filter((x) => x.t < (ecg[60] as StreamChunk).t0 || x.t > saturatedAt + 6_000)) expect(f.qualityFlags).not.toContain('saturation');
  });
});
