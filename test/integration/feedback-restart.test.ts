/**
 * Attribution across a restart on a real broker: impressions attributed by one instance, which
 * stops; a second instance, on an empty state folder (so everything comes from the changelog),
 * takes the clicks and the reports that close the windows, and the examples are those one instance
 * would have given: the clicked impression a positive, the other a negative, features as served.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { KafkaProducer } from '../../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { startKafkaProcessor, type RunningProcessor } from '../../src/app/processor.js';
import { createLogger } from '../../src/util/log.js';
import { codec, committedOffsets, configOf, eventually, isolatedEnv, kafkaForTests, type ProcessorWithAds, type ReadRecord, startProcessorWithAds } from '../support/harness.js';
import { Accepts } from '../../src/serde/record-names.js';

interface Example {
  readonly exampleId: string;
  readonly label: number;
  readonly interest: number[];
  readonly ad: number[];
}

const USERS = ['rs-ann', 'rs-bo', 'rs-cy'];

describe('attribution survives a restart on a real broker', () => {
  const env = isolatedEnv({ ATTRIBUTION_WINDOW_S: '2', ATTRIBUTION_CAPTURE: 'always' });
  const config = configOf(env);
  const kafka = kafkaForTests();
  let first: ProcessorWithAds | undefined;
  let second: RunningProcessor | undefined;
  afterAll(async () => {
    await second?.stop();
    await first?.stop();
  });

  const feedback = (userId: string, adId: string, kind: string, feedbackId: string, eventTime: number, outputId: string | null = null, position = 0): { key: Buffer; value: Buffer } => ({
    key: Buffer.from(userId),
    value: codec.encode('dev.adstream.feedback.AdFeedback', { feedbackId, userId, adId, outputId, position, kind, eventTime }),
  });

  it('an impression before the restart and its click after it give the positive; the other impression a negative once the window passes', async () => {
    first = await startProcessorWithAds(kafka, config, 2, [config.topicScored, config.topicTrainingExamples]);
    const { producer, outputs } = first;
    const of = (topic: string): ReadRecord[] => outputs.records.filter((r) => r.topic === topic);
    const t0 = Date.now();
    await producer.send([{ topic: config.topicClicks, records: USERS.map((userId, i) => ({ key: Buffer.from(userId), value: codec.encode('dev.adstream.events.ClickEvent', { eventId: `rs-e${i}`, userId, itemId: 'i', categoryId: 'toys', action: 'CLICK', eventTime: t0, sessionId: null }) })) }]);
    const scored = (): ScoredOutput[] => of(config.topicScored).map((r) => codec.decode<ScoredOutput>(r.value, Accepts.scored).value);
    expect(await eventually(() => scored().length >= USERS.length, 30_000)).toBe(true);
    const served = scored().slice(0, USERS.length);

    // Before the restart: two impressions per user, attributed and committed (nothing labelled yet).
    const impressions = served.flatMap((o) => o.candidates.slice(0, 2).map((c, i) => feedback(o.userId, c.adId, 'IMPRESSION', `${o.userId}-imp-${i}`, t0 + 100, o.outputId, i)));
    await send(producer, config.topicAdFeedback, impressions);
    const committedFeedback = async (): Promise<bigint> => [...(await committedOffsets(kafka, config.groupId, [config.topicAdFeedback])).values()].reduce((n, o) => n + (o > 0n ? o : 0n), 0n);
    expect(await eventually(async () => (await committedFeedback()) === BigInt(impressions.length), 30_000, 100)).toBe(true);
    await first.processor.stop();
    expect(of(config.topicTrainingExamples)).toEqual([]);

    // After: a new instance with an empty local store (all of it from the changelog) gets the clicks, then a report per user that closes the windows.
    second = await startKafkaProcessor(configOf({ ...env, STATE_DIR: mkdtempSync(join(tmpdir(), 'adstream-state-restart-')) }), createLogger('warn'));
    const clicks = served.map((o) => feedback(o.userId, o.candidates[0]!.adId, 'CLICK', `${o.userId}-clk-0`, t0 + 400, o.outputId, 0));
    await send(producer, config.topicAdFeedback, clicks);
    await send(producer, config.topicAdFeedback, USERS.map((u) => feedback(u, 'no-such-ad', 'IMPRESSION', `${u}-closer`, t0 + 10_000)));

    const examples = (): Example[] => of(config.topicTrainingExamples).map((r) => codec.decode<Example>(r.value, Accepts.trainingExample).value);
    expect(await eventually(() => examples().length >= 2 * USERS.length, 30_000)).toBe(true);
    expect(examples().map((e) => `${e.exampleId}:${e.label}`).sort()).toEqual(served.flatMap((o) => [`${o.userId}-imp-0:1`, `${o.userId}-imp-1:0`]).sort());
    for (const e of examples()) {
      expect(e.interest.length).toBeGreaterThan(0);
      expect(e.ad).toHaveLength(e.interest.length);
    }
  });
});

async function send(producer: KafkaProducer, topic: string, records: { key: Buffer; value: Buffer }[]): Promise<void> {
  await producer.send([{ topic, records }]);
}
