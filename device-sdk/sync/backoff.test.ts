import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.js';
import { backoffDelay } from './backoff.js';

describe('backoffDelay (exponential, full jitter)', () => {
  const options = { initialMs: 250, maxMs: 30_000 };

  it('stays in [0, min(maxMs, initialMs * 2^attempt)) and uses the whole range', () => {
    const random = mulberry32(7);
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** attempt);
      const delays = Array.from({ length: 400 }, () => backoffDelay(attempt, options, random));
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...delays)).toBeLessThan(ceiling);
      // Full jitter: spread over the whole window, not clustered at the ceiling.
      expect(Math.min(...delays)).toBeLessThan(ceiling * 0.1);
      expect(Math.max(...delays)).toBeGreaterThan(ceiling * 0.9);
    }
  });

  it('is capped for very high attempt counts', () => {
    expect(backoffDelay(10_000, options, () => 0.999999)).toBeLessThan(options.maxMs);
    expect(backoffDelay(0, options, () => 0)).toBe(0);
  });
});
