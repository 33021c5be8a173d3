/**
 * The raw-inference ceiling: every model the processor runs (encoders, scorer with its CTR re-rank), on the
 * production engine and worker threads, saturated with requests of the batch size itself, at a few
 * batch sizes; the best items/s per model. (loadtest/bench-inference.ts compares batch 1 with the
 * batcher; this picks the best batch.) Combined with how many items of each model one event costs
 * in the processor (its adstream_inference_items_total per event), it gives the events/s the models
 * alone could sustain.
 */
import { availableParallelism } from 'node:os';
import type { Config } from '../src/app/config/settings.js';
import { InferenceEngine } from '../src/inference/inference-engine.js';
import type { ModelSpec, TensorData } from '../src/inference/types.js';
import { prepareModels } from '../src/models/model-setup.js';
import { silentLogger } from '../src/util/log.js';
import { seededRandom } from '../src/util/random.js';

export interface ModelCeiling {
  readonly bestBatch: number;
  readonly itemsPerS: number;
  /** items/s at each batch size tried. */
  readonly byBatch: Record<string, number>;
}

function inputsFor(spec: ModelSpec, items: number, rand: () => number): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const t of spec.inputs) {
    const n = items * t.itemShape.reduce((a, b) => a * b, 1);
    out[t.name] = t.type === 'float32' ? Float32Array.from({ length: n }, () => rand() - 0.5) : BigInt64Array.from({ length: n }, () => BigInt(1 + Math.floor(rand() * 1000)));
  }
  return out;
}

export async function inferenceCeiling(config: Config, o: { seconds?: number; batches?: readonly number[]; ads: number }): Promise<Record<string, ModelCeiling>> {
  const seconds = o.seconds ?? 1.5;
  const batches = o.batches ?? [32, 128, 256];
  const models = await prepareModels(config);
  const workers = config.inferenceWorkers || availableParallelism();
  const rand = seededRandom(9);
  const result: Record<string, ModelCeiling> = {};
  // The CTR model runs inside the scorer's requests (its spec's rerank), not on its own.
  const reranks = new Set(models.specs.map((s) => s.rerank?.model));
  for (const base of models.specs.filter((s) => !reranks.has(s.name))) {
    const byBatch: Record<string, number> = {};
    for (const b of batches) {
      const spec: ModelSpec = { ...base, batcher: { maxBatchSize: b, maxQueueDelayMs: 0, maxQueueItems: b * workers * 8 } };
      const engine = await InferenceEngine.start({ models: [spec, ...models.specs.filter((s) => s.name === base.rerank?.model)], workers, executionProviders: [...config.executionProviders], intraOpNumThreads: config.intraOpThreads, logger: silentLogger });
      try {
        if (spec.name === 'scorer') {
          const F = models.fusion.dim;
          await engine.setResident('scorer', 'ads', Float32Array.from({ length: o.ads * F }, () => rand() - 0.5), [o.ads, F]);
          await engine.setResident('scorer', 'k', BigInt64Array.of(BigInt(Math.min(o.ads, 2 * config.topK))), [1]);
        }
        const inputs = inputsFor(spec, b, rand);
        const one = (): Promise<unknown> => engine.infer(spec.name, { items: b, inputs });
        await Promise.all(Array.from({ length: workers * 2 }, one)); // warm-up
        let items = 0;
        const end = performance.now() + seconds * 1000;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: workers * 2 }, async () => {
            while (performance.now() < end) {
              await one();
              items += b;
            }
          }),
        );
        byBatch[String(b)] = Math.round(items / ((performance.now() - t0) / 1000));
      } finally {
        await engine.close();
      }
    }
    const best = Object.entries(byBatch).sort((a, b) => b[1] - a[1])[0]!;
    result[base.name] = { bestBatch: Number(best[0]), itemsPerS: best[1], byBatch };
  }
  return result;
}

/** Events/s the models alone could sustain: 1 / sum over models of (items per event / best items/s). */
export function eventsPerSecondCeiling(ceilings: Record<string, ModelCeiling>, itemsPerEvent: Record<string, number>): number {
  let secondsPerEvent = 0;
  for (const [model, n] of Object.entries(itemsPerEvent)) {
    const c = ceilings[model];
    if (c && n > 0) secondsPerEvent += n / c.itemsPerS;
  }
  return secondsPerEvent > 0 ? 1 / secondsPerEvent : Number.POSITIVE_INFINITY;
}
