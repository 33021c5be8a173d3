/**
 * The Kafka pass-through: the processor's Kafka path with nothing in the middle, the floor its
 * throughput and latency are compared with. It connects as the processor does (connectKafka: same
 * client, topic creation, co-partitioning check, and the same BoundedProducer with the cluster's
 * size limits, acks=-1), consumes the same co-partitioned input topics with the same consumer
 * options as src/adapters/kafka/consume.ts (group, co-partitioned assignment, session timeout,
 * partitions handled at once, the client's default fetch wait) through the processor's own
 * runEventSource (same chunking; an offset is marked done only after the chunk's outputs are
 * acknowledged), decodes and validates each event with the processor's EventDecoder (Avro), and per
 * chunk produces one ScoredCandidates record per user (no ads, eventIds as lineage). No features,
 * inference, state, changelog, and no per-partition gate across topics (that is the processing
 * model's queueing, part of what is measured against this floor).
 *
 * Run as its own process, configured like the processor (KAFKA_BROKERS, KAFKA_CLIENT, GROUP_ID,
 * TOPIC_*, CHUNK_MAX_RECORDS): `node --import tsx loadtest/passthrough.ts`; SIGTERM stops it.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/app/config/load-config.js';
import type { Config } from '../src/app/config/settings.js';
import { EventDecoder } from '../src/pipeline/decode.js';
import type { EventKind, InputRecord } from '../src/domain/events.js';
import { runEventSource } from '../src/adapters/kafka/event-source.js';
import type { GroupConsumerOptions, OutboundRecord } from '../src/adapters/kafka/port.js';
import { inputTopicsOf } from '../src/adapters/kafka/settings.js';
import { connectKafka } from '../src/adapters/kafka/wiring.js';
import { createLogger, type LogLevel } from '../src/util/log.js';
import { AvroCodec } from '../src/serde/avro-codec.js';

/**
 * The event consumer's options as the processor sets them (consumeEvents in
 * src/adapters/kafka/consume.ts); keep the two in step, or the ratio compares different consumers.
 */
export function processorConsumerOptions(config: Config, partitions: number): GroupConsumerOptions {
  return {
    groupId: config.groupId,
    topics: inputTopicsOf(config),
    coPartitioned: true,
    sessionTimeoutMs: config.sessionTimeoutMs,
    partitionsConcurrently: Math.min(partitions * 4, 8),
  };
}

export async function runPassThrough(config: Config): Promise<{ stop(): Promise<void> }> {
  const logger = createLogger(config.logLevel as LogLevel);
  const kafka = await connectKafka({ ...config, kafkaClientId: `${config.kafkaClientId}-passthrough` }, logger);
  const codec = new AvroCodec();
  const decoder = new EventDecoder(codec, { maxRecordBytes: config.maxRecordBytes, maxTextChars: config.maxTextChars, maxClockSkewMs: config.maxClockSkewS * 1000, maxEventAgeMs: config.maxEventAgeS * 1000 });
  // The deletions topic is consumed (the processor's consumer subscribes to it) but yields no output.
  const kinds = new Map<string, EventKind>([[config.topicClicks, 'click'], [config.topicImageViews, 'image'], [config.topicReviews, 'review']]);
  const consumer = await kafka.client.groupConsumer(processorConsumerOptions(config, kafka.partitions));

  const handle = async (records: InputRecord[]): Promise<void> => {
    // A chunk holds the records of every input topic of its partition number (the task's inbox).
    const now = Date.now();
    const byUser = new Map<string, { eventIds: string[]; latest: number }>();
    for (const r of records) {
      const kind = kinds.get(r.topic);
      if (kind === undefined) continue;
      try {
        const e = decoder.decodeEvent(kind, r, now);
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
    // Resolves once acknowledged by all in-sync replicas; runEventSource marks the offsets done after it.
    if (out.length > 0) await kafka.producer.send([{ topic: config.topicScored, records: out }]);
  };
  try {
    await runEventSource({ consumer, chunkMaxRecords: config.chunkMaxRecords, handle });
  } catch (err) {
    await consumer.disconnect().catch(() => undefined);
    await kafka.disconnect().catch(() => undefined);
    throw err;
  }
  return {
    stop: async () => {
      // Consumer first: it lets the chunk in flight finish and commits what was acknowledged.
      await consumer.disconnect();
      await kafka.disconnect();
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const running = await runPassThrough(loadConfig());
  const stop = (): void => void running.stop().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
