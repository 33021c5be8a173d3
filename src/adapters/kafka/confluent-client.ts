/**
 * The Kafka port (./port.ts) on @confluentinc/kafka-javascript (librdkafka), through its
 * KafkaJS-compatible API: KafkaJS options under `kafkaJS`, librdkafka properties at the top level.
 * The only module that loads the package, and only when KAFKA_CLIENT=confluent selects it: it is an
 * optionalDependency (its install builds librdkafka), so its types are not imported either; the
 * few shapes used are declared below.
 *
 * Where the package's KafkaJS API differs (its MIGRATION.md): acks and fromBeginning are set per
 * producer / consumer, not per call; createTopics cannot wait for leaders (polled here); there are
 * no custom assigners (co-partitioning: the range assignor, which gives partition p of topics with
 * equal partition counts to one member); no CRASH event (a failed handler is reported as a crash
 * that restarts, since the package fetches the records again); and its admin has no DescribeConfigs
 * or DescribeCluster: those start-up reads go through kafkajs (see KafkajsDescriber).
 */
import { randomUUID } from 'node:crypto';
import { ConfigError } from '../../domain/errors.js';
import type { InputRecord } from '../../domain/events.js';
import type { Logger } from '../../util/log.js';
import { DoneOffsets } from './done-offsets.js';
import { catchUpOf } from './catch-up.js';
import { assignmentByTopic, connected, hasCause, toInputRecord, topicMessagesOf, TRANSIENT_KAFKA_ERROR, type FetchedMessage, type LibraryMessage } from './client-common.js';
import { createKafkajsClient } from './kafkajs-client.js';
import type {
  Appended,
  FetchControl,
  FetchedRecords,
  GroupConsumer,
  GroupConsumerOptions,
  KafkaAdmin,
  KafkaClient,
  KafkaClientFactory,
  KafkaClientSettings,
  KafkaProducer,
  PartitionOffsets,
  PartitionRead,
  PartitionReadOptions,
  ProducerOptions,
  TopicRecords,
  TopicSpec,
} from './port.js';
import { ProduceTooLargeError } from './port.js';

// --- the package's API, as far as it is used here ---

