import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceError, initBackend, loadModel, quantizeUint8, readModelManifest, saveQuantizedModel, tf } from '../../device-sdk/inference/index.js';
import { InferenceWorker } from '../../device-sdk/inference/worker.js';
import { requireBuild } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tmp = useTempDirs('inference');

function smallCnn(): tfl.LayersModel {
  const model = tfl.sequential();
  model.add(tfl.layers.conv1d({ inputShape: [32, 1], filters: 4, kernelSize: 5, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }));
  model.add(tfl.layers.globalAveragePooling1d());
  model.add(tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }));
  return model;
}

const input = new Float32Array(Array.from({ length: 2 * 32 }, (_, i) => Math.sin(i / 3)));
const meta = { id: 'test-cnn', version: '1.0.0', input: { shape: [null, 32, 1] }, labels: ['a', 'b', 'c'], thresholds: {} };

describe('model artifacts', () => {
  beforeAll(async () => {
    expect(await initBackend('cpu')).toBe('cpu');
  });

  it('quantizes to uint8 with zero exact and the range covered', () => {
    const q = quantizeUint8(new Float32Array([-1, 0, 0.5, 2]));
    expect(q.min).toBe(-1);
    expect(q.data[0]).toBe(0);
    expect(q.data[3]).toBe(255);
    expect(q.min + (q.data[1] as number) * q.scale).toBeCloseTo(0, 2);
  });

  it('saves uint8 weights, pins every file by sha256, and loads to the same outputs within quantization error', async () => {
    const dir = join(tmp(), 'm');
    const model = smallCnn();
    const expected = (model.predict(tf.tensor(input, [2, 32, 1])) as tf.Tensor).dataSync();
    const manifest = await saveQuantizedModel(model, dir, meta);
    expect(manifest.quantization).toBe('uint8');
    expect(Object.keys(manifest.files).sort()).toEqual(['model.json', 'weights.bin']);
    const topology = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { weights: { quantization?: { dtype: string } }[] }[] };
    expect(topology.weightsManifest[0]?.weights.every((w) => w.quantization?.dtype === 'uint8')).toBe(true);
    // 4 bytes a float32 weight before, 1 after.
    const params = model.countParams();
    expect(readFileSync(join(dir, 'weights.bin')).byteLength).toBe(params);
    const loaded = await loadModel(dir);
    expect(loaded.manifest.id).toBe('test-cnn');
    expect(loaded.sha256).toMatch(/^[0-9a-f]{64}$/);
    const got = (loaded.model.predict(tf.tensor(input, [2, 32, 1])) as tf.Tensor).dataSync();
    for (let i = 0; i < got.length; i++) expect(Math.abs((got[i] as number) - (expected[i] as number))).toBeLessThan(0.02);
  });

  it('refuses a model whose weights were altered, naming the file', async () => {
    const dir = join(tmp(), 'm');
    await saveQuantizedModel(smallCnn(), dir, meta);
    const w = readFileSync(join(dir, 'weights.bin'));
    w[0] = (w[0] as number) ^ 1;
    writeFileSync(join(dir, 'weights.bin'), w);
    expect(() => readModelManifest(dir)).toThrow(InferenceError);
    await expect(loadModel(dir)).rejects.toThrow(/weights\.bin does not match its sha256/);
  });

  it('runs the model in a worker thread on the wasm backend, agreeing with the in-process cpu result', async () => {
    requireBuild();
    const dir = join(tmp(), 'm');
    await saveQuantizedModel(smallCnn(), dir, meta);
    const inProcess = (await loadModel(dir)).model;
    const expected = (inProcess.predict(tf.tensor(input, [2, 32, 1])) as tf.Tensor).dataSync();
    const worker = await InferenceWorker.start(dir, 'wasm');
    try {
      expect(worker.backend).toBe('wasm');
      expect(worker.manifest.labels).toEqual(['a', 'b', 'c']);
      const out = await worker.predict(input, [2, 32, 1]);
      expect(out.shape).toEqual([2, 3]);
      for (let i = 0; i < out.data.length; i++) expect(out.data[i]).toBeCloseTo(expected[i] as number, 4);
    } finally {
      await worker.close();
    }
  });

  it('a worker on a missing model rejects with the reason', async () => {
    requireBuild();
    await expect(InferenceWorker.start(join(tmp(), 'nothing'), 'wasm')).rejects.toThrow(/cannot read the model manifest/);
  });
});
