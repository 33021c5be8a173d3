import type { KafkaClient } from './port.js';

export interface RestoreResult {
  readonly records: number;
  readonly ms: number;
}

/**
 * Reads partitions of the compacted state changelog from the beginning up to their end at the time
 * of the call, handing each record (a user's latest state, or a tombstone) to `apply`.
 */
export async function restoreChangelog(o: {
  client: KafkaClient;
  topic: string;
  partitions: readonly number[];
  apply: (key: string, value: Buffer | null, partition: number) => void;
}): Promise<RestoreResult> {
  const t0 = Date.now();
  let records = 0;
  const read = await o.client.readFromBeginning({
    topic: o.topic,
    partitions: o.partitions,
    follow: false,
    label: 'adstream-restore',
    onRecords: (batch) => {
      for (const r of batch) {
        if (!r.key) continue; // every changelog record is keyed; a keyless one is not ours
        o.apply(r.key.toString('utf8'), r.value, r.partition);
        records++;
      }
    },
  });
  try {
    await read.caughtUp;
  } finally {
    await read.stop();
  }
  return { records, ms: Date.now() - t0 };
}
