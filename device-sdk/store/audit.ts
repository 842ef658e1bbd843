import { createHash } from 'node:crypto';
import type { AuditEntry } from './outbox-store.js';

/** Hash of an audit entry chained to its predecessor: sha256 over the previous hash and the entry's fields. */
export function auditHash(prevHash: string, e: { tMs: number; actor: string; action: string; detail: string }): string {
  return createHash('sha256').update(`${prevHash}\n${e.tMs}\n${e.actor}\n${e.action}\n${e.detail}`).digest('hex');
}

export type AuditBreak =
  | { id: number; reason: 'altered'; message: string }
  | { id: number; reason: 'unlinked'; message: string }
  | { id: number; reason: 'out-of-order'; message: string };

export interface AuditVerification {
  ok: boolean;
  entries: number;
  /** The first entry at which the chain does not hold. */
  firstBreak?: AuditBreak;
  /** Hash of the last entry: keep it elsewhere (the edge) to detect removal of the newest entries. */
  head: string;
}

/**
 * Checks a hash chain read in id order: every entry's hash matches its fields (else `altered`),
 * links to the previous entry's hash (else `unlinked`: an entry was removed or inserted before it),
 * and ids increase (else `out-of-order`). The first entry links to ''. Removing the newest entries
 * leaves a valid shorter chain: compare `head` with a copy kept off the device to detect that.
 */
export function verifyAuditChain(entries: readonly AuditEntry[]): AuditVerification {
  let prev = '';
  let prevId = 0;
  for (const e of entries) {
    if (e.id <= prevId) return { ok: false, entries: entries.length, head: prev, firstBreak: { id: e.id, reason: 'out-of-order', message: `entry ${e.id} follows entry ${prevId}` } };
    if (e.prevHash !== prev) {
      return {
        ok: false,
        entries: entries.length,
        head: prev,
        firstBreak: { id: e.id, reason: 'unlinked', message: `entry ${e.id} links to ${e.prevHash.slice(0, 12) || '(nothing)'}, the entry before it hashes to ${prev.slice(0, 12) || '(nothing)'}` },
      };
    }
    if (auditHash(e.prevHash, e) !== e.hash) {
      return { ok: false, entries: entries.length, head: prev, firstBreak: { id: e.id, reason: 'altered', message: `entry ${e.id} does not match its hash` } };
    }
    prev = e.hash;
    prevId = e.id;
  }
  return { ok: true, entries: entries.length, head: prev };
}
