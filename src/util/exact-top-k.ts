/**
 * The exact top k by inner product over packed rows: the reference an approximate index is measured
 * against (recall@k), and small enough to run anywhere. Ties keep the lower row first.
 */
export function exactTopK(rows: Float32Array, count: number, dim: number, query: Float32Array, queryAt: number, k: number, outRows: Int32Array, outScores: Float32Array): number {
  const kept = Math.min(k, count);
  outRows.fill(-1, 0, k);
  outScores.fill(-Infinity, 0, k);
  for (let r = 0; r < count; r++) {
    let s = 0;
    const at = r * dim;
    for (let j = 0; j < dim; j++) s += rows[at + j]! * query[queryAt + j]!;
    if (s <= outScores[kept - 1]!) continue;
    // Insertion into the sorted k best: k is small (tens), a heap would not pay.
    let i = kept - 1;
    while (i > 0 && outScores[i - 1]! < s) {
      outScores[i] = outScores[i - 1]!;
      outRows[i] = outRows[i - 1]!;
      i--;
    }
    outScores[i] = s;
    outRows[i] = r;
  }
  return kept;
}
