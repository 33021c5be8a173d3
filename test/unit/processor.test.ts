/**
 * The processor core driven with no broker, in the spirit of Kafka Streams' topology test driver:
 * records in, outputs out, state inspected.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startCore, type Core } from '../../src/core/assemble.js';
import type { InferenceReporter } from '../../src/inference/engine/types.js';
import { silentLogger } from '../../src/log.js';
import type { InputRecord } from '../../src/ingest/events.js';
import { CATEGORIES, productImage, seededRandom, syntheticAds, type SyntheticAd } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
// Real ONNX models on real worker threads; the models are written once into a temp folder.
// The scorer sees catalog changes at once (no upload interval) so the tests can check them.
const config = loadConfig({ env: {}, overrides: { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')), inferenceWorkers: 1, catalogUploadIntervalMs: 0 } });

let ads: SyntheticAd[];
const cores: Core[] = [];
beforeAll(async () => {
  ads = await syntheticAds(5);
});
afterAll(async () => {
  await Promise.all(cores.map((c) => c.close()));
});

/** Items inferred per model, as the engine reports them. */
const inferred = new Map<string, number>();
const countingReporter: InferenceReporter = {
  batch: (model, e) => void inferred.set(model, (inferred.get(model) ?? 0) + (e.failed ? 0 : e.batchSize)),
  queueDepth: () => undefined,
  rejected: () => undefined,
  provider: () => undefined,
};

async function newCore(cfg = config): Promise<Core> {
  const core = await startCore(cfg, { logger: silentLogger, clock: () => NOW, inferenceReporter: countingReporter });
  cores.push(core);
  return core;
}

/** A fresh core with the synthetic catalog loaded, and a helper to make input records. */
async function coreWithCatalog(): Promise<{ core: Core; rec: RecordMaker }> {
  const core = await newCore();
  const rec = new RecordMaker(core);
  const rejected = await core.catalogUpdater.apply(ads.map((ad, i) => rec.raw(config.topicAds, ad.adId, encodeAd(core.codec, ad, NOW), i)));
  expect(rejected).toEqual([]);
  return { core, rec };
}

class RecordMaker {
  private offset = 0;
  constructor(private readonly core: Core) {}

  raw(topic: string, key: string | null, value: Buffer | null, offset = this.offset++): InputRecord {
    return { topic, partition: 0, offset: String(offset), key: key === null ? null : Buffer.from(key), value, timestamp: NOW };
  }

  click(userId: string, categoryId: string, opts: { eventId?: string; t?: number; action?: string } = {}): InputRecord {
    const value = this.core.codec.encode('dev.adstream.events.ClickEvent', {
      eventId: opts.eventId ?? `c-${this.offset}`, userId, itemId: `item-${categoryId}-1`, categoryId, action: opts.action ?? 'CLICK', eventTime: opts.t ?? NOW, sessionId: null,
    });
    return this.raw(config.topicClicks, userId, value);
  }

  review(userId: string, text: string, opts: { eventId?: string; rating?: number } = {}): InputRecord {
    const value = this.core.codec.encode('dev.adstream.events.ReviewEvent', {
      eventId: opts.eventId ?? `r-${this.offset}`, userId, itemId: 'item-x', categoryId: null, rating: opts.rating ?? 5, text, language: null, eventTime: NOW,
    });
    return this.raw(config.topicReviews, userId, value);
  }

  image(userId: string, data: Buffer | string, opts: { eventId?: string; imageId?: string } = {}): InputRecord {
    const image = typeof data === 'string' ? { 'dev.adstream.events.ImageReference': { uri: data } } : { 'dev.adstream.events.InlineImage': { data, contentType: null } };
    const value = this.core.codec.encode('dev.adstream.events.ImageViewEvent', {
      eventId: opts.eventId ?? `i-${this.offset}`, userId, itemId: 'item-y', categoryId: null, imageId: opts.imageId ?? `img-${this.offset}`,
      image, dwellMs: null, eventTime: NOW,
    });
    return this.raw(config.topicImageViews, userId, value);
  }
}

function categoriesOf(candidates: readonly { categoryId: string }[]): string[] {
  return candidates.map((c) => c.categoryId);
}

