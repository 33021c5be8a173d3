import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AttributionMetrics } from './attribution-metrics.js';
import { CacheMetrics, InferenceMetrics } from './inference-metrics.js';
import { StateMetrics } from './state-metrics.js';

/** Latency buckets from 1 ms to 10 s: dense where an SLO between 1 ms and 1 s would sit. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10];
const STAGE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * The processor's Prometheus metrics, in base units. Histograms, not summaries, so they aggregate
 * across instances. Labels carry topics, stages and reason codes only, never user ids.
 */
export class ProcessorMetrics {
  readonly registry = new Registry();
  readonly recordsIn: Counter<'topic'>;
  readonly deadLetters: Counter<'topic' | 'reason'>;
  readonly scoredOut: Counter;
  readonly outputsTooLarge: Counter<'topic'>;
  readonly e2eLatency: Histogram;
  readonly stageDuration: Histogram<'stage'>;
  readonly chunkRecords: Histogram;
  readonly catalogAds: Gauge;
  readonly usersInMemory: Gauge;
  readonly ready: Gauge;
  readonly consumerLag: Gauge<'topic' | 'partition'>;
  readonly taskInboxRecords: Gauge<'partition'>;
  readonly taskChunksUnacknowledged: Gauge<'partition'>;
  readonly restoredUsers: Counter;
  /** CTR model versions from MODEL_DIR/ctr swapped in, or refused (load, warm-up or check failed). */
  readonly ctrSwaps: Counter<'result'>;
  readonly restoreSeconds: Histogram;
  readonly restoreRecords: Counter;
  readonly state: StateMetrics;
  /** Ad feedback and training examples. */
  readonly attribution: AttributionMetrics;
  readonly eventLoopDelayP99: Gauge;
  readonly inference: InferenceMetrics;
  readonly caches: CacheMetrics;
  private readonly buildInfo: Gauge<'version' | 'node' | 'models'>;
  private readonly version: string;

  constructor(opts: { defaultMetrics?: boolean; version?: string } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'adstream_' });
    this.recordsIn = new Counter({ name: 'adstream_records_in_total', help: 'Input event records taken from Kafka, by topic.', labelNames: ['topic'], registers });
    this.deadLetters = new Counter({ name: 'adstream_dead_letters_total', help: 'Records sent to the dead-letter topic, by source topic and reason code.', labelNames: ['topic', 'reason'], registers });
    this.scoredOut = new Counter({ name: 'adstream_scored_out_total', help: 'Scored-candidate records produced and acknowledged.', registers });
    this.outputsTooLarge = new Counter({ name: 'adstream_output_records_too_large_total', help: 'Output records too large for their topic, not sent (their inputs dead-lettered as OUTPUT_TOO_LARGE; a dead letter cut to fit), by topic.', labelNames: ['topic'], registers });
    this.e2eLatency = new Histogram({ name: 'adstream_e2e_latency_seconds', help: 'From the latest triggering event time to its scored output acknowledged by Kafka.', buckets: LATENCY_BUCKETS, registers });
    this.stageDuration = new Histogram({ name: 'adstream_stage_duration_seconds', help: 'Time per processed chunk in each stage.', labelNames: ['stage'], buckets: STAGE_BUCKETS, registers });
    this.chunkRecords = new Histogram({ name: 'adstream_chunk_records', help: 'Records per processed chunk.', buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000], registers });
    this.catalogAds = new Gauge({ name: 'adstream_catalog_active_ads', help: 'Active ads that can be scored.', registers });
    this.usersInMemory = new Gauge({ name: 'adstream_users_in_memory', help: 'Users held in the state cache.', registers });
    this.ready = new Gauge({ name: 'adstream_ready', help: '1 when the processor is ready (catalog loaded, partitions assigned).', registers });
    this.ctrSwaps = new Counter({ name: 'adstream_ctr_model_swaps_total', help: 'Trained CTR model versions swapped in live (result="swapped"), or refused because they failed to load, warm up or reproduce their held-back sample (result="refused"; the old one keeps serving).', labelNames: ['result'], registers });
    this.restoredUsers = new Counter({ name: 'adstream_state_restored_users_total', help: 'Users in the local stores of newly assigned partitions once restored from the state changelog.', registers });
    this.restoreRecords = new Counter({ name: 'adstream_state_restore_records_total', help: 'State changelog records read into the local stores on partition assignment (only the tail after a surviving store\'s checkpoint).', registers });
    this.restoreSeconds = new Histogram({ name: 'adstream_state_restore_seconds', help: 'Time to restore the users of newly assigned partitions (their events wait meanwhile).', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers });
    this.consumerLag = new Gauge({ name: 'adstream_consumer_lag_records', help: 'Records behind the high watermark, per input partition, after the last chunk handled.', labelNames: ['topic', 'partition'], registers });
    this.taskInboxRecords = new Gauge({ name: 'adstream_task_inbox_records', help: 'Records fetched and waiting in a partition task\'s inbox for its next chunk.', labelNames: ['partition'], registers });
    this.taskChunksUnacknowledged = new Gauge({ name: 'adstream_task_chunks_unacknowledged', help: 'Chunks (and rate-limited flushes) of a partition task processed or processing whose outputs Kafka has not acknowledged yet: the pipeline depth in use.', labelNames: ['partition'], registers });
    // The default metrics report the event-loop lag as summary-like gauges; this one is the p99 of
    // the last scrape interval, which is what an SLO on "inference never blocks the loop" reads.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    this.eventLoopDelayP99 = new Gauge({
      name: 'adstream_event_loop_delay_p99_seconds',
      help: 'p99 event-loop delay since the previous scrape.',
      registers,
      collect() {
        this.set(loop.percentile(99) / 1e9);
        loop.reset();
      },
    });
    this.inference = new InferenceMetrics(this.registry);
    this.caches = new CacheMetrics(this.registry);
    this.state = new StateMetrics(this.registry);
    this.attribution = new AttributionMetrics(this.registry);
    this.version = opts.version ?? 'dev';
    this.buildInfo = new Gauge({ name: 'adstream_build_info', help: 'Version of the running processor and of its models (1 for the current combination).', labelNames: ['version', 'node', 'models'], registers });
    this.buildInfo.set({ version: this.version, node: process.version, models: 'loading' }, 1);
  }

  /** Records which models the processor runs, once they are loaded. */
  modelsLoaded(models: string): void {
    this.buildInfo.reset();
    this.buildInfo.set({ version: this.version, node: process.version, models }, 1);
  }
}
