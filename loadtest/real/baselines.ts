/**
 * What a recommender paper puts beside its model, on the same split (eval only, not part of
 * adstream): random scores, ItemPop (train-split popularity) and item-based kNN (cosine between
 * items' user sets over the train split, a user's score for an item = sum of its similarities to
 * the user's training items) and BPR-MF (Rendle et al., 2009: user and item factors and an item
 * bias, SGD on (user, clicked item, random other item) triples).
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

export interface BprOptions {
  readonly factors: number;
  readonly epochs: number;
  readonly learningRate: number;
  readonly regularization: number;
  readonly seed: number;
}

export const DEFAULT_BPR: BprOptions = { factors: 32, epochs: 40, learningRate: 0.05, regularization: 0.01, seed: 11 };

/** BPR-MF on the train split; score = user . item + item bias. Each epoch draws as many triples as there are train clicks. */
export function bprMf(split: Split, o: BprOptions = DEFAULT_BPR): ScoreUser {
  const { factors: k, learningRate: lr, regularization: reg } = o;
  const rand = seededRandom(o.seed);
  const U = Float64Array.from({ length: split.users * k }, () => (rand() - 0.5) * 0.1);
  const V = Float64Array.from({ length: split.items * k }, () => (rand() - 0.5) * 0.1);
  const bias = new Float64Array(split.items);
  const users = split.train.flatMap((t, u) => (t.length > 0 ? [u] : []));
  const clicked = split.train.map((t) => new Set(t));
  const perEpoch = split.train.reduce((n, t) => n + t.length, 0);
  for (let e = 0; e < o.epochs; e++) {
    for (let s = 0; s < perEpoch; s++) {
      const u = users[Math.floor(rand() * users.length)]!;
      const seq = split.train[u]!;
      const i = seq[Math.floor(rand() * seq.length)]!;
      let j = Math.floor(rand() * split.items);
      while (clicked[u]!.has(j)) j = Math.floor(rand() * split.items);
      let x = bias[i]! - bias[j]!;
      for (let f = 0; f < k; f++) x += U[u * k + f]! * (V[i * k + f]! - V[j * k + f]!);
      const g = 1 / (1 + Math.exp(x)); // d/dx of log sigmoid(x)
      bias[i]! += lr * (g - reg * bias[i]!);
      bias[j]! += lr * (-g - reg * bias[j]!);
      for (let f = 0; f < k; f++) {
        const uf = U[u * k + f]!;
        const vi = V[i * k + f]!;
        const vj = V[j * k + f]!;
        U[u * k + f] = uf + lr * (g * (vi - vj) - reg * uf);
        V[i * k + f] = vi + lr * (g * uf - reg * vi);
        V[j * k + f] = vj + lr * (-g * uf - reg * vj);
      }
    }
  }
  return (u, out) => {
    for (let it = 0; it < out.length; it++) {
      let x = bias[it]!;
      for (let f = 0; f < k; f++) x += U[u * k + f]! * V[it * k + f]!;
      out[it] = x;
    }
  };
}
