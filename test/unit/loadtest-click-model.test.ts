import { describe, expect, it } from 'vitest';
import { ClickModel, DEFAULT_CLICK_MODEL, validateClickModelSpec, type ClickWorld } from '../../loadtest/click-model.js';
import { DEFAULT_WORLD_SPEC, World } from '../../loadtest/world.js';

const world: ClickWorld = {
  ads: [
    { adId: 'shoes-0', categoryId: 'shoes' }, { adId: 'shoes-1', categoryId: 'shoes' },
    { adId: 'books-0', categoryId: 'books' }, { adId: 'toys-0', categoryId: 'toys' },
  ],
  users: [{ userId: 'u', mixture: [{ categoryId: 'shoes', weight: 0.7 }, { categoryId: 'books', weight: 0.3 }] }],
};
const logit = (p: number): number => Math.log(p / (1 - p));

describe('the hidden click model', () => {
  it('is deterministic for a seed, and another seed draws other qualities', async () => {
    const a = new ClickModel(DEFAULT_CLICK_MODEL, world, 9);
    const b = new ClickModel(DEFAULT_CLICK_MODEL, world, 9);
    const c = new ClickModel(DEFAULT_CLICK_MODEL, world, 10);
    const all = (m: ClickModel): number[] => world.ads.flatMap((ad) => [0, 3, 9].map((s) => m.probability('u', ad.adId, s)));
    expect(all(a)).toEqual(all(b));
    expect(all(c)).not.toEqual(all(a));
    // The world builds its own from its seed: two builds of one spec agree.
    const small = { ...DEFAULT_WORLD_SPEC, users: 20, adsPerCategory: 2, imagesPerCategory: 1, itemsPerCategory: 10 };
    const [w1, w2] = [await World.create(small), await World.create(small)];
    expect(w1.ads.map((ad) => w1.clickModel.probability('wuser-3', ad.adId, 2))).toEqual(w2.ads.map((ad) => w2.clickModel.probability('wuser-3', ad.adId, 2)));
  });

  it('falls with the position: slot s is clicked 1 / (1 + s)^positionDecay times as often as slot 0', () => {
    const m = new ClickModel(DEFAULT_CLICK_MODEL, world, 9);
    for (const ad of world.ads) {
      const p = Array.from({ length: 20 }, (_, s) => m.probability('u', ad.adId, s));
      for (let s = 1; s < p.length; s++) {
        expect(p[s]!).toBeLessThan(p[s - 1]!);
        expect(p[s]! / p[0]!).toBeCloseTo(1 / (1 + s) ** DEFAULT_CLICK_MODEL.positionDecay, 12);
      }
    }
  });

  it('rises with the weight of the ad\'s category in the user\'s hidden mixture, on top of the ad\'s quality', () => {
    const flat = new ClickModel({ ...DEFAULT_CLICK_MODEL, qualitySd: 0 }, world, 9);
    // shoes (0.7) > books (0.3) > toys (not in the mixture); equal within a category.
    expect(flat.probability('u', 'shoes-0', 0)).toBeGreaterThan(flat.probability('u', 'books-0', 0));
    expect(flat.probability('u', 'books-0', 0)).toBeGreaterThan(flat.probability('u', 'toys-0', 0));
    expect(flat.probability('u', 'shoes-0', 0)).toBe(flat.probability('u', 'shoes-1', 0));
    const s = DEFAULT_CLICK_MODEL;
    expect(logit(flat.probability('u', 'toys-0', 0))).toBeCloseTo(s.base, 9);
    expect(logit(flat.probability('u', 'shoes-0', 0))).toBeCloseTo(s.base + 0.7 * s.affinity, 9);
    // With quality: the logit at slot 0 is base + affinity x weight + the ad's quality.
    const m = new ClickModel(s, world, 9);
    for (const ad of world.ads) {
      expect(logit(m.probability('u', ad.adId, 0))).toBeCloseTo(s.base + s.affinity * m.affinityOf('u', ad.adId) + m.qualityOf(ad.adId), 9);
    }
    expect(new Set(world.ads.map((ad) => m.qualityOf(ad.adId))).size).toBe(world.ads.length);
  });

  it('refuses a bad spec by the field', () => {
    expect(() => validateClickModelSpec({ ...DEFAULT_CLICK_MODEL, qualitySd: -1 })).toThrow(/clickModel.qualitySd/);
    expect(() => validateClickModelSpec({ ...DEFAULT_CLICK_MODEL, base: Number.NaN })).toThrow(/clickModel.base/);
  });
});
