/**
 * The retrieval cache: a query row asked again gets the answer the retrieval gave it, without a
 * search, only while the retrieval would still answer so (same generation, same scoring models);
 * an ad deactivated since is never handed out.
 */
import { describe, expect, it } from 'vitest';
import { AdCatalog } from '../../src/catalog/ad-catalog.js';
import type { Ad } from '../../src/domain/events.js';
import { RetrievalCache, type VersionedRetrieval } from '../../src/pipeline/retrieval-cache.js';
import { ModalRetrieval } from '../../src/pipeline/retrieve-mode.js';
import type { Match } from '../../src/pipeline/retrieve.js';

const DIM = 4;

function adOf(adId: string, active = true): Ad {
  return { adId, advertiserId: 'adv', title: adId, description: '', categoryId: 'c', image: null, bidMicros: 1, active, updatedAt: 0 };
}

/** An exact scan over the catalog that counts the rows it was asked; its generation is set by the test. */
class CountingScan implements VersionedRetrieval {
  generation = 0;
  rowsSearched = 0;
  ctrScale = 1;
  /** Runs as a search starts (a test's sync landing during it). */
  duringSearch: () => void = () => undefined;
  constructor(private readonly catalog: AdCatalog, private readonly ads: readonly string[]) {}

  stillServed(ad: Ad): boolean {
    return this.catalog.get(ad.adId)?.active === true;
  }

  async score(queries: Float32Array, n: number): Promise<Match[][]> {
    this.duringSearch();
    this.rowsSearched += n;
    const out: Match[][] = [];
    for (let q = 0; q < n; q++) {
      const list: Match[] = [];
      for (const id of this.ads) {
        const ad = this.catalog.get(id);
        const v = this.catalog.vectorOf(id);
        if (!ad?.active || !v) continue;
        let dot = 0;
        for (let j = 0; j < DIM; j++) dot += queries[q * DIM + j]! * v[j]!;
        list.push({ ad, similarity: dot, ctr: this.ctrScale * (dot + 1) / 2 });
      }
      out.push(list.sort((a, b) => b.similarity - a.similarity));
    }
    return out;
  }
}

function setUp(rows = 100): { catalog: AdCatalog; scan: CountingScan; cache: RetrievalCache; version: { v: string }; lookups: { hits: number; misses: number } } {
  const catalog = new AdCatalog(DIM);
  const ids = ['a', 'b', 'c', 'd'];
  ids.forEach((id, i) => {
    const v = new Float32Array(DIM);
    v[i] = 1;
    catalog.upsert(adOf(id), v);
  });
  const scan = new CountingScan(catalog, ids);
  const version = { v: 'm1' };
  const lookups = { hits: 0, misses: 0 };
  const cache = new RetrievalCache(scan, {
    rows,
    dim: DIM,
    modelVersion: () => version.v,
    onLookup: (h, m) => {
      lookups.hits += h;
      lookups.misses += m;
    },
  });
  return { catalog, scan, cache, version, lookups };
}

const rowsOf = (...rows: number[][]): Float32Array => Float32Array.from(rows.flat());
const ids = (matches: Match[][]): string[][] => matches.map((l) => l.map((m) => m.ad.adId));

