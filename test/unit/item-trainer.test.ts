/**
 * `adstream train items` (src/training/items): item2vec on a tiny synthetic click set puts co-clicked
 * items closer than the others; the popularity coordinate; the written click encoder looks learned
 * items up and falls back to the category's vector for unknown ones; its card loads as a MODEL_CARD.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { startCore } from '../../src/app/assemble.js';
import { loadConfig } from '../../src/app/config/load-config.js';
import { readUserCard } from '../../src/models/model-card.js';
import { silentLogger } from '../../src/util/log.js';
import { bucketOf, CATEGORY_BUCKET_SEED, ITEM_BUCKET_SEED } from '../../src/preprocess/buckets.js';
import { DEFAULT_ITEM2VEC, trainItem2Vec } from '../../src/training/items/item2vec.js';
import { clickTables, LEARNED_CLICK_FILE, writeLearnedClickEncoder } from '../../src/training/items/learned-click-encoder.js';
import { clickSequences, readClickLog, trainItems, withPopularity, type LoggedClick } from '../../src/training/items/train-items.js';
import { seededRandom } from '../../src/util/random.js';

/** Two tastes: users click items 0..4 or 5..9, never across. */
function twoTastes(users: number, length: number, seed = 3): Int32Array[] {
  const rand = seededRandom(seed);
  return Array.from({ length: users }, (_, u) => Int32Array.from({ length }, () => (u % 2) * 5 + Math.floor(rand() * 5)));
}

function cosine(v: Float32Array, dim: number, a: number, b: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let d = 0; d < dim; d++) {
    ab += v[a * dim + d]! * v[b * dim + d]!;
    aa += v[a * dim + d]! ** 2;
    bb += v[b * dim + d]! ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

const OPTS = { ...DEFAULT_ITEM2VEC, dim: 8, epochs: 5, window: 3 };

describe('item2vec', () => {
  it('puts co-clicked items closer than items never clicked together', () => {
    const { vectors, last } = trainItem2Vec(twoTastes(40, 20), 10, OPTS);
    let within = 0;
    let across = 0;
    let nw = 0;
    let na = 0;
    for (let a = 0; a < 10; a++) {
      for (let b = a + 1; b < 10; b++) {
        const c = cosine(vectors, 8, a, b);
        if ((a < 5) === (b < 5)) (within += c), nw++;
        else (across += c), na++;
      }
    }
    expect(within / nw - across / na).toBeGreaterThan(0.4);
    // And every item's nearest other item is one of its own taste.
    for (let a = 0; a < 10; a++) {
      let best = -1;
      for (let b = 0; b < 10; b++) if (b !== a && (best < 0 || cosine(vectors, 8, a, b) > cosine(vectors, 8, a, best))) best = b;
      expect(best < 5).toBe(a < 5);
    }
    expect(last.epoch).toBe(5);
    expect(last.loss).toBeGreaterThan(0);
    expect(last.examples).toBeGreaterThan(0);
  });

  it('is deterministic for a seed, and reports every epoch', () => {
    const epochs: number[] = [];
    const a = trainItem2Vec(twoTastes(10, 10), 10, OPTS, (r) => epochs.push(r.epoch));
    const b = trainItem2Vec(twoTastes(10, 10), 10, OPTS);
    expect(epochs).toEqual([1, 2, 3, 4, 5]);
    expect([...a.vectors]).toEqual([...b.vectors]);
  });

  it('refuses items outside the table and settings it cannot train with', () => {
    expect(() => trainItem2Vec([Int32Array.of(0, 3)], 3, OPTS)).toThrow(/outside 0..2/);
    expect(() => trainItem2Vec([Int32Array.of(0, 1)], 2, { ...OPTS, dim: 0 })).toThrow(/dim/);
  });
});

describe('the popularity coordinate', () => {
  it('gives unit rows whose last value grows with the clicks, as weight * log1p(clicks) / log1p(most)', () => {
    const rows = withPopularity(Float32Array.of(3, 4, 1, 0, 0, 1), [Int32Array.of(0, 0, 0, 1), Int32Array.of(0, 2)], 3, 3, 0.5);
    // Clicks: item 0 x4, item 1 x1, item 2 x1.
    expect(rows[2]).toBeCloseTo(0.5, 6);
    expect(rows[5]).toBeCloseTo((0.5 * Math.log(2)) / Math.log(5), 6);
    for (let i = 0; i < 3; i++) expect(Math.hypot(rows[i * 3]!, rows[i * 3 + 1]!, rows[i * 3 + 2]!)).toBeCloseTo(1, 6);
    expect(rows[0]! / rows[1]!).toBeCloseTo(3 / 4, 6); // the learned direction is kept
  });
});

describe('the learned click encoder', () => {
  const table = { itemBuckets: 64, categoryBuckets: 16 };

  it('outputs a learned item its own vector and an unknown one its category\u2019s mean', async () => {
    const learned = { itemIds: ['a', 'b', 'c'], categoryOf: ['x', 'x', 'y'], vectors: Float32Array.of(1, 0, 0, 1, 1, 1), dim: 2 };
    const t = clickTables(learned, table);
    expect(t.collisions).toBe(0); // 3 ids in 64 buckets, checked for these seeds
    const dir = mkdtempSync(join(tmpdir(), 'adstream-items-'));
    const { card } = writeLearnedClickEncoder(dir, learned, table);
    const session = await ort.InferenceSession.create(join(dir, LEARNED_CLICK_FILE));
    const item = (id: string | null): bigint => (id === null ? 0n : bucketOf(id, table.itemBuckets, ITEM_BUCKET_SEED));
    const cat = (id: string): bigint => bucketOf(id, table.categoryBuckets, CATEGORY_BUCKET_SEED);
    const run = async (ids: (string | null)[], cats: string[]): Promise<number[]> => {
      const out = await session.run({ item_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(item)), [ids.length]), category_ids: new ort.Tensor('int64', BigInt64Array.from(cats.map(cat)), [cats.length]) });
      return [...(out.embedding!.data as Float32Array)].map((x) => Math.round(x * 1e5) / 1e5);
    };
    const h = Math.round(Math.SQRT1_2 * 1e5) / 1e5;
    // a, b: their own rows; 'new' (never trained) in x: normalised mean of a and b; no item in y: c.
    expect(await run(['a', 'b', 'new', null], ['x', 'x', 'x', 'y'])).toEqual([1, 0, 0, 1, h, h, h, h]);
    const entry = readUserCard(card).click!;
    expect(entry.embeddingDim).toBe(2);
    expect(entry.preprocessing).toMatchObject({ itemBuckets: 64, categoryBuckets: 16, adItems: true });
  });
});


