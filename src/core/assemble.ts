import { availableParallelism } from 'node:os';
import type { Config } from '../config/settings.js';
import { EmbeddingCache, type CacheReporter } from '../features/embedding-cache.js';
import { Fuser } from '../features/fuser.js';
import { ImageFetcher } from '../features/image-fetcher.js';
import { MultimodalEmbedder } from '../features/multimodal-embedder.js';
import { InferenceEngine } from '../inference/engine/inference-engine.js';
import type { InferenceReporter } from '../inference/engine/types.js';
import { prepareModels } from '../inference/model-setup.js';
import { EventDecoder } from '../ingest/event-decoder.js';
import type { EventKind, InputRecord } from '../ingest/events.js';
import type { Logger } from '../log.js';
import { AvroCodec } from '../serde/avro-codec.js';
import { AdCatalog } from '../scoring/ad-catalog.js';
import { CandidateRanker } from '../scoring/candidate-ranker.js';
import { CatalogUpdater } from '../scoring/catalog-updater.js';
import { CategoryCentroids } from '../scoring/category-centroids.js';
import { EngineScorer } from '../scoring/engine-scorer.js';
import { UserStateCodec } from '../state/user-state-codec.js';
import { UserStateStore } from '../state/user-state-store.js';
import { OutputEncoder } from '../emit/output-encoder.js';
import { Processor } from './processor.js';

/** Everything the core needs, wired from configuration; shared by every transport adapter. */
export interface Core {
  readonly processor: Processor;
  readonly catalogUpdater: CatalogUpdater;
  readonly catalog: AdCatalog;
  readonly embedder: MultimodalEmbedder;
  readonly fuser: Fuser;
  readonly users: UserStateStore;
  /** User state <-> changelog records (restore: decode, then users.put). */
  readonly stateCodec: UserStateCodec;
  /** What user state vectors mean (encoders, fusion, F); the changelog records carry it. */
  readonly space: string;
  readonly engine: InferenceEngine;
  readonly codec: AvroCodec;
  readonly encoder: OutputEncoder;
  /** Input topic -> event kind. */
  readonly eventTopics: ReadonlyMap<string, EventKind>;
  /** Stops the inference workers. */
  close(): Promise<void>;
}

export interface CoreOptions {
  readonly logger: Logger;
  readonly clock?: () => number;
  readonly onUnexpected?: (err: unknown, source: InputRecord) => void;
  readonly inferenceReporter?: InferenceReporter;
  readonly cacheReporter?: CacheReporter;
  /** Told why a changelog record was not restored (another space, unreadable...). */
  readonly onStateDiscarded?: (userId: string | undefined, reason: string) => void;
  /** Offsets already reflected in restored state, per topic-partition (see ProcessorOptions). */
  readonly appliedUpTo?: (topic: string, partition: number) => bigint | undefined;
}

/** Prepares the models, starts the inference workers (models warmed up) and wires the core. */
export async function startCore(config: Config, o: CoreOptions): Promise<Core> {
  const clock = o.clock ?? Date.now;
  const eventTopics = new Map<string, EventKind>([
    [config.topicClicks, 'click'],
    [config.topicImageViews, 'image'],
    [config.topicReviews, 'review'],
  ]);
  if (eventTopics.size !== 3 || eventTopics.has(config.topicUserDeletions)) throw new Error('TOPIC_CLICKS, TOPIC_IMAGE_VIEWS, TOPIC_REVIEWS and TOPIC_USER_DELETIONS must be four different topics');

  const models = await prepareModels(config);
  const engine = await InferenceEngine.start({
    models: [...models.specs],
    workers: config.inferenceWorkers || availableParallelism(),
    executionProviders: [...config.executionProviders],
    intraOpNumThreads: config.intraOpThreads,
    logger: o.logger,
    ...(o.inferenceReporter ? { reporter: o.inferenceReporter } : {}),
  });

  const codec = new AvroCodec();
  const decoder = new EventDecoder(codec, {
    maxRecordBytes: config.maxRecordBytes,
    maxTextChars: config.maxTextChars,
    maxClockSkewMs: config.maxClockSkewS * 1000,
    maxEventAgeMs: config.maxEventAgeS * 1000,
  });
  const embedder = new MultimodalEmbedder(
    engine,
    models.encoders,
    { image: new EmbeddingCache('image', config.imageCacheBytes, o.cacheReporter), item: new EmbeddingCache('item', config.itemCacheBytes, o.cacheReporter) },
    config.imageMaxPixels,
    new ImageFetcher({
      allowedOrigins: config.imageAllowedOrigins ?? [],
      fileRoot: config.imageFileRoot,
      timeoutMs: config.imageFetchTimeoutMs,
      maxBytes: config.imageMaxBytes,
      maxRedirects: 3,
    }),
  );
  const fuser = new Fuser(engine, models.fusion, embedder.dims);
  const F = fuser.dim;
  const users = new UserStateStore({ dim: F, maxEntries: config.userCacheMaxEntries, maxBytes: config.userCacheMaxBytes, ttlMs: config.userTtlS * 1000 });
  const catalog = new AdCatalog(F);
  // Each interest asks for topK + slack ads: the slack replaces ads deactivated since the last upload and feeds the CTR re-rank.
  const slack = config.topK;
  const scorer = new EngineScorer(engine, catalog, { model: 'scorer', perRow: config.topK + slack, minUploadIntervalMs: config.catalogUploadIntervalMs });
  const ranker = new CandidateRanker(engine, scorer, F, { topK: config.topK, slack, ctr: models.ctr });
  const interests = { halfLifeMs: config.interestHalfLifeS * 1000, maxInterests: config.interestsPerUser, newInterestThreshold: config.newInterestThreshold };
  const processor = new Processor({
    ...(o.appliedUpTo ? { appliedUpTo: o.appliedUpTo } : {}),
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
    clock,
    ...(o.onUnexpected ? { onUnexpected: o.onUnexpected } : {}),
  });
  const catalogUpdater = new CatalogUpdater(decoder, embedder, fuser, catalog, clock);
  const stateCodec = new UserStateCodec(codec, { space: models.space, dim: F, maxInterests: config.interestsPerUser, ...(o.onStateDiscarded ? { onDiscard: o.onStateDiscarded } : {}) });
  const encoder = new OutputEncoder(codec, config.deadLetterMaxValueBytes);
  return { processor, catalogUpdater, catalog, embedder, fuser, users, stateCodec, space: models.space, engine, codec, encoder, eventTopics, close: () => engine.close() };
}
