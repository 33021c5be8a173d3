/**
 * The Kafka port (./port.ts) on kafkajs. With co-partitioned-assigner.ts, the only modules that
 * import the library: another client (e.g. librdkafka-based) is one more file like this one.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners, type Admin, type ConfigResourceTypes, type Consumer, type EachBatchPayload, type LogEntry, type Producer, type ProducerBatch, type RecordMetadata, type Transaction } from 'kafkajs';
import type { InputRecord } from '../../domain/events.js';
import type { Logger } from '../../util/log.js';
import { catchUpOf } from './catch-up.js';
import { connected, hasCause, offsetsByTopic, toInputRecord, topicMessagesOf, TRANSIENT_KAFKA_ERROR } from './client-common.js';
import { CoPartitionedAssigner } from './co-partitioned-assigner.js';
import { DoneOffsets } from './done-offsets.js';
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
  KafkaTransaction,
  TransactionalProducer,
  TransactionOffsets,
  TopicRecords,
  TopicSpec,
} from './port.js';
import { ProducerFencedError, ProduceTooLargeError } from './port.js';

/** A bounded read (the changelog restore) is a bulk load: large fetches. */
const BULK_FETCH_BYTES = 8 << 20;
const REBALANCE_TIMEOUT_MS = 60_000;
/**
 * How long the broker lets a transaction stay open before it aborts it (kafkajs's default is 60 s;
 * Kafka Streams uses 10 s for exactly_once). A transaction left open by a producer that lost the
 * broker holds back every read_committed reader of its partitions, our own changelog restore
 * included, until then.
 */
const TRANSACTION_TIMEOUT_MS = 10_000;
// kafkajs's ConfigResourceTypes values (its CommonJS export is not a named ESM export).
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;
const BROKER_RESOURCE = 4 as ConfigResourceTypes;

export const createKafkajsClient: KafkaClientFactory = (settings) => new KafkajsClient(settings);

function createKafka(s: KafkaClientSettings): Kafka {
  const log = s.logger.child({ component: 'kafkajs' });
  // kafkajs logs transient errors that it retries at ERROR; they are warnings for us, and the ones
  // every fresh cluster shows (the offsets topic's coordinator being elected) are only debug.
  const logCreator = () => (entry: LogEntry) => {
    const { message, ...rest } = entry.log;
    const fields = { namespace: entry.namespace, ...rest };
    if (typeof rest.error === 'string' && TRANSIENT_KAFKA_ERROR.test(rest.error)) log.debug(message, fields);
    else if (entry.level === logLevel.ERROR || entry.level === logLevel.WARN) log.warn(message, fields);
    else if (entry.level === logLevel.INFO) log.debug(message, fields);
  };
  return new Kafka({
    clientId: s.clientId,
    brokers: [...s.brokers],
    logLevel: logLevel.WARN,
    logCreator,
    retry: { initialRetryTime: 200, retries: s.retry?.retries ?? 10, maxRetryTime: s.retry?.maxRetryTimeMs ?? 5000 },
    ...(s.connectionTimeoutMs !== undefined ? { connectionTimeout: s.connectionTimeoutMs } : {}),
    ...(s.requestTimeoutMs !== undefined ? { requestTimeout: s.requestTimeoutMs } : {}),
  });
}

class KafkajsClient implements KafkaClient {
  readonly brokers: readonly string[];
  private readonly kafka: Kafka;
  private readonly log: Logger;

  constructor(settings: KafkaClientSettings) {
    this.brokers = [...settings.brokers];
    this.kafka = createKafka(settings);
    this.log = settings.logger.child({ component: 'kafkajs' });
  }

  async admin(): Promise<KafkaAdmin> {
    return new KafkajsAdmin(await connected(this.kafka.admin()));
  }

