/**
 * The text yardstick on real reviews (Women's Clothing E-Commerce Reviews): how well a text encoder
 * places a review near its department (nearest-centroid accuracy and macro-F1, centroids from a
 * train split) and how well its embedding separates recommended from not (AUC of a logistic probe
 * trained on the train split). Embeddings come from adstream's own text path (tokenizer, hashed
 * ids, the text model on the inference workers) through the core's embedder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCore } from '../../src/app/assemble.js';
import type { Config } from '../../src/app/config/settings.js';
import type { Ad } from '../../src/domain/events.js';
import { MODALITY_INDEX } from '../../src/domain/modalities.js';
import { silentLogger } from '../../src/util/log.js';
import { seededRandom } from '../../src/util/random.js';
import type { Review } from './datasets.js';

/** Rows x dim embeddings of the texts (a zero row where no token was usable); seconds: the embedding alone, the core's start left out. */
export async function embedTexts(texts: readonly string[], config: Config, batch = 512): Promise<{ vectors: Float32Array; dim: number; seconds: number }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'adstream-text-'));
  const core = await startCore(config, { logger: silentLogger, stateDir });
  try {
    const dim = core.embedder.dims[MODALITY_INDEX.text]!;
    const vectors = new Float32Array(texts.length * dim);
    const t0 = performance.now();
    for (let i = 0; i < texts.length; i += batch) {
      // An ad's text block is the text encoder's embedding of its title (no description here).
      const ads: Ad[] = texts.slice(i, i + batch).map((title, j) => ({ adId: `r${i + j}`, advertiserId: 'reviews', title, description: '', categoryId: 'reviews', image: null, bidMicros: 0, active: true, updatedAt: 0 }));
      const blocks = await core.embedder.embedAds(ads);
      vectors.set(blocks[MODALITY_INDEX.text]!, i * dim);
    }
    return { vectors, dim, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await core.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Seeded shuffle of 0..n-1 cut into train (the first share) and test. */
export function trainTestSplit(n: number, trainShare: number, seed: number): { train: Int32Array; test: Int32Array } {
  const rand = seededRandom(seed);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const cut = Math.round(n * trainShare);
  return { train: order.slice(0, cut), test: order.slice(cut) };
}

/** Predicted class per test row: the class whose (normalised) train centroid has the largest inner product. */
export function nearestCentroid(vectors: Float32Array, dim: number, labels: Int32Array, classes: number, train: Int32Array, test: Int32Array): Int32Array {
  const centroids = new Float64Array(classes * dim);
  for (const r of train) for (let d = 0; d < dim; d++) centroids[labels[r]! * dim + d]! += vectors[r * dim + d]!;
  for (let c = 0; c < classes; c++) {
    let n = 0;
    for (let d = 0; d < dim; d++) n += centroids[c * dim + d]! ** 2;
    const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
    for (let d = 0; d < dim; d++) centroids[c * dim + d]! *= inv;
  }
  return Int32Array.from(test, (r) => {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += centroids[c * dim + d]! * vectors[r * dim + d]!;
      if (s > bestScore) (bestScore = s), (best = c);
    }
    return best;
  });
}

/** Accuracy and macro-F1 (unweighted mean over classes of F1; a class never predicted nor present is skipped). */
export function accuracyAndMacroF1(truth: ArrayLike<number>, predicted: ArrayLike<number>, classes: number): { accuracy: number; macroF1: number } {
  const tp = new Float64Array(classes);
  const fp = new Float64Array(classes);
  const fn = new Float64Array(classes);
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i]!;
    const p = predicted[i]!;
    if (t === p) (tp[t]!++, correct++);
    else (fp[p]!++, fn[t]!++);
  }
  let f1 = 0;
  let counted = 0;
  for (let c = 0; c < classes; c++) {
    if (tp[c]! + fp[c]! + fn[c]! === 0) continue;
    f1 += (2 * tp[c]!) / (2 * tp[c]! + fp[c]! + fn[c]!);
    counted++;
  }
  return { accuracy: truth.length > 0 ? correct / truth.length : 0, macroF1: counted > 0 ? f1 / counted : 0 };
}

