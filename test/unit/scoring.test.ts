import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/util/random.js';
import type { Ad } from '../../src/ingest/events.js';
import { AdCatalog } from '../../src/scoring/ad-catalog.js';
import { topKInnerProduct } from '../../src/scoring/top-k.js';

function randomMatrix(rand: () => number, rows: number, dim: number): Float32Array {
  const m = new Float32Array(rows * dim);
  for (let i = 0; i < m.length; i++) m[i] = rand() * 2 - 1;
  return m;
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let i = 0; i < dim; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}

/** Reference: score every item, sort descending, take k. */
function naiveTopK(queries: Float32Array, n: number, items: Float32Array, m: number, dim: number, k: number): Array<Array<{ row: number; score: number }>> {
  const out: Array<Array<{ row: number; score: number }>> = [];
  for (let q = 0; q < n; q++) {
    const all = Array.from({ length: m }, (_, r) => ({ row: r, score: dot(queries, q * dim, items, r * dim, dim) }));
    all.sort((a, b) => b.score - a.score || a.row - b.row);
    out.push(all.slice(0, k));
  }
  return out;
}

/**
 * Checks the result of topKInnerProduct for query q against the exact scores. Scores are kept in a
 * Float32Array, so comparisons are exact only up to float32 rounding: near-ties may swap, and an
 * item equal to the k-th in float32 may stand in for it. Rows must be real, distinct, best first.
 */
function checkQuery(res: ReturnType<typeof topKInnerProduct>, q: number, queries: Float32Array, items: Float32Array, m: number, dim: number): void {
  const k = res.k;
  const want = naiveTopK(queries.subarray(q * dim, (q + 1) * dim), 1, items, m, dim, k)[0]!;
  const rows = Array.from(res.rows.subarray(q * k, (q + 1) * k));
  const scores = Array.from(res.scores.subarray(q * k, (q + 1) * k));
  const filled = Math.min(k, m);
  const eps = (x: number) => Math.max(1e-6, Math.abs(x) * 1e-6);

  // Filled slots: real, distinct rows, each with its own score (rounded to float32), descending.
  const real = rows.slice(0, filled);
  expect(real.every((r) => r >= 0 && r < m)).toBe(true);
  expect(new Set(real).size).toBe(filled);
  for (let j = 0; j < filled; j++) {
    const exact = dot(queries, q * dim, items, rows[j]! * dim, dim);
    expect(scores[j]).toBe(Math.fround(exact));
    if (j > 0) expect(scores[j]!).toBeLessThanOrEqual(scores[j - 1]!);
    // Same score profile as the full sort.
    expect(Math.abs(scores[j]! - want[j]!.score)).toBeLessThanOrEqual(eps(want[j]!.score));
  }
  // Nothing left out is better than the worst kept one.
  if (filled > 0) {
    const kept = new Set(real);
    const worst = scores[filled - 1]!;
    for (let r = 0; r < m; r++) {
      if (!kept.has(r)) expect(dot(queries, q * dim, items, r * dim, dim)).toBeLessThanOrEqual(worst + eps(worst));
    }
  }
  // Empty slots.
  for (let j = filled; j < k; j++) {
    expect(rows[j]).toBe(-1);
    expect(scores[j]).toBe(Number.NEGATIVE_INFINITY);
  }
}

