/**
 * Per input topic-partition, the last offset whose effect is in the durable user state (the
 * changelog). Restored with the users, so a replay after a crash does not fold the same events
 * into the interests twice; the fold stage reads it, the transport writes it once a chunk's state
 * changes are acknowledged.
 */
export class AppliedOffsets {
  private readonly offsets = new Map<string, bigint>();

  upTo(topic: string, partition: number): bigint | undefined {
    return this.offsets.get(key(topic, partition));
  }

  /** The effect of `offset` (and of those before it) of the input partition is in the changelog. */
  mark(topic: string, partition: number, offset: bigint): void {
    this.offsets.set(key(topic, partition), offset);
  }

  /** Forgets the partitions not in `keep` (revoked). */
  retainPartitions(keep: ReadonlySet<number>): void {
    for (const k of this.offsets.keys()) if (!keep.has(Number(k.slice(0, k.indexOf('/'))))) this.offsets.delete(k);
  }
}

function key(topic: string, partition: number): string {
  return `${partition}/${topic}`;
}
