import { connect, type MqttClient } from 'mqtt';
import { encodeAck } from '../../device-sdk/proto/index.js';
import { BatchRejectedError, openBatch } from '../../device-sdk/sync/batch.js';
import { downTopic, parseUpTopic } from '../../device-sdk/sync/topics.js';

export interface ScriptedBatch {
  afterSeq: number;
  lastSeq: number;
  ackedUpTo: number;
}

export interface ScriptedEdge {
  client: MqttClient;
  /** Every batch that passed `openBatch`, in arrival order. */
  batches: ScriptedBatch[];
  /** Messages of the batches `openBatch` refused. */
  rejected: string[];
  close(): Promise<void>;
}

/**
 * An edge peer on a broker (STYLE item 3): validates each uplink batch the way the edge does, and
 * answers it with the ack `respond` chooses (undefined: no ack). It stores nothing. With `namesBatch` its acks
 * name the batch they answer (`batchLastSeq`, as the edge does since it sends it); without, they do not (an older edge).
 */
export async function scriptedEdge(
  url: string,
  site: string,
  respond: (batch: ScriptedBatch, index: number) => number | undefined,
  options: { namesBatch?: boolean } = {},
): Promise<ScriptedEdge> {
  const client = connect(url, { clientId: 'scripted-edge', clean: true, reconnectPeriod: 0 }).on('error', () => undefined);
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const peer: ScriptedEdge = { client, batches: [], rejected: [], close: async () => void (await client.endAsync(true)) };
  client.on('message', (topic, payload) => {
    const where = parseUpTopic(topic);
    if (!where) return;
    try {
      const { header } = openBatch(payload, where);
      const batch = { afterSeq: header.afterSeq, lastSeq: header.lastSeq, ackedUpTo: header.ackedUpTo };
      peer.batches.push(batch);
      const upToSeq = respond(batch, peer.batches.length - 1);
      if (upToSeq === undefined) return;
      const ack = encodeAck({ deviceId: where.deviceId, kind: where.kind, upToSeq, edgeMs: Date.now(), ...(options.namesBatch ? { batchLastSeq: batch.lastSeq } : {}) });
      client.publish(downTopic(site, where.deviceId, 'ack'), Buffer.from(ack), { qos: 1 });
    } catch (error) {
      if (!(error instanceof BatchRejectedError)) throw error;
      peer.rejected.push(error.message);
    }
  });
  await client.subscribeAsync(`medge/v1/${site}/+/up/+`, { qos: 1 });
  return peer;
}
