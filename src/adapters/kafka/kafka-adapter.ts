import type { ProcessorMetrics } from '../../metrics/processor-metrics.js';
import type { Core } from '../../pipeline/core.js';
import type { ProcessResult } from '../../domain/outputs.js';
import type { Logger } from '../../util/log.js';
import { restoreChangelog } from './changelog-restorer.js';
import { teeChangelog } from './changelog-tee.js';
import { ConfigError } from '../../domain/errors.js';
import { consumeEvents, loadCatalog, type TransactionalOutput } from './consume.js';
import { BoundedProducer } from './produce-limits.js';
import { TaskTransactions } from './task-transactions.js';
import { Delivery } from './deliver.js';
import { OutputFlusher } from './output-flusher.js';
import { PartitionState } from './partition-state.js';
import type { PartitionTasks } from './partition-tasks.js';
import { checkLargestRecords, largestRecords } from './record-bounds.js';
import { inputTopicsOf } from './settings.js';
import type { GroupConsumer, KafkaClient, KafkaProducer, PartitionRead, TransactionalProducer } from './port.js';
import { KafkaSink, type Deliverable } from './sink.js';
import type { KafkaWiring } from './wiring.js';

export interface KafkaAdapterDeps {
  readonly core: Core;
  readonly metrics: ProcessorMetrics;
  readonly logger: Logger;
  /** Told what the broker acknowledged (each chunk's and each flush's outputs). */
  readonly onDelivered?: (result: Deliverable) => void;
}

export interface KafkaAdapter {
  /** Catalog loaded and partitions assigned and restored; false while rebalancing or stopping. */
  isReady(): boolean;
  /** What /readyz shows of the assignment. */
  readyDetail(): { partitionsAssigned: boolean; partitions: number[]; restoring: boolean };
  /** Rejects if consumption stops for good (the caller should exit non-zero). */
  readonly failed: Promise<never>;
  /** Finishes the chunks in flight, sends what they made, commits what was delivered, and disconnects; the core is its owner's to close. */
  stop(): Promise<void>;
}

/**
 * Runs the core on Kafka: the catalog and the event topics in, scored outputs, segments, the state
 * changelog and dead letters out. Takes over `kafka` (see connectKafka): stop() disconnects it.
 */
export async function startKafkaAdapter(kafka: KafkaWiring, deps: KafkaAdapterDeps): Promise<KafkaAdapter> {
  const { settings, client } = kafka;
  const { core, metrics } = deps;
  const log = deps.logger.child({ component: 'processor' });
  let fail!: (err: Error) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined); // observed by the caller; avoid an unhandled rejection if it is not

  const topics = { scored: settings.topicScored, deadLetters: settings.topicDeadLetters, segments: settings.topicSegments, changelog: settings.topicChangelog, trainingExamples: settings.topicTrainingExamples };
  // What the broker acknowledges of the changelog goes to the local state store too; a task marks
  // a chunk's offsets done once that write is committed (stored).
  const changelogTee = teeChangelog(kafka.producer, settings.topicChangelog, core.local);
  const sinkOn = (producer: KafkaProducer): KafkaSink => new KafkaSink({
    producer,
    topics,
    encoder: core.encoder,
    encodeState: (s) => core.local.encode(s),
    limits: kafka.limits,
    log,
    onTooLarge: (topic) => metrics.outputsTooLarge.inc({ topic }),
  });
  const sink = sinkOn(changelogTee);
  // exactly_once: the transactions of each partition's current task (made at its assignment).
  const transactionsOf = new Map<number, TaskTransactions>();
  const partitionState = new PartitionState({
    core,
    log,
    metrics,
    // With a schema registry, changelog records written under older schema ids are looked up first.
    readChangelog: async (o) => {
      await fenceBeforeRestore(transactionsOf, o.partitions, log);
      return restoreChangelog({ client, topic: settings.topicChangelog, ...o, apply: async (records) => {
        await core.codec.prepare(records);
        await o.apply(records);
      } });
    },
    fail,
  });
  const deliveryOn = (through: KafkaSink): Delivery => new Delivery({ sink: through, partitionState, metrics, usersInMemory: () => core.users.size, ...(deps.onDelivered ? { onDelivered: deps.onDelivered } : {}) });
  const delivery = deliveryOn(sink);
  // exactly_once: each task gets its own transactional producer, sink and delivery (the shared
  // sink above then carries only the catalog's dead letters, which every start re-derives).
  let transactional: ((partition: number, consumer: () => GroupConsumer) => TransactionalOutput) | undefined;
  // The work of one partition number (chunks of every input topic, rate-limited flushes) is its
  // task's (see PartitionTask, made in consume.ts); the flusher hands flushes to them.
  let tasks: PartitionTasks<ProcessResult> | undefined;
  // Rate-limited outputs (EMIT_INTERVAL_MS): a timer, started once processing runs, delivers them when due.
  const flusher = new OutputFlusher({
    processor: core.processor, sink, emitIntervalMs: settings.emitIntervalMs, delivered: delivery.delivered, log, fail,
    partitions: () => partitionState.ownedPartitions(),
    inTask: (partition, score) => tasks?.flush(partition, score) ?? Promise.resolve(),
  });

  const consume = { settings, client, core, metrics, log, delivery };
  let catalog: PartitionRead | undefined;
  let consumer: GroupConsumer;
  try {
    if (settings.processingGuarantee === 'exactly_once') transactional = transactionalOutputs(kafka, deps, (producer) => deliveryOn(sinkOn(producer)), transactionsOf, log);
    // Refuse to start if the settings can make a record its topic cannot take (a crash loop later).
    checkLargestRecords(kafka.limits, largestRecords({ stateCodec: core.stateCodec, encoder: core.encoder, modelVersion: core.processor.modelVersion, topics, settings }));
    // The catalog first: scoring before it is loaded would rank against a partial catalog.
    catalog = await loadCatalog(consume);
    ({ consumer, tasks } = await consumeEvents({ ...consume, partitions: kafka.partitions, partitionState, fail, stored: (p) => changelogTee.stored(p), ...(transactional ? { transactional } : {}) }));
  } catch (err) {
    await catalog?.stop().catch(() => undefined);
    await kafka.disconnect().catch(() => undefined);
    throw err;
  }
  flusher.start();

  let stopping: Promise<void> | undefined;
  const isReady = (): boolean => partitionState.isReady() && !stopping;
  const readyGauge = setInterval(() => metrics.ready.set(isReady() ? 1 : 0), 1000);
  readyGauge.unref();
  const running: RunningParts = { consumer, tasks, flusher, catalog, kafka, readyGauge, metrics };
  return {
    isReady,
    readyDetail: () => partitionState.readyDetail(),
    failed,
    stop: () => (stopping ??= stopKafkaAdapter(running)),
  };
}

