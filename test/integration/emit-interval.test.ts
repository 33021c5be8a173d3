/**
 * Rate-limited emission on a real broker: with EMIT_INTERVAL_MS a burst of one user's events gives
 * few scored outputs, and the timer flushes the rest, so every event still reaches an output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaProducer } from '../../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import type { RunningProcessor } from '../../src/app/processor.js';
import { codec, configOf, eventually, isolatedEnv, kafkaForTests, type ProcessorWithAds, type ReadRecord, sleep, startProcessorWithAds } from '../support/harness.js';
import { Accepts } from '../../src/serde/record-names.js';

const SCORED = Accepts.scored;
const INTERVAL_MS = 1500;

describe('EMIT_INTERVAL_MS on a real broker', () => {
  const config = configOf(isolatedEnv({ EMIT_INTERVAL_MS: String(INTERVAL_MS), CHUNK_MAX_RECORDS: '1' }));
  const kafka = kafkaForTests();
  let producer: KafkaProducer;
  let processor: RunningProcessor;
  let outputs: { records: ReadRecord[]; stop(): Promise<void> };

  let running: ProcessorWithAds | undefined;

  beforeAll(async () => {
    running = await startProcessorWithAds(kafka, config, 2, [config.topicScored]);
    ({ producer, processor, outputs } = running);
  });

  afterAll(async () => {
    await running?.stop();
  });

  it('emits a user at most once per interval and flushes the pending events on the timer', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `burst-${i}`);
    // One record per chunk (CHUNK_MAX_RECORDS=1), sent 100 ms apart: eight chances to emit.
    for (const eventId of ids) {
      const value = codec.encode('dev.adstream.events.ClickEvent', { eventId, userId: 'bursty', itemId: 'i', categoryId: 'toys', action: 'CLICK', eventTime: Date.now(), sessionId: null });
      await producer.send([{ topic: config.topicClicks, records: [{ key: Buffer.from('bursty'), value }] }]);
      await sleep(100);
    }
    const scored = (): ScoredOutput[] => outputs.records.map((r) => codec.decode<ScoredOutput>(r.value, SCORED).value);
    const covered = (): string[] => scored().flatMap((o) => o.eventIds);
    expect(await eventually(() => ids.every((id) => covered().includes(id)), 3 * INTERVAL_MS + 10_000, 100)).toBe(true);
    const outs = scored();
    // 8 events over ~0.8 s with a 1.5 s interval: the first is emitted at once, the rest together later.
    expect(outs.map((o) => o.eventIds)).toEqual([ids.slice(0, 1), ids.slice(1)]);
    for (let i = 1; i < outs.length; i++) expect(outs[i]!.processingTime - outs[i - 1]!.processingTime).toBeGreaterThanOrEqual(INTERVAL_MS - 50);
    expect(outs[outs.length - 1]!.candidates[0]!.categoryId).toBe('toys');
  });
});
