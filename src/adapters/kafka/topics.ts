import type { Admin } from 'kafkajs';
import type { Config } from '../../app/config/settings.js';
import { ConfigError } from '../../domain/errors.js';
import type { Logger } from '../../util/log.js';

interface TopicPlan {
  topic: string;
  partitions: number;
  compacted: boolean;
}

function plan(config: Config): TopicPlan[] {
  const p = config.topicPartitions;
  return [
    { topic: config.topicClicks, partitions: p, compacted: false },
    { topic: config.topicImageViews, partitions: p, compacted: false },
    { topic: config.topicReviews, partitions: p, compacted: false },
    { topic: config.topicUserDeletions, partitions: p, compacted: false },
    { topic: config.topicAds, partitions: 1, compacted: true },
    { topic: config.topicScored, partitions: p, compacted: false },
    { topic: config.topicSegments, partitions: p, compacted: true },
    { topic: config.topicChangelog, partitions: p, compacted: true },
    { topic: config.topicDeadLetters, partitions: p, compacted: false },
  ];
}

/** Creates the topics that are missing (when CREATE_TOPICS is on). Existing ones are left alone. */
export async function ensureTopics(admin: Admin, config: Config, logger: Logger): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = plan(config).filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((t) => ({
      topic: t.topic,
      numPartitions: t.partitions,
      replicationFactor: config.topicReplication,
      configEntries: t.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
    })),
  });
  logger.info('created topics', { topics: missing.map((t) => t.topic) });
}

/**
 * User state is partitioned by user id, so the three event topics and the state changelog must be
 * co-partitioned: the same partition count (and the default key partitioner). Checked at start
 * with a clear error.
 */
export async function checkCoPartitioned(admin: Admin, config: Config): Promise<number> {
  const topics = [config.topicClicks, config.topicImageViews, config.topicReviews, config.topicUserDeletions, config.topicChangelog];
  const existing = new Set(await admin.listTopics());
  const absent = topics.filter((t) => !existing.has(t));
  if (absent.length > 0) throw new ConfigError('CREATE_TOPICS', `topic(s) ${absent.join(', ')} do not exist; create them or set CREATE_TOPICS=true`);
  const meta = await admin.fetchTopicMetadata({ topics });
  const counts = meta.topics.map((t) => `${t.name}=${t.partitions.length}`);
  const distinct = new Set(meta.topics.map((t) => t.partitions.length));
  if (distinct.size !== 1) {
    throw new ConfigError('TOPIC_PARTITIONS', `the event topics, the deletions topic and the state changelog must be co-partitioned by user id (same partition count), found ${counts.join(', ')}`);
  }
  return meta.topics[0]!.partitions.length;
}
