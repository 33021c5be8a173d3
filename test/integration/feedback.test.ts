/**
 * The feedback loop on a real broker: scored outputs out, the ad server's impressions and clicks in
 * on the ad-feedback topic, labelled training examples back on their topic; a bad report is a dead
 * letter, and every feedback record's offset is committed once what it produced is acknowledged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaProducer } from '../../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import type { RunningProcessor } from '../../src/app/processor.js';
import { codec, committedOffsets, configOf, eventually, isolatedEnv, kafkaForTests, type ProcessorWithAds, type ReadRecord, startProcessorWithAds } from '../support/harness.js';
import { Accepts } from '../../src/serde/record-names.js';

interface Example {
  readonly exampleId: string;
  readonly userId: string;
  readonly adId: string;
  readonly outputId: string | null;
  readonly label: number;
  readonly interest: number[];
  readonly ad: number[];
}

const USERS = ['fb-ann', 'fb-bo', 'fb-cy', 'fb-di'];

describe('ad feedback into training examples on a real broker', () => {
  const config = configOf(isolatedEnv({ ATTRIBUTION_WINDOW_S: '1', ATTRIBUTION_CAPTURE: 'always' }));
  const kafka = kafkaForTests();
  let producer: KafkaProducer;
  let processor: RunningProcessor;
  let out: { records: ReadRecord[]; stop(): Promise<void> };

  let running: ProcessorWithAds | undefined;

  beforeAll(async () => {
    running = await startProcessorWithAds(kafka, config, 2, [config.topicScored, config.topicTrainingExamples, config.topicDeadLetters]);
    ({ producer, processor, outputs: out } = running);
  });

  afterAll(async () => {
    await running?.stop();
  });

  const of = (topic: string): ReadRecord[] => out.records.filter((r) => r.topic === topic);
  const feedback = (userId: string, adId: string, kind: string, feedbackId: string, eventTime: number, outputId: string | null = null, position = 0): { key: Buffer; value: Buffer } => ({
    key: Buffer.from(userId),
    value: codec.encode('dev.adstream.feedback.AdFeedback', { feedbackId, userId, adId, outputId, position, kind, eventTime }),
  });

  it('labels impressions by their clicks and produces the examples; bad feedback is dead-lettered; offsets committed', async () => {
    const t0 = Date.now();
    await producer.send([{ topic: config.topicClicks, records: USERS.map((userId, i) => ({ key: Buffer.from(userId), value: codec.encode('dev.adstream.events.ClickEvent', { eventId: `fb-e${i}`, userId, itemId: 'i', categoryId: 'toys', action: 'CLICK', eventTime: t0, sessionId: null }) })) }]);
    const scored = (): ScoredOutput[] => of(config.topicScored).map((r) => codec.decode<ScoredOutput>(r.value, Accepts.scored).value);
    expect(await eventually(() => scored().length >= USERS.length, 30_000)).toBe(true);

    // Per user: the top two shown, the first clicked; after all of them (the watermark is the
    // partition's), a report 5 s later per user closes the 1 s windows on every partition.
    const shown = scored().flatMap((o) => {
      const [a, b] = o.candidates;
      return [
        feedback(o.userId, a!.adId, 'IMPRESSION', `${o.userId}-imp-0`, t0 + 100, o.outputId, 0),
        feedback(o.userId, b!.adId, 'IMPRESSION', `${o.userId}-imp-1`, t0 + 100, o.outputId, 1),
        feedback(o.userId, a!.adId, 'CLICK', `${o.userId}-clk-0`, t0 + 400, o.outputId, 0),
      ];
    });
    const reports = [...shown, ...USERS.map((u) => feedback(u, 'no-such-ad', 'IMPRESSION', `${u}-closer`, t0 + 5000))];
    const bad = feedback('fb-ann', 'x', 'IMPRESSION', 'bad', t0);
    await producer.send([{ topic: config.topicAdFeedback, records: [...reports, { key: Buffer.from('mallory'), value: bad.value }] }]);

    const examples = (): Example[] => of(config.topicTrainingExamples).map((r) => codec.decode<Example>(r.value, Accepts.trainingExample).value);
    expect(await eventually(() => examples().length >= 2 * USERS.length, 30_000)).toBe(true);
    const got = examples();
    expect(got.map((e) => `${e.exampleId}:${e.label}`).sort()).toEqual(USERS.flatMap((u) => [`${u}-imp-0:1`, `${u}-imp-1:0`]).sort());
    for (const r of of(config.topicTrainingExamples)) {
      const e = codec.decode<Example>(r.value, Accepts.trainingExample).value;
      expect(r.key?.toString()).toBe(e.userId); // keyed by user, like the rest
      expect(e.interest.length).toBeGreaterThan(0);
      expect(e.interest).toHaveLength(e.ad.length);
    }
    expect(await eventually(() => of(config.topicDeadLetters).length >= 1, 10_000)).toBe(true);
    const dead = of(config.topicDeadLetters).map((r) => codec.decode<{ sourceTopic: string; reason: string }>(r.value, Accepts.deadLetter).value);
    expect(dead).toEqual([expect.objectContaining({ sourceTopic: config.topicAdFeedback, reason: 'KEY_MISMATCH' })]);

    // Nothing lost: every feedback record's offset is committed (after its outputs were acknowledged).
    await processor.stop(); // afterAll's stop() then waits on this same stop
    const committed = await committedOffsets(kafka, config.groupId, [config.topicAdFeedback]);
    expect([...committed.values()].reduce((n, o) => n + (o > 0n ? o : 0n), 0n)).toBe(BigInt(reports.length + 1));
  });
});
