/**
 * Retrieval through the HNSW index on the inference workers answers like the exact scorer (same
 * ads, same CTR for each pair: the re-rank packs the index's own vectors by slot), follows the
 * catalog by id on two workers without a rebuild, and never returns an inactive or deleted ad.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchIds, numberedAd } from '../support/numbered-ads.js';
import { loadConfig } from '../../src/app/config/load-config.js';
import { AdCatalog } from '../../src/catalog/ad-catalog.js';
import { clusteredUnitVectors } from '../../src/devtools/clustered-vectors.js';
import { InferenceEngine } from '../../src/inference/inference-engine.js';
import { indexModel } from '../../src/models/index-spec.js';
import { prepareModels } from '../../src/models/model-setup.js';
import { EngineScorer, type Match } from '../../src/pipeline/retrieve.js';
import { IndexedScorer } from '../../src/pipeline/retrieve-index.js';
import { ModalRetrieval } from '../../src/pipeline/retrieve-mode.js';
import { silentLogger } from '../../src/util/log.js';
import { inferTyped } from '../../src/inference/types.js';
import type { CtrSettings } from '../../src/models/model-io.js';

const config = loadConfig({ env: {}, overrides: { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')) } });
const ADS = 3000;
const QUERIES = 100;
const PER_ROW = 20;

let engine: InferenceEngine;
let ctrIo: CtrSettings;
let catalog: AdCatalog;
let exact: EngineScorer;
let indexed: IndexedScorer;
let F: number;
let vectors: Float32Array;
let queries: Float32Array;


beforeAll(async () => {
  const models = await prepareModels(config);
  F = models.fusion.dim;
  ctrIo = models.ctr;
  const index = indexModel({ params: { dim: F, connectivity: 16, expansionAdd: 128, expansionSearch: 64, quantization: 'f32' as const }, k: PER_ROW, poolSize: PER_ROW, ctr: models.ctr, batcher: { maxBatchSize: 64, maxQueueDelayMs: 1, maxQueueItems: 10_000 } });
  engine = await InferenceEngine.start({ models: [...models.specs, index.spec], workers: 2, executionProviders: ['cpu'], intraOpNumThreads: 1, logger: silentLogger });
  catalog = new AdCatalog(F);
  exact = new EngineScorer(engine, catalog, { io: models.scorer, perRow: PER_ROW, minUploadIntervalMs: 0 });
  indexed = new IndexedScorer(engine, catalog, { io: index.io, poolSize: PER_ROW, minSyncIntervalMs: 0, maxSlotsPerUpdate: 700 });
  const all = clusteredUnitVectors(ADS + QUERIES, F, { clusters: 30, spread: 0.3, seed: 5 });
  vectors = all.subarray(0, ADS * F);
  queries = all.slice(ADS * F);
  for (let i = 0; i < ADS; i++) catalog.upsert(numberedAd(i), vectors, i * F);
}, 60_000);
afterAll(async () => {
  await engine?.close();
});

describe('Indexed retrieval', () => {
  it('finds the exact scorer\'s top 10 (recall >= 0.95), with the same CTR per pair', async () => {
    const [want, got] = await Promise.all([exact.score(queries, QUERIES), indexed.score(queries, QUERIES)]);
    expect(indexed.indexed).toBe(ADS);
    let hits = 0;
    for (let q = 0; q < QUERIES; q++) {
      const top = new Set(got[q]!.map((m) => m.ad.adId));
      hits += want[q]!.slice(0, 10).filter((m) => top.has(m.ad.adId)).length;
      const ctrOf = new Map(want[q]!.map((m) => [m.ad.adId, m.ctr]));
      for (const m of got[q]!) if (ctrOf.has(m.ad.adId)) expect(m.ctr).toBeCloseTo(ctrOf.get(m.ad.adId)!, 5);
    }
    expect(hits / (QUERIES * 10)).toBeGreaterThanOrEqual(0.95);
    // And each CTR is the CTR model's on (query, that ad's vector): the re-rank paired the right rows.
    const pairs = got.slice(0, 5).flatMap((list, q) => list.map((m) => ({ q, i: Number(m.ad.adId.slice(3)), ctr: m.ctr })));
    const user = new Float32Array(pairs.length * F);
    const adVec = new Float32Array(pairs.length * F);
    pairs.forEach((p, j) => {
      user.set(queries.subarray(p.q * F, (p.q + 1) * F), j * F);
      adVec.set(vectors.subarray(p.i * F, (p.i + 1) * F), j * F);
    });
    const { ctr } = await inferTyped(engine, ctrIo, { items: pairs.length, inputs: { user, ad: adVec } });
    pairs.forEach((p, j) => expect(p.ctr).toBeCloseTo(ctr[j]!, 5));
  });

  it('drops deactivated and deleted ads at once and from the index at the next sync, and finds a changed vector', async () => {
    const first = matchIds(await indexed.score(queries, QUERIES));
    const gone = new Set(first.map((l) => l[0]!)); // every query's best ad
    let n = 0;
    for (const id of gone) {
      const i = Number(id.slice(3));
      if (n++ % 2 === 0) catalog.upsert(numberedAd(i, false), vectors, i * F);
      else catalog.delete(id);
    }
    const after = matchIds(await indexed.score(queries, QUERIES));
    for (const list of after) for (const id of list) expect(gone.has(id)).toBe(false);
    expect(indexed.indexed).toBe(ADS - gone.size);
    // Each query's second-best ad is still found (the index kept it, no rebuild).
    after.forEach((list, q) => expect(list).toContain(first[q]!.find((id) => !gone.has(id))));

    // An ad moved onto query 0's vector is its best match now, on both workers.
    catalog.upsert(numberedAd(ADS - 1), queries, 0);
    for (let round = 0; round < 4; round++) {
      const [best] = await Promise.all(Array.from({ length: 4 }, () => indexed.score(queries.subarray(0, F), 1)));
      expect(best![0]![0]!.ad.adId).toBe(`ad-${ADS - 1}`);
      expect(best![0]![0]!.similarity).toBeCloseTo(1, 4);
    }
  });

  it('auto takes the exact scan below the crossover and the index above it', () => {
    expect(new ModalRetrieval(exact, indexed, catalog, { mode: 'auto', exactBelow: catalog.activeCount + 1 }).current).toBe('exact');
    expect(new ModalRetrieval(exact, indexed, catalog, { mode: 'auto', exactBelow: catalog.activeCount }).current).toBe('ann');
    expect(new ModalRetrieval(exact, indexed, catalog, { mode: 'ann', exactBelow: 1e9 }).current).toBe('ann');
    expect(() => new ModalRetrieval(exact, undefined, catalog, { mode: 'auto', exactBelow: 0 })).toThrow();
  });
});
