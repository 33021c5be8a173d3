/**
 * The Kafka pass-through ceiling: the processor's Kafka path with nothing in the middle. It consumes
 * the same event topics with the same client (kafkajs) and the same chunking, resolve and commit
 * pattern (src/ingest/kafka-event-source.ts), decodes and validates each record with the processor's
 * own EventDecoder (Avro), and per chunk produces one ScoredCandidates record per user (no ads,
 * eventIds as lineage) with acks=all before resolving the chunk's offsets. No features, no
 * inference, no state, no changelog.
 *
 * Run as its own process, configured like the processor (KAFKA_BROKERS, GROUP_ID, TOPIC_*,
 * CHUNK_MAX_RECORDS): `node --import tsx loadtest/passthrough.ts`; SIGTERM stops it.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Partitioners, type Message } from 'kafkajs';
import { loadConfig } from '../src/app/config/load-config.js';
import type { Config } from '../src/app/config/settings.js';
import { EventDecoder } from '../src/pipeline/decode.js';
import type { EventKind, InputRecord } from '../src/domain/events.js';
import { runEventSource } from '../src/adapters/kafka/event-source.js';
import { createKafka } from '../src/adapters/kafka/kafkajs-client.js';
import { ensureTopics } from '../src/adapters/kafka/topics.js';
import { createLogger, type LogLevel } from '../src/util/log.js';
import { AvroCodec } from '../src/serde/avro-codec.js';

export async function runPassThrough(config: Config): Promise<{ stop(): Promise<void> }> {
  const logger = createLogger(config.logLevel as LogLevel);
  const kafka = createKafka({ brokers: config.kafkaBrokers!, clientId: `${config.kafkaClientId}-passthrough`, logger });
  const admin = kafka.admin();
  await admin.connect();
  if (config.createTopics) await ensureTopics(admin, config, logger);
  await admin.disconnect();
  const codec = new AvroCodec();
  const decoder = new EventDecoder(codec, { maxRecordBytes: config.maxRecordBytes, maxTextChars: config.maxTextChars, maxClockSkewMs: config.maxClockSkewS * 1000, maxEventAgeMs: config.maxEventAgeS * 1000 });
  const kinds = new Map<string, EventKind>([[config.topicClicks, 'click'], [config.topicImageViews, 'image'], [config.topicReviews, 'review']]);
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const consumer = kafka.consumer({ groupId: config.groupId, sessionTimeout: config.sessionTimeoutMs, heartbeatInterval: Math.floor(config.sessionTimeoutMs / 10), rebalanceTimeout: 60_000 });
  await consumer.connect();

  const handle = async (records: InputRecord[]): Promise<void> => {
    const now = Date.now();
    const byUser = new Map<string, { eventIds: string[]; latest: number }>();
    for (const r of records) {
      try {
        const e = decoder.decodeEvent(kinds.get(r.topic)!, r, now);
        const u = byUser.get(e.userId) ?? { eventIds: [], latest: 0 };
        u.eventIds.push(e.eventId);
        u.latest = Math.max(u.latest, e.eventTime);
        byUser.set(e.userId, u);
      } catch {
        // A bad record would be a dead letter in the processor; the world sends none.
      }
    }
    const messages: Message[] = [...byUser].map(([userId, u]) => ({
      key: userId,
      value: codec.encode('dev.adstream.outputs.ScoredCandidates', { outputId: `${userId}-${u.eventIds[0]}`, userId, candidates: [], modelVersion: 'passthrough', triggerEventTime: u.latest, processingTime: Date.now(), eventIds: u.eventIds }),
    }));
    if (messages.length > 0) await producer.sendBatch({ acks: -1, topicMessages: [{ topic: config.topicScored, messages }] });
  };
  const partitions = config.topicPartitions;
  await runEventSource({ consumer, topics: [...kinds.keys()], chunkMaxRecords: config.chunkMaxRecords, partitionsConcurrently: Math.min(partitions * 3, 6), handle });
  return {
    stop: async () => {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const running = await runPassThrough(loadConfig());
  const stop = (): void => void running.stop().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
