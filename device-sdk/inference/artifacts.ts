/**
 * Model artifacts on disk: a directory with
 * - `model.json`: the TF.js layers topology and a weights manifest whose weights are uint8-quantized
 *   (`quantization: { dtype: 'uint8', min, scale }` per tensor, dequantized by `loadLayersModel`);
 * - `weights.bin`: the quantized weights;
 * - `medge-model.json`: the model manifest (id, version, input spec, labels, thresholds, metrics, and
 *   the sha256 of every other file). Its own sha256 is the model hash every finding carries;
 * - optionally `medge-manifest.json`: the Ed25519 signature over all files (device-sdk/security),
 *   which the runtime requires when trusted keys are configured.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { sha256Hex } from '../security/signing.js';
import { InferenceError } from './backend.js';

import { MODEL_MANIFEST_FILE, MODEL_TOPOLOGY_FILE, MODEL_WEIGHTS_FILE } from './files.js';
import { makeDirs } from '../make-dirs.js';

export { MODEL_MANIFEST_FILE, MODEL_TOPOLOGY_FILE, MODEL_WEIGHTS_FILE };

export interface ModelManifest {
  id: string;
  version: string;
  /** What the model reads, e.g. `{ name: 'beat', shape: [null, 256, 1], dtype: 'float32', rateHz: 360, ... }`. */
  input: Record<string, unknown>;
  labels: string[];
  /** Decision thresholds the caller applies, by name. */
  thresholds: Record<string, number>;
  /** The weight quantization used. */
  quantization: 'uint8' | 'none';
  /** Training and evaluation facts (split, seed, metrics); the model card says them in words. */
  training?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  /** sha256 hex of every other file of the artifact. */
  files: Record<string, string>;
}

export interface LoadedModel {
  model: LayersModel;
  manifest: ModelManifest;
  /** sha256 hex of `medge-model.json` (which itself pins every file's sha256). */
  sha256: string;
  dir: string;
}

/** Quantizes float32 weights to uint8 with a per-tensor affine map (as tfjs-converter does). */
export function quantizeUint8(values: Float32Array): { data: Uint8Array; min: number; scale: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!Number.isFinite(min)) min = max = 0;
  // tfjs-converter widens the range to contain 0 so that zero stays exact.
  min = Math.min(min, 0);
  max = Math.max(max, 0);
  const scale = max - min > 0 ? (max - min) / 255 : 1;
  const data = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = Math.round(((values[i] as number) - min) / scale);
  return { data, min, scale };
}

/**
 * Saves `model` with uint8-quantized weights and writes the manifest (file hashes filled in).
 * Returns the manifest as written.
 */
export async function saveQuantizedModel(model: LayersModel, dir: string, manifest: Omit<ModelManifest, 'files' | 'quantization'>): Promise<ModelManifest> {
  makeDirs(dir);
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts?.weightSpecs || !artifacts.weightData) throw new InferenceError('model.save produced no weights');
  const raw = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const spec of artifacts.weightSpecs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype !== 'float32') throw new InferenceError(`weight ${spec.name} is ${spec.dtype}; only float32 weights are quantized`);
    const values = new Float32Array(raw.slice(offset, offset + n * 4));
    offset += n * 4;
    const q = quantizeUint8(values);
    specs.push({ name: spec.name, shape: spec.shape, dtype: 'float32', quantization: { dtype: 'uint8', min: q.min, scale: q.scale } });
    parts.push(q.data);
  }
  const weights = Buffer.concat(parts);
  const topology = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_core}`,
    convertedBy: 'medge saveQuantizedModel (uint8)',
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [MODEL_WEIGHTS_FILE], weights: specs }],
  };
  const topologyBytes = Buffer.from(`${JSON.stringify(topology)}\n`);
  writeFileSync(join(dir, MODEL_TOPOLOGY_FILE), topologyBytes);
  writeFileSync(join(dir, MODEL_WEIGHTS_FILE), weights);
  const full: ModelManifest = {
    ...manifest,
    quantization: 'uint8',
    files: { [MODEL_TOPOLOGY_FILE]: sha256Hex(topologyBytes), [MODEL_WEIGHTS_FILE]: sha256Hex(weights) },
  };
  writeFileSync(join(dir, MODEL_MANIFEST_FILE), `${JSON.stringify(full, null, 2)}\n`);
  return full;
}

function readOrThrow(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new InferenceError(`cannot read the ${what} ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
}

/** Reads and checks the manifest of a model directory, verifying the sha256 of every file it lists. */
export function readModelManifest(dir: string): { manifest: ModelManifest; sha256: string; files: Map<string, Buffer> } {
  const bytes = readOrThrow(join(dir, MODEL_MANIFEST_FILE), 'model manifest');
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(bytes.toString('utf8')) as ModelManifest;
  } catch (error) {
    throw new InferenceError(`${join(dir, MODEL_MANIFEST_FILE)} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof manifest.id !== 'string' || typeof manifest.version !== 'string' || !Array.isArray(manifest.labels) || typeof manifest.files !== 'object' || manifest.files === null) {
    throw new InferenceError(`${join(dir, MODEL_MANIFEST_FILE)} lacks id, version, labels or files`);
  }
  const files = new Map<string, Buffer>();
  for (const [name, expected] of Object.entries(manifest.files)) {
    const data = readOrThrow(join(dir, name), 'model file');
    const actual = sha256Hex(data);
    if (actual !== expected) throw new InferenceError(`${join(dir, name)} does not match its sha256 in ${MODEL_MANIFEST_FILE} (expected ${expected.slice(0, 12)}…, got ${actual.slice(0, 12)}…): the model was altered`);
    files.set(name, data);
  }
  return { manifest, sha256: sha256Hex(bytes), files };
}

/**
 * Loads a model directory on the current backend, after checking every file's hash. Signature
 * checks (trusted keys) are the caller's: see `device-sdk/security` `verifyArtifactDir`.
 */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const { manifest, sha256, files } = readModelManifest(dir);
  const topologyBytes = files.get(MODEL_TOPOLOGY_FILE);
  const weights = files.get(MODEL_WEIGHTS_FILE);
  if (!topologyBytes || !weights) throw new InferenceError(`${dir}: ${MODEL_MANIFEST_FILE} must list ${MODEL_TOPOLOGY_FILE} and ${MODEL_WEIGHTS_FILE}`);
  return { model: await layersModelFromFiles(topologyBytes, weights), manifest, sha256, dir };
}

/** A layers model on the current backend from the bytes of its `model.json` and weights file (checked by the caller). */
export async function layersModelFromFiles(topologyBytes: Uint8Array, weights: Uint8Array): Promise<LayersModel> {
  const text = Buffer.from(topologyBytes.buffer, topologyBytes.byteOffset, topologyBytes.byteLength).toString('utf8');
  const topology = JSON.parse(text) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
  const weightSpecs = topology.weightsManifest.flatMap((g) => g.weights);
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  const model = await loadLayersModel(tf.io.fromMemory({ modelTopology: topology.modelTopology, weightSpecs, weightData }));
  // A NaN or infinite weight (a bad export, a quantization scale beyond float32) gives outputs that are wrong, or
  // NaN, for every input: refused at load, naming the weight.
  for (const w of model.weights) {
    const values = w.read().dataSync();
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      model.dispose();
      throw new InferenceError(`weight ${w.originalName} of the model: value ${bad} is ${values[bad]} (not a finite number): the model file is broken; re-export it`);
    }
  }
  return model;
}
