/**
 * The whole path on a real broker: events of each kind in, scored candidates and dead letters out,
 * read back by an independent consumer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaProducer } from '../../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { CATEGORIES, productImage, seededRandom, syntheticAds } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import { createLogger } from '../../src/util/log.js';
import { startKafkaProcessor, type RunningProcessor } from '../../src/app/processor.js';
import { codec, collect, configOf, createTopics, connectedProducer, eventually, isolatedEnv, kafkaForTests, type ReadRecord } from '../support/harness.js';
import { clientsUnderTest } from '../support/clients.js';
import { Accepts } from '../../src/serde/record-names.js';

const SCORED = Accepts.scored;
const DEAD = Accepts.deadLetter;

interface DeadLetter {
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: number;
  key: Buffer | null;
  value: Buffer | null;
  reason: string;
  message: string;
}

for (const client of clientsUnderTest()) {
  describe.skipIf(client.skipped !== null)(`pipeline on a real broker ${client.title}`, () => {
    const env = isolatedEnv({ ...client.env });
    const config = configOf(env);
    const kafka = kafkaForTests();
    let producer: KafkaProducer;
    let processor: RunningProcessor;
    let outputs: { records: ReadRecord[]; stop(): Promise<void> };

    beforeAll(async () => {
      producer = await connectedProducer(kafka);
      // The catalog goes in before the processor starts: it must load it fully before scoring.
      await createTopics(kafka, config);
      const ads = await syntheticAds(4);
      await producer.send([{ topic: config.topicAds, records: ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now()) })) }]);
      processor = await startKafkaProcessor(config, createLogger('warn'));
      expect(processor.core.catalog.activeCount).toBe(ads.length);
      outputs = await collect(kafka, [config.topicScored, config.topicDeadLetters]);
    });

    afterAll(async () => {
      await outputs?.stop();
      await processor?.stop();
      await producer?.disconnect();
    });

    const scoredFor = (userId: string): ScoredOutput[] =>
      outputs.records
        .filter((r) => r.topic === config.topicScored && r.key?.toString() === userId)
        .map((r) => codec.decode<ScoredOutput>(r.value, SCORED).value);
    const deadLetters = (): DeadLetter[] => outputs.records.filter((r) => r.topic === config.topicDeadLetters).map((r) => codec.decode<DeadLetter>(r.value, DEAD).value);

    it('scores users from clicks, image views and reviews, keyed by user id', async () => {
      const now = Date.now();
      const garden = CATEGORIES.find((c) => c.id === 'garden')!;
      const image = await productImage(garden, seededRandom(5), 64, 'webp');
      await producer.send([
        {
          topic: config.topicClicks,
          records: [
            { key: Buffer.from('u-click'), value: codec.encode('dev.adstream.events.ClickEvent', { eventId: 'it-c1', userId: 'u-click', itemId: 'i1', categoryId: 'toys', action: 'ADD_TO_CART', eventTime: now, sessionId: 's1' }) },
          ],
        },
      ]);
      await producer.send([
        {
          topic: config.topicImageViews,
          records: [
            {
              key: Buffer.from('u-image'),
              value: codec.encode('dev.adstream.events.ImageViewEvent', { eventId: 'it-i1', userId: 'u-image', itemId: 'i2', categoryId: null, imageId: 'garden-1', image: { 'dev.adstream.events.InlineImage': { data: image, contentType: 'image/webp' } }, dwellMs: 1200, eventTime: now }),
            },
          ],
        },
      ]);
      await producer.send([
        {
          topic: config.topicReviews,
          records: [{ key: Buffer.from('u-review'), value: codec.encode('dev.adstream.events.ReviewEvent', { eventId: 'it-r1', userId: 'u-review', itemId: 'i3', categoryId: null, rating: 5, text: '这本小说的故事和章节都很精彩', language: 'zh-CN', eventTime: now }) }],
        },
      ]);

      const expected: Record<string, [string, string]> = { 'u-click': ['it-c1', 'toys'], 'u-image': ['it-i1', 'garden'], 'u-review': ['it-r1', 'books'] };
      expect(await eventually(() => Object.keys(expected).every((u) => scoredFor(u).length > 0), 30_000)).toBe(true);
      for (const [userId, [eventId, category]] of Object.entries(expected)) {
        const [out] = scoredFor(userId);
        expect(out!.userId).toBe(userId);
        expect(out!.eventIds).toEqual([eventId]);
        expect(out!.triggerEventTime).toBe(now);
        expect(out!.processingTime).toBeGreaterThanOrEqual(now);
        expect(out!.candidates).toHaveLength(config.topK);
        expect(out!.candidates[0]!.categoryId).toBe(category);
        expect(out!.candidates[0]!.adId.startsWith(`ad-${category}-`)).toBe(true);
      }
    });

    it('sends a corrupt record to the dead-letter topic with its source offset and reason, and keeps going', async () => {
      const garbage = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x03, 0xff, 0xff, 0xff]);
      const [meta] = await producer.send([{ topic: config.topicReviews, records: [{ key: Buffer.from('u-bad'), value: garbage }] }]);
      const [metaNotAvro] = await producer.send([{ topic: config.topicClicks, records: [{ key: Buffer.from('u-bad'), value: Buffer.from('{"json":"not avro"}') }] }]);
      // A good event right after, on the same partition as the first bad one: it must still be scored.
      await producer.send([
        {
          topic: config.topicReviews,
          records: [{ key: Buffer.from('u-bad'), value: codec.encode('dev.adstream.events.ReviewEvent', { eventId: 'it-after', userId: 'u-bad', itemId: 'i', categoryId: 'sports', rating: 4, text: 'good yoga mat', language: null, eventTime: Date.now() }) }],
        },
      ]);

      expect(await eventually(() => deadLetters().length >= 2 && scoredFor('u-bad').length > 0, 30_000)).toBe(true);
      const dl = deadLetters();
      const decodeFailed = dl.find((d) => d.sourceTopic === config.topicReviews)!;
      expect(decodeFailed).toMatchObject({ sourcePartition: meta!.partition, sourceOffset: Number(meta!.baseOffset), reason: 'DECODE_FAILED' });
      expect(decodeFailed.value).toEqual(garbage);
      expect(decodeFailed.key?.toString()).toBe('u-bad');
      const badFraming = dl.find((d) => d.sourceTopic === config.topicClicks)!;
      expect(badFraming).toMatchObject({ sourcePartition: metaNotAvro!.partition, sourceOffset: Number(metaNotAvro!.baseOffset), reason: 'BAD_FRAMING' });
      expect(badFraming.message).toMatch(/magic byte/);
      expect(scoredFor('u-bad')[0]!.eventIds).toEqual(['it-after']);
    });

    it('exposes its metrics and readiness', async () => {
      expect(processor.isReady()).toBe(true);
      const text = await processor.metrics.registry.metrics();
      expect(text).toMatch(new RegExp(`adstream_dead_letters_total\\{topic="${config.topicReviews}",reason="DECODE_FAILED"\\} 1`));
      expect(text).toMatch(/adstream_e2e_latency_seconds_count [1-9]/);
    });
  });
}
