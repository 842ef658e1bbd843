/**
 * The training loop of both glucose networks (train.ts: the forecast; detector.ts: the
 * predicted-hypoglycaemia detector): Adam at 2e-3, 5e-4 from 70 % of the epochs on, mini-batches in
 * an order reshuffled every epoch by a seeded Fisher-Yates shuffle. The networks differ only in what
 * is given here: their rows (width of x and of y), loss, batch size and seeds.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../../device-sdk/inference/index.js';
import { mulberry32 } from '../../device-sdk/random.js';

/** Training rows: `n` rows of `x` (row-major, `features` values each) and `y` (`targets` values each). */
export interface TrainingRows {
  x: Float32Array;
  y: Float32Array;
  n: number;
}

export interface FitOptions {
  /** Values per row of `x` and of `y`. */
  features: number;
  targets: number;
  batch: number;
  epochs: number;
  /** Seed of the shuffle. */
  shuffleSeed: number;
  /** Called after every 50th mini-batch with the rows done so far in the epoch and the mean loss so far. */
  onBatches?: (epoch: number, done: number, meanLoss: number) => void;
  /** Called after each epoch with its mean mini-batch loss. */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

/** Compiles `model` with `loss` and trains it on `rows` (deterministic for fixed seeds). */
export async function fitShuffled(model: tfl.LayersModel, loss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor, rows: TrainingRows, o: FitOptions): Promise<tfl.LayersModel> {
  model.compile({ optimizer: tf.train.adam(2e-3), loss });
  const F = o.features;
  const T = o.targets;
  const rng = mulberry32(o.shuffleSeed);
  const order = Array.from({ length: rows.n }, (_, i) => i);
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    if (epoch === Math.round(o.epochs * 0.7)) (model.optimizer as unknown as { learningRate: number }).learningRate = 5e-4;
    let total = 0;
    let batches = 0;
    for (let b = 0; b < order.length; b += o.batch) {
      const idx = order.slice(b, b + o.batch);
      const x = new Float32Array(idx.length * F);
      const y = new Float32Array(idx.length * T);
      idx.forEach((k, r) => {
        x.set(rows.x.subarray(k * F, k * F + F), r * F);
        y.set(rows.y.subarray(k * T, k * T + T), r * T);
      });
      const xt = tf.tensor2d(x, [idx.length, F]);
      const yt = tf.tensor2d(y, [idx.length, T]);
      total += (await model.trainOnBatch(xt, yt)) as number;
      xt.dispose();
      yt.dispose();
      batches++;
      if (batches % 50 === 0) o.onBatches?.(epoch, Math.min(b + o.batch, order.length), total / batches);
    }
    o.onEpoch?.(epoch, total / batches);
  }
  return model;
}
