/**
 * Candidate pools: an interest that moved little since its pool was searched is scored against that
 * pool (on the worker, exact similarity, fresh CTR) instead of the index; one that drifted further,
 * or a pool too old, searches again. A pooled answer never holds an ad deactivated since, nor an ad
 * whose slot was reused; every Nth pooled row is checked against a search and its recall reported.
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
import type { IndexIo } from '../../src/models/model-io.js';
import { prepareModels } from '../../src/models/model-setup.js';
import { CandidatePools } from '../../src/pipeline/candidate-pools.js';
import { IndexedScorer } from '../../src/pipeline/retrieve-index.js';
import { silentLogger } from '../../src/util/log.js';

const config = loadConfig({ env: {}, overrides: { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')) } });
const ADS = 3000;
const QUERIES = 40;
const K = 20;
const POOL = 40;

let engine: InferenceEngine;
let io: IndexIo;
let F: number;
let vectors: Float32Array;
let queries: Float32Array;

const owners = Array.from({ length: QUERIES }, (_, q) => `user-${q}`);

/** Each query row turned towards another unit vector by `t` (0: unchanged), renormalised. */
function moved(rows: Float32Array, t: number, seed: number): Float32Array {
  const noise = clusteredUnitVectors(QUERIES, F, { clusters: 1, spread: 1, seed });
  const out = new Float32Array(rows.length);
  for (let q = 0; q < QUERIES; q++) {
    let norm = 0;
    for (let j = 0; j < F; j++) {
      const v = (1 - t) * rows[q * F + j]! + t * noise[q * F + j]!;
      out[q * F + j] = v;
      norm += v * v;
    }
    for (let j = 0; j < F; j++) out[q * F + j] = out[q * F + j]! / Math.sqrt(norm);
  }
  return out;
}

/** Each query row turned by `theta` radians in a plane of its own (the same planes for the same seed). */
function rotated(rows: Float32Array, theta: number, seed: number): Float32Array {
  const noise = clusteredUnitVectors(QUERIES, F, { clusters: 1, spread: 1, seed });
  const out = new Float32Array(rows.length);
  for (let q = 0; q < QUERIES; q++) {
    let dot = 0;
    for (let j = 0; j < F; j++) dot += rows[q * F + j]! * noise[q * F + j]!;
    const u = new Float64Array(F);
    let norm = 0;
    for (let j = 0; j < F; j++) {
      u[j] = noise[q * F + j]! - dot * rows[q * F + j]!;
      norm += u[j]! * u[j]!;
    }
    for (let j = 0; j < F; j++) out[q * F + j] = Math.cos(theta) * rows[q * F + j]! + (Math.sin(theta) * u[j]!) / Math.sqrt(norm);
  }
  return out;
}

function cosineDistance(a: Float32Array, b: Float32Array, q: number): number {
  let dot = 0;
  for (let j = 0; j < F; j++) dot += a[q * F + j]! * b[q * F + j]!;
  return 1 - dot;
}

interface Counts {
  pooled: number;
  searched: number;
  recalls: number[];
  /** Searched rows of known owners, by why no pool answered. */
  misses: Record<string, number>;
}

function scorerOver(catalog: AdCatalog, o: { maxDrift: number; maxAgeMs?: number; checkEvery?: number; now?: () => number }): { scorer: IndexedScorer; counts: Counts } {
  const counts: Counts = { pooled: 0, searched: 0, recalls: [], misses: {} };
  const pools = new CandidatePools({ size: POOL, dim: F, maxDrift: o.maxDrift, maxAgeMs: o.maxAgeMs ?? 60_000, users: 1000, perUser: 3, ...(o.now ? { now: o.now } : {}) });
  const scorer = new IndexedScorer(engine, catalog, {
    io, poolSize: POOL, minSyncIntervalMs: 0, pools, checkEvery: o.checkEvery ?? 0,
    onPools: (p, s) => {
      counts.pooled += p;
      counts.searched += s;
    },
    onPoolRecall: (r) => counts.recalls.push(r),
    onPoolMisses: (reason, rows) => void (counts.misses[reason] = (counts.misses[reason] ?? 0) + rows),
  });
  return { scorer, counts };
}

function catalogOfAll(): AdCatalog {
  const c = new AdCatalog(F);
  for (let i = 0; i < ADS; i++) c.upsert(numberedAd(i), vectors, i * F);
  return c;
}

