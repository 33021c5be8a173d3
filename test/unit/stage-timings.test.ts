/**
 * Stage timings come back with each call's result. The Kafka adapter runs up to 8 partitions'
 * chunks at once on one processor; timings kept on the processor would be whatever chunk wrote
 * last by the time a chunk's caller read them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CATEGORIES, productImage, seededRandom } from '../../src/devtools/synthetic.js';
import type { ChunkResult } from '../../src/pipeline/processor.js';
import { CoreDriver, testConfig } from './core-driver.js';

const driver = new CoreDriver();
afterAll(() => driver.close());

/** The call's result, and the seconds from `since` until it settled. */
async function timed(call: Promise<ChunkResult>, since: number): Promise<{ result: ChunkResult; wall: number }> {
  const result = await call;
  return { result, wall: (performance.now() - since) / 1000 };
}

const sum = (t: ChunkResult['timings']): number => t.decode + t.features + t.fusion + t.scoring;

describe('stage timings', () => {
  it('go to each of two concurrent chunks with that chunk’s own times', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    await core.processor.process([rec.click('bo', 'toys')]);
    const rand = seededRandom(5);
    // Images the core has not seen: sharp decodes them and the CNN encodes them (features take time).
    const images = await Promise.all(CATEGORIES.slice(0, 3).map((c) => productImage(c, rand, 64, 'png')));
    const viewing = images.map((img, i) => rec.image(`viewer-${i}`, img, { imageId: `fresh-${i}` }));
    // Deletions only: decoded (many: the longer decode of the two), no features, no fusion, no scoring.
    const deleting = [rec.deletion('bo'), ...Array.from({ length: 999 }, (_, i) => rec.deletion(`nobody-${i}`))];

    const t0 = performance.now();
    const [views, deletions] = await Promise.all([timed(core.processor.process(viewing), t0), timed(core.processor.process(deleting), t0)]);

    expect(views.result.scored).toHaveLength(3);
    expect(deletions.result.deletions).toHaveLength(1000);
    const v = views.result.timings;
    expect(v.features).toBeGreaterThan(0);
    expect(v.fusion).toBeGreaterThan(0);
    expect(v.scoring).toBeGreaterThan(0);
    expect(deletions.result.timings).toEqual({ decode: expect.any(Number), features: 0, fusion: 0, scoring: 0 });
    // The deletions ran while the images were being embedded; the images' decode is still their own.
    expect(v.decode).toBeLessThan(deletions.result.timings.decode);
    // No chunk is charged for more time than it took.
    expect(sum(v)).toBeLessThanOrEqual(views.wall);
    expect(sum(deletions.result.timings)).toBeLessThanOrEqual(deletions.wall);
  });

  it('come with a flush of rate-limited outputs: scoring only', async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ emitIntervalMs: 60_000 }));
    await core.processor.process([rec.click('cy', 'shoes', { eventId: 'c1' })]);
    const waiting = await core.processor.process([rec.click('cy', 'shoes', { eventId: 'c2' })]);
    expect(waiting.scored).toEqual([]);
    driver.now += 120_000;
    try {
      const flushed = await core.processor.flushDue();
      expect(flushed.scored.map((o) => o.eventIds)).toEqual([['c2']]);
      expect(flushed.timings).toEqual({ decode: 0, features: 0, fusion: 0, scoring: expect.any(Number) });
      expect(flushed.timings.scoring).toBeGreaterThan(0);
    } finally {
      driver.now -= 120_000;
    }
  });
});
