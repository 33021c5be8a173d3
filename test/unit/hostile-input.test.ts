/**
 * Hostile-input cases the other unit files do not cover, through the whole core (decode, features,
 * state, scoring): unknown categories (accepted: the catalog grows), any Unicode in ids, images whose
 * declared type lies, decompression bombs. See the README "Guarantees" table for every case.
 */
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { CATEGORIES, productImage, seededRandom } from '../../src/devtools/synthetic.js';
import { CoreDriver } from './core-driver.js';

const driver = new CoreDriver();
afterAll(() => driver.close());

describe('hostile input through the core', () => {
  it('accepts a click of a category the catalog does not know (yet): it is scored, not dead-lettered', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const r = await core.processor.process([rec.click('u-unknown-cat', 'category-launched-tomorrow')]);
    expect(r.deadLetters).toEqual([]);
    expect(r.scored).toHaveLength(1);
    expect(r.scored[0]!.candidates.length).toBeGreaterThan(0);
  });

  it('accepts emoji, CJK, right-to-left and zero-width characters in ids, kept byte for byte', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const ids = ['用户-😀-1', 'مستخدم\u200f-2', 'a\u200bb\u200d-3', '👨‍👩‍👧-שלום'];
    const r = await core.processor.process(ids.map((u) => rec.click(u, 'shoes', { eventId: `ev-${u}` })));
    expect(r.deadLetters).toEqual([]);
    expect(r.scored.map((o) => o.userId).sort()).toEqual([...ids].sort());
    for (const u of ids) expect(core.users.get(u)).toBeDefined();
    // ...and the encoded output keys are those ids' UTF-8 bytes.
    for (const o of r.scored) expect(core.encoder.scored(o).key!.toString('utf8')).toBe(o.userId);
  });

  it('reads invalid UTF-8 in ids and texts leniently: each bad byte becomes U+FFFD, nothing crashes', async () => {
    const { core, rec, config } = await driver.coreWithCatalog();
    const good = rec.review('bad#utf8', 'great running shoes #');
    const value = Buffer.from(good.value!);
    for (let i = value.indexOf('#'); i >= 0; i = value.indexOf('#', i + 1)) value[i] = 0xff; // lone 0xff: never valid UTF-8
    const key = Buffer.from('bad\xffutf8', 'latin1');
    const r = await core.processor.process([{ ...good, key, value, topic: config.topicReviews }]);
    expect(r.deadLetters).toEqual([]);
    expect(r.scored.map((o) => o.userId)).toEqual(['bad\ufffdutf8']);
  });

  it('reads an image by its bytes, not its declared content type; refuses GIF and SVG whatever is declared', async () => {
    const { core, rec, config } = await driver.coreWithCatalog();
    const jpeg = await productImage(CATEGORIES[0]!, seededRandom(3), 64, 'jpeg');
    const image = (userId: string, data: Buffer, contentType: string): ReturnType<typeof rec.raw> =>
      rec.raw(
        config.topicImageViews,
        userId,
        core.codec.encode('dev.adstream.events.ImageViewEvent', {
          eventId: `iv-${userId}`, userId, itemId: 'item', categoryId: null, imageId: `img-${userId}`,
          image: { 'dev.adstream.events.InlineImage': { data, contentType } }, dwellMs: null, eventTime: driver.now,
        }),
      );
    const gif = Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(64, 1)]);
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    const r = await core.processor.process([image('lies-png', jpeg, 'image/png'), image('gif', gif, 'image/jpeg'), image('svg', svg, 'image/png')]);
    expect(r.scored.map((o) => o.userId)).toEqual(['lies-png']);
    expect(r.deadLetters.map((d) => [d.source.key!.toString(), d.reason])).toEqual([['gif', 'IMAGE_UNREADABLE'], ['svg', 'IMAGE_UNREADABLE']]);
  });

  it('refuses a decompression bomb (a small PNG declaring more than IMAGE_MAX_PIXELS) before decoding it', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const bomb = await sharp({ create: { width: 6000, height: 5000, channels: 3, background: '#ffffff' } }).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(1 << 20); // 30 Mpx in well under a megabyte
    const r = await core.processor.process([rec.image('bomber', bomb)]);
    expect(r.scored).toEqual([]);
    expect(r.deadLetters.map((d) => d.reason)).toEqual(['IMAGE_UNREADABLE']);
    expect(r.deadLetters[0]!.message).toMatch(/pixels, over the limit/);
  });
});
