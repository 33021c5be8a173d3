import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CacheReporter } from '../pipeline/embedding-cache.js';
import type { InferenceErrorCode, InferenceReporter } from '../inference/types.js';

const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const TIME_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * Per-model inference metrics, Triton's split: time queued vs time computing, batch sizes, queue
 * depth, refusals, and the execution provider each model really runs on.
 */
export class InferenceMetrics implements InferenceReporter {
  readonly batchSize: Histogram<'model'>;
  readonly queueWait: Histogram<'model'>;
  readonly compute: Histogram<'model'>;
  readonly items: Counter<'model'>;
  readonly batchesFailed: Counter<'model'>;
  readonly queueItems: Gauge<'model'>;
  readonly rejectedItems: Counter<'model' | 'code'>;
  readonly providerInfo: Gauge<'model' | 'provider'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.batchSize = new Histogram({ name: 'adstream_inference_batch_size', help: 'Items per inference batch.', labelNames: ['model'], buckets: BATCH_BUCKETS, registers });
    this.queueWait = new Histogram({ name: 'adstream_inference_queue_wait_seconds', help: 'Time a request waited in the batcher queue before its batch went to a worker.', labelNames: ['model'], buckets: TIME_BUCKETS, registers });
    this.compute = new Histogram({ name: 'adstream_inference_compute_seconds', help: 'Time of one batch in session.run on a worker thread.', labelNames: ['model'], buckets: TIME_BUCKETS, registers });
    this.items = new Counter({ name: 'adstream_inference_items_total', help: 'Items inferred (rate() gives items per second).', labelNames: ['model'], registers });
    this.batchesFailed = new Counter({ name: 'adstream_inference_batches_failed_total', help: 'Batches whose run failed (their requests were failed, nothing else).', labelNames: ['model'], registers });
    this.queueItems = new Gauge({ name: 'adstream_inference_queue_items', help: 'Items waiting in the batcher queue.', labelNames: ['model'], registers });
    this.rejectedItems = new Counter({ name: 'adstream_inference_rejected_items_total', help: 'Items refused by the engine, by code (QUEUE_FULL, DEADLINE_EXCEEDED, ...).', labelNames: ['model', 'code'], registers });
    this.providerInfo = new Gauge({ name: 'adstream_inference_provider_info', help: '1 for the execution provider each model runs on.', labelNames: ['model', 'provider'], registers });
  }

  batch(model: string, e: { batchSize: number; requests: number; queueWaitMs: readonly number[]; computeMs: number; failed: boolean }): void {
    this.batchSize.observe({ model }, e.batchSize);
    for (const w of e.queueWaitMs) this.queueWait.observe({ model }, w / 1000);
    this.compute.observe({ model }, e.computeMs / 1000);
    if (e.failed) this.batchesFailed.inc({ model });
    else this.items.inc({ model }, e.batchSize);
  }

  queueDepth(model: string, items: number): void {
    this.queueItems.set({ model }, items);
  }

  rejected(model: string, code: InferenceErrorCode, items: number): void {
    this.rejectedItems.inc({ model, code }, items);
  }

  provider(model: string, provider: string): void {
    this.providerInfo.set({ model, provider }, 1);
    // Start the failure counters at zero, so rate() and alerts see a series before the first failure.
    this.batchesFailed.inc({ model }, 0);
    for (const code of ['QUEUE_FULL', 'DEADLINE_EXCEEDED', 'MODEL_FAILED'] as const) this.rejectedItems.inc({ model, code }, 0);
  }
}

/** Hits and misses, entries and bytes of the embedding caches (image, item, ad). */
export class CacheMetrics implements CacheReporter {
  readonly requests: Counter<'cache' | 'result'>;
  readonly entries: Gauge<'cache'>;
  readonly bytes: Gauge<'cache'>;
  readonly retrievalRows: Counter<'result'>;
  readonly poolRowsCounted: Counter<'result'>;
  readonly poolRecallObserved: Histogram;
  readonly poolMissesCounted: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.poolRowsCounted = new Counter({ name: 'adstream_retrieval_pool_rows_total', help: 'Query rows sent to the ad index, scored against their candidate pool (result="pooled") or searched (result="searched").', labelNames: ['result'], registers });
    this.poolMissesCounted = new Counter({ name: 'adstream_retrieval_pool_misses_total', help: 'Query rows of a known user that searched the ad index, by why no candidate pool answered: no_pool (none kept for the user), drifted (the interest moved past RETRIEVAL_POOL_DRIFT), expired (older than RETRIEVAL_POOL_MAX_AGE_S), stale (its ads all left their slots).', labelNames: ['reason'], registers });
    this.poolRecallObserved = new Histogram({ name: 'adstream_retrieval_pool_recall', help: "Checked pooled rows (every RETRIEVAL_POOL_CHECK_EVERY): the share of a search's candidates the pool's answer held.", buckets: [0.5, 0.8, 0.9, 0.95, 0.99, 1], registers });
    this.retrievalRows = new Counter({ name: 'adstream_retrieval_cache_rows_total', help: 'Query rows (one per user interest) answered from the retrieval cache (result="hit") or searched (result="miss").', labelNames: ['result'], registers });
    this.requests = new Counter({ name: 'adstream_embedding_cache_requests_total', help: 'Embedding cache look-ups, by cache and result (hit, miss).', labelNames: ['cache', 'result'], registers });
    this.entries = new Gauge({ name: 'adstream_embedding_cache_entries', help: 'Embeddings held, by cache.', labelNames: ['cache'], registers });
    this.bytes = new Gauge({ name: 'adstream_embedding_cache_bytes', help: 'Bytes of embeddings held, by cache.', labelNames: ['cache'], registers });
  }

  lookup(cache: string, hit: boolean): void {
    this.requests.inc({ cache, result: hit ? 'hit' : 'miss' });
  }

  retrievalLookups(hits: number, misses: number): void {
    if (hits > 0) this.retrievalRows.inc({ result: 'hit' }, hits);
    if (misses > 0) this.retrievalRows.inc({ result: 'miss' }, misses);
  }

  poolRows(pooled: number, searched: number): void {
    if (pooled > 0) this.poolRowsCounted.inc({ result: 'pooled' }, pooled);
    if (searched > 0) this.poolRowsCounted.inc({ result: 'searched' }, searched);
  }

  poolMisses(reason: string, rows: number): void {
    this.poolMissesCounted.inc({ reason }, rows);
  }

  poolRecall(recall: number): void {
    this.poolRecallObserved.observe(recall);
  }

  size(cache: string, entries: number, bytes: number): void {
    this.entries.set({ cache }, entries);
    this.bytes.set({ cache }, bytes);
  }
}
