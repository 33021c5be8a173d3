/**
 * An approximate nearest-neighbour index over unit vectors (HNSW, usearch), addressed by slot: a
 * small integer the caller allocates per ad and reuses after a removal. Beside the graph it keeps
 * each slot's vector in one Float32Array, because usearch cannot hand a vector back by key and the
 * CTR re-rank needs the candidates' vectors where the search ran. Searches are synchronous native
 * calls: this runs on an inference worker, never on the event loop that consumes Kafka.
 */
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { BatchMatches, Index, Matches } from 'usearch';
import { dot } from '../util/vectors.js';

// usearch's CommonJS build: its ESM build locates the native addon by walking up from a file://
// URL (bindings' getRoot), which on a worker thread never ends (seen with 2.26 on Node 20).
const usearch = createRequire(import.meta.url)('usearch') as typeof import('usearch');

/** How the graph stores its vectors: usearch scalar kinds that keep recall on unit vectors. */
export const INDEX_QUANTIZATIONS = ['f32', 'f16', 'bf16'] as const;
export type IndexQuantization = (typeof INDEX_QUANTIZATIONS)[number];

/** The HNSW parameters (usearch names them connectivity, expansion_add, expansion_search). */
export interface IndexParams {
  readonly dim: number;
  /** Neighbours per node (M): memory and recall grow with it. */
  readonly connectivity: number;
  /** Candidates considered while inserting (efConstruction). */
  readonly expansionAdd: number;
  /** Candidates considered while searching (ef): recall against q/s. */
  readonly expansionSearch: number;
  /** The graph's scalar kind (usearch's quantization): f16 halves its memory. */
  readonly quantization: IndexQuantization;
}

/** What one search writes per query row: k similarities (descending) and their slots (-1: none). */
export interface SearchOut {
  readonly scores: Float32Array;
  readonly slots: BigInt64Array;
}

/** The files one saved index is made of, in its own folder. */
export const INDEX_FILES = { graph: 'graph.usearch', vectors: 'vectors.f32' } as const;

export class VectorIndex {
  private index: Index;
  private vectors: Float32Array;
  private readonly present: Uint8Array[] = [];
  private live = 0;

  constructor(readonly params: IndexParams, initialSlots = 1024) {
    this.index = VectorIndex.create(params);
    this.vectors = new Float32Array(params.dim * initialSlots);
  }

  private static create(p: IndexParams): Index {
    // Inner product on unit vectors is the cosine the exact scorer ranks by; distance = 1 - dot.
    return new usearch.Index({
      dimensions: p.dim,
      metric: usearch.MetricKind.IP,
      quantization: p.quantization as import('usearch').ScalarKind,
      connectivity: p.connectivity,
      expansion_add: p.expansionAdd,
      expansion_search: p.expansionSearch,
      multi: false,
    });
  }

  /** Slots indexed now. */
  get size(): number {
    return this.live;
  }

  /** The vector of a slot as indexed (a view; valid until the next upsert grows the store). */
  vectorOf(slot: number): Float32Array {
    const d = this.params.dim;
    return this.vectors.subarray(slot * d, (slot + 1) * d);
  }

  /** The whole slot store, row `slot` at slot * dim (a view, for packing re-rank pairs). */
  get store(): Float32Array {
    return this.vectors;
  }

  has(slot: number): boolean {
    return (this.present[slot >>> 16]?.[slot & 0xffff] ?? 0) === 1;
  }

  /** Removes the slots that are indexed (others are ignored). */
  remove(slots: Int32Array): void {
    const keys: bigint[] = [];
    for (const s of slots) {
      if (!this.has(s)) continue;
      this.mark(s, 0);
      keys.push(BigInt(s));
    }
    if (keys.length > 0) this.index.remove(BigUint64Array.from(keys));
    this.live -= keys.length;
  }

  /** Adds or replaces `slots[i]` with row i of `vectors` (unit norm). No rebuild: a replacement is a remove and an add. */
  upsert(slots: Int32Array, vectors: Float32Array, threads = 1): void {
    const d = this.params.dim;
    if (vectors.length !== slots.length * d) throw new RangeError(`${slots.length} slots need ${slots.length * d} values, got ${vectors.length}`);
    if (slots.length === 0) return;
    this.remove(slots);
    let top = 0;
    for (const s of slots) {
      if (!Number.isInteger(s) || s < 0) throw new RangeError(`slot must be a non-negative integer, got ${s}`);
      if (s > top) top = s;
    }
    this.ensureSlots(top + 1);
    const keys = new BigUint64Array(slots.length);
    slots.forEach((s, i) => {
      this.vectors.set(vectors.subarray(i * d, (i + 1) * d), s * d);
      this.mark(s, 1);
      keys[i] = BigInt(s);
    });
    // One thread on a worker (parallelism comes from the pool); the bench may build with more.
    this.index.add(keys, vectors, threads);
    this.live += slots.length;
  }

