/**
 * Trains the CTR MLP on the train split with mini-batch Adam and stops early on the validation
 * loss: after `patience` epochs without a new best, the best epoch's parameters are restored.
 */
import { gaussian, seededRandom } from '../../util/random.js';
import type { CtrWeights } from '../../models/graphs/ctr.js';
import { Adam } from './adam.js';
import type { ExampleSet } from './examples.js';
import { CtrMlp } from './mlp.js';

export interface CtrTrainingOptions {
  readonly hidden: number;
  readonly maxEpochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly l2: number;
  /** Epochs without a better validation loss before stopping. */
  readonly patience: number;
  readonly seed: number;
}

export const DEFAULT_TRAINING: CtrTrainingOptions = { hidden: 32, maxEpochs: 60, batchSize: 128, learningRate: 0.002, l2: 1e-3, patience: 5, seed: 12 };

export interface EpochReport {
  readonly epoch: number;
  readonly trainLoss: number;
  readonly validationLoss: number;
  readonly best: boolean;
  /** Training examples per second of this epoch (the forward + backward + update passes only). */
  readonly examplesPerSecond: number;
}

export interface CtrTrainingResult {
  /** The best epoch's weights in the processor's layout (standardisation folded in). */
  readonly weights: CtrWeights;
  readonly bestEpoch: number;
  readonly bestValidationLoss: number;
  readonly epochs: readonly EpochReport[];
  /** Over all epochs. */
  readonly examplesPerSecond: number;
}

export function trainCtr(train: ExampleSet, validation: ExampleSet, o: CtrTrainingOptions, onEpoch: (e: EpochReport) => void = () => {}): CtrTrainingResult {
  if (train.dim !== validation.dim) throw new Error(`train and validation widths differ: ${train.dim} and ${validation.dim}`);
  const rand = seededRandom(o.seed);
  const mlp = new CtrMlp(train.dim, o.hidden);
  let positives = 0;
  for (const y of train.labels) positives += y;
  mlp.initialise(gaussian(rand), positives / train.size);
  mlp.fitStandardisation(train);
  const adam = new Adam(mlp.params, { learningRate: o.learningRate, l2: o.l2 });
  const grad = new Float32Array(mlp.params.length);
  const best = Float32Array.from(mlp.params);
  const order = Uint32Array.from({ length: train.size }, (_, i) => i);
  let bestLoss = mlp.lossAndGradient(validation, null, 0, validation.size, null) / validation.size;
  let bestEpoch = 0;
  const epochs: EpochReport[] = [];
  let trainedExamples = 0;
  let trainingMs = 0;
  for (let epoch = 1; epoch <= o.maxEpochs && epoch - bestEpoch <= o.patience; epoch++) {
    shuffle(order, rand);
    const t0 = performance.now();
    let trainLoss = 0;
    for (let from = 0; from < train.size; from += o.batchSize) {
      const to = Math.min(train.size, from + o.batchSize);
      grad.fill(0);
      trainLoss += mlp.lossAndGradient(train, order, from, to, grad);
      adam.step(grad);
    }
    const ms = performance.now() - t0;
    trainingMs += ms;
    trainedExamples += train.size;
    const validationLoss = mlp.lossAndGradient(validation, null, 0, validation.size, null) / validation.size;
    const isBest = validationLoss < bestLoss;
    if (isBest) {
      bestLoss = validationLoss;
      bestEpoch = epoch;
      best.set(mlp.params);
    }
    const report = { epoch, trainLoss: trainLoss / train.size, validationLoss, best: isBest, examplesPerSecond: train.size / (ms / 1000) };
    epochs.push(report);
    onEpoch(report);
  }
  mlp.params.set(best);
  return { weights: mlp.toWeights(), bestEpoch, bestValidationLoss: bestLoss, epochs, examplesPerSecond: trainedExamples / (trainingMs / 1000) };
}

/** Fisher-Yates, in place. */
function shuffle(a: Uint32Array, rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}