type LibraryConfig = Record<string, unknown>;
interface LibraryKafka {
  admin(config?: LibraryConfig): LibraryAdmin;
  producer(config?: LibraryConfig): LibraryProducer;
  consumer(config: LibraryConfig): LibraryConsumer;
}
interface LibraryClient {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}
interface LibraryAdmin extends LibraryClient {
  listTopics(): Promise<string[]>;
  createTopics(o: { topics: { topic: string; numPartitions: number; replicationFactor?: number; configEntries: { name: string; value: string }[] }[]; timeout?: number }): Promise<boolean>;
  deleteTopics(o: { topics: string[] }): Promise<void>;
  fetchTopicMetadata(o: { topics: string[] }): Promise<{ name: string; partitions: { partitionId: number; leader: number; partitionErrorCode: number }[] }[]>;
  fetchTopicOffsets(topic: string): Promise<{ partition: number; low: string; high: string }[]>;
}
interface LibraryProducer extends LibraryClient {
  sendBatch(o: { topicMessages: { topic: string; messages: LibraryMessage[] }[] }): Promise<{ topicName: string; partition: number; baseOffset?: string; offset?: string }[]>;
}
interface LibraryBatchPayload {
  batch: { topic: string; partition: number; highWatermark: string; messages: FetchedMessage[]; lastOffset(): string };
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  commitOffsetsIfNecessary(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}
interface LibraryConsumer extends LibraryClient {
  subscribe(o: { topics: string[] }): Promise<void>;
  run(o: { eachBatch: (p: LibraryBatchPayload) => Promise<void>; eachBatchAutoResolve?: boolean; partitionsConsumedConcurrently?: number }): Promise<void>;
  seek(o: { topic: string; partition: number; offset: string }): void;
  commitOffsets(offsets: { topic: string; partition: number; offset: string }[]): Promise<void>;
  pause(topics: { topic: string; partitions?: number[] }[]): void;
  resume(topics: { topic: string; partitions?: number[] }[]): void;
}
/** What the package hands its rebalance callback (a librdkafka error whose code says assign or revoke). */
interface RebalanceEvent {
  readonly code: number;
}

/** librdkafka's RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS; anything else the callback gets is a revoke. */
const ERR_ASSIGN_PARTITIONS = -175;
/** Kafka's MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE: librdkafka reports the broker's codes as they are (and 10 for its own size check). */
const TOO_LARGE_CODES = new Set([10, 18]);
const REBALANCE_TIMEOUT_MS = 60_000;
/** A bounded read (the changelog restore) is a bulk load: large fetches. */
const BULK_FETCH_BYTES = 8 << 20;
/** Records handed to one handler call at most (the package's default is 32; chunking is ours). */
const MAX_BATCH_RECORDS = 2000;
/**
 * Latency first: librdkafka waits up to linger.ms for fuller batches (5 by default) and the broker
 * holds an empty fetch up to fetch.wait.max.ms (500). A hop measured p50 17 ms with linger 5 and
 * 9.5 ms with linger 1 at 2,000 msg/s (NOTES.md); concurrent sends still share requests.
 */
const LINGER_MS = 1;
const FETCH_WAIT_MS = 100;
/**
 * librdkafka refuses locally any request over message.max.bytes (1,000,000 by default, below the
 * broker's 1,048,588 default per batch). The cluster's own limits decide instead (ProduceLimits
 * keeps to them); this only stays under the brokers' default socket.request.max.bytes (100 MiB),
 * since librdkafka may put several sends into one request.
 */
const REQUEST_MAX_BYTES = 64 << 20;
/** Backoff before a failed handler's records are fetched again (kafkajs retries its batch likewise). */
const HANDLER_RETRY_MS = { initial: 200, max: 5000 };
const LEADER_WAIT = { timeoutMs: 30_000, everyMs: 100 };

export const PACKAGE = '@confluentinc/kafka-javascript';

export const createConfluentClient: KafkaClientFactory = (settings) => new ConfluentClient(settings);

let library: Promise<new (config: LibraryConfig) => LibraryKafka> | null = null;

/** The package's KafkaJS `Kafka` class, imported on first use: a missing optional install fails only here, saying what to do. */
function loadLibrary(): Promise<new (config: LibraryConfig) => LibraryKafka> {
  library ??= import('@confluentinc/kafka-javascript' as string).then(
    (m: { default?: { KafkaJS?: { Kafka?: unknown } }; KafkaJS?: { Kafka?: unknown } }) => {
      const kafka = (m.KafkaJS ?? m.default?.KafkaJS)?.Kafka;
      if (typeof kafka !== 'function') throw new Error(`${PACKAGE} has no KafkaJS.Kafka export`);
      return kafka as new (config: LibraryConfig) => LibraryKafka;
    },
    (err: unknown) => {
      library = null;
      throw missingPackageError(err);
    },
  );
  return library;
}

export function missingPackageError(cause: unknown): ConfigError {
  const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  const e = new ConfigError(
    'KAFKA_CLIENT',
    `=confluent needs the optional package ${PACKAGE}, which is not installed or did not build (${why}); install it with \`CKJS_LINKING=dynamic npm ci\` (builds librdkafka against the system zlib and OpenSSL: needs gcc, make, python3, zlib1g-dev, libssl-dev), or use KAFKA_CLIENT=kafkajs`,
  );
  e.cause = cause;
  return e;
}

// --- option mapping (pure: unit-tested) ---

/** The package's logger interface, onto ours: its errors are our warnings (it retries), the known transient ones debug. */
export function libraryLogger(log: Logger): Record<string, unknown> {
  const problem = (message: string, extra?: object): void => {
    const fields = { ...extra };
    if (TRANSIENT_KAFKA_ERROR.test(message)) log.debug(message, fields);
    else log.warn(message, fields);
  };
  const logger: Record<string, unknown> = {
    error: problem,
    warn: problem,
    info: (message: string, extra?: object) => log.debug(message, { ...extra }),
    debug: () => undefined,
    namespace: () => logger,
    setLogLevel: () => undefined,
  };
  return logger;
}

/** The client-wide settings: KafkaJS's under `kafkaJS`, librdkafka's at the top level. */
export function commonConfig(s: KafkaClientSettings, logger: Record<string, unknown>): LibraryConfig {
  return {
    kafkaJS: {
      brokers: [...s.brokers],
      clientId: s.clientId,
      logLevel: 2, // WARN
      logger,
      retry: { initialRetryTime: 200, retries: s.retry?.retries ?? 10, maxRetryTime: s.retry?.maxRetryTimeMs ?? 5000 },
      ...(s.connectionTimeoutMs !== undefined ? { connectionTimeout: s.connectionTimeoutMs } : {}),
      ...(s.requestTimeoutMs !== undefined ? { requestTimeout: s.requestTimeoutMs } : {}),
    },
    // Small requests go out at once instead of waiting for a fuller TCP segment.
    'socket.nagle.disable': true,
  };
}

export function producerConfig(o: ProducerOptions): LibraryConfig {
  return {
    'linger.ms': LINGER_MS,
    'message.max.bytes': REQUEST_MAX_BYTES,
    kafkaJS: {
      acks: -1,
      allowAutoTopicCreation: false,
      // Retried batches keep their order (the changelog's order is the state's) and are not doubled.
      idempotent: true,
      ...(o.retries !== undefined ? { retry: { retries: o.retries } } : {}),
    },
  };
}

export function groupConsumerConfig(o: GroupConsumerOptions, onRebalance: (event: RebalanceEvent, assignment: { topic: string; partition: number }[]) => void): LibraryConfig {
  return {
    'fetch.wait.max.ms': o.fetchMaxWaitMs ?? FETCH_WAIT_MS,
    'js.consumer.max.batch.size': MAX_BATCH_RECORDS,
    rebalance_cb: onRebalance,
    kafkaJS: {
      groupId: o.groupId,
      // A partition without a committed offset is read from its first record: nothing is skipped.
      fromBeginning: true,
      allowAutoTopicCreation: false,
      // Offsets are ours to commit (DoneOffsets): the package's would follow the fetch position,
      // which runs ahead of what is acknowledged.
      autoCommit: false,
      ...(o.coPartitioned ? { partitionAssigners: ['range'] } : {}),
      ...(o.sessionTimeoutMs !== undefined ? { sessionTimeout: o.sessionTimeoutMs, heartbeatInterval: Math.floor(o.sessionTimeoutMs / 10) } : {}),
      rebalanceTimeout: REBALANCE_TIMEOUT_MS,
    },
  };
}

export function partitionReadConfig(o: PartitionReadOptions): LibraryConfig {
  return {
    'fetch.wait.max.ms': FETCH_WAIT_MS,
    'js.consumer.max.batch.size': MAX_BATCH_RECORDS,
    kafkaJS: {
      groupId: `${o.label}.${randomUUID()}`,
      fromBeginning: true,
      autoCommit: false,
      allowAutoTopicCreation: false,
      ...(o.follow ? {} : { maxBytesPerPartition: BULK_FETCH_BYTES }),
    },
  };
}

/** Whether the broker (or librdkafka's own size check) refused records as too large. */
export function isTooLarge(err: unknown): boolean {
  return hasCause(err, (e) => TOO_LARGE_CODES.has((e as Error & { code?: unknown }).code as number));
}

// --- the port ---

class ConfluentClient implements KafkaClient {
  readonly brokers: readonly string[];
  private kafka: Promise<LibraryKafka> | null = null;

