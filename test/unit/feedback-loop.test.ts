/**
 * The feedback loop in the core, with no broker: what the ranker served is captured with copies of
 * the vectors it scored, ad feedback comes in on its own topic, and labelled training examples come
 * out in the chunk's result, with the features as served (never the user's or the ad's later state).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { encodeAd } from '../../src/devtools/traffic.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { CoreDriver, NOW, testConfig } from './core-driver.js';

const driver = new CoreDriver();
afterAll(() => driver.close());

function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const s = 1 / Math.sqrt(n);
  return v.map((x) => x * s);
}

// The first test starts a core (models, worker threads): on a loaded machine that alone can take seconds.
describe('feedback into training examples in the core', { timeout: 60_000 }, () => {
  it('labels a clicked impression a positive with the features as served, not as they are later', async () => {
    const { core, rec, config } = await driver.coreWithCatalog(testConfig({ attributionWindowS: 60, attributionCapture: 'always' }));
    const first = await core.processor.process([rec.click('ann', 'shoes', { t: NOW })]);
    const served = first.scored[0]!;
    const offered = served.candidates[0]!;
    // What the ranker scored: the user's (only) interest, normalised, and the ad's fused vector, now.
    const interestThen = unit(core.users.get('ann')!.interests[0]!.vector.slice());
    const adThen = core.catalog.vectorOf(offered.adId)!.slice();

    // Later state: more of the user's events, and the offered ad re-embedded (a new title and picture).
    driver.now += 1000;
    await core.processor.process([rec.click('ann', 'shoes', { t: driver.now, item: 'item-shoes-7', action: 'PURCHASE' }), rec.click('ann', 'shoes', { t: driver.now, item: 'item-shoes-9' })]);
    const ad = (await driver.catalog()).find((a) => a.adId === offered.adId)!;
    const other = (await driver.catalog()).find((a) => a.categoryId !== ad.categoryId)!;
    await core.catalogUpdater.apply([rec.raw(config.topicAds, ad.adId, encodeAd(core.codec, { ...ad, title: other.title, description: other.description, image: other.image }, driver.now))]);
    expect(unit(core.users.get('ann')!.interests[0]!.vector.slice())).not.toEqual(interestThen);
    expect(core.catalog.vectorOf(offered.adId)).not.toEqual(adThen);

    const r = await core.processor.process([
      rec.feedback('ann', offered.adId, 'IMPRESSION', { feedbackId: 'imp-1', outputId: served.outputId, position: 0, t: NOW + 2000 }),
      rec.feedback('ann', offered.adId, 'CLICK', { feedbackId: 'clk-1', outputId: served.outputId, position: 0, t: NOW + 5000 }),
    ]);
    expect(r.deadLetters).toEqual([]);
    expect(r.examples).toHaveLength(1);
    const e = r.examples![0]!;
    expect(e).toMatchObject({ exampleId: 'imp-1', userId: 'ann', adId: offered.adId, outputId: served.outputId, position: 0, servedAt: NOW + 2000, label: 1, modelVersion: served.modelVersion });
    expect(e.servedCtr).toBeGreaterThan(0);
    expect(e.servedCtr).toBeLessThan(1);
    for (let i = 0; i < e.interest.length; i++) expect(e.interest[i]).toBeCloseTo(interestThen[i]!, 5);
    expect(e.ad).toEqual(adThen);
  });

  it("takes the interest that matched the ad, of a user with several", async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ attributionWindowS: 60, attributionCapture: 'always' }));
    const out = (await core.processor.process([rec.click('eve', 'shoes', { t: NOW }), rec.click('eve', 'phones', { t: NOW })])).scored[0]!;
    const interests = core.users.get('eve')!.interests.map((it) => unit(it.vector.slice()));
    expect(interests.length).toBeGreaterThan(1);
    const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
    const feedback = out.candidates.map((c, i) => rec.feedback('eve', c.adId, 'IMPRESSION', { feedbackId: `imp-${i}`, outputId: out.outputId, position: i, t: NOW + 1 }));
    const adVectors = out.candidates.map((c) => core.catalog.vectorOf(c.adId)!.slice());
    await core.processor.process(feedback);
    const r = await core.processor.process([rec.feedback('eve', 'x', 'IMPRESSION', { t: NOW + 120_000 })]); // closes the windows: all negatives
    expect(r.examples).toHaveLength(out.candidates.length);
    const rowsUsed = new Set<number>();
    for (const e of r.examples!) {
      const ad = adVectors[e.position]!;
      // The ranker's rule: an ad's match is the interest most similar to it.
      const best = interests.reduce((b, v, i) => (dot(v, ad) > dot(interests[b]!, ad) ? i : b), 0);
      rowsUsed.add(best);
      for (let i = 0; i < e.interest.length; i++) expect(e.interest[i]).toBeCloseTo(interests[best]![i]!, 5);
    }
    expect(rowsUsed.size).toBeGreaterThan(1); // the output offered ads matched by different interests
  });

  it('labels an impression with no click by the end of the window a negative, once event time passes it', async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ attributionWindowS: 60, attributionCapture: 'always' }));
    const out: ScoredOutput = (await core.processor.process([rec.click('bo', 'phones', { t: NOW })])).scored[0]!;
    const [a, b] = out.candidates;
    const r1 = await core.processor.process([rec.feedback('bo', b!.adId, 'IMPRESSION', { feedbackId: 'imp-b', outputId: out.outputId, position: 1, t: NOW + 1000 })]);
    expect(r1.examples).toEqual([]); // its window is open
    // Another report 61 s later moves the watermark past the window: the impression is a negative.
    const r2 = await core.processor.process([rec.feedback('bo', a!.adId, 'IMPRESSION', { feedbackId: 'imp-a', outputId: out.outputId, position: 0, t: NOW + 62_000 })]);
    expect(r2.examples!.map((e) => [e.exampleId, e.adId, e.position, e.label])).toEqual([['imp-b', b!.adId, 1, 0]]);
    // A click within its window that arrives now is late: its example is out already.
    const r3 = await core.processor.process([rec.feedback('bo', b!.adId, 'CLICK', { feedbackId: 'clk-b', outputId: out.outputId, t: NOW + 30_000 })]);
    expect(r3.examples).toEqual([]);
    expect(core.feedback!.counts()).toMatchObject({ impressions: 2, clicks: 1, negatives: 1, late: 1 });
  });

  it('dead-letters bad feedback with a reason, in a chunk with events, and counts unmatched impressions', async () => {
    const { core, rec, config } = await driver.coreWithCatalog();
    const r = await core.processor.process([
      rec.click('cy', 'garden'),
      rec.feedback('cy', 'ad-x', 'IMPRESSION', { key: 'mallory' }),
      rec.feedback('cy', 'ad-x', 'IMPRESSION', { position: -1 }),
      rec.raw(config.topicAdFeedback, 'cy', Buffer.from('{"kind":"CLICK"}')),
      rec.raw(config.topicAdFeedback, 'cy', rec.click('cy', 'garden').value),
      rec.feedback('cy', 'ad-never-served', 'IMPRESSION', { feedbackId: 'imp-u' }),
    ]);
    expect(r.scored.map((o) => o.userId)).toEqual(['cy']);
    expect(r.deadLetters.map((d) => [d.source.topic, d.reason])).toEqual([
      [config.topicAdFeedback, 'KEY_MISMATCH'],
      [config.topicAdFeedback, 'INVALID_FIELD'],
      [config.topicAdFeedback, 'BAD_FRAMING'],
      [config.topicAdFeedback, 'WRONG_SCHEMA'],
    ]);
    expect(r.examples).toEqual([]);
    expect(core.feedback!.counts()).toMatchObject({ impressions: 1, unmatched: 1 });
  });
});
