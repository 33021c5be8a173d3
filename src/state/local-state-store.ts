/**
 * The local state store: every user of the instance's partitions on disk, one embedded LMDB store
 * per partition (memory-mapped B+tree; reads are synchronous, which the fold needs: it reads and
 * changes states with no await between the fusion result and the ranking request). The LRU of
 * UserStateStore keeps the hot users in memory above it.
 *
 * What it holds is the acknowledged changelog, materialised: a user's record is written here once
 * the broker acknowledged the same bytes on the changelog (or the memory transport delivered them),
 * with the changelog offset it reflects (the checkpoint). So the store never runs ahead of the
 * changelog, a folder that survives a restart needs only the changelog's tail after its
 * checkpoint, and a partition can always be rebuilt from the changelog alone.
 *
 * Changes made in memory and not acknowledged yet are held beside it (`unacknowledged`): a user
 * evicted from the LRU in between reads back the newest state, never an older one.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { ConfigError } from '../domain/errors.js';
import type { AttributionRecord, DeletionOutput } from '../domain/outputs.js';
import type { UserState } from '../domain/user-state.js';
import type { StateBacking } from './user-state-store.js';

/** One changelog record as the store takes it: a user's state, a tombstone (null), or a marker (a key starting with NUL). */
export interface ChangelogEntry {
  readonly key: string;
  readonly value: Buffer | null;
}

/** Counts what the store does; the metrics module supplies one. */
export interface StateStoreReporter {
  /** A user looked up on disk (a cache miss); `found`: the disk held them. */
  diskRead(found: boolean): void;
  /** Records written (puts and deletes). */
  diskWrites(records: number): void;
}

export interface LocalStateStoreOptions {
  /** This instance's folder; each partition's store is a sub-folder `partition-<n>`. */
  readonly dir: string;
  /** The changelog encoding: records are stored as the changelog holds them. */
  readonly codec: { encode(s: UserState): Buffer; decode(value: Buffer | null): UserState | null };
  /** What the vectors mean (PreparedModels.space): a store written in another space is rebuilt. */
  readonly space: string;
  readonly reporter?: StateStoreReporter;
  readonly clock?: () => number;
}

/** How long a compacted changelog keeps tombstones by default (the broker's delete.retention.ms). */
export const TOMBSTONE_RETENTION_MS = 24 * 3600 * 1000;

/** Meta key of the checkpoint (no NUL: marker keys start with one). */
const CHECKPOINT = 'checkpoint';
const FORMAT = 1;

interface Checkpoint {
  /** The first changelog offset not reflected here. */
  readonly next: string;
  /** When it was written (a store older than the changelog's tombstone retention is rebuilt). */
  readonly at: number;
  readonly space: string;
  readonly format: number;
}

/** A change made in memory, not yet acknowledged: a state snapshot, or null for a deletion. */
interface Unacknowledged {
  readonly state: UserState | null;
  readonly partition: number;
}

class PartitionStore {
  /** Users whose stored state has events waiting for an output (mirrors the `pending` database). */
  readonly pendingIds = new Set<string>();
  /** Users remembered as deleted (mirrors the `deleted` database: a put need not look there). */
  readonly deletedIds = new Set<string>();

  constructor(
    readonly root: RootDatabase,
    /** User id -> the changelog value. */
    readonly users: Database<Buffer, string>,
    /** User ids with pending events (values empty). */
    readonly pending: Database<Buffer, string>,
    /** Deleted user id -> when (ms), for the replay rule after a restart. */
    readonly deleted: Database<number, string>,
    /** Marker records (NUL keys) as they are on the changelog, and the checkpoint. */
    readonly meta: Database<unknown, string>,
  ) {
    for (const key of pending.getKeys()) this.pendingIds.add(key);
    for (const key of deleted.getKeys()) this.deletedIds.add(key);
  }
}

