import { describe, expect, it } from 'vitest';
import { AfDetector, afEpisodes, type AfEvent } from './af-detector.js';

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

function run(list: { sample: number; cls: string }[], end: number): AfEvent[] {
  const d = new AfDetector({ fs: FS });
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

describe('AF episodes', () => {
  it('merges back-dated episodes that overlap', () => {
    const e = (type: 'onset' | 'end', sample: number) => ({ type, sample, at: sample, irregularity: 0.1 });
    expect(afEpisodes([e('onset', 100), e('end', 500), e('onset', 450), e('end', 900), e('onset', 1000), e('end', 1200)])).toEqual([
      [100, 900],
      [1000, 1200],
    ]);
  });
});
