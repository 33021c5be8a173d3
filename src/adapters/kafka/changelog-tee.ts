import type { ChangelogEntry } from '../../state/local-state-store.js';
import { ProduceTooLargeError, type Appended, type KafkaProducer, type OutboundRecord, type TopicRecords } from './port.js';

/** Where acknowledged changelog records go besides the broker (LocalStateStore.write). */
export interface ChangelogWriter {
  write(partition: number, entries: readonly ChangelogEntry[], next?: bigint): Promise<void>;
}

/**
 * The producer, with every changelog record the broker acknowledged also written to the local
 * state store, in the order sent, with the changelog offset it reflects: the store is the
 * acknowledged changelog, never ahead of it. The write is part of the send: a chunk's offsets are
 * committed only once its states are readable from disk. Until then (the task processes the next
 * chunks meanwhile) the store's unacknowledged changes stand in for the disk, so a user read back
 * after leaving memory is never older than memory had.
 *
 * A send that fails writes nothing (its records may or may not be on the changelog), except what a
 * send split into requests says was acknowledged before a refusal (ProduceTooLargeError.unsent):
 * the partition's store is then behind the changelog until its restore (a failed chunk resets its
 * partition; a failed flush stops the processor, and the restart reads the tail).
 */
export function teeChangelog(producer: KafkaProducer, changelog: string, store: ChangelogWriter): KafkaProducer {
  const write = async (batches: readonly TopicRecords[], appended: readonly Appended[], acknowledged: (r: OutboundRecord) => boolean): Promise<void> => {
    const entries = new Map<number, ChangelogEntry[]>();
    for (const b of batches) {
      if (b.topic !== changelog) continue;
      for (const r of b.records) {
        if (r.partition === undefined || r.key === null || !acknowledged(r)) continue; // the sink always sets both
        const list = entries.get(r.partition) ?? [];
        list.push({ key: r.key.toString('utf8'), value: r.value });
        entries.set(r.partition, list);
      }
    }
    // Past the first offset of a batch of the partition: the checkpoint may fall short of the end
    // (a restore then reads some records twice, harmless), never beyond it.
    const next = new Map<number, bigint>();
    for (const a of appended) {
      if (a.topic !== changelog || !/^\d+$/.test(a.baseOffset)) continue;
      const n = BigInt(a.baseOffset) + 1n;
      if (n > (next.get(a.partition) ?? -1n)) next.set(a.partition, n);
    }
    await Promise.all([...entries].map(([p, list]) => store.write(p, list, next.get(p))));
  };
  return {
    async send(batches: readonly TopicRecords[]) {
      let appended: Appended[];
      try {
        appended = await producer.send(batches);
      } catch (err) {
        if (err instanceof ProduceTooLargeError && err.unsent.length > 0) {
          const unsent = new Set(err.unsent.flatMap((b) => b.records));
          await write(batches, [], (r) => !unsent.has(r)); // the requests before the refusal, no checkpoint
        }
        throw err;
      }
      await write(batches, appended, () => true);
      return appended;
    },
    disconnect: () => producer.disconnect(),
  };
}
