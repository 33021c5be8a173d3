import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Config } from './config/settings.js';
import { EmbeddingCache, type CacheReporter } from '../pipeline/embedding-cache.js';
import { Fuser } from '../pipeline/fuse.js';
import { ImageFetcher } from '../preprocess/image-fetcher.js';
import { MultimodalEmbedder, type ModalityBlocks } from '../pipeline/embed.js';
import { InferenceEngine } from '../inference/inference-engine.js';
import type { InferenceReporter } from '../inference/types.js';
import { checkOutputShapes, prepareModels } from '../models/model-setup.js';
import { EventDecoder } from '../pipeline/decode.js';
import type { EventKind, InputRecord } from '../domain/events.js';
import type { Logger } from '../util/log.js';
import { codecFor } from '../adapters/registry/registry-codec.js';
import { AdCatalog } from '../catalog/ad-catalog.js';
import { CandidateRanker } from '../pipeline/rank.js';
import { CatalogUpdater } from '../catalog/catalog-updater.js';
import { CategoryCentroids } from '../catalog/category-centroids.js';
import { FeedbackStage } from '../pipeline/feedback.js';
import { EngineScorer } from '../pipeline/retrieve.js';
import { CandidatePools } from '../pipeline/candidate-pools.js';
import { IndexedScorer } from '../pipeline/retrieve-index.js';
import { ModalRetrieval } from '../pipeline/retrieve-mode.js';
import { RetrievalCache } from '../pipeline/retrieval-cache.js';
import { indexModel } from '../models/index-spec.js';
import { UserStateCodec } from '../state/user-state-codec.js';
import { cacheBounds, UserStateStore } from '../state/user-state-store.js';
import { OutputEncoder } from '../pipeline/encode.js';
import type { Core } from '../pipeline/core.js';
import { Processor } from '../pipeline/processor.js';
import { AppliedOffsets } from '../state/applied-offsets.js';
import { LocalStateStore, type StateStoreReporter } from '../state/local-state-store.js';
import { expandHome } from '../util/files.js';
import { CreativeEmbeddings } from '../state/creative-embeddings.js';
import { IndexSnapshots } from '../state/index-snapshot.js';

export interface CoreOptions {
  readonly logger: Logger;
  readonly clock?: () => number;
  readonly onUnexpected?: (err: unknown, source: InputRecord) => void;
  readonly inferenceReporter?: InferenceReporter;
  readonly cacheReporter?: CacheReporter;
  /** Told why a changelog record was not restored (another space, unreadable...). */
  readonly onStateDiscarded?: (userId: string | undefined, reason: string) => void;
  /** Offsets already reflected in restored state; a fresh, empty table when absent. */
  readonly applied?: AppliedOffsets;
  /** Folder of the local state store; default `<STATE_DIR>/<GROUP_ID>`. */
  readonly stateDir?: string;
  /** Counts user look-ups in memory and the local store's disk reads and writes. */
  readonly stateReporter?: StateStoreReporter & { cacheLookup(hit: boolean): void };
}

/** Prepares the models, starts the inference workers (models warmed up) and wires the core. */
/** The core with the ad index, when there is one (the Kafka processor tells it when the catalog has loaded). */
export interface AssembledCore extends Core {
  readonly adIndex: IndexedScorer | undefined;
}

/** Ad texts kept in memory in front of their persisted embeddings. */
const AD_TEXT_MEMORY_BYTES = 4 * 2 ** 20;

