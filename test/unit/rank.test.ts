/**
 * CandidateRanker over a scripted retrieval: one candidate per ad over a user's interests, with its
 * best match (the retrieval answers with one record per ad; see retrieval-cache.test.ts for the
 * generations that keep it so).
 */
import { describe, expect, it } from 'vitest';
import type { Ad } from '../../src/domain/events.js';
import { CandidateRanker, type RankQuery, type Retrieval } from '../../src/pipeline/rank.js';
import type { Match } from '../../src/pipeline/retrieve.js';

const F = 4;
const ad = (id: string, version = 1): Ad => ({ adId: id, advertiserId: 'adv', title: id, description: '', categoryId: 'cat', image: null, bidMicros: 1000, active: true, updatedAt: version });

/** Answers each query row with the listed matches, in order. */
function scripted(rows: readonly Match[][]): Retrieval {
  return { score: async () => rows.map((r) => [...r]) };
}

function twoInterests(): RankQuery {
  return { interests: new Float32Array(2 * F).fill(0.5), shares: Float64Array.of(0.5, 0.5) };
}

describe('CandidateRanker', () => {
  it('keeps an ad once per user, with its best match over the interests', async () => {
    const a = ad('a');
    const b = ad('b');
    const ranker = new CandidateRanker(scripted([[{ ad: a, similarity: 0.9, ctr: 0.1 }, { ad: b, similarity: 0.5, ctr: 0.2 }], [{ ad: a, similarity: 0.95, ctr: 0.3 }]]), F, { topK: 5, slack: 5 });
    const [list] = await ranker.rank([twoInterests()]);
    expect(list!.map((c) => c.adId)).toEqual(['a', 'b']);
    expect(list![0]!.score).toBeCloseTo(0.3 * 0.5);
  });
});
