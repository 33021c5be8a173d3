/**
 * The NCF evaluation protocol of eval:real (loadtest/real/ncf-protocol.ts) and its baselines
 * (loadtest/real/baselines.ts) against values computed by hand.
 */
import { describe, expect, it } from 'vitest';
import { bprMf, itemCosine, itemKnn, itemPop } from '../../loadtest/real/baselines.js';
import { evaluateRanking, hitAt, leaveOneOut, ndcgAt, rankAmong, rankInCatalog, type Split, type Timeline } from '../../loadtest/real/ncf-protocol.js';

const tl = (items: number[], positive: number[]): Timeline => ({ items: Int32Array.from(items), positive: Uint8Array.from(positive) });

describe('leave-one-out split', () => {
  const timelines = [tl([0, 1, 2, 3], [1, 0, 1, 1]), tl([4, 5], [0, 1]), tl([6, 2, 7], [1, 1, 0])];
  const split = leaveOneOut(timelines, 12, 3, 5);

  it('holds out the last positive, trains on the positives before it, marks everything before it seen', () => {
    expect([...split.heldOut]).toEqual([3, -1, 2]);
    expect(split.train.map((t) => [...t])).toEqual([[0, 2], [5], [6]]);
    expect(split.seen.map((t) => [...t])).toEqual([[0, 1, 2], [4, 5], [6]]);
  });

  it('draws distinct negatives the user never rated, the same ones for the same seed', () => {
    for (const u of [0, 2]) {
      const neg = [...split.negatives[u]!];
      expect(neg).toHaveLength(3);
      expect(new Set(neg).size).toBe(3);
      for (const n of neg) expect([...timelines[u]!.items]).not.toContain(n);
    }
    expect(split.negatives[1]).toHaveLength(0); // not evaluated
    expect(leaveOneOut(timelines, 12, 3, 5).negatives.map((n) => [...n])).toEqual(split.negatives.map((n) => [...n]));
  });

  it('refuses a user who left fewer unrated items than negatives', () => {
    expect(() => leaveOneOut([tl([0, 1, 2], [1, 1, 1])], 4, 2)).toThrow(/cannot draw 2 negatives/);
  });
});

describe('ranks and metrics', () => {
  const scores = Float64Array.of(0.9, 0.5, 0.1, 0.5, 0.7);

  it('counts ties against the held-out item', () => {
    expect(rankAmong(scores, 1, [0, 2, 3])).toBe(2); // 0.9 above, 0.5 tied
    expect(rankAmong(scores, 0, [1, 2, 3, 4])).toBe(0);
  });

  it('ranks in the catalog without the excluded (seen) items', () => {
    expect(rankInCatalog(scores, 1, [])).toBe(3); // 0.9, 0.5 (item 3), 0.7
    expect(rankInCatalog(scores, 1, [0, 4])).toBe(1); // only item 3's tie is left
    expect(rankInCatalog(scores, 1, [1])).toBe(3); // the target in the list changes nothing
  });

  it('HitRate and NDCG of one held-out item at a rank', () => {
    expect(hitAt(9, 10)).toBe(1);
    expect(hitAt(10, 10)).toBe(0);
    expect(ndcgAt(0, 10)).toBe(1);
    expect(ndcgAt(1, 10)).toBeCloseTo(1 / Math.log2(3), 12);
    expect(ndcgAt(2, 10)).toBeCloseTo(0.5, 12); // 1 / log2(4)
    expect(ndcgAt(10, 10)).toBe(0);
  });

  it('averages over evaluated users only', () => {
    const split: Split = {
      users: 3, items: 5,
      train: [Int32Array.of(0), Int32Array.of(1), Int32Array.of()],
      heldOut: Int32Array.of(4, 2, -1),
      seen: [Int32Array.of(0), Int32Array.of(1), Int32Array.of()],
      negatives: [Int32Array.of(1, 2, 3), Int32Array.of(0, 3, 4), Int32Array.of()],
    };
    // Item i scores i for user 0 (held-out 4 first), 4 - i for user 1 (held-out 2 behind 0 and 1).
    const q = evaluateRanking(split, (u, out) => {
      for (let i = 0; i < 5; i++) out[i] = u === 0 ? i : 4 - i;
    });
    expect(q.usersEvaluated).toBe(2);
    // User 1: among negatives {0, 3, 4} only item 0 (4) beats 2: rank 1; in the catalog minus {1}: rank 1.
    expect(q.hitRateAt10).toBe(1);
    expect(q.ndcgAt10).toBeCloseTo((1 + 1 / Math.log2(3)) / 2, 12);
    expect(q.recallAt20).toBe(1);
    expect(q.ndcgAt20).toBeCloseTo((1 + 1 / Math.log2(3)) / 2, 12);
  });
});

describe('baselines', () => {
  const split: Split = {
    users: 3, items: 4,
    train: [Int32Array.of(0, 1), Int32Array.of(0, 1, 2), Int32Array.of(2)],
    heldOut: Int32Array.of(3, 3, 3),
    seen: [Int32Array.of(), Int32Array.of(), Int32Array.of()],
    negatives: [Int32Array.of(), Int32Array.of(), Int32Array.of()],
  };

  it('ItemPop scores train-split popularity', () => {
    const out = new Float64Array(4);
    itemPop(split)(0, out);
    expect([...out]).toEqual([2, 2, 2, 0]);
  });

  it('item-kNN: cosine of the items\u2019 user sets, a user\u2019s score the sum over the user\u2019s items', () => {
    const sim = itemCosine(split);
    // 0 and 1: both users 0 and 1 -> 2 / sqrt(2 * 2) = 1; 0 and 2: user 1 -> 1 / 2; 3: never clicked.
    expect(sim[0 * 4 + 1]).toBeCloseTo(1, 6);
    expect(sim[0 * 4 + 2]).toBeCloseTo(0.5, 6);
    expect(sim[1 * 4 + 2]).toBeCloseTo(0.5, 6);
    expect(sim[0 * 4 + 3]).toBe(0);
    const out = new Float64Array(4);
    itemKnn(split)(2, out); // user 2 clicked item 2
    expect([...out].map((x) => Math.round(x * 1e6) / 1e6)).toEqual([0.5, 0.5, 0, 0]);
  });

  it('BPR-MF ranks the unclicked items of a user\u2019s own taste above the other taste\u2019s', () => {
    // 20 users, items 0..5 and 6..11; even users click 5 of 0..5 (never item u % 6), odd ones 5 of 6..11.
    const train = Array.from({ length: 20 }, (_, u) => Int32Array.from([0, 1, 2, 3, 4, 5].filter((i) => i !== u % 6), (i) => (u % 2) * 6 + i));
    const tiny: Split = { users: 20, items: 12, train, heldOut: new Int32Array(20).fill(-1), seen: train, negatives: train.map(() => Int32Array.of()) };
    const score = bprMf(tiny, { factors: 4, epochs: 200, learningRate: 0.05, regularization: 0.01, seed: 1 });
    const out = new Float64Array(12);
    for (const u of [0, 1, 2, 3]) {
      score(u, out);
      const own = (u % 2) * 6 + (u % 6);
      for (let other = 0; other < 12; other++) if (Math.floor(other / 6) !== u % 2) expect(out[own]).toBeGreaterThan(out[other]!);
    }
  });
});
