import type { KafkaClient } from './port.js';

export interface RestoreResult {
  readonly records: number;
  readonly ms: number;
}

/** A changelog record as the restore hands it over: a user's latest state, a tombstone, or a marker. */
export interface ChangelogRecord {
  readonly key: string;
  readonly value: Buffer | null;
  readonly partition: number;
  readonly offset: bigint;
}

export interface RestoreOptions {
  readonly client: KafkaClient;
  readonly topic: string;
  readonly partitions: readonly number[];
  /** Per partition, the first offset to read (a local store's checkpoint); the others are read from their start. */
  readonly from?: ReadonlyMap<number, bigint>;
  /**
   * A `from` offset the partition does not have (the topic was recreated, or truncated past it):
   * what was built from it cannot be trusted. Awaited before the partition is read from its start.
   */
  readonly onStale?: (partition: number) => Promise<void>;
  /** Each run of records of one partition, in offset order; awaited before that partition's next. */
  readonly apply: (records: ChangelogRecord[]) => void | Promise<void>;
}

/**
 * Reads partitions of the compacted state changelog, from their beginning or from the offsets
 * given, up to their end at the time of the call, handing the records over (each a user's latest
 * state, a tombstone or a marker).
 */
export async function restoreChangelog(o: RestoreOptions): Promise<RestoreResult> {
  const t0 = Date.now();
  let records = 0;
  const from = new Map(o.from ?? []);
  if (from.size > 0) {
    const admin = await o.client.admin();
    try {
      for (const p of await admin.partitionOffsets(o.topic)) {
        const start = from.get(p.partition);
        if (start === undefined || (start >= p.low && start <= p.high)) continue;
        from.delete(p.partition);
        await o.onStale?.(p.partition);
      }
    } finally {
      await admin.disconnect();
    }
  }
  const read = await o.client.readFromBeginning({
    topic: o.topic,
    partitions: o.partitions,
    ...(from.size > 0 ? { from } : {}),
    follow: false,
    label: 'adstream-restore',
    onRecords: async (batch) => {
      const out: ChangelogRecord[] = [];
      for (const r of batch) {
        if (!r.key) continue; // every changelog record is keyed; a keyless one is not ours
        out.push({ key: r.key.toString('utf8'), value: r.value, partition: r.partition, offset: BigInt(r.offset) });
      }
      records += out.length;
      if (out.length > 0) await o.apply(out);
    },
  });
  try {
    await read.caughtUp;
  } finally {
    await read.stop();
  }
  return { records, ms: Date.now() - t0 };
}