/** The client's transactional producers for exactly_once, or a ConfigError naming the setting. */
export function transactionalProducerOf(settings: Pick<KafkaWiring['settings'], 'kafkaClient'>, client: KafkaClient): (transactionalId: string) => Promise<TransactionalProducer> {
  const connect = client.transactionalProducer?.bind(client);
  if (!connect) throw new ConfigError('PROCESSING_GUARANTEE', `exactly_once needs transactions, which the ${settings.kafkaClient} client does not offer`);
  return connect;
}

/**
 * exactly_once: before a partition's changelog is read, its task's producer begins a transaction:
 * initing it fences the previous owner's producer and completes the transaction that one left
 * pending, so the changelog's end holds everything the previous owner committed, and nothing
 * more can come from it. (The task also resumes at the offsets committed then: see
 * PartitionTask's `committed`.) A fence that fails is only logged: the task's own read of the
 * committed offsets still skips, and restores again, what was committed meanwhile.
 */
export async function fenceBeforeRestore(transactionsOf: ReadonlyMap<number, TaskTransactions>, partitions: readonly number[], log: Logger): Promise<void> {
  await Promise.all(partitions.map((p) => transactionsOf.get(p)?.committed().catch((err: unknown) => log.warn('fencing the previous owner of a partition before its restore failed', { err, partition: p }))));
}

/** The factory of the tasks' exactly-once outputs (see TaskTransactions); a ConfigError if the client cannot. */
function transactionalOutputs(kafka: KafkaWiring, deps: KafkaAdapterDeps, deliveryOn: (producer: KafkaProducer) => Delivery, transactionsOf: Map<number, TaskTransactions>, log: Logger): (partition: number, consumer: () => GroupConsumer) => TransactionalOutput {
  const { settings, client, admin } = kafka;
  const { core } = deps;
  const connect = transactionalProducerOf(settings, client);
  const committedOffsets = admin.committedOffsets?.bind(admin);
  if (!committedOffsets) throw new ConfigError('PROCESSING_GUARANTEE', `exactly_once needs the committed offsets of the group, which the ${settings.kafkaClient} client does not read`);
  const inputTopics = inputTopicsOf(settings);
  return (partition, consumer) => {
    // A partition assigned again: its previous transactions in this process close first.
    const previous = transactionsOf.get(partition);
    const transactions = new TaskTransactions({
      ...(previous ? { after: previous.closed() } : {}),
      partition,
      consumer,
      changelog: settings.topicChangelog,
      store: core.local,
      commitIntervalMs: settings.commitIntervalMs,
      // One id per partition: the next owner's producer fences this one when it begins.
      connect: () => connect(`${settings.groupId}-${partition}`),
      readCommitted: () => committedOffsets(settings.groupId, inputTopics, partition),
      log,
    });
    transactionsOf.set(partition, transactions);
    return { delivery: deliveryOn(new BoundedProducer(transactions.sender, kafka.limits)), transactions };
  };
}

interface RunningParts {
  readonly consumer: GroupConsumer;
  readonly tasks: PartitionTasks<ProcessResult>;
  readonly flusher: OutputFlusher;
  readonly catalog: PartitionRead;
  readonly kafka: KafkaWiring;
  readonly readyGauge: NodeJS.Timeout;
  readonly metrics: ProcessorMetrics;
}

/** Stops in an order that commits only what was delivered. */
async function stopKafkaAdapter(p: RunningParts): Promise<void> {
  clearInterval(p.readyGauge);
  p.metrics.ready.set(0);
  // Rate-limited outputs still owed go out through the tasks (their state is in the changelog either
  // way); then the tasks take no more records and send what they processed; the consumer commits
  // what was marked done while still a member, then leaves the group.
  await p.flusher.stop();
  await p.tasks.close();
  await p.consumer.disconnect();
  await p.catalog.stop();
  await p.kafka.disconnect();
}
