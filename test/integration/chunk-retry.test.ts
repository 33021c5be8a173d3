/**
 * A chunk whose delivery the real broker refuses is processed again in the same process (its
 * partition's task resets the state and rewinds the consumer to the chunk), after the fold already
 * changed its users' state: each event must still be counted once. The
 * fault is real: the scored-candidates topic is deleted under the running processor, so every
 * delivery carrying a scored output fails (the broker does not host the partition; the processor
 * never creates topics while running), then the topic is created again. The processor's client
 * gives up after 2 retries instead of 10, so that a send fails in about a second rather than half
 * a minute; the task then fetches the chunk's records again.
 */
import { createKafkaClient } from '../../src/adapters/kafka/client.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaAdmin, KafkaProducer } from '../../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { syntheticAds } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import { startKafkaProcessor, type RunningProcessor } from '../../src/app/processor.js';
import { Accepts } from '../../src/serde/record-names.js';
import { createLogger } from '../../src/util/log.js';
import { codec, collect, configOf, connectedProducer, createTopics, eventually, isolatedEnv, kafkaForTests, sleep, type ReadRecord } from '../support/harness.js';

const USERS = 6;
const EVENTS_PER_USER = 5;

describe('a chunk refused by the broker after its state change', () => {
  const config = configOf(isolatedEnv({ CHUNK_MAX_RECORDS: '50', INFERENCE_WORKERS: '1' }));
  const kafka = kafkaForTests();
  const lines: string[] = [];
  let producer: KafkaProducer;
  let processor: RunningProcessor;
  let admin: KafkaAdmin;
  let changelogRecords: { records: ReadRecord[]; stop(): Promise<void> };
  let scoredRecords: { records: ReadRecord[]; stop(): Promise<void> } | undefined;

  beforeAll(async () => {
    admin = await kafka.admin();
    await createTopics(kafka, config);
    producer = await connectedProducer(kafka);
    const ads = await syntheticAds(2);
    await producer.send([{ topic: config.topicAds, records: ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now()) })) }]);
    processor = await startKafkaProcessor(config, createLogger('warn', {}, (l) => void lines.push(l)), {
      createClient: (s) => createKafkaClient({ ...s, retry: { retries: 2, maxRetryTimeMs: 500 } }),
    });
    changelogRecords = await collect(kafka, [config.topicChangelog]);
  });

  afterAll(async () => {
    await scoredRecords?.stop();
    await changelogRecords?.stop();
    await processor?.stop();
    await producer?.disconnect();
    await admin?.disconnect();
  });

  it('restores the partition before the retry: each user holds each event once, in memory and in the changelog', async () => {
    const partitions = (await admin.partitionCounts([config.topicScored])).get(config.topicScored)!;
    await admin.deleteTopics([config.topicScored]);
    const ids: string[] = [];
    const records = [];
    for (let e = 0; e < EVENTS_PER_USER; e++) {
      for (let u = 0; u < USERS; u++) {
        const eventId = `u${u}-e${e}`;
        ids.push(eventId);
        const value = codec.encode('dev.adstream.events.ClickEvent', { eventId, userId: `user-${u}`, itemId: `i${e}`, categoryId: 'toys', action: 'CLICK', eventTime: Date.now(), sessionId: null });
        records.push({ key: Buffer.from(`user-${u}`), value });
      }
    }
    await producer.send([{ topic: config.topicClicks, records }]);

    // A delivery failed and the partition's task reset its state and rewound the consumer (it logs
    // both); a retry or two more, then the fault ends.
    const refused = await eventually(() => lines.some((l) => l.includes('a chunk failed: resetting the partition')), 60_000);
    if (!refused) console.log(lines.map((l) => l.slice(0, 400)).join('\n'));
    expect(refused).toBe(true);
    await sleep(1500);
    await admin.createTopics([{ topic: config.topicScored, partitions }]);
    scoredRecords = await collect(kafka, [config.topicScored]);
    const resets = () => lines.filter((l) => l.includes('restoring a partition from the changelog after a failed chunk')).length;

    const scored = () => scoredRecords!.records.map((r) => codec.decode<ScoredOutput>(r.value, Accepts.scored).value);
    const allOut = await eventually(() => new Set(scored().flatMap((o) => o.eventIds)).size === ids.length, 60_000);
    if (!allOut) console.log(`scored ${new Set(scored().flatMap((o) => o.eventIds)).size}\n` + lines.map((l) => l.slice(0, 400)).join('\n'));
    expect(allOut).toBe(true);
    const eventsIn = (s: { interests: { events: number }[] } | null | undefined) => (s?.interests ?? []).reduce((n, i) => n + i.events, 0);
    const changelog = (userId: string) => {
      const last = changelogRecords.records.filter((r) => r.key?.toString() === userId).at(-1);
      return last ? processor.core.stateCodec.decode(last.value) : null;
    };
    // The last changelog record of each user lands with the last delivery: wait for it (a while, if the counts are wrong).
    await eventually(() => Array.from({ length: USERS }, (_, u) => eventsIn(changelog(`user-${u}`))).every((n) => n === EVENTS_PER_USER), 10_000);
    const inMemory = Array.from({ length: USERS }, (_, u) => eventsIn(processor.core.users.get(`user-${u}`)));
    const inChangelog = Array.from({ length: USERS }, (_, u) => eventsIn(changelog(`user-${u}`)));
    console.log(`[guarantees] chunk retry: ${resets()} partition reset(s) after refused deliveries; events per user in memory ${inMemory.join(',')}, in the changelog ${inChangelog.join(',')} (sent ${EVENTS_PER_USER} each)`);
    expect(inMemory).toEqual(Array(USERS).fill(EVENTS_PER_USER));
    expect(inChangelog).toEqual(Array(USERS).fill(EVENTS_PER_USER));
  });
});
