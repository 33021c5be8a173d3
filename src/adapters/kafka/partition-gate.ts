/**
 * A mutex per partition number: the chunks of partition p of every input topic (clicks, image views,
 * reviews, deletions) run one at a time, in the order they arrive; different partitions run in
 * parallel. A user's state changes and the applied-offset markers then reach the changelog in the
 * order they were made, and a deletion's tombstone lands after every earlier state of the user and
 * before any later one.
 */
export class PartitionGate {
  private readonly tails = new Map<number, Promise<void>>();

  async exclusive<T>(partition: number, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(partition) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.tails.set(partition, mine);
    try {
      await before;
      return await fn();
    } finally {
      release();
      if (this.tails.get(partition) === mine) this.tails.delete(partition);
    }
  }
}
