import type { Consumer, EachBatchPayload } from 'kafkajs';
import { toInputRecord } from './kafkajs-client.js';
import type { InputRecord } from '../../domain/events.js';

export interface EventSourceOptions {
  readonly consumer: Consumer;
  readonly topics: readonly string[];
  /** Records handled, delivered and acknowledged together before their offsets are resolved. */
  readonly chunkMaxRecords: number;
  /** Topic-partitions fetched and handled at once. */
  readonly partitionsConcurrently: number;
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
 * resolved (and then committed) only after the handler resolved for every record up to it, so a
 * crash replays at most the unacknowledged chunks: at-least-once, nothing lost.
 */
export async function runEventSource(o: EventSourceOptions): Promise<void> {
  await o.consumer.subscribe({ topics: [...o.topics], fromBeginning: true });
  await o.consumer.run({
    autoCommit: true,
    // Besides the commit kafkajs makes after each batch, commit resolved offsets at least once a
    // second inside long batches, to keep the replay window after a crash short.
    autoCommitInterval: 1000,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: o.partitionsConcurrently,
    eachBatch: (payload) => consumeBatch(o, payload),
  });
}

async function consumeBatch(o: EventSourceOptions, p: EachBatchPayload): Promise<void> {
  const { batch } = p;
  for (let gate = o.restoring?.(batch.partition); gate; gate = o.restoring?.(batch.partition)) {
    await Promise.race([gate, new Promise((r) => setTimeout(r, 1000).unref())]);
    if (!p.isRunning() || p.isStale()) return;
    await p.heartbeat();
  }
  const messages = batch.messages;
  for (let start = 0; start < messages.length; start += o.chunkMaxRecords) {
    // Stop between chunks on shutdown or rebalance; unresolved records go to the next owner.
    if (!p.isRunning() || p.isStale()) return;
    const slice = messages.slice(start, start + o.chunkMaxRecords);
    const records: InputRecord[] = slice.map((m) => toInputRecord(batch.topic, batch.partition, m));
    await o.handle(records);
    const last = slice[slice.length - 1]!.offset;
    p.resolveOffset(last);
    // Lag as consumers count it: records after this one up to the fetch's high watermark.
    o.onLag?.(batch.topic, batch.partition, Math.max(0, Number(batch.highWatermark) - Number(last) - 1));
    await p.commitOffsetsIfNecessary();
    await p.heartbeat();
  }
}
