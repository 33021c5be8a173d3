/** Shared helpers of the integration tests: unique topics per test, a spawned processor, readers. */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners, type Consumer, type Producer, type ProducerConfig } from 'kafkajs';
import { loadConfig } from '../../src/app/config/load-config.js';
import type { Config } from '../../src/app/config/settings.js';
import { isolatedEnv as isolatedEnvOn, type Spawned } from '../../src/devtools/spawn-processor.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { brokersForTests } from './kafka.js';

export { createTopics, freePort, spawnProcessor } from '../../src/devtools/spawn-processor.js';

export const codec = new AvroCodec();

/** Environment for a processor with topics and group of its own, so tests never see each other. */
export function isolatedEnv(extra: Record<string, string> = {}): Record<string, string> {
  return isolatedEnvOn(brokersForTests().join(','), 'it', extra);
}

export function configOf(env: Record<string, string>): Config {
  return loadConfig({ env });
}

export function kafkaForTests(): Kafka {
  return new Kafka({ clientId: 'it', brokers: brokersForTests(), logLevel: logLevel.NOTHING });
}

export async function connectedProducer(kafka: Kafka, extra: Omit<ProducerConfig, 'createPartitioner'> = {}): Promise<Producer> {
  const p = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...extra });
  await p.connect();
  return p;
}

/** The processor as operators run it: `node dist/cli/main.js run`, a process of its own. */
export type SpawnedProcessor = Spawned;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `check` returns true or the time is up; returns the last result. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

export interface ReadRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: Record<string, string>;
}

/** Reads topics from the beginning with a throwaway group, collecting records as they come. */
export async function collect(kafka: Kafka, topics: string[]): Promise<{ records: ReadRecord[]; stop(): Promise<void> }> {
  const consumer: Consumer = kafka.consumer({ groupId: `reader-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  const records: ReadRecord[] = [];
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = String(v);
      records.push({ topic, partition, offset: message.offset, key: message.key, value: message.value, headers });
    },
  });
  return { records, stop: () => consumer.disconnect() };
}
