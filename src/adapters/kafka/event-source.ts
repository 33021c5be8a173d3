import type { InputRecord } from '../../domain/events.js';
import type { FetchControl, FetchedRecords, GroupConsumer } from './port.js';

export interface EventSourceOptions {
  /** Subscribed to the event topics (see KafkaClient.groupConsumer). */
  readonly consumer: GroupConsumer;
  /** Records handled, delivered and acknowledged together before their offsets are marked done. */
  readonly chunkMaxRecords: number;
  /** Resolves once the chunk's outputs are acknowledged; a rejection stops the partition. */
  readonly handle: (records: InputRecord[]) => Promise<void>;
  /**
   * A promise while the partition's state is being restored (its events must wait), else null.
   * Waited on with heartbeats, so a long restore does not cost the group membership.
   */
  readonly restoring?: (partition: number) => Promise<void> | null;
  /** Told, after each chunk, how many records of the partition are still behind it. */
  readonly onLag?: (topic: string, partition: number, lag: number) => void;
}

/**
 * Consumes the event topics in one consumer group and feeds the handler in chunks. An offset is
 * marked done (and then committed) only after the handler resolved for every record up to it, so a
 * crash replays at most the unacknowledged chunks: at-least-once, nothing lost.
 */
export async function runEventSource(o: EventSourceOptions): Promise<void> {
  await o.consumer.run((fetched, control) => consumeFetch(o, fetched, control));
}

async function consumeFetch(o: EventSourceOptions, f: FetchedRecords, c: FetchControl): Promise<void> {
  for (let gate = o.restoring?.(f.partition); gate; gate = o.restoring?.(f.partition)) {
    await Promise.race([gate, new Promise((r) => setTimeout(r, 1000).unref())]);
    if (!c.isActive()) return;
    await c.heartbeat();
  }
  const records = f.records;
  for (let start = 0; start < records.length; start += o.chunkMaxRecords) {
    // Stop between chunks on shutdown or rebalance; records not done go to the next owner.
    if (!c.isActive()) return;
    const chunk = records.slice(start, start + o.chunkMaxRecords);
    await o.handle(chunk);
    const last = chunk[chunk.length - 1]!.offset;
    // Lag as consumers count it: records after this one up to the fetch's high watermark.
    o.onLag?.(f.topic, f.partition, Math.max(0, Number(f.highWatermark) - Number(last) - 1));
    await c.done(last);
    await c.heartbeat();
  }
}
