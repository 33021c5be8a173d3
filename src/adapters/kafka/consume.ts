import { errorMessage } from '../../domain/errors.js';
import type { ProcessorMetrics } from '../../metrics/processor-metrics.js';
import type { Core } from '../../pipeline/core.js';
import type { ProcessResult } from '../../domain/outputs.js';
import type { Logger } from '../../util/log.js';
import { runCatalogSource } from './catalog-source.js';
import type { Delivery } from './deliver.js';
import { feedTasks } from './event-source.js';
import type { PartitionState } from './partition-state.js';
import type { TaskHooks } from './partition-task.js';
import type { TaskTransactions } from './task-transactions.js';
import { PartitionTasks } from './partition-tasks.js';
import type { GroupConsumer, KafkaClient, PartitionRead } from './port.js';
import { inputTopicsOf, type KafkaSettings } from './settings.js';

export interface ConsumeDeps {
  readonly settings: KafkaSettings;
  readonly client: KafkaClient;
  readonly core: Core;
  readonly metrics: ProcessorMetrics;
  readonly log: Logger;
  readonly delivery: Delivery;
}

/**
 * The catalog in: read from the beginning, then followed. Resolves once what was there at start is
 * applied; scoring before that would rank against a partial catalog.
 */
export async function loadCatalog(o: ConsumeDeps): Promise<PartitionRead> {
  const { core, metrics, delivery, settings } = o;
  const t0 = Date.now();
  const catalog = await runCatalogSource({
    client: o.client,
    topic: settings.topicAds,
    label: `${settings.groupId}.catalog`,
    apply: async (records) => {
      await core.codec.prepare(records);
      await delivery.catalogRejects(await core.catalogUpdater.apply(records));
      metrics.catalogAds.set(core.catalog.activeCount);
    },
  });
  try {
    await catalog.caughtUp;
  } catch (err) {
    await catalog.stop().catch(() => undefined);
    throw err;
  }
  o.log.info('ad catalog loaded', { activeAds: core.catalog.activeCount, ms: Date.now() - t0 });
  return catalog;
}

export interface EventConsumeDeps extends ConsumeDeps {
  /** Partitions of each input topic. */
  readonly partitions: number;
  readonly partitionState: PartitionState;
  /** Stops the processor for good. */
  readonly fail: (err: Error) => void;
  /** Resolves once the partition's acknowledged changelog records so far are in the local store (ChangelogTee.stored). */
  readonly stored: (partition: number) => Promise<void>;
  /**
   * PROCESSING_GUARANTEE=exactly_once: the output of a partition's task, made with the task;
   * `consumer`: the group member, whose offsets its transactions commit.
   */
  readonly transactional?: (partition: number, consumer: () => GroupConsumer) => TransactionalOutput;
}

/** A task's exactly-once output: its deliveries go into its transactions (see TaskTransactions). */
export interface TransactionalOutput {
  /** Sends through `transactions.sender`. */
  readonly delivery: Delivery;
  readonly transactions: TaskTransactions;
}

/** What consumeEvents starts: the group member and the tasks it feeds. */
export interface EventConsumption {
  readonly consumer: GroupConsumer;
  readonly tasks: PartitionTasks<ProcessResult>;
}

/**
 * The events in: one consumer group over the co-partitioned input topics, a task per partition
 * number (PartitionTask) taking every topic's records into its chunks, outputs out.
 */
