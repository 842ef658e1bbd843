// Pseudo-terminal pairs for serial tests: the implementation lives in simulator/pty.ts (the
// simulator runs its serial devices on ptys outside tests too).
//
//   const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');
//   describe.skipIf(!socatFound)('... (needs socat: apt-get install -y socat)', () => { ... });
export { createPtyPair, type CreatePtyPairOptions, findSocat, type PtyPair } from '../../simulator/pty.js';
export { systemAvailable } from './mosquitto.js';
