import { join } from 'node:path';
import { SeqReservation, seqReservationPath } from '../../device-sdk/store/seq-reservation.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';

/**
 * The ledger of data directory `dir` as the runtime opens it: seq reservation next to it, the wall-clock seq
 * floor from a device clock reading `clockMs`; readings are compacted as soon as acknowledged.
 */
export function openFloorLedger(dir: string, deviceId: string, clockMs: number): SqliteOutboxStore {
  const path = join(dir, 'ledger.sqlite');
  return new SqliteOutboxStore(path, {
    deviceId,
    retentionMs: { reading: 0 },
    seqReservation: new SeqReservation(seqReservationPath(path)),
    seqFloorClock: { now: () => clockMs },
  });
}
