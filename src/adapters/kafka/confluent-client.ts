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
import { catchUpOf, type CatchUp } from './catch-up.js';
import { assignmentByTopic, connected, hasCause, offsetsByTopic, toInputRecord, topicMessagesOf, TRANSIENT_KAFKA_ERROR, type FetchedMessage, type LibraryMessage } from './client-common.js';
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
  KafkaTransaction,
  PartitionOffsets,
  PartitionRead,
  PartitionReadOptions,
  ProducerOptions,
  TopicRecords,
  TopicSpec,
  TransactionalProducer,
  TransactionOffsets,
} from './port.js';
import { ProducerFencedError, ProduceTooLargeError } from './port.js';

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
  fetchOffsets(o: { groupId: string; topics: string[]; requireStableOffsets?: boolean }): Promise<{ topic: string; partitions: { partition: number; offset: string; error: Error | null }[] }[]>;
}
type LibrarySendResult = { topicName: string; partition: number; baseOffset?: string; offset?: string }[];
interface LibraryProducer extends LibraryClient {
  sendBatch(o: { topicMessages: { topic: string; messages: LibraryMessage[] }[] }): Promise<LibrarySendResult>;
  /** Resolves with the producer itself: it is its own (single) transaction. */
  transaction(): Promise<LibraryProducer>;
  sendOffsets(o: { consumer: LibraryConsumer; topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
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
  /**
   * The node-rdkafka consumer underneath (the package's own sendOffsets uses it too): its
   * position() is librdkafka's, which moves past transaction markers and aborted records.
   */
  _getInternalClient(): { position(toppars?: { topic: string; partition: number }[]): { topic: string; partition: number; offset?: number }[] };
}
/** What the package hands its rebalance callback (a librdkafka error whose code says assign or revoke). */
interface RebalanceEvent {
  readonly code: number;
}

/** librdkafka's RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS; anything else the callback gets is a revoke. */
const ERR_ASSIGN_PARTITIONS = -175;
/** Kafka's MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE: librdkafka reports the broker's codes as they are (and 10 for its own size check). */
const TOO_LARGE_CODES = new Set([10, 18]);
/**
 * librdkafka's ERR__FENCED (its fatal error for a fenced transactional producer), the broker's
 * PRODUCER_FENCED and INVALID_PRODUCER_EPOCH: a newer producer of the transactional id exists.
 */
const FENCED_CODES = new Set([-144, 90, 47]);
/** librdkafka's ERR__FATAL: what a producer in a fatal state answers; fenced when its message says so. */
const ERR_FATAL = -150;
/**
 * How long the broker lets a transaction stay open before it aborts it (the package's default is
 * 60 s; Kafka Streams uses 10 s, as the kafkajs client does): an open transaction of a producer that
 * lost the broker holds back every read_committed reader of its partitions until then.
 */
const TRANSACTION_TIMEOUT_MS = 10_000;
/** How often a bounded read looks whether librdkafka's position passed a partition's end (see readFromBeginning). */
const CATCH_UP_POLL_MS = 100;
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

/** A transactional producer: as producerConfig, with its transactional id (which makes it idempotent). */
export function transactionalProducerConfig(transactionalId: string): LibraryConfig {
  const c = producerConfig({});
  return { ...c, kafkaJS: { ...(c['kafkaJS'] as LibraryConfig), transactionalId, transactionTimeout: TRANSACTION_TIMEOUT_MS } };
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
      // exactly_once: only committed transactions' records are processed (librdkafka's default too).
      readUncommitted: false,
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
      // The changelog restore must not apply records of transactions that may still abort.
      readUncommitted: false,
      allowAutoTopicCreation: false,
      ...(o.follow ? {} : { maxBytesPerPartition: BULK_FETCH_BYTES }),
    },
  };
}

/** Whether the broker (or librdkafka's own size check) refused records as too large. */
export function isTooLarge(err: unknown): boolean {
  return hasCause(err, (e) => TOO_LARGE_CODES.has((e as Error & { code?: unknown }).code as number));
}

/** Whether a transactional call failed because a newer producer of the same transactional id fenced this one. */
export function isFenced(err: unknown): boolean {
  return hasCause(err, (e) => {
    const code = (e as Error & { code?: unknown }).code as number;
    return FENCED_CODES.has(code) || (code === ERR_FATAL && /fenced/i.test(e.message));
  });
}

/** librdkafka's fencing errors as ProducerFencedError, so the caller knows not to init again. */
async function fenceAware<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isFenced(err)) throw new ProducerFencedError(`fenced by a newer producer of the same transactional id: ${(err as Error).message}`, { cause: err });
    throw err;
  }
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

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    // connect() inits the transactional id: that fences an earlier producer of the same id.
    return new ConfluentTransactionalProducer(await fenceAware(() => this.library().then((k) => connected(k.producer(transactionalProducerConfig(transactionalId))))));
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
    const positions = o.follow ? null : new PositionWatch(consumer, o.topic, catchUp);
    try {
      await consumer.subscribe({ topics: [o.topic] });
      // The package applies seeks made before the assignment once it comes.
      for (const [partition, offset] of from) if (!wanted || wanted.has(partition)) consumer.seek({ topic: o.topic, partition, offset: String(offset) });
      await consumer.run({
        eachBatch: async ({ batch }) => {
          if (wanted && !wanted.has(batch.partition)) return;
          positions?.handling();
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
          } finally {
            positions?.handled();
          }
          catchUp.fetched(batch.partition, BigInt(batch.lastOffset()) + 1n);
        },
      });
    } catch (err) {
      positions?.stop();
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
    positions?.start([...(wanted ?? [])]);
    return {
      caughtUp,
      stop: () => {
        positions?.stop();
        return consumer.disconnect();
      },
    };
  }
}

