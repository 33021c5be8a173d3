/**
 * The Kafka client as the adapters use it: our own small interfaces, no client library's types. One
 * file per library implements them (kafkajs-client.ts now; a librdkafka-based client such as
 * @confluentinc/kafka-javascript would be one more), so the adapters' logic never changes with it.
 */
import type { InputRecord } from '../../domain/events.js';
import type { Logger } from '../../util/log.js';

export interface KafkaClientSettings {
  /** Bootstrap servers, host:port. */
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** Where the library's own log lines go (warnings and worse; retried transient errors as debug). */
  readonly logger: Logger;
  /** Failed requests are retried, backing off up to maxRetryTimeMs. Default: 10 retries, 5 s. */
  readonly retry?: { readonly retries: number; readonly maxRetryTimeMs: number };
  /** Short timeouts for a probe that must fail fast (the local broker's readiness check). */
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

/** What each client implementation exports. */
export type KafkaClientFactory = (settings: KafkaClientSettings) => KafkaClient;

/** Creates connected admins, producers and consumers for one cluster. */
export interface KafkaClient {
  /** The bootstrap servers: lets a test reach the same cluster with an independent reader. */
  readonly brokers: readonly string[];
  admin(): Promise<KafkaAdmin>;
  producer(options?: ProducerOptions): Promise<KafkaProducer>;
  /**
   * A transactional producer (idempotent) for PROCESSING_GUARANTEE=exactly_once. Its first
   * transaction fences any earlier producer with the same id (their open transaction is aborted).
   * Absent: the client cannot do transactions (a test's fake).
   */
  transactionalProducer?(transactionalId: string): Promise<TransactionalProducer>;
  /** A member of a consumer group; call run() to start fetching. */
  groupConsumer(options: GroupConsumerOptions): Promise<GroupConsumer>;
  /**
   * Reads partitions of a topic from their first offset (or from the offsets given): to the end
   * they had when the read began (the changelog restore), or on from there (the catalog, which
   * follows its topic). Commits nothing.
   */
  readFromBeginning(options: PartitionReadOptions): Promise<PartitionRead>;
}

// --- admin ---

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  /** The broker's default when absent. */
  readonly replication?: number;
  /** Topic-level configs, e.g. { 'cleanup.policy': 'compact' }. */
  readonly configs?: Readonly<Record<string, string>>;
}

/** Offsets are 64-bit: bigint. */
export interface PartitionOffsets {
  readonly partition: number;
  /** The first offset still held (compaction and retention move it). */
  readonly low: bigint;
  /** The next offset to be written: the end of the partition. */
  readonly high: bigint;
}

export interface KafkaAdmin {
  listTopics(): Promise<string[]>;
  /** Creates the topics and waits until their partitions have leaders. */
  createTopics(topics: readonly TopicSpec[]): Promise<void>;
  deleteTopics(topics: readonly string[]): Promise<void>;
  /** Partition count of each topic (all of them must exist). */
  partitionCounts(topics: readonly string[]): Promise<Map<string, number>>;
  partitionOffsets(topic: string): Promise<PartitionOffsets[]>;
  /** Brokers the cluster metadata lists (a readiness check). */
  liveBrokers(): Promise<number>;
  /**
   * Configs of topics as the cluster resolves them (the topic's own value, else the broker's
   * default): topic -> config name -> value. Names the cluster does not report are left out.
   */
  topicConfigs(topics: readonly string[], names: readonly string[]): Promise<Map<string, ReadonlyMap<string, string>>>;
  /** Configs of each live broker (e.g. message.max.bytes), as `topicConfigs` reports them. */
  brokerConfigs(names: readonly string[]): Promise<ReadonlyMap<string, string>[]>;
  /**
   * The offsets a consumer group committed for one partition of each topic (the next offset to
   * read); topics with none are left out. exactly_once only (kafkajs): without require_stable,
   * read it once no transaction committing them is pending.
   */
  committedOffsets?(groupId: string, topics: readonly string[], partition: number): Promise<Map<string, bigint>>;
  disconnect(): Promise<void>;
}

