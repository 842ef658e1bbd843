import { afterAll, beforeAll } from 'vitest';
import { defaultBeatModelDir, WorkerBeatClassifier } from '../../firmware/ecg-classifier.js';
import { requireBuild } from './cli.js';

/**
 * Starts the shipped beat classifier (models/ecg-beats in a wasm worker, from the build) before the
 * suite's tests and closes it after them. Register it before the suite's own `beforeAll` that uses it.
 */
export function useShippedBeatClassifier(): { readonly current: WorkerBeatClassifier } {
  let classifier: WorkerBeatClassifier | undefined;
  beforeAll(async () => {
    requireBuild();
    classifier = await WorkerBeatClassifier.start(defaultBeatModelDir(), 'wasm');
  });
  afterAll(async () => {
    await classifier?.close();
  });
  return {
    get current(): WorkerBeatClassifier {
      if (!classifier) throw new Error('the shipped beat classifier is not started (use it from a test or a later beforeAll)');
      return classifier;
    },
  };
}
