/**
 * The HNSW index answers like the exact scan on a seeded clustered set (recall@10), and follows
 * removals and replacements by slot without a rebuild: a removed slot is never returned.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VectorIndex, type SearchOut } from '../../src/inference/vector-index.js';
import { exactTopK } from '../../src/util/exact-top-k.js';
import { clusteredUnitVectors } from '../../src/devtools/clustered-vectors.js';

const DIM = 32;
const K = 10;
const params = { dim: DIM, connectivity: 16, expansionAdd: 128, expansionSearch: 64, quantization: 'f32' as const };
const out = (n: number): SearchOut => ({ scores: new Float32Array(n * K), slots: new BigInt64Array(n * K) });
const slotsOf = (n: number, from = 0): Int32Array => Int32Array.from({ length: n }, (_, i) => from + i);

function recall(index: VectorIndex, rows: Float32Array, count: number, queries: Float32Array, n: number, excluded: Set<number> = new Set()): number {
  const got = out(n);
  index.search(queries, n, K, got);
  const refRows = new Int32Array(K);
  const refScores = new Float32Array(K);
  // The reference scans a copy without the excluded rows' vectors (zeroed vectors score 0, far below clustered neighbours).
  const live = rows.slice();
  for (const r of excluded) live.fill(0, r * DIM, (r + 1) * DIM);
  let hits = 0;
  for (let q = 0; q < n; q++) {
    exactTopK(live, count, DIM, queries, q * DIM, K, refRows, refScores);
    const approx = new Set(Array.from(got.slots.subarray(q * K, (q + 1) * K), Number));
    for (const r of refRows) if (approx.has(r)) hits++;
  }
  return hits / (n * K);
}

describe('VectorIndex', () => {
  const count = 5000;
  // Queries are further points around the same centres, not rows of the index.
  const all = clusteredUnitVectors(count + 200, DIM, { clusters: 50, spread: 0.35, seed: 3 });
  const rows = all.subarray(0, count * DIM);
  const queries = all.slice(count * DIM);

  it('finds what the exact scan finds (recall@10 >= 0.95 on a clustered set)', () => {
    const index = new VectorIndex(params, 16);
    index.upsert(slotsOf(count), rows);
    expect(index.size).toBe(count);
    expect(recall(index, rows, count, queries, 200)).toBeGreaterThanOrEqual(0.95);
  });

  it('stores the graph in f16 at the same recall, with scores within f16 rounding of the exact ones', () => {
    const index = new VectorIndex({ ...params, quantization: 'f16' }, 16);
    index.upsert(slotsOf(count), rows);
    expect(recall(index, rows, count, queries, 200)).toBeGreaterThanOrEqual(0.95);
    const got = out(1);
    index.search(queries.subarray(0, DIM), 1, K, got);
    const slot = Number(got.slots[0]);
    let dot = 0;
    for (let j = 0; j < DIM; j++) dot += queries[j]! * rows[slot * DIM + j]!;
    expect(Math.abs(got.scores[0]! - dot)).toBeLessThan(2e-3);
    expect(Math.abs(got.scores[0]! - dot)).toBeGreaterThan(0); // f16, not f32: the rounding shows
  });

  it('never returns a removed slot, and finds a replaced one at its new vector', () => {
    const index = new VectorIndex(params);
    index.upsert(slotsOf(count), rows);
    const gone = slotsOf(count / 2);
    index.remove(gone);
    expect(index.size).toBe(count / 2);
    const got = out(200);
    index.search(queries, 200, K, got);
    for (const s of got.slots) expect(s >= BigInt(count / 2) || s === -1n).toBe(true);
    expect(recall(index, rows, count, queries, 200, new Set(gone))).toBeGreaterThanOrEqual(0.95);

    // Slot 4999 moves onto query 0's vector: it must come back first for that query.
    index.upsert(Int32Array.of(count - 1), queries.subarray(0, DIM));
    expect(index.size).toBe(count / 2);
    index.search(queries, 1, K, got);
    expect(got.slots[0]).toBe(BigInt(count - 1));
    expect(got.scores[0]).toBeCloseTo(1, 4);
    expect(Array.from(index.vectorOf(count - 1))).toEqual(Array.from(queries.subarray(0, DIM)));
  });

  it('pads rows beyond what a small index holds, and answers an empty index with nothing', () => {
    const index = new VectorIndex(params);
    const got = out(2);
    index.search(queries, 2, K, got);
    expect([...got.slots]).toEqual(new Array(2 * K).fill(-1n));
    index.upsert(slotsOf(3, 7), rows.subarray(0, 3 * DIM));
    index.search(queries, 2, K, got);
    expect([...got.slots.subarray(0, K)].filter((s) => s >= 0n).sort()).toEqual([7n, 8n, 9n]);
    expect(got.scores[3]).toBe(-Infinity);
    expect([...got.slots.subarray(K, 2 * K)].filter((s) => s >= 0n)).toHaveLength(3);
  });

  it('saves and loads: the loaded index answers like the built one, with the same vectors, and stays updatable', () => {
    const index = new VectorIndex(params);
    index.upsert(slotsOf(count), rows);
    index.remove(slotsOf(100, 1000)); // holes, as after removals
    const dir = join(mkdtempSync(join(tmpdir(), 'adstream-index-')), 'gen');
    index.save(dir);
    const live = Int32Array.from([...slotsOf(1000), ...slotsOf(count - 1100, 1100)]);
    const loaded = VectorIndex.load(dir, params, live);
    expect(loaded.size).toBe(count - 100);
    const [a, b] = [out(200), out(200)];
    index.search(queries, 200, K, a);
    loaded.search(queries, 200, K, b);
    expect([...b.slots]).toEqual([...a.slots]);
    expect([...b.scores]).toEqual([...a.scores]);
    expect(loaded.has(1000)).toBe(false);
    expect(loaded.has(999)).toBe(true);
    expect(Array.from(loaded.vectorOf(count - 1))).toEqual(Array.from(rows.subarray((count - 1) * DIM, count * DIM)));
    loaded.upsert(Int32Array.of(1000), queries.subarray(0, DIM));
    loaded.search(queries, 1, K, b);
    expect(b.slots[0]).toBe(1000n);
  });

  it('refuses a saved index that does not hold the slots or parameters it is loaded for', () => {
    const index = new VectorIndex(params);
    index.upsert(slotsOf(50), rows.subarray(0, 50 * DIM));
    const dir = join(mkdtempSync(join(tmpdir(), 'adstream-index-')), 'gen');
    index.save(dir);
    expect(() => VectorIndex.load(dir, params, slotsOf(49))).toThrow(/expected 49/);
    expect(() => VectorIndex.load(dir, params, slotsOf(51))).toThrow();
    expect(() => VectorIndex.load(dir, { ...params, connectivity: 8 }, slotsOf(50))).toThrow(/connectivity/);
    expect(() => VectorIndex.load(dir, { ...params, dim: DIM * 2 }, slotsOf(50))).toThrow();
  });
});
