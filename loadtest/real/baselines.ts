/**
 * What a recommender paper puts beside its model, on the same split (eval only, not part of
 * adstream): random scores, ItemPop (train-split popularity) and item-based kNN (cosine between
 * items' user sets over the train split, a user's score for an item = sum of its similarities to
 * the user's training items).
 */
import { seededRandom } from '../../src/util/random.js';
import type { ScoreUser, Split } from './ncf-protocol.js';

export function randomScores(seed = 7): ScoreUser {
  const rand = seededRandom(seed);
  return (_u, out) => {
    for (let i = 0; i < out.length; i++) out[i] = rand();
  };
}

/** Train-split positives per item. */
export function popularity(split: Split): Float64Array {
  const pop = new Float64Array(split.items);
  for (const seq of split.train) for (const it of seq) pop[it]!++;
  return pop;
}

export function itemPop(split: Split): ScoreUser {
  const pop = popularity(split);
  return (_u, out) => out.set(pop);
}

/** items x items cosine of the binary user-item matrix of the train split (dense: MovieLens-100k has 1,682 items). */
export function itemCosine(split: Split): Float32Array {
  const n = split.items;
  const co = new Float32Array(n * n);
  for (const seq of split.train) {
    for (let a = 0; a < seq.length; a++) {
      const rowA = seq[a]! * n;
      for (let b = 0; b < seq.length; b++) if (a !== b) co[rowA + seq[b]!]!++;
    }
  }
  const pop = popularity(split);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const d = Math.sqrt(pop[i]! * pop[j]!);
      co[i * n + j] = d > 0 ? co[i * n + j]! / d : 0;
    }
  }
  return co;
}

export function itemKnn(split: Split): ScoreUser {
  const n = split.items;
  const sim = itemCosine(split);
  return (u, out) => {
    out.fill(0);
    for (const it of split.train[u]!) {
      const row = it * n;
      for (let j = 0; j < n; j++) out[j]! += sim[row + j]!;
    }
  };
}