  constructor(private readonly settings: KafkaClientSettings) {
    this.brokers = [...settings.brokers];
  }

  private library(): Promise<LibraryKafka> {
    this.kafka ??= loadLibrary().then((Kafka) => new Kafka(commonConfig(this.settings, libraryLogger(this.settings.logger.child({ component: 'confluent-kafka' })))));
    return this.kafka;
  }

  async admin(): Promise<KafkaAdmin> {
    return new ConfluentAdmin(await connected((await this.library()).admin()), new KafkajsDescriber(this.settings));
  }

  async producer(o: ProducerOptions = {}): Promise<KafkaProducer> {
    return new ConfluentProducer(await connected((await this.library()).producer(producerConfig(o))));
  }

  async groupConsumer(o: GroupConsumerOptions): Promise<GroupConsumer> {
    let consumer!: LibraryConsumer;
    const doneOffsets = new DoneOffsets((offsets) => consumer.commitOffsets(offsets), this.settings.logger.child({ component: 'confluent-kafka' }));
    const membership = new Membership(o, doneOffsets);
    consumer = (await this.library()).consumer(groupConsumerConfig(o, (event, assignment) => membership.rebalanced(event, assignment)));
    const group = new ConfluentGroupConsumer(await connected(consumer), o, membership, doneOffsets);
    membership.consumer = group;
    return group;
  }