// --- producer ---

export interface OutboundRecord {
  readonly key: Buffer | null;
  /** null: a tombstone (compacted topics drop the key). */
  readonly value: Buffer | null;
  /** Absent: Kafka's default partitioner picks it (murmur2 of the key, as every client does). */
  readonly partition?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface TopicRecords {
  readonly topic: string;
  readonly records: readonly OutboundRecord[];
}

/** Where a send put its records: per topic-partition, the offset of the first one. */
export interface Appended {
  readonly topic: string;
  readonly partition: number;
  readonly baseOffset: string;
}

export interface ProducerOptions {
  /** Retries of a failed send before it rejects; the client's setting when absent. */
  readonly retries?: number;
}

export interface KafkaProducer {
  /**
   * Sends records of several topics together; resolves only once every one is acknowledged by all
   * in-sync replicas (acks=-1): callers commit input offsets after that, never before. Never
   * creates a topic. Rejects with ProduceTooLargeError when the broker refuses a record or a
   * record batch as too large (not retried: sending it again cannot succeed).
   */
  send(batches: readonly TopicRecords[]): Promise<Appended[]>;
  disconnect(): Promise<void>;
}

/** Input offsets committed with a transaction: the next offset to read per topic-partition. */
export interface TransactionOffsets {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** One open Kafka transaction: what is sent in it is visible to read_committed readers only once committed. */
export interface KafkaTransaction {
  /** As KafkaProducer.send; acknowledged means written, not yet committed. */
  send(batches: readonly TopicRecords[]): Promise<Appended[]>;
  /**
   * The consumer group's offsets, committed atomically with the transaction's records. `consumer`:
   * the member of the group that fetched them, made by the same client (kafkajs sends its group id;
   * the Confluent client its group metadata, KIP-447: the broker refuses the offsets of a member
   * that is no longer in the group's current generation).
   */
  sendOffsets(consumer: GroupConsumer, offsets: readonly TransactionOffsets[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface TransactionalProducer {
  /** Begins the next transaction (one at a time). */
  begin(): Promise<KafkaTransaction>;
  disconnect(): Promise<void>;
}

/** A newer producer with the same transactional id exists: this one may never write again. */
export class ProducerFencedError extends Error {
  override readonly name = 'ProducerFencedError';
}

/**
 * The broker refused records as too large for the topic or the broker (MESSAGE_TOO_LARGE,
 * RECORD_LIST_TOO_LARGE). `unsent`: what the send had not yet had acknowledged, when the sender
 * knows (a send split into several requests, see BoundedProducer); else the whole send.
 */
export class ProduceTooLargeError extends Error {
  override readonly name = 'ProduceTooLargeError';
  constructor(
    message: string,
    readonly unsent: readonly TopicRecords[] = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// --- group consumer ---

export interface GroupConsumerOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  /**
   * 'done' (the default): only offsets marked done are committed. Once the handler resolves, the
   * partition's next fetch continues after the last record handed over, done or not (the handler
   * took them: a pipelined consumer marks them done later, see FetchControl.done); seek() moves it
   * back. After a rejected handler, a restart or a rebalance, fetching continues from the committed
   * offset. 'none': every record handed over counts as read and nothing is committed (an observer
   * in a throwaway group); done() does nothing. 'transactional': as 'done', except that the offsets
   * are committed by transactional producers (KafkaTransaction.sendOffsets) and done() does nothing.
   */
  readonly commits?: 'done' | 'none' | 'transactional';
  /**
   * Partition p of every topic to the same member: co-partitioned topics keyed by user id then
   * bring all of a user's records to one instance. (kafkajs: our own assigner; a client without
   * custom assigners: the range assignor, which does the same for equal partition counts.)
   */
  readonly coPartitioned?: boolean;
  /** How soon the group gives a silent member's partitions to the others; the client's default when absent. */
  readonly sessionTimeoutMs?: number;
  /** Topic-partitions handled at once; each one's fetches still one after another. Default 1. */
  readonly partitionsConcurrently?: number;
  /** Longest the broker holds a fetch waiting for data (a latency probe wants it short). */
  readonly fetchMaxWaitMs?: number;
  readonly events?: GroupConsumerEvents;
}

export interface GroupConsumerEvents {
  /** A new generation of the group: this member's partitions, per topic. */
  assigned?(assignment: Readonly<Record<string, readonly number[]>>): void;
  /** The group is rebalancing: no assignment holds until the next `assigned`. */
  rebalancing?(): void;
  /** The consumer failed; `restarting`: the client starts it again by itself, else it stopped for good. */
  crashed?(error: unknown, restarting: boolean): void;
}

/** Records of one topic-partition from one fetch, in offset order. */
export interface FetchedRecords {
  readonly topic: string;
  readonly partition: number;
  readonly records: readonly InputRecord[];
  /** The partition's end at the fetch: the lag is what lies between it and the last record handled. */
  readonly highWatermark: bigint;
}

/** What a handler may ask about and do with the fetch it was given. */
export interface FetchControl {
  /** False once the consumer stops or the partition is being revoked: stop; what is not done goes to the next owner. */
  isActive(): boolean;
  /** Tells the group this member is alive during long work (a restore wait, a slow chunk). */
  heartbeat(): Promise<void>;
  /**
   * `offset` and all before it on this topic-partition are handled: they are committed soon (within
   * a second, and on disconnect). Callable after the handler returned, while the partition stays
   * assigned to this member; once it is revoked, done() does nothing (its next owner reads on from
   * the last commit).
   */
  done(offset: string): Promise<void>;
}

export interface GroupConsumer {
  readonly groupId: string;
  /**
   * Starts fetching and resolves once running. `handle` gets each fetch of a topic-partition; the
   * next fetch of that partition waits for it (see `commits` for where it continues). A group with
   * no committed offset for a partition reads it from the beginning (nothing is skipped).
   */
  run(handle: (fetched: FetchedRecords, control: FetchControl) => Promise<void>): Promise<void>;
  /**
   * The topic-partition's next fetch starts at `offset`: a rewind to the first record not
   * acknowledged, after a failed delivery of records already handed over. Fetches of it handed
   * over from the call until the rewound fetch report isActive() false. Ignored when the partition
   * is not assigned to this member.
   */
  seek(topic: string, partition: number, offset: bigint): void;
  /** Stops fetching these topics (backpressure); fetches in flight still arrive. */
  pause(topics: readonly string[]): void;
  resume(topics: readonly string[]): void;
  /** Lets the fetch in flight finish, commits what was marked done (also done() calls made before, still being committed), and leaves the group. */
  disconnect(): Promise<void>;
}

// --- reading from the beginning ---

export interface PartitionReadOptions {
  readonly topic: string;
  /** Every partition of the topic when absent. */
  readonly partitions?: readonly number[];
  /**
   * Per partition, the first offset to read (a local store's checkpoint: only the tail after it);
   * partitions not listed are read from their first offset. Each must lie within the partition
   * (between its first offset and its end, see KafkaAdmin.partitionOffsets).
   */
  readonly from?: ReadonlyMap<number, bigint>;
  /** true: keep reading new records after the end until stop(); false: records past the end are not handed over. */
  readonly follow: boolean;
  /** Names the reader to the cluster (kafkajs: the prefix of a throwaway consumer group). */
  readonly label: string;
  /** Each run of records of one partition, in offset order; awaited before that partition's next. */
  readonly onRecords: (records: InputRecord[]) => void | Promise<void>;
}

export interface PartitionRead {
  /** Resolves once every partition reached the end it had when the read began; rejects if the read fails first. */
  readonly caughtUp: Promise<void>;
  stop(): Promise<void>;
}
