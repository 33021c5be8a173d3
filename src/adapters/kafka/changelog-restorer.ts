import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';

export interface RestoreResult {
  readonly records: number;
  readonly ms: number;
}

/**
 * Reads partitions of the compacted state changelog from the beginning up to their end at the time
 * of the call, handing each record (a user's latest state, or a tombstone) to `apply`. kafkajs has
 * no manual partition assignment, so a throwaway consumer group reads the topic and keeps only the
 * wanted partitions; it stops as soon as each of them reached its end.
 */
export async function restoreChangelog(o: {
  kafka: Kafka;
  admin: Admin;
  topic: string;
  partitions: readonly number[];
  apply: (key: string, value: Buffer | null, partition: number) => void;
}): Promise<RestoreResult> {
  const t0 = Date.now();
  const wanted = new Set(o.partitions);
  const ends = await o.admin.fetchTopicOffsets(o.topic);
  // Offset to reach per wanted partition; empty partitions are done already.
  const pending = new Map<number, bigint>();
  for (const p of ends) if (wanted.has(p.partition) && BigInt(p.high) > BigInt(p.low)) pending.set(p.partition, BigInt(p.high));
  if (pending.size === 0) return { records: 0, ms: Date.now() - t0 };

  const consumer = o.kafka.consumer({ groupId: `adstream-restore-${randomUUID()}`, maxBytesPerPartition: 8 << 20 });
  let records = 0;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const target = pending.get(batch.partition);
            if (target === undefined) return;
            for (const m of batch.messages) {
              if (BigInt(m.offset) >= target) break;
              if (m.key) {
                o.apply(m.key.toString('utf8'), m.value, batch.partition);
                records++;
              }
            }
            if (BigInt(batch.lastOffset()) + 1n >= target) {
              pending.delete(batch.partition);
              if (pending.size === 0) resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return { records, ms: Date.now() - t0 };
}
