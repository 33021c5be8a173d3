/**
 * Privacy on a real broker: a user deletion request removes everything the processor holds of the
 * user (memory, HTTP view, changelog, segments), and a fresh process restored from the changelog
 * does not bring the user back. /metrics and /readyz never carry user ids. Every event is accounted
 * for (scored; none is dead-lettered: every record is valid).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaProducer, OutboundRecord } from '../../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { syntheticAds, syntheticUsers } from '../../src/devtools/synthetic.js';
import { encodeAd, TrafficFactory } from '../../src/devtools/traffic.js';
import { auditLineage } from '../support/audit.js';
import { codec, collect, configOf, connectedProducer, createTopics, eventually, isolatedEnv, kafkaForTests, sleep, spawnProcessor, type ReadRecord, type SpawnedProcessor } from '../support/harness.js';
import { Accepts } from '../../src/serde/record-names.js';

const SCORED = Accepts.scored;
const TOKEN = 'deletion-test-token';

describe('user deletion on a real broker', () => {
  const env = isolatedEnv({ CHUNK_MAX_RECORDS: '50', HTTP_TOKEN: TOKEN, INFERENCE_WORKERS: '1' });
  const config = configOf(env);
  const kafka = kafkaForTests();
  const tag = randomUUID().slice(0, 8);
  const users = syntheticUsers(6).map((u, i) => ({ ...u, userId: `del-${tag}-${i}` }));
  const victim = users[0]!.userId;
  let producer: KafkaProducer;
  let traffic: TrafficFactory;
  let outputs: { records: ReadRecord[]; stop(): Promise<void> };
  let inputs: { records: ReadRecord[]; stop(): Promise<void> };
  const running: SpawnedProcessor[] = [];
  let deletionPosition = '';

  beforeAll(async () => {
    await createTopics(kafka, config);
    producer = await connectedProducer(kafka);
    const ads = await syntheticAds(3);
    await producer.send([{ topic: config.topicAds, records: ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now()) })) }]);
    traffic = await TrafficFactory.create(codec, users, { imagesPerCategory: 2 });
    outputs = await collect(kafka, [config.topicScored, config.topicSegments, config.topicChangelog, config.topicDeadLetters]);
    inputs = await collect(kafka, [config.topicClicks, config.topicImageViews, config.topicReviews]);
  });

  afterAll(async () => {
    for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await outputs?.stop();
    await inputs?.stop();
    await producer?.disconnect();
  });

  async function produceEvents(perUser: number): Promise<Set<string>> {
    const topicOf = { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews };
    const ids = new Set<string>();
    const byTopic = new Map<string, OutboundRecord[]>();
    for (const u of users) {
      for (let i = 0; i < perUser; i++) {
        const e = traffic.next(Date.now(), u);
        ids.add(e.eventId);
        byTopic.set(topicOf[e.role], [...(byTopic.get(topicOf[e.role]) ?? []), { key: e.key, value: e.value }]);
      }
    }
    await producer.send([...byTopic].map(([topic, records]) => ({ topic, records })));
    return ids;
  }

  const scoredEventIds = (): Set<string> =>
    new Set(outputs.records.filter((r) => r.topic === config.topicScored).flatMap((r) => codec.decode<ScoredOutput>(r.value, SCORED).value.eventIds));
  /** The latest record of `key` on `topic` as read so far (compacted topics: what survives). */
  const latest = (topic: string, key: string): ReadRecord | undefined => outputs.records.filter((r) => r.topic === topic && r.key?.toString() === key).at(-1);
  const userStatus = async (p: SpawnedProcessor, userId: string): Promise<number> =>
    (await fetch(`http://127.0.0.1:${p.port}/users/${encodeURIComponent(userId)}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status;

  it('removes the user from memory, the HTTP view, the changelog and the segments', async () => {
    const a = await spawnProcessor(env);
    running.push(a);
    await a.waitReady();
    const ids = await produceEvents(8);
    expect(await eventually(() => [...ids].every((id) => scoredEventIds().has(id)), 60_000, 200)).toBe(true);
    expect(await eventually(() => latest(config.topicChangelog, victim)?.value != null && latest(config.topicSegments, victim)?.value != null, 30_000)).toBe(true);
    expect(await userStatus(a, victim)).toBe(200);

    const [meta] = await producer.send([
      {
        topic: config.topicUserDeletions,
        records: [{ key: Buffer.from(victim), value: codec.encode('dev.adstream.privacy.UserDeletion', { userId: victim, requestedAt: Date.now(), requestId: `req-${tag}` }) }],
      },
    ]);
    deletionPosition = `${config.topicUserDeletions}/${meta!.partition}/${meta!.baseOffset}`;
    const t0 = Date.now();
    expect(await eventually(async () => (await userStatus(a, victim)) === 404, 30_000)).toBe(true);
    expect(await eventually(() => latest(config.topicChangelog, victim)?.value === null && latest(config.topicSegments, victim)?.value === null, 30_000)).toBe(true);
    const tombstone = latest(config.topicChangelog, victim)!;
    expect(tombstone.headers?.['adstream-deletion-request']).toBe(`req-${tag}`);
    expect(tombstone.headers?.['adstream-source']).toBe(deletionPosition); // the deletion record is accounted for
    expect(tombstone.partition).toBe(meta!.partition); // on the user's partition
    console.log(`[guarantees] deletion: user gone from HTTP view, changelog and segments ${Date.now() - t0} ms after the request`);
    for (const u of users.slice(1)) expect(await userStatus(a, u.userId), u.userId).toBe(200);

    // No user ids in the operational endpoints.
    const metrics = await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text();
    const readyz = await (await fetch(`http://127.0.0.1:${a.port}/readyz`)).text();
    for (const u of users) {
      expect(metrics.includes(u.userId), `${u.userId} in /metrics`).toBe(false);
      expect(readyz.includes(u.userId), `${u.userId} in /readyz`).toBe(false);
    }
    expect(metrics).not.toContain(`del-${tag}`);
    a.proc.kill('SIGTERM');
    expect(await a.exited).toBe(0);
  });

  it('stays deleted in a fresh process restored from the changelog; a new event starts a fresh user', async () => {
    const b = await spawnProcessor(env);
    running.push(b);
    await b.waitReady();
    expect(await eventually(async () => (await userStatus(b, users[1]!.userId)) === 200, 30_000)).toBe(true); // others restored
    expect(await userStatus(b, victim)).toBe(404);
    await sleep(500);
    expect(await userStatus(b, victim)).toBe(404);

    const e = traffic.next(Date.now(), users[0]);
    const topicOf = { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews };
    await producer.send([{ topic: topicOf[e.role], records: [{ key: e.key, value: e.value }] }]);
    expect(await eventually(async () => (await userStatus(b, victim)) === 200, 30_000)).toBe(true);
    const view = (await (await fetch(`http://127.0.0.1:${b.port}/users/${victim}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { interests: { events: number }[] };
    expect(view.interests.reduce((n, i) => n + i.events, 0)).toBe(1);

    // Every event of both tests (8 per user, then the victim's new one) scored; no dead letter.
    const sent = users.length * 8 + 1;
    expect(await eventually(() => inputs.records.length >= sent && auditLineage(config, inputs.records, outputs.records).lost.length === 0, 30_000)).toBe(true);
    const audit = auditLineage(config, inputs.records, outputs.records);
    expect(audit.inputs).toBe(sent);
    expect(audit.undeserved).toEqual([]);
    expect(audit.deadLettersByReason).toEqual({});
    b.proc.kill('SIGTERM');
    expect(await b.exited).toBe(0);
  });
});
