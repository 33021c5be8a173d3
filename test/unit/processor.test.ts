/**
 * The processor core driven with no broker, in the spirit of Kafka Streams' topology test driver:
 * records in, outputs out, state inspected.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { CATEGORIES, productImage, seededRandom } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import { categoriesOf, CoreDriver, NOW, RecordMaker, testConfig } from './core-driver.js';

// Real ONNX models on real worker threads; the models are written once into a temp folder.
// The scorer sees catalog changes at once (no upload interval) so the tests can check them.
const config = testConfig();
const driver = new CoreDriver();
afterAll(() => driver.close());
const coreWithCatalog = () => driver.coreWithCatalog();
const inferred = driver.inferred;

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
      const { core, rec } = await driver.coreWithCatalog(testConfig({ imageAllowedOrigins: [origin] }));
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
    const { scored, deadLetters, stateChanges } = await core.processor.process(records);
    expect(scored.map((s) => [s.userId, s.eventIds])).toEqual([
      ['alice', ['e1', 'e3']],
      ['bob', ['e2']],
    ]);
    // One state change per touched user; emitted at once (no EMIT_INTERVAL_MS), so nothing pending.
    expect(stateChanges.map((s) => [s.userId, s.pendingEventIds, s.lastEmittedAt, s.updatedAt])).toEqual([
      ['alice', [], NOW, NOW],
      ['bob', [], NOW, NOW],
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
    expect(core.users.get('carol')).toBeUndefined();
    expect(core.users.get('mallory')).toBeUndefined();
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
    expect(x!.modelVersion).toMatch(/^default-v1-[0-9a-f]+\/concat-f128-w1,1,1\/ctr-v1$/);
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
    const shoesAds = (await driver.catalog()).filter((a) => a.categoryId === 'shoes');
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
    const core = await driver.core();
    const rec = new RecordMaker(core, config);
    const { scored } = await core.processor.process([rec.click('early', 'toys')]);
    expect(scored[0]!.candidates).toEqual([]);
    expect(scored[0]!.eventIds).toHaveLength(1);
  });
});