describe('topKInnerProduct', () => {
  const CASES: Array<[n: number, m: number, dim: number, k: number]> = [
    [1, 1, 1, 1],
    [3, 50, 8, 5],
    [5, 200, 16, 10],
    [2, 1000, 32, 1],
    [4, 7, 4, 10], // k > m
    [3, 0, 8, 4], // m = 0
    [1, 64, 128, 64], // k = m
    [6, 300, 3, 25],
    [0, 10, 4, 3], // no queries
  ];

  it.each(CASES)('n=%i m=%i dim=%i k=%i matches a full sort', (n, m, dim, k) => {
    const rand = seededRandom(n * 1_000_003 + m * 101 + dim * 7 + k);
    const queries = randomMatrix(rand, n, dim);
    const items = randomMatrix(rand, m, dim);
    const res = topKInnerProduct(queries, n, items, m, dim, k);
    expect(res.k).toBe(k);
    expect(res.rows).toHaveLength(n * k);
    expect(res.scores).toHaveLength(n * k);
    for (let q = 0; q < n; q++) checkQuery(res, q, queries, items, m, dim);
  });

  it('random data: exact rows equal the full sort when scores are well separated', () => {
    // Integer-valued vectors give exact scores, so ties are the only ambiguity; ties broken by
    // row keep the full-sort order comparable row by row.
    const rand = seededRandom(42);
    for (let trial = 0; trial < 30; trial++) {
      const n = 1 + Math.floor(rand() * 4);
      const m = Math.floor(rand() * 120);
      const dim = 1 + Math.floor(rand() * 12);
      const k = 1 + Math.floor(rand() * 20);
      const ints = (len: number) => Float32Array.from({ length: len }, () => Math.floor(rand() * 21) - 10);
      const queries = ints(n * dim);
      const items = ints(m * dim);
      const res = topKInnerProduct(queries, n, items, m, dim, k);
      const want = naiveTopK(queries, n, items, m, dim, k);
      for (let q = 0; q < n; q++) {
        checkQuery(res, q, queries, items, m, dim);
        // Exact integer scores: the score lists must be identical to the full sort.
        expect(Array.from(res.scores.subarray(q * k, q * k + Math.min(k, m)))).toEqual(want[q]!.map((w) => w.score));
      }
    }
  });

  it('ties do not lose rows', () => {
    const dim = 4;
    const same = [0.5, 0.5, 0.5, 0.5];
    // Six identical items and one worse and one better.
    const itemsList = [same, same, [0, 0, 0, 0], same, same, same, [1, 1, 1, 1], same];
    const items = Float32Array.from(itemsList.flat());
    const m = itemsList.length;
    const queries = Float32Array.from([1, 1, 1, 1]);
    for (const k of [1, 2, 3, 5, 7, 8, 10]) {
      const res = topKInnerProduct(queries, 1, items, m, dim, k);
      const rows = Array.from(res.rows);
      const filled = Math.min(k, m);
      expect(new Set(rows.slice(0, filled)).size, `k=${k}`).toBe(filled);
      expect(rows.slice(0, filled).every((r) => r >= 0)).toBe(true);
      expect(rows[0]).toBe(6); // the single best
      const tiedRows = [0, 1, 3, 4, 5, 7];
      // Slots 1..min(k,7)-1 are filled by tied rows only.
      for (let j = 1; j < Math.min(k, 7); j++) expect(tiedRows).toContain(rows[j]);
      if (k >= 8) expect(rows[7]).toBe(2); // the worst comes last
      for (let j = filled; j < k; j++) expect(rows[j]).toBe(-1);
      checkQuery(res, 0, queries, items, m, dim);
    }
  });

  it('all items tied: k distinct rows', () => {
    const m = 50;
    const dim = 3;
    const items = new Float32Array(m * dim).fill(0.25);
    const res = topKInnerProduct(Float32Array.from([1, 2, 3]), 1, items, m, dim, 20);
    expect(new Set(res.rows).size).toBe(20);
    expect([...res.rows].every((r) => r >= 0 && r < m)).toBe(true);
    expect([...res.scores].every((s) => s === Math.fround(1.5))).toBe(true);
  });

  it('zero query scores every item 0 and still returns k distinct rows', () => {
    const rand = seededRandom(7);
    const items = randomMatrix(rand, 30, 8);
    const res = topKInnerProduct(new Float32Array(8), 1, items, 30, 8, 12);
    expect(new Set(res.rows).size).toBe(12);
    expect([...res.scores].every((s) => s === 0)).toBe(true);
  });

  it('negative scores are kept when fewer items than k are positive', () => {
    const items = Float32Array.from([-1, -3, 2, -2]); // dim 1
    const res = topKInnerProduct(Float32Array.from([1]), 1, items, 4, 1, 4);
    expect(Array.from(res.rows)).toEqual([2, 0, 3, 1]);
    expect(Array.from(res.scores)).toEqual([2, -1, -2, -3]);
  });

  it('queries are independent: each query row gets its own result', () => {
    const dim = 2;
    const items = Float32Array.from([1, 0, 0, 1, -1, 0, 0, -1]); // +x, +y, -x, -y
    const queries = Float32Array.from([1, 0, 0, 1, -1, 0, 0, -1]);
    const res = topKInnerProduct(queries, 4, items, 4, dim, 1);
    expect(Array.from(res.rows)).toEqual([0, 1, 2, 3]);
    expect(Array.from(res.scores)).toEqual([1, 1, 1, 1]);
  });
});

