/**
 * Answers kept per query row: an event moves one of its user's interests, and the others come back
 * to the next ranking in the same direction (the event decays them all, a rescaling that their
 * normalisation undoes up to float rounding), so their search, the largest cost with a big
 * catalog, need not run again. Rows within ROW_TOLERANCE of each other per value count as one.
 * An answer is reused only while the retrieval answers as it did (its `generation`: no index
 * sync since) and the same models score (`modelVersion`:
 * a CTR swap changes every pair's CTR). Ads deactivated since are filtered on the way out, as the
 * retrievals themselves do between syncs, so none is ever emitted. One call's answers are all of
 * one generation (a sync that lands during the search sends every row to the new one), so they
 * hold one record per ad, what the ranking counts ads by.
 */
import { LRUCache } from 'lru-cache';
import type { Ad } from '../domain/events.js';
import type { Retrieval } from './rank.js';
import type { Match } from './retrieve.js';

/** A retrieval that says when it would answer a query differently. */
export interface VersionedRetrieval extends Retrieval {
  /** Changes whenever the same query row could get another answer (an index sync). */
  readonly generation: number;
  /** Whether an ad one of this generation's answers holds is still active. */
  stillServed(ad: Ad): boolean;
}

export interface RetrievalCacheOptions {
  /** Query rows kept (least recently used go first); 0 turns the cache off. */
  readonly rows: number;
  readonly dim: number;
  /** The scoring models' version now (ServingVersion): answers of another are not reused. */
  readonly modelVersion: () => string;
  /** Told per query row whether it was answered from the cache. */
  readonly onLookup?: (hits: number, misses: number) => void;
}

interface Entry {
  readonly query: Float32Array;
  readonly generation: number;
  readonly modelVersion: string;
  readonly matches: readonly Match[];
}

export class RetrievalCache implements Retrieval {
  /** By a hash of the row; a bucket holds the rare rows that share one. */
  private readonly entries: LRUCache<number, Entry[]> | undefined;

  constructor(
    private readonly inner: VersionedRetrieval,
    private readonly o: RetrievalCacheOptions,
  ) {
    if (o.rows > 0) this.entries = new LRUCache<number, Entry[]>({ max: o.rows });
  }

  forget(owner: string): void {
    this.inner.forget?.(owner);
  }

  async score(queries: Float32Array, n: number, owners?: readonly (string | undefined)[]): Promise<Match[][]> {
    const entries = this.entries;
    if (!entries) return this.inner.score(queries, n, owners);
    const dim = this.o.dim;
    // Read before the search: an answer found under a newer generation is then never kept as older.
    const generation = this.inner.generation;
    const modelVersion = this.o.modelVersion();
    const out: Match[][] = new Array<Match[]>(n);
    const missed: number[] = [];
    const hashes = new Float64Array(n);
    for (let q = 0; q < n; q++) {
      const hash = hashRow(queries, q * dim, dim);
      hashes[q] = hash;
      const hit = entries.get(hash)?.find((e) => e.generation === generation && e.modelVersion === modelVersion && sameRow(e.query, queries, q * dim));
      if (hit) out[q] = this.stillActive(hit.matches);
      else missed.push(q);
    }
    this.o.onLookup?.(n - missed.length, missed.length);
    if (missed.length === 0) return out;
    const rows = new Float32Array(missed.length * dim);
    missed.forEach((q, i) => rows.set(queries.subarray(q * dim, (q + 1) * dim), i * dim));
    const found = await this.inner.score(rows, missed.length, owners && missed.map((q) => owners[q]));
    // A sync landed during the search: the hits are of the generation before it and could hold an
    // ad's former record beside its new one. Rare (at most one sync per catalog interval): every
    // row asks the new generation, in one call, and nothing is kept from this round.
    if (this.inner.generation !== generation && missed.length < n) return this.inner.score(queries, n, owners);
    missed.forEach((q, i) => {
      const matches = found[i] ?? [];
      out[q] = matches;
      const hash = hashes[q]!;
      const entry: Entry = { query: rows.slice(i * dim, (i + 1) * dim), generation, modelVersion, matches };
      // Same-hash entries of an older generation or model go: they can never be used again.
      const bucket = (entries.get(hash) ?? []).filter((e) => e.generation === generation && e.modelVersion === modelVersion && !sameRow(e.query, rows, i * dim));
      bucket.push(entry);
      entries.set(hash, bucket);
    });
    return out;
  }

  /** The matches whose ad is still active (the same array when all are: nothing is copied). */
  private stillActive(matches: readonly Match[]): Match[] {
    for (const m of matches) if (!this.inner.stillServed(m.ad)) return matches.filter((x) => this.inner.stillServed(x.ad));
    return matches as Match[];
  }
}

/**
 * Rows closer than this per value are the same query: a rescaled, renormalised row moves by a few
 * float32 ulps (about 1e-7), and a difference this small moves no similarity (a dot product with a unit ad over 128 values) by more than about 1e-4.
 */
const ROW_TOLERANCE = 1e-5;
/** Values are hashed on a grid this much coarser than the tolerance, so near rows share a bucket. */
const HASH_GRID = 1024;

/** Two FNV-style 32-bit hashes of the row's values on a coarse grid, folded into one safe integer. */
function hashRow(rows: Float32Array, at: number, dim: number): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let j = at; j < at + dim; j++) {
    const b = Math.round(rows[j]! * HASH_GRID);
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ (b >>> 16) ^ (b << 16), 0x5bd1e995);
  }
  return (h1 >>> 0) * 0x200000 + ((h2 >>> 0) & 0x1fffff);
}

function sameRow(a: Float32Array, rows: Float32Array, at: number): boolean {
  for (let j = 0; j < a.length; j++) if (!(Math.abs(a[j]! - rows[at + j]!) <= ROW_TOLERANCE)) return false;
  return true;
}