/** Area under the ROC curve: the chance a random positive scores above a random negative (ties: half). */
export function auc(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const midRank = (i + j) / 2 + 1; // ranks of a tie group: their mean
    for (let k = i; k <= j; k++) if (positive[idx[k]!]) (pos++, (rankSum += midRank));
    i = j + 1;
  }
  const neg = idx.length - pos;
  if (pos === 0 || neg === 0) return 0.5;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Logistic regression (full-batch gradient descent, small L2) on the train rows; test-row probabilities. */
export function logisticProbe(vectors: Float32Array, dim: number, y: ArrayLike<boolean>, train: Int32Array, test: Int32Array, o = { epochs: 300, learningRate: 1, l2: 1e-4 }): Float64Array {
  const w = new Float64Array(dim + 1); // last: bias
  const g = new Float64Array(dim + 1);
  for (let e = 0; e < o.epochs; e++) {
    g.fill(0);
    for (const r of train) {
      let z = w[dim]!;
      for (let d = 0; d < dim; d++) z += w[d]! * vectors[r * dim + d]!;
      const err = 1 / (1 + Math.exp(-z)) - (y[r] ? 1 : 0);
      for (let d = 0; d < dim; d++) g[d]! += err * vectors[r * dim + d]!;
      g[dim]! += err;
    }
    for (let d = 0; d <= dim; d++) w[d]! -= o.learningRate * (g[d]! / train.length + (d < dim ? o.l2 * w[d]! : 0));
  }
  return Float64Array.from(test, (r) => {
    let z = w[dim]!;
    for (let d = 0; d < dim; d++) z += w[d]! * vectors[r * dim + d]!;
    return 1 / (1 + Math.exp(-z));
  });
}

export interface TextQuality {
  readonly reviews: number;
  readonly departments: readonly string[];
  readonly test: number;
  /** The text encoder's embedding width. */
  readonly dim: number;
  /** Seconds the embedding of all reviews took (texts/s = reviews / embedSeconds). */
  readonly embedSeconds: number;
  /** Reviews with no usable token (zero embedding). */
  readonly empty: number;
  readonly accuracy: number;
  readonly macroF1: number;
  readonly majorityAccuracy: number;
  readonly majorityMacroF1: number;
  readonly recommendedAuc: number;
}

/** The yardstick for the text encoder `config` names (80/20 split, seeded). */
export async function textYardstick(reviews: readonly Review[], config: Config, seed = 17): Promise<TextQuality> {
  const departments = [...new Set(reviews.map((r) => r.department))].sort();
  const labels = Int32Array.from(reviews, (r) => departments.indexOf(r.department));
  const { vectors, dim, seconds } = await embedTexts(reviews.map((r) => r.text), config);
  let empty = 0;
  for (let r = 0; r < reviews.length; r++) if (vectors.subarray(r * dim, (r + 1) * dim).every((x) => x === 0)) empty++;
  const { train, test } = trainTestSplit(reviews.length, 0.8, seed);
  const predicted = nearestCentroid(vectors, dim, labels, departments.length, train, test);
  const truth = Int32Array.from(test, (r) => labels[r]!);
  const { accuracy, macroF1 } = accuracyAndMacroF1(truth, predicted, departments.length);
  const counts = new Int32Array(departments.length);
  for (const r of train) counts[labels[r]!]!++;
  const majority = counts.indexOf(Math.max(...counts));
  const base = accuracyAndMacroF1(truth, new Int32Array(test.length).fill(majority), departments.length);
  const recommended = reviews.map((r) => r.recommended);
  const p = logisticProbe(vectors, dim, recommended, train, test);
  return { reviews: reviews.length, departments, test: test.length, dim, embedSeconds: seconds, empty, accuracy, macroF1, majorityAccuracy: base.accuracy, majorityMacroF1: base.macroF1, recommendedAuc: auc(p, Array.from(test, (r) => recommended[r]!)) };
}