// ---------------------------------------------------------------------------------------------
// AdCatalog
// ---------------------------------------------------------------------------------------------

function makeAd(adId: string, active = true, version = 0): Ad {
  return {
    adId,
    advertiserId: `adv-${adId}`,
    title: `title ${adId} v${version}`,
    description: '',
    categoryId: `cat-${adId.length % 3}`,
    image: null,
    bidMicros: 1000 + version,
    active,
    updatedAt: 1_700_000_000_000 + version,
  };
}

function unitVector(rand: () => number, dim: number): Float32Array {
  const v = randomMatrix(rand, 1, dim);
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  for (let i = 0; i < dim; i++) v[i]! /= n;
  return v;
}

interface ModelEntry {
  ad: Ad;
  embedding: Float32Array | null; // null for inactive ads
}

function checkCatalog(catalog: AdCatalog, model: Map<string, ModelEntry>, context: string): void {
  const dim = catalog.dim;
  const active = [...model.values()].filter((e) => e.ad.active);
  expect(catalog.activeCount, context).toBe(active.length);
  expect(catalog.size, context).toBe(model.size);
  const emb = catalog.embeddings();
  expect(emb.length, context).toBe(active.length * dim);

  const seen = new Set<string>();
  for (let row = 0; row < catalog.activeCount; row++) {
    const ad = catalog.adAt(row);
    expect(seen.has(ad.adId), `${context}: ${ad.adId} at two rows`).toBe(false);
    seen.add(ad.adId);
    const entry = model.get(ad.adId);
    expect(entry, `${context}: row ${row} holds ${ad.adId}, unknown to the model`).toBeDefined();
    expect(entry!.ad.active).toBe(true);
    expect(ad).toBe(entry!.ad); // the latest version, same object
    expect(Array.from(emb.subarray(row * dim, (row + 1) * dim)), `${context}: embedding of ${ad.adId}`).toEqual(Array.from(entry!.embedding!));
  }
  expect(seen.size).toBe(active.length);
  expect(() => catalog.adAt(catalog.activeCount)).toThrow(RangeError);
  expect(() => catalog.adAt(-1)).toThrow(RangeError);

  for (const [id, entry] of model) expect(catalog.get(id), `${context}: get(${id})`).toBe(entry.ad);
}

