/**
 * Ranking quality of a list of ads against graded relevance (the evaluation's ground truth: an
 * ad's relevance is the weight of its category in the user's hidden interest mixture, 0 outside it).
 */

/** 1 if any of the first k items is relevant (gain > 0), else 0. */
export function hitAtK(gains: readonly number[], k: number): number {
  for (let i = 0; i < Math.min(k, gains.length); i++) if (gains[i]! > 0) return 1;
  return 0;
}

/** Share of the first k positions holding a relevant item (positions past the list count as misses). */
export function precisionAtK(gains: readonly number[], k: number): number {
  let n = 0;
  for (let i = 0; i < Math.min(k, gains.length); i++) if (gains[i]! > 0) n++;
  return n / k;
}

/** DCG@k with linear gains: sum of gain_i / log2(i + 2) over the first k positions. */
export function dcgAtK(gains: readonly number[], k: number): number {
  let s = 0;
  for (let i = 0; i < Math.min(k, gains.length); i++) s += gains[i]! / Math.log2(i + 2);
  return s;
}

/**
 * NDCG@k: DCG of the ranking over DCG of the best possible ranking of `pool` (the gains of every
 * candidate that could have been ranked, e.g. every active ad). 0 when nothing is relevant.
 */
export function ndcgAtK(gains: readonly number[], pool: readonly number[], k: number): number {
  const ideal = dcgAtK([...pool].sort((a, b) => b - a), k);
  return ideal > 0 ? dcgAtK(gains, k) / ideal : 0;
}