export async function consumeEvents(o: EventConsumeDeps): Promise<EventConsumption> {
  const { settings, core, log, partitionState } = o;
  const inputTopics = inputTopicsOf(settings);
  let consumer: GroupConsumer | undefined;
  // Tasks are made on assignments and fetches, which come only once the consumer exists.
  const member = (): GroupConsumer => {
    if (!consumer) throw new Error('a partition task before its consumer');
    return consumer;
  };
  const tasks = new PartitionTasks<ProcessResult>({
    chunkMaxRecords: settings.chunkMaxRecords,
    hooksOf: (partition) => inTransactions(o, partition, () => member(), taskHooks(o, partition, (topic, offset) => consumer?.seek(topic, partition, offset))),
  });
  consumer = await o.client.groupConsumer({
    groupId: settings.groupId,
    topics: inputTopics,
    coPartitioned: true,
    // exactly_once: the offsets are committed inside the tasks' transactions.
    ...(o.transactional ? { commits: 'transactional' as const } : {}),
    sessionTimeoutMs: settings.sessionTimeoutMs,
    partitionsConcurrently: Math.min(o.partitions * 4, 8),
    events: {
      assigned: (assignment) => {
        const partitions = assignment[settings.topicClicks] ?? [];
        tasks.onAssignment(partitions);
        core.feedback?.retainPartitions(new Set(partitions));
        partitionState.onAssignment(partitions, assignment);
      },
      rebalancing: () => partitionState.onRebalancing(),
      crashed: (error, restarting) => {
        log.error('event consumer crashed', { err: error, restart: restarting });
        if (!restarting) o.fail(new Error(`event consumer stopped: ${errorMessage(error)}`));
      },
    },
  });
  const running = consumer;
  // Backpressure: when the inference queues fill up, stop fetching rather than growing memory.
  core.engine.onPressure((saturated) => {
    log.warn(saturated ? 'inference queues full: pausing consumption' : 'inference queues drained: resuming consumption', { queuedItems: core.engine.queuedItems() });
    // Deletions and feedback need no inference: they keep flowing.
    const topics = inputTopics.filter((t) => t !== settings.topicUserDeletions && t !== settings.topicAdFeedback);
    if (saturated) running.pause(topics);
    else running.resume(topics);
  });
  try {
    await feedTasks({ consumer: running, taskOf: (p) => tasks.taskOf(p) });
  } catch (err) {
    await running.disconnect().catch(() => undefined);
    throw err;
  }
  log.info('processing', { partitions: o.partitions, topics: inputTopics });
  return { consumer: running, tasks };
}

/**
 * What the task of `partition` does: chunks to the core, results to Kafka through the Delivery,
 * waiting for the partition's restore; after a failure, the reset (a failed chunk may have changed
 * the state, and the chunks after it were processed on it) and the rewind.
 */
function taskHooks(o: EventConsumeDeps, partition: number, seek: (topic: string, offset: bigint) => void): TaskHooks<ProcessResult> {
  const { core, metrics, log, partitionState, delivery } = o;
  const label = { partition: String(partition) };
  return {
    process: async (records, ends) => {
      for (const e of ends) metrics.recordsIn.inc({ topic: e.topic }, e.records);
      metrics.chunkRecords.observe(records.length);
      await core.codec.prepare(records); // writer schemas by id, when a registry is set
      const result = await core.processor.process(records);
      if (core.feedback) metrics.attribution.observe(core.feedback.counts(), core.feedback.sizes());
      const t = result.timings;
      metrics.stageDuration.observe({ stage: 'decode' }, t.decode);
      metrics.stageDuration.observe({ stage: 'features' }, t.features);
      metrics.stageDuration.observe({ stage: 'fusion' }, t.fusion);
      metrics.stageDuration.observe({ stage: 'scoring' }, t.scoring);
      return result;
    },
    deliver: (records, result, ends) => (records.length > 0 ? delivery.chunk(records, result, ends) : delivery.flush(result)),
    stored: () => o.stored(partition),
    restoring: () => partitionState.restoring(partition),
    reset: () => partitionState.reset(partition),
    rewind: seek,
    acknowledged: (ends) => {
      // Lag as consumers count it: records after the last one handled up to the fetch's high watermark.
      for (const e of ends) metrics.consumerLag.set({ topic: e.topic, partition: label.partition }, Math.max(0, Number(e.highWatermark) - Number(e.last) - 1));
    },
    failed: (err, backoffMs) => log.warn('a chunk failed: resetting the partition and fetching its unacknowledged records again', { err, partition, backoffMs }),
    depth: (inbox, unacknowledged) => {
      metrics.taskInboxRecords.set(label, inbox);
      metrics.taskChunksUnacknowledged.set(label, unacknowledged);
    },
  };
}

/** exactly_once: the task's deliveries go into its transactions, and its store writes follow their commits. */
function inTransactions(o: EventConsumeDeps, partition: number, consumer: () => GroupConsumer, hooks: TaskHooks<ProcessResult>): TaskHooks<ProcessResult> {
  if (!o.transactional) return hooks;
  const { delivery, transactions } = o.transactional(partition, consumer);
  return {
    ...hooks,
    deliver: (records, result, ends) => transactions.deliver(() => (records.length > 0 ? delivery.chunk(records, result, ends) : delivery.flush(result)), ends),
    stored: () => transactions.stored(),
    committed: () => transactions.committed(),
    closed: (dropped) => transactions.close(dropped),
  };
}
