/**
 * The one module that constructs the Kafka client library, so it can be swapped (e.g. for a
 * librdkafka-based client) without touching the adapters' logic.
 */
import { Kafka, logLevel, type KafkaMessage, type LogEntry } from 'kafkajs';
import type { InputRecord } from '../../domain/events.js';
import type { Logger } from '../../util/log.js';

export type { Admin, Consumer, Producer, EachBatchPayload, KafkaMessage } from 'kafkajs';

const TRANSIENT = /coordinator is not available|not the correct coordinator|leader is not available|group is rebalancing/i;

export function createKafka(opts: { brokers: readonly string[]; clientId: string; logger: Logger }): Kafka {
  const log = opts.logger.child({ component: 'kafkajs' });
  // kafkajs logs transient errors that it retries at ERROR; they are warnings for us, and the ones
  // every fresh cluster shows (the offsets topic's coordinator being elected) are only debug.
  const logCreator = () => (entry: LogEntry) => {
    const { message, ...rest } = entry.log;
    const fields = { namespace: entry.namespace, ...rest };
    if (typeof rest.error === 'string' && TRANSIENT.test(rest.error)) log.debug(message, fields);
    else if (entry.level === logLevel.ERROR || entry.level === logLevel.WARN) log.warn(message, fields);
    else if (entry.level === logLevel.INFO) log.debug(message, fields);
  };
  return new Kafka({
    clientId: opts.clientId,
    brokers: [...opts.brokers],
    logLevel: logLevel.WARN,
    logCreator,
    retry: { initialRetryTime: 200, retries: 10, maxRetryTime: 5000 },
  });
}

/** A fetched Kafka message as the transport-agnostic InputRecord the core takes. */
export function toInputRecord(topic: string, partition: number, m: KafkaMessage): InputRecord {
  return { topic, partition, offset: m.offset, key: asBuffer(m.key), value: asBuffer(m.value), timestamp: Number(m.timestamp) };
}

/** Kafka keys and values come as Buffer | string | null; the core wants bytes. */
function asBuffer(v: Buffer | string | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}
