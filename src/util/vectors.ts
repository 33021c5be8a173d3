/**
 * The vector loops that retrieval, interests, segments and centroids share: typed arrays at
 * offsets, nothing allocated. Products are summed as JS numbers (float64) whatever the arrays hold,
 * in index order, so every caller gets the same bits as its own loop did.
 */
export type Vector = Float32Array | Float64Array;

/** Sum of a[aAt + j] * b[bAt + j] over j < n. */
export function dot(a: Vector, aAt: number, b: Vector, bAt: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += a[aAt + j]! * b[bAt + j]!;
  return s;
}

/** |v[at, at + n)|². */
export function squaredNorm(v: Vector, at: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += v[at + j]! * v[at + j]!;
  return s;
}

/** out[outAt, outAt + n) = v[at, at + n) / |v|; zeros for a zero v. */
export function normalizeInto(v: Vector, at: number, n: number, out: Vector, outAt: number): void {
  const norm = squaredNorm(v, at, n);
  const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let j = 0; j < n; j++) out[outAt + j] = v[at + j]! * inv;
}

/** cos(v, x) for a unit x: v.x / |v|, in one pass; -Infinity for a zero v (it can match nothing). */
export function cosineToUnit(v: Vector, vAt: number, x: Vector, xAt: number, n: number): number {
  let d = 0;
  let norm = 0;
  for (let j = 0; j < n; j++) {
    const vj = v[vAt + j]!;
    d += vj * x[xAt + j]!;
    norm += vj * vj;
  }
  return norm > 0 ? d / Math.sqrt(norm) : Number.NEGATIVE_INFINITY;
}

/** Row r of a matrix packed at `width` values per row: a view, not a copy. */
export function rowOf(m: Float32Array, r: number, width: number): Float32Array {
  return m.subarray(r * width, (r + 1) * width);
}
