import { describe, expect, it } from 'vitest';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { DEFAULT_WORLD_SPEC, EVENT_ROLES, loadWorldSpec, sampleCdf, validateWorldSpec, World, zipfCdf, type WorldSpec } from '../../loadtest/world.js';

const codec = new AvroCodec();
const small: WorldSpec = { ...DEFAULT_WORLD_SPEC, users: 200, imagesPerCategory: 3, adsPerCategory: 3, itemsPerCategory: 100 };

describe('synthetic world', () => {
  it('is deterministic for a seed: same images, ads, users and events', async () => {
    const a = await World.create(small);
    const b = await World.create(small);
    const c = await World.create({ ...small, seed: 7 });
    expect(a.users).toEqual(b.users);
    expect(a.ads.map((x) => [x.adId, x.title, x.image.toString('base64')])).toEqual(b.ads.map((x) => [x.adId, x.title, x.image.toString('base64')]));
    expect(a.images.get('shoes')![0]!.data.equals(b.images.get('shoes')![0]!.data)).toBe(true);
    const ta = a.traffic(codec);
    const tb = b.traffic(codec);
    for (let i = 0; i < 200; i++) {
      const x = ta.next(1_000);
      const y = tb.next(1_000);
      expect(x.value.equals(y.value)).toBe(true);
    }
    expect(c.users).not.toEqual(a.users);
    for (const u of a.users) {
      expect(u.mixture.length).toBeGreaterThanOrEqual(1);
      expect(u.mixture.length).toBeLessThanOrEqual(3);
      expect(u.mixture.reduce((s, m) => s + m.weight, 0)).toBeCloseTo(1, 9);
    }
  });

  it('draws items with a Zipf skew', () => {
    const cdf = zipfCdf(100, 1.1);
    const counts = new Array<number>(100).fill(0);
    let x = 1;
    for (let i = 0; i < 100_000; i++) {
      x = (x * 16807) % 2147483647;
      counts[sampleCdf(cdf, x / 2147483647)]!++;
    }
    // Zipf(1.1): rank 1 vs rank 10 is 10^1.1 = 12.6x; the top 10 % hold over half the draws.
    expect(counts[0]! / counts[9]!).toBeGreaterThan(9);
    expect(counts[0]! / counts[9]!).toBeLessThan(17);
    expect(counts.slice(0, 10).reduce((a, b) => a + b, 0) / 100_000).toBeGreaterThan(0.5);
    // s = 0: uniform.
    const flat = zipfCdf(4, 0);
    expect([...flat]).toEqual([0.25, 0.5, 0.75, 1]);
  });

  it('honours the event mix and the noise level of each modality', async () => {
    const spec: WorldSpec = { ...small, noise: { click: 0.05, image: 0.3, review: 0.6 }, eventMix: { click: 0.5, image: 0.3, review: 0.2 } };
    const w = await World.create(spec);
    const t = w.traffic(codec, { seed: 5 });
    const n = { click: 0, image: 0, review: 0 };
    const noisy = { click: 0, image: 0, review: 0 };
    const off = { click: 0, image: 0, review: 0 };
    const mixtureOf = new Map(w.users.map((u) => [u.userId, new Set(u.mixture.map((m) => m.categoryId))]));
    const N = 40_000;
    for (let i = 0; i < N; i++) {
      const e = t.next(1_000);
      n[e.role]++;
      if (e.noise) noisy[e.role]++;
      if (!mixtureOf.get(e.userId)!.has(e.categoryId)) off[e.role]++;
    }
    for (const m of EVENT_ROLES) {
      expect(n[m] / N).toBeCloseTo(spec.eventMix[m], 1);
      expect(Math.abs(noisy[m] / n[m] - spec.noise[m])).toBeLessThan(0.02);
      // Off-interest only through noise, and noise lands off-interest unless it hits the mixture by chance.
      expect(off[m]).toBeLessThanOrEqual(noisy[m]);
      expect(off[m] / n[m]).toBeGreaterThan(spec.noise[m] * 0.5);
    }
  });

  it('holds out the last share of each user timeline, and the default world file loads', async () => {
    const spec = loadWorldSpec('loadtest/worlds/default.json');
    expect(spec.users).toBeGreaterThan(0);
    const w = await World.create({ ...small, users: 20, eval: { eventsPerUser: 10, timelineSeconds: 600, holdoutShare: 0.2 } });
    const tl = w.timeline(codec, 10_000_000);
    expect(tl.length).toBe(200);
    expect(tl.filter((e) => e.heldOut).length).toBe(40);
    const times = tl.map((e) => e.event.eventTime);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // Per user, held-out events come after the kept ones.
    for (const u of w.users) {
      const mine = tl.filter((e) => e.event.userId === u.userId);
      const firstHeld = mine.findIndex((e) => e.heldOut);
      expect(mine.slice(firstHeld).every((e) => e.heldOut)).toBe(true);
    }
    expect(() => validateWorldSpec({ ...spec, users: 0 })).toThrow(/users/);
    expect(() => validateWorldSpec({ ...spec, noise: { ...spec.noise, image: 1.5 } })).toThrow(/noise.image/);
  });
});
