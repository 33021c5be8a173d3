import { describe, expect, it } from 'vitest';
import { ServingTally, SimulatedAdServer } from '../../loadtest/ad-server.js';
import { ClickModel, DEFAULT_CLICK_MODEL, type ClickWorld } from '../../loadtest/click-model.js';
import type { AdFeedback } from '../../src/domain/events.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { EventDecoder } from '../../src/pipeline/decode.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';

const codec = new AvroCodec();
const decoder = new EventDecoder(codec, { maxRecordBytes: 64 * 1024, maxTextChars: 200, maxClockSkewMs: 300_000, maxEventAgeMs: 30 * 86_400_000 });
const NOW = Date.UTC(2026, 0, 1);
const ADS = Array.from({ length: 15 }, (_, i) => ({ adId: `ad-${i}`, categoryId: i < 8 ? 'shoes' : 'books' }));
const world: ClickWorld = { ads: ADS, users: [{ userId: 'u1', mixture: [{ categoryId: 'shoes', weight: 1 }] }] };
const output: ScoredOutput = {
  outputId: 'out-1', userId: 'u1', modelVersion: 'm', triggerEventTime: NOW - 60_000, processingTime: NOW, eventIds: ['e1'],
  candidates: ADS.map((a, i) => ({ adId: a.adId, categoryId: a.categoryId, score: 1 - i / 100 })),
};
const DELAY = { min: 500, max: 20_000 };

function server(model: ClickModel, seed = 1): SimulatedAdServer {
  return new SimulatedAdServer(model, ADS.map((a) => a.adId), codec, { slots: 10, clickDelayMs: DELAY, seed, feedbackIdPrefix: 'fb' });
}

describe('the simulated ad server', () => {
  it('reports the top slots of an output as impressions and its clicks after them, as the processor decodes feedback', () => {
    // Clicks certain (a huge base logit): every shown ad is clicked.
    const sure = new ClickModel({ ...DEFAULT_CLICK_MODEL, base: 50, positionDecay: 0 }, world, 3);
    const shownAt = NOW - 50_000;
    const tally = new ServingTally();
    const records = server(sure).serve(output, shownAt, tally);
    const got: AdFeedback[] = records.map((r, i) => {
      expect(r.key?.toString()).toBe('u1');
      return decoder.decodeFeedback({ topic: 'ad-feedback', partition: 0, offset: String(i), key: r.key, value: r.value, timestamp: NOW }, NOW);
    });
    const impressions = got.filter((f) => f.kind === 'IMPRESSION');
    const clicks = got.filter((f) => f.kind === 'CLICK');
    expect(impressions.map((f) => [f.adId, f.position, f.outputId, f.eventTime])).toEqual(ADS.slice(0, 10).map((a, i) => [a.adId, i, 'out-1', shownAt]));
    expect(clicks.map((f) => [f.adId, f.position, f.outputId])).toEqual(ADS.slice(0, 10).map((a, i) => [a.adId, i, 'out-1']));
    for (const c of clicks) {
      expect(c.eventTime).toBeGreaterThanOrEqual(shownAt + DELAY.min);
      expect(c.eventTime).toBeLessThanOrEqual(shownAt + DELAY.max);
    }
    expect(new Set(got.map((f) => f.feedbackId)).size).toBe(got.length);
    expect([tally.pages, tally.impressions, tally.clicks]).toEqual([1, 10, 10]);
  });

  it('clicks with the hidden probability of the ad in its slot; the oracle shows the best by it', () => {
    const model = new ClickModel({ ...DEFAULT_CLICK_MODEL, base: -1.5 }, world, 3);
    const s = server(model, 7);
    const tally = new ServingTally();
    const clicksAt = new Float64Array(10);
    const pages = 4000;
    for (let n = 0; n < pages; n++) {
      for (const r of s.serve(output, NOW - 50_000, tally)) {
        const f = decoder.decodeFeedback({ topic: 't', partition: 0, offset: '0', key: r.key, value: r.value, timestamp: NOW }, NOW);
        if (f.kind === 'CLICK') clicksAt[f.position]!++;
      }
    }
    for (let pos = 0; pos < 10; pos++) {
      const p = model.probability('u1', ADS[pos]!.adId, pos);
      // Binomial: within 4.5 standard deviations (deterministic for the seed).
      expect(Math.abs(clicksAt[pos]! / pages - p)).toBeLessThan(4.5 * Math.sqrt((p * (1 - p)) / pages));
    }
    const expected = ADS.slice(0, 10).reduce((a, ad, pos) => a + model.probability('u1', ad.adId, pos), 0);
    expect(tally.expectedClicks / pages).toBeCloseTo(expected, 9);
    // The oracle's page: the 10 best of the 15 by true probability, best first.
    const best = ADS.map((a) => model.probability('u1', a.adId, 0)).sort((a, b) => b - a).slice(0, 10).reduce((a, p, pos) => a + p * model.positionBias(pos), 0);
    expect(tally.oracleCandidatesClicks / pages).toBeCloseTo(best, 9);
    expect(best).toBeGreaterThan(expected);
  });
});
