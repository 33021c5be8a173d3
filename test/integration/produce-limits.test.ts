/**
 * Produce limits on a real broker, with the processor as its own process: sends split to topics
 * whose max.message.bytes is small, nothing lost; a chunk of twenty 60 KB corrupt records under one
 * key dead-lettered whole while the partition moves on; a start refused when the settings make a
 * record the changelog cannot take; a limit lowered while running handled by the OUTPUT_TOO_LARGE
 * policy, without a crash loop.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { KafkaClient } from '../../src/adapters/kafka/port.js';
import type { Config } from '../../src/app/config/settings.js';
import { Accepts } from '../../src/serde/record-names.js';
import { auditLineage } from '../support/audit.js';
import { codec, collect, committedOffsets, configOf, eventually, isolatedEnv, kafkaForTests, spawnProcessor, type ReadRecord, type SpawnedProcessor } from '../support/harness.js';
import { TestTraffic } from '../support/traffic.js';

interface DeadLetterValue {
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: number;
  value: Buffer | null;
  valueTruncated: boolean;
  reason: string;
  message: string;
}

const kafka = kafkaForTests();
const running: SpawnedProcessor[] = [];
const readers: { stop(): Promise<void> }[] = [];
const traffics: TestTraffic[] = [];

afterEach(async () => {
  for (const p of running.splice(0)) await p.stop(5_000);
});

afterAll(async () => {
  for (const r of readers) await r.stop();
  for (const t of traffics) await t.producer.disconnect();
});

/** Creates `topic` with its own configs before the rest of the processor's topics are created. */
async function createTopic(client: KafkaClient, topic: string, configs: Record<string, string>): Promise<void> {
  const admin = await client.admin();
  try {
    await admin.createTopics([{ topic, partitions: 3, configs }]);
  } finally {
    await admin.disconnect();
  }
}

async function reader(topics: string[]): Promise<{ records: ReadRecord[]; stop(): Promise<void> }> {
  const r = await collect(kafka, topics);
  readers.push(r);
  return r;
}

const deadLettersIn = (config: Config, outputs: readonly ReadRecord[]): DeadLetterValue[] =>
  outputs.filter((r) => r.topic === config.topicDeadLetters && r.value !== null).map((r) => codec.decode<DeadLetterValue>(r.value, Accepts.deadLetter).value);

/** Waits until every input read back is in a scored output or a dead letter. */
async function accountedFor(config: Config, inputs: { records: ReadRecord[] }, outputs: { records: ReadRecord[] }, sent: number, timeoutMs: number) {
  await eventually(() => inputs.records.length >= sent, 30_000);
  await eventually(() => auditLineage(config, inputs.records, outputs.records).lost.length === 0, timeoutMs, 250);
  return auditLineage(config, inputs.records, outputs.records);
}

/**
 * Whether the group committed every input read back: the partitions moved on (a crash loop replays
 * its chunk, and may deliver some of its outputs again and again, but never commits it).
 */
async function allCommitted(config: Config, inputs: readonly ReadRecord[], topics: string[]): Promise<boolean> {
  const ends = new Map<string, bigint>();
  for (const r of inputs) {
    const k = `${r.topic}/${r.partition}`;
    const next = BigInt(r.offset) + 1n;
    if (next > (ends.get(k) ?? 0n)) ends.set(k, next);
  }
  const committed = await committedOffsets(kafka, config.groupId, topics);
  return [...ends].every(([k, end]) => (committed.get(k) ?? -1n) >= end);
}

