import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import type { Config } from '../../app/config/settings.js';
import { startCore } from '../../app/assemble.js';
import type { Core } from '../../pipeline/core.js';
import { KafkaSink } from './sink.js';
import { ConfigError, errorMessage } from '../../domain/errors.js';
import { CoPartitionedAssigner } from './co-partitioned-assigner.js';
import { runCatalogSource } from './catalog-source.js';
import { restoreChangelog } from './changelog-restorer.js';
import { runEventSource } from './event-source.js';
import type { InputRecord } from '../../domain/events.js';
import type { ProcessResult } from '../../domain/outputs.js';
import type { UserViews } from '../http/server.js';
import { UserViewsOf } from '../http/user-views.js';
import { PartitionGate } from './partition-gate.js';
import { PartitionState } from './partition-state.js';
import { OutputFlusher } from './output-flusher.js';
import { createKafka } from './kafkajs-client.js';
import { checkCoPartitioned, ensureTopics } from './topics.js';
import type { Logger } from '../../util/log.js';
import { ProcessorMetrics } from '../../metrics/processor-metrics.js';

export interface RunningProcessor {
  readonly core: Core;
  readonly metrics: ProcessorMetrics;
  /** Catalog loaded, models warm and partitions assigned; false while rebalancing. */
  isReady(): boolean;
  /** What /readyz shows besides ready: the execution provider each model really runs on. */
  readyDetail(): Record<string, unknown>;
  /** The analysts' HTTP views over this instance's users. */
  readonly views: UserViews;
  /** Rejects if the consumer dies for good (the caller should exit non-zero). */
  readonly failed: Promise<never>;
  /** Finishes the chunk in flight, commits what was delivered, and disconnects. */
  stop(): Promise<void>;
}

