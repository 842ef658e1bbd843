import { describe, expect, it } from 'vitest';
import { SignalQuality } from './signal-quality.js';

const FS = 360;
const GAIN = 200;

/** A crude ECG in ADC units: a 1.2 mV, 80 ms triangle QRS every 0.8 s on a flat baseline. */
function ecg(seconds: number, extra: (i: number) => number = () => 0): Int16Array {
  return Int16Array.from({ length: seconds * FS }, (_, i) => {
    const k = i % Math.round(0.8 * FS);
    const qrs = k < 29 ? 1.2 * (1 - Math.abs(k - 14) / 14) : 0;
    return Math.round((qrs + extra(i)) * GAIN);
  });
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe('ECG signal quality index', () => {
  it('rates a clean ECG 1 without flags', () => {
    const q = new SignalQuality({ fs: FS });
    q.push(ecg(6), GAIN);
    expect(q.current()).toMatchObject({ quality: 1, flags: [] });
  });

  it('flags a flat line as lead-off with quality 0', () => {
    const q = new SignalQuality({ fs: FS });
    q.push(new Int16Array(6 * FS).fill(512), GAIN);
    expect(q.current()).toMatchObject({ quality: 0, flags: ['lead-off'] });
  });

  it('flags clipping at the rails as saturation', () => {
    const q = new SignalQuality({ fs: FS });
    q.push(ecg(6).map((v) => Math.min(v, 100)), GAIN);
    expect(q.current().flags).toContain('saturation');
    expect(q.current().quality).toBeLessThanOrEqual(0.5);
  });

  it('flags muscle-like noise and baseline wander', () => {
    const random = lcg(3);
    const noisy = new SignalQuality({ fs: FS });
    noisy.push(ecg(6, () => 0.3 * (random() - 0.5)), GAIN);
    expect(noisy.current().flags).toContain('noise');
    const wander = new SignalQuality({ fs: FS });
    wander.push(ecg(6, (i) => 2 * Math.sin((2 * Math.PI * 0.4 * i) / FS)), GAIN);
    expect(wander.current().flags).toContain('baseline-wander');
    expect(wander.current().quality).toBeLessThan(1);
  });
});
