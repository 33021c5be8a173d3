import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { decideBatch, type PolicyInput } from '../../src/inference/batch-policy.js';
import { INFERENCE_SETTINGS } from '../../src/inference/settings.js';
import { InferenceEngine } from '../../src/inference/inference-engine.js';
import { WorkerPool } from '../../src/inference/worker-pool.js';
import { inferTyped, InferenceError, type Inference, type InferenceErrorCode, type InferenceReporter, type InferenceRequest, type InferenceResult, type ModelSpec } from '../../src/inference/types.js';
import { GraphBuilder } from '../../src/models/graphs/graph-builder.js';

// ---------------------------------------------------------------- helpers

/** Resolves with the InferenceError code a promise rejects with; fails on success or another error. */
async function codeOf(p: Promise<unknown>): Promise<InferenceErrorCode> {
  try {
    await p;
  } catch (err) {
    if (err instanceof InferenceError) return err.code;
    throw new Error(`expected an InferenceError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected an InferenceError, but the call succeeded');
}

class RecordingReporter implements InferenceReporter {
  batches: { model: string; batchSize: number; requests: number; failed: boolean; computeMs: number }[] = [];
  depths: { model: string; items: number }[] = [];
  rejections: { model: string; code: InferenceErrorCode; items: number }[] = [];
  providers: Record<string, string> = {};
  batch(model: string, e: { batchSize: number; requests: number; queueWaitMs: readonly number[]; computeMs: number; failed: boolean }): void {
    this.batches.push({ model, batchSize: e.batchSize, requests: e.requests, failed: e.failed, computeMs: e.computeMs });
  }
  queueDepth(model: string, items: number): void {
    this.depths.push({ model, items });
  }
  rejected(model: string, code: InferenceErrorCode, items: number): void {
    this.rejections.push({ model, code, items });
  }
  provider(model: string, provider: string): void {
    this.providers[model] = provider;
  }
  of<T extends { model: string }>(list: T[], model: string): T[] {
    return list.filter((x) => x.model === model);
  }
}

function rows(n: number, width: number, seed: number): Float32Array {
  return Float32Array.from({ length: n * width }, (_, i) => seed * 1000 + i);
}

// ---------------------------------------------------------------- tiny models

let dir: string;
const paths = { double: '', lookup: '', project: '', heavy: '' };
const TABLE_ROWS = 10;
const HEAVY_WIDTH = 512;
const HEAVY_LAYERS = 24;
const HEAVY_BATCH = 512;

function buildModels(): void {
  dir = mkdtempSync(join(tmpdir(), 'inference-engine-'));

  // y = x * 2, x float32 [batch, 4]
  let g = new GraphBuilder('double');
  g.op1('Mul', [g.input('x', 'float32', ['batch', 4]), g.weight('two', new Float32Array([2]), [1])], {}, 'y');
  g.output('y', 'float32', ['batch', 4]);
  paths.double = join(dir, 'double.onnx');
  writeFileSync(paths.double, g.build());

  // out = table[ids], ids int64 [batch], table 10 x 3 with table[i] = [i, 10 i, 100 i]
  g = new GraphBuilder('lookup');
  const table = Float32Array.from({ length: TABLE_ROWS * 3 }, (_, i) => Math.floor(i / 3) * 10 ** (i % 3));
  g.op1('Gather', [g.weight('table', table, [TABLE_ROWS, 3]), g.input('ids', 'int64', ['batch'])], { axis: 0 }, 'out');
  g.output('out', 'float32', ['batch', 3]);
  paths.lookup = join(dir, 'lookup.onnx');
  writeFileSync(paths.lookup, g.build());

  // y = x @ W, W [4, 2] resident (an input set by setResident, not a weight)
  g = new GraphBuilder('project');
  g.op1('MatMul', [g.input('x', 'float32', ['batch', 4]), g.input('W', 'float32', [4, 2])], {}, 'y');
  g.output('y', 'float32', ['batch', 2]);
  paths.project = join(dir, 'project.onnx');
  writeFileSync(paths.project, g.build());

  // A chain of MatMuls heavy enough to keep a worker busy for a while.
  g = new GraphBuilder('heavy');
  const w = g.weight('w', Float32Array.from({ length: HEAVY_WIDTH * HEAVY_WIDTH }, (_, i) => ((i * 7919) % 13) / 13 / HEAVY_WIDTH), [HEAVY_WIDTH, HEAVY_WIDTH]);
  let h = g.input('x', 'float32', ['batch', HEAVY_WIDTH]);
  for (let l = 0; l < HEAVY_LAYERS; l++) h = g.op1('MatMul', [h, w], {}, l === HEAVY_LAYERS - 1 ? 'y' : undefined);
  g.output('y', 'float32', ['batch', HEAVY_WIDTH]);
  paths.heavy = join(dir, 'heavy.onnx');
  writeFileSync(paths.heavy, g.build());
}

beforeAll(buildModels);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function doubleSpec(name: string, batcher: ModelSpec['batcher']): ModelSpec {
  return { name, path: paths.double, inputs: [{ name: 'x', type: 'float32', itemShape: [4] }], outputs: [{ name: 'y', type: 'float32', itemShape: [4] }], batcher };
}

// ---------------------------------------------------------------- policy

describe('batch policy', () => {
  const base: PolicyInput = { now: 100, oldestEnqueuedAt: 95, totalItems: 0, sizes: [], maxBatchSize: 8, maxQueueDelayMs: 20, workerFree: true };
  const q = (sizes: number[], over: Partial<PolicyInput> = {}): PolicyInput => ({ ...base, sizes, totalItems: sizes.reduce((a, b) => a + b, 0), ...over });

  it('is idle with an empty queue', () => {
    expect(decideBatch(q([]))).toEqual({ action: 'idle' });
  });

  it('sends a full batch at once, without waiting for the delay', () => {
    expect(decideBatch(q([4, 4], { oldestEnqueuedAt: 100 }))).toEqual({ action: 'send', requests: 2 });
  });

  it('by default (MAX_QUEUE_DELAY_MS 0) gives a free worker a partial batch at once, however young', () => {
    const shipped = INFERENCE_SETTINGS.maxQueueDelayMs.default;
    expect(shipped).toBe(0);
    expect(decideBatch(q([3, 2], { now: 95, maxQueueDelayMs: shipped }))).toEqual({ action: 'send', requests: 2 });
    expect(decideBatch(q([1], { now: 95, maxQueueDelayMs: shipped }))).toEqual({ action: 'send', requests: 1 });
  });

  it('while every worker is busy sends nothing and arms no timer: the queue grows into the next free worker\'s batch', () => {
    expect(decideBatch(q([1], { now: 95, maxQueueDelayMs: 0, workerFree: false }))).toEqual({ action: 'idle' });
    expect(decideBatch(q([1, 2, 3], { now: 95, maxQueueDelayMs: 0, workerFree: false }))).toEqual({ action: 'idle' });
    // The worker frees up: it takes everything that queued meanwhile (up to maxBatchSize).
    expect(decideBatch(q([1, 2, 3], { now: 95, maxQueueDelayMs: 0 }))).toEqual({ action: 'send', requests: 3 });
  });

  it('with an opt-in hold (maxQueueDelayMs > 0) waits the remaining delay with a partial batch', () => {
    expect(decideBatch(q([3, 2]))).toEqual({ action: 'wait', ms: 15 });
  });

  it('with an opt-in hold sends the partial batch once the oldest has waited maxQueueDelayMs', () => {
    expect(decideBatch(q([3, 2], { now: 115 }))).toEqual({ action: 'send', requests: 2 });
    expect(decideBatch(q([3, 2], { now: 200 }))).toEqual({ action: 'send', requests: 2 });
  });

  it('does nothing while no worker is free, even when a batch is due', () => {
    expect(decideBatch(q([4, 4], { workerFree: false }))).toEqual({ action: 'idle' });
    expect(decideBatch(q([1], { now: 500, workerFree: false }))).toEqual({ action: 'idle' });
  });

  it('sends a single request larger than maxBatchSize alone (requests are never split)', () => {
    expect(decideBatch(q([20, 1, 1]))).toEqual({ action: 'send', requests: 1 });
  });

  it('takes the first n requests that fit, and sends them now when the next one does not fit', () => {
    expect(decideBatch(q([3, 3, 3, 1]))).toEqual({ action: 'send', requests: 2 });
    expect(decideBatch(q([2, 2, 4, 5]))).toEqual({ action: 'send', requests: 3 });
  });

  it('sends at once with maxQueueDelayMs 0', () => {
    expect(decideBatch(q([1], { now: 95, maxQueueDelayMs: 0 }))).toEqual({ action: 'send', requests: 1 });
  });
});

// ---------------------------------------------------------------- engine

describe('inferTyped (the port by role, outputs checked against their declared types)', () => {
  const io = {
    model: 'encoder',
    inputs: { ids: { name: 'token_ids', type: 'int64' } },
    outputs: { embedding: { name: 'features', type: 'float32' }, rows: { name: 'row_ids', type: 'int64' } },
  } as const;
  /** An engine that answers one request with the given outputs and records what it was asked. */
  const fake = (outputs: InferenceResult['outputs']): Inference & { asked: { model: string; request: InferenceRequest }[] } => {
    const asked: { model: string; request: InferenceRequest }[] = [];
    const infer = async (model: string, request: InferenceRequest): Promise<InferenceResult> => {
      asked.push({ model, request });
      return { outputs, batchSize: request.items, queueWaitMs: 0, computeMs: 0 };
    };
    return { asked, infer };
  };

  it('sends inputs under their tensor names and hands outputs back by role', async () => {
    const ids = BigInt64Array.of(1n, 2n);
    const features = Float32Array.of(0.5, 0.25);
    const engine = fake({ features, row_ids: BigInt64Array.of(7n) });
    const out = await inferTyped(engine, io, { items: 2, inputs: { ids }, deadline: 123 });
    expect(engine.asked).toEqual([{ model: 'encoder', request: { items: 2, inputs: { token_ids: ids }, deadline: 123 } }]);
    expect(out.embedding).toBe(features);
    expect([...out.rows]).toEqual([7n]);
  });

  it('refuses an output that is missing or of another type (MODEL_FAILED)', async () => {
    expect(await codeOf(inferTyped(fake({ features: BigInt64Array.of(1n), row_ids: BigInt64Array.of(7n) }), io, { items: 1, inputs: { ids: BigInt64Array.of(1n) } }))).toBe('MODEL_FAILED');
    expect(await codeOf(inferTyped(fake({ features: Float32Array.of(1) }), io, { items: 1, inputs: { ids: BigInt64Array.of(1n) } }))).toBe('MODEL_FAILED');
  });
});

describe('InferenceEngine (real onnxruntime-node sessions on worker threads)', () => {
  let engine: InferenceEngine;
  const reporter = new RecordingReporter();

  beforeAll(async () => {
    engine = await InferenceEngine.start({
      models: [
        doubleSpec('double', { maxBatchSize: 64, maxQueueDelayMs: 20, maxQueueItems: 1024 }),
        doubleSpec('bounded', { maxBatchSize: 8, maxQueueDelayMs: 60_000, maxQueueItems: 8 }),
        doubleSpec('burst', { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueItems: 16 }),
        doubleSpec('patient', { maxBatchSize: 64, maxQueueDelayMs: 150, maxQueueItems: 64 }),
        doubleSpec('pressure', { maxBatchSize: 10, maxQueueDelayMs: 60_000, maxQueueItems: 10 }),
        {
          name: 'lookup',
          path: paths.lookup,
          inputs: [{ name: 'ids', type: 'int64', itemShape: [] }],
          outputs: [{ name: 'out', type: 'float32', itemShape: [3] }],
          batcher: { maxBatchSize: 32, maxQueueDelayMs: 5, maxQueueItems: 256 },
        },
        {
          name: 'project',
          path: paths.project,
          inputs: [{ name: 'x', type: 'float32', itemShape: [4] }],
          outputs: [{ name: 'y', type: 'float32', itemShape: [2] }],
          residentInputs: [{ name: 'W', type: 'float32' }],
          batcher: { maxBatchSize: 32, maxQueueDelayMs: 2, maxQueueItems: 256 },
        },
        {
          name: 'projectLate',
          path: paths.project,
          inputs: [{ name: 'x', type: 'float32', itemShape: [4] }],
          outputs: [{ name: 'y', type: 'float32', itemShape: [2] }],
          residentInputs: [{ name: 'W', type: 'float32' }],
          batcher: { maxBatchSize: 32, maxQueueDelayMs: 0, maxQueueItems: 256 },
        },
        {
          name: 'heavy',
          path: paths.heavy,
          inputs: [{ name: 'x', type: 'float32', itemShape: [HEAVY_WIDTH] }],
          outputs: [{ name: 'y', type: 'float32', itemShape: [HEAVY_WIDTH] }],
          batcher: { maxBatchSize: HEAVY_BATCH, maxQueueDelayMs: 0, maxQueueItems: 4 * HEAVY_BATCH },
        },
      ],
      workers: 2,
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      logger: silentLogger,
      reporter,
    });
  }, 60_000);

  afterAll(async () => {
    await engine?.close();
  });

  it('reports the provider each model runs on', () => {
    expect(engine.providers()).toMatchObject({ double: 'cpu', lookup: 'cpu', project: 'cpu', heavy: 'cpu' });
    expect(reporter.providers.double).toBe('cpu');
  });

  it('gives each of many concurrent requests of varying sizes its own rows', async () => {
    const sizes = Array.from({ length: 120 }, (_, i) => 1 + ((i * 5) % 7));
    const inputs = sizes.map((n, i) => rows(n, 4, i));
    const results = await Promise.all(inputs.map((x, i) => engine.infer('double', { items: sizes[i]!, inputs: { x } })));
    results.forEach((r, i) => {
      expect(r.outputs.y).toEqual(inputs[i]!.map((v) => v * 2));
      expect(r.batchSize).toBeGreaterThanOrEqual(sizes[i]!);
      expect(r.batchSize).toBeLessThanOrEqual(64);
    });
    // Results of a merged batch are views of one output buffer, not copies, and carry that batch's compute time.
    const merged = results.find((r) => r.batchSize > sizes[results.indexOf(r)]!)!;
    expect(merged.outputs.y!.buffer.byteLength).toBe(merged.batchSize * 4 * 4);
    const sameBatch = results.filter((r) => r.outputs.y!.buffer === merged.outputs.y!.buffer);
    expect(sameBatch.reduce((n, r) => n + r.outputs.y!.length / 4, 0)).toBe(merged.batchSize);
    expect(new Set(sameBatch.map((r) => r.computeMs)).size).toBe(1);
  });

  it('merges concurrent requests into batches (counted by the reporter)', async () => {
    const before = reporter.of(reporter.batches, 'double').length;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => engine.infer('double', { items: 1, inputs: { x: rows(1, 4, i) } })));
    results.forEach((r, i) => expect(r.outputs.y).toEqual(rows(1, 4, i).map((v) => v * 2)));
    const batches = reporter.of(reporter.batches, 'double').slice(before);
    expect(batches.reduce((a, b) => a + b.requests, 0)).toBe(50);
    expect(Math.max(...batches.map((b) => b.batchSize))).toBeGreaterThan(1);
    expect(batches.length).toBeLessThan(10);
  });

  it('refuses with QUEUE_FULL beyond maxQueueItems, at once, and sends when the batch fills', async () => {
    const seven = Array.from({ length: 7 }, (_, i) => engine.infer('bounded', { items: 1, inputs: { x: rows(1, 4, i) } }));
    expect(engine.queuedItems()).toBe(7);
    expect(await codeOf(engine.infer('bounded', { items: 2, inputs: { x: rows(2, 4, 9) } }))).toBe('QUEUE_FULL');
    expect(engine.queuedItems()).toBe(7);
    // The eighth item makes a full batch: sent without waiting for the 60 s delay.
    const eighth = engine.infer('bounded', { items: 1, inputs: { x: rows(1, 4, 7) } });
    const all = await Promise.all([...seven, eighth]);
    all.forEach((r, i) => {
      expect(r.batchSize).toBe(8);
      expect(r.outputs.y).toEqual(rows(1, 4, i).map((v) => v * 2));
    });
    expect(reporter.of(reporter.rejections, 'bounded')).toEqual([{ model: 'bounded', code: 'QUEUE_FULL', items: 2 }]);
  });

  it('does not grow past the bound under a burst: the surplus is refused', async () => {
    const settled = await Promise.allSettled(Array.from({ length: 1000 }, (_, i) => engine.infer('burst', { items: 1, inputs: { x: rows(1, 4, i) } })));
    const ok = settled.filter((s) => s.status === 'fulfilled');
    const full = settled.filter((s) => s.status === 'rejected' && (s.reason as InferenceError).code === 'QUEUE_FULL');
    expect(ok.length + full.length).toBe(1000);
    expect(full.length).toBeGreaterThan(0);
    expect(Math.max(...reporter.of(reporter.depths, 'burst').map((d) => d.items))).toBeLessThanOrEqual(16);
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') expect(s.value.outputs.y).toEqual(rows(1, 4, i).map((v) => v * 2));
    });
  });

  it('rejects with DEADLINE_EXCEEDED a request already late, and one that expires while queued (not sent)', async () => {
    expect(await codeOf(engine.infer('patient', { items: 1, inputs: { x: rows(1, 4, 0) }, deadline: Date.now() - 1 }))).toBe('DEADLINE_EXCEEDED');
    const before = reporter.of(reporter.batches, 'patient').length;
    const late = engine.infer('patient', { items: 3, inputs: { x: rows(3, 4, 1) }, deadline: Date.now() + 20 });
    const onTime = engine.infer('patient', { items: 2, inputs: { x: rows(2, 4, 2) }, deadline: Date.now() + 60_000 });
    expect(await codeOf(late)).toBe('DEADLINE_EXCEEDED');
    const r = await onTime;
    expect(r.outputs.y).toEqual(rows(2, 4, 2).map((v) => v * 2));
    expect(r.batchSize).toBe(2);
    expect(reporter.of(reporter.batches, 'patient').slice(before)).toEqual([{ model: 'patient', batchSize: 2, requests: 1, failed: false, computeMs: expect.any(Number) }]);
  });

  it('rejects malformed requests with BAD_REQUEST and unknown models with UNKNOWN_MODEL', async () => {
    const x = rows(2, 4, 0);
    expect(await codeOf(engine.infer('double', { items: 3, inputs: { x } }))).toBe('BAD_REQUEST');
    expect(await codeOf(engine.infer('double', { items: 2, inputs: { x: Float64Array.from(x) as unknown as Float32Array } }))).toBe('BAD_REQUEST');
    expect(await codeOf(engine.infer('double', { items: 2, inputs: {} }))).toBe('BAD_REQUEST');
    expect(await codeOf(engine.infer('double', { items: 0, inputs: { x: new Float32Array(0) } }))).toBe('BAD_REQUEST');
    expect(await codeOf(engine.infer('double', { items: 2, inputs: { x, z: x } }))).toBe('BAD_REQUEST');
    expect(await codeOf(engine.infer('lookup', { items: 2, inputs: { ids: new Float32Array(2) } }))).toBe('BAD_REQUEST');
    expect(await codeOf(engine.infer('nope', { items: 2, inputs: { x } }))).toBe('UNKNOWN_MODEL');
    expect(engine.queuedItems()).toBe(0);
  });

  it('runs the int64 Gather model', async () => {
    const r = await engine.infer('lookup', { items: 3, inputs: { ids: BigInt64Array.from([3n, 0n, 9n]) } });
    expect([...r.outputs.out!]).toEqual([3, 30, 300, 0, 0, 0, 9, 90, 900]);
  });

  it('fails only the failing batch (MODEL_FAILED with the ORT message) while other models keep working', async () => {
    const bad = engine.infer('lookup', { items: 2, inputs: { ids: BigInt64Array.from([1n, 99n]) } });
    const doubles = Array.from({ length: 10 }, (_, i) => engine.infer('double', { items: 1, inputs: { x: rows(1, 4, i) } }));
    const err = await bad.then(
      () => undefined,
      (e: unknown) => e as InferenceError,
    );
    expect(err?.code).toBe('MODEL_FAILED');
    expect(err?.message).toMatch(/out of (data )?bounds|indices/i);
    for (const [i, d] of doubles.entries()) expect((await d).outputs.y).toEqual(rows(1, 4, i).map((v) => v * 2));
    // The same model serves the next batch.
    expect([...(await engine.infer('lookup', { items: 1, inputs: { ids: BigInt64Array.from([2n]) } })).outputs.out!]).toEqual([2, 20, 200]);
    expect(reporter.of(reporter.batches, 'lookup').some((b) => b.failed)).toBe(true);
  });

  it('fails batches of a model whose resident input is not set, then uses each resident as it is set', async () => {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const notSet = await engine.infer('project', { items: 2, inputs: { x } }).then(
      () => undefined,
      (e: unknown) => e as InferenceError,
    );
    expect(notSet?.code).toBe('MODEL_FAILED');
    expect(notSet?.message).toMatch(/resident inputs not set: W/);

    // W picks the first two columns of x.
    await engine.setResident('project', 'W', Float32Array.from([1, 0, 0, 1, 0, 0, 0, 0]), [4, 2]);
    expect([...(await engine.infer('project', { items: 2, inputs: { x } })).outputs.y!]).toEqual([1, 2, 5, 6]);
    // Replaced: sums of the last two columns, and twice the first.
    await engine.setResident('project', 'W', Float32Array.from([2, 0, 0, 0, 0, 1, 0, 1]), [4, 2]);
    expect([...(await engine.infer('project', { items: 2, inputs: { x } })).outputs.y!]).toEqual([2, 7, 10, 15]);

    // Refused by the engine before reaching the workers: wrong type, wrong count, unknown name.
    expect(await codeOf(engine.setResident('project', 'W', new BigInt64Array(8), [4, 2]))).toBe('BAD_REQUEST');
    expect(await codeOf(engine.setResident('project', 'W', new Float32Array(8), [4, 3]))).toBe('BAD_REQUEST');
    expect(await codeOf(engine.setResident('project', 'V', new Float32Array(8), [4, 2]))).toBe('BAD_REQUEST');
    expect([...(await engine.infer('project', { items: 2, inputs: { x } })).outputs.y!]).toEqual([2, 7, 10, 15]);
  });

  it('reports a first resident the graph cannot run with, and warms up once one fits', async () => {
    // W [3, 2] cannot multiply x [n, 4]: the warm-up that follows the first complete set fails.
    const err = await engine.setResident('projectLate', 'W', new Float32Array(6), [3, 2]).then(
      () => undefined,
      (e: unknown) => e as InferenceError,
    );
    expect(err?.code).toBe('MODEL_FAILED');
    expect(err?.message).toMatch(/warm-up/);
    expect(await codeOf(engine.infer('projectLate', { items: 1, inputs: { x: new Float32Array(4) } }))).toBe('MODEL_FAILED');
    await engine.setResident('projectLate', 'W', Float32Array.from([1, 0, 0, 1, 0, 0, 0, 0]), [4, 2]);
    expect([...(await engine.infer('projectLate', { items: 1, inputs: { x: Float32Array.from([3, 4, 5, 6]) } })).outputs.y!]).toEqual([3, 4]);
  });

  it('signals pressure above 80 % of a queue bound and clears it below 40 %', async () => {
    const events: boolean[] = [];
    const off = engine.onPressure((s) => events.push(s));
    const a = engine.infer('pressure', { items: 4, inputs: { x: rows(4, 4, 1) } });
    const b = engine.infer('pressure', { items: 4, inputs: { x: rows(4, 4, 2) } });
    expect(events).toEqual([]); // 8 of 10 is not above 80 %
    const c = engine.infer('pressure', { items: 1, inputs: { x: rows(1, 4, 3) } });
    expect(events).toEqual([true]); // 9 of 10, waiting for a fuller batch
    // The tenth item fills the batch, which leaves at once: the queue is empty again.
    const d = engine.infer('pressure', { items: 1, inputs: { x: rows(1, 4, 4) } });
    expect(events).toEqual([true, false]);
    const results = await Promise.all([a, b, c, d]);
    expect(results.map((r) => r.batchSize)).toEqual([10, 10, 10, 10]);
    expect(results[3]!.outputs.y).toEqual(rows(1, 4, 4).map((v) => v * 2));
    off();
  });

  it('keeps the event loop free while a worker runs a heavy model: the main thread keeps taking turns, as it cannot when the model runs on it', async () => {
    const x = rows(HEAVY_BATCH, HEAVY_WIDTH, 0).map((v) => (v % 17) / 17);
    // Turns the event loop takes (a setImmediate chain) until `fn` settles: a loop blocked by the
    // compute takes almost none, a free one takes thousands. Counted, not timed (timings: npm run bench:inference).
    const turnsDuring = async (fn: () => Promise<unknown>): Promise<number> => {
      let turns = 0;
      let spinning = true;
      const spin = (): void => {
        if (!spinning) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      try {
        await fn();
      } finally {
        spinning = false;
      }
      return turns;
    };

    const results: InferenceResult[] = [];
    const viaWorkers = await turnsDuring(async () => {
      for (let i = 0; i < 3; i++) results.push(...(await Promise.all([0, 1].map(() => engine.infer('heavy', { items: HEAVY_BATCH, inputs: { x } })))));
    });
    expect(results).toHaveLength(6);
    expect(results.every((r) => r.outputs.y!.length === HEAVY_BATCH * HEAVY_WIDTH)).toBe(true);

    // For contrast, the same model run on this thread blocks the loop for the whole run.
    const session = await ort.InferenceSession.create(paths.heavy, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    let onMain: number;
    try {
      onMain = await turnsDuring(async () => {
        for (let i = 0; i < 2; i++) await session.run({ x: new ort.Tensor('float32', x, [HEAVY_BATCH, HEAVY_WIDTH]) });
      });
    } finally {
      await session.release();
    }
    console.log(`[heavy model] event-loop turns while 6 batches ran on the workers: ${viaWorkers}; while 2 ran on the main thread: ${onMain}`);
    expect(viaWorkers).toBeGreaterThan(20 * (onMain + 1));
  }, 60_000);
});

describe('InferenceEngine start and close', () => {
  /** An engine of the `double` model on `providers`, and the lines it logged. */
  const startOn = async (providers: string[]): Promise<{ engine: InferenceEngine; fallbacks: Record<string, unknown>[] }> => {
    const lines: string[] = [];
    const engine = await InferenceEngine.start({
      models: [doubleSpec('double', { maxBatchSize: 8, maxQueueDelayMs: 60_000, maxQueueItems: 64 })],
      workers: 2,
      executionProviders: providers,
      intraOpNumThreads: 1,
      logger: createLogger('debug', {}, (l) => lines.push(l)),
    });
    const fallbacks = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.model === 'double' && String(r.msg).includes('fell back'));
    return { engine, fallbacks };
  };

  it('falls back to the next provider when one cannot start, and logs it once per model, with the reason', async () => {
    // A provider onnxruntime has no backend for fails at session creation on every machine.
    const { engine, fallbacks } = await startOn(['no-such-provider', 'cpu']);
    try {
      expect(engine.providers()).toEqual({ double: 'cpu' });
      expect(fallbacks).toHaveLength(1);
      expect(fallbacks[0]).toMatchObject({ level: 'warn', provider: 'cpu', failed: [{ provider: 'no-such-provider', reason: expect.stringMatching(/\S/) }] });
      expect((await engine.infer('double', { items: 8, inputs: { x: rows(8, 4, 1) } })).outputs.y).toEqual(rows(8, 4, 1).map((v) => v * 2));

      // Closing rejects what is queued, then refuses new work.
      const queued = codeOf(engine.infer('double', { items: 1, inputs: { x: rows(1, 4, 1) } }));
      await engine.close();
      expect(await queued).toBe('ENGINE_CLOSED');
      expect(await codeOf(engine.infer('double', { items: 1, inputs: { x: rows(1, 4, 1) } }))).toBe('ENGINE_CLOSED');
      expect(engine.queuedItems()).toBe(0);
    } finally {
      await engine.close();
    }
  }, 60_000);

  it('with cuda then cpu, runs on cuda where its provider files are installed, else on cpu with the fallback logged', async () => {
    // This project installs onnxruntime-node without its CUDA provider files (`.npmrc`), so here it
    // is cpu; with `npm ci --onnxruntime-node-install=cuda12` on a GPU machine it is cuda.
    const { engine, fallbacks } = await startOn(['cuda', 'cpu']);
    try {
      const provider = engine.providers().double;
      console.log(`[fallback] cuda, cpu -> ${provider} ${JSON.stringify(fallbacks.map((f) => f.failed))}`);
      if (provider === 'cuda') expect(fallbacks).toEqual([]);
      else expect(fallbacks).toMatchObject([{ provider: 'cpu', failed: [{ provider: 'cuda', reason: expect.stringMatching(/\S/) }] }]);
      expect(['cuda', 'cpu']).toContain(provider);
      expect((await engine.infer('double', { items: 8, inputs: { x: rows(8, 4, 1) } })).outputs.y).toEqual(rows(8, 4, 1).map((v) => v * 2));
    } finally {
      await engine.close();
    }
  }, 60_000);

  it('fails to start, naming the model, when no provider can run it', async () => {
    const start = InferenceEngine.start({
      models: [doubleSpec('double', { maxBatchSize: 8, maxQueueDelayMs: 1, maxQueueItems: 64 })],
      workers: 1,
      executionProviders: ['no-such-provider'],
      intraOpNumThreads: 1,
      logger: silentLogger,
    });
    await expect(start).rejects.toThrow(/model double: no execution provider could run it: no-such-provider:/);
  }, 60_000);

  it('fails to start when the spec names an input the graph does not have', async () => {
    const spec = doubleSpec('double', { maxBatchSize: 8, maxQueueDelayMs: 1, maxQueueItems: 64 });
    const start = InferenceEngine.start({
      models: [{ ...spec, inputs: [{ name: 'features', type: 'float32', itemShape: [4] }] }],
      workers: 1,
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      logger: silentLogger,
    });
    await expect(start).rejects.toThrow(/missing inputs \[features\]/);
  }, 60_000);

  it('names the bad setting', async () => {
    const start = (batcher: ModelSpec['batcher'], workers = 1): Promise<InferenceEngine> =>
      InferenceEngine.start({ models: [doubleSpec('double', batcher)], workers, executionProviders: ['cpu'], intraOpNumThreads: 1, logger: silentLogger });
    await expect(start({ maxBatchSize: 0, maxQueueDelayMs: 1, maxQueueItems: 8 })).rejects.toThrow(/models\[0\]\.batcher\.maxBatchSize/);
    await expect(start({ maxBatchSize: 16, maxQueueDelayMs: 1, maxQueueItems: 8 })).rejects.toThrow(/maxQueueItems/);
    await expect(start({ maxBatchSize: 8, maxQueueDelayMs: 1, maxQueueItems: 8 }, 0)).rejects.toThrow(/inference\.workers/);
  });

  it('refuses a re-rank whose tensors or second model do not fit, naming the setting', async () => {
    const batcher = { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueItems: 64 };
    const first: ModelSpec = {
      ...doubleSpec('first', batcher),
      outputs: [{ name: 'y', type: 'float32', itemShape: [4] }, { name: 'rows', type: 'int64', itemShape: [2] }, { name: 'score', type: 'float32', itemShape: [2] }],
      residentInputs: [{ name: 'table', type: 'float32' }],
    };
    const rerank = { model: 'second', queries: 'x', candidates: 'table', indices: 'rows', queryInput: 'q', candidateInput: 'c', score: 'p', output: 'score' };
    const second: ModelSpec = { ...doubleSpec('second', batcher), inputs: [{ name: 'q', type: 'float32', itemShape: [4] }, { name: 'c', type: 'float32', itemShape: [4] }] };
    const start = (models: ModelSpec[]): Promise<InferenceEngine> => InferenceEngine.start({ models, workers: 1, executionProviders: ['cpu'], intraOpNumThreads: 1, logger: silentLogger });
    await expect(start([{ ...first, rerank }])).rejects.toThrow(/models\[0\]\.rerank\.model: must name another model/);
    await expect(start([{ ...first, rerank: { ...rerank, candidates: 'x' } }, second])).rejects.toThrow(/rerank\.candidates/);
    await expect(start([{ ...first, rerank: { ...rerank, indices: 'y' } }, second])).rejects.toThrow(/rerank\.output/);
    await expect(start([{ ...first, rerank: { ...rerank, queryInput: 'user' } }, second])).rejects.toThrow(/exactly the float32 inputs user and c/);
  });

  it('transfers outputs from the worker without copying them', async () => {
    let idle = 0;
    const { pool, ready } = await WorkerPool.start({
      size: 1,
      init: { models: [doubleSpec('double', { maxBatchSize: 8, maxQueueDelayMs: 1, maxQueueItems: 64 })], executionProviders: ['cpu'], intraOpNumThreads: 1 },
      onIdle: () => idle++,
    });
    try {
      expect(ready[0]!.double!.provider).toBe('cpu');
      const input = rows(100, 4, 3);
      const copy = input.slice();
      const out = await pool.run('double', 100, [input.buffer as ArrayBuffer]);
      expect(input.byteLength).toBe(0); // the batch buffer was transferred, not cloned
      expect(out.copiedOutputs).toBe(0);
      expect(out.outputs[0]!.dims).toEqual([100, 4]);
      expect(new Float32Array(out.outputs[0]!.buffer)).toEqual(copy.map((v) => v * 2));
      expect(idle).toBe(1);
    } finally {
      await pool.close();
    }
  }, 60_000);
});

describe('WorkerPool crash handling', () => {
  it('fails the in-flight batch with MODEL_FAILED and replaces the worker', async () => {
    // A stand-in worker that speaks the protocol and dies on request.
    const entry = join(dir, 'fake-worker.mjs');
    writeFileSync(
      entry,
      `import { parentPort } from 'node:worker_threads';
parentPort.on('message', (msg) => {
  if (msg.type === 'close') return parentPort.close();
  if (msg.model === 'crash') throw new Error('boom in worker');
  parentPort.postMessage({ type: 'result', id: msg.id, outputs: [{ buffer: msg.inputs[0], dims: [msg.items] }], computeMs: 0, copiedOutputs: 0 }, [msg.inputs[0]]);
});
parentPort.postMessage({ type: 'ready', models: { m: { provider: 'cpu', failures: [] } } });
`,
    );
    const crashes: { worker: number; reason: string; replaced: boolean }[] = [];
    let idle = 0;
    const { pool } = await WorkerPool.start({
      size: 1,
      init: { models: [], executionProviders: ['cpu'], intraOpNumThreads: 1 },
      entry: pathToFileURL(entry),
      onIdle: () => idle++,
      onCrash: (e) => crashes.push(e),
    });
    try {
      const err = await pool.run('crash', 1, [new ArrayBuffer(4)]).then(
        () => undefined,
        (e: unknown) => e as InferenceError,
      );
      expect(err?.code).toBe('MODEL_FAILED');
      expect(err?.message).toMatch(/boom in worker/);
      expect(crashes).toEqual([{ worker: 0, reason: 'boom in worker', replaced: true }]);
      // The replacement reports itself idle, then serves.
      await expect.poll(() => idle, { timeout: 10_000 }).toBe(1);
      expect(pool.idleCount).toBe(1);
      const out = await pool.run('m', 2, [new Float32Array([1, 2]).buffer]);
      expect(new Float32Array(out.outputs[0]!.buffer)).toEqual(new Float32Array([1, 2]));
    } finally {
      await pool.close();
    }
  }, 30_000);
});
