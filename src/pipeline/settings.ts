import type { SettingTable, SettingValues } from '../util/settings.js';

/** The processor's topics (which input carries which event kind, where outputs go) and the stages' limits. */
export const PIPELINE_SETTINGS = {
  topicClicks: { env: 'TOPIC_CLICKS', kind: 'string', default: 'clicks', doc: 'Input: click events (ClickEvent), keyed by user id.' },
  topicImageViews: { env: 'TOPIC_IMAGE_VIEWS', kind: 'string', default: 'image-views', doc: 'Input: image-view events (ImageViewEvent), keyed by user id.' },
  topicReviews: { env: 'TOPIC_REVIEWS', kind: 'string', default: 'reviews', doc: 'Input: review events (ReviewEvent), keyed by user id.' },
  topicAds: { env: 'TOPIC_ADS', kind: 'string', default: 'ads', doc: 'Input: the ad catalog (Ad), compacted, keyed by ad id; a tombstone deletes.' },
  topicScored: { env: 'TOPIC_SCORED', kind: 'string', default: 'scored-candidates', doc: 'Output: ranked ads per user (ScoredCandidates), keyed by user id.' },
  topicSegments: { env: 'TOPIC_SEGMENTS', kind: 'string', default: 'interest-segments', doc: 'Output: interest segments per user (InterestSegments), compacted.' },
  topicChangelog: { env: 'TOPIC_CHANGELOG', kind: 'string', default: 'user-state', doc: 'Compacted changelog of user state (UserState), keyed by user id, co-partitioned with the event topics; restored on partition assignment.' },
  topicUserDeletions: { env: 'TOPIC_USER_DELETIONS', kind: 'string', default: 'user-deletions', doc: 'Input: user deletion requests (UserDeletion), keyed by user id, co-partitioned with the event topics; the user\'s state is removed and tombstoned in the changelog and segments.' },
  topicDeadLetters: { env: 'TOPIC_DEAD_LETTERS', kind: 'string', default: 'dead-letters', doc: 'Output: records that could not be used (DeadLetter), with a reason code.' },
  topicAdFeedback: { env: 'TOPIC_AD_FEEDBACK', kind: 'string', default: 'ad-feedback', doc: 'Input: impressions, clicks and conversions on offered ads (AdFeedback), keyed by user id, co-partitioned with the event topics; attributed into training examples.' },
  topicTrainingExamples: { env: 'TOPIC_TRAINING_EXAMPLES', kind: 'string', default: 'training-examples', doc: 'Output: labelled impressions with the features as served (TrainingExample), keyed by user id, plain (not compacted); what `adstream train` reads.' },
  attributionWindowS: { env: 'ATTRIBUTION_WINDOW_S', kind: 'number', default: 1800, min: 1, max: 604800, doc: 'A click within this many seconds (event time) of its impression labels it a positive; an impression with no click by then is a negative. What was served is held this long for its feedback.' },
  attributionMaxCaptures: { env: 'ATTRIBUTION_MAX_CAPTURES', kind: 'int', default: 50000, min: 1, max: 10000000, doc: 'Served (output, ad) features held per partition for their feedback; the oldest go first (counted as evicted).' },
  attributionMaxPending: { env: 'ATTRIBUTION_MAX_PENDING', kind: 'int', default: 50000, min: 1, max: 10000000, doc: 'Impressions waiting for their label per partition, and as many clicks waiting for their impression; the oldest go first (evicted).' },
  attributionCapture: { env: 'ATTRIBUTION_CAPTURE', kind: 'enum', default: 'on-feedback', values: ['always', 'on-feedback'], doc: 'When served features are captured for attribution: always, or on-feedback (only on partitions that have had ad feedback, now or before a restart: no cost where no ad server reports; impressions of outputs served before the first feedback of a partition are unmatched).' },
  maxRecordBytes: { env: 'MAX_RECORD_BYTES', kind: 'int', default: 1048576, min: 1024, max: 104857600, doc: 'Larger input records are dead-lettered as OVERSIZED.' },
  maxTextChars: { env: 'MAX_TEXT_CHARS', kind: 'int', default: 10000, min: 1, max: 1000000, doc: 'Longer review texts are dead-lettered as INVALID_FIELD.' },
  maxClockSkewS: { env: 'MAX_CLOCK_SKEW_S', kind: 'number', default: 300, min: 0, max: 86400, doc: 'Events timed further than this in the future are dead-lettered.' },
  maxEventAgeS: { env: 'MAX_EVENT_AGE_S', kind: 'number', default: 2592000, min: 1, max: 3153600000, doc: 'Events older than this are dead-lettered (30 days by default).' },
  imageCacheBytes: { env: 'IMAGE_CACHE_BYTES', kind: 'int', default: 33554432, min: 0, max: 68719476736, doc: 'Image embeddings cached by image id, in bytes.' },
  itemCacheBytes: { env: 'ITEM_CACHE_BYTES', kind: 'int', default: 16777216, min: 0, max: 68719476736, doc: 'Click (item + category) embeddings cached, in bytes.' },
  catalogUploadIntervalMs: { env: 'CATALOG_UPLOAD_INTERVAL_MS', kind: 'int', default: 1000, min: 0, max: 3600000, doc: 'Catalog changes reach the scorer at most this often (deactivated ads are filtered at once regardless).' },
  topK: { env: 'TOP_K', kind: 'int', default: 10, min: 1, max: 1000, doc: 'Ads per scored output.' },
  emitIntervalMs: { env: 'EMIT_INTERVAL_MS', kind: 'int', default: 0, min: 0, max: 86400000, doc: 'A user is scored at most this often; events in between wait in the user state and go out with the next output. 0: every chunk that touches the user.' },
  deadLetterMaxValueBytes: { env: 'DEAD_LETTER_MAX_VALUE_BYTES', kind: 'int', default: 65536, min: 0, max: 104857600, doc: 'Dead letters keep at most this many bytes of the original value.' },
} as const satisfies SettingTable;

export type PipelineSettings = SettingValues<typeof PIPELINE_SETTINGS>;
