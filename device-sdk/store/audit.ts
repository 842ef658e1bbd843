import { createHash } from 'node:crypto';

/** Hash of an audit entry chained to its predecessor: sha256 over the previous hash and the entry's fields. */
export function auditHash(prevHash: string, e: { tMs: number; actor: string; action: string; detail: string }): string {
  return createHash('sha256').update(`${prevHash}\n${e.tMs}\n${e.actor}\n${e.action}\n${e.detail}`).digest('hex');
}
