/**
 * The ad index saved and loaded (IndexedScorer with IndexSnapshots, on two real workers): a large
 * first build runs on one worker and the other loads what it saved; a restart on the same catalog
 * loads the saved index and sends no vector, answering as before; a restart on a changed catalog
 * serves no stale vector (changed ads updated, deleted ones gone, new ones found); an index saved
 * for another model space is not loaded.
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
import type { IndexUpdate, IndexWorker } from '../../src/inference/types.js';
import { indexModel } from '../../src/models/index-spec.js';
import { prepareModels } from '../../src/models/model-setup.js';
import { EngineScorer, type Match } from '../../src/pipeline/retrieve.js';
import { IndexedScorer, type IndexedScorerOptions, type IndexUpdates } from '../../src/pipeline/retrieve-index.js';
import { CandidatePools } from '../../src/pipeline/candidate-pools.js';
import { IndexSnapshots } from '../../src/state/index-snapshot.js';
import type { IndexParams } from '../../src/inference/vector-index.js';
import { silentLogger } from '../../src/util/log.js';
import type { IndexIo, ScorerIo } from '../../src/models/model-io.js';

const config = loadConfig({ env: {}, overrides: { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')) } });
const ADS = 3000;
const QUERIES = 60;
const PER_ROW = 20;
const SPACE = 'test-space';

let engine: InferenceEngine;
let io: IndexIo;
let scorerIo: ScorerIo;
let params: IndexParams;
let F: number;
let vectors: Float32Array;
let queries: Float32Array;


/** What one scorer sent to the workers. */
interface Sent {
  updates: number;
  slots: number;
  removed: number;
  oneWorker: number;
  loads: number;
  saves: number;
}

