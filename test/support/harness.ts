/**
 * Shared helpers of the integration tests: unique topics per test, a spawned processor, readers.
 * Tests produce and create topics through the Kafka port (src/adapters/kafka/port.ts); they read
 * outputs back and check committed offsets with kafkajs directly, on purpose: an independent
 * client, so a fault in the port's implementation cannot hide a fault of the processor.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { kafkaClientFactory, type KafkaClientKind } from '../../src/adapters/kafka/client.js';
import type { KafkaClient, KafkaClientSettings, KafkaProducer, ProducerOptions } from '../../src/adapters/kafka/port.js';
import { loadConfig } from '../../src/app/config/load-config.js';
import { startKafkaProcessor, type RunningProcessor } from '../../src/app/processor.js';
import type { Config } from '../../src/app/config/settings.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { syntheticAds, type SyntheticAd } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import { createLogger, silentLogger } from '../../src/util/log.js';
import { createTopics, isolatedEnv as isolatedEnvOn, type Spawned } from '../../loadtest/spawn-processor.js';
import { brokersForTests } from './kafka.js';

export { createTopics, freePort, spawnProcessor } from '../../loadtest/spawn-processor.js';

export const codec = new AvroCodec();

/** Environment for a processor with topics and group of its own, so tests never see each other. */
export function isolatedEnv(extra: Record<string, string> = {}): Record<string, string> {
  return isolatedEnvOn(brokersForTests().join(','), 'it', extra);
}

export function configOf(env: Record<string, string>): Config {
  return loadConfig({ env });
}

/** A client of the port for the test's broker (the shared one unless `brokers` says otherwise); kafkajs unless `client` says otherwise. */
export function kafkaForTests(o: { brokers?: readonly string[]; retry?: KafkaClientSettings['retry']; client?: KafkaClientKind } = {}): KafkaClient {
  return kafkaClientFactory(o.client ?? 'kafkajs')({ clientId: 'it', brokers: o.brokers ?? brokersForTests(), logger: silentLogger, ...(o.retry ? { retry: o.retry } : {}) });
}

export function connectedProducer(kafka: KafkaClient, options: ProducerOptions = {}): Promise<KafkaProducer> {
  return kafka.producer(options);
}

/** An independent kafkajs client on the same cluster (see the file's comment). */
function independentKafka(kafka: KafkaClient): Kafka {
  return new Kafka({ clientId: 'it-reader', brokers: [...kafka.brokers], logLevel: logLevel.NOTHING });
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

/** Reads topics from the beginning with a throwaway group (independent kafkajs client), collecting records as they come. */
export async function collect(kafka: KafkaClient, topics: string[], o: { sessionTimeoutMs?: number } = {}): Promise<{ records: ReadRecord[]; stop(): Promise<void> }> {
  // sessionTimeoutMs: after a broker outage kafkajs rejoins as a new member, and the group waits
  // for the old one's session to expire (default 30 s) before reading resumes.
  const session = o.sessionTimeoutMs !== undefined ? { sessionTimeout: o.sessionTimeoutMs, heartbeatInterval: Math.floor(o.sessionTimeoutMs / 10) } : {};
  const consumer: Consumer = independentKafka(kafka).consumer({ groupId: `reader-${randomUUID()}`, ...session });
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

/** A processor in this process with a catalog already on its ads topic, and a reader of some of its outputs. */
export interface ProcessorWithAds {
  readonly producer: KafkaProducer;
  readonly processor: RunningProcessor;
  readonly ads: SyntheticAd[];
  readonly outputs: { records: ReadRecord[]; stop(): Promise<void> };
  /** Stops the reader, the processor and the producer, in that order. */
  stop(): Promise<void>;
}

/**
 * Creates the config's topics, produces `adCount` synthetic ads, starts the processor and a reader
 * of `topics` (from the beginning). What was started before a failing step is stopped again.
 */
export async function startProcessorWithAds(kafka: KafkaClient, config: Config, adCount: number, topics: string[]): Promise<ProcessorWithAds> {
  await createTopics(kafka, config);
  const producer = await connectedProducer(kafka);
  let processor: RunningProcessor | undefined;
  try {
    const ads = await syntheticAds(adCount);
    await producer.send([{ topic: config.topicAds, records: ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now()) })) }]);
    processor = await startKafkaProcessor(config, createLogger('warn'));
    const outputs = await collect(kafka, topics);
    const running = processor;
    return {
      producer, processor: running, ads, outputs,
      stop: async () => {
        await outputs.stop();
        await running.stop();
        await producer.disconnect();
      },
    };
  } catch (err) {
    await processor?.stop().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    throw err;
  }
}

/** The offsets a consumer group committed, as "topic/partition" -> offset, read with the independent client. */
export async function committedOffsets(kafka: KafkaClient, groupId: string, topics: string[]): Promise<Map<string, bigint>> {
  const admin = independentKafka(kafka).admin();
  await admin.connect();
  try {
    const committed = await admin.fetchOffsets({ groupId, topics });
    return new Map(committed.flatMap((t) => t.partitions.map((p) => [`${t.topic}/${p.partition}`, BigInt(p.offset)] as const)));
  } finally {
    await admin.disconnect();
  }
}

/**
 * What a test file starts (processors, readers, producers, cores), released in its afterAll
 * whatever happened: processors still running are SIGKILLed, the rest stopped newest first.
 */
export class TestResources {
  readonly processors: SpawnedProcessor[] = [];
  private readonly releases: (() => Promise<unknown>)[] = [];

  /** Keeps a spawned processor, to kill it at the end if it still runs. */
  spawned(p: SpawnedProcessor): SpawnedProcessor {
    this.processors.push(p);
    return p;
  }

  /** Adds what releases something at the end (a reader's stop, a producer's disconnect). */
  onRelease(...fns: (() => Promise<unknown>)[]): void {
    this.releases.push(...fns);
  }

  async release(): Promise<void> {
    for (const p of this.processors) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    for (const fn of this.releases.splice(0).reverse()) await fn().catch(() => undefined);
  }
}
