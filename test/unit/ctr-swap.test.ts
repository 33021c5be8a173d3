/**
 * A new CTR model version swapped into running inference workers: loaded, warmed and checked on a
 * held-back sample beside the old one, then used by the next batch; a corrupt file or a model that
 * does not reproduce its sample is refused and the old version keeps serving.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceEngine } from '../../src/inference/inference-engine.js';
import type { ModelSpec } from '../../src/inference/types.js';
import { buildCtrModel, writeCtrGraph, type CtrWeights } from '../../src/models/graphs/ctr.js';
import { buildScorer } from '../../src/models/graphs/scorer.js';
import { silentLogger } from '../../src/util/log.js';

const F = 8;
const K = 3;
const batcher = { maxBatchSize: 64, maxQueueDelayMs: 0, maxQueueItems: 10_000 };
let dir: string;
let engine: InferenceEngine;
let ctrSpec: ModelSpec;

/** A CTR model that predicts `p` for every pair. */
function constant(p: number): CtrWeights {
  return { dim: F, hidden: 2, w1: new Float32Array(3 * F * 2), b1: new Float32Array(2), w2: new Float32Array(2), b2: Float32Array.of(Math.log(p / (1 - p))) };
}

const unit = (i: number): Float32Array => {
  const v = new Float32Array(F);
  v[i % F] = 1;
  return v;
};

async function served(): Promise<number[]> {
  const users = new Float32Array(2 * F);
  users.set(unit(0), 0);
  users.set(unit(1), F);
  const r = await engine.infer('scorer', { items: 2, inputs: { users } });
  return Array.from(r.outputs.ctr as Float32Array);
}

/** A check sample: two pairs and what the candidate must predict for them. */
const sample = (expected: number) => ({ items: 2, inputs: [new Float32Array(2 * F).fill(0.25), new Float32Array(2 * F).fill(0.25)], expected: Float32Array.of(expected, expected), tolerance: 1e-5 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'adstream-swap-'));
  await writeFile(join(dir, 'scorer.onnx'), buildScorer({ dim: F }));
  await writeFile(join(dir, 'ctr.onnx'), buildCtrModel({ dim: F }));
  ctrSpec = { name: 'ctr', path: join(dir, 'ctr.onnx'), batcher, inputs: [{ name: 'user', type: 'float32', itemShape: [F] }, { name: 'ad', type: 'float32', itemShape: [F] }], outputs: [{ name: 'ctr', type: 'float32', itemShape: [1] }] };
  const scorer: ModelSpec = {
    name: 'scorer', path: join(dir, 'scorer.onnx'), batcher,
    inputs: [{ name: 'users', type: 'float32', itemShape: [F] }],
    outputs: [{ name: 'scores', type: 'float32', itemShape: [K] }, { name: 'indices', type: 'int64', itemShape: [K] }, { name: 'ctr', type: 'float32', itemShape: [K] }],
    residentInputs: [{ name: 'ads', type: 'float32' }, { name: 'k', type: 'int64' }],
    rerank: { model: 'ctr', queries: 'users', candidates: 'ads', indices: 'indices', queryInput: 'user', candidateInput: 'ad', score: 'ctr', output: 'ctr' },
  };
  engine = await InferenceEngine.start({ models: [scorer, ctrSpec], workers: 2, executionProviders: ['cpu'], intraOpNumThreads: 1, logger: silentLogger });
  const ads = new Float32Array(4 * F);
  for (let i = 0; i < 4; i++) ads.set(unit(i), i * F);
  await engine.setResident('scorer', 'ads', ads, [4, F]);
  await engine.setResident('scorer', 'k', BigInt64Array.of(BigInt(K)), [1]);
}, 60_000);

afterAll(async () => {
  await engine?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('swapping the CTR model while serving', () => {
  it('serves the hand-set model, then the new version once every worker has loaded and checked it', async () => {
    const before = await served();
    // Hand-set: about 12 % at cos 1 (the matching ad), 0.2 % at cos 0.
    expect(Math.max(...before)).toBeGreaterThan(0.1);
    expect(Math.min(...before)).toBeLessThan(0.01);
    const path = join(dir, 'ctr-v2.onnx');
    await writeFile(path, writeCtrGraph(constant(0.3), { revision: 'v2' }));
    const staged = await engine.stageModel({ ...ctrSpec, path }, sample(0.3));
    // Loaded and checked, not serving until committed.
    expect(await served()).toEqual(before);
    await staged.commit();
    expect(engine.spec('ctr')!.path).toBe(path);
    // Every batch after the swap, on either worker, uses v2.
    for (let i = 0; i < 4; i++) for (const p of await served()) expect(p).toBeCloseTo(0.3, 5);
  }, 60_000);

  it('refuses a corrupt file: the error says why, and the version in place keeps serving', async () => {
    const good = writeCtrGraph(constant(0.6), { revision: 'v3' });
    const path = join(dir, 'ctr-corrupt.onnx');
    await writeFile(path, good.subarray(0, Math.floor(good.length / 2)));
    await expect(engine.stageModel({ ...ctrSpec, path }, sample(0.6))).rejects.toThrow(/ctr-corrupt\.onnx\) refused/);
    for (const p of await served()) expect(p).toBeCloseTo(0.3, 5);
  }, 60_000);

  it('refuses a model that does not reproduce its held-back sample', async () => {
    const path = join(dir, 'ctr-wrong.onnx');
    await writeFile(path, writeCtrGraph(constant(0.9), { revision: 'v4' }));
    await expect(engine.stageModel({ ...ctrSpec, path }, sample(0.6))).rejects.toThrow(/held-back sample expects/);
    for (const p of await served()) expect(p).toBeCloseTo(0.3, 5);
  }, 60_000);

  it('refuses a version with other inputs or outputs before loading it', async () => {
    await expect(engine.stageModel({ ...ctrSpec, inputs: [{ name: 'user', type: 'float32', itemShape: [F + 1] }, ctrSpec.inputs[1]!] }, null)).rejects.toThrow(/keep the inputs and outputs/);
  });
});

describe('ServingVersion', () => {
  it('commits a swap only between rankings, and labels each ranking with the version it ran under', async () => {
    const { ServingVersion } = await import('../../src/pipeline/serving-version.js');
    const serving = new ServingVersion('v1');
    const log: string[] = [];
    let finishFirst!: () => void;
    const first = serving.rank(() => new Promise<string>((r) => (finishFirst = () => r('a'))));
    const swap = serving.swap('v2', async () => {
      log.push('commit');
    });
    // Started while the swap waits: runs after it, under v2.
    const second = serving.rank(async () => {
      log.push('second');
      return 'b';
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual([]); // the commit waits for the ranking in flight
    finishFirst();
    expect(await first).toEqual({ result: 'a', version: 'v1' });
    await swap;
    expect(await second).toEqual({ result: 'b', version: 'v2' });
    expect(log).toEqual(['commit', 'second']);
    expect(serving.version).toBe('v2');
  });

  it('keeps the old version when the commit fails', async () => {
    const { ServingVersion } = await import('../../src/pipeline/serving-version.js');
    const serving = new ServingVersion('v1');
    await expect(serving.swap('v2', () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect((await serving.rank(async () => 1)).version).toBe('v1');
  });
});