export class LocalStateStore implements StateBacking {
  private readonly stores = new Map<number, PartitionStore>();
  private readonly unacknowledged = new Map<string, Unacknowledged>();
  /** Which snapshot each encoded changelog value was made from (see encode), to match an acknowledgement to it. */
  private readonly encoded = new WeakMap<Buffer, UserState>();
  private readonly clock: () => number;
  private readonly lock: string;
  private closed = false;

  constructor(private readonly o: LocalStateStoreOptions) {
    this.clock = o.clock ?? Date.now;
    mkdirSync(o.dir, { recursive: true });
    this.lock = join(o.dir, 'owner.pid');
    takeLock(this.lock);
  }

  get dir(): string {
    return this.o.dir;
  }

  // --- partitions ---

  /** Opens the partition's store (idempotent; reads and writes open it on first use too). */
  open(partition: number): void {
    if (this.stores.has(partition)) return;
    if (this.closed) throw new Error('the local state store is closed');
    const root = open({ path: this.folderOf(partition), maxDbs: 8 });
    this.stores.set(
      partition,
      new PartitionStore(
        root,
        root.openDB<Buffer, string>({ name: 'users', encoding: 'binary' }),
        root.openDB<Buffer, string>({ name: 'pending', encoding: 'binary' }),
        root.openDB<number, string>({ name: 'deleted' }),
        root.openDB<unknown, string>({ name: 'meta' }),
      ),
    );
  }

  /**
   * Opens the partition's store for a restore. One written in another model space, in another
   * format, or last checkpointed longer ago than the changelog keeps tombstones (its tail could
   * miss a deletion) is wiped first: the restore then reads the whole changelog. Returns why, if wiped.
   */
  async prepare(partition: number): Promise<string | undefined> {
    this.open(partition);
    const cp = checkpointOf(this.store(partition));
    let why: string | undefined;
    if (cp && cp.space !== this.o.space) why = `written in space ${cp.space}`;
    else if (cp && cp.format !== FORMAT) why = `format ${cp.format}`;
    else if (cp && this.clock() - cp.at > TOMBSTONE_RETENTION_MS) why = `checkpoint older than ${TOMBSTONE_RETENTION_MS / 3_600_000} h`;
    if (why) await this.wipe(partition);
    return why;
  }

  /** Empties the partition's store: the restore reads the whole changelog again. */
  async wipe(partition: number): Promise<void> {
    await this.close(partition);
    rmSync(this.folderOf(partition), { recursive: true, force: true });
    this.open(partition);
  }

  /** Closes the partition's store (revoked); its folder stays, for a later assignment to read only the tail. */
  async close(partition: number): Promise<void> {
    this.discardUnacknowledged(partition);
    const store = this.stores.get(partition);
    if (!store) return;
    this.stores.delete(partition);
    await store.root.close();
  }

  /** Closes every store and gives the folder up. */
  async closeAll(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stores = [...this.stores.values()];
    this.stores.clear();
    this.unacknowledged.clear();
    await Promise.all(stores.map((s) => s.root.close()));
    releaseLock(this.lock);
  }

  openPartitions(): number[] {
    return [...this.stores.keys()].sort((a, b) => a - b);
  }

  /** Forgets the changes of the partition not acknowledged (a failed chunk, a revocation): they will be made again. */
  discardUnacknowledged(partition: number): void {
    for (const [userId, u] of this.unacknowledged) if (u.partition === partition) this.unacknowledged.delete(userId);
  }

  // --- reads (synchronous) ---

  /**
   * The newest state of a user outside memory: a change not yet acknowledged, else the disk's;
   * undefined for a user never seen, deleted, or stored in a form that cannot be used. Without a
   * partition every open store is asked. The caller owns the returned object (a snapshot pending
   * acknowledgement is shared: copy before changing it, as UserStateStore does).
   */
  load(userId: string, partition?: number): UserState | undefined {
    const u = this.unacknowledged.get(userId);
    if (u) return u.state ?? undefined;
    const stores = partition === undefined ? [...this.stores.values()] : [this.store(partition)];
    for (const store of stores) {
      // The reused buffer is safe: decode copies what it keeps before the next read.
      const bytes = store.users.getBinaryFast(userId);
      this.o.reporter?.diskRead(bytes !== undefined);
      if (bytes !== undefined) return this.o.codec.decode(bytes) ?? undefined;
    }
    return undefined;
  }

