/**
 * Candidates for users with several interests: retrieval by similarity, then a CTR re-rank.
 *
 * 1. The scorer runs every interest of every user (one row each) against the catalog.
 * 2. Per user, an ad's similarity is its best match over the user's interests; the top
 *    (topK + slack) by similarity go on.
 * 3. The CTR model's prediction for each (matching interest, ad) pair came with the scorer's
 *    answer (one request, see EngineScorer); the candidate's score is that CTR
 *    times the interest's share of the user's strength: the chance the user is in that interest
 *    now, times the chance of a click given it. The share is what lets a fresh interest outrank
 *    one that has decayed, since every interest is a unit vector to the scorer and the CTR model.
 */
import type { Ad } from '../domain/events.js';
import type { Candidate } from '../domain/outputs.js';
import { totalStrength, type Interest } from '../domain/user-state.js';
import { normalizeInto } from '../util/vectors.js';
import type { Match } from './retrieve.js';

/** One user's interests, ready to score. */
export interface RankQuery {
  /** rows x F, each interest normalised. */
  readonly interests: Float32Array;
  /** Per row, that interest's share of the user's strength. */
  readonly shares: Float64Array;
  /** The user whose interests these are (what a retrieval may keep per-user answers by). */
  readonly owner?: string;
}

export interface Retrieval {
  /**
   * The best ads per query row, best first; `owners[q]`: the user whose interest row q is. One
   * record per ad across the whole answer (the same object wherever an ad appears): the ranking
   * tells ads apart by their record.
   */
  score(queries: Float32Array, n: number, owners?: readonly (string | undefined)[]): Promise<Match[][]>;
  /** Drops what it keeps for this owner (a deleted user). */
  forget?(owner: string): void;
}

export interface CandidateRankerOptions {
  readonly topK: number;
  /** Candidates beyond topK whose CTR competes for the topK places. */
  readonly slack: number;
}

/** A user's interests as a RankQuery (zero interests: no rows). Copies: the state may change later. */
export function rankQuery(interests: readonly Interest[], dim: number, owner?: string): RankQuery {
  const rows = new Float32Array(interests.length * dim);
  const shares = new Float64Array(interests.length);
  const total = totalStrength({ interests });
  interests.forEach((it, r) => {
    normalizeInto(it.vector, 0, dim, rows, r * dim);
    shares[r] = total > 0 ? it.strength / total : 0;
  });
  return owner === undefined ? { interests: rows, shares } : { interests: rows, shares, owner };
}

/**
 * Told, per candidate kept (user index, its place in the user's list), the query row that matched
 * it and the CTR the model gave that pair: what the attribution captures as served.
 */
export type ServedPair = (user: number, place: number, row: number, ctr: number) => void;

interface Pair {
  readonly match: Match;
  /** Row of the matching interest within the user's query. */
  readonly row: number;
}

export class CandidateRanker {
  constructor(
    private readonly retrieval: Retrieval,
    private readonly dim: number,
    private readonly o: CandidateRankerOptions,
  ) {}

  forgetUser(userId: string): void {
    this.retrieval.forget?.(userId);
  }

  /** Ranked candidates per query, best first. */
  async rank(queries: readonly RankQuery[], served?: ServedPair): Promise<Candidate[][]> {
    const dim = this.dim;
    const total = queries.reduce((n, q) => n + q.shares.length, 0);
    const rows = new Float32Array(total * dim);
    const owners = new Array<string | undefined>(total);
    let at = 0;
    for (const q of queries) {
      rows.set(q.interests, at * dim);
      owners.fill(q.owner, at, at + q.shares.length);
      at += q.shares.length;
    }
    const matches = await this.retrieval.score(rows, total, owners);

    // Per user: best match per ad over the user's interests, the best (topK + slack) of them. By
    // the ad's record, not its id (the retrieval answers with one record per ad): with a large
    // catalog, reading each candidate's id string was a cache miss per candidate.
    const pairs: Pair[][] = [];
    const keep = this.o.topK + this.o.slack;
    at = 0;
    for (const q of queries) {
      const best = new Map<Ad, Pair>();
      for (let row = 0; row < q.shares.length; row++) {
        for (const match of matches[at + row] ?? []) {
          const seen = best.get(match.ad);
          if (!seen || match.similarity > seen.match.similarity) best.set(match.ad, { match, row });
        }
      }
      at += q.shares.length;
      pairs.push([...best.values()].sort(bySimilarity).slice(0, keep));
    }

    return pairs.map((list, user) =>
      list
        .map((pair) => ({ pair, score: pair.match.ctr * queries[user]!.shares[pair.row]! }))
        .sort((a, b) => b.score - a.score || b.pair.match.similarity - a.pair.match.similarity)
        .slice(0, this.o.topK)
        .map(({ pair, score }, place) => {
          served?.(user, place, pair.row, pair.match.ctr);
          return { adId: pair.match.ad.adId, score, categoryId: pair.match.ad.categoryId };
        }),
    );
  }
}

function bySimilarity(a: Pair, b: Pair): number {
  return b.match.similarity - a.match.similarity;
}
