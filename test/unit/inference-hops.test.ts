/**
 * A chunk's trips to the inference workers: at most two in sequence (the encoders, then ranking
 * with the CTR model in the scorer's request), and the one-request ranking scores exactly as the
 * former two-request path did (scorer, then the CTR model on each user's deduplicated pairs).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Candidate } from '../../src/domain/outputs.js';
import type { InferenceRequest, InferenceResult } from '../../src/inference/types.js';
import { prepareModels } from '../../src/models/model-setup.js';
import type { Core } from '../../src/pipeline/core.js';
import { CandidateRanker, rankQuery, type RankQuery } from '../../src/pipeline/rank.js';
import { EngineScorer } from '../../src/pipeline/retrieve.js';
import { rowOf } from '../../src/util/vectors.js';
import { CoreDriver } from './core-driver.js';

const driver = new CoreDriver();
afterAll(() => driver.close());
const SLOW = 60_000;

/**
 * Counts sequential trips: a trip starts when a request is made while none is outstanding (requests
 * made while others run travel in parallel with them).
 */
function countTrips(core: Core): { trips: () => number; models: string[]; reset: () => void } {
  const engine = core.engine;
  const infer = engine.infer.bind(engine);
  let outstanding = 0;
  let trips = 0;
  const models: string[] = [];
  engine.infer = async (model: string, request: InferenceRequest): Promise<InferenceResult> => {
    if (outstanding++ === 0) trips++;
    models.push(model);
    try {
      return await infer(model, request);
    } finally {
      outstanding--;
    }
  };
  return { trips: () => trips, models, reset: () => ((trips = 0), (models.length = 0)) };
}

describe('inference trips per chunk', () => {
  it('are at most two: the encoders (in parallel), then the scorer with its CTR re-rank', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const counter = countTrips(core);
    const { scored } = await core.processor.process([
      rec.click('hop-a', 'toys', { item: 'hop-item-1' }),
      rec.review('hop-a', 'a wooden train set for the kids, great toy'),
      rec.click('hop-b', 'garden', { item: 'hop-item-2' }),
    ]);
    expect(scored.map((s) => s.userId).sort()).toEqual(['hop-a', 'hop-b']);
    expect(scored.every((s) => s.candidates.length > 0)).toBe(true);
    expect(counter.trips()).toBeLessThanOrEqual(2);
    expect(new Set(counter.models)).toEqual(new Set(['text', 'click', 'scorer']));

    // A flush of rate-limited users is ranking alone: one trip.
    counter.reset();
    await core.processor.flushDue();
    expect(counter.trips()).toBeLessThanOrEqual(1);
  }, SLOW);
});

describe('ranking in one request', () => {
  it('scores as the two-request path did: scorer, then CTR on each user\u2019s best pair per ad', async () => {
    const { core, rec, config } = await driver.coreWithCatalog();
    const users = ['eq-a', 'eq-b', 'eq-c'];
    await core.processor.process([
      rec.click('eq-a', 'toys'), rec.click('eq-a', 'garden'), rec.review('eq-a', 'lovely roses and tulips for the garden'),
      rec.click('eq-b', 'shoes'), rec.click('eq-b', 'shoes'),
      rec.click('eq-c', 'books'), rec.review('eq-c', 'a thrilling novel, could not put it down'), rec.click('eq-c', 'toys'),
    ]);
    const models = await prepareModels(config);
    const F = core.users.dim;
    const queries = users.map((u) => rankQuery(core.users.get(u)!.interests, F));
    expect(queries.some((q) => q.shares.length > 1)).toBe(true);
    const topK = config.topK;
    const slack = topK;
    const scorer = new EngineScorer(core.engine, core.catalog, { io: models.scorer, perRow: topK + slack, minUploadIntervalMs: 0 });
    const now = await new CandidateRanker(scorer, F, { topK, slack }).rank(queries);
    const before = await twoRequestRank(core, scorer, queries, topK, slack, models.ctr.outputs.ctr.name);
    expect(now.map((c) => c.map((x) => x.adId))).toEqual(before.map((c) => c.map((x) => x.adId)));
    now.forEach((list, u) => list.forEach((c, i) => expect(Math.abs(c.score - before[u]![i]!.score)).toBeLessThan(1e-7)));
  }, SLOW);
});

/** The former path: the scorer's matches, each user's best (topK + slack) pairs, then a separate CTR request on them. */
async function twoRequestRank(core: Core, scorer: EngineScorer, queries: readonly RankQuery[], topK: number, slack: number, ctrOutput: string): Promise<Candidate[][]> {
  const F = core.users.dim;
  const total = queries.reduce((n, q) => n + q.shares.length, 0);
  const rows = new Float32Array(total * F);
  let at = 0;
  for (const q of queries) {
    rows.set(q.interests, at * F);
    at += q.shares.length;
  }
  const matches = await scorer.score(rows, total);
  at = 0;
  const pairs = queries.map((q) => {
    const best = new Map<string, { m: (typeof matches)[number][number]; row: number }>();
    for (let row = 0; row < q.shares.length; row++) {
      for (const m of matches[at + row]!) if (!best.has(m.ad.adId) || m.similarity > best.get(m.ad.adId)!.m.similarity) best.set(m.ad.adId, { m, row });
    }
    at += q.shares.length;
    return [...best.values()].sort((a, b) => b.m.similarity - a.m.similarity).slice(0, topK + slack);
  });
  const n = pairs.reduce((k, l) => k + l.length, 0);
  const user = new Float32Array(n * F);
  const ad = new Float32Array(n * F);
  let i = 0;
  pairs.forEach((list, u) => {
    for (const p of list) {
      user.set(rowOf(queries[u]!.interests, p.row, F), i * F);
      ad.set(core.catalog.vectorOf(p.m.ad.adId)!, i * F);
      i++;
    }
  });
  const ctr = (await core.engine.infer('ctr', { items: n, inputs: { user, ad } })).outputs[ctrOutput] as Float32Array;
  let p = 0;
  return pairs.map((list, u) =>
    list
      .map((pair) => ({ pair, score: ctr[p++]! * queries[u]!.shares[pair.row]! }))
      .sort((a, b) => b.score - a.score || b.pair.m.similarity - a.pair.m.similarity)
      .slice(0, topK)
      .map(({ pair, score }) => ({ adId: pair.m.ad.adId, score, categoryId: pair.m.ad.categoryId })),
  );
}
