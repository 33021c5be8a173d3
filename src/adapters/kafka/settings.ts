import { ConfigError } from '../../domain/errors.js';
import type { ModelSettings } from '../../models/settings.js';
import type { PipelineSettings } from '../../pipeline/settings.js';
import type { StateSettings } from '../../state/settings.js';
import type { SettingTable, SettingValues } from '../../util/settings.js';

/** The Kafka adapter's settings: the cluster, the consumer group, topic creation and chunking. */
export const KAFKA_SETTINGS = {
  kafkaBrokers: { env: 'KAFKA_BROKERS', kind: 'list', default: null, doc: 'Kafka bootstrap servers, comma-separated. Unset: `demo` starts a local broker; `run` refuses to start.' },
  kafkaClient: { env: 'KAFKA_CLIENT', kind: 'enum', default: 'kafkajs', values: ['kafkajs', 'confluent'], doc: 'Kafka client library: kafkajs, or confluent (@confluentinc/kafka-javascript over librdkafka: lower latency, higher throughput; an optional package, installed by `CKJS_LINKING=dynamic npm ci`).' },
  kafkaClientId: { env: 'KAFKA_CLIENT_ID', kind: 'string', default: 'adstream', doc: 'Client id sent to Kafka (shows in broker logs and quotas).' },
  groupId: { env: 'GROUP_ID', kind: 'string', default: 'adstream-processor', doc: 'Consumer group of the event consumers; instances with the same group share partitions.' },
  createTopics: { env: 'CREATE_TOPICS', kind: 'boolean', default: true, doc: 'Create missing topics at start (event topics with TOPIC_PARTITIONS partitions, the catalog and segments compacted).' },
  topicPartitions: { env: 'TOPIC_PARTITIONS', kind: 'int', default: 3, min: 1, max: 10000, doc: 'Partitions of topics created at start; the three event topics must have the same count.' },
  topicReplication: { env: 'TOPIC_REPLICATION', kind: 'int', default: 1, min: 1, max: 16, doc: 'Replication factor of topics created at start.' },
  sessionTimeoutMs: { env: 'SESSION_TIMEOUT_MS', kind: 'int', default: 30000, min: 6000, max: 300000, doc: 'Consumer group session timeout: how soon partitions of a crashed instance move to the others.' },
  produceMaxBytes: { env: 'PRODUCE_MAX_BYTES', kind: 'int', default: 0, min: 0, max: 1073741824, doc: 'Largest record batch and produce request sent, in bytes. 0: what the cluster accepts, read at start (each output topic\'s max.message.bytes, the brokers\' message.max.bytes); set it when the cluster\'s configs cannot be described.' },
  chunkMaxRecords: { env: 'CHUNK_MAX_RECORDS', kind: 'int', default: 500, min: 1, max: 100000, doc: 'Records processed, produced and committed together; smaller gives lower latency, larger more throughput.' },
  processingGuarantee: { env: 'PROCESSING_GUARANTEE', kind: 'enum', default: 'at_least_once', values: ['at_least_once', 'exactly_once'], doc: 'at_least_once: a crash or outage can publish an output twice. exactly_once: outputs, changelog records and input offsets of each partition go in one Kafka transaction per COMMIT_INTERVAL_MS (transactional id `<GROUP_ID>-<partition>`); readers must set isolation.level=read_committed. Either client (kafkajs, confluent).' },
  commitIntervalMs: { env: 'COMMIT_INTERVAL_MS', kind: 'int', default: 100, min: 1, max: 60000, doc: 'exactly_once: how long a partition\'s transaction stays open before it is committed (outputs become visible then: adds up to this much latency).' },
} as const satisfies SettingTable;

/**
 * What the Kafka adapter reads: its own table, and the processor's topics and emit interval, and
 * the settings that size its largest records (named when one cannot fit its topic). The field
 * names are the app's configuration keys, so the app's Config is passed as it is.
 */
export type KafkaSettings = SettingValues<typeof KAFKA_SETTINGS> &
  Pick<
    PipelineSettings,
    'topicClicks' | 'topicImageViews' | 'topicReviews' | 'topicUserDeletions' | 'topicAdFeedback' | 'topicAds' | 'topicScored' | 'topicSegments' | 'topicChangelog' | 'topicDeadLetters' | 'topicTrainingExamples' | 'emitIntervalMs' | 'topK'
  > &
  Pick<StateSettings, 'interestsPerUser'> &
  Pick<ModelSettings, 'fusedDim'>;

/** What topic creation and the co-partitioning check read. */
export type TopicSettings = Pick<
  KafkaSettings,
  'topicClicks' | 'topicImageViews' | 'topicReviews' | 'topicUserDeletions' | 'topicAdFeedback' | 'topicAds' | 'topicScored' | 'topicSegments' | 'topicChangelog' | 'topicDeadLetters' | 'topicTrainingExamples' | 'topicPartitions' | 'topicReplication'
>;

/** KAFKA_BROKERS, or a ConfigError saying how to set it. */
export function brokersOf(s: Pick<KafkaSettings, 'kafkaBrokers'>): readonly string[] {
  if (!s.kafkaBrokers || s.kafkaBrokers.length === 0) {
    throw new ConfigError('KAFKA_BROKERS', 'is not set; point it at your Kafka cluster (host:port,...), or use `npm run demo`, which starts a local broker');
  }
  return s.kafkaBrokers;
}

/** The co-partitioned input topics: the three event topics, the deletions and the ad feedback. */
export function inputTopicsOf(s: Pick<KafkaSettings, 'topicClicks' | 'topicImageViews' | 'topicReviews' | 'topicUserDeletions' | 'topicAdFeedback'>): string[] {
  return [s.topicClicks, s.topicImageViews, s.topicReviews, s.topicUserDeletions, s.topicAdFeedback];
}

/** The topics the processor produces to: scored outputs, segments, the state changelog, dead letters, training examples. */
export function outputTopicsOf(s: Pick<KafkaSettings, 'topicScored' | 'topicSegments' | 'topicChangelog' | 'topicDeadLetters' | 'topicTrainingExamples'>): string[] {
  return [s.topicScored, s.topicSegments, s.topicChangelog, s.topicDeadLetters, s.topicTrainingExamples];
}
