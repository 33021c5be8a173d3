/**
 * The Kafka port (./port.ts) on kafkajs. With co-partitioned-assigner.ts, the only modules that
 * import the library: another client (e.g. librdkafka-based) is one more file like this one.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners, type Admin, type ConfigResourceTypes, type Consumer, type EachBatchPayload, type KafkaMessage, type LogEntry, type Message, type Producer } from 'kafkajs';
import type { InputRecord } from '../../domain/events.js';
import type { Logger } from '../../util/log.js';
import { CatchUp } from './catch-up.js';
import { CoPartitionedAssigner } from './co-partitioned-assigner.js';
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
  OutboundRecord,
  PartitionOffsets,
  PartitionRead,
  PartitionReadOptions,
  ProducerOptions,
  TopicRecords,
  TopicSpec,
} from './port.js';
import { ProduceTooLargeError } from './port.js';

const TRANSIENT = /coordinator is not available|not the correct coordinator|leader is not available|group is rebalancing/i;
/** A bounded read (the changelog restore) is a bulk load: large fetches. */
const BULK_FETCH_BYTES = 8 << 20;
const REBALANCE_TIMEOUT_MS = 60_000;
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
    if (typeof rest.error === 'string' && TRANSIENT.test(rest.error)) log.debug(message, fields);
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

