/**
 * A small fully connected network evaluated in plain JavaScript: the glucose forecast model is a few
 * hundred weights, so the runtime evaluates it synchronously on each reading (microseconds) instead
 * of a worker round trip. Built from the same TF.js artifact the CLI loads with tfjs (`model.json`
 * topology + uint8-quantized `weights.bin`, dequantized as tfjs-layers does); tests check both agree.
 * Pure: takes the files' bytes.
 */
export type DenseActivation = 'linear' | 'relu' | 'tanh' | 'sigmoid';

export interface DenseLayer {
  inDim: number;
  outDim: number;
  /** Row-major [inDim][outDim], as TF.js stores a Dense kernel. */
  kernel: Float32Array;
  bias: Float32Array;
  activation: DenseActivation;
}

export class DenseNetworkError extends Error {}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min: number; scale: number };
}

interface LayerConfig {
  class_name: string;
  config: { units?: number; activation?: string; use_bias?: boolean; name?: string };
}

function activate(a: DenseActivation, x: number): number {
  switch (a) {
    case 'linear':
      return x;
    case 'relu':
      return x > 0 ? x : 0;
    case 'tanh':
      return Math.tanh(x);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
  }
}

export class DenseNetwork {
  readonly layers: readonly DenseLayer[];
  readonly inDim: number;
  readonly outDim: number;

  constructor(layers: DenseLayer[]) {
    if (layers.length === 0) throw new DenseNetworkError('a dense network needs at least one layer');
    for (let i = 1; i < layers.length; i++) {
      if ((layers[i] as DenseLayer).inDim !== (layers[i - 1] as DenseLayer).outDim) throw new DenseNetworkError(`layer ${i} reads ${(layers[i] as DenseLayer).inDim} values, the previous one gives ${(layers[i - 1] as DenseLayer).outDim}`);
    }
    this.layers = layers;
    this.inDim = (layers[0] as DenseLayer).inDim;
    this.outDim = (layers[layers.length - 1] as DenseLayer).outDim;
  }

  /** Evaluates one input vector. */
  predict(input: ArrayLike<number>): Float32Array {
    if (input.length !== this.inDim) throw new DenseNetworkError(`input has ${input.length} values, the network reads ${this.inDim}`);
    let x = Float32Array.from(input);
    for (const l of this.layers) {
      const y = new Float32Array(l.outDim);
      for (let o = 0; o < l.outDim; o++) {
        let s = l.bias[o] as number;
        for (let i = 0; i < l.inDim; i++) s += (x[i] as number) * (l.kernel[i * l.outDim + o] as number);
        y[o] = activate(l.activation, s);
      }
      x = y;
    }
    return x;
  }

  /**
   * From a TF.js layers-model `model.json` (a Sequential of Dense layers) and its weights file
   * (float32, or uint8 with per-tensor `min`/`scale`). Throws `DenseNetworkError` on anything else.
   */
  static fromArtifacts(modelJson: string, weights: Uint8Array): DenseNetwork {
    const parsed = JSON.parse(modelJson) as { modelTopology?: { class_name?: string; config?: { layers?: LayerConfig[] } | LayerConfig[] }; weightsManifest?: { weights: WeightSpec[] }[] };
    const topo = parsed.modelTopology;
    const layerList = Array.isArray(topo?.config) ? topo.config : topo?.config?.layers;
    if (topo?.class_name !== 'Sequential' || !Array.isArray(layerList)) throw new DenseNetworkError('model.json is not a Sequential layers model');
    const specs = (parsed.weightsManifest ?? []).flatMap((g) => g.weights);
    const values: Float32Array[] = [];
    let offset = 0;
    for (const spec of specs) {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      if (spec.quantization?.dtype === 'uint8') {
        const { min, scale } = spec.quantization;
        for (let i = 0; i < n; i++) out[i] = min + (weights[offset + i] as number) * scale;
        offset += n;
      } else if (spec.dtype === 'float32' && spec.quantization === undefined) {
        const view = new DataView(weights.buffer, weights.byteOffset + offset, n * 4);
        for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
        offset += n * 4;
      } else {
        throw new DenseNetworkError(`weight ${spec.name}: ${spec.quantization?.dtype ?? spec.dtype} weights are not supported`);
      }
      // A NaN or infinite weight (a bad export, or a quantization scale beyond float32) would give wrong outputs
      // that no output check catches once ReLU has zeroed it: refused at load.
      const bad = out.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new DenseNetworkError(`weight ${spec.name}: value ${bad} is ${out[bad]} (not a finite number): the model file is broken; re-export it`);
      values.push(out);
    }
    if (offset !== weights.byteLength) throw new DenseNetworkError(`weights file has ${weights.byteLength} bytes, the manifest describes ${offset}`);
    const layers: DenseLayer[] = [];
    let w = 0;
    let inDim = specs[0]?.shape[0] ?? 0;
    for (const l of layerList) {
      if (l.class_name === 'InputLayer') continue;
      if (l.class_name !== 'Dense') throw new DenseNetworkError(`layer ${l.config.name ?? '?'} is ${l.class_name}; only Dense layers are supported`);
      const activation = (l.config.activation ?? 'linear') as DenseActivation;
      if (!['linear', 'relu', 'tanh', 'sigmoid'].includes(activation)) throw new DenseNetworkError(`activation ${activation} is not supported`);
      const units = l.config.units ?? 0;
      const kernel = values[w++];
      const bias = l.config.use_bias === false ? new Float32Array(units) : values[w++];
      if (kernel === undefined || bias === undefined || kernel.length !== inDim * units || bias.length !== units) throw new DenseNetworkError(`weights of layer ${l.config.name ?? '?'} do not match its shape`);
      layers.push({ inDim, outDim: units, kernel, bias, activation });
      inDim = units;
    }
    if (w !== values.length) throw new DenseNetworkError(`${values.length - w} weight tensors are not used by the topology`);
    return new DenseNetwork(layers);
  }
}
