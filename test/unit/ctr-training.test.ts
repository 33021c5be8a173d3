import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCtrModel, handSetCtrWeights, writeCtrGraph } from '../../src/models/graphs/ctr.js';
import { readUserCard } from '../../src/models/model-card.js';
import { Adam } from '../../src/training/ctr/adam.js';
import { auc, bestF1, calibration, ctrMetrics, logLoss } from '../../src/training/ctr/ctr-metrics.js';
import { readExampleFile } from '../../src/training/ctr/example-files.js';
import { packExamples, splitByTime } from '../../src/training/ctr/examples.js';
import { CtrMlp } from '../../src/training/ctr/mlp.js';
import { runCtrTraining } from '../../src/training/ctr/training-run.js';
import { DEFAULT_TRAINING, trainCtr } from '../../src/training/ctr/trainer.js';
import { gaussian, seededRandom } from '../../src/util/random.js';
import { generateExamples } from '../support/ctr-examples.js';

const dirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'adstream-ctr-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('CTR MLP gradient', () => {
  it('matches central finite differences for every parameter', () => {
    const { set } = packExamples(generateExamples(7, 4, 3).records);
    const mlp = new CtrMlp(4, 5);
    const g = gaussian(seededRandom(9));
    mlp.initialise(g, 0.3);
    // Non-trivial biases, w2 and standardisation, so every term of the chain rule is exercised.
    for (let j = 0; j < 5; j++) {
      mlp.b1[j] = 0.3 * g();
      mlp.w2[j] = g();
    }
    mlp.fitStandardisation(set);
    const grad = new Float32Array(mlp.params.length);
    mlp.lossAndGradient(set, null, 0, set.size, grad);
    const meanLoss = (): number => mlp.lossAndGradient(set, null, 0, set.size, null) / set.size;
    const eps = 1e-3;
    let checked = 0;
    for (let i = 0; i < mlp.params.length; i++) {
      const keep = mlp.params[i]!;
      mlp.params[i] = keep + eps;
      const up = meanLoss();
      mlp.params[i] = keep - eps;
      const down = meanLoss();
      mlp.params[i] = keep;
      // float32 parameters: the perturbation actually applied is what the float32 stores.
      const numeric = (up - down) / (Math.fround(keep + eps) - Math.fround(keep - eps));
      expect(Math.abs(grad[i]! - numeric), `param ${i}: analytic ${grad[i]}, numeric ${numeric}`).toBeLessThan(2e-3 * Math.max(1, Math.abs(numeric)) + 1e-4);
      checked++;
    }
    expect(checked).toBe(12 * 5 + 5 + 5 + 1);
  });

  it('folds the standardisation into the weights: the same predictions with raw inputs', () => {
    const { set } = packExamples(generateExamples(20, 6, 4).records);
    const mlp = new CtrMlp(6, 4);
    mlp.initialise(gaussian(seededRandom(2)), 0.2);
    mlp.fitStandardisation(set);
    const a = new Float64Array(set.size);
    const b = new Float64Array(set.size);
    mlp.predict(set, a);
    CtrMlp.fromWeights(mlp.toWeights()).predict(set, b);
    for (let i = 0; i < set.size; i++) expect(b[i]).toBeCloseTo(a[i]!, 5);
  });
});

describe('Adam', () => {
  it('minimises a quadratic', () => {
    const x = Float32Array.of(3, -2);
    const adam = new Adam(x, { learningRate: 0.1 });
    const grad = new Float32Array(2);
    for (let t = 0; t < 500; t++) {
      grad[0] = 2 * (x[0]! - 1);
      grad[1] = 2 * (x[1]! + 0.5);
      adam.step(grad);
    }
    expect(x[0]).toBeCloseTo(1, 2);
    expect(x[1]).toBeCloseTo(-0.5, 2);
  });
});

