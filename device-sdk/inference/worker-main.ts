/**
 * The inference worker thread: loads one model on one backend and answers predictions.
 * Protocol (postMessage): in `{ type: 'predict', id, data: Float32Array, shape }`, out
 * `{ type: 'result', id, data: Float32Array, shape }` or `{ type: 'error', id, message }`. On start it
 * posts `{ type: 'ready', manifest, sha256, backend, loadMs }` or `{ type: 'error', message }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type BackendName, initBackend, tf } from './backend.js';
import { loadModel } from './artifacts.js';

interface Init {
  dir: string;
  backend: BackendName;
}
interface Predict {
  type: 'predict';
  id: number;
  data: Float32Array;
  shape: number[];
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) return;
  const init = workerData as Init;
  let loaded: Awaited<ReturnType<typeof loadModel>>;
  try {
    const t0 = performance.now();
    const backend = await initBackend(init.backend);
    loaded = await loadModel(init.dir);
    port.postMessage({ type: 'ready', manifest: loaded.manifest, sha256: loaded.sha256, backend, loadMs: performance.now() - t0 });
  } catch (error) {
    port.postMessage({ type: 'error', message: (error as Error).message });
    return;
  }
  port.on('message', (m: Predict) => {
    if (m?.type !== 'predict') return;
    try {
      const out = tf.tidy(() => loaded.model.predict(tf.tensor(m.data, m.shape)) as tf.Tensor);
      const data = out.dataSync() as Float32Array;
      const shape = out.shape;
      out.dispose();
      port.postMessage({ type: 'result', id: m.id, data, shape }, [data.buffer as ArrayBuffer]);
    } catch (error) {
      port.postMessage({ type: 'error', id: m.id, message: (error as Error).message });
    }
  });
}

void main();
