import { ConfigError } from '../../domain/errors.js';

/**
 * The settings the Kafka adapter reads, declared here so the adapter needs nothing from the app:
 * the field names are the app's configuration keys, so its Config is passed as it is.
 */
export interface KafkaSettings {
  readonly kafkaBrokers: readonly string[] | null;
  readonly kafkaClientId: string;
  readonly groupId: string;
  readonly topicClicks: string;
  readonly topicImageViews: string;
  readonly topicReviews: string;
  readonly topicUserDeletions: string;
  readonly topicAds: string;
  readonly topicScored: string;
  readonly topicSegments: string;
  readonly topicChangelog: string;
  readonly topicDeadLetters: string;
  readonly createTopics: boolean;
  readonly topicPartitions: number;
  readonly topicReplication: number;
  readonly sessionTimeoutMs: number;
  readonly chunkMaxRecords: number;
  readonly emitIntervalMs: number;
}

/** What topic creation and the co-partitioning check read. */
export type TopicSettings = Pick<
  KafkaSettings,
  'topicClicks' | 'topicImageViews' | 'topicReviews' | 'topicUserDeletions' | 'topicAds' | 'topicScored' | 'topicSegments' | 'topicChangelog' | 'topicDeadLetters' | 'topicPartitions' | 'topicReplication'
>;

/** KAFKA_BROKERS, or a ConfigError saying how to set it. */
export function brokersOf(s: Pick<KafkaSettings, 'kafkaBrokers'>): readonly string[] {
  if (!s.kafkaBrokers || s.kafkaBrokers.length === 0) {
    throw new ConfigError('KAFKA_BROKERS', 'is not set; point it at your Kafka cluster (host:port,...), or use `npm run demo`, which starts a local broker');
  }
  return s.kafkaBrokers;
}

/** The co-partitioned input topics: the three event topics and the deletions. */
export function inputTopicsOf(s: Pick<KafkaSettings, 'topicClicks' | 'topicImageViews' | 'topicReviews' | 'topicUserDeletions'>): string[] {
  return [s.topicClicks, s.topicImageViews, s.topicReviews, s.topicUserDeletions];
}