describe('CTR metrics against hand-computed values', () => {
  const p = [0.1, 0.4, 0.35, 0.8];
  const y = [0, 0, 1, 1];

  it('AUC: 3 of the 4 positive-negative pairs ordered right; ties count half', () => {
    expect(auc(p, y)).toBeCloseTo(0.75, 12);
    // Positive 0.5 ties negative 0.5: pairs (0.5+,0.5-)=0.5, (0.5+,0.2-)=1, (0.9+,*)=2 -> 3.5 / 4.
    expect(auc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1])).toBeCloseTo(0.875, 12);
    expect(auc([0.1, 0.2], [1, 1])).toBeNaN();
  });

  it('log loss: the mean of -log of the probability given to the true label', () => {
    const expected = -(Math.log(0.9) + Math.log(0.6) + Math.log(0.35) + Math.log(0.8)) / 4;
    expect(logLoss(p, y)).toBeCloseTo(expected, 12);
  });

  it('best F1: threshold 0.35 (TP 2, FP 1, FN 0)', () => {
    const m = bestF1(p, y);
    expect(m.threshold).toBe(0.35);
    expect(m.precision).toBeCloseTo(2 / 3, 12);
    expect(m.recall).toBe(1);
    expect(m.f1).toBeCloseTo(0.8, 12);
    expect(m.accuracy).toBe(0.75);
  });

  it('calibration: equal-count bins by prediction, mean predicted and observed rate', () => {
    const bins = calibration(p, y, 2);
    expect(bins).toHaveLength(2);
    expect(bins[0]!.count).toBe(2);
    expect(bins[0]!.meanPredicted).toBeCloseTo((0.1 + 0.35) / 2, 12);
    expect(bins[0]!.observed).toBe(0.5);
    expect(bins[1]!.meanPredicted).toBeCloseTo((0.4 + 0.8) / 2, 12);
    expect(bins[1]!.observed).toBe(0.5);
    expect(ctrMetrics(p, y).positives).toBe(2);
  });
});