/** Connects, or cleans up and rethrows: a failed connect must not leave sockets or timers behind. */
async function connected<T extends { connect(): Promise<void>; disconnect(): Promise<void> }>(x: T): Promise<T> {
  try {
    await x.connect();
    return x;
  } catch (err) {
    await x.disconnect().catch(() => undefined);
    throw err;
  }
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
    if (ev?.crashed) consumer.on(consumer.events.CRASH, (e) => ev.crashed!(e.payload.error, e.payload.restart));
    await connected(consumer);
    return group;
  }

  /** kafkajs has no manual assignment: a throwaway consumer group reads the topic, keeping the wanted partitions. */
  async readFromBeginning(o: PartitionReadOptions): Promise<PartitionRead> {
    const admin = await this.admin();
    let ends: PartitionOffsets[];
    try {
      ends = await admin.partitionOffsets(o.topic);
    } finally {
      await admin.disconnect();
    }
    // A partition read from an offset of its own is caught up once it reaches its end from there.
    const from = o.from ?? new Map<number, bigint>();
    const catchUp = new CatchUp(
      ends.map((e) => ({ ...e, low: from.has(e.partition) ? from.get(e.partition)! : e.low })),
      o.partitions,
    );
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

class KafkajsProducer implements KafkaProducer {
  constructor(private readonly producer: Producer) {}

  async send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    const topicMessages = batches.filter((b) => b.records.length > 0).map((b) => ({ topic: b.topic, messages: b.records.map(toMessage) }));
    if (topicMessages.length === 0) return [];
    let meta;
    try {
      meta = await this.producer.sendBatch({ acks: -1, topicMessages });
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

/** Commits done offsets at most this often: one request covers every partition's latest. */
const COMMIT_INTERVAL_MS = 100;
/** A failed commit (a rebalance under way, the coordinator moving) is tried again after this. */
const COMMIT_RETRY_MS = 1000;

/**
 * The consumer-group member. Offsets are ours to commit (kafkajs's autoCommit is off): kafkajs's
 * "resolved" offset is its fetch position, resolved past each fetch once the handler returns, so
 * a pipelined handler can take a fetch and mark it done later; done() offsets are committed here,
 * coalesced, one commit request at a time, only for partitions still assigned.
 */
class KafkajsGroupConsumer implements GroupConsumer {
  /** `topic/partition` of the current assignment: done() of any other is dropped. */
  private owned = new Set<string>();
  private readonly toCommit = new Map<string, { topic: string; partition: number; offset: string }>();
  private committing: Promise<void> | null = null;
  private closing = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly o: GroupConsumerOptions,
    private readonly log: Logger,
  ) {}

  /** A new generation: offsets of revoked partitions are no longer ours to commit. */
  assigned(assignment: Readonly<Record<string, readonly number[]>>): void {
    this.owned = new Set(Object.entries(assignment).flatMap(([topic, parts]) => parts.map((p) => `${topic}/${p}`)));
    for (const key of this.toCommit.keys()) if (!this.owned.has(key)) this.toCommit.delete(key);
  }

  async run(handle: (fetched: FetchedRecords, control: FetchControl) => Promise<void>): Promise<void> {
    await this.consumer.subscribe({ topics: [...this.o.topics], fromBeginning: true });
    const commits = this.o.commits !== 'none';
    // kafkajs resolves each fetch once the handler returns: the next fetch continues after it.
    await this.consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: this.o.partitionsConcurrently ?? 1,
      eachBatch: (p) => handle(fetchedOf(p), this.controlOf(p, commits)),
    });
  }

  seek(topic: string, partition: number, offset: bigint): void {
    if (this.owned.has(`${topic}/${partition}`)) this.consumer.seek({ topic, partition, offset: String(offset) });
  }

  pause(topics: readonly string[]): void {
    this.consumer.pause(topics.map((topic) => ({ topic })));
  }

  resume(topics: readonly string[]): void {
    this.consumer.resume(topics.map((topic) => ({ topic })));
  }

  async disconnect(): Promise<void> {
    // What was marked done before leaving is committed while still a member.
    this.closing = true;
    while (this.committing) await this.committing;
    if (this.toCommit.size > 0) await this.commit(false);
    await this.consumer.disconnect();
  }

  private controlOf(p: EachBatchPayload, commits: boolean): FetchControl {
    const { topic, partition } = p.batch;
    const key = `${topic}/${partition}`;
    return {
      // Stale: a seek is pending for the partition, this fetch is from before it.
      isActive: () => p.isRunning() && !p.isStale(),
      heartbeat: () => p.heartbeat(),
      done: async (offset) => {
        if (!commits || !this.owned.has(key)) return;
        // Kafka commits the next offset to read.
        this.toCommit.set(key, { topic, partition, offset: String(BigInt(offset) + 1n) });
        this.committing ??= this.commit(true).finally(() => (this.committing = null));
      },
    };
  }

  /** Commits what is marked done, until nothing is left; `paced`: at most every COMMIT_INTERVAL_MS. */
  private async commit(paced: boolean): Promise<void> {
    while (this.toCommit.size > 0) {
      if (paced) await sleep(COMMIT_INTERVAL_MS);
      const offsets = [...this.toCommit.values()];
      this.toCommit.clear();
      try {
        await this.consumer.commitOffsets(offsets);
      } catch (err) {
        // Kept for the next try unless a newer offset or a revocation came meanwhile.
        for (const c of offsets) {
          const key = `${c.topic}/${c.partition}`;
          if (this.owned.has(key) && !this.toCommit.has(key)) this.toCommit.set(key, c);
        }
        this.log.debug('committing offsets failed; trying again', { err });
        if (!paced || this.closing) return; // leaving: the next owner reads on from the last commit
        await sleep(COMMIT_RETRY_MS);
      }
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

function fetchedOf({ batch }: EachBatchPayload): FetchedRecords {
  return { topic: batch.topic, partition: batch.partition, records: batch.messages.map((m) => toInputRecord(batch.topic, batch.partition, m)), highWatermark: BigInt(batch.highWatermark) };
}

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/** kafkajs wraps the broker's error (KafkaJSProtocolError, with its type) in the retrier's: look through the causes. */
function isTooLarge(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (TOO_LARGE.has((e as Error & { type?: string }).type ?? '')) return true;
  }
  return false;
}

function toMessage(r: OutboundRecord): Message {
  return { key: r.key, value: r.value, ...(r.partition !== undefined ? { partition: r.partition } : {}), ...(r.headers ? { headers: { ...r.headers } } : {}) };
}

/** A fetched Kafka message as the transport-agnostic InputRecord the core takes. */
function toInputRecord(topic: string, partition: number, m: KafkaMessage): InputRecord {
  return { topic, partition, offset: m.offset, key: asBuffer(m.key), value: asBuffer(m.value), timestamp: Number(m.timestamp) };
}

/** Kafka keys and values come as Buffer | string | null; the core wants bytes. */
function asBuffer(v: Buffer | string | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}
