/**
 * The Kafka pass-through ceiling: the processor's Kafka path with nothing in the middle. It consumes
 * the same event topics through the same Kafka port and client, with the same chunking and commit
 * pattern (src/adapters/kafka/event-source.ts), decodes and validates each record with the processor's
 * own EventDecoder (Avro), and per chunk produces one ScoredCandidates record per user (no ads,
 * eventIds as lineage) with acks=all before resolving the chunk's offsets. No features, no
 * inference, no state, no changelog.
 *
 * Run as its own process, configured like the processor (KAFKA_BROKERS, GROUP_ID, TOPIC_*,
 * CHUNK_MAX_RECORDS): `node --import tsx loadtest/passthrough.ts`; SIGTERM stops it.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/app/config/load-config.js';
import type { Config } from '../src/app/config/settings.js';
import { EventDecoder } from '../src/pipeline/decode.js';
import type { EventKind, InputRecord } from '../src/domain/events.js';
import { createKafkaClient } from '../src/adapters/kafka/client.js';
import { runEventSource } from '../src/adapters/kafka/event-source.js';
import type { OutboundRecord } from '../src/adapters/kafka/port.js';
import { ensureTopics } from '../src/adapters/kafka/topics.js';
import { createLogger, type LogLevel } from '../src/util/log.js';
import { AvroCodec } from '../src/serde/avro-codec.js';

export async function runPassThrough(config: Config): Promise<{ stop(): Promise<void> }> {
  const logger = createLogger(config.logLevel as LogLevel);
  const kafka = createKafkaClient({ brokers: config.kafkaBrokers!, clientId: `${config.kafkaClientId}-passthrough`, logger });
  const admin = await kafka.admin();
  if (config.createTopics) await ensureTopics(admin, config, logger);
  await admin.disconnect();
  const codec = new AvroCodec();
  const decoder = new EventDecoder(codec, { maxRecordBytes: config.maxRecordBytes, maxTextChars: config.maxTextChars, maxClockSkewMs: config.maxClockSkewS * 1000, maxEventAgeMs: config.maxEventAgeS * 1000 });
  const kinds = new Map<string, EventKind>([[config.topicClicks, 'click'], [config.topicImageViews, 'image'], [config.topicReviews, 'review']]);
  const producer = await kafka.producer();
  const partitions = config.topicPartitions;
  const consumer = await kafka.groupConsumer({ groupId: config.groupId, topics: [...kinds.keys()], sessionTimeoutMs: config.sessionTimeoutMs, partitionsConcurrently: Math.min(partitions * 3, 6) });

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
    const out: OutboundRecord[] = [...byUser].map(([userId, u]) => ({
      key: Buffer.from(userId, 'utf8'),
      value: codec.encode('dev.adstream.outputs.ScoredCandidates', { outputId: `${userId}-${u.eventIds[0]}`, userId, candidates: [], modelVersion: 'passthrough', triggerEventTime: u.latest, processingTime: Date.now(), eventIds: u.eventIds }),
    }));
    if (out.length > 0) await producer.send([{ topic: config.topicScored, records: out }]);
  };
  await runEventSource({ consumer, chunkMaxRecords: config.chunkMaxRecords, handle });
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