describe('training examples', () => {
  it('drops re-delivered examples and splits by event time, the latest for validation', () => {
    const { records } = generateExamples(10, 4, 1);
    const shuffled = [records[7]!, records[2]!, ...records, records[3]!];
    const { set, report } = packExamples(shuffled);
    expect(report.duplicates).toBe(3);
    const { train, validation, boundary } = splitByTime(set, 0.3);
    expect(train.size).toBe(7);
    expect(validation.size).toBe(3);
    expect(Math.max(...train.servedAt)).toBeLessThan(boundary);
    expect(Math.min(...validation.servedAt)).toBe(boundary);
  });

  it('refuses vectors of mixed widths and labels other than 0 / 1', () => {
    const { records } = generateExamples(2, 4, 1);
    expect(() => packExamples([records[0]!, { ...records[1]!, ad: [1, 0, 0] }])).toThrow(/4 values/);
    expect(() => packExamples([{ ...records[0]!, label: 2 }])).toThrow(/label must be 0 or 1/);
  });

  it('reads JSON lines and Avro container files of schemas/training-example.avsc', async () => {
    const dir = await tempDir();
    const { records } = generateExamples(5, 4, 8);
    const full = records.map((r, i) => ({ ...r, outputId: null, position: i, modelVersion: 'm', servedCtr: null }));
    await writeFile(join(dir, 'ex.jsonl'), full.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const type = avro.Type.forSchema(JSON.parse(await readFile(new URL('../../schemas/training-example.avsc', import.meta.url), 'utf8')) as avro.Schema);
    await new Promise<void>((resolve, reject) => {
      const enc = avro.createFileEncoder(join(dir, 'ex.avro'), type);
      enc.on('finish', resolve).on('error', reject);
      for (const r of full) enc.write(r);
      enc.end();
    });
    for (const f of ['ex.jsonl', 'ex.avro']) {
      const got = await readExampleFile(join(dir, f));
      expect(got.map((r) => r.exampleId)).toEqual(records.map((r) => r.exampleId));
      expect(Array.from(got[3]!.interest)[2]).toBeCloseTo(records[3]!.interest[2] as number, 6);
      expect(got[4]!.label).toBe(records[4]!.label);
    }
  });
});

describe('training on a generated set', () => {
  const { records, truth } = generateExamples(3000, 8, 5);
  const { set } = packExamples(records);
  const { train, validation } = splitByTime(set, 0.25);

  it('the loss falls, early stopping keeps the best epoch, and the trained model ranks better than the hand-set one', () => {
    const result = trainCtr(train, validation, { ...DEFAULT_TRAINING, hidden: 8, maxEpochs: 25, patience: 3 });
    const first = result.epochs[0]!;
    const bestEpoch = result.epochs[result.bestEpoch - 1]!;
    expect(bestEpoch.validationLoss).toBeLessThan(first.validationLoss);
    expect(result.epochs.at(-1)!.trainLoss).toBeLessThan(first.trainLoss);
    expect(result.bestValidationLoss).toBe(Math.min(...result.epochs.map((e) => e.validationLoss)));
    const trainedP = new Float64Array(validation.size);
    CtrMlp.fromWeights(result.weights).predict(validation, trainedP);
    const handP = new Float64Array(validation.size);
    CtrMlp.fromWeights(handSetCtrWeights({ dim: 8 })).predict(validation, handP);
    const trainedAuc = auc(trainedP, validation.labels);
    expect(trainedAuc).toBeGreaterThan(auc(handP, validation.labels) + 0.05);
    // And close to what the hidden truth itself achieves on these labels.
    const oracle = auc(truth.slice(truth.length - validation.size), validation.labels);
    expect(trainedAuc).toBeGreaterThan(0.9 * oracle);
    expect(logLoss(trainedP, validation.labels)).toBeLessThan(logLoss(handP, validation.labels));
  });

  it('the written ONNX graph gives what the trainer predicts, and the default graph equals the hand-set weights', async () => {
    const result = trainCtr(train, validation, { ...DEFAULT_TRAINING, hidden: 6, maxEpochs: 3 });
    const dir = await tempDir();
    for (const [name, bytes, weights] of [
      ['trained', writeCtrGraph(result.weights, { revision: 'test' }), result.weights],
      ['hand-set', buildCtrModel({ dim: 8 }), handSetCtrWeights({ dim: 8 })],
    ] as const) {
      const path = join(dir, `${name}.onnx`);
      await writeFile(path, bytes);
      const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
      const n = 50;
      const out = await session.run({ user: new ort.Tensor('float32', validation.interests.slice(0, n * 8), [n, 8]), ad: new ort.Tensor('float32', validation.ads.slice(0, n * 8), [n, 8]) });
      const onnx = out.ctr!.data as Float32Array;
      const js = new Float64Array(validation.size);
      CtrMlp.fromWeights(weights).predict(validation, js);
      for (let i = 0; i < n; i++) expect(onnx[i], `${name} row ${i}`).toBeCloseTo(js[i]!, 5);
      await session.release();
    }
  });

  it('adstream train writes a new version with a card MODEL_CARD accepts: metrics of both models, data range, sha256', async () => {
    const dir = await tempDir();
    const file = join(dir, 'examples.jsonl');
    await writeFile(file, records.map((r) => JSON.stringify(r)).join('\n'));
    const lines: string[] = [];
    const result = await runCtrTraining({ ...DEFAULT_TRAINING, hidden: 8, maxEpochs: 4, files: [file], validationShare: 0.25, modelDir: dir, say: (l) => lines.push(l) });
    expect(lines.filter((l) => l.startsWith('epoch ')).length).toBe(result.epochs);
    expect(lines.join('\n')).toMatch(/\| AUC \| [0-9.]+ \| [0-9.]+ \|/);
    const card = readUserCard(result.card);
    expect(card.ctr?.file).toBe('ctr.onnx');
    const entry = JSON.parse(await readFile(result.card, 'utf8')).models.ctr;
    const { createHash } = await import('node:crypto');
    expect(entry.sha256).toBe(createHash('sha256').update(await readFile(join(dir, 'ctr', result.version, 'ctr.onnx'))).digest('hex'));
    expect(entry.metrics.validation.trained.auc).toBe(result.trained.auc);
    expect(entry.metrics.validation.handSet.auc).toBe(result.handSet.auc);
    expect(entry.trainingData.train.examples + entry.trainingData.validation.examples).toBe(3000);
    expect(entry.trainingData.train.to).toBeLessThan(entry.trainingData.validation.from);
  });
});