  /** A throwaway consumer group reads the topic, keeping the wanted partitions (the KafkaJS API has no manual assignment). */
  async readFromBeginning(o: PartitionReadOptions): Promise<PartitionRead> {
    const catchUp = await catchUpOf(await this.admin(), o);
    const from = o.from ?? new Map<number, bigint>();
    if (!o.follow && catchUp.done) return { caughtUp: Promise.resolve(), stop: async () => undefined };

    const consumer = await connected((await this.library()).consumer(partitionReadConfig(o)));
    let fail!: (err: unknown) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    const caughtUp = Promise.race([catchUp.reached, failed]);
    caughtUp.catch(() => undefined); // the caller may stop before awaiting it
    const wanted = o.partitions ? new Set(o.partitions) : null;
    try {
      await consumer.subscribe({ topics: [o.topic] });
      // The package applies seeks made before the assignment once it comes.
      for (const [partition, offset] of from) if (!wanted || wanted.has(partition)) consumer.seek({ topic: o.topic, partition, offset: String(offset) });
      await consumer.run({
        eachBatch: async ({ batch }) => {
          if (wanted && !wanted.has(batch.partition)) return;
          const records: InputRecord[] = [];
          const start = from.get(batch.partition);
          for (const m of batch.messages) {
            if (start !== undefined && BigInt(m.offset) < start) continue; // fetched before the seek took effect
            if (!o.follow && !catchUp.before(batch.partition, BigInt(m.offset))) break;
            records.push(toInputRecord(batch.topic, batch.partition, m));
          }
          try {
            if (records.length > 0) await o.onRecords(records);
          } catch (err) {
            // A bounded read fails (its caller retries by restarting); a following one gets the records again.
            if (!o.follow) fail(err);
            throw err;
          }
          catchUp.fetched(batch.partition, BigInt(batch.lastOffset()) + 1n);
        },
      });
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
    return { caughtUp, stop: () => consumer.disconnect() };
  }
}

/**
 * DescribeConfigs and DescribeCluster, which the package's admin lacks, through a kafkajs admin
 * made on first use: they are start-up reads (the produce limits, a readiness check), not the data path.
 */
class KafkajsDescriber {
  private admin: Promise<KafkaAdmin> | null = null;

  constructor(private readonly settings: KafkaClientSettings) {}

  get(): Promise<KafkaAdmin> {
    this.admin ??= createKafkajsClient(this.settings).admin();
    this.admin.catch(() => (this.admin = null));
    return this.admin;
  }

  async disconnect(): Promise<void> {
    const admin = this.admin;
    this.admin = null;
    if (admin) await (await admin.catch(() => null))?.disconnect();
  }
}

class ConfluentAdmin implements KafkaAdmin {
  constructor(
    private readonly admin: LibraryAdmin,
    private readonly describer: KafkajsDescriber,
  ) {}

  listTopics(): Promise<string[]> {
    return this.admin.listTopics();
  }