export async function startCore(config: Config, o: CoreOptions): Promise<AssembledCore> {
  const clock = o.clock ?? Date.now;
  const eventTopics = new Map<string, EventKind>([
    [config.topicClicks, 'click'],
    [config.topicImageViews, 'image'],
    [config.topicReviews, 'review'],
  ]);
  if (eventTopics.size !== 3 || eventTopics.has(config.topicUserDeletions)) throw new Error('TOPIC_CLICKS, TOPIC_IMAGE_VIEWS, TOPIC_REVIEWS and TOPIC_USER_DELETIONS must be four different topics');
  if (eventTopics.has(config.topicAdFeedback) || config.topicAdFeedback === config.topicUserDeletions) throw new Error('TOPIC_AD_FEEDBACK must differ from the event topics and TOPIC_USER_DELETIONS');

  // Schemas first: a registry that refuses one stops the start before the models load.
  const codec = await codecFor(config);
  if (codec.registered) o.logger.info('schemas registered', { registry: config.schemaRegistryUrl, subjects: config.schemaRegistrySubjectStrategy });
  const models = await prepareModels(config);
  // Each interest asks for topK + slack ads (each with its CTR, same request): the slack replaces ads deactivated since the last upload and feeds the CTR re-rank.
  const slack = config.topK;
  const { annConnectivity: connectivity, annExpansionAdd: expansionAdd, annExpansionSearch: expansionSearch, annQuantization: quantization } = config;
  const batcher = { maxBatchSize: config.maxBatchSize, maxQueueDelayMs: config.maxQueueDelayMs, maxQueueItems: config.maxQueueItems };
  // With pools off (RETRIEVAL_POOL_DRIFT=0) a search asks for its k only, not a pool's worth.
  const index = config.retrieval === 'exact' ? undefined : indexModel({ params: { dim: models.fusion.dim, connectivity, expansionAdd, expansionSearch, quantization }, k: config.topK + slack, poolSize: config.retrievalPoolDrift > 0 ? config.retrievalPoolSize : 0, ctr: models.ctr, batcher });
  const engine = await InferenceEngine.start({
    models: [...models.specs, ...(index ? [index.spec] : [])],
    workers: config.inferenceWorkers || availableParallelism(),
    executionProviders: [...config.executionProviders],
    intraOpNumThreads: config.intraOpThreads,
    logger: o.logger,
    ...(o.inferenceReporter ? { reporter: o.inferenceReporter } : {}),
  });
  try {
    // The models warmed up on a zero batch: their real output widths must be what the cards say.
    checkOutputShapes(models, (model) => engine.warmUpShapes(model));
  } catch (err) {
    await engine.close();
    throw err;
  }

  // Creatives' embeddings by content hash on disk, beside the user state: a warm restart decodes none.
  let creatives: CreativeEmbeddings;
  try {
    creatives = new CreativeEmbeddings({ dir: join(expandHome(config.stateDir), 'ad-embeddings'), space: models.space, onWriteError: (err) => o.logger.warn('an ad embedding was not persisted', { error: String(err) }) });
  } catch (err) {
    await engine.close().catch(() => undefined);
    throw err;
  }
  const decoder = new EventDecoder(codec, {
    maxRecordBytes: config.maxRecordBytes,
    maxTextChars: config.maxTextChars,
    maxClockSkewMs: config.maxClockSkewS * 1000,
    maxEventAgeMs: config.maxEventAgeS * 1000,
  });
  const embedder = new MultimodalEmbedder(
    engine,
    models.encoders,
    {
      image: new EmbeddingCache('image', config.imageCacheBytes, o.cacheReporter, creatives.image),
      item: new EmbeddingCache('item', config.itemCacheBytes, o.cacheReporter),
      // The disk holds them all; memory only needs the texts a catalog batch repeats.
      adText: new EmbeddingCache('ad-text', AD_TEXT_MEMORY_BYTES, o.cacheReporter, creatives.text),
    },
    config.imageMaxPixels,
    new ImageFetcher({
      allowedOrigins: config.imageAllowedOrigins ?? [],
      fileRoot: config.imageFileRoot,
      timeoutMs: config.imageFetchTimeoutMs,
      maxBytes: config.imageMaxBytes,
      maxRedirects: 3,
    }),
  );
  const fuser = new Fuser(models.fusion, embedder.dims, config.fusionMemoRows);
  const F = fuser.dim;
  const stateCodec = new UserStateCodec(codec, { space: models.space, dim: F, maxInterests: config.interestsPerUser, ...(o.onStateDiscarded ? { onDiscard: o.onStateDiscarded } : {}) });
  let local: LocalStateStore;
  try {
    const reporter = o.stateReporter;
    local = new LocalStateStore({ dir: o.stateDir ?? join(expandHome(config.stateDir), config.groupId), codec: stateCodec, space: models.space, clock, ...(reporter ? { reporter } : {}) });
  } catch (err) {
    await engine.close().catch(() => undefined);
    await creatives.close().catch(() => undefined);
    throw err;
  }
  const users = new UserStateStore({
    dim: F,
    ...cacheBounds(config),
    backing: local,
    ...(o.stateReporter ? { onLookup: (hit: boolean) => o.stateReporter!.cacheLookup(hit) } : {}),
  });
  const catalog = new AdCatalog(F);
  const exact = new EngineScorer(engine, catalog, { io: models.scorer, perRow: config.topK + slack, minUploadIntervalMs: config.catalogUploadIntervalMs });
  const cacheReporter = o.cacheReporter;
  const indexed = index && new IndexedScorer(engine, catalog, {
    io: index.io,
    poolSize: index.spec.index!.poolSize,
    pools: new CandidatePools({
      size: index.spec.index!.poolSize,
      dim: F,
      maxDrift: config.retrievalPoolDrift,
      maxAgeMs: config.retrievalPoolMaxAgeS * 1000,
      users: config.retrievalPoolUsers,
      perUser: config.interestsPerUser,
    }),
    checkEvery: config.retrievalPoolCheckEvery,
    ...(cacheReporter?.poolRows ? { onPools: (pooled: number, searched: number) => cacheReporter.poolRows!(pooled, searched) } : {}),
    ...(cacheReporter?.poolMisses ? { onPoolMisses: (reason: string, rows: number) => cacheReporter.poolMisses!(reason, rows) } : {}),
    ...(cacheReporter?.poolRecall ? { onPoolRecall: (recall: number) => cacheReporter.poolRecall!(recall) } : {}),
    minSyncIntervalMs: config.catalogUploadIntervalMs,
    backgroundSyncMs: Math.max(100, config.catalogUploadIntervalMs),
    onSyncError: (err) => o.logger.warn('ad index sync failed; retried with the next one', { error: String(err) }),
    // Saved beside the ad embeddings, so a restart loads it instead of rebuilding it.
    snapshots: new IndexSnapshots({ dir: join(expandHome(config.stateDir), 'ad-index'), space: models.space, params: index.spec.index! }),
    onSnapshot: (event, detail) => o.logger.info(`ad index ${event}`, detail),
  });
  // The processor's serving version, once it exists: the cache reuses no answer of another model.
  let servingVersion = (): string => models.version;
  // Only the index's answers are kept: an exact scan over a small catalog costs less than keeping
  // its answers, whose objects live long enough to reach the old generation and lengthen the GC's
  // pauses (the demo's p99: 116-120 ms with the scan's answers kept, 87 ms without).
  const cached = indexed && new RetrievalCache(indexed, {
    rows: config.retrievalCacheRows,
    dim: F,
    modelVersion: () => servingVersion(),
    ...(cacheReporter?.retrievalLookups ? { onLookup: (hits: number, misses: number) => cacheReporter.retrievalLookups!(hits, misses) } : {}),
  });
  const scorer = new ModalRetrieval(exact, cached, catalog, { mode: config.retrieval, exactBelow: config.retrievalExactBelow });
  const ranker = new CandidateRanker(scorer, F, { topK: config.topK, slack });
  const interests = { halfLifeMs: config.interestHalfLifeS * 1000, maxInterests: config.interestsPerUser, newInterestThreshold: config.newInterestThreshold };
  const applied = o.applied ?? new AppliedOffsets();
  const feedback = new FeedbackStage({
    decoder,
    topic: config.topicAdFeedback,
    limits: { windowMs: config.attributionWindowS * 1000, maxCaptures: config.attributionMaxCaptures, maxPending: config.attributionMaxPending, maxWaitingClicks: config.attributionMaxPending },
    dim: F,
    adVector: (adId) => catalog.vectorOf(adId),
    capture: config.attributionCapture,
  });
  catalog.onChange((adId) => feedback.adChanged(adId)); // a re-embedded ad: captures copy its new vector
  const processor = new Processor({
    appliedUpTo: (topic, partition) => applied.upTo(topic, partition),
    decoder,
    embedder,
    fuser,
    ranker,
    centroids: new CategoryCentroids(catalog),
    users,
    interests,
    emitIntervalMs: config.emitIntervalMs,
    modelVersion: models.version,
    topics: eventTopics,
    deletionsTopic: config.topicUserDeletions,
    feedback,
    clock,
    ...(o.onUnexpected ? { onUnexpected: o.onUnexpected } : {}),
  });
  servingVersion = () => processor.modelVersion;
  const catalogUpdater = new CatalogUpdater<ModalityBlocks>({ decoder, embedder, fuser }, catalog, clock);
  const encoder = new OutputEncoder(codec, config.deadLetterMaxValueBytes);
  const close = async (): Promise<void> => {
    try {
      await indexed?.stop();
      await engine.close();
    } finally {
      await local.closeAll();
      await creatives.close();
    }
  };
  return { processor, feedback, applied, catalogUpdater, catalog, embedder, fuser, users, local, stateCodec, space: models.space, engine, codec, encoder, eventTopics, adIndex: indexed, close };
}
