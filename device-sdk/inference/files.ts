/** The file names of a model directory (no TF.js here: the runtime's main thread imports them). */
export const MODEL_MANIFEST_FILE = 'medge-model.json';
export const MODEL_TOPOLOGY_FILE = 'model.json';
export const MODEL_WEIGHTS_FILE = 'weights.bin';