  async producer(o: ProducerOptions = {}): Promise<KafkaProducer> {
    const producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      ...(o.retries !== undefined ? { retry: { retries: o.retries } } : {}),
    });
    return new KafkajsProducer(await connected(producer));
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    // Transactions need idempotence and one request in flight (kafkajs refuses more).
    const producer = this.kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner, transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: TRANSACTION_TIMEOUT_MS });
    return new KafkajsTransactionalProducer(await connected(producer));
  }

  async groupConsumer(o: GroupConsumerOptions): Promise<GroupConsumer> {
    const consumer = this.kafka.consumer({
      groupId: o.groupId,
      ...(o.coPartitioned ? { partitionAssigners: [CoPartitionedAssigner] } : {}),
      ...(o.sessionTimeoutMs !== undefined ? { sessionTimeout: o.sessionTimeoutMs, heartbeatInterval: Math.floor(o.sessionTimeoutMs / 10) } : {}),
      ...(o.fetchMaxWaitMs !== undefined ? { maxWaitTimeInMs: o.fetchMaxWaitMs } : {}),
      rebalanceTimeout: REBALANCE_TIMEOUT_MS,
    });
    const group = new KafkajsGroupConsumer(consumer, o, this.log);
    // Listeners before connecting, so the first generation is not missed; ours first (it decides
    // which partitions done() still commits).
    consumer.on(consumer.events.GROUP_JOIN, (e) => group.assigned(e.payload.memberAssignment));
    const ev = o.events;
    if (ev?.assigned) consumer.on(consumer.events.GROUP_JOIN, (e) => ev.assigned!(e.payload.memberAssignment));
    if (ev?.rebalancing) consumer.on(consumer.events.REBALANCING, () => ev.rebalancing!());
    consumer.on(consumer.events.CRASH, (e) => {
      // kafkajs restarts only on errors it calls retriable; a coordinator it could not find while
      // the broker came back is one it gives up on, so the member restarts itself then.
      const restarting = e.payload.restart || group.restartAfter(e.payload.error);
      ev?.crashed?.(e.payload.error, restarting);
    });
    await connected(consumer);
    return group;
  }

  /** kafkajs has no manual assignment: a throwaway consumer group reads the topic, keeping the wanted partitions. */
  async readFromBeginning(o: PartitionReadOptions): Promise<PartitionRead> {
    const catchUp = await catchUpOf(await this.admin(), o);
    const from = o.from ?? new Map<number, bigint>();
    if (!o.follow && catchUp.done) return { caughtUp: Promise.resolve(), stop: async () => undefined };

    const consumer = await connected(this.kafka.consumer({ groupId: `${o.label}.${randomUUID()}`, ...(o.follow ? {} : { maxBytesPerPartition: BULK_FETCH_BYTES }) }));
    let fail!: (err: unknown) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    // A bounded read fails on any crash (its caller retries by restarting); a following one only
    // when kafkajs gives up, since it restarts the consumer otherwise.
    consumer.on(consumer.events.CRASH, (e) => {
      if (!o.follow || !e.payload.restart) fail(e.payload.error);
    });
    const caughtUp = Promise.race([catchUp.reached, failed]);
    const wanted = o.partitions ? new Set(o.partitions) : null;
    // A fetch of only aborted records or transaction markers reaches no eachBatch (kafkajs moves
    // past it by itself), but its end counts: a changelog whose last transaction was aborted (a
    // producer that lost the broker, exactly_once) would otherwise never be caught up.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      if (!wanted || wanted.has(e.payload.partition)) catchUp.fetched(e.payload.partition, BigInt(e.payload.lastOffset) + 1n);
    });
    try {
      await consumer.subscribe({ topic: o.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch, heartbeat }) => {
          if (wanted && !wanted.has(batch.partition)) return;
          const records: InputRecord[] = [];
          const start = from.get(batch.partition);
          for (const m of batch.messages) {
            if (start !== undefined && BigInt(m.offset) < start) continue; // fetched before the seek took effect
            if (!o.follow && !catchUp.before(batch.partition, BigInt(m.offset))) break;
            records.push(toInputRecord(batch.topic, batch.partition, m));
          }
          if (records.length > 0) await o.onRecords(records);
          catchUp.fetched(batch.partition, BigInt(batch.lastOffset()) + 1n);
          await heartbeat();
        },
      });
      // kafkajs seeks once the consumer runs; anything fetched before that is skipped above.
      for (const [partition, offset] of from) if (!wanted || wanted.has(partition)) consumer.seek({ topic: o.topic, partition, offset: String(offset) });
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
    return { caughtUp, stop: () => consumer.disconnect() };
  }
}

class KafkajsAdmin implements KafkaAdmin {
  constructor(private readonly admin: Admin) {}

  listTopics(): Promise<string[]> {
    return this.admin.listTopics();
  }