  /**
   * The k nearest slots of each of the n query rows, written to out at q * k; rows with fewer than
   * k results (a small or sparse index) are padded with slot -1 and score -Infinity.
   */
  search(queries: Float32Array, n: number, k: number, out: SearchOut, threads = 1): void {
    out.scores.fill(-Infinity, 0, n * k);
    out.slots.fill(-1n, 0, n * k);
    if (n === 0 || k === 0 || this.live === 0) return;
    const found = this.index.search(queries.subarray(0, n * this.params.dim), k, threads) as Matches | BatchMatches;
    // One query row comes back as Matches (its results only), several as BatchMatches (k per row).
    const counts = 'counts' in found ? found.counts : BigUint64Array.of(BigInt(found.keys.length));
    const stride = 'counts' in found ? k : found.keys.length;
    for (let q = 0; q < n; q++) {
      const c = Number(counts[q]);
      for (let j = 0; j < c; j++) {
        out.scores[q * k + j] = 1 - found.distances[q * stride + j]!;
        out.slots[q * k + j] = BigInt.asIntN(64, found.keys[q * stride + j]!);
      }
    }
  }

  /**
   * Query row q's k best slots of its candidate pool (`pool` from `at`, `size` slots, -1 ends it),
   * scored exactly against the slot store and written at q * k as `search` writes; slots no longer
   * indexed are skipped. A pool is a recent search's top `size` for a nearby query: scoring it costs
   * `size` dot products instead of a walk through the graph.
   */
  scorePool(queries: Float32Array, q: number, pool: BigInt64Array, at: number, size: number, k: number, out: SearchOut): void {
    const d = this.params.dim;
    const row = q * d;
    const base = q * k;
    out.scores.fill(-Infinity, base, base + k);
    out.slots.fill(-1n, base, base + k);
    const store = this.vectors;
    for (let j = at; j < at + size; j++) {
      const slot = Number(pool[j]!);
      if (slot < 0) break;
      if (!this.has(slot)) continue;
      const s = Math.fround(dot(queries, row, store, slot * d, d));
      if (!(s > out.scores[base + k - 1]!)) continue;
      // Insertion into the row's k best, kept descending.
      let p = base + k - 1;
      while (p > base && out.scores[p - 1]! < s) {
        out.scores[p] = out.scores[p - 1]!;
        out.slots[p] = out.slots[p - 1]!;
        p--;
      }
      out.scores[p] = s;
      out.slots[p] = BigInt(slot);
    }
  }

  /**
   * Writes the graph and the slot store into `dir` (the slot store up to the highest indexed slot),
   * so `load` can restore this index without a rebuild. Synchronous: it runs on a worker.
   */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    this.index.save(join(dir, INDEX_FILES.graph));
    let top = -1;
    for (let p = this.present.length - 1; p >= 0 && top < 0; p--) {
      const page = this.present[p];
      if (page) for (let i = page.length - 1; i >= 0; i--) if (page[i] === 1) { top = p * 0x10000 + i; break; }
    }
    const used = this.vectors.subarray(0, (top + 1) * this.params.dim);
    writeFileSync(join(dir, INDEX_FILES.vectors), new Uint8Array(used.buffer, used.byteOffset, used.byteLength));
  }

  /**
   * The index saved in `dir`, holding exactly `slots` (what the saver's caller recorded beside it).
   * Throws when the files do not match the parameters or the slots: the caller then rebuilds.
   */
  static load(dir: string, params: IndexParams, slots: Int32Array): VectorIndex {
    let top = -1;
    for (const s of slots) if (s > top) top = s;
    const path = join(dir, INDEX_FILES.vectors);
    const bytes = statSync(path).size;
    const d = params.dim;
    if (bytes % (4 * d) !== 0 || bytes / (4 * d) < top + 1) throw new Error(`${path}: ${bytes} bytes hold no ${top + 1} vectors of ${d}`);
    const index = new VectorIndex(params, Math.max(1024, bytes / (4 * d)));
    index.index.load(join(dir, INDEX_FILES.graph));
    const g = index.index;
    if (g.dimensions() !== d || g.connectivity() !== params.connectivity || g.size() !== slots.length) {
      throw new Error(`${dir}: saved index has ${g.size()} vectors of ${g.dimensions()} (connectivity ${g.connectivity()}), expected ${slots.length} of ${d} (${params.connectivity})`);
    }
    const fd = openSync(path, 'r');
    try {
      const into = new Uint8Array(index.vectors.buffer, 0, bytes);
      for (let at = 0; at < bytes; ) {
        const n = readSync(fd, into, at, Math.min(1 << 26, bytes - at), at);
        if (n === 0) throw new Error(`${path}: ended at ${at} of ${bytes} bytes`);
        at += n;
      }
    } finally {
      closeSync(fd);
    }
    for (const s of slots) index.mark(s, 1);
    index.live = slots.length;
    return index;
  }

  private mark(slot: number, v: 0 | 1): void {
    const page = (this.present[slot >>> 16] ??= new Uint8Array(0x10000));
    page[slot & 0xffff] = v;
  }

  private ensureSlots(slots: number): void {
    const d = this.params.dim;
    if (slots * d <= this.vectors.length) return;
    const grown = new Float32Array(Math.max(slots, (this.vectors.length / d) * 2) * d);
    grown.set(this.vectors);
    this.vectors = grown;
  }
}
