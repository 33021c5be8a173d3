import type { Admin, Consumer } from 'kafkajs';
import { toInputRecord } from './kafkajs-client.js';
import type { InputRecord } from '../../domain/events.js';

export interface CatalogSourceOptions {
  /** A consumer in a group of its own: every instance reads the whole catalog. */
  readonly consumer: Consumer;
  readonly admin: Admin;
  readonly topic: string;
  readonly apply: (records: InputRecord[]) => Promise<void>;
}

/**
 * Reads the compacted ad topic from the beginning and keeps following it, so catalog changes apply
 * hot. Resolves `caughtUp` once everything present at start has been applied: scoring before that
 * would rank against a partial catalog.
 */
export async function runCatalogSource(o: CatalogSourceOptions): Promise<{ caughtUp: Promise<void> }> {
  const ends = await o.admin.fetchTopicOffsets(o.topic);
  // Offsets still to reach per partition: the high watermark at start.
  const pending = new Map<number, bigint>();
  for (const p of ends) if (BigInt(p.high) > BigInt(p.low)) pending.set(p.partition, BigInt(p.high));
  let markCaughtUp!: () => void;
  const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
  if (pending.size === 0) markCaughtUp();

  await o.consumer.subscribe({ topic: o.topic, fromBeginning: true });
  await o.consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      const records: InputRecord[] = batch.messages.map((m) => toInputRecord(batch.topic, batch.partition, m));
      if (records.length > 0) await o.apply(records);
      const target = pending.get(batch.partition);
      // Compaction can remove the last offsets, so compare against the batch's own end too.
      if (target !== undefined && BigInt(batch.lastOffset()) + 1n >= target) {
        pending.delete(batch.partition);
        if (pending.size === 0) markCaughtUp();
      }
      await heartbeat();
    },
  });
  return { caughtUp };
}
