import { ConfigError } from '../../domain/errors.js';
import type { Logger } from '../../util/log.js';
import type { KafkaAdmin, TopicSpec } from './port.js';
import type { TopicSettings } from './settings.js';

const COMPACT = { 'cleanup.policy': 'compact' } as const;

function plan(s: TopicSettings): TopicSpec[] {
  const partitions = s.topicPartitions;
  const replication = s.topicReplication;
  return [
    { topic: s.topicClicks, partitions, replication },
    { topic: s.topicImageViews, partitions, replication },
    { topic: s.topicReviews, partitions, replication },
    { topic: s.topicUserDeletions, partitions, replication },
    { topic: s.topicAdFeedback, partitions, replication },
    { topic: s.topicAds, partitions: 1, replication, configs: COMPACT },
    { topic: s.topicScored, partitions, replication },
    { topic: s.topicSegments, partitions, replication, configs: COMPACT },
    { topic: s.topicChangelog, partitions, replication, configs: COMPACT },
    { topic: s.topicDeadLetters, partitions, replication },
    { topic: s.topicTrainingExamples, partitions, replication },
  ];
}

/** Creates the topics that are missing (when CREATE_TOPICS is on). Existing ones are left alone. */
export async function ensureTopics(admin: KafkaAdmin, settings: TopicSettings, logger: Logger): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = plan(settings).filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  await admin.createTopics(missing);
  logger.info('created topics', { topics: missing.map((t) => t.topic) });
}

/**
 * User state is partitioned by user id, so the three event topics, the deletions and the state
 * changelog must be co-partitioned: the same partition count (and the default key partitioner).
 * Checked at start with a clear error; returns the count.
 */
export async function checkCoPartitioned(admin: KafkaAdmin, settings: TopicSettings): Promise<number> {
  const topics = [settings.topicClicks, settings.topicImageViews, settings.topicReviews, settings.topicUserDeletions, settings.topicAdFeedback, settings.topicChangelog];
  const existing = new Set(await admin.listTopics());
  const absent = topics.filter((t) => !existing.has(t));
  if (absent.length > 0) throw new ConfigError('CREATE_TOPICS', `topic(s) ${absent.join(', ')} do not exist; create them or set CREATE_TOPICS=true`);
  const counts = await admin.partitionCounts(topics);
  const distinct = new Set(topics.map((t) => counts.get(t)));
  if (distinct.size !== 1) {
    throw new ConfigError('TOPIC_PARTITIONS', `the event topics, the deletions and ad-feedback topics and the state changelog must be co-partitioned by user id (same partition count), found ${topics.map((t) => `${t}=${counts.get(t)}`).join(', ')}`);
  }
  return counts.get(topics[0]!)!;
}