/**
 * A bounded read's catch-up past records the package never hands over: a partition whose tail is a
 * transaction marker (every exactly_once changelog write ends with one) or an aborted transaction
 * would otherwise never reach its end. librdkafka's position moves past those once it took them from
 * the broker; records it took before are handed over first. So a partition counts as fetched to its
 * position when no handler runs and none began since the previous look (the records taken with that
 * position may still be on their way into the package's cache, a moment later).
 */
class PositionWatch {
  private running = 0;
  private began = 0;
  private seen = -1;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly consumer: LibraryConsumer,
    private readonly topic: string,
    private readonly catchUp: CatchUp,
  ) {}

  handling(): void {
    this.running++;
    this.began++;
  }

  handled(): void {
    this.running--;
  }

  /** `partitions`: those to watch; every partition of the topic when empty. */
  start(partitions: readonly number[]): void {
    this.timer = setInterval(() => this.look(partitions), CATCH_UP_POLL_MS);
    this.timer.unref();
    void this.catchUp.reached.then(() => this.stop());
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private look(partitions: readonly number[]): void {
    const quiet = this.running === 0 && this.began === this.seen;
    this.seen = this.began;
    if (!quiet) return;
    let positions;
    try {
      positions = this.consumer._getInternalClient().position(partitions.length > 0 ? partitions.map((partition) => ({ topic: this.topic, partition })) : undefined);
    } catch {
      return; // not assigned yet: the next look
    }
    for (const p of positions) if (p.topic === this.topic && typeof p.offset === 'number' && p.offset >= 0) this.catchUp.fetched(p.partition, BigInt(p.offset));
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

  async committedOffsets(groupId: string, topics: readonly string[], partition: number): Promise<Map<string, bigint>> {
    // Stable: the broker answers once no transaction committing offsets of the group is pending.
    const out = new Map<string, bigint>();
    for (const t of await this.admin.fetchOffsets({ groupId, topics: [...topics], requireStableOffsets: true })) {
      const p = t.partitions.find((x) => x.partition === partition);
      if (!p) continue;
      if (p.error) throw new Error(`reading the committed offset of ${t.topic}/${partition} for ${groupId} failed: ${p.error.message}`, { cause: p.error });
      if (BigInt(p.offset) >= 0n) out.set(t.topic, BigInt(p.offset)); // -1: none committed
    }
    return out;
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

/** A send through the package's sendBatch (acks=-1 is the producer's), its refusals as too large told apart. */
async function sendBatchOf(sendBatch: (o: { topicMessages: { topic: string; messages: LibraryMessage[] }[] }) => Promise<LibrarySendResult>, batches: readonly TopicRecords[]): Promise<Appended[]> {
  const topicMessages = topicMessagesOf(batches);
  if (topicMessages.length === 0) return [];
  let meta;
  try {
    meta = await sendBatch({ topicMessages });
  } catch (err) {
    if (isTooLarge(err)) throw new ProduceTooLargeError(`the broker refused records as too large: ${(err as Error).message}`, batches, { cause: err });
    throw err;
  }
  return meta.map((m) => ({ topic: m.topicName, partition: m.partition, baseOffset: m.baseOffset ?? m.offset ?? '-1' }));
}

class ConfluentProducer implements KafkaProducer {
  constructor(private readonly producer: LibraryProducer) {}

  send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    return sendBatchOf((o) => this.producer.sendBatch(o), batches);
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}

class ConfluentTransactionalProducer implements TransactionalProducer {
  constructor(private readonly producer: LibraryProducer) {}

  async begin(): Promise<KafkaTransaction> {
    return new ConfluentTransaction(await fenceAware(() => this.producer.transaction()));
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}

class ConfluentTransaction implements KafkaTransaction {
  constructor(private readonly tx: LibraryProducer) {}

  send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    return sendBatchOf((o) => fenceAware(() => this.tx.sendBatch(o)), batches);
  }

  async sendOffsets(consumer: GroupConsumer, offsets: readonly TransactionOffsets[]): Promise<void> {
    // KIP-447: the package sends the member's group metadata (generation, member id), not a group id.
    const member = libraryConsumers.get(consumer);
    if (!member) throw new Error('sendOffsets needs a group consumer of the Confluent client');
    await fenceAware(() => this.tx.sendOffsets({ consumer: member, topics: offsetsByTopic(offsets) }));
  }

  commit(): Promise<void> {
    return fenceAware(() => this.tx.commit());
  }

  abort(): Promise<void> {
    return fenceAware(() => this.tx.abort());
  }
}

/** The package's consumer behind each of our group consumers (a transaction's sendOffsets needs it). */
const libraryConsumers = new WeakMap<GroupConsumer, LibraryConsumer>();

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
  readonly groupId: string;
  private readonly paused = new Set<string>();
  private readonly failures = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly consumer: LibraryConsumer,
    private readonly o: GroupConsumerOptions,
    private readonly membership: Membership,
    private readonly doneOffsets: DoneOffsets,
  ) {
    this.groupId = o.groupId;
    libraryConsumers.set(this, consumer);
  }

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
