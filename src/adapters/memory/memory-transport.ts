/**
 * An in-memory transport for replays without a broker: records are appended to topics as a
 * producer would send them (partition chosen by Kafka's default key partitioner, offsets counted
 * per partition), then handed to the core as the Kafka adapter does
 * (src/adapters/kafka/event-source.ts): per topic-partition, in order, in chunks of at most
 * CHUNK_MAX_RECORDS, several topic-partitions at once.
 */
import type { ProcessResult } from '../../domain/outputs.js';
import type { InputRecord } from '../../domain/events.js';
import { keyPartition } from '../../domain/partitioning.js';

export class MemoryTopics {
  private readonly logs = new Map<string, InputRecord[]>();
  private readonly next = new Map<string, number>();
  // Keyless records go round-robin per topic, as producers spread them.
  private readonly roundRobin = new Map<string, number>();

  constructor(readonly partitions: number) {}

  /** Appends a record; returns it as a consumer would read it. */
  append(topic: string, key: Buffer | null, value: Buffer | null, timestamp: number): InputRecord {
    const partition = key !== null ? keyPartition(key, this.partitions) : this.nextRoundRobin(topic);
    const tp = `${topic}\u0000${partition}`;
    const offset = this.next.get(tp) ?? 0;
    this.next.set(tp, offset + 1);
    const r: InputRecord = { topic, partition, offset: String(offset), key, value, timestamp };
    const log = this.logs.get(tp);
    if (log) log.push(r);
    else this.logs.set(tp, [r]);
    return r;
  }

  private nextRoundRobin(topic: string): number {
    const n = this.roundRobin.get(topic) ?? 0;
    this.roundRobin.set(topic, n + 1);
    return n % this.partitions;
  }

  /** Takes everything appended since the last call: per topic-partition, its records in chunks. */
  poll(chunkMaxRecords: number): InputRecord[][][] {
    const out: InputRecord[][][] = [];
    for (const records of this.logs.values()) {
      const chunks: InputRecord[][] = [];
      for (let i = 0; i < records.length; i += chunkMaxRecords) chunks.push(records.slice(i, i + chunkMaxRecords));
      out.push(chunks);
    }
    this.logs.clear();
    return out;
  }
}

/**
 * Feeds one poll's chunks to the core: topic-partitions `concurrency` at a time (as kafkajs's
 * partitionsConsumedConcurrently), each partition's chunks one after another; `deliver` gets each
 * result before that partition's next chunk is processed (the adapter waits for the broker's ack).
 */
export async function feed(
  perPartition: readonly (readonly InputRecord[][])[],
  process: (records: InputRecord[]) => Promise<ProcessResult>,
  deliver: (result: ProcessResult, records: readonly InputRecord[]) => void,
  concurrency: number,
): Promise<void> {
  let nextPartition = 0;
  const worker = async (): Promise<void> => {
    while (nextPartition < perPartition.length) {
      const chunks = perPartition[nextPartition++]!;
      for (const chunk of chunks) deliver(await process(chunk), chunk);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, perPartition.length)) }, worker));
}
