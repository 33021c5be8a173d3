import type { Ad } from '../domain/events.js';

/**
 * The ads that can be shown, with their embeddings packed row by row into one Float32Array so
 * scoring is a tight loop over contiguous memory. Only active ads have a row; deletes move the
 * last row into the hole so rows stay dense.
 */
export class AdCatalog {
  private matrix: Float32Array;
  private rowAds: Ad[] = [];
  private readonly rowOf = new Map<string, number>();
  private readonly inactive = new Map<string, Ad>();
  /** Bumped on every change, so snapshots (e.g. on inference workers) know when they are stale. */
  version = 0;
  /** Told the id of every ad upserted or deleted: how an index follows the catalog by id. */
  private readonly listeners: ((adId: string) => void)[] = [];

  constructor(readonly dim: number, initialCapacity = 1024) {
    this.matrix = new Float32Array(dim * initialCapacity);
  }

  /** Inserts or replaces an ad; `embedding[offset..offset+dim)` must be unit-norm. */
  upsert(ad: Ad, embedding: Float32Array, offset = 0): void {
    this.version++;
    for (const l of this.listeners) l(ad.adId);
    if (!ad.active) {
      this.removeRow(ad.adId);
      this.inactive.set(ad.adId, ad);
      return;
    }
    this.inactive.delete(ad.adId);
    let row = this.rowOf.get(ad.adId);
    if (row === undefined) {
      row = this.rowAds.length;
      this.ensureCapacity(row + 1);
      this.rowAds.push(ad);
      this.rowOf.set(ad.adId, row);
    } else {
      this.rowAds[row] = ad;
    }
    this.matrix.set(embedding.subarray(offset, offset + this.dim), row * this.dim);
  }

  delete(adId: string): void {
    this.version++;
    for (const l of this.listeners) l(adId);
    this.removeRow(adId);
    this.inactive.delete(adId);
  }

  /** Calls `listener` with the id of each ad changed from now on. */
  onChange(listener: (adId: string) => void): void {
    this.listeners.push(listener);
  }

  /** An active ad's vector (a view into the packed rows: copy it to keep it past the next change). */
  vectorOf(adId: string): Float32Array | undefined {
    const row = this.rowOf.get(adId);
    return row === undefined ? undefined : this.matrix.subarray(row * this.dim, (row + 1) * this.dim);
  }

  get(adId: string): Ad | undefined {
    const row = this.rowOf.get(adId);
    return row === undefined ? this.inactive.get(adId) : this.rowAds[row];
  }

  /** Active ads, i.e. rows of the matrix. */
  get activeCount(): number {
    return this.rowAds.length;
  }

  get size(): number {
    return this.rowAds.length + this.inactive.size;
  }

  /** The ads of rows 0..activeCount-1, in row order (a copy). */
  rowSnapshot(): Ad[] {
    return this.rowAds.slice();
  }

  adAt(row: number): Ad {
    const ad = this.rowAds[row];
    if (!ad) throw new RangeError(`no ad at row ${row}`);
    return ad;
  }

  /** The packed embeddings of the active ads (a view; valid until the next change). */
  embeddings(): Float32Array {
    return this.matrix.subarray(0, this.rowAds.length * this.dim);
  }

  private removeRow(adId: string): void {
    const row = this.rowOf.get(adId);
    if (row === undefined) return;
    const last = this.rowAds.length - 1;
    if (row !== last) {
      const moved = this.rowAds[last]!;
      this.rowAds[row] = moved;
      this.rowOf.set(moved.adId, row);
      this.matrix.copyWithin(row * this.dim, last * this.dim, (last + 1) * this.dim);
    }
    this.rowAds.pop();
    this.rowOf.delete(adId);
  }

  private ensureCapacity(rows: number): void {
    if (rows * this.dim <= this.matrix.length) return;
    const grown = new Float32Array(Math.max(rows, (this.matrix.length / this.dim) * 2) * this.dim);
    grown.set(this.matrix);
    this.matrix = grown;
  }
}