  async createTopics(topics: readonly TopicSpec[]): Promise<void> {
    if (topics.length === 0) return;
    try {
      await this.admin.createTopics({
        topics: topics.map((t) => ({
          topic: t.topic,
          numPartitions: t.partitions,
          ...(t.replication !== undefined ? { replicationFactor: t.replication } : {}),
          configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // The package gathers the topics' errors in one: name them.
      const inner = (err as { errors?: unknown[] }).errors;
      if (Array.isArray(inner) && inner.length > 0) throw new Error(`creating topics failed: ${inner.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')}`, { cause: err });
      throw err;
    }
    await this.waitForLeaders(topics);
  }

  /** The package cannot wait for leaders as kafkajs does: poll the metadata until every new partition has one. */
  private async waitForLeaders(topics: readonly TopicSpec[]): Promise<void> {
    const deadline = Date.now() + LEADER_WAIT.timeoutMs;
    const want = new Map(topics.map((t) => [t.topic, t.partitions]));
    for (;;) {
      const meta = await this.admin.fetchTopicMetadata({ topics: [...want.keys()] }).catch(() => []);
      const ready = meta.filter((t) => t.partitions.length >= want.get(t.name)! && t.partitions.every((p) => p.leader >= 0 && p.partitionErrorCode === 0));
      if (ready.length === want.size) return;
      if (Date.now() > deadline) throw new Error(`created topics have no leaders after ${LEADER_WAIT.timeoutMs} ms: ${[...want.keys()].filter((t) => !ready.some((r) => r.name === t)).join(', ')}`);
      await new Promise((r) => setTimeout(r, LEADER_WAIT.everyMs));
    }
  }

  async deleteTopics(topics: readonly string[]): Promise<void> {
    await this.admin.deleteTopics({ topics: [...topics] });
  }

  async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const meta = await this.admin.fetchTopicMetadata({ topics: [...topics] });
    return new Map(meta.map((t) => [t.name, t.partitions.length]));
  }

  async partitionOffsets(topic: string): Promise<PartitionOffsets[]> {
    return (await this.admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, low: BigInt(p.low), high: BigInt(p.high) }));
  }

  async liveBrokers(): Promise<number> {
    return (await this.describer.get()).liveBrokers();
  }

  async topicConfigs(topics: readonly string[], names: readonly string[]): Promise<Map<string, ReadonlyMap<string, string>>> {
    return (await this.describer.get()).topicConfigs(topics, names);
  }

  async brokerConfigs(names: readonly string[]): Promise<ReadonlyMap<string, string>[]> {
    return (await this.describer.get()).brokerConfigs(names);
  }

  async disconnect(): Promise<void> {
    await Promise.all([this.admin.disconnect(), this.describer.disconnect()]);
  }
}

class ConfluentProducer implements KafkaProducer {
  constructor(private readonly producer: LibraryProducer) {}

  async send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    const topicMessages = topicMessagesOf(batches);
    if (topicMessages.length === 0) return [];
    let meta;
    try {
      meta = await this.producer.sendBatch({ topicMessages });
    } catch (err) {
      if (isTooLarge(err)) throw new ProduceTooLargeError(`the broker refused records as too large: ${(err as Error).message}`, batches, { cause: err });
      throw err;
    }
    return meta.map((m) => ({ topic: m.topicName, partition: m.partition, baseOffset: m.baseOffset ?? m.offset ?? '-1' }));
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}

/**
 * The member's generations, from the package's rebalance callback: the port's assigned and
 * rebalancing events, and whether a fetch still belongs to the current generation (the package
 * marks a fetch stale only on a seek or pause, not on a revoke).
 */
class Membership {
  generation = 0;
  consumer: ConfluentGroupConsumer | null = null;

  constructor(
    private readonly o: GroupConsumerOptions,
    private readonly doneOffsets: DoneOffsets,
  ) {}

  rebalanced(event: RebalanceEvent, assignment: { topic: string; partition: number }[]): void {
    if (event.code === ERR_ASSIGN_PARTITIONS) {
      // Ours first: it decides which partitions done() still commits.
      this.doneOffsets.assigned(assignmentByTopic(assignment));
      this.o.events?.assigned?.(assignmentByTopic(assignment));
      // A pause holds for the topics' partitions assigned from now on too (kafkajs's behaviour).
      if (this.consumer) setImmediate(() => this.consumer?.pauseAssigned(assignment));
      return;
    }
    this.generation++;
    this.doneOffsets.assigned({}); // revoked (the range assignor is eager: everything goes)
    this.o.events?.rebalancing?.();
  }
}

class ConfluentGroupConsumer implements GroupConsumer {
  private readonly paused = new Set<string>();
  private readonly failures = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly consumer: LibraryConsumer,
    private readonly o: GroupConsumerOptions,
    private readonly membership: Membership,
    private readonly doneOffsets: DoneOffsets,
  ) {}

  async run(handle: (fetched: FetchedRecords, control: FetchControl) => Promise<void>): Promise<void> {
    await this.consumer.subscribe({ topics: [...this.o.topics] });
    const commits = (this.o.commits ?? 'done') === 'done';
    // The package resolves each fetch once the handler returns: the next fetch continues after it
    // (a failed handler's records are fetched again).
    await this.consumer.run({
      eachBatchAutoResolve: true,
      partitionsConsumedConcurrently: this.o.partitionsConcurrently ?? 1,
      eachBatch: async (p) => {
        const key = `${p.batch.topic}:${p.batch.partition}`;
        try {
          await handle(fetchedOf(p), this.controlOf(p, commits));
          this.failures.delete(key);
        } catch (err) {
          const n = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, n);
          this.o.events?.crashed?.(err, true);
          await new Promise((r) => setTimeout(r, Math.min(HANDLER_RETRY_MS.max, HANDLER_RETRY_MS.initial * 2 ** (n - 1))));
          throw err;
        }
      },
    });
  }