describe('the processor with the learned card (MODEL_CARD)', () => {
  it('gives an ad its item’s learned vector (adItems) and a click on that item the same one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adstream-items-'));
    const learned = { itemIds: ['a', 'b'], categoryOf: ['x', 'x'], vectors: Float32Array.of(1, 0, 0, 1), dim: 2 };
    const { card } = writeLearnedClickEncoder(dir, learned, { itemBuckets: 64, categoryBuckets: 16 });
    // `weighted` with only the click modality weighed: an ad's fused vector is its click block.
    const config = loadConfig({ env: {}, overrides: { modelDir: join(dir, 'models'), stateDir: join(dir, 'state'), modelCard: card, inferenceWorkers: 1, catalogUploadIntervalMs: 0, fusion: 'weighted', weightText: 0, weightImage: 0 } });
    const core = await startCore(config, { logger: silentLogger, stateDir: join(dir, 'state') });
    try {
      const now = Date.now();
      const ad = (adId: string, offset: number) => ({ topic: config.topicAds, partition: 0, offset: String(offset), key: Buffer.from(adId), timestamp: now, value: core.codec.encode('dev.adstream.catalog.Ad', { adId, advertiserId: 'x', title: 'some title', description: '', categoryId: 'x', image: null, bidMicros: 1, active: true, updatedAt: now }) });
      expect(await core.catalogUpdater.apply([ad('a', 0), ad('b', 1), ad('new', 2)])).toEqual([]);
      const rows = core.catalog.rowSnapshot().map((x) => x.adId);
      const m = core.catalog.embeddings();
      const F = core.catalog.dim;
      const head = (id: string): number[] => [...m.subarray(rows.indexOf(id) * F, rows.indexOf(id) * F + 2)].map((x) => Math.round(x * 1e5) / 1e5);
      const h = Math.round(Math.SQRT1_2 * 1e5) / 1e5;
      expect(head('a')).toEqual([1, 0]);
      expect(head('b')).toEqual([0, 1]);
      expect(head('new')).toEqual([h, h]); // an ad for an item never clicked: its category
    } finally {
      await core.close();
    }
  }, 60_000);
});

describe('trainItems from a click log', () => {
  it('groups a JSON-lines log into per-user sequences in event-time order and writes a card', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adstream-items-'));
    const clicks: LoggedClick[] = [
      { userId: 'u1', itemId: 'i2', categoryId: 'c', eventTime: 20 },
      { userId: 'u2', itemId: 'i1', categoryId: 'c', eventTime: 5 },
      { userId: 'u1', itemId: 'i1', categoryId: 'c', eventTime: 10 },
    ];
    writeFileSync(join(dir, 'clicks.jsonl'), `${clicks.map((c) => JSON.stringify(c)).join('\n')}\n`);
    const log = await readClickLog(join(dir, 'clicks.jsonl'));
    const seqs = clickSequences(log);
    expect(seqs.itemIds).toEqual(['i2', 'i1']);
    expect(seqs.sequences.map((s) => [...s])).toEqual([[1, 0], [1]]);
    const r = trainItems(log, join(dir, 'out'), { ...OPTS, dim: 4, popularityWeight: 0.5 });
    expect(r.items).toBe(2);
    expect(JSON.parse(readFileSync(r.card, 'utf8')).models.click.embeddingDim).toBe(4);
  });

  it('names the line of a bad click', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adstream-items-'));
    writeFileSync(join(dir, 'bad.jsonl'), '{"userId":"u","itemId":"i","categoryId":"c","eventTime":1}\n{"userId":"u","itemId":""}\n');
    await expect(readClickLog(join(dir, 'bad.jsonl'))).rejects.toThrow(/bad.jsonl:2: itemId/);
  });
});
