/** Shared helpers of the integration tests: unique topics per test, a spawned processor, readers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, Partitioners, type Consumer, type Producer } from 'kafkajs';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/settings.js';
import { ensureTopics } from '../../src/kafka/topics.js';
import { silentLogger } from '../../src/log.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { brokersForTests } from './kafka.js';

export const codec = new AvroCodec();

/** Environment for a processor with topics and group of its own, so tests never see each other. */
export function isolatedEnv(extra: Record<string, string> = {}): Record<string, string> {
  const s = randomUUID().slice(0, 8);
  return {
    KAFKA_BROKERS: brokersForTests().join(','),
    GROUP_ID: `it-${s}`,
    TOPIC_CLICKS: `clicks-${s}`,
    TOPIC_IMAGE_VIEWS: `image-views-${s}`,
    TOPIC_REVIEWS: `reviews-${s}`,
    TOPIC_ADS: `ads-${s}`,
    TOPIC_SCORED: `scored-${s}`,
    TOPIC_SEGMENTS: `segments-${s}`,
    TOPIC_DEAD_LETTERS: `dead-letters-${s}`,
    TOPIC_CHANGELOG: `user-state-${s}`,
    TOPIC_PARTITIONS: '3',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export function configOf(env: Record<string, string>): Config {
  return loadConfig({ env });
}

/** Creates the processor's topics up front, as an operator would before producing to them. */
export async function createTopics(kafka: Kafka, config: Config): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, config, silentLogger);
  } finally {
    await admin.disconnect();
  }
}

export function kafkaForTests(): Kafka {
  return new Kafka({ clientId: 'it', brokers: brokersForTests(), logLevel: logLevel.NOTHING });
}

export async function connectedProducer(kafka: Kafka): Promise<Producer> {
  const p = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await p.connect();
  return p;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** The processor as operators run it: `node dist/cli/main.js run`, a process of its own. */
export interface SpawnedProcessor {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly exited: Promise<number | null>;
  output(): string;
  waitReady(timeoutMs?: number): Promise<void>;
}

export async function spawnProcessor(env: Record<string, string>): Promise<SpawnedProcessor> {
  const port = await freePort();
  const proc = spawn(process.execPath, [MAIN, 'run'], { env: { ...process.env, ...env, HTTP_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    port,
    exited,
    output: () => out,
    async waitReady(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (proc.exitCode !== null) throw new Error(`processor exited with ${proc.exitCode}:\n${out}`);
        const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
        if (ok) return;
        await sleep(200);
      }
      throw new Error(`processor not ready after ${timeoutMs} ms:\n${out}`);
    },
  };
}

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