  async createTopics(topics: readonly TopicSpec[]): Promise<void> {
    if (topics.length === 0) return;
    await this.admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((t) => ({
        topic: t.topic,
        numPartitions: t.partitions,
        ...(t.replication !== undefined ? { replicationFactor: t.replication } : {}),
        configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
      })),
    });
  }

  async deleteTopics(topics: readonly string[]): Promise<void> {
    await this.admin.deleteTopics({ topics: [...topics] });
  }

  async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const meta = await this.admin.fetchTopicMetadata({ topics: [...topics] });
    return new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
  }

  async partitionOffsets(topic: string): Promise<PartitionOffsets[]> {
    return (await this.admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, low: BigInt(p.low), high: BigInt(p.high) }));
  }

  async liveBrokers(): Promise<number> {
    return (await this.admin.describeCluster()).brokers.length;
  }

  async topicConfigs(topics: readonly string[], names: readonly string[]): Promise<Map<string, ReadonlyMap<string, string>>> {
    return this.describe(topics.map((name) => ({ type: TOPIC_RESOURCE, name })), names);
  }

  async brokerConfigs(names: readonly string[]): Promise<ReadonlyMap<string, string>[]> {
    const { brokers } = await this.admin.describeCluster();
    const byId = await this.describe(brokers.map((b) => ({ type: BROKER_RESOURCE, name: String(b.nodeId) })), names);
    return [...byId.values()];
  }

  async committedOffsets(groupId: string, topics: readonly string[], partition: number): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    for (const t of await this.admin.fetchOffsets({ groupId, topics: [...topics] })) {
      const p = t.partitions.find((x) => x.partition === partition);
      if (p && BigInt(p.offset) >= 0n) out.set(t.topic, BigInt(p.offset)); // -1: none committed
    }
    return out;
  }

  private async describe(resources: { type: ConfigResourceTypes; name: string }[], names: readonly string[]): Promise<Map<string, ReadonlyMap<string, string>>> {
    const out = new Map<string, ReadonlyMap<string, string>>();
    if (resources.length === 0) return out;
    const r = await this.admin.describeConfigs({ includeSynonyms: false, resources: resources.map((x) => ({ ...x, configNames: [...names] })) });
    for (const res of r.resources) {
      if (res.errorCode !== 0) throw new Error(`describing the configs of ${res.resourceName} failed: ${res.errorMessage || `error code ${res.errorCode}`}`);
      out.set(res.resourceName, new Map(res.configEntries.map((e) => [e.configName, e.configValue])));
    }
    return out;
  }

  disconnect(): Promise<void> {
    return this.admin.disconnect();
  }
}

/** A send through kafkajs's sendBatch (a producer's or a transaction's), acks=-1, its refusals as too large told apart. */
async function sendBatchOf(sendBatch: (b: ProducerBatch) => Promise<RecordMetadata[]>, batches: readonly TopicRecords[]): Promise<Appended[]> {
  const topicMessages = topicMessagesOf(batches);
  if (topicMessages.length === 0) return [];
  let meta;
  try {
    meta = await sendBatch({ acks: -1, topicMessages });
  } catch (err) {
    if (isTooLarge(err)) throw new ProduceTooLargeError(`the broker refused records as too large: ${(err as Error).message}`, batches, { cause: err });
    throw err;
  }
  return meta.map((m) => ({ topic: m.topicName, partition: m.partition, baseOffset: m.baseOffset ?? m.offset ?? '-1' }));
}

class KafkajsProducer implements KafkaProducer {
  constructor(private readonly producer: Producer) {}

  send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    return sendBatchOf((b) => this.producer.sendBatch(b), batches);
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}

class KafkajsTransactionalProducer implements TransactionalProducer {
  constructor(private readonly producer: Producer) {}

  async begin(): Promise<KafkaTransaction> {
    // The first one inits the producer id: that fences an earlier producer of the same id.
    const tx = await fenceAware(() => this.producer.transaction());
    return new KafkajsTransaction(tx);
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}

class KafkajsTransaction implements KafkaTransaction {
  constructor(private readonly tx: Transaction) {}

  send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    return sendBatchOf((b) => fenceAware(() => this.tx.sendBatch(b)), batches);
  }

  async sendOffsets(consumer: GroupConsumer, offsets: readonly TransactionOffsets[]): Promise<void> {
    // kafkajs commits by group id (no KIP-447 group metadata).
    await fenceAware(() => this.tx.sendOffsets({ consumerGroupId: consumer.groupId, topics: offsetsByTopic(offsets) }));
  }

  commit(): Promise<void> {
    return fenceAware(() => this.tx.commit());
  }

  abort(): Promise<void> {
    return fenceAware(() => this.tx.abort());
  }
}

const FENCED = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']);

/** Crashes of the group member that mean the broker is away or recovering, by error name (anywhere in the cause chain). */
const RESTARTABLE_CRASHES = new Set(['KafkaJSGroupCoordinatorNotFound', 'KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSNoBrokerAvailableError', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound']);
/** How long the member keeps trying to start again before its crash stands (the processor then exits). */
const RESTART_FOR_MS = 5 * 60_000;

/** The broker's fencing errors as ProducerFencedError, so the caller knows not to init again. */
async function fenceAware<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (hasCause(err, (e) => FENCED.has((e as Error & { type?: string }).type ?? ''))) throw new ProducerFencedError(`fenced by a newer producer of the same transactional id: ${(err as Error).message}`, { cause: err });
    throw err;
  }
}