describe('produce limits on a real broker', () => {
  it('splits the changelog and the scored outputs to topics of 64 KiB and loses nothing (K = 8 x F = 512 states, ~16 KB each)', async () => {
    const env = isolatedEnv({ INTERESTS_PER_USER: '8', FUSED_DIM: '512', INFERENCE_WORKERS: '1' });
    const config = configOf(env);
    const small = { 'max.message.bytes': '65536' };
    await createTopic(kafka, config.topicChangelog, { 'cleanup.policy': 'compact', ...small });
    await createTopic(kafka, config.topicScored, small);
    const traffic = await TestTraffic.create(kafka, config, { users: 300, imagesPerCategory: 3 });
    traffics.push(traffic);
    const outputs = await reader([config.topicScored, config.topicDeadLetters]);
    const inputs = await reader(traffic.inputTopics);
    const changelog = await reader([config.topicChangelog]);

    const p = await spawnProcessor(env, { outputChars: 200_000 });
    running.push(p);
    await p.waitReady(120_000);
    // Chunks of up to 500 records over 300 users: megabytes of state per chunk, against 64 KiB batches.
    await traffic.produce(6, 500, 50);
    const result = await accountedFor(config, inputs, outputs, 3000, 120_000);
    const users = new Set(changelog.records.filter((r) => r.key && r.key[0] !== 0).map((r) => r.key!.toString()));
    console.log(`[produce-limits] inputs ${result.inputs}, lost ${result.lost.length}, scored outputs ${result.scoredOutputs}, changelog records ${changelog.records.length} for ${users.size} users`);
    expect(result.inputs).toBe(3000);
    expect(result.lost).toEqual([]);
    expect(deadLettersIn(config, outputs.records).filter((d) => d.reason === 'OUTPUT_TOO_LARGE')).toEqual([]);
    expect(users.size).toBeGreaterThan(250);
    expect(await eventually(() => allCommitted(config, inputs.records, traffic.inputTopics), 30_000, 500)).toBe(true);
    expect(p.proc.exitCode).toBe(null);
  });

  it('dead-letters a chunk of twenty 60 KB corrupt records under one key whole, and the partition moves on', async () => {
    const env = isolatedEnv({ INFERENCE_WORKERS: '1' });
    const config = configOf(env);
    // The input topic takes 2 MB batches, so the twenty arrive as one batch, in one fetch, one chunk:
    // their dead letters (key and value kept) make 1.2 MB for a dead-letter topic of 1 MB.
    await createTopic(kafka, config.topicClicks, { 'max.message.bytes': '2097152' });
    const traffic = await TestTraffic.create(kafka, config, { users: 20, imagesPerCategory: 1 });
    traffics.push(traffic);
    const outputs = await reader([config.topicScored, config.topicDeadLetters]);
    const inputs = await reader(traffic.inputTopics);

    const p = await spawnProcessor(env, { outputChars: 200_000 });
    running.push(p);
    await p.waitReady(120_000);
    const poison = Array.from({ length: 20 }, (_, i) => ({ key: Buffer.from('poison-user'), value: Buffer.alloc(60_000, 0x41 + i) }));
    const [meta] = await traffic.producer.send([{ topic: config.topicClicks, records: poison }]);
    // Then ordinary events, on every partition: they must come out too.
    await traffic.produce(4, 50, 50);
    const result = await accountedFor(config, inputs, outputs, 220, 90_000);
    const dead = deadLettersIn(config, outputs.records).filter((d) => d.sourceTopic === config.topicClicks && d.sourcePartition === meta!.partition && d.value?.length === 60_000);
    console.log(`[produce-limits] poison: ${dead.length} of 20 dead-lettered whole; inputs ${result.inputs}, lost ${result.lost.length}`);
    expect(result.lost).toEqual([]);
    expect(new Set(dead.map((d) => d.sourceOffset)).size).toBe(20);
    expect(dead.every((d) => d.reason === 'BAD_FRAMING' && !d.valueTruncated)).toBe(true);
    expect(await eventually(() => allCommitted(config, inputs.records, traffic.inputTopics), 30_000, 500)).toBe(true);
    expect(p.proc.exitCode).toBe(null);
  });

  it('refuses to start when the largest user state cannot fit the changelog, naming the settings and the limit', async () => {
    const env = isolatedEnv({ INTERESTS_PER_USER: '8', FUSED_DIM: '512', INFERENCE_WORKERS: '1' });
    const config = configOf(env);
    await createTopic(kafka, config.topicChangelog, { 'cleanup.policy': 'compact', 'max.message.bytes': '16384' });
    const p = await spawnProcessor(env, { outputChars: 200_000 });
    running.push(p);
    const code = await p.exited;
    const out = p.output();
    console.log(`[produce-limits] refused: ${out.trim().split('\n').pop()}`);
    expect(code, out).toBe(2);
    expect(out).toContain('INTERESTS_PER_USER=8');
    expect(out).toContain('FUSED_DIM=512');
    expect(out).toContain(`16384 bytes (max.message.bytes of topic ${config.topicChangelog})`);
  });

  it('handles a changelog limit lowered while running: the records that no longer fit are dead-lettered as OUTPUT_TOO_LARGE, nothing lost, no crash', async () => {
    const env = isolatedEnv({ INTERESTS_PER_USER: '8', FUSED_DIM: '512', INFERENCE_WORKERS: '1' });
    const config = configOf(env);
    const traffic = await TestTraffic.create(kafka, config, { users: 100, imagesPerCategory: 3 });
    traffics.push(traffic);
    const outputs = await reader([config.topicScored, config.topicDeadLetters]);
    const inputs = await reader(traffic.inputTopics);
    const p = await spawnProcessor(env, { outputChars: 200_000 });
    running.push(p);
    await p.waitReady(120_000);
    await traffic.produce(2, 100, 50);
    await accountedFor(config, inputs, outputs, 200, 60_000);

    // An operator lowers the changelog's limit below one user state (~16 KB) while the processor runs.
    const admin = new Kafka({ clientId: 'it-admin', brokers: [...kafka.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: config.topicChangelog, configEntries: [{ name: 'max.message.bytes', value: '8192' }] }] });
    } finally {
      await admin.disconnect();
    }
    await traffic.produce(3, 100, 50);
    const result = await accountedFor(config, inputs, outputs, 500, 90_000);
    const tooLarge = deadLettersIn(config, outputs.records).filter((d) => d.reason === 'OUTPUT_TOO_LARGE');
    const metrics = await fetch(`http://127.0.0.1:${p.port}/metrics`).then((r) => r.text());
    const counted = Number(new RegExp(`adstream_output_records_too_large_total\\{topic="${config.topicChangelog}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    console.log(`[produce-limits] limit lowered: inputs ${result.inputs}, lost ${result.lost.length}, OUTPUT_TOO_LARGE dead letters ${tooLarge.length}, counted ${counted}`);
    expect(result.lost).toEqual([]);
    expect(tooLarge.length).toBeGreaterThan(0);
    expect(tooLarge[0]!.message).toContain(`max.message.bytes of topic ${config.topicChangelog}`);
    expect(counted).toBeGreaterThan(0);
    expect(p.output()).toContain('output records too large for their topic');
    expect(p.output()).toContain(config.topicChangelog);
    expect(await eventually(() => allCommitted(config, inputs.records, traffic.inputTopics), 30_000, 500)).toBe(true);
    expect(p.proc.exitCode).toBe(null);
  });
});
