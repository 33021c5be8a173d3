import type { KafkaAdmin, PartitionOffsets, PartitionReadOptions } from './port.js';

/**
 * When a read from the beginning has caught up: per partition, the end it had when the read began.
 * Client-neutral, so each client implementation only feeds it what it fetched.
 */
export class CatchUp {
  // Offset to reach per partition; empty partitions are caught up already.
  private readonly pending = new Map<number, bigint>();
  private resolve!: () => void;
  /** Resolves once every partition reached its end. */
  readonly reached = new Promise<void>((r) => (this.resolve = r));

  constructor(ends: readonly PartitionOffsets[], partitions?: readonly number[]) {
    const wanted = partitions ? new Set(partitions) : null;
    for (const p of ends) if ((!wanted || wanted.has(p.partition)) && p.high > p.low) this.pending.set(p.partition, p.high);
    if (this.pending.size === 0) this.resolve();
  }

  get done(): boolean {
    return this.pending.size === 0;
  }

  /** Whether `offset` of `partition` lies before the end still to reach (a bounded read hands over only those). */
  before(partition: number, offset: bigint): boolean {
    const end = this.pending.get(partition);
    return end !== undefined && offset < end;
  }

  /**
   * A fetch of `partition` ended just before `next`. Compaction can remove a partition's last
   * offsets, so a fetch's own end counts, not only the offsets of the records seen.
   */
  fetched(partition: number, next: bigint): void {
    const end = this.pending.get(partition);
    if (end === undefined || next < end) return;
    this.pending.delete(partition);
    if (this.pending.size === 0) this.resolve();
  }
}

/**
 * The catch-up of a read from the beginning (KafkaClient.readFromBeginning), from each partition's
 * end now: a partition read from an offset of its own (`from`) is caught up once it reaches its end from there.
 */
export async function catchUpOf(admin: KafkaAdmin, o: Pick<PartitionReadOptions, 'topic' | 'partitions' | 'from'>): Promise<CatchUp> {
  let ends: PartitionOffsets[];
  try {
    ends = await admin.partitionOffsets(o.topic);
  } finally {
    await admin.disconnect();
  }
  const from = o.from ?? new Map<number, bigint>();
  return new CatchUp(
    ends.map((e) => ({ ...e, low: from.has(e.partition) ? from.get(e.partition)! : e.low })),
    o.partitions,
  );
}
