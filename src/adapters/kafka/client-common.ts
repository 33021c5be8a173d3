/**
 * What every implementation of the Kafka port (./port.ts) needs alike, whatever the library:
 * connecting without leaks, fetched messages as InputRecords, assignments as the port reports
 * them, and the error causes a library wraps. No library is imported here.
 */
import type { InputRecord } from '../../domain/events.js';
import type { OutboundRecord, TopicRecords, TransactionOffsets } from './port.js';

/** Library log lines about errors every fresh cluster shows and the library retries: only debug for us. */
export const TRANSIENT_KAFKA_ERROR = /coordinator is not available|not the correct coordinator|coordinator load in progress|leader is not available|group is rebalancing/i;

/** Connects, or cleans up and rethrows: a failed connect must not leave sockets or timers behind. */
export async function connected<T extends { connect(): Promise<void>; disconnect(): Promise<void> }>(x: T): Promise<T> {
  try {
    await x.connect();
    return x;
  } catch (err) {
    await x.disconnect().catch(() => undefined);
    throw err;
  }
}

/** A fetched message as the libraries hand it over (kafkajs and the Confluent client's KafkaJS API alike). */
export interface FetchedMessage {
  readonly offset: string;
  readonly key: Buffer | string | null | undefined;
  readonly value: Buffer | string | null | undefined;
  readonly timestamp: string;
}

/** A fetched Kafka message as the transport-agnostic InputRecord the core takes. */
export function toInputRecord(topic: string, partition: number, m: FetchedMessage): InputRecord {
  return { topic, partition, offset: m.offset, key: asBuffer(m.key), value: asBuffer(m.value), timestamp: Number(m.timestamp) };
}

/** Kafka keys and values come as Buffer | string | null; the core wants bytes. */
export function asBuffer(v: Buffer | string | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** A member's assignment as a flat list of topic-partitions, grouped per topic (partitions ascending). */
export function assignmentByTopic(partitions: readonly { readonly topic: string; readonly partition: number }[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const { topic, partition } of partitions) (out[topic] ??= []).push(partition);
  for (const list of Object.values(out)) list.sort((a, b) => a - b);
  return out;
}

/** Whether `err` or one of its causes (libraries wrap the broker's error in their retrier's) matches. */
export function hasCause(err: unknown, matches: (e: Error) => boolean, depth = 5): boolean {
  for (let e = err, d = 0; e instanceof Error && d < depth; e = e.cause, d++) if (matches(e)) return true;
  return false;
}

/** A record to send as both libraries take it (headers copied: a library may rewrite them). */
export interface LibraryMessage {
  key: Buffer | null;
  value: Buffer | null;
  partition?: number;
  headers?: Record<string, string>;
}

/** One send's records per topic, empty topics left out. */
export function topicMessagesOf(batches: readonly TopicRecords[]): { topic: string; messages: LibraryMessage[] }[] {
  return batches.filter((b) => b.records.length > 0).map((b) => ({ topic: b.topic, messages: b.records.map(toLibraryMessage) }));
}

function toLibraryMessage(r: OutboundRecord): LibraryMessage {
  return { key: r.key, value: r.value, ...(r.partition !== undefined ? { partition: r.partition } : {}), ...(r.headers ? { headers: { ...r.headers } } : {}) };
}

/** A transaction's offsets per topic, as both libraries' sendOffsets take them. */
export function offsetsByTopic(offsets: readonly TransactionOffsets[]): { topic: string; partitions: { partition: number; offset: string }[] }[] {
  const topics = new Map<string, { partition: number; offset: string }[]>();
  for (const o of offsets) {
    let list = topics.get(o.topic);
    if (!list) topics.set(o.topic, (list = []));
    list.push({ partition: o.partition, offset: o.offset });
  }
  return [...topics].map(([topic, partitions]) => ({ topic, partitions }));
}
