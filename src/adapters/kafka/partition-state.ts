import type { Core } from '../../pipeline/core.js';
import { errorMessage } from '../../domain/errors.js';
import type { ChangelogRecord, RestoreOptions, RestoreResult } from './changelog-restorer.js';
import type { Logger } from '../../util/log.js';
import type { ProcessorMetrics } from '../../metrics/processor-metrics.js';

/**
 * Changelog keys starting with NUL are not users: `\0applied/<topic>` on partition p holds the last
 * offset of that input partition whose state changes were delivered (a plain decimal string).
 */
const APPLIED_MARKER = '\u0000applied/';

/** A changelog record besides the users' states, delivered with them (see KafkaSink.deliver). */
export interface ChangelogMarker {
  readonly key: string;
  readonly value: Buffer;
  readonly partition: number;
}

export interface PartitionStateDeps {
  readonly core: Core;
  readonly log: Logger;
  readonly metrics: ProcessorMetrics;
  /** Reads the given changelog partitions to their end, from their start or the offsets given (see restoreChangelog). */
  readonly readChangelog: (o: Pick<RestoreOptions, 'partitions' | 'from' | 'onStale' | 'apply'>) => Promise<RestoreResult>;
  /** Stops the processor for good. */
  readonly fail: (err: Error) => void;
}

/**
 * The users this instance holds, per partition of the consumer group's assignment: which partitions
 * it owns, the restore of newly assigned ones from the changelog, the reset of one whose chunk
 * failed after changing state, and per input topic-partition the last offset whose effect is in
 * the changelog.
 */
export class PartitionState {
  private assigned = false;
  // Partitions whose users this instance holds, and the restores in flight (per partition).
  private owned = new Set<number>();
  private readonly restores = new Map<number, Promise<void>>();

  constructor(private readonly o: PartitionStateDeps) {}

  /**
   * A new generation of the group: drops the users of revoked partitions from memory and closes
   * their local stores (the folders stay: a later assignment reads only the changelog's tail), and
   * restores new ones. `assignment`, the member's whole assignment, is only logged.
   */
  onAssignment(partitions: readonly number[], assignment: Readonly<Record<string, readonly number[]>>): void {
    this.assigned = true;
    const now = new Set<number>(partitions);
    const dropped = this.o.core.users.dropPartitions(now);
    this.o.core.applied.retainPartitions(now);
    for (const p of this.owned) {
      if (!now.has(p)) this.o.core.local.close(p).catch((err: unknown) => this.o.log.warn('closing a revoked partition\'s local store failed', { err, partition: p }));
    }
    const added = [...now].filter((p) => !this.owned.has(p));
    this.owned = now;
    this.o.log.info('joined consumer group', { assignment, droppedUsers: dropped, restoring: added });
    if (added.length === 0) return;
    // Set before any batch of the new generation is handled: their events wait for it.
    this.track(added, this.restoreUsers(added));
  }

  /**
   * A chunk of `partition` failed after changing its users' state in memory (or its delivery
   * failed): memory no longer matches the changelog, and the records are about to be handed again.
   * As Kafka Streams does with a corrupted task: drop the partition's users from memory (with its
   * changes not acknowledged) and its applied offsets, and bring its local store level with the
   * changelog, which holds exactly what was acknowledged (the tail after the store's checkpoint:
   * what a failed send may have had acknowledged); the partition's records wait for it
   * (restoring). Call it before the partition's next chunk may start.
   */
  reset(partition: number): void {
    if (!this.owned.has(partition)) return; // revoked meanwhile: the next owner restores it
    const { core, log } = this.o;
    const keep = new Set([...this.owned].filter((p) => p !== partition));
    const dropped = core.users.dropPartitions(keep);
    core.applied.retainPartitions(keep);
    log.warn('restoring a partition from the changelog after a failed chunk', { partition, droppedUsers: dropped });
    const before = this.restores.get(partition) ?? Promise.resolve();
    this.track([partition], before.then(() => this.restoreUsers([partition])));
  }

  /** The group is rebalancing: no assignment until the next one. */
  onRebalancing(): void {
    this.assigned = false;
  }

  /** The restore of the partition in flight, which its batches wait for; null when none. */
  restoring(partition: number): Promise<void> | null {
    return this.restores.get(partition) ?? null;
  }

  get isRestoring(): boolean {
    return this.restores.size > 0;
  }

  /** Partitions assigned and their users restored. */
  isReady(): boolean {
    return this.assigned && this.restores.size === 0;
  }

  /** Records that the effect of `offset` (and of those before it) of the input partition is in the changelog. */
  markApplied(topic: string, partition: number, offset: string): void {
    this.o.core.applied.mark(topic, partition, this.raised(topic, partition, offset));
  }