/**
 * The consumer-group member. Offsets are ours to commit (kafkajs's autoCommit is off): kafkajs's
 * "resolved" offset is its fetch position, resolved past each fetch once the handler returns, so
 * a pipelined handler can take a fetch and mark it done later (see DoneOffsets).
 */
export class KafkajsGroupConsumer implements GroupConsumer {
  readonly groupId: string;
  private readonly doneOffsets: DoneOffsets;
  /** What run() started kafkajs with, to start it again after a crash kafkajs does not restart from. */
  private started: Parameters<Consumer['run']>[0] | undefined;
  private stopping = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly o: GroupConsumerOptions,
    private readonly log: Logger,
  ) {
    this.groupId = o.groupId;
    this.doneOffsets = new DoneOffsets((offsets) => this.consumer.commitOffsets(offsets), log);
  }

  /** A new generation: offsets of revoked partitions are no longer ours to commit. */
  assigned(assignment: Readonly<Record<string, readonly number[]>>): void {
    this.doneOffsets.assigned(assignment);
  }

  async run(handle: (fetched: FetchedRecords, control: FetchControl) => Promise<void>): Promise<void> {
    await this.consumer.subscribe({ topics: [...this.o.topics], fromBeginning: true });
    const commits = (this.o.commits ?? 'done') === 'done';
    // kafkajs resolves each fetch once the handler returns: the next fetch continues after it.
    this.started = {
      autoCommit: false,
      partitionsConsumedConcurrently: this.o.partitionsConcurrently ?? 1,
      eachBatch: (p) => handle(fetchedOf(p), this.controlOf(p, commits)),
    };
    await this.consumer.run(this.started);
  }

  /**
   * Whether the member starts itself again after a crash kafkajs will not restart from: a broker
   * that is away or still loading its coordinator (kafkajs gives up on finding it), not a bug of
   * ours. It reconnects with backoff for up to RESTART_FOR_MS, then lets the crash stand.
   */
  restartAfter(error: unknown): boolean {
    if (this.stopping || !this.started || !hasCause(error, (e) => RESTARTABLE_CRASHES.has((e as Error).name))) return false;
    void this.restart(this.started);
    return true;
  }

  private async restart(config: Parameters<Consumer['run']>[0]): Promise<void> {
    const until = Date.now() + RESTART_FOR_MS;
    for (let wait = 500; !this.stopping; wait = Math.min(2 * wait, 5000)) {
      await new Promise((r) => setTimeout(r, wait));
      try {
        await this.consumer.connect();
        await this.consumer.run(config);
        this.log.warn('event consumer restarted after a crash kafkajs does not restart from', { groupId: this.groupId });
        return;
      } catch (err) {
        if (Date.now() > until) {
          this.log.error('event consumer could not restart', { err, groupId: this.groupId });
          this.o.events?.crashed?.(err, false);
          return;
        }
      }
    }
  }

  seek(topic: string, partition: number, offset: bigint): void {
    if (!this.doneOffsets.isOwned(topic, partition)) return;
    try {
      this.consumer.seek({ topic, partition, offset: String(offset) });
    } catch (err) {
      // kafkajs refuses a seek while it restarts after a crash; the restarted member fetches from
      // the committed offsets, which lie at or before every record not acknowledged.
      this.log.warn('a rewind was refused by the restarting consumer: it resumes at the committed offset', { err, topic, partition, offset: String(offset) });
    }
  }

  pause(topics: readonly string[]): void {
    this.consumer.pause(topics.map((topic) => ({ topic })));
  }

  resume(topics: readonly string[]): void {
    this.consumer.resume(topics.map((topic) => ({ topic })));
  }

  async disconnect(): Promise<void> {
    this.stopping = true;
    // What was marked done before leaving is committed while still a member.
    await this.doneOffsets.flush();
    await this.consumer.disconnect();
  }

  private controlOf(p: EachBatchPayload, commits: boolean): FetchControl {
    const { topic, partition } = p.batch;
    return {
      // Stale: a seek is pending for the partition, this fetch is from before it.
      isActive: () => p.isRunning() && !p.isStale(),
      heartbeat: () => p.heartbeat(),
      done: async (offset) => {
        if (commits) this.doneOffsets.done(topic, partition, offset);
      },
    };
  }
}

function fetchedOf({ batch }: EachBatchPayload): FetchedRecords {
  return { topic: batch.topic, partition: batch.partition, records: batch.messages.map((m) => toInputRecord(batch.topic, batch.partition, m)), highWatermark: BigInt(batch.highWatermark) };
}

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/** kafkajs wraps the broker's error (KafkaJSProtocolError, with its type) in the retrier's. */
const isTooLarge = (err: unknown): boolean => hasCause(err, (e) => TOO_LARGE.has((e as Error & { type?: string }).type ?? ''));
