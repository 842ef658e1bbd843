/**
 * Runs the one `ByteTransport` contract suite against every implementation: the memory pair (plain,
 * and with delay + random chunking) and `SerialTransport` on both ends of a real socat pty pair
 * (real serialport, real pseudo-terminals; unplug = SIGKILL socat, replug = a new socat at the same
 * links).
 */
import { mulberry32 } from '../../device-sdk/random.js';
import { createMemoryTransportPair, randomSplitter } from '../../device-sdk/transport/memory-transport.js';
import { SerialTransport } from '../../device-sdk/transport/serial-transport.js';
import { createPtyPair, findSocat, systemAvailable } from '../helpers/pty.js';
import { describeByteTransportContract } from './byte-transport.contract.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');

describeByteTransportContract('MemoryTransport', async () => {
  const pair = createMemoryTransportPair();
  return {
    a: pair.a,
    b: pair.b,
    unplug: async () => pair.disconnect(),
    replug: async () => pair.reconnect(),
    cleanup: async () => undefined,
  };
});

describeByteTransportContract('MemoryTransport with 2 ms delay and seeded random 1-97 byte chunks', async () => {
  const pair = createMemoryTransportPair({ delayMs: 2, split: randomSplitter(mulberry32(11), 97), names: ['sim:device', 'driver:host'] });
  return {
    a: pair.a,
    b: pair.b,
    unplug: async () => pair.disconnect(),
    replug: async () => pair.reconnect(),
    cleanup: async () => undefined,
  };
});

describeByteTransportContract(
  'SerialTransport <-> SerialTransport over a socat pty pair',
  async () => {
    const pty = await createPtyPair();
    return {
      a: new SerialTransport({ path: pty.a, baudRate: 115_200 }),
      b: new SerialTransport({ path: pty.b, baudRate: 115_200 }),
      unplug: () => pty.kill(),
      replug: () => pty.replug(),
      cleanup: () => pty.close(),
    };
  },
  { skip: socatFound ? false : 'needs socat: apt-get install -y socat' },
);
