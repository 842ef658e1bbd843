// One edge ingest worker in its own process, for tests of several workers on one edge store:
//   node test/helpers/ingest-worker.mjs URL DATA_DIR INDEX COUNT WATCH_JSON NOTICE_JSON
// Subscribes to every uplink and handles the messages whose payload hash falls to INDEX of COUNT (what a shared
// subscription does: each message to one worker; aedes has no $share), with its own EdgeStore (SQLite
// connection) on DATA_DIR and the built code (dist/). Prints "ready" once subscribed; SIGTERM closes it.
import { createHash } from 'node:crypto';
import { connect } from 'mqtt';
import { silentLogger } from '../../dist/device-sdk/log.js';
import { UP_WILDCARD } from '../../dist/device-sdk/sync/topics.js';
import { EdgeStore } from '../../dist/edge/edge-store.js';
import { Ingest } from '../../dist/edge/ingest.js';

const [url, dataDir, index, count, watch, notice] = process.argv.slice(2);
const store = new EdgeStore(dataDir);
const client = connect(url, { protocolVersion: 4, clientId: `medge-edge-ingest-worker-${index}`, clean: true, reconnectPeriod: 200 });
const ingest = new Ingest(store, (topic, payload) => void client.publish(topic, payload, { qos: 1 }), silentLogger, {}, {
  duplicateDeviceId: JSON.parse(watch),
  refusalNotice: JSON.parse(notice),
});
client.on('message', (topic, payload) => {
  if (createHash('sha1').update(payload).digest()[0] % Number(count) === Number(index)) ingest.handle(topic, payload);
});
client.on('connect', () => client.subscribe(UP_WILDCARD, { qos: 1 }, (error) => (error ? process.exit(2) : process.stdout.write('ready\n'))));
process.on('SIGTERM', () => {
  client.end(true, () => {
    store.close();
    process.exit(0);
  });
});
