/**
 * The evaluation protocol of the NCF paper (He et al., 2017, "Neural Collaborative Filtering"):
 * each user's last positive interaction is held out; it is ranked among 100 items the user never
 * rated (HitRate@10, NDCG@10), and here also among the whole catalog minus what the user had seen
 * before it (Recall@20, NDCG@20: with one held-out item, recall is whether it is in the top 20).
 * Users and items are dense indices; a model is a function filling one score per item.
 */
import { seededRandom } from '../../src/util/random.js';

/** One user's ratings in time order (ties: by item), and which of them are positive. */
export interface Timeline {
  readonly items: Int32Array;
  readonly positive: Uint8Array;
}

export interface Split {
  readonly users: number;
  readonly items: number;
  /** Per user, the positives before the held-out one, in time order: all a model may learn from. */
  readonly train: readonly Int32Array[];
  /** Per user, the held-out item; -1 for users with fewer than 2 positives (not evaluated). */
  readonly heldOut: Int32Array;
  /** Per user, everything rated before the held-out item (positive or not): never recommended. */
  readonly seen: readonly Int32Array[];
  /** Per user, sampled items the user never rated (empty for users not evaluated). */
  readonly negatives: readonly Int32Array[];
}

export const NEGATIVES = 100;

/**
 * Leave-one-out: the last positive of each timeline is held out, the positives before it are the
 * training sequence, and `negatives` items the user never rated (at any time) are drawn without
 * replacement with a seeded generator.
 */
export function leaveOneOut(timelines: readonly Timeline[], items: number, negatives = NEGATIVES, seed = 13): Split {
  const rand = seededRandom(seed);
  const users = timelines.length;
  const heldOut = new Int32Array(users).fill(-1);
  const train: Int32Array[] = [];
  const seen: Int32Array[] = [];
  const sampled: Int32Array[] = [];
  const rated = new Uint8Array(items);
  for (let u = 0; u < users; u++) {
    const t = timelines[u]!;
    let last = -1;
    let positives = 0;
    for (let i = 0; i < t.items.length; i++) {
      if (t.positive[i]) {
        last = i;
        positives++;
      }
    }
    if (positives < 2) {
      train.push(t.items.filter((_, i) => t.positive[i] === 1));
      seen.push(t.items.slice());
      sampled.push(new Int32Array(0));
      continue;
    }
    heldOut[u] = t.items[last]!;
    train.push(t.items.subarray(0, last).filter((_, i) => t.positive[i] === 1));
    seen.push(t.items.slice(0, last));
    rated.fill(0);
    for (const it of t.items) rated[it] = 1;
    const free = items - t.items.length;
    if (free < negatives) throw new Error(`user ${u} rated all but ${free} items: cannot draw ${negatives} negatives`);
    const neg = new Int32Array(negatives);
    for (let n = 0; n < negatives; ) {
      const it = Math.floor(rand() * items);
      if (rated[it]) continue;
      rated[it] = 1; // without replacement
      neg[n++] = it;
    }
    sampled.push(neg);
  }
  return { users, items, train, heldOut, seen, negatives: sampled };
}

/**
 * 0-based rank of `target` among `candidates` by score: how many candidates score at least as high
 * (ties count against the target, so a constant model is not rewarded).
 */
export function rankAmong(scores: Float64Array, target: number, candidates: ArrayLike<number>): number {
  const s = scores[target]!;
  let rank = 0;
  for (let i = 0; i < candidates.length; i++) if (scores[candidates[i]!]! >= s) rank++;
  return rank;
}

/** Rank of `target` in the whole catalog, the items in `excluded` (and the target itself) left out. */
export function rankInCatalog(scores: Float64Array, target: number, excluded: ArrayLike<number>): number {
  const s = scores[target]!;
  let rank = 0;
  for (let i = 0; i < scores.length; i++) if (i !== target && scores[i]! >= s) rank++;
  for (let i = 0; i < excluded.length; i++) {
    const e = excluded[i]!;
    if (e !== target && scores[e]! >= s) rank--;
  }
  return rank;
}

/** HitRate@k and NDCG@k of one held-out item at 0-based `rank`. */
export function hitAt(rank: number, k: number): number {
  return rank < k ? 1 : 0;
}

export function ndcgAt(rank: number, k: number): number {
  return rank < k ? 1 / Math.log2(rank + 2) : 0;
}

export interface RankingQuality {
  readonly usersEvaluated: number;
  readonly hitRateAt10: number;
  readonly ndcgAt10: number;
  readonly recallAt20: number;
  readonly ndcgAt20: number;
}

/** Fills `out` with one score per item for user `u` (higher is better). */
export type ScoreUser = (u: number, out: Float64Array) => void;

/** Both protocols over every evaluated user of the split. */
export function evaluateRanking(split: Split, score: ScoreUser): RankingQuality {
  const scores = new Float64Array(split.items);
  let n = 0;
  let hr = 0;
  let nd10 = 0;
  let rec = 0;
  let nd20 = 0;
  for (let u = 0; u < split.users; u++) {
    const target = split.heldOut[u]!;
    if (target < 0) continue;
    score(u, scores);
    const sampled = rankAmong(scores, target, split.negatives[u]!);
    const full = rankInCatalog(scores, target, split.seen[u]!);
    n++;
    hr += hitAt(sampled, 10);
    nd10 += ndcgAt(sampled, 10);
    rec += hitAt(full, 20);
    nd20 += ndcgAt(full, 20);
  }
  const d = Math.max(n, 1);
  return { usersEvaluated: n, hitRateAt10: hr / d, ndcgAt10: nd10 / d, recallAt20: rec / d, ndcgAt20: nd20 / d };
}
