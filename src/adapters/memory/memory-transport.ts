/**
 * An in-memory transport for replays without a broker: records are appended to topics as a
 * producer would send them (partition chosen by Kafka's default key partitioner, offsets counted
 * per partition), then handed to the core as the Kafka adapter does
 * (src/adapters/kafka/event-source.ts): per topic-partition, in order, in chunks of at most
 * CHUNK_MAX_RECORDS, several partition numbers at once, each partition number's chunks one at a
 * time; each delivered result is written to the local state store.
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

/** Where a delivered result's state goes besides the caller (LocalStateStore.acknowledged). */
export interface AcknowledgedState {
  acknowledged(result: ProcessResult): Promise<void>;
}

/**
 * Feeds one poll's chunks to the core as the Kafka adapter does: one chunk of a partition number
 * at a time, whichever topic it comes from (the Kafka adapter's task per partition number,
 * src/adapters/kafka/partition-task.ts, also mixes the topics in one chunk), the topics'
 * chunks taken in turn; partition numbers `concurrency` at a time (as kafkajs's
 * partitionsConsumedConcurrently). `deliver` gets each result, and `store` (the local state store)
 * has it written, before that partition number's next chunk is processed: the adapter waits for the
 * broker's ack, and writes the acknowledged changelog to the local store, the same way.
 */
export async function feed(
  perPartition: readonly (readonly InputRecord[][])[],
  process: (records: InputRecord[]) => Promise<ProcessResult>,
  deliver: (result: ProcessResult, records: readonly InputRecord[]) => void,
  concurrency: number,
  store?: AcknowledgedState,
): Promise<void> {
  const byNumber = new Map<number, (readonly InputRecord[][])[]>();
  for (const chunks of perPartition) {
    const p = chunks[0]?.[0]?.partition;
    if (p === undefined) continue;
    const lists = byNumber.get(p);
    if (lists) lists.push(chunks);
    else byNumber.set(p, [chunks]);
  }
  const numbers = [...byNumber.values()];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < numbers.length) {
      const lists = numbers[next++]!;
      const rounds = Math.max(...lists.map((l) => l.length));
      for (let r = 0; r < rounds; r++) {
        for (const chunks of lists) {
          const chunk = chunks[r];
          if (!chunk) continue;
          const result = await process(chunk);
          deliver(result, chunk);
          await store?.acknowledged(result);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, numbers.length)) }, worker));
}
