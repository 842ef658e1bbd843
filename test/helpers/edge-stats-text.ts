import { expect, vi } from 'vitest';
import { edgeCommand } from '../../firmware/cli/edge.js';

/** What `medge edge stats --data DATA` prints (run in this process, stdout captured); asserts exit 0. */
export async function edgeStatsText(data: string): Promise<string> {
  let out = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    expect(await edgeCommand(['stats', '--data', data])).toBe(0);
  } finally {
    write.mockRestore();
  }
  return out;
}
