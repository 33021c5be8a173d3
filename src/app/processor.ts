import type { Config } from './config/settings.js';
import { startCore, type AssembledCore } from './assemble.js';
import type { UserViews } from '../adapters/http/server.js';
import { UserViewsOf } from '../adapters/http/user-views.js';
import { startKafkaAdapter, type KafkaAdapter } from '../adapters/kafka/kafka-adapter.js';
import type { Deliverable } from '../adapters/kafka/sink.js';
import type { KafkaClientFactory } from '../adapters/kafka/port.js';
import { connectKafka } from '../adapters/kafka/wiring.js';
import { ProcessorMetrics } from '../metrics/processor-metrics.js';
import type { Core } from '../pipeline/core.js';
import type { Logger } from '../util/log.js';
import { expandHome } from '../util/files.js';
import { watchCtrVersions } from './ctr-watcher.js';

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

/** The processor as `adstream run` starts it: the core, its metrics and HTTP views, on Kafka. */
export async function startKafkaProcessor(
  config: Config,
  logger: Logger,
  opts: { metrics?: ProcessorMetrics; /** The Kafka client (the default one when absent; a fault test shortens its retries). */ createClient?: KafkaClientFactory } = {},
): Promise<RunningProcessor> {
  const log = logger.child({ component: 'processor' });
  const metrics = opts.metrics ?? new ProcessorMetrics();
  // Kafka first: bad settings and missing topics fail before the models load.
  const kafka = await connectKafka(config, logger, opts.createClient);
  let core: AssembledCore;
  try {
    core = await startCore(config, {
      logger,
      inferenceReporter: metrics.inference,
      cacheReporter: metrics.caches,
      stateReporter: metrics.state,
      onUnexpected: (err, source) => log.error('unexpected error on a record; dead-lettered as PROCESSING_FAILED', { err, topic: source.topic, partition: source.partition, offset: source.offset }),
    });
  } catch (err) {
    await kafka.disconnect().catch(() => undefined);
    throw err;
  }
  log.info('models ready', { models: core.processor.modelVersion, providers: core.engine.providers(), stateDir: core.local.dir });
  metrics.state.measure(core.local);
  metrics.modelsLoaded(core.processor.modelVersion);

  const views = new UserViewsOf(core);
  let adapter: KafkaAdapter;
  // The ad index is built (or loaded and reconciled) once the catalog has caught up: see IndexedScorer.
  const adIndex = core.adIndex;
  adIndex?.holdUntilLoaded();
  try {
    adapter = await startKafkaAdapter(kafka, { core, metrics, logger, onDelivered: (result) => updateViews(views, result) });
  } catch (err) {
    await core.close().catch(() => undefined);
    throw err;
  }
  adIndex?.catalogLoaded();
  // New trained CTR versions in MODEL_DIR/ctr/ are swapped in live (the newest at once).
  const ctrWatcher = config.ctrWatchIntervalS > 0
    ? watchCtrVersions({
        modelDir: expandHome(config.modelDir), intervalMs: config.ctrWatchIntervalS * 1000, engine: core.engine, serving: core.processor.serving, logger,
        onSwap: (result, modelVersion) => {
          metrics.ctrSwaps.inc({ result });
          if (result === 'swapped') metrics.modelsLoaded(modelVersion);
        },
      })
    : null;
  void ctrWatcher?.poll();
  let stopping: Promise<void> | undefined;
  return {
    core,
    metrics,
    isReady: () => adapter.isReady() && (adIndex?.settled ?? true),
    readyDetail: () => ({
      ...adapter.readyDetail(), providers: core.engine.providers(), activeAds: core.catalog.activeCount,
      ...(adIndex ? { adIndex: { settled: adIndex.settled, indexed: adIndex.indexed, pending: adIndex.pending } } : {}),
    }),
    views,
    failed: adapter.failed,
    stop: () =>
      (stopping ??= (async () => {
        await ctrWatcher?.stop();
        await adapter.stop();
        await core.close();
        log.info('stopped');
      })()),
  };
}

/** The views show what was delivered: the last candidates per user; a deleted user is forgotten. */
function updateViews(views: UserViewsOf, result: Deliverable): void {
  for (const o of result.scored ?? []) views.scored(o);
  for (const d of result.deletions ?? []) views.forget(d.userId);
}
