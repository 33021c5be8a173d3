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
  /** null: deletes the marker (an attribution record no longer needed). */
  readonly value: Buffer | null;
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
 *
 * A partition's local store has one task at a time (a restore, or its closing at revocation), each
 * starting once the one before settled: a partition revoked and assigned again while its restore
 * runs would otherwise have two restores writing its store at once, the older one's records landing
 * over the newer one's. And a restore only takes effect (records written, markers and deleted
 * users taken) for partitions still owned by the assignment it restores for.
 */
export class PartitionState {
  private assigned = false;
  private generation = 0;
  /** Partitions whose users this instance holds, each with the generation that assigned it. */
  private readonly owned = new Map<number, number>();
  /** Per partition, the restore its events wait for (in flight). */
  private readonly restores = new Map<number, Promise<void>>();
  /** Per partition, the last task on its local store (never rejects); the next one waits for it. */
  private readonly storeTasks = new Map<number, Promise<void>>();

  constructor(private readonly o: PartitionStateDeps) {}

  /**
   * A new generation of the group: drops the users of revoked partitions from memory and closes
   * their local stores (the folders stay: a later assignment reads only the changelog's tail), and
   * restores new ones. `assignment`, the member's whole assignment, is only logged.
   */
  onAssignment(partitions: readonly number[], assignment: Readonly<Record<string, readonly number[]>>): void {
    this.assigned = true;
    const generation = ++this.generation;
    const now = new Set<number>(partitions);
    const dropped = this.o.core.users.dropPartitions(now);
    this.o.core.applied.retainPartitions(now);
    for (const p of [...this.owned.keys()]) {
      if (now.has(p)) continue;
      this.owned.delete(p);
      // After the partition's restore in flight, if any: it may still be reading into the store.
      this.afterStoreTasks([p], () => this.o.core.local.close(p)).catch((err: unknown) => this.o.log.warn('closing a revoked partition\'s local store failed', { err, partition: p }));
    }
    const added = [...now].filter((p) => !this.owned.has(p));
    for (const p of added) this.owned.set(p, generation);
    this.o.log.info('joined consumer group', { assignment, droppedUsers: dropped, restoring: added });
    if (added.length === 0) return;
    // Set before any batch of the new generation is handled: their events wait for it.
    this.restore(added);
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
    const keep = new Set([...this.owned.keys()].filter((p) => p !== partition));
    const dropped = core.users.dropPartitions(keep);
    core.applied.retainPartitions(keep);
    core.feedback?.retainPartitions(keep); // its attribution state comes back with the restore
    log.warn('restoring a partition from the changelog after a failed chunk', { partition, droppedUsers: dropped });
    this.restore([partition]);
  }

  /** The group is rebalancing: no assignment until the next one. */
  onRebalancing(): void {
    this.assigned = false;
  }

  /** The restore of the partition in flight, which its batches wait for; null when none. */
  restoring(partition: number): Promise<void> | null {
    return this.restores.get(partition) ?? null;
  }

  /** Whether an owned partition is restoring (a revoked one's restore winding down does not count). */
  get isRestoring(): boolean {
    for (const p of this.restores.keys()) if (this.owned.has(p)) return true;
    return false;
  }

  /** Partitions assigned and their users restored. */
  isReady(): boolean {
    return this.assigned && !this.isRestoring;
  }

  /** Records that the effect of `offset` (and of those before it) of the input partition is in the changelog. */
  markApplied(topic: string, partition: number, offset: string): void {
    this.o.core.applied.mark(topic, partition, this.raised(topic, partition, offset));
  }

  /** The changelog record saying `offset` of the input partition is applied, delivered with its state changes. */
  appliedMarker(topic: string, partition: number, offset: string): ChangelogMarker & { readonly value: Buffer } {
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
    return [...this.owned.keys()];
  }

  /** What /readyz shows of the assignment. */
  readyDetail(): { partitionsAssigned: boolean; partitions: number[]; restoring: boolean } {
    return { partitionsAssigned: this.assigned, partitions: [...this.owned.keys()].sort((a, b) => a - b), restoring: this.isRestoring };
  }

  /**
   * Restores the owned partitions `parts` for the generation that owns them now, after their
   * stores' tasks in flight; they are restoring (their events wait) until it settles. A failed
   * restore stops the processor.
   */
  private restore(parts: readonly number[]): void {
    const claim = new Map(parts.map((p) => [p, this.owned.get(p)!]));
    const done = this.afterStoreTasks(parts, () => this.restoreUsers(claim)).then(
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

  /** Runs `task` on the partitions' stores once their tasks before it settled; the next ones wait for it. */
  private afterStoreTasks(parts: readonly number[], task: () => Promise<void>): Promise<void> {
    const run = Promise.all(parts.map((p) => this.storeTasks.get(p))).then(task);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    for (const p of parts) this.storeTasks.set(p, settled);
    void settled.then(() => {
      for (const p of parts) if (this.storeTasks.get(p) === settled) this.storeTasks.delete(p);
    });
    return run;
  }

  /** Whether the partition is still owned by the generation `claim` restores it for. */
  private stillOwned(claim: ReadonlyMap<number, number>, p: number): boolean {
    return this.owned.get(p) === claim.get(p);
  }

  /**
   * Brings the partitions' local stores level with the changelog: a store that survived (a restart
   * with its volume, a partition coming back) reads only the records after its checkpoint, an
   * empty one the whole changelog; users are read from disk as their events come (the cache fills
   * on demand). Then the applied-offset markers and the deleted users come back from the store.
   * Partitions revoked since `claim` was made are left alone (the next owner restores them).
   */
  private async restoreUsers(claim: ReadonlyMap<number, number>): Promise<void> {
    const { core, metrics, log } = this.o;
    const { local } = core;
    const parts = [...claim.keys()].filter((p) => this.stillOwned(claim, p));
    if (parts.length === 0) return;
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
          if (!this.stillOwned(claim, p)) continue; // revoked while restoring: its store is the next owner's business
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
      if (!this.stillOwned(claim, p)) continue; // revoked meanwhile: its markers and deleted users went with it
      for (const [key, value] of local.markers(p)) {
        if (key.startsWith(APPLIED_MARKER)) core.applied.mark(key.slice(APPLIED_MARKER.length), p, BigInt(value.toString('utf8')));
      }
      // The attribution state as acknowledged (its records are markers too).
      core.feedback?.restorePartition(p, local.markers(p));
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
