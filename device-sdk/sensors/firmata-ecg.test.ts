/** `SessionTiming`: the sampling line read off late, bursty arrival times (the firmata-ecg replug gap). */
import { describe, expect, it } from 'vitest';
import { SessionTiming } from './firmata-ecg.js';

/** Arrivals of `n` values due every `period` ms from `due0`, each late by `delay(k)` (>= 0). */
function arrivals(n: number, due0: number, period: number, delay: (k: number) => number): SessionTiming {
  const timing = new SessionTiming();
  for (let k = 0; k < n; k++) timing.add(due0 + k * period + delay(k));
  return timing;
}

/** A deterministic 0..1 sequence (no Math.random in tests). */
function jitter(k: number): number {
  return ((k * 7919) % 101) / 101;
}

describe('SessionTiming', () => {
  it('recovers the period and the due times through delays and bursts that a count over the duration does not', () => {
    // 5 ms period (200/s), 1-3 ms delivery delay, the first 30 values held up and delivered in one burst
    // 150 ms late, the last 10 values 40 ms late (an event loop busy at both ends of the session).
    const delay = (k: number): number => (k < 30 ? 150 - k * 5 : k >= 190 ? 40 : 1 + 2 * jitter(k));
    const timing = arrivals(200, 1000, 5, delay);
    const plain = (1000 + 199 * 5 + delay(199) - (1000 + delay(0))) / 199;
    expect(Math.abs(plain - 5)).toBeGreaterThan(0.2); // the plain estimate is off by more than 4 %
    const period = timing.period()!;
    expect(Math.abs(period - 5)).toBeLessThan(0.02);
    // The first and the last value were due (arrived without delay) within the least delay of their window.
    expect(timing.dueAt(0, period) - 1000).toBeGreaterThanOrEqual(0);
    expect(timing.dueAt(0, period) - 1000).toBeLessThan(3);
    expect(timing.dueAt(199, period) - (1000 + 199 * 5)).toBeLessThan(3);
    expect(timing.dueAt(199, period) - (1000 + 199 * 5)).toBeGreaterThan(-3);
  });

  it('measures no period under half a second of sampling, and then gives arrival times as they are', () => {
    const timing = arrivals(50, 0, 5, (k) => (k === 0 ? 20 : 0));
    expect(timing.period()).toBeUndefined();
    expect(timing.dueAt(0, undefined)).toBe(20);
    expect(timing.dueAt(49, undefined)).toBe(245);
    expect(new SessionTiming().period()).toBeUndefined();
    // 600 ms of sampling whose first 30 values came in one burst 150 ms late: arrivals span 450 ms.
    const late = arrivals(121, 0, 5, (k) => (k < 30 ? 150 - k * 5 : 1));
    expect(Math.abs(late.period()! - 5)).toBeLessThan(0.01);
  });

  it('keeps only its two windows: a long session measures its period from its first and last values', () => {
    const timing = arrivals(100_000, 0, 10, (k) => 1 + jitter(k));
    expect(timing.count).toBe(100_000);
    expect(Math.abs(timing.period()! - 10)).toBeLessThan(1e-4);
    expect(Math.abs(timing.dueAt(99_999, 10) - 999_990)).toBeLessThan(1.01);
  });
});
