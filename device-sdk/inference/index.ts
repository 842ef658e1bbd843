export { BACKENDS, type BackendName, InferenceError, initBackend, tf, tfjsNodeAvailable, wasmDir } from './backend.js';
export { layersModelFromFiles, type LoadedModel, loadModel, MODEL_MANIFEST_FILE, MODEL_TOPOLOGY_FILE, MODEL_WEIGHTS_FILE, type ModelManifest, quantizeUint8, readModelManifest, saveQuantizedModel } from './artifacts.js';
export { DEFAULT_INFERENCE_WORKER_OPTIONS, InferenceWorker, type InferenceWorkerOptions, inferenceWorkerOptions, workerScript } from './worker.js';
export { InferenceTimeoutError } from '../errors.js';