  /** Users whose stored state has events waiting (for the timer's flushes), with their partition; of one partition, or all. */
  *pendingUsers(partition?: number): IterableIterator<readonly [string, number]> {
    for (const [p, store] of this.stores) {
      if (partition === undefined || p === partition) for (const userId of [...store.pendingIds]) yield [userId, p];
    }
  }

  /** The first changelog offset the partition's store does not reflect; undefined: none (read it all). */
  checkpoint(partition: number): bigint | undefined {
    const cp = checkpointOf(this.store(partition));
    return cp ? BigInt(cp.next) : undefined;
  }

  /** The changelog's marker records (NUL keys) as last written, e.g. applied offsets. */
  markers(partition: number): [string, Buffer][] {
    const out: [string, Buffer][] = [];
    for (const { key, value } of this.store(partition).meta.getRange({ start: '\u0000', end: '\u0001' })) out.push([key, value as Buffer]);
    return out;
  }

  /**
   * Users deleted on the partition within the changelog's tombstone retention, oldest first; older
   * entries are dropped here (the changelog no longer has their tombstones either).
   */
  deletedUsers(partition: number): string[] {
    const store = this.store(partition);
    const cutoff = this.clock() - TOMBSTONE_RETENTION_MS;
    const kept: [string, number][] = [];
    const expired: string[] = [];
    for (const { key, value } of store.deleted.getRange()) {
      if (value < cutoff) expired.push(key);
      else kept.push([key, value]);
    }
    if (expired.length > 0) {
      store.root.transactionSync(() => expired.forEach((k) => store.deleted.removeSync(k)));
      for (const k of expired) store.deletedIds.delete(k);
    }
    return kept.sort((a, b) => a[1] - b[1]).map(([k]) => k);
  }

  /** Users stored for the partition. */
  users(partition: number): number {
    return statsOf(this.store(partition).users).entryCount;
  }

  /** Bytes the partition's store uses (its B+tree pages, all databases). */
  bytes(partition: number): number {
    const s = this.store(partition);
    return [s.users, s.pending, s.deleted, s.meta].reduce((n, db) => {
      const t = statsOf(db);
      return n + t.pageSize * (t.treeBranchPageCount + t.treeLeafPageCount + t.overflowPages);
    }, 0);
  }

  // --- changes in memory, until acknowledged ---

  /** A state change snapshot handed to the transport: reads see it until it is acknowledged. */
  changed(snapshot: UserState): void {
    this.unacknowledged.set(snapshot.userId, { state: snapshot, partition: snapshot.partition });
  }

  /** A user deleted in memory: reads find nothing, even on disk, until the tombstone is acknowledged. */
  deleted(userId: string, partition: number): void {
    this.unacknowledged.set(userId, { state: null, partition });
  }

  /** The changelog value of a snapshot, remembered so that its acknowledgement finds the snapshot again. */
  encode(snapshot: UserState): Buffer {
    const value = this.o.codec.encode(snapshot);
    this.encoded.set(value, snapshot);
    return value;
  }

  // --- writes: what was acknowledged ---

