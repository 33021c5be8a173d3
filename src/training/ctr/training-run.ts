/**
 * `adstream train` for the CTR model, start to end: read the examples, split by event time, train,
 * judge the trained and the hand-set model on the same validation set, write the new version.
 * Progress and the report go through `say` (one line each); the result is what the final JSON
 * line prints.
 */
import { DEFAULT_CTR_HIDDEN, handSetCtrWeights } from '../../models/graphs/ctr.js';
import { ctrMetrics, type CtrMetrics } from './ctr-metrics.js';
import { readExampleFile } from './example-files.js';
import { packExamples, splitByTime, subset, timeRange, type ExampleSet, type TrainingExampleRecord } from './examples.js';
import { CtrMlp } from './mlp.js';
import { publishTrainedCtr, type CtrCheckSample } from './publish.js';
import type { CtrWeights } from '../../models/graphs/ctr.js';
import { trainCtr, type CtrTrainingOptions } from './trainer.js';

export interface CtrTrainingRunOptions extends CtrTrainingOptions {
  /** Files exported from the training-examples topic (JSON lines or Avro containers). */
  readonly files: readonly string[];
  /** Records already read (from the topic); joined to the files' records. */
  readonly records?: readonly TrainingExampleRecord[];
  readonly validationShare: number;
  /** MODEL_DIR, expanded. */
  readonly modelDir: string;
  readonly say: (line: string) => void;
}

export interface CtrTrainingRunResult {
  readonly version: string;
  readonly card: string;
  readonly sha256: string;
  readonly examples: number;
  readonly duplicates: number;
  readonly train: { readonly examples: number; readonly from: number; readonly to: number };
  readonly validation: { readonly examples: number; readonly from: number; readonly to: number };
  readonly bestEpoch: number;
  readonly epochs: number;
  readonly examplesPerSecond: number;
  readonly trained: CtrMetrics;
  readonly handSet: CtrMetrics;
}

export async function runCtrTraining(o: CtrTrainingRunOptions): Promise<CtrTrainingRunResult> {
  const records: TrainingExampleRecord[] = [...(o.records ?? [])];
  for (const f of o.files) records.push(...(await readExampleFile(f)));
  const { set, report } = packExamples(records);
  const { train, validation, boundary } = splitByTime(set, o.validationShare);
  const trainRange = timeRange(train);
  const validationRange = timeRange(validation);
  o.say(`examples: ${set.size} (${report.duplicates} duplicates dropped), F = ${set.dim}; train ${train.size} until ${iso(boundary)}, validation ${validation.size} from then`);
  const result = trainCtr(train, validation, o, (e) =>
    o.say(`epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(5)}, validation loss ${e.validationLoss.toFixed(5)}${e.best ? ' (best)' : ''}, ${Math.round(e.examplesPerSecond)} examples/s`),
  );
  const trained = evaluate(CtrMlp.fromWeights(result.weights), validation);
  // The hand-set default has DEFAULT_CTR_HIDDEN units whatever the trained one has.
  const handSet = evaluate(CtrMlp.fromWeights(handSetCtrWeights({ dim: set.dim, hidden: DEFAULT_CTR_HIDDEN })), validation);
  o.say(metricsTable(trained, handSet));
  const data = { train: { examples: train.size, from: trainRange.from, to: trainRange.to }, validation: { examples: validation.size, from: validationRange.from, to: validationRange.to } };
  const published = await publishTrainedCtr(o.modelDir, result.weights, checkSample(result.weights, validation), {
    metrics: { validation: { trained, handSet } },
    trainingData: { ...data, fromIso: iso(trainRange.from), toIso: iso(validationRange.to), duplicatesDropped: report.duplicates },
    training: { loss: 'binary cross-entropy', optimiser: 'Adam', hidden: o.hidden, learningRate: o.learningRate, l2: o.l2, batchSize: o.batchSize, bestEpoch: result.bestEpoch, epochs: result.epochs.length, patience: o.patience, seed: o.seed },
  });
  o.say(`wrote ${published.version}: ${published.card}`);
  return {
    version: published.version, card: published.card, sha256: published.sha256,
    examples: set.size, duplicates: report.duplicates, ...data,
    bestEpoch: result.bestEpoch, epochs: result.epochs.length, examplesPerSecond: Math.round(result.examplesPerSecond),
    trained, handSet,
  };
}

/** Rows the processor makes the written model reproduce before it serves: the first validation examples, as our forward pass scores them. */
const CHECK_ROWS = 32;

function checkSample(weights: CtrWeights, validation: ExampleSet): CtrCheckSample {
  const rows = subset(validation, Array.from({ length: Math.min(CHECK_ROWS, validation.size) }, (_, i) => i));
  const p = new Float64Array(rows.size);
  CtrMlp.fromWeights(weights).predict(rows, p);
  return { user: rows.interests, ad: rows.ads, expected: Float32Array.from(p) };
}

function evaluate(mlp: CtrMlp, set: Parameters<CtrMlp['predict']>[0]): CtrMetrics {
  const p = new Float64Array(set.size);
  mlp.predict(set, p);
  return ctrMetrics(p, set.labels);
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The two models side by side, then calibration per decile. */
export function metricsTable(trained: CtrMetrics, handSet: CtrMetrics): string {
  const f = (x: number, d = 4): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
  const rows: [string, (m: CtrMetrics) => string][] = [
    ['AUC', (m) => f(m.auc)],
    ['log loss', (m) => f(m.logLoss)],
    ['threshold (best F1)', (m) => f(m.threshold)],
    ['accuracy', (m) => f(m.accuracy)],
    ['precision', (m) => f(m.precision)],
    ['recall', (m) => f(m.recall)],
    ['F1', (m) => f(m.f1)],
  ];
  const lines = [`validation: ${trained.examples} examples, ${trained.positives} clicks`, '| metric | trained | hand-set |', '| --- | --- | --- |'];
  for (const [name, get] of rows) lines.push(`| ${name} | ${get(trained)} | ${get(handSet)} |`);
  lines.push('', 'calibration (mean predicted / observed CTR per decile of prediction):', '| decile | trained | hand-set |', '| --- | --- | --- |');
  const n = Math.max(trained.calibration.length, handSet.calibration.length);
  const bin = (m: CtrMetrics, i: number): string => (m.calibration[i] ? `${f(m.calibration[i].meanPredicted)} / ${f(m.calibration[i].observed)}` : '');
  for (let i = 0; i < n; i++) lines.push(`| ${i + 1} | ${bin(trained, i)} | ${bin(handSet, i)} |`);
  return lines.join('\n');
}
