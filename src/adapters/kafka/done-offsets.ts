/**
 * The offsets a pipelined consumer marked done, committed by us rather than by the library (whose
 * own commit follows its fetch position, which runs ahead of what is acknowledged): coalesced, one
 * commit request at a time, only for partitions still assigned, and flushed before leaving the
 * group. Both implementations of the port (kafkajs-client.ts, confluent-client.ts) use it.
 */
import type { Logger } from '../../util/log.js';

export interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to read, as Kafka commits it. */
  readonly offset: string;
}

/** Commits done offsets at most this often: one request covers every partition's latest. */
const COMMIT_INTERVAL_MS = 100;
/** A failed commit (a rebalance under way, the coordinator moving) is tried again after this. */
const COMMIT_RETRY_MS = 1000;

const keyOf = (topic: string, partition: number): string => `${topic}/${partition}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class DoneOffsets {
  /** `topic/partition` of the current assignment: done() of any other is dropped. */
  private owned = new Set<string>();
  private readonly toCommit = new Map<string, TopicPartitionOffset>();
  private committing: Promise<void> | null = null;
  private closing = false;

  constructor(
    private readonly commitOffsets: (offsets: TopicPartitionOffset[]) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** A new generation: offsets of revoked partitions are no longer ours to commit. */
  assigned(assignment: Readonly<Record<string, readonly number[]>>): void {
    this.owned = new Set(Object.entries(assignment).flatMap(([topic, parts]) => parts.map((p) => keyOf(topic, p))));
    for (const key of this.toCommit.keys()) if (!this.owned.has(key)) this.toCommit.delete(key);
  }

  isOwned(topic: string, partition: number): boolean {
    return this.owned.has(keyOf(topic, partition));
  }

  /** `offset` and all before it on the topic-partition are handled: committed soon, if still assigned. */
  done(topic: string, partition: number, offset: string): void {
    const key = keyOf(topic, partition);
    if (!this.owned.has(key)) return;
    this.toCommit.set(key, { topic, partition, offset: String(BigInt(offset) + 1n) });
    this.committing ??= this.commit(true).finally(() => (this.committing = null));
  }

  /** Commits what is left, once (leaving the group: the next owner reads on from the last commit). */
  async flush(): Promise<void> {
    this.closing = true;
    while (this.committing) await this.committing;
    if (this.toCommit.size > 0) await this.commit(false);
  }

  /** Commits what is marked done, until nothing is left; `paced`: at most every COMMIT_INTERVAL_MS. */
  private async commit(paced: boolean): Promise<void> {
    while (this.toCommit.size > 0) {
      if (paced) await sleep(COMMIT_INTERVAL_MS);
      const offsets = [...this.toCommit.values()];
      this.toCommit.clear();
      try {
        await this.commitOffsets(offsets);
      } catch (err) {
        // Kept for the next try unless a newer offset or a revocation came meanwhile.
        for (const c of offsets) {
          const key = keyOf(c.topic, c.partition);
          if (this.owned.has(key) && !this.toCommit.has(key)) this.toCommit.set(key, c);
        }
        this.log.debug('committing offsets failed; trying again', { err });
        if (!paced || this.closing) return;
        await sleep(COMMIT_RETRY_MS);
      }
    }
  }
}
