import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/util/random.js';
import type { Ad } from '../../src/domain/events.js';
import { AdCatalog } from '../../src/catalog/ad-catalog.js';

function randomMatrix(rand: () => number, rows: number, dim: number): Float32Array {
  const m = new Float32Array(rows * dim);
  for (let i = 0; i < m.length; i++) m[i] = rand() * 2 - 1;
  return m;
}

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

/** The row of `items` with the largest inner product with `query` (brute force). */
function bestRow(query: Float32Array, items: Float32Array, rows: number, dim: number): number {
  let best = -1;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += query[i]! * items[r * dim + i]!;
    if (s > bestScore) {
      best = r;
      bestScore = s;
    }
  }
  return best;
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
      expect(catalog.adAt(bestRow(v, catalog.embeddings(), catalog.activeCount, dim)).adId).toBe(id);
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