describe('Processor core', () => {
  it('ranks the ads of the category a user clicks first, for every category', async () => {
    const { core, rec } = await coreWithCatalog();
    for (const cat of CATEGORIES) {
      const { scored, deadLetters } = await core.processor.process([rec.click(`u-${cat.id}`, cat.id), rec.click(`u-${cat.id}`, cat.id, { action: 'PURCHASE' })]);
      expect(deadLetters).toEqual([]);
      expect(scored).toHaveLength(1);
      const top5 = categoriesOf(scored[0]!.candidates.slice(0, 5));
      expect(top5).toEqual(Array(5).fill(cat.id));
      expect(scored[0]!.candidates).toHaveLength(config.topK);
      const scores = scored[0]!.candidates.map((c) => c.score);
      expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    }
  });

  it('understands Chinese and English reviews with no category given', async () => {
    const { core, rec } = await coreWithCatalog();
    const { scored } = await core.processor.process([rec.review('zh-user', '这双跑鞋很舒服，鞋底很软'), rec.review('en-user', 'the phone battery and the screen are great')]);
    const byUser = new Map(scored.map((s) => [s.userId, s]));
    expect(byUser.get('zh-user')!.candidates[0]!.categoryId).toBe('shoes');
    expect(byUser.get('en-user')!.candidates[0]!.categoryId).toBe('phones');
  });

  it('decodes image views with sharp, encodes them with the CNN and matches them to ads of the same look', async () => {
    const { core, rec } = await coreWithCatalog();
    const rand = seededRandom(99);
    const garden = CATEGORIES.find((c) => c.id === 'garden')!;
    const img = await productImage(garden, rand, 64, 'png');
    const { scored, deadLetters } = await core.processor.process([rec.image('img-user', img, { imageId: 'g1' })]);
    expect(deadLetters).toEqual([]);
    expect(categoriesOf(scored[0]!.candidates.slice(0, 3))).toEqual(['garden', 'garden', 'garden']);
    // A second view of the same image id is served from the embedding cache: no image inference.
    const before = inferred.get('image') ?? 0;
    expect(before).toBeGreaterThan(0);
    await core.processor.process([rec.image('img-user', img, { imageId: 'g1' })]);
    expect(inferred.get('image')).toBe(before);
  });

  it('fetches image references only from allowed origins', async () => {
    const garden = await productImage(CATEGORIES.find((c) => c.id === 'garden')!, seededRandom(7), 64, 'jpeg');
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(garden));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const allowed = loadConfig({ env: {}, overrides: { modelDir: config.modelDir, inferenceWorkers: 1, catalogUploadIntervalMs: 0, imageAllowedOrigins: [origin] } });
      const core = await newCore(allowed);
      const rec = new RecordMaker(core);
      await core.catalogUpdater.apply(ads.map((ad, i) => rec.raw(config.topicAds, ad.adId, encodeAd(core.codec, ad, NOW), i)));
      const { scored, deadLetters } = await core.processor.process([
        rec.image('by-ref', `${origin}/garden.jpg`, { eventId: 'ok' }),
        rec.image('elsewhere', 'http://169.254.169.254/latest/meta-data/', { eventId: 'ssrf' }),
      ]);
      expect(deadLetters.map((d) => d.reason)).toEqual(['IMAGE_REFUSED']);
      expect(scored.map((o) => o.userId)).toEqual(['by-ref']);
      expect(scored[0]!.candidates[0]!.categoryId).toBe('garden');
    } finally {
      server.close();
    }
  });

  it('accounts for every record: in one scored output per user, or as a dead letter with its reason', async () => {
    const { core, rec } = await coreWithCatalog();
    const records = [
      rec.click('alice', 'shoes', { eventId: 'e1' }),
      rec.raw(config.topicClicks, 'alice', Buffer.from('definitely not avro')),
      rec.click('bob', 'books', { eventId: 'e2' }),
      rec.click('alice', 'shoes', { eventId: 'e3' }),
      rec.raw(config.topicClicks, 'bob', null),
      rec.review('carol', '   ', { eventId: 'e4' }),
      rec.image('carol', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), { eventId: 'e5' }),
      rec.click('dave', 'toys', { eventId: 'e6', t: NOW + 3_600_000 }),
      rec.raw(config.topicClicks, 'mallory', rec.click('alice', 'shoes', { eventId: 'e7' }).value),
    ];
    const { scored, deadLetters } = await core.processor.process(records);
    expect(scored.map((s) => [s.userId, s.eventIds])).toEqual([
      ['alice', ['e1', 'e3']],
      ['bob', ['e2']],
    ]);
    expect(deadLetters.map((d) => [d.source.offset, d.reason]).sort()).toEqual(
      [
        [records[1]!.offset, 'BAD_FRAMING'],
        [records[4]!.offset, 'EMPTY_VALUE'],
        [records[5]!.offset, 'INVALID_FIELD'],
        [records[6]!.offset, 'IMAGE_UNREADABLE'],
        [records[7]!.offset, 'INVALID_FIELD'],
        [records[8]!.offset, 'KEY_MISMATCH'],
      ].sort(),
    );
    for (const d of deadLetters) expect(d.message.length).toBeGreaterThan(5);
    // Rejected records leave no trace in state.
    expect(core.users.peek('carol')).toBeUndefined();
    expect(core.users.peek('mallory')).toBeUndefined();
  });

  it('gives the same outputId for the same user and events, and another for other events', async () => {
    const a = await coreWithCatalog();
    const b = await coreWithCatalog();
    const [x] = (await a.core.processor.process([a.rec.click('u', 'toys', { eventId: 'k1' })])).scored;
    const [y] = (await b.core.processor.process([b.rec.click('u', 'toys', { eventId: 'k1' })])).scored;
    const [z] = (await b.core.processor.process([b.rec.click('u', 'toys', { eventId: 'k2' })])).scored;
    expect(x!.outputId).toBe(y!.outputId);
    expect(z!.outputId).not.toBe(x!.outputId);
    expect(x!.triggerEventTime).toBe(NOW);
    expect(x!.modelVersion).toMatch(/^default-v1-[0-9a-f]+\/concat-w1,1,1$/);
  });

  it('lets recent interests win over old ones as they decay', async () => {
    const { core, rec } = await coreWithCatalog();
    const hour = 3_600_000;
    // Heavy interest in books six half-lives ago, then a light interest in phones now.
    const old = Array.from({ length: 4 }, () => rec.click('drifter', 'books', { t: NOW - 6 * hour, action: 'PURCHASE' }));
    const { scored: before } = await core.processor.process(old);
    expect(before[0]!.candidates[0]!.categoryId).toBe('books');
    const { scored: after } = await core.processor.process([rec.click('drifter', 'phones', { t: NOW, action: 'VIEW' })]);
    expect(after[0]!.candidates[0]!.categoryId).toBe('phones');
  });

  it('never emits inactive ads, and applies catalog changes hot', async () => {
    const { core, rec } = await coreWithCatalog();
    const shoesAds = ads.filter((a) => a.categoryId === 'shoes');
    // Deactivate all but one shoes ad, delete that one by tombstone: no shoes ad may be emitted.
    await core.catalogUpdater.apply(shoesAds.slice(1).map((ad) => rec.raw(config.topicAds, ad.adId, encodeAd(core.codec, ad, NOW + 1, false))));
    await core.catalogUpdater.apply([rec.raw(config.topicAds, shoesAds[0]!.adId, null)]);
    expect(core.catalog.get(shoesAds[0]!.adId)).toBeUndefined();
    const { scored } = await core.processor.process([rec.click('runner', 'shoes')]);
    expect(scored[0]!.candidates.length).toBe(config.topK);
    expect(categoriesOf(scored[0]!.candidates)).not.toContain('shoes');
    // Reactivating one brings it back to the top.
    await core.catalogUpdater.apply([rec.raw(config.topicAds, shoesAds[2]!.adId, encodeAd(core.codec, shoesAds[2]!, NOW + 2, true))]);
    const { scored: again } = await core.processor.process([rec.click('runner', 'shoes')]);
    expect(again[0]!.candidates[0]!.adId).toBe(shoesAds[2]!.adId);
  });

  it('dead-letters a bad catalog record and keeps the rest', async () => {
    const { core, rec } = await coreWithCatalog();
    const before = core.catalog.activeCount;
    const rejected = await core.catalogUpdater.apply([rec.raw(config.topicAds, 'ad-x', Buffer.from([0, 0, 0, 0, 4, 1, 2]))]);
    expect(rejected.map((r) => r.reason)).toEqual(['DECODE_FAILED']);
    expect(core.catalog.activeCount).toBe(before);
  });

  it('scores with an empty catalog without failing (no candidates yet)', async () => {
    const core = await newCore();
    const rec = new RecordMaker(core);
    const { scored } = await core.processor.process([rec.click('early', 'toys')]);
    expect(scored[0]!.candidates).toEqual([]);
    expect(scored[0]!.eventIds).toHaveLength(1);
  });
});
