/**
 * Every setting the processor reads, in one declarative table. The loader, the CLI's --help and the
 * README's configuration table all come from here (a test fails when the README is stale).
 */
export type SettingKind = 'string' | 'int' | 'number' | 'boolean' | 'list' | 'enum';

export interface SettingSpec {
  /** Environment variable; the config file uses the camelCase key. */
  readonly env: string;
  readonly kind: SettingKind;
  readonly default: string | number | boolean | readonly string[] | null;
  readonly doc: string;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
}

export const SETTINGS = {
  kafkaBrokers: { env: 'KAFKA_BROKERS', kind: 'list', default: null, doc: 'Kafka bootstrap servers, comma-separated. Unset: `demo` starts a local broker; `run` refuses to start.' },
  kafkaClientId: { env: 'KAFKA_CLIENT_ID', kind: 'string', default: 'adstream', doc: 'Client id sent to Kafka (shows in broker logs and quotas).' },
  groupId: { env: 'GROUP_ID', kind: 'string', default: 'adstream-processor', doc: 'Consumer group of the event consumers; instances with the same group share partitions.' },
  topicClicks: { env: 'TOPIC_CLICKS', kind: 'string', default: 'clicks', doc: 'Input: click events (ClickEvent), keyed by user id.' },
  topicImageViews: { env: 'TOPIC_IMAGE_VIEWS', kind: 'string', default: 'image-views', doc: 'Input: image-view events (ImageViewEvent), keyed by user id.' },
  topicReviews: { env: 'TOPIC_REVIEWS', kind: 'string', default: 'reviews', doc: 'Input: review events (ReviewEvent), keyed by user id.' },
  topicAds: { env: 'TOPIC_ADS', kind: 'string', default: 'ads', doc: 'Input: the ad catalog (Ad), compacted, keyed by ad id; a tombstone deletes.' },
  topicScored: { env: 'TOPIC_SCORED', kind: 'string', default: 'scored-candidates', doc: 'Output: ranked ads per user (ScoredCandidates), keyed by user id.' },
  topicSegments: { env: 'TOPIC_SEGMENTS', kind: 'string', default: 'interest-segments', doc: 'Output: interest segments per user (InterestSegments), compacted.' },
  topicChangelog: { env: 'TOPIC_CHANGELOG', kind: 'string', default: 'user-state', doc: 'Compacted changelog of user state (UserState), keyed by user id, co-partitioned with the event topics; restored on partition assignment.' },
  topicUserDeletions: { env: 'TOPIC_USER_DELETIONS', kind: 'string', default: 'user-deletions', doc: 'Input: user deletion requests (UserDeletion), keyed by user id, co-partitioned with the event topics; the user\'s state is removed and tombstoned in the changelog and segments.' },
  topicDeadLetters: { env: 'TOPIC_DEAD_LETTERS', kind: 'string', default: 'dead-letters', doc: 'Output: records that could not be used (DeadLetter), with a reason code.' },
  createTopics: { env: 'CREATE_TOPICS', kind: 'boolean', default: true, doc: 'Create missing topics at start (event topics with TOPIC_PARTITIONS partitions, the catalog and segments compacted).' },
  topicPartitions: { env: 'TOPIC_PARTITIONS', kind: 'int', default: 3, min: 1, max: 10000, doc: 'Partitions of topics created at start; the three event topics must have the same count.' },
  topicReplication: { env: 'TOPIC_REPLICATION', kind: 'int', default: 1, min: 1, max: 16, doc: 'Replication factor of topics created at start.' },
  embeddingDim: { env: 'EMBEDDING_DIM', kind: 'int', default: 64, min: 8, max: 4096, doc: 'Embedding size of each default encoder (image, text, click).' },
  modelDir: { env: 'MODEL_DIR', kind: 'string', default: '~/.cache/adstream/models', doc: 'Where the default ONNX models are written (once per version) and read from.' },
  modelCard: { env: 'MODEL_CARD', kind: 'string', default: null, doc: 'A model-card JSON whose entries replace default models (bring your own ONNX encoder, e.g. a CLIP image tower); see README "Models".' },
  executionProviders: { env: 'EXECUTION_PROVIDERS', kind: 'list', default: ['cpu'], values: ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml', 'qnn'], doc: 'onnxruntime execution providers to try in order, e.g. cuda,webgpu,cpu; a provider that cannot start is skipped (logged once).' },
  inferenceWorkers: { env: 'INFERENCE_WORKERS', kind: 'int', default: 0, min: 0, max: 256, doc: 'Worker threads running the models; 0 means one per CPU core.' },
  intraOpThreads: { env: 'INTRA_OP_THREADS', kind: 'int', default: 1, min: 1, max: 256, doc: 'onnxruntime threads inside one worker.' },
  maxBatchSize: { env: 'MAX_BATCH_SIZE', kind: 'int', default: 256, min: 1, max: 65536, doc: 'Items per inference batch at most (per model).' },
  maxQueueDelayMs: { env: 'MAX_QUEUE_DELAY_MS', kind: 'number', default: 2, min: 0, max: 10000, doc: 'How long the oldest queued item may wait for a fuller batch.' },
  maxQueueItems: { env: 'MAX_QUEUE_ITEMS', kind: 'int', default: 50000, min: 1, max: 10000000, doc: 'Items queued per model at most; consumption pauses above 80 % of it and resumes below 40 %.' },
  fusion: { env: 'FUSION', kind: 'enum', default: 'concat', values: ['concat', 'average', 'weighted'], doc: 'How modality embeddings become one vector: concat (weighted blocks, random projection to FUSED_DIM; works with unaligned encoders), average or weighted (sums in one space: only for aligned encoders such as CLIP).' },
  fusedDim: { env: 'FUSED_DIM', kind: 'int', default: 128, min: 8, max: 4096, doc: 'Width of the fused space with FUSION=concat (average and weighted keep the widest encoder\'s width).' },
  weightImage: { env: 'WEIGHT_IMAGE', kind: 'number', default: 1, min: 0, max: 1000, doc: 'Weight of the image modality: scales image events in user interests and the image block of ads (FUSION concat or weighted; 0 ignores images).' },
  weightText: { env: 'WEIGHT_TEXT', kind: 'number', default: 1, min: 0, max: 1000, doc: 'Weight of the text modality (reviews, ad copy), as WEIGHT_IMAGE.' },
  weightClick: { env: 'WEIGHT_CLICK', kind: 'number', default: 1, min: 0, max: 1000, doc: 'Weight of the click modality (items, ad categories), as WEIGHT_IMAGE.' },
  imageCacheBytes: { env: 'IMAGE_CACHE_BYTES', kind: 'int', default: 33554432, min: 0, max: 68719476736, doc: 'Image embeddings cached by image id, in bytes.' },
  itemCacheBytes: { env: 'ITEM_CACHE_BYTES', kind: 'int', default: 16777216, min: 0, max: 68719476736, doc: 'Click (item + category) embeddings cached, in bytes.' },
  catalogUploadIntervalMs: { env: 'CATALOG_UPLOAD_INTERVAL_MS', kind: 'int', default: 1000, min: 0, max: 3600000, doc: 'Catalog changes reach the scorer at most this often (deactivated ads are filtered at once regardless).' },
  interestHalfLifeS: { env: 'INTEREST_HALF_LIFE_S', kind: 'number', default: 3600, min: 1, max: 31536000, doc: 'Half-life of a user interest, in seconds of event time.' },
  interestsPerUser: { env: 'INTERESTS_PER_USER', kind: 'int', default: 3, min: 1, max: 32, doc: 'Interests kept per user (K); an event far from all of them starts a new one, dropping the weakest when K are held. 1: one blended interest.' },
  newInterestThreshold: { env: 'NEW_INTEREST_THRESHOLD', kind: 'number', default: 0.5, min: -1, max: 1, doc: 'An event whose cosine to every interest of the user is below this starts a new interest.' },
  topK: { env: 'TOP_K', kind: 'int', default: 10, min: 1, max: 1000, doc: 'Ads per scored output.' },
  emitIntervalMs: { env: 'EMIT_INTERVAL_MS', kind: 'int', default: 0, min: 0, max: 86400000, doc: 'A user is scored at most this often; events in between wait in the user state and go out with the next output. 0: every chunk that touches the user.' },
  userCacheMaxEntries: { env: 'USER_CACHE_MAX_ENTRIES', kind: 'int', default: 100000, min: 1, max: 100000000, doc: 'Users kept in memory (LRU); the least recently active are evicted first.' },
  userCacheMaxBytes: { env: 'USER_CACHE_MAX_BYTES', kind: 'int', default: 268435456, min: 65536, max: 1099511627776, doc: 'Memory for user state, in bytes (vectors and bookkeeping as counted by the store); the least recently active users are evicted beyond it.' },
  userTtlS: { env: 'USER_TTL_S', kind: 'number', default: 86400, min: 1, max: 31536000, doc: 'A user idle this long is dropped from memory.' },
  sessionTimeoutMs: { env: 'SESSION_TIMEOUT_MS', kind: 'int', default: 30000, min: 6000, max: 300000, doc: 'Consumer group session timeout: how soon partitions of a crashed instance move to the others.' },
  chunkMaxRecords: { env: 'CHUNK_MAX_RECORDS', kind: 'int', default: 500, min: 1, max: 100000, doc: 'Records processed, produced and committed together; smaller gives lower latency, larger more throughput.' },
  maxRecordBytes: { env: 'MAX_RECORD_BYTES', kind: 'int', default: 1048576, min: 1024, max: 104857600, doc: 'Larger input records are dead-lettered as OVERSIZED.' },
  maxTextChars: { env: 'MAX_TEXT_CHARS', kind: 'int', default: 10000, min: 1, max: 1000000, doc: 'Longer review texts are dead-lettered as INVALID_FIELD.' },
  imageMaxPixels: { env: 'IMAGE_MAX_PIXELS', kind: 'int', default: 25000000, min: 1, max: 1000000000, doc: 'Images declaring more pixels are refused before decoding (decompression bombs).' },
  imageAllowedOrigins: { env: 'IMAGE_ALLOWED_ORIGINS', kind: 'list', default: null, doc: 'Origins (scheme://host[:port]) that image references may be fetched from, comma-separated; redirects are checked too. Unset: none.' },
  imageFileRoot: { env: 'IMAGE_FILE_ROOT', kind: 'string', default: null, doc: 'Folder that file: image references must resolve into (symlinks followed, then checked). Unset: file references are refused.' },
  imageFetchTimeoutMs: { env: 'IMAGE_FETCH_TIMEOUT_MS', kind: 'int', default: 2000, min: 1, max: 600000, doc: 'Time allowed to fetch one referenced image, redirects included.' },
  imageMaxBytes: { env: 'IMAGE_MAX_BYTES', kind: 'int', default: 10485760, min: 1, max: 1073741824, doc: 'Referenced images larger than this are refused.' },
  maxClockSkewS: { env: 'MAX_CLOCK_SKEW_S', kind: 'number', default: 300, min: 0, max: 86400, doc: 'Events timed further than this in the future are dead-lettered.' },
  maxEventAgeS: { env: 'MAX_EVENT_AGE_S', kind: 'number', default: 2592000, min: 1, max: 3153600000, doc: 'Events older than this are dead-lettered (30 days by default).' },
  deadLetterMaxValueBytes: { env: 'DEAD_LETTER_MAX_VALUE_BYTES', kind: 'int', default: 65536, min: 0, max: 104857600, doc: 'Dead letters keep at most this many bytes of the original value.' },
  httpHost: { env: 'HTTP_HOST', kind: 'string', default: '127.0.0.1', doc: 'Address the HTTP server (/metrics, /healthz, /readyz) binds to.' },
  httpToken: { env: 'HTTP_TOKEN', kind: 'string', default: null, doc: 'Bearer token for the per-user HTTP view (GET /users/:id). Unset: that endpoint is off (403).' },
  httpPort: { env: 'HTTP_PORT', kind: 'int', default: 9464, min: 0, max: 65535, doc: 'Port of the HTTP server; 0 picks a free one.' },
  logLevel: { env: 'LOG_LEVEL', kind: 'enum', default: 'info', values: ['debug', 'info', 'warn', 'error', 'silent'], doc: 'Least severe level logged (JSON lines on stdout).' },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;

type ValueOf<S extends SettingSpec> = S['kind'] extends 'int' | 'number'
  ? number
  : S['kind'] extends 'boolean'
    ? boolean
    : S['kind'] extends 'list'
      ? S['default'] extends null ? readonly string[] | null : readonly string[]
      : S['kind'] extends 'enum'
        ? S extends { values: readonly (infer V)[] } ? V : string
        : S['default'] extends null ? string | null : string;

/** The validated configuration: one typed field per setting. */
export type Config = { readonly [K in SettingName]: ValueOf<(typeof SETTINGS)[K]> };
