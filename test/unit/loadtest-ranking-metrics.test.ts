import { describe, expect, it } from 'vitest';
import { dcgAtK, hitAtK, ndcgAtK, precisionAtK } from '../../loadtest/ranking-metrics.js';

describe('ranking metrics (hand-computed)', () => {
  it('HitRate@k: any relevant item in the first k', () => {
    expect(hitAtK([0, 0, 0.5], 3)).toBe(1);
    expect(hitAtK([0, 0, 0.5], 2)).toBe(0);
    expect(hitAtK([], 10)).toBe(0);
  });

  it('Precision@k counts missing positions as misses', () => {
    expect(precisionAtK([1, 0, 1, 1], 4)).toBe(0.75);
    expect(precisionAtK([1, 1], 4)).toBe(0.5);
  });

  it('DCG and NDCG with graded gains', () => {
    // gains 0.2, 0, 0.8 -> 0.2/log2(2) + 0 + 0.8/log2(4) = 0.2 + 0.4 = 0.6
    expect(dcgAtK([0.2, 0, 0.8], 3)).toBeCloseTo(0.6, 12);
    // pool: two ads of weight 0.8, one of 0.2, one irrelevant; ideal top 3: 0.8, 0.8, 0.2
    // IDCG = 0.8 + 0.8/log2(3) + 0.2/2 = 0.8 + 0.504744 + 0.1 = 1.404744
    const idcg = 0.8 + 0.8 / Math.log2(3) + 0.1;
    expect(ndcgAtK([0.2, 0, 0.8], [0.8, 0.8, 0.2, 0], 3)).toBeCloseTo(0.6 / idcg, 12);
    expect(ndcgAtK([0.8, 0.8, 0.2], [0.2, 0.8, 0, 0.8], 3)).toBeCloseTo(1, 12);
    expect(ndcgAtK([0, 0], [0, 0], 2)).toBe(0);
  });
});