  /**
   * Writes acknowledged changelog records of one partition, in their log order, and `next` (the
   * first offset after them) as the checkpoint when known. Resolves once committed: reads see it.
   * A state of another space (restoring an old changelog) is deleted, as the changelog's restore
   * always did: that user starts fresh.
   */
  async write(partition: number, entries: readonly ChangelogEntry[], next?: bigint): Promise<void> {
    const store = this.store(partition);
    const now = this.clock();
    // Which unacknowledged change each record settles: only that one stops standing in for the disk.
    const settles = entries.map((e) => {
      const u = this.unacknowledged.get(e.key);
      const snapshot = e.value ? this.encoded.get(e.value) : undefined;
      return u && (e.value === null ? u.state === null : snapshot === undefined || u.state === snapshot) ? u : undefined;
    });
    await store.root.transaction(() => {
      entries.forEach((e) => {
        if (e.key.startsWith('\u0000')) {
          if (e.value) store.meta.putSync(e.key, e.value);
          else store.meta.removeSync(e.key);
          return;
        }
        const state = e.value === null ? null : (this.encoded.get(e.value) ?? this.o.codec.decode(e.value));
        if (state === null) {
          store.users.removeSync(e.key);
          if (e.value === null) {
            store.deleted.putSync(e.key, now);
            store.deletedIds.add(e.key);
          }
        } else {
          store.users.putSync(e.key, e.value!);
          if (store.deletedIds.delete(e.key)) store.deleted.removeSync(e.key);
        }
        if (state !== null && state.pendingEventIds.length > 0) {
          if (!store.pendingIds.has(e.key)) store.pending.putSync(e.key, EMPTY);
          store.pendingIds.add(e.key);
        } else if (store.pendingIds.delete(e.key)) store.pending.removeSync(e.key);
      });
      if (next !== undefined) {
        const cp = checkpointOf(store);
        if (!cp || BigInt(cp.next) < next) store.meta.putSync(CHECKPOINT, { next: String(next), at: now, space: this.o.space, format: FORMAT } satisfies Checkpoint);
      }
    });
    entries.forEach((e, i) => {
      if (settles[i] && this.unacknowledged.get(e.key) === settles[i]) this.unacknowledged.delete(e.key);
    });
    this.o.reporter?.diskWrites(entries.length);
  }

  /**
   * The memory transport's acknowledgement: a delivered result's state changes and deletions, per
   * partition, as the changelog would hold them (no offsets there, so no checkpoint).
   */
  async acknowledged(result: { readonly stateChanges?: readonly UserState[]; readonly deletions?: readonly DeletionOutput[]; readonly attribution?: readonly AttributionRecord[] }): Promise<void> {
    const byPartition = new Map<number, ChangelogEntry[]>();
    const add = (partition: number, e: ChangelogEntry): void => {
      const list = byPartition.get(partition);
      if (list) list.push(e);
      else byPartition.set(partition, [e]);
    };
    for (const s of result.stateChanges ?? []) add(s.partition, { key: s.userId, value: this.encode(s) });
    for (const d of result.deletions ?? []) add(d.partition, { key: d.userId, value: null });
    for (const a of result.attribution ?? []) add(a.partition, { key: a.key, value: a.value });
    await Promise.all([...byPartition].map(([p, entries]) => this.write(p, entries)));
  }

  private store(partition: number): PartitionStore {
    // Opened on first use where no assignment opens it (the memory transport, tests).
    if (!this.stores.has(partition)) this.open(partition);
    return this.stores.get(partition)!;
  }

  private folderOf(partition: number): string {
    return join(this.o.dir, `partition-${partition}`);
  }
}

const EMPTY = Buffer.alloc(0);

function checkpointOf(store: PartitionStore): Checkpoint | undefined {
  return store.meta.get(CHECKPOINT) as Checkpoint | undefined;
}

interface DbStats {
  pageSize: number;
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
  entryCount: number;
}

function statsOf(db: Database<unknown, string>): DbStats {
  return db.getStats() as DbStats;
}

/**
 * One process per folder: two instances writing one partition's store would interleave states of
 * different ages. A lock left by a process that is gone (SIGKILL) is taken over.
 */
function takeLock(path: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(path, 'utf8').trim());
    if (owner === process.pid) return;
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) {
      throw new ConfigError('STATE_DIR', `${path} says process ${owner} uses this folder; give each instance its own STATE_DIR`);
    }
    unlinkSync(path);
  }
  throw new ConfigError('STATE_DIR', `cannot take ${path}`);
}

function releaseLock(path: string): void {
  try {
    if (Number(readFileSync(path, 'utf8').trim()) === process.pid) unlinkSync(path);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