beforeAll(async () => {
  const models = await prepareModels(config);
  F = models.fusion.dim;
  const index = indexModel({ params: { dim: F, connectivity: 16, expansionAdd: 128, expansionSearch: 128, quantization: 'f32' as const }, k: K, poolSize: POOL, ctr: models.ctr, batcher: { maxBatchSize: 64, maxQueueDelayMs: 1, maxQueueItems: 10_000 } });
  io = index.io;
  engine = await InferenceEngine.start({ models: [...models.specs, index.spec], workers: 2, executionProviders: ['cpu'], intraOpNumThreads: 1, logger: silentLogger });
  const all = clusteredUnitVectors(ADS + QUERIES, F, { clusters: 30, spread: 0.3, seed: 11 });
  vectors = all.subarray(0, ADS * F);
  queries = all.slice(ADS * F);
}, 60_000);
afterAll(async () => {
  await engine?.close();
});

describe('CandidatePools', () => {
  it('answers a row that moved less than the drift from its pool, with the pool\'s best by exact similarity; a row that drifted further searches', async () => {
    const catalog = catalogOfAll();
    const { scorer, counts } = scorerOver(catalog, { maxDrift: 0.01 });
    const first = await scorer.score(queries, QUERIES, owners);
    expect(counts).toMatchObject({ pooled: 0, searched: QUERIES, misses: { no_pool: QUERIES } });

    const near = moved(queries, 0.05, 3);
    for (let q = 0; q < QUERIES; q++) expect(cosineDistance(near, queries, q)).toBeLessThan(0.01);
    const pooled = await scorer.score(near, QUERIES, owners);
    expect(counts).toMatchObject({ pooled: QUERIES, searched: QUERIES });
    // What the pool answers is its own ads ranked by their similarity to the moved row: the same as
    // a search of the moved row restricted to the first search's top POOL, which contains the
    // first answer's K. Each similarity is the exact dot product with the moved row.
    for (let q = 0; q < QUERIES; q++) {
      const list = pooled[q]!;
      expect(list).toHaveLength(K);
      for (let j = 1; j < K; j++) expect(list[j]!.similarity).toBeLessThanOrEqual(list[j - 1]!.similarity);
      for (const m of list) {
        const i = Number(m.ad.adId.slice(3));
        let dot = 0;
        for (let j = 0; j < F; j++) dot += near[q * F + j]! * vectors[i * F + j]!;
        expect(m.similarity).toBeCloseTo(dot, 5);
      }
    }
    // It answers close to a search of the moved row (recall of the search's K).
    const { scorer: plain } = scorerOver(catalogOfAll(), { maxDrift: 0 });
    const fresh = matchIds(await plain.score(near, QUERIES, owners));
    let held = 0;
    fresh.forEach((list, q) => (held += list.filter((id) => matchIds(pooled)[q]!.includes(id)).length));
    expect(held / (QUERIES * K)).toBeGreaterThanOrEqual(0.9);
    expect(matchIds(first)).not.toEqual(matchIds(pooled)); // the ranking did move with the row

    const far = moved(queries, 0.5, 4);
    for (let q = 0; q < QUERIES; q++) expect(cosineDistance(far, queries, q)).toBeGreaterThan(0.01);
    await scorer.score(far, QUERIES, owners);
    expect(counts).toMatchObject({ pooled: QUERIES, searched: 2 * QUERIES, misses: { no_pool: QUERIES, drifted: QUERIES } });
    // Rows of no known owner always search (and are not counted as rows pools could have had).
    await scorer.score(far, QUERIES);
    expect(counts).toMatchObject({ pooled: QUERIES, searched: 2 * QUERIES });
    // A deleted user's pools go: its next rows search.
    scorer.forget(owners[0]!);
    await scorer.score(far, QUERIES, owners);
    expect(counts).toMatchObject({ pooled: 2 * QUERIES - 1, searched: 2 * QUERIES + 1 });
    expect(counts.misses).toEqual({ no_pool: QUERIES + 1, drifted: QUERIES });
  });

  it('measures drift from the row the pool was searched for, not from the last row it answered', async () => {
    const { scorer, counts } = scorerOver(catalogOfAll(), { maxDrift: 0.01 });
    await scorer.score(queries, QUERIES, owners);
    // Two steps of the same turn: each within the drift of the one before, the two not.
    const theta = Math.acos(1 - 0.006);
    const one = rotated(queries, theta, 7);
    const two = rotated(queries, 2 * theta, 7);
    for (let q = 0; q < QUERIES; q++) {
      expect(cosineDistance(one, queries, q)).toBeLessThan(0.01);
      expect(cosineDistance(two, one, q)).toBeLessThan(0.01);
      expect(cosineDistance(two, queries, q)).toBeGreaterThan(0.01);
    }
    await scorer.score(one, QUERIES, owners);
    expect(counts).toMatchObject({ pooled: QUERIES, searched: QUERIES });
    await scorer.score(two, QUERIES, owners);
    expect(counts).toMatchObject({ pooled: QUERIES, searched: 2 * QUERIES });
  });

  it('searches again once a pool is older than its age limit', async () => {
    let now = 1_000;
    const { scorer, counts } = scorerOver(catalogOfAll(), { maxDrift: 0.01, maxAgeMs: 5_000, now: () => now });
    await scorer.score(queries, QUERIES, owners);
    now += 5_000;
    await scorer.score(queries, QUERIES, owners);
    expect(counts).toMatchObject({ pooled: QUERIES, searched: QUERIES });
    now += 1;
    await scorer.score(queries, QUERIES, owners);
    expect(counts).toMatchObject({ pooled: QUERIES, searched: 2 * QUERIES });
    expect(counts.misses).toEqual({ no_pool: QUERIES, expired: QUERIES });
  });

  it('never answers with an ad deactivated since, nor with a slot reused for another ad', async () => {
    const catalog = catalogOfAll();
    const { scorer } = scorerOver(catalog, { maxDrift: 0.01 });
    const first = matchIds(await scorer.score(queries, QUERIES, owners));
    // Query 0's best ad deleted, then another query's best deactivated: its slot is freed last, so
    // the next ad added takes it. That ad sits on that query's own vector: a pool that still
    // counted the slot as its old ad would answer with it.
    const q1 = first.findIndex((l) => l[0] !== first[0]![0]);
    expect(q1).toBeGreaterThan(0);
    catalog.delete(first[0]![0]!);
    catalog.upsert(numberedAd(Number(first[q1]![0]!.slice(3)), false), vectors, Number(first[q1]![0]!.slice(3)) * F);
    const gone = new Set([first[0]![0]!, first[q1]![0]!]);
    const before = matchIds(await scorer.score(queries, QUERIES, owners));
    for (const list of before) for (const id of list) expect(gone.has(id)).toBe(false);
    catalog.upsert(numberedAd(ADS + 1), queries, q1 * F);
    const after = matchIds(await scorer.score(queries, QUERIES, owners));
    for (const list of after) for (const id of list) expect(gone.has(id)).toBe(false);
    expect(after[q1]).not.toContain(`ad-${ADS + 1}`);
    // A search (pools off) does find it first: it was the slot check that kept it out.
    const { scorer: plain } = scorerOver(catalog, { maxDrift: 0 });
    expect(matchIds(await plain.score(queries, QUERIES, owners))[q1]![0]).toBe(`ad-${ADS + 1}`);
  });

  it('serves an ad again from the pools once reactivated (its slot given back to it)', async () => {
    const catalog = catalogOfAll();
    const { scorer, counts } = scorerOver(catalog, { maxDrift: 0.01 });
    const first = matchIds(await scorer.score(queries, QUERIES, owners));
    const best = first[0]![0]!;
    const i = Number(best.slice(3));
    catalog.upsert(numberedAd(i, false), vectors, i * F);
    expect(matchIds(await scorer.score(queries, QUERIES, owners))[0]).not.toContain(best);
    catalog.upsert(numberedAd(i), vectors, i * F);
    const back = matchIds(await scorer.score(queries, QUERIES, owners));
    expect(counts.pooled).toBe(2 * QUERIES); // both answered by the pools of the first search
    expect(back[0]![0]).toBe(best);
  });

  it('checks every Nth pooled row against a search and reports its recall', async () => {
    const { scorer, counts } = scorerOver(catalogOfAll(), { maxDrift: 0.01, checkEvery: 4 });
    await scorer.score(queries, QUERIES, owners);
    expect(counts.recalls).toEqual([]);
    // Unmoved rows: the pool's top K is the search's top K.
    await scorer.score(queries, QUERIES, owners);
    expect(counts.recalls).toHaveLength(QUERIES / 4);
    for (const r of counts.recalls) expect(r).toBe(1);
    await scorer.score(moved(queries, 0.05, 3), QUERIES, owners);
    expect(counts.recalls).toHaveLength(QUERIES / 2);
    const moved1 = counts.recalls.slice(QUERIES / 4);
    for (const r of moved1) expect(r).toBeGreaterThanOrEqual(0.5);
    expect(Math.min(...moved1)).toBeLessThanOrEqual(1);
  });
});
