import type { InputRecord } from '../../domain/events.js';
import { errorMessage } from '../../domain/errors.js';
import type { ProcessorMetrics } from '../../metrics/processor-metrics.js';
import type { Core } from '../../pipeline/core.js';
import type { Logger } from '../../util/log.js';
import { runCatalogSource } from './catalog-source.js';
import type { Delivery } from './deliver.js';
import { runEventSource } from './event-source.js';
import type { OutputFlusher } from './output-flusher.js';
import { PartitionGate } from './partition-gate.js';
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
  /** Rate-limited outputs: a deletion waits for the flush in flight. */
  readonly flusher: Pick<OutputFlusher, 'inFlight'>;
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

  // One chunk of a partition number at a time, whichever topic it comes from (see PartitionGate): a
  // user's state changes reach the changelog in the order they were made, with the applied-offset
  // marker of the chunk that made them. (Two chunks of one partition in flight at once, from two
  // topics, could otherwise land the older snapshot last while the newer marker stands: after a
  // restore the replayed event would be skipped, missing from the state for good. Deletions need it
  // too: no state of a deleted user lands after its tombstone.) Partitions still run in parallel.
  const gate = new PartitionGate();
  const handle = (records: InputRecord[]): Promise<void> => {
    const r0 = records[0]!;
    if (r0.topic !== settings.topicUserDeletions) return gate.exclusive(r0.partition, () => handleChunk(records));
    return gate.exclusive(r0.partition, async () => {
      // A rate-limited flush in flight may be delivering the user's state: let it land before the tombstone.
      await o.flusher.inFlight();
      return handleChunk(records);
    });
  };
  const handleChunk = async (records: InputRecord[]): Promise<void> => {
    metrics.recordsIn.inc({ topic: records[0]!.topic }, records.length);
    metrics.chunkRecords.observe(records.length);
    const result = await core.processor.process(records);
    const t = result.timings;
    metrics.stageDuration.observe({ stage: 'decode' }, t.decode);
    metrics.stageDuration.observe({ stage: 'features' }, t.features);
    metrics.stageDuration.observe({ stage: 'fusion' }, t.fusion);
    metrics.stageDuration.observe({ stage: 'scoring' }, t.scoring);
    await delivery.chunk(records, result);
  };
  try {
    await runEventSource({
      consumer,
      chunkMaxRecords: settings.chunkMaxRecords,
      handle,
      restoring: () => partitionState.restoring(),
      onLag: (topic, partition, lag) => metrics.consumerLag.set({ topic, partition: String(partition) }, lag),
    });
  } catch (err) {
    await consumer.disconnect().catch(() => undefined);
    throw err;
  }
  log.info('processing', { partitions: o.partitions, topics: inputTopics });
  return consumer;
}
