import type { Config } from '../config/settings.js';
import { HashedFeaturizer } from '../features/featurizer.js';
import { ImageFeatures } from '../features/image-features.js';
import { EventDecoder } from '../ingest/event-decoder.js';
import type { EventKind, InputRecord } from '../ingest/events.js';
import { AvroCodec } from '../serde/avro-codec.js';
import { AdCatalog } from '../scoring/ad-catalog.js';
import { CatalogUpdater } from '../scoring/catalog-updater.js';
import { UserStateStore } from '../state/user-state-store.js';
import { OutputEncoder } from '../emit/output-encoder.js';
import { Processor } from './processor.js';

/** Everything the core needs, wired from configuration; shared by every transport adapter. */
export interface Core {
  readonly processor: Processor;
  readonly catalogUpdater: CatalogUpdater;
  readonly catalog: AdCatalog;
  readonly users: UserStateStore;
  readonly images: ImageFeatures;
  readonly codec: AvroCodec;
  readonly encoder: OutputEncoder;
  /** Input topic -> event kind. */
  readonly eventTopics: ReadonlyMap<string, EventKind>;
}

export function assembleCore(
  config: Config,
  opts: { clock?: () => number; onUnexpected?: (err: unknown, source: InputRecord) => void } = {},
): Core {
  const clock = opts.clock ?? Date.now;
  const codec = new AvroCodec();
  const decoder = new EventDecoder(codec, {
    maxRecordBytes: config.maxRecordBytes,
    maxTextChars: config.maxTextChars,
    maxClockSkewMs: config.maxClockSkewS * 1000,
    maxEventAgeMs: config.maxEventAgeS * 1000,
  });
  const featurizer = new HashedFeaturizer({ dim: config.embeddingDim });
  const images = new ImageFeatures({ maxPixels: config.imageMaxPixels, cacheEntries: 10_000 });
  const users = new UserStateStore({ dim: config.embeddingDim, maxEntries: config.userCacheMaxEntries, ttlMs: config.userTtlS * 1000 });
  const catalog = new AdCatalog(config.embeddingDim);
  const eventTopics = new Map<string, EventKind>([
    [config.topicClicks, 'click'],
    [config.topicImageViews, 'image'],
    [config.topicReviews, 'review'],
  ]);
  if (eventTopics.size !== 3) throw new Error('TOPIC_CLICKS, TOPIC_IMAGE_VIEWS and TOPIC_REVIEWS must be three different topics');
  const processor = new Processor({
    decoder,
    featurizer,
    images,
    users,
    catalog,
    topics: eventTopics,
    halfLifeMs: config.interestHalfLifeS * 1000,
    topK: config.topK,
    clock,
    ...(opts.onUnexpected ? { onUnexpected: opts.onUnexpected } : {}),
  });
  const catalogUpdater = new CatalogUpdater(decoder, featurizer, images, catalog, clock);
  const encoder = new OutputEncoder(codec, config.deadLetterMaxValueBytes);
  return { processor, catalogUpdater, catalog, users, images, codec, encoder, eventTopics };
}