describe('RetrievalCache', () => {
  it('answers a row asked again as the retrieval did, searching only the rows it has not seen', async () => {
    const { scan, cache, lookups } = setUp();
    const first = await cache.score(rowsOf([1, 0, 0, 0], [0, 0.6, 0.8, 0]), 2);
    expect(scan.rowsSearched).toBe(2);
    // The second row is unchanged, the first moved (as one event moves one interest).
    const second = await cache.score(rowsOf([0, 1, 0, 0], [0, 0.6, 0.8, 0]), 2);
    expect(scan.rowsSearched).toBe(3);
    expect(second[1]).toEqual(first[1]);
    expect(second).toEqual(await setUp().scan.score(rowsOf([0, 1, 0, 0], [0, 0.6, 0.8, 0]), 2));
    expect(lookups).toEqual({ hits: 1, misses: 3 });
  });

  it('takes a decayed interest (rescaled, normalised again: a few ulps off) for the same row, and a moved one for another', async () => {
    const { scan, cache } = setUp();
    const row = Float32Array.from([0.1, 0.7, 0.2, 0.3]);
    const unit = (v: Float32Array): Float32Array => {
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    await cache.score(unit(row), 1);
    await cache.score(unit(row.map((x) => x * 0.7071)), 1);
    expect(scan.rowsSearched).toBe(1);
    await cache.score(unit(Float32Array.from([0.1, 0.7, 0.2, 0.301])), 1);
    expect(scan.rowsSearched).toBe(2);
  });

  it('searches again once the retrieval changed generation (an upload or a sync)', async () => {
    const { scan, cache } = setUp();
    await cache.score(rowsOf([1, 0, 0, 0]), 1);
    scan.generation++;
    await cache.score(rowsOf([1, 0, 0, 0]), 1);
    expect(scan.rowsSearched).toBe(2);
    await cache.score(rowsOf([1, 0, 0, 0]), 1);
    expect(scan.rowsSearched).toBe(2);
  });

  it('searches again once another model scores (a CTR swap changes every CTR)', async () => {
    const { scan, cache, version } = setUp();
    await cache.score(rowsOf([1, 0, 0, 0]), 1);
    version.v = 'm2';
    scan.ctrScale = 0.5;
    const after = await cache.score(rowsOf([1, 0, 0, 0]), 1);
    expect(scan.rowsSearched).toBe(2);
    expect(after[0]![0]!.ctr).toBeCloseTo(0.5);
  });

  it('never hands out an ad deactivated since the answer was kept', async () => {
    const { catalog, scan, cache } = setUp();
    const before = await cache.score(rowsOf([0.8, 0.6, 0, 0]), 1);
    expect(ids(before)[0]).toEqual(['a', 'b', 'c', 'd']);
    catalog.upsert(adOf('a', false), new Float32Array(DIM)); // no sync yet: the generation stays
    const after = await cache.score(rowsOf([0.8, 0.6, 0, 0]), 1);
    expect(scan.rowsSearched).toBe(1);
    expect(ids(after)[0]).toEqual(['b', 'c', 'd']);
  });

  it('as the processor wires it, in front of the index only: the exact scan of a small catalog searches every row', async () => {
    const { catalog } = setUp();
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const exact = new CountingScan(catalog, ids);
    const ann = new CountingScan(catalog, ids);
    const scorer = new ModalRetrieval(exact, new RetrievalCache(ann, { rows: 100, dim: DIM, modelVersion: () => 'm1' }), catalog, { mode: 'auto', exactBelow: 5 });
    await scorer.score(rowsOf([1, 0, 0, 0]), 1);
    await scorer.score(rowsOf([1, 0, 0, 0]), 1);
    expect(exact.rowsSearched).toBe(2);
    catalog.upsert(adOf('e'), Float32Array.of(0.5, 0.5, 0.5, 0.5)); // 5 active ads: the index answers
    await scorer.score(rowsOf([1, 0, 0, 0]), 1);
    await scorer.score(rowsOf([1, 0, 0, 0]), 1);
    expect(ann.rowsSearched).toBe(1);
    expect(exact.rowsSearched).toBe(2);
  });

  it('keeps at most `rows` rows, and with 0 passes every row through', async () => {
    const small = setUp(1);
    await small.cache.score(rowsOf([1, 0, 0, 0]), 1);
    await small.cache.score(rowsOf([0, 1, 0, 0]), 1);
    await small.cache.score(rowsOf([1, 0, 0, 0]), 1); // evicted by the second
    expect(small.scan.rowsSearched).toBe(3);
    const off = setUp(0);
    await off.cache.score(rowsOf([1, 0, 0, 0]), 1);
    await off.cache.score(rowsOf([1, 0, 0, 0]), 1);
    expect(off.scan.rowsSearched).toBe(2);
  });
  it('answers a call in one generation: a sync landing during its search sends every row to the new one, so an ad has one record in the answer', async () => {
    const { catalog, scan, cache } = setUp();
    const row = [0.9, 0.1, 0.3, 0.3];
    await cache.score(rowsOf(row), 1); // kept, with the record of 'a' as it was
    const before = scan.rowsSearched;
    // The ad is replaced (a new record, same id) and the sync that serves it lands while the next call searches.
    catalog.upsert({ ...adOf('a'), bidMicros: 2 }, Float32Array.of(1, 0, 0, 0));
    scan.duringSearch = () => {
      scan.generation = 1;
      scan.duringSearch = () => undefined;
    };
    const got = await cache.score(rowsOf(row, [0.8, 0.2, 0.4, 0.4]), 2);
    const records = new Set(got.flat().filter((m) => m.ad.adId === 'a').map((m) => m.ad));
    expect(records.size).toBe(1);
    expect([...records][0]!.bidMicros).toBe(2);
    expect(scan.rowsSearched - before).toBe(1 + 2); // the miss, then both rows again
  });
});