/** The engine, counting what the index scorer sends it. */
function counted(sent: Sent): InferenceEngine & IndexUpdates {
  return new Proxy(engine, {
    get(target, prop) {
      if (prop === 'updateIndex') {
        return (model: string, u: IndexUpdate, whole: () => IndexUpdate, on?: IndexWorker) => {
          sent.updates++;
          sent.slots += u.slots.length;
          sent.removed += u.removed.length;
          if (on) sent.oneWorker++;
          return target.updateIndex(model, u, whole, on);
        };
      }
      if (prop === 'loadIndex') sent.loads++;
      if (prop === 'saveIndex') sent.saves++;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** A scorer started as the Kafka processor starts it: held, the catalog loaded, then settled. */
async function settledScorer(catalog: AdCatalog, dir: string, space = SPACE, withPools: Pick<IndexedScorerOptions, 'pools' | 'onPools'> = {}): Promise<{ scorer: IndexedScorer; sent: Sent }> {
  const sent: Sent = { updates: 0, slots: 0, removed: 0, oneWorker: 0, loads: 0, saves: 0 };
  const errors: unknown[] = [];
  const scorer = new IndexedScorer(counted(sent), catalog, {
    io, poolSize: PER_ROW, minSyncIntervalMs: 0, backgroundSyncMs: 20, maxSlotsPerUpdate: 1000, buildOnOneFrom: 1000,
    snapshots: new IndexSnapshots({ dir, space, params }),
    onSyncError: (err) => errors.push(err),
    ...withPools,
  });
  scorer.holdUntilLoaded();
  scorer.catalogLoaded();
  const deadline = Date.now() + 30_000;
  while (!scorer.settled && errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(errors).toEqual([]);
  expect(scorer.settled).toBe(true);
  return { scorer, sent };
}

function catalogOf(ads: number, change: (c: AdCatalog) => void = () => undefined): AdCatalog {
  const c = new AdCatalog(F);
  for (let i = 0; i < ads; i++) c.upsert(numberedAd(i), vectors, i * F);
  change(c);
  return c;
}

/** Four concurrent calls, so both workers answer: they must agree. */
async function scoreOnBoth(scorer: IndexedScorer): Promise<string[][]> {
  const all = await Promise.all(Array.from({ length: 4 }, () => scorer.score(queries, QUERIES)));
  for (const r of all) expect(matchIds(r)).toEqual(matchIds(all[0]!));
  return matchIds(all[0]!);
}

beforeAll(async () => {
  const models = await prepareModels(config);
  F = models.fusion.dim;
  params = { dim: F, connectivity: 16, expansionAdd: 128, expansionSearch: 64, quantization: 'f32' as const };
  const index = indexModel({ params, k: PER_ROW, poolSize: PER_ROW, ctr: models.ctr, batcher: { maxBatchSize: 64, maxQueueDelayMs: 1, maxQueueItems: 10_000 } });
  io = index.io;
  scorerIo = models.scorer;
  engine = await InferenceEngine.start({ models: [...models.specs, index.spec], workers: 2, executionProviders: ['cpu'], intraOpNumThreads: 1, logger: silentLogger });
  const all = clusteredUnitVectors(ADS + QUERIES, F, { clusters: 30, spread: 0.3, seed: 9 });
  vectors = all.subarray(0, ADS * F);
  queries = all.slice(ADS * F);
}, 60_000);
afterAll(async () => {
  await engine?.close();
});

describe('Saved ad index', () => {
  const dir = mkdtempSync(join(tmpdir(), 'adstream-ad-index-'));
  let first: string[][];

  it('builds a large first index on one worker, saves it, and the other worker loads it (both answer alike, as the exact scan does)', async () => {
    const catalog = catalogOf(ADS);
    const { scorer, sent } = await settledScorer(catalog, dir);
    expect(sent.oneWorker).toBe(sent.updates);
    expect(sent.slots).toBe(ADS);
    expect(sent.saves).toBe(1);
    expect(sent.loads).toBe(1);
    expect(scorer.indexed).toBe(ADS);
    first = await scoreOnBoth(scorer);
    const exact = matchIds(await new EngineScorer(engine, catalog, { io: scorerIo, perRow: PER_ROW, minUploadIntervalMs: 0 }).score(queries, QUERIES));
    let hits = 0;
    first.forEach((list, q) => (hits += exact[q]!.slice(0, 10).filter((id) => list.includes(id)).length));
    expect(hits / (QUERIES * 10)).toBeGreaterThanOrEqual(0.95);
    await scorer.stop();
  });

  it('a restart on the same catalog loads the saved index and sends no vector, answering as before', async () => {
    const { scorer, sent } = await settledScorer(catalogOf(ADS), dir);
    expect(sent.loads).toBe(1);
    expect(sent.slots).toBe(0);
    expect(sent.removed).toBe(0);
    expect(scorer.indexed).toBe(ADS);
    expect(await scoreOnBoth(scorer)).toEqual(first);
    await scorer.stop();
  });

  it('candidate pools answer from a loaded index: its slots (beyond the first thousand) are valid from the load on', async () => {
    const pools = new CandidatePools({ size: PER_ROW, dim: F, maxDrift: 0.01, maxAgeMs: 60_000, users: 1000, perUser: 3 });
    let pooled = 0;
    const { scorer, sent } = await settledScorer(catalogOf(ADS), dir, SPACE, { pools, onPools: (p) => (pooled += p) });
    expect(sent.loads).toBe(1);
    const owners = Array.from({ length: QUERIES }, (_, q) => `user-${q}`);
    const searched = matchIds(await scorer.score(queries, QUERIES, owners));
    expect(pooled).toBe(0);
    expect(searched).toEqual(first);
    expect(matchIds(await scorer.score(queries, QUERIES, owners))).toEqual(first);
    expect(pooled).toBe(QUERIES);
    await scorer.stop();
  });

  it('a restart on a changed catalog serves no stale vector: changed ads updated, deleted ones gone, a new one found', async () => {
    const catalog = catalogOf(ADS, (c) => {
      for (let q = 0; q < 10; q++) c.upsert(numberedAd(q), queries, q * F); // ad q moves onto query q
      for (let i = 10; i < 20; i++) c.delete(`ad-${i}`);
      c.upsert({ ...numberedAd(0), adId: 'new-0' }, queries, 20 * F);
    });
    const { scorer, sent } = await settledScorer(catalog, dir);
    expect(sent.loads).toBe(1);
    expect(sent.slots).toBe(11);
    expect(sent.removed).toBe(10);
    expect(scorer.indexed).toBe(ADS - 10 + 1);
    const got = await scoreOnBoth(scorer);
    for (let q = 0; q < 10; q++) expect(got[q]![0]).toBe(`ad-${q}`);
    expect(got[20]![0]).toBe('new-0');
    for (const list of got) for (let i = 10; i < 20; i++) expect(list).not.toContain(`ad-${i}`);
    await scorer.stop();

    // Saved again as reconciled: the next restart sends nothing.
    const again = await settledScorer(catalog, dir);
    expect(again.sent.slots).toBe(0);
    expect(await scoreOnBoth(again.scorer)).toEqual(got);
    await again.scorer.stop();
  });

  it('does not load an index saved for another model space', async () => {
    expect(new IndexSnapshots({ dir, space: 'another', params }).saved()).toEqual({ none: expect.stringContaining('another space') });
    const { scorer, sent } = await settledScorer(catalogOf(200), dir, 'another');
    expect(sent.loads).toBe(0);
    expect(sent.slots).toBe(200);
    await scorer.stop();
  });

  it('does not load an index saved with another quantization (its graph file holds other scalars)', async () => {
    const { scorer } = await settledScorer(catalogOf(200), dir);
    await scorer.stop();
    expect(new IndexSnapshots({ dir, space: SPACE, params }).saved()).not.toHaveProperty('none');
    expect(new IndexSnapshots({ dir, space: SPACE, params: { ...params, quantization: 'f16' } }).saved()).toEqual({ none: expect.stringContaining('quantization f32') });
  });
});
