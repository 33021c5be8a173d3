import { LRUCache } from 'lru-cache';

/** Counts hits and misses per cache; the metrics module supplies one. */
export interface CacheReporter {
  lookup(cache: string, hit: boolean): void;
  size(cache: string, entries: number, bytes: number): void;
  /** Query rows answered from the retrieval cache, and those searched (RetrievalCache). */
  retrievalLookups?(hits: number, misses: number): void;
  /** Query rows answered by a candidate pool, and those that searched the index (IndexedScorer). */
  poolRows?(pooled: number, searched: number): void;
  /** Rows that searched, by why no pool answered them (no_pool, drifted, expired, stale). */
  poolMisses?(reason: string, rows: number): void;
  /** A checked pooled row's recall against a search of it. */
  poolRecall?(recall: number): void;
}

/** A second, larger tier behind the memory (e.g. on disk): consulted on a miss, written on every set of a key it persists. */
export interface EmbeddingTier {
  persists(key: string): boolean;
  get(key: string): Float32Array | undefined;
  set(key: string, embedding: Float32Array): void;
}

/** Rough per-entry overhead of the LRU's bookkeeping and the key, so the byte bound is honest. */
const ENTRY_OVERHEAD_BYTES = 96;

/**
 * Embeddings by key (image id, item, ad), bounded by bytes rather than entries: embedding sizes
 * differ per model, and memory is what an operator budgets.
 */
export class EmbeddingCache {
  private readonly lru: LRUCache<string, Float32Array>;

  constructor(
    readonly name: string,
    maxBytes: number,
    private readonly reporter?: CacheReporter,
    private readonly tier?: EmbeddingTier,
  ) {
    this.lru = new LRUCache<string, Float32Array>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (v, k) => v.byteLength + 2 * k.length + ENTRY_OVERHEAD_BYTES,
    });
  }

  get(key: string): Float32Array | undefined {
    let v = this.lru.get(key);
    if (v === undefined && this.tier?.persists(key)) {
      v = this.tier.get(key);
      if (v) this.lru.set(key, v); // the tier's answer is already a copy
    }
    this.reporter?.lookup(this.name, v !== undefined);
    return v;
  }

  /** Stores a copy, so the caller's (batch output) buffer can be released. */
  set(key: string, embedding: Float32Array): void {
    this.lru.set(key, embedding.slice());
    if (this.tier?.persists(key)) this.tier.set(key, embedding);
    this.reporter?.size(this.name, this.lru.size, this.lru.calculatedSize);
  }

  get entries(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }
}
