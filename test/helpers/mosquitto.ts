// Mosquitto for tests: the implementation lives in bench/lib/mosquitto.js (plain JS, so the
// benchmarks can use it without a build) and is typed by bench/lib/mosquitto.d.ts.
//
//   const mosquittoFound = systemAvailable('mosquitto', findMosquitto() !== undefined, 'mosquitto mosquitto-clients');
//   describe.skipIf(!mosquittoFound)('... (needs mosquitto: apt-get install -y mosquitto)', () => { ... });
export {
  findMosquitto,
  freePort,
  type MosquittoBroker,
  type StartMosquittoOptions,
  startMosquitto,
  systemAvailable,
} from '../../bench/lib/mosquitto.js';