  /** The changelog record saying `offset` of the input partition is applied, delivered with its state changes. */
  appliedMarker(topic: string, partition: number, offset: string): ChangelogMarker {
    return { key: `${APPLIED_MARKER}${topic}`, value: Buffer.from(this.raised(topic, partition, offset).toString()), partition };
  }

  /**
   * The marker never moves back: a replay after a crash re-delivers chunks below the restored
   * marker, and a chunk that set it to its own last offset would let the next replayed chunk fold
   * its events a second time (found by the crash-consistency test).
   */
  private raised(topic: string, partition: number, offset: string): bigint {
    const at = BigInt(offset);
    const before = this.o.core.applied.upTo(topic, partition);
    return before !== undefined && before > at ? before : at;
  }

  /** Partitions whose users this instance holds. */
  ownedPartitions(): number[] {
    return [...this.owned];
  }

  /** What /readyz shows of the assignment. */
  readyDetail(): { partitionsAssigned: boolean; partitions: number[]; restoring: boolean } {
    return { partitionsAssigned: this.assigned, partitions: [...this.owned].sort((a, b) => a - b), restoring: this.isRestoring };
  }

  /** Marks the partitions restoring until `restore` settles; a failed restore stops the processor. */
  private track(parts: readonly number[], restore: Promise<void>): void {
    const done = restore.then(
      () => undefined,
      (err: unknown) => {
        // Without its state a partition cannot be processed correctly: stop and let a restart retry.
        this.o.log.error('state restore failed', { err, partitions: parts });
        this.o.fail(new Error(`state restore failed: ${errorMessage(err)}`));
      },
    );
    for (const p of parts) this.restores.set(p, done);
    void done.finally(() => {
      for (const p of parts) if (this.restores.get(p) === done) this.restores.delete(p);
    });
  }

  /**
   * Brings the partitions' local stores level with the changelog: a store that survived (a restart
   * with its volume, a partition coming back) reads only the records after its checkpoint, an
   * empty one the whole changelog; users are read from disk as their events come (the cache fills
   * on demand). Then the applied-offset markers and the deleted users come back from the store.
   */
  private async restoreUsers(parts: number[]): Promise<void> {
    const { core, metrics, log } = this.o;
    const { local } = core;
    const from = new Map<number, bigint>();
    const rebuilt: Record<number, string> = {};
    for (const p of parts) {
      local.discardUnacknowledged(p); // a failed chunk's changes: the chunk runs again
      const why = await local.prepare(p);
      if (why) rebuilt[p] = why;
      const cp = local.checkpoint(p);
      if (cp !== undefined) from.set(p, cp);
    }
    // One write per partition may commit while the next records are fetched; writes keep log order.
    const writing = new Map<number, Promise<void>>();
    const r = await this.o.readChangelog({
      partitions: parts,
      from,
      onStale: async (p) => {
        rebuilt[p] = 'checkpoint outside the changelog (recreated or truncated)';
        from.delete(p);
        await local.wipe(p);
      },
      // The changelog holds every change until compaction: written in log order, the last record of a user wins.
      apply: async (records: ChangelogRecord[]) => {
        for (const [p, run] of byPartition(records)) {
          if (!this.owned.has(p)) continue; // revoked while restoring: its store is the next owner's business
          const before = writing.get(p);
          const write = local.write(p, run, run[run.length - 1]!.offset + 1n);
          write.catch(() => undefined); // awaited below
          writing.set(p, write);
          await before;
        }
      },
    });
    await Promise.all(writing.values());
    let users = 0;
    let deleted = 0;
    for (const p of parts) {
      for (const [key, value] of local.markers(p)) {
        if (key.startsWith(APPLIED_MARKER)) core.applied.mark(key.slice(APPLIED_MARKER.length), p, BigInt(value.toString('utf8')));
      }
      // A deleted user: a replay of their already delivered events must not bring them back.
      for (const userId of local.deletedUsers(p)) {
        core.processor.markDeleted(userId);
        deleted++;
      }
      users += local.users(p);
    }
    metrics.restoredUsers.inc(users);
    metrics.restoreRecords.inc(r.records);
    metrics.restoreSeconds.observe(r.ms / 1000);
    log.info('restored user state', {
      partitions: parts,
      fromCheckpoint: Object.fromEntries([...from].map(([p, o]) => [p, String(o)])),
      rebuilt,
      records: r.records,
      users,
      deletedUsers: deleted,
      ms: r.ms,
      recordsPerS: r.ms > 0 ? Math.round((r.records / r.ms) * 1000) : r.records,
    });
  }
}

function byPartition(records: readonly ChangelogRecord[]): Map<number, ChangelogRecord[]> {
  const out = new Map<number, ChangelogRecord[]>();
  for (const r of records) {
    const run = out.get(r.partition);
    if (run) run.push(r);
    else out.set(r.partition, [r]);
  }
  return out;
}
