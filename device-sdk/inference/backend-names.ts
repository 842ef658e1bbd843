/**
 * The TF.js backends a model can run on. No TF.js here: a command checks its `--backend` flag
 * without loading it (`backend.ts` re-exports these). `tensorflow` needs the optional package
 * @tensorflow/tfjs-node; `initBackend` says so when it is not installed.
 */
export const BACKENDS = ['wasm', 'cpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKENDS)[number];