  seek(topic: string, partition: number, offset: bigint): void {
    if (this.doneOffsets.isOwned(topic, partition)) this.call(() => this.consumer.seek({ topic, partition, offset: String(offset) }));
  }

  private controlOf(p: LibraryBatchPayload, commits: boolean): FetchControl {
    const generation = this.membership.generation;
    const { topic, partition } = p.batch;
    return {
      // Stale: a seek is pending for the partition, or it was revoked since (the package marks
      // neither a revoke nor our generation).
      isActive: () => !this.stopped && p.isRunning() && !p.isStale() && generation === this.membership.generation,
      heartbeat: () => p.heartbeat(), // librdkafka heartbeats by itself
      done: async (offset) => {
        if (commits) this.doneOffsets.done(topic, partition, offset);
      },
    };
  }

  pause(topics: readonly string[]): void {
    for (const t of topics) this.paused.add(t);
    this.call(() => this.consumer.pause(topics.map((topic) => ({ topic }))));
  }

  resume(topics: readonly string[]): void {
    for (const t of topics) this.paused.delete(t);
    this.call(() => this.consumer.resume(topics.map((topic) => ({ topic }))));
  }

  /** Pauses the newly assigned partitions of paused topics. */
  pauseAssigned(assignment: readonly { topic: string; partition: number }[]): void {
    const byTopic = assignmentByTopic(assignment.filter((tp) => this.paused.has(tp.topic)));
    const toppars = Object.entries(byTopic).map(([topic, partitions]) => ({ topic, partitions }));
    if (toppars.length > 0) this.call(() => this.consumer.pause(toppars));
  }

  /** The package refuses pause and resume unless connected: after disconnect there is nothing to pause. */
  private call(fn: () => void): void {
    if (this.stopped) return;
    fn();
  }

  async disconnect(): Promise<void> {
    // What was marked done before leaving is committed while still a member.
    await this.doneOffsets.flush();
    this.stopped = true;
    await this.consumer.disconnect();
  }
}

function fetchedOf({ batch }: LibraryBatchPayload): FetchedRecords {
  // The package reports -1001 when it does not know the end yet: then no lag is claimed.
  const high = BigInt(batch.highWatermark);
  const last = batch.messages.length > 0 ? BigInt(batch.messages[batch.messages.length - 1]!.offset) + 1n : 0n;
  return { topic: batch.topic, partition: batch.partition, records: batch.messages.map((m) => toInputRecord(batch.topic, batch.partition, m)), highWatermark: high < 0n ? last : high };
}
