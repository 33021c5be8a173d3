import type { Centroids } from '../state/segments.js';
import { normalizeInto } from '../util/vectors.js';
import type { AdCatalog } from './ad-catalog.js';

/**
 * Per category, the normalised mean of its active ads' fused vectors: what an interest is named
 * after. Recomputed when the catalog version changes, on first use after the change.
 */
export class CategoryCentroids {
  private cached: Centroids | undefined;
  private version = -1;

  constructor(private readonly catalog: AdCatalog) {}

  current(): Centroids {
    if (this.cached && this.version === this.catalog.version) return this.cached;
    this.version = this.catalog.version;
    this.cached = compute(this.catalog);
    return this.cached;
  }
}

function compute(catalog: AdCatalog): Centroids {
  const dim = catalog.dim;
  const emb = catalog.embeddings();
  const index = new Map<string, number>();
  for (let r = 0; r < catalog.activeCount; r++) {
    const name = catalog.adAt(r).categoryId;
    if (!index.has(name)) index.set(name, index.size);
  }
  const vectors = new Float32Array(index.size * dim);
  // Sums in float64: a category of many ads would lose precision in float32.
  const sum = new Float64Array(dim);
  const rowsOf: number[][] = Array.from({ length: index.size }, () => []);
  for (let r = 0; r < catalog.activeCount; r++) rowsOf[index.get(catalog.adAt(r).categoryId)!]!.push(r);
  rowsOf.forEach((rows, k) => {
    sum.fill(0);
    for (const r of rows) for (let j = 0; j < dim; j++) sum[j]! += emb[r * dim + j]!;
    normalizeInto(sum, 0, dim, vectors, k * dim);
  });
  return { names: [...index.keys()], vectors, dim };
}
