/**
 * Deletions: records of the deletions topic forget their users. Its own stage, not part of fold:
 * a deletion request is decoded and applied with no features, fusion or scoring, and a reader
 * following one from the deletions topic looks for it by that name. Fold keeps the memory of
 * deleted users (its replay rule reads it); this stage writes it.
 */
import type { InputRecord, UserDeletion } from '../domain/events.js';
import type { DeletionOutput } from '../domain/outputs.js';
import type { UserStateStore } from '../state/user-state-store.js';

export interface UserDeleterOptions {
  readonly decoder: { decodeDeletion(record: InputRecord): UserDeletion };
  readonly users: UserStateStore;
  /** Remembers the deleted users, so that replays of their older events are skipped (InterestFolder). */
  readonly deleted: { markDeleted(userId: string): void };
  readonly clock: () => number;
}

export class UserDeleter {
  constructor(private readonly o: UserDeleterOptions) {}

  /**
   * Forgets the users of deletion requests: their state leaves the store (with any events waiting
   * for a rate-limited output), and each deletion comes back for the transport to tombstone the
   * user in the changelog and the segments topic. Synchronous: no other chunk sees a half-deleted
   * user. A request that cannot be decoded goes to reject.
   */
  deleteUsers(records: readonly InputRecord[], reject: (source: InputRecord, err: unknown) => void): DeletionOutput[] {
    const { decoder, users, deleted, clock } = this.o;
    const deletions: DeletionOutput[] = [];
    for (const r of records) {
      let d: UserDeletion;
      try {
        d = decoder.decodeDeletion(r);
      } catch (err) {
        reject(r, err);
        continue;
      }
      const s = users.get(d.userId);
      const discardedEventIds = s ? [...s.pendingEventIds] : [];
      users.forget(d.userId, r.partition);
      deleted.markDeleted(d.userId);
      deletions.push({ userId: d.userId, partition: r.partition, requestId: d.requestId, requestedAt: d.requestedAt, deletedAt: clock(), source: r, held: s !== undefined, discardedEventIds });
    }
    return deletions;
  }
}
