/** Top-K rows of (queries x items^T) by dot product, for each query row. */
export interface TopKResult {
  /** n*k item rows, best first per query; -1 where fewer than k items exist. */
  readonly rows: Int32Array;
  readonly scores: Float32Array;
  readonly k: number;
}

/**
 * Brute-force inner-product search: exact, and fast enough for catalogs up to ~1e5 ads at D=128
 * per micro-batch. K is small, so a sorted insertion buffer beats a heap.
 */
export function topKInnerProduct(queries: Float32Array, n: number, items: Float32Array, m: number, dim: number, k: number): TopKResult {
  const rows = new Int32Array(n * k).fill(-1);
  const scores = new Float32Array(n * k).fill(Number.NEGATIVE_INFINITY);
  for (let q = 0; q < n; q++) {
    const qo = q * dim;
    const base = q * k;
    let filled = 0;
    for (let r = 0; r < m; r++) {
      const ro = r * dim;
      let s = 0;
      for (let i = 0; i < dim; i++) s += queries[qo + i]! * items[ro + i]!;
      if (filled === k && s <= scores[base + k - 1]!) continue;
      // Insert s keeping scores[base..base+k) sorted descending.
      let j = filled < k ? filled++ : k - 1;
      while (j > 0 && scores[base + j - 1]! < s) {
        scores[base + j] = scores[base + j - 1]!;
        rows[base + j] = rows[base + j - 1]!;
        j--;
      }
      scores[base + j] = s;
      rows[base + j] = r;
    }
  }
  return { rows, scores, k };
}
