import type { InputRecord } from '../../domain/events.js';
import { errorMessage, StateChangedError } from '../../domain/errors.js';
import type { ProcessorMetrics } from '../../metrics/processor-metrics.js';
import type { Core } from '../../pipeline/core.js';
import type { ChunkResult } from '../../pipeline/processor.js';
import type { Logger } from '../../util/log.js';
import { runCatalogSource } from './catalog-source.js';
import type { Delivery } from './deliver.js';
import { runEventSource } from './event-source.js';
import type { PartitionState } from './partition-state.js';
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
  /**
   * Runs `fn` alone among the work of partition number `partition` (its chunks of every input
   * topic, its rate-limited flushes), once the partition's state is restored (see PartitionGate).
   */
  readonly exclusive: <T>(partition: number, fn: () => Promise<T>) => Promise<T>;
  /** Stops the processor for good. */
  readonly fail: (err: Error) => void;
}

/** The events in: one consumer group over the co-partitioned input topics, chunks to the core, outputs out. */
export async function consumeEvents(o: EventConsumeDeps): Promise<GroupConsumer> {
  const { settings, core, metrics, log, partitionState, delivery } = o;
  const inputTopics = inputTopicsOf(settings);
  const consumer = await o.client.groupConsumer({
    groupId: settings.groupId,
    topics: inputTopics,
    coPartitioned: true,
    sessionTimeoutMs: settings.sessionTimeoutMs,
    partitionsConcurrently: Math.min(o.partitions * 4, 8),
    events: {
      assigned: (assignment) => partitionState.onAssignment(assignment[settings.topicClicks] ?? [], assignment),
      rebalancing: () => partitionState.onRebalancing(),
      crashed: (error, restarting) => {
        log.error('event consumer crashed', { err: error, restart: restarting });
        if (!restarting) o.fail(new Error(`event consumer stopped: ${errorMessage(error)}`));
      },
    },
  });
  // Backpressure: when the inference queues fill up, stop fetching rather than growing memory.
  core.engine.onPressure((saturated) => {
    log.warn(saturated ? 'inference queues full: pausing consumption' : 'inference queues drained: resuming consumption', { queuedItems: core.engine.queuedItems() });
    // Deletions need no inference: they keep flowing.
    const topics = inputTopics.filter((t) => t !== settings.topicUserDeletions);
    if (saturated) consumer.pause(topics);
    else consumer.resume(topics);
  });

  // One chunk of a partition number at a time, whichever topic it comes from, and no rate-limited
  // flush of it meanwhile (see PartitionGate): a user's state changes reach the changelog in the
  // order they were made, with the applied-offset marker of the chunk that made them. (Two chunks of
  // one partition in flight at once, from two topics, could otherwise land the older snapshot last
  // while the newer marker stands: after a restore the replayed event would be skipped, missing from
  // the state for good. A flush during a chunk would write the chunk's changes before its marker.
  // Deletions need it too: no state of a deleted user lands after its tombstone.) Partitions still
  // run in parallel.
  const handle = (records: InputRecord[]): Promise<void> => o.exclusive(records[0]!.partition, () => handleChunk(records));
  const handleChunk = async (records: InputRecord[]): Promise<void> => {
    const { topic, partition } = records[0]!;
    metrics.recordsIn.inc({ topic }, records.length);
    metrics.chunkRecords.observe(records.length);
    // A failure after the state changed leaves memory ahead of the changelog, and the records are
    // handed again (kafkajs retries the fetch): restore the partition first, or they fold twice.
    let result: ChunkResult;
    try {
      result = await core.processor.process(records);
    } catch (err) {
      if (err instanceof StateChangedError) partitionState.reset(partition);
      throw err;
    }
    const t = result.timings;
    metrics.stageDuration.observe({ stage: 'decode' }, t.decode);
    metrics.stageDuration.observe({ stage: 'features' }, t.features);
    metrics.stageDuration.observe({ stage: 'fusion' }, t.fusion);
    metrics.stageDuration.observe({ stage: 'scoring' }, t.scoring);
    try {
      await delivery.chunk(records, result);
    } catch (err) {
      if (result.stateChanges.length > 0 || result.deletions.length > 0) partitionState.reset(partition);
      throw err;
    }
  };
  try {
    await runEventSource({
      consumer,
      chunkMaxRecords: settings.chunkMaxRecords,
      handle,
      restoring: (partition) => partitionState.restoring(partition),
      onLag: (topic, partition, lag) => metrics.consumerLag.set({ topic, partition: String(partition) }, lag),
    });
  } catch (err) {
    await consumer.disconnect().catch(() => undefined);
    throw err;
  }
  log.info('processing', { partitions: o.partitions, topics: inputTopics });
  return consumer;
}
