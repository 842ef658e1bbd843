import { describe, expect, it } from 'vitest';
import { createCliProgress } from './progress.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  return { stream: { isTTY, write: (s: string) => lines.push(s) > 0 } as unknown as NodeJS.WriteStream, lines };
}

describe('createCliProgress', () => {
  it('writes at most one line per interval (forced steps always), only when asked for or on a terminal', () => {
    let now = 0;
    const tty = fakeStream(true);
    const p = createCliProgress('glucose predict', { requested: false, stream: tty.stream, now: () => now, intervalMs: 1000 });
    p.step('a');
    now = 500;
    p.step('b');
    p.step('c', true);
    now = 1600;
    p.step('d');
    expect(tty.lines).toEqual(['medge glucose predict: a\n', 'medge glucose predict: c\n', 'medge glucose predict: d\n']);
    const pipe = fakeStream(false);
    createCliProgress('x', { requested: false, stream: pipe.stream }).step('quiet', true);
    expect(pipe.lines).toEqual([]);
    createCliProgress('x', { requested: true, stream: pipe.stream }).step('asked', true);
    expect(pipe.lines).toEqual(['medge x: asked\n']);
  });
});
