/**
 * TF.js backends on the board. The default is the wasm backend (its .wasm files ship in the npm
 * package and are located with `require.resolve`, so nothing is fetched); `cpu` is the portable
 * fallback; `tensorflow` (tfjs-node) is used only when the optional package loads.
 *
 * `await tf.setBackend('wasm')` returns false on failure and would silently leave us on the slow
 * cpu backend, so `initBackend` checks and throws `InferenceError` instead.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { InferenceError } from '../errors.js';
import { BACKENDS, type BackendName } from './backend-names.js';

export { BACKENDS, type BackendName, InferenceError };

const require = createRequire(import.meta.url);
let wasmPathsSet = false;

/** The directory holding tfjs-backend-wasm's .wasm files, with a trailing slash. */
export function wasmDir(): string {
  return `${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`;
}

/** Whether the optional tfjs-node package loads on this machine. */
export async function tfjsNodeAvailable(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-node' as string);
    return true;
  } catch {
    return false;
  }
}

/** Selects and initialises a backend; returns the name in use. Throws `InferenceError` when it cannot. */
export async function initBackend(name: BackendName = 'wasm'): Promise<BackendName> {
  if (tf.getBackend() === name) return name;
  if (name === 'wasm' && !wasmPathsSet) {
    setWasmPaths(wasmDir());
    wasmPathsSet = true;
  }
  if (name === 'tensorflow' && !(await tfjsNodeAvailable())) {
    throw new InferenceError('backend "tensorflow" needs the optional package @tensorflow/tfjs-node, which is not installed on this machine; use "wasm"');
  }
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (error) {
    throw new InferenceError(`backend "${name}" failed to initialise: ${(error as Error).message}`, { cause: error });
  }
  if (!ok || tf.getBackend() !== name) throw new InferenceError(`backend "${name}" failed to initialise (tf.setBackend returned false); known: ${BACKENDS.join(', ')}`);
  return name;
}

export { tf };