describe('AdCatalog', () => {
  it('upsert, replace and delete keep rows dense and consistent with a Map model', () => {
    const rand = seededRandom(2024);
    const dim = 6;
    // Small initial capacity so growth is exercised several times.
    const catalog = new AdCatalog(dim, 2);
    const model = new Map<string, ModelEntry>();
    const ids = Array.from({ length: 60 }, (_, i) => `ad-${i}`);
    let version = 0;

    for (let step = 0; step < 3000; step++) {
      const id = ids[Math.floor(rand() * ids.length)]!;
      const op = rand();
      if (op < 0.55) {
        // Insert or replace an active ad; the embedding sits at an offset inside a packed buffer.
        const ad = makeAd(id, true, ++version);
        const embedding = unitVector(rand, dim);
        const packed = new Float32Array(dim * 3);
        const offset = dim * Math.floor(rand() * 3);
        packed.set(embedding, offset);
        catalog.upsert(ad, packed, offset);
        packed.fill(99); // the catalog must have copied the row
        model.set(id, { ad, embedding });
      } else if (op < 0.75) {
        const ad = makeAd(id, false, ++version);
        catalog.upsert(ad, unitVector(rand, dim));
        model.set(id, { ad, embedding: null });
      } else {
        catalog.delete(id);
        model.delete(id);
      }
      if (step % 37 === 0 || step > 2950) checkCatalog(catalog, model, `step ${step}`);
    }
    checkCatalog(catalog, model, 'end');
    // Deleting everything leaves an empty catalog.
    for (const id of ids) catalog.delete(id);
    model.clear();
    checkCatalog(catalog, model, 'all deleted');
    expect(catalog.get('ad-0')).toBeUndefined();
  });

  it('scoring over embeddings() maps rows back to the right ads via adAt', () => {
    const rand = seededRandom(99);
    const dim = 8;
    const catalog = new AdCatalog(dim, 1);
    const vectors = new Map<string, Float32Array>();
    for (let i = 0; i < 40; i++) {
      const v = unitVector(rand, dim);
      vectors.set(`ad-${i}`, v);
      catalog.upsert(makeAd(`ad-${i}`), v);
    }
    for (let i = 0; i < 40; i += 3) {
      catalog.delete(`ad-${i}`);
      vectors.delete(`ad-${i}`);
    }
    // Query with one ad's own vector: it must be the best match.
    for (const [id, v] of vectors) {
      const res = topKInnerProduct(v, 1, catalog.embeddings(), catalog.activeCount, dim, 1);
      expect(catalog.adAt(res.rows[0]!).adId).toBe(id);
    }
  });

  it('inactive ads have no row; reactivation gives them a row again', () => {
    const dim = 3;
    const catalog = new AdCatalog(dim, 4);
    const e = (x: number) => Float32Array.from([x, 0, 0]);
    catalog.upsert(makeAd('a'), e(1));
    catalog.upsert(makeAd('b'), e(2));
    catalog.upsert(makeAd('c'), e(3));
    expect(catalog.activeCount).toBe(3);

    const inactiveB = makeAd('b', false, 1);
    catalog.upsert(inactiveB, e(20));
    expect(catalog.activeCount).toBe(2);
    expect(catalog.size).toBe(3);
    expect(catalog.get('b')).toBe(inactiveB);
    const rowIds = [catalog.adAt(0).adId, catalog.adAt(1).adId].sort();
    expect(rowIds).toEqual(['a', 'c']);
    // The last row moved into b's hole: embeddings follow their ads.
    for (let r = 0; r < 2; r++) expect(catalog.embeddings()[r * dim]).toBe(catalog.adAt(r).adId === 'a' ? 1 : 3);

    // Still inactive after another inactive update; never gets a row.
    catalog.upsert(makeAd('b', false, 2), e(21));
    expect(catalog.activeCount).toBe(2);

    const activeB = makeAd('b', true, 3);
    catalog.upsert(activeB, e(30));
    expect(catalog.activeCount).toBe(3);
    expect(catalog.size).toBe(3);
    const rowOfB = [0, 1, 2].find((r) => catalog.adAt(r).adId === 'b')!;
    expect(catalog.adAt(rowOfB)).toBe(activeB);
    expect(catalog.embeddings()[rowOfB * dim]).toBe(30);
    expect(catalog.get('b')).toBe(activeB);

    // An ad first seen inactive has no row, then gets one.
    catalog.upsert(makeAd('d', false), e(40));
    expect(catalog.activeCount).toBe(3);
    expect(catalog.size).toBe(4);
    catalog.upsert(makeAd('d', true), e(41));
    expect(catalog.activeCount).toBe(4);

    // Deleting an inactive ad forgets it.
    catalog.upsert(makeAd('a', false), e(1));
    catalog.delete('a');
    expect(catalog.get('a')).toBeUndefined();
    expect(catalog.size).toBe(3);
    expect(catalog.activeCount).toBe(3);
  });

  it('replacing an active ad keeps its row and updates ad and embedding', () => {
    const catalog = new AdCatalog(2, 2);
    catalog.upsert(makeAd('x'), Float32Array.from([1, 0]));
    catalog.upsert(makeAd('y'), Float32Array.from([0, 1]));
    const x2 = makeAd('x', true, 5);
    catalog.upsert(x2, Float32Array.from([0.6, 0.8]));
    expect(catalog.activeCount).toBe(2);
    expect(catalog.adAt(0)).toBe(x2);
    expect(Array.from(catalog.embeddings())).toEqual([Math.fround(0.6), Math.fround(0.8), 0, 1]);
  });

  it('deleting an unknown ad is a no-op', () => {
    const catalog = new AdCatalog(2);
    catalog.upsert(makeAd('x'), Float32Array.from([1, 0]));
    catalog.delete('nope');
    expect(catalog.activeCount).toBe(1);
    expect(catalog.size).toBe(1);
  });
});
