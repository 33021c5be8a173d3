/**
 * The HNSW index follows the ad topic on a real broker: an ad deactivated on `ads` is in no output
 * scored one catalog interval (CATALOG_UPLOAD_INTERVAL_MS) after the deactivation was produced,
 * and comes back once reactivated, with no rebuild (RETRIEVAL=ann: the index answers every query).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaProducer } from '../../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import type { SyntheticAd } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import type { RunningProcessor } from '../../src/app/processor.js';
import { codec, configOf, eventually, isolatedEnv, kafkaForTests, type ProcessorWithAds, type ReadRecord, startProcessorWithAds } from '../support/harness.js';
import { Accepts } from '../../src/serde/record-names.js';

const INTERVAL_MS = 1000;

describe('Ad index on a real broker', () => {
  const config = configOf(isolatedEnv({ RETRIEVAL: 'ann', CATALOG_UPLOAD_INTERVAL_MS: String(INTERVAL_MS), CHUNK_MAX_RECORDS: '1' }));
  const kafka = kafkaForTests();
  let producer: KafkaProducer;
  let processor: RunningProcessor;
  let outputs: { records: ReadRecord[]; stop(): Promise<void> };
  let ads: SyntheticAd[];
  let clicks = 0;

  let running: ProcessorWithAds | undefined;

  beforeAll(async () => {
    running = await startProcessorWithAds(kafka, config, 3, [config.topicScored]);
    ({ producer, processor, outputs, ads } = running);
  });

  afterAll(async () => {
    await running?.stop();
  });

  const scored = (): ScoredOutput[] => outputs.records.map((r) => codec.decode<ScoredOutput>(r.value, Accepts.scored).value);
  /** One click on a toys item; resolves with its output. */
  async function click(): Promise<ScoredOutput> {
    const eventId = `c-${clicks++}`;
    const value = codec.encode('dev.adstream.events.ClickEvent', { eventId, userId: 'toy-fan', itemId: 'i', categoryId: 'toys', action: 'CLICK', eventTime: Date.now(), sessionId: null });
    await producer.send([{ topic: config.topicClicks, records: [{ key: Buffer.from('toy-fan'), value }] }]);
    let out: ScoredOutput | undefined;
    expect(await eventually(() => (out = scored().find((o) => o.eventIds.includes(eventId))) !== undefined, 20_000, 50)).toBe(true);
    return out!;
  }
  const adIds = (o: ScoredOutput): string[] => o.candidates.map((c) => c.adId);

  it('drops a deactivated ad from outputs within one catalog interval, and takes it back when reactivated', async () => {
    const top = (await click()).candidates[0]!.adId;
    const ad = ads.find((a) => a.adId === top)!;
    const deactivatedAt = Date.now();
    await producer.send([{ topic: config.topicAds, records: [{ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, deactivatedAt, false) }] }]);
    // Clicks until one is scored an interval after the deactivation: from then on the ad is gone.
    let out: ScoredOutput;
    do out = await click();
    while (out.processingTime < deactivatedAt + INTERVAL_MS);
    expect(adIds(out)).not.toContain(top);
    expect(adIds(await click())).not.toContain(top);
    expect(processor.core.catalog.get(top)?.active).toBe(false);

    await producer.send([{ topic: config.topicAds, records: [{ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now() + 1, true) }] }]);
    expect(await eventually(async () => adIds(await click())[0] === top, 20_000, 100)).toBe(true);
  });
});
