import { describe, expect, it } from 'vitest';
import { AfDetector, afEpisodes, type AfEvent, AtrialActivity } from './af-detector.js';

const FS = 360;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Beats with the given RR intervals (s) and classes. */
function beats(rr: number[], cls: (i: number) => string, start = 0): { sample: number; cls: string }[] {
  let t = start;
  return rr.map((r, i) => {
    t += Math.round(r * FS);
    return { sample: t, cls: cls(i) };
  });
}

function run(list: { sample: number; cls: string; atrial?: number }[], end: number, options: { ventricularRunBeats?: number } = {}): AfEvent[] {
  const d = new AfDetector({ fs: FS, ...options });
  const events: AfEvent[] = [];
  for (const b of list) events.push(...d.push(b));
  events.push(...d.finish(end));
  return events;
}

describe('AF detector', () => {
  it('finds an episode of irregular N-N intervals between regular stretches, dated near its true edges', () => {
    const random = lcg(7);
    const sinus = (n: number) => Array.from({ length: n }, () => 0.8 + 0.02 * (random() - 0.5));
    const af = (n: number) => Array.from({ length: n }, () => 0.4 + 0.6 * random());
    const rr = [...sinus(120), ...af(200), ...sinus(120)];
    const list = beats(rr, () => 'N');
    const events = run(list, (list.at(-1) as { sample: number }).sample + FS);
    const episodes = afEpisodes(events);
    expect(episodes).toHaveLength(1);
    const [start, end] = episodes[0] as [number, number];
    const trueStart = (list[119] as { sample: number }).sample;
    const trueEnd = (list[319] as { sample: number }).sample;
    // Within 10 beats of the true edges.
    expect(Math.abs(start - trueStart)).toBeLessThan(10 * 0.8 * FS);
    expect(Math.abs(end - trueEnd)).toBeLessThan(10 * 0.8 * FS);
    expect(events[0]?.at).toBeGreaterThan(trueStart);
  });

  it('does not call AF on frequent premature beats classified S or V (only N-N intervals count)', () => {
    // Sinus at 0.8 s with every third beat premature (0.5 s) and a compensatory pause (1.1 s): trigeminy.
    const rr = Array.from({ length: 400 }, (_, i) => (i % 3 === 1 ? 0.5 : i % 3 === 2 ? 1.1 : 0.8));
    const ectopic = (i: number) => (i % 3 === 1 ? (i % 2 ? 'V' : 'S') : 'N');
    expect(afEpisodes(run(beats(rr, ectopic), 400 * FS))).toEqual([]);
    // The same rhythm with every beat taken for N looks irregular: the classes are what prevents the false AF.
    expect(afEpisodes(run(beats(rr, () => 'N'), 400 * FS)).length).toBeGreaterThan(0);
  });
});

describe('AF detector: ventricular runs and atrial activity', () => {
  const random = lcg(11);
  const af = (n: number) => Array.from({ length: n }, () => 0.4 + 0.6 * random());

  it('ends an episode at a ventricular run and resumes it after the run', () => {
    const rr = [...af(150), ...Array.from({ length: 8 }, () => 0.35), ...af(150)];
    const cls = (i: number) => (i >= 150 && i < 158 ? 'V' : 'N');
    const list = beats(rr, cls);
    const end = (list.at(-1) as { sample: number }).sample + FS;
    const runStart = (list[150] as { sample: number }).sample;
    const runEnd = (list[158] as { sample: number }).sample;
    const episodes = afEpisodes(run(list, end, { ventricularRunBeats: 3 }));
    expect(episodes).toHaveLength(2);
    expect((episodes[0] as [number, number])[1]).toBe(runStart);
    expect((episodes[1] as [number, number])[0]).toBe(runEnd);
    // With the rule off (the default) the run is inside one episode.
    const off = afEpisodes(run(list, end));
    expect(off).toHaveLength(1);
    expect((off[0] as [number, number])[0]).toBeLessThan(runStart);
    expect((off[0] as [number, number])[1]).toBeGreaterThan(runEnd);
  });

  it('does not call AF on irregular RR while a P wave repeats before every QRS', () => {
    const rr = af(300);
    const irregular = beats(rr, () => 'N');
    const end = (irregular.at(-1) as { sample: number }).sample + FS;
    expect(afEpisodes(run(irregular, end)).length).toBeGreaterThan(0);
    const withP = irregular.map((b) => ({ ...b, atrial: 0.9 }));
    expect(afEpisodes(run(withP, end))).toEqual([]);
    const fibrillatory = irregular.map((b) => ({ ...b, atrial: 0.1 * (random() - 0.5) }));
    expect(afEpisodes(run(fibrillatory, end))).toEqual(afEpisodes(run(irregular, end)));
  });
});

describe('atrial activity', () => {
  /** A signal of beats at `rr` s intervals: a QRS spike, and a P wave 160 ms before it when `p`; uniform noise otherwise. */
  function signal(rr: number[], p: boolean, seed: number): { x: Int16Array; beats: number[] } {
    const random = lcg(seed);
    const total = Math.round(rr.reduce((a, b) => a + b, 1) * FS);
    const x = new Int16Array(total);
    for (let i = 0; i < total; i++) x[i] = Math.round(20 * (random() - 0.5));
    const out: number[] = [];
    let t = Math.round(0.5 * FS);
    for (const r of rr) {
      t += Math.round(r * FS);
      if (t + 10 >= total) break;
      out.push(t);
      for (let k = -5; k <= 5; k++) x[t + k] = (x[t + k] as number) + 1000 - 150 * Math.abs(k);
      if (p) for (let k = -18; k <= 18; k++) x[t - 58 + k] = (x[t - 58 + k] as number) + Math.round(120 * Math.cos((Math.PI * k) / 36));
    }
    return { x, beats: out };
  }
  const values = (p: boolean) => {
    const { x, beats: list } = signal(Array.from({ length: 60 }, (_, i) => 0.6 + 0.4 * ((i * 7) % 5) / 5), p, 3);
    const a = new AtrialActivity({ fs: FS });
    const out: number[] = [];
    let k = 0;
    for (let i = 0; i < x.length; i += FS) {
      a.pushSamples(x.subarray(i, i + FS));
      while (k < list.length && (list[k] as number) < Math.min(x.length, i + FS)) out.push(a.beat(list[k++] as number));
    }
    return out;
  };

  it('gives a high correlation when a P wave precedes every QRS and a low one without', () => {
    const withP = values(true);
    const without = values(false);
    expect(Number.isNaN(withP[0])).toBe(true);
    const med = (v: number[]) => [...v.filter(Number.isFinite)].sort((a, b) => a - b)[v.length >> 1] as number;
    expect(med(withP)).toBeGreaterThan(0.8);
    expect(Math.abs(med(without))).toBeLessThan(0.3);
  });

  it('returns NaN for a beat whose segment has left its history', () => {
    const a = new AtrialActivity({ fs: FS, historySeconds: 2 });
    a.pushSamples(new Int16Array(10 * FS));
    expect(a.beat(2 * FS)).toBeNaN();
  });
});

describe('AF episodes', () => {
  it('merges back-dated episodes that overlap', () => {
    const e = (type: 'onset' | 'end', sample: number) => ({ type, sample, at: sample, irregularity: 0.1 });
    expect(afEpisodes([e('onset', 100), e('end', 500), e('onset', 450), e('end', 900), e('onset', 1000), e('end', 1200)])).toEqual([
      [100, 900],
      [1000, 1200],
    ]);
  });
});