/** Wires the core to Kafka: event and catalog consumers in, scored outputs and dead letters out. */
export async function startKafkaProcessor(config: Config, logger: Logger, opts: { metrics?: ProcessorMetrics } = {}): Promise<RunningProcessor> {
  const brokers = config.kafkaBrokers;
  if (!brokers) throw new ConfigError('KAFKA_BROKERS', 'is not set; point it at your Kafka cluster (host:port,...), or use `npm run demo`, which starts a local broker');
  const log = logger.child({ component: 'processor' });
  const metrics = opts.metrics ?? new ProcessorMetrics();
  const kafka = createKafka({ brokers, clientId: config.kafkaClientId, logger });

  const admin = kafka.admin();
  await admin.connect();
  if (config.createTopics) await ensureTopics(admin, config, log);
  const partitions = await checkCoPartitioned(admin, config);

  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();

  const core = await startCore(config, {
    logger,
    inferenceReporter: metrics.inference,
    cacheReporter: metrics.caches,
    onUnexpected: (err, source) => log.error('unexpected error on a record; dead-lettered as PROCESSING_FAILED', { err, topic: source.topic, partition: source.partition, offset: source.offset }),
  });
  log.info('models ready', { models: core.processor.modelVersion, providers: core.engine.providers() });
  metrics.modelsLoaded(core.processor.modelVersion);
  const sink = new KafkaSink(
    producer,
    { scored: config.topicScored, deadLetters: config.topicDeadLetters, segments: config.topicSegments, changelog: config.topicChangelog },
    core.encoder,
    (s) => core.stateCodec.encode(s),
  );
  const views = new UserViewsOf(core);

  // The catalog first: scoring before it is loaded would rank against a partial catalog.
  const catalogConsumer = kafka.consumer({ groupId: `${config.groupId}.catalog.${randomUUID()}` });
  await catalogConsumer.connect();
  const { caughtUp } = await runCatalogSource({
    consumer: catalogConsumer,
    admin,
    topic: config.topicAds,
    apply: async (records) => {
      const rejected = await core.catalogUpdater.apply(records);
      if (rejected.length > 0) {
        await sink.deliver({ deadLetters: rejected });
        for (const d of rejected) metrics.deadLetters.inc({ topic: d.source.topic, reason: d.reason });
      }
      metrics.catalogAds.set(core.catalog.activeCount);
    },
  });
  const t0 = Date.now();
  await caughtUp;
  log.info('ad catalog loaded', { activeAds: core.catalog.activeCount, ms: Date.now() - t0 });

  const consumer = kafka.consumer({ groupId: config.groupId, partitionAssigners: [CoPartitionedAssigner], sessionTimeout: config.sessionTimeoutMs, heartbeatInterval: Math.floor(config.sessionTimeoutMs / 10), rebalanceTimeout: 60_000 });
  let fail!: (err: Error) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined); // observed by the caller; avoid an unhandled rejection if it is not
  const partitionState = new PartitionState({
    core,
    log,
    metrics,
    readChangelog: (parts, apply) => restoreChangelog({ kafka, admin, topic: config.topicChangelog, partitions: parts, apply }),
    fail,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => partitionState.onAssignment(e.payload.memberAssignment[config.topicClicks] ?? [], e.payload.memberAssignment));
  consumer.on(consumer.events.REBALANCING, () => partitionState.onRebalancing());
  consumer.on(consumer.events.CRASH, (e) => {
    const { error, restart } = e.payload;
    log.error('event consumer crashed', { err: error, restart });
    if (!restart) fail(new Error(`event consumer stopped: ${errorMessage(error)}`));
  });
  await consumer.connect();
  // Backpressure: when the inference queues fill up, stop fetching rather than growing memory.
  const inputTopics = [config.topicClicks, config.topicImageViews, config.topicReviews, config.topicUserDeletions];
  core.engine.onPressure((saturated) => {
    log.warn(saturated ? 'inference queues full: pausing consumption' : 'inference queues drained: resuming consumption', { queuedItems: core.engine.queuedItems() });
    // Deletions need no inference: they keep flowing.
    const topics = inputTopics.filter((t) => t !== config.topicUserDeletions).map((topic) => ({ topic }));
    if (saturated) consumer.pause(topics);
    else consumer.resume(topics);
  });

  const record = (result: Partial<ProcessResult>): void => {
    const acked = Date.now();
    for (const o of result.scored ?? []) {
      metrics.e2eLatency.observe(Math.max(0, acked - o.triggerEventTime) / 1000);
      views.scored(o);
    }
    metrics.scoredOut.inc(result.scored?.length ?? 0);
    for (const d of result.deletions ?? []) views.forget(d.userId);
    for (const d of result.deadLetters ?? []) metrics.deadLetters.inc({ topic: d.source.topic, reason: d.reason });
    metrics.usersInMemory.set(core.users.size);
  };

  // One chunk of a partition number at a time, whichever topic it comes from (see PartitionGate): a
  // user's state changes reach the changelog in the order they were made, with the applied-offset
  // marker of the chunk that made them. (Two chunks of one partition in flight at once, from two
  // topics, could otherwise land the older snapshot last while the newer marker stands: after a
  // restore the replayed event would be skipped, missing from the state for good. Deletions need it
  // too: no state of a deleted user lands after its tombstone.) Partitions still run in parallel.
  const gate = new PartitionGate();
  // Rate-limited outputs (EMIT_INTERVAL_MS): a timer, started once processing runs, delivers them when due.
  const flusher = new OutputFlusher({ processor: core.processor, sink, emitIntervalMs: config.emitIntervalMs, delivered: record, log, fail });
  const handle = (records: InputRecord[]): Promise<void> => {
    const r0 = records[0]!;
    if (r0.topic !== config.topicUserDeletions) return gate.exclusive(r0.partition, () => handleChunk(records));
    return gate.exclusive(r0.partition, async () => {
      // A rate-limited flush in flight may be delivering the user's state: let it land before the tombstone.
      await flusher.inFlight();
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
    const p0 = performance.now();
    const { topic, partition } = records[0]!;
    const last = records[records.length - 1]!.offset;
    await sink.deliver(result, partitionState.appliedMarker(topic, partition, last));
    partitionState.markApplied(topic, partition, last);
    metrics.stageDuration.observe({ stage: 'produce' }, (performance.now() - p0) / 1000);
    record(result);
  };
  await runEventSource({
    consumer,
    topics: inputTopics,
    chunkMaxRecords: config.chunkMaxRecords,
    partitionsConcurrently: Math.min(partitions * 4, 8),
    handle,
    restoring: () => partitionState.restoring(),
    onLag: (topic, partition, lag) => metrics.consumerLag.set({ topic, partition: String(partition) }, lag),
  });
  log.info('processing', { partitions, topics: inputTopics });

  flusher.start();

  let stopping: Promise<void> | undefined;
  const isReady = (): boolean => partitionState.isReady() && !stopping;
  const readyGauge = setInterval(() => metrics.ready.set(isReady() ? 1 : 0), 1000);
  readyGauge.unref();

  return {
    core,
    metrics,
    isReady,
    readyDetail: () => ({ ...partitionState.readyDetail(), providers: core.engine.providers(), activeAds: core.catalog.activeCount }),
    views,
    failed,
    stop: () => {
      stopping ??= (async () => {
        clearInterval(readyGauge);
        metrics.ready.set(0);
        // Consumer first: it lets the chunk in flight finish and commits what was delivered.
        await consumer.disconnect();
        await flusher.stop(); // rate-limited outputs still owed; their state is in the changelog either way
        await catalogConsumer.disconnect();
        await producer.disconnect();
        await admin.disconnect();
        await core.close();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}
