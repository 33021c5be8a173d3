/**
 * PartitionState (src/adapters/kafka/partition-state.ts) over a scripted changelog: the port's
 * readFromBeginning served from an in-memory log, read through the real restoreChangelog. What is
 * checked: newly assigned partitions' users and applied-offset markers come back (latest record per
 * key wins, tombstones delete and are remembered), revoked partitions' users and markers go, only
 * the added partitions are read, events wait (restoring(), isReady()) until the restore finished,
 * and a failed restore stops the processor. Across generations: a partition revoked and assigned
 * again while its restore runs gets one restore at a time (no older record lands over a newer one,
 * no marker of the first restore lands after the chunk that followed the second), a partition
 * revoked while restoring takes none of its markers or deleted users and its store is closed after
 * the restore, readiness counts owned partitions only, and a reset after a failed chunk restores
 * that partition alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { restoreChangelog } from '../../src/adapters/kafka/changelog-restorer.js';
import { PartitionState } from '../../src/adapters/kafka/partition-state.js';
import type { KafkaClient, PartitionReadOptions } from '../../src/adapters/kafka/port.js';
import type { InputRecord } from '../../src/domain/events.js';
import { NONE, type UserState } from '../../src/domain/user-state.js';
import { ProcessorMetrics } from '../../src/metrics/processor-metrics.js';
import type { Core } from '../../src/pipeline/core.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { AppliedOffsets } from '../../src/state/applied-offsets.js';
import { LocalStateStore } from '../../src/state/local-state-store.js';
import { UserStateCodec } from '../../src/state/user-state-codec.js';
import { UserStateStore } from '../../src/state/user-state-store.js';
import { silentLogger } from '../../src/util/log.js';

const DIM = 4;
const SPACE = 'test-space/concat-f4';
const CHANGELOG = 'user-state';
const avro = new AvroCodec();
const stateCodec = new UserStateCodec(avro, { space: SPACE, dim: DIM, maxInterests: 3 });

function state(userId: string, partition: number, events: number): UserState {
  return {
    userId,
    partition,
    interests: [{ vector: Float32Array.from([1, 0, 0, 0]), strength: events, asOf: 1000, events }],
    latestEventTime: 1000,
    pendingEventIds: NONE,
    lastEmittedAt: 0,
    updatedAt: 1000,
    lastSegments: NONE,
  };
}

/**
 * The changelog topic as the port serves it: records appended per partition, read back from the
 * beginning (or from the offsets asked) in offset order. A read can be held (to look at the state
 * mid-restore) or made to fail; it counts the records it handed over.
 */
class ScriptedChangelog {
  private readonly log = new Map<number, InputRecord[]>();
  /** The partitions each read asked for. */
  readonly reads: number[][] = [];
  handedOver = 0;
  /** Reads running now, and the most that ever ran at once. */
  private reading = 0;
  mostReadsAtOnce = 0;
  /** Holds for the next reads, one each, in call order (see holdNextRead). */
  private readonly holds: Promise<void>[] = [];
  failWith: Error | null = null;

  /** Holds the next read (after it took its end offsets) until the returned function is called. */
  holdNextRead(): () => void {
    let release!: () => void;
    this.holds.push(new Promise<void>((r) => (release = r)));
    return release;
  }

  append(partition: number, key: string, value: Buffer | null): void {
    const records = this.log.get(partition) ?? [];
    records.push({ topic: CHANGELOG, partition, offset: String(records.length), key: Buffer.from(key), value, timestamp: 0 });
    this.log.set(partition, records);
  }

  user(s: UserState): void {
    this.append(s.partition, s.userId, stateCodec.encode(s));
  }

  readonly client = {
    readFromBeginning: async (o: PartitionReadOptions) => {
      const parts = [...(o.partitions ?? this.log.keys())];
      this.reads.push(parts);
      const hold = this.holds.shift();
      const fail = this.failWith;
      // Up to the end at the time of the call, as a read with follow: false does.
      const ends = new Map(parts.map((p) => [p, (this.log.get(p) ?? []).length]));
      this.mostReadsAtOnce = Math.max(this.mostReadsAtOnce, ++this.reading);
      const caughtUp = (async () => {
        try {
          if (hold) await hold;
          if (fail) throw fail;
          for (const p of parts) {
            const records = (this.log.get(p) ?? []).slice(0, ends.get(p)).filter((r) => BigInt(r.offset) >= (o.from?.get(p) ?? 0n));
            this.handedOver += records.length;
            await o.onRecords(records);
          }
        } finally {
          this.reading--;
        }
      })();
      return { caughtUp, stop: async () => undefined };
    },
    admin: async () => ({
      partitionOffsets: async () => [...this.log].map(([partition, r]) => ({ partition, low: 0n, high: BigInt(r.length) })),
      disconnect: async () => undefined,
    }),
  } as unknown as KafkaClient;
}

/** Each set-up's local state store in a folder of its own. */
const stateRoot = mkdtempSync(join(tmpdir(), 'adstream-partition-state-'));
afterAll(() => rmSync(stateRoot, { recursive: true, force: true }));
let stores = 0;

/** An instance over `changelog`, its local store in `dir` (default: a folder of its own). */
function setUp(changelog: ScriptedChangelog, dir = join(stateRoot, `s${stores++}`)) {
  const local = new LocalStateStore({ dir, codec: stateCodec, space: SPACE });
  const users = new UserStateStore({ dim: DIM, maxEntries: 1000, maxBytes: 1 << 24, ttlMs: 3_600_000, backing: local });
  const applied = new AppliedOffsets();
  const deleted: string[] = [];
  const failures: Error[] = [];
  // The parts of the core PartitionState touches; the rest would need models and workers.
  const core = { users, local, applied, stateCodec, processor: { markDeleted: (u: string) => void deleted.push(u) } } as unknown as Core;
  const ps = new PartitionState({
    core,
    log: silentLogger,
    metrics: new ProcessorMetrics({ defaultMetrics: false }),
    readChangelog: (o) => restoreChangelog({ client: changelog.client, topic: CHANGELOG, ...o }),
    fail: (err) => void failures.push(err),
  });
  const settled = async (): Promise<void> => {
    for (let r = restoringAny(ps); r; r = restoringAny(ps)) await r;
  };
  const assign = async (parts: number[]): Promise<void> => {
    ps.onAssignment(parts, { clicks: parts });
    await settled();
  };
  return { ps, users, local, applied, deleted, failures, settled, assign };
}

/** A restore in flight of any partition these tests use (restoring() is per partition). */
const restoringAny = (ps: PartitionState): Promise<void> | null => {
  for (let p = 0; p < 8; p++) {
    const r = ps.restoring(p);
    if (r) return r;
  }
  return null;
};

const eventsOf = (users: UserStateStore, userId: string): number | undefined => users.get(userId)?.interests.reduce((n, i) => n + i.events, 0);

describe('PartitionState', () => {
  it('restores the users and applied offsets of newly assigned partitions: latest record per key wins', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    changelog.user(state('alice', 0, 5)); // newer: wins
    changelog.user(state('bob', 1, 2));
    changelog.user(state('carol', 2, 9)); // partition 2 is not assigned
    const { ps, users, applied } = setUp(changelog);
    const marker = ps.appliedMarker('clicks', 0, '41');
    changelog.append(marker.partition, marker.key, marker.value);
    const later = ps.appliedMarker('clicks', 0, '77');
    changelog.append(later.partition, later.key, later.value);
    const reviews = ps.appliedMarker('reviews', 1, '3');
    changelog.append(reviews.partition, reviews.key, reviews.value);

    ps.onAssignment([0, 1], { clicks: [0, 1] });
    expect(restoringAny(ps)).not.toBeNull();
    await restoringAny(ps);

    expect(changelog.reads).toEqual([[0, 1]]);
    expect(eventsOf(users, 'alice')).toBe(5);
    expect(eventsOf(users, 'bob')).toBe(2);
    expect(users.get('carol')).toBeUndefined();
    expect(users.get('\u0000applied/clicks')).toBeUndefined(); // a marker is not a user
    expect(applied.upTo('clicks', 0)).toBe(77n);
    expect(applied.upTo('reviews', 1)).toBe(3n);
    expect(applied.upTo('clicks', 1)).toBeUndefined();
  });

  it('holds events back while restoring: not ready and restoring() pending until the read finished', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 3));
    const release = changelog.holdNextRead();
    const { ps, users } = setUp(changelog);
    expect(ps.isReady()).toBe(false); // nothing assigned yet

    ps.onAssignment([0], { clicks: [0] });
    const restoring = restoringAny(ps);
    expect(restoring).not.toBeNull();
    expect(ps.isReady()).toBe(false);
    expect(ps.readyDetail()).toEqual({ partitionsAssigned: true, partitions: [0], restoring: true });
    let finished = false;
    void restoring!.then(() => (finished = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(finished).toBe(false);
    expect(users.get('alice')).toBeUndefined();

    release();
    await restoring;
    expect(eventsOf(users, 'alice')).toBe(3);
    expect(restoringAny(ps)).toBeNull();
    expect(ps.isReady()).toBe(true);
    expect(ps.readyDetail()).toEqual({ partitionsAssigned: true, partitions: [0], restoring: false });
  });

  it('a tombstone deletes the user and remembers the deletion; a record of another space only drops the user', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('gone', 0, 4));
    changelog.append(0, 'gone', null);
    changelog.user(state('moved', 0, 4));
    changelog.append(0, 'moved', new UserStateCodec(avro, { space: 'another-space/concat-f4', dim: DIM, maxInterests: 3 }).encode(state('moved', 0, 6)));
    changelog.user(state('kept', 0, 2));
    const { ps, users, deleted } = setUp(changelog);
    ps.onAssignment([0], { clicks: [0] });
    await restoringAny(ps);
    expect(users.get('gone')).toBeUndefined();
    expect(users.get('moved')).toBeUndefined();
    expect(eventsOf(users, 'kept')).toBe(2);
    expect(deleted).toEqual(['gone']); // a replay of its delivered events must not bring it back
  });

  it('a new generation drops the revoked partitions users and markers and reads only the added partitions', async () => {
    const changelog = new ScriptedChangelog();
    for (const p of [0, 1, 2]) changelog.user(state(`u${p}`, p, p + 1));
    const { ps, users, applied } = setUp(changelog);
    ps.onAssignment([0, 1], { clicks: [0, 1] });
    await restoringAny(ps);
    applied.mark('clicks', 0, 10n);
    applied.mark('clicks', 1, 20n);

    ps.onRebalancing();
    expect(ps.isReady()).toBe(false);
    ps.onAssignment([1, 2], { clicks: [1, 2] });
    await restoringAny(ps);

    expect(changelog.reads).toEqual([[0, 1], [2]]);
    expect(users.get('u0')).toBeUndefined();
    expect(applied.upTo('clicks', 0)).toBeUndefined();
    expect(eventsOf(users, 'u1')).toBe(2);
    expect(applied.upTo('clicks', 1)).toBe(20n); // kept: partition 1 stayed, it was not read again
    expect(eventsOf(users, 'u2')).toBe(3);
    expect(ps.isReady()).toBe(true);
    expect(ps.readyDetail().partitions).toEqual([1, 2]);
  });

  it('the same assignment again reads nothing and is ready at once', async () => {
    const changelog = new ScriptedChangelog();
    const { ps } = setUp(changelog);
    ps.onAssignment([0], { clicks: [0] });
    await restoringAny(ps);
    ps.onRebalancing();
    ps.onAssignment([0], { clicks: [0] });
    expect(restoringAny(ps)).toBeNull();
    expect(ps.isReady()).toBe(true);
    expect(changelog.reads).toEqual([[0]]);
  });

  it('the marker it writes is the one a restore reads back', async () => {
    const changelog = new ScriptedChangelog();
    const writer = setUp(changelog).ps;
    for (const [topic, partition, offset] of [['clicks', 2, '9007199254740993'], ['image-views', 2, '0']] as const) {
      const m = writer.appliedMarker(topic, partition, offset);
      expect(m.partition).toBe(partition); // on the input partition's number: restore reads the owned partitions only
      changelog.append(m.partition, m.key, m.value);
    }
    const { ps, applied } = setUp(changelog);
    ps.onAssignment([2], { clicks: [2] });
    await restoringAny(ps);
    expect(applied.upTo('clicks', 2)).toBe(9007199254740993n);
    expect(applied.upTo('image-views', 2)).toBe(0n);
  });

  it('markApplied records the offset the fold stage reads', () => {
    const { ps, applied } = setUp(new ScriptedChangelog());
    ps.markApplied('clicks', 1, '12');
    expect(applied.upTo('clicks', 1)).toBe(12n);
  });

  it('never moves the marker back: a replayed chunk below the restored marker keeps it (else the next replayed chunk folds again)', async () => {
    const changelog = new ScriptedChangelog();
    const m = setUp(changelog).ps.appliedMarker('clicks', 1, '299');
    changelog.append(m.partition, m.key, m.value);
    const { ps, applied } = setUp(changelog);
    ps.onAssignment([1], { clicks: [1] });
    await restoringAny(ps);
    expect(applied.upTo('clicks', 1)).toBe(299n);
    // The first chunk of the replay (offsets 100..149) is delivered with its marker.
    expect(ps.appliedMarker('clicks', 1, '149').value.toString()).toBe('299');
    ps.markApplied('clicks', 1, '149');
    expect(applied.upTo('clicks', 1)).toBe(299n);
    // Past the restored marker it moves on.
    ps.markApplied('clicks', 1, '349');
    expect(applied.upTo('clicks', 1)).toBe(349n);
  });

  it('a failed restore stops the processor', async () => {
    const changelog = new ScriptedChangelog();
    changelog.failWith = new Error('changelog unreadable');
    const { ps, failures, settled } = setUp(changelog);
    ps.onAssignment([0], { clicks: [0] });
    await settled();
    expect(failures.map((e) => e.message)).toEqual(['state restore failed: changelog unreadable']);
  });
});

describe('PartitionState over the local store', () => {
  it('restores into the store, not into memory; a store that survived reads only the tail after its checkpoint', async () => {
    const dir = join(stateRoot, 'survives');
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    changelog.user(state('alice', 0, 4));
    changelog.user(state('bob', 0, 2));
    changelog.user(state('carol', 0, 1));
    changelog.append(0, 'carol', null);
    changelog.append(0, '\u0000applied/clicks', Buffer.from('41'));

    const first = setUp(changelog, dir);
    await first.assign([0]);
    expect(changelog.handedOver).toBe(6);
    expect(first.users.size).toBe(0); // the cache fills on demand
    expect(eventsOf(first.users, 'alice')).toBe(4);
    expect(first.users.getOrCreate('alice', 0).interests[0]!.events).toBe(4);
    await first.local.closeAll(); // the process ends (a SIGKILL leaves the folder just the same)

    // Meanwhile the changelog grows: bob changes, dave arrives, alice is deleted, a new marker.
    changelog.user(state('bob', 0, 3));
    changelog.user(state('dave', 0, 1));
    changelog.append(0, 'alice', null);
    changelog.append(0, '\u0000applied/clicks', Buffer.from('57'));
    changelog.handedOver = 0;

    const second = setUp(changelog, dir);
    await second.assign([0]);
    expect(changelog.handedOver).toBe(4); // the tail only
    expect(eventsOf(second.users, 'bob')).toBe(3);
    expect(eventsOf(second.users, 'dave')).toBe(1);
    expect(second.users.get('alice')).toBeUndefined();
    expect(second.applied.upTo('clicks', 0)).toBe(57n);
    expect(second.deleted.sort()).toEqual(['alice', 'carol']); // carol's tombstone lies before the checkpoint: remembered by the store
    await second.local.closeAll();
  });

  it('a store whose checkpoint the changelog does not have (the topic was recreated) is rebuilt from the whole changelog', async () => {
    const dir = join(stateRoot, 'recreated');
    const old = new ScriptedChangelog();
    for (let i = 0; i < 5; i++) old.user(state(`u${i}`, 1, 1));
    const first = setUp(old, dir);
    await first.assign([1]);
    await first.local.closeAll();

    const fresh = new ScriptedChangelog(); // the same topic name, created again: two records
    fresh.user(state('u0', 1, 7));
    fresh.user(state('x', 1, 2));
    const second = setUp(fresh, dir);
    await second.assign([1]);
    expect(fresh.handedOver).toBe(2);
    expect(eventsOf(second.users, 'u0')).toBe(7);
    expect(second.users.get('u3')).toBeUndefined(); // not on the new changelog: gone with the old store
    expect(second.local.users(1)).toBe(2);
    await second.local.closeAll();
  });

  it('revocation closes the partition\'s store; when the partition comes back its folder is read from the checkpoint', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    changelog.user(state('bob', 1, 1));
    const a = setUp(changelog);
    await a.assign([0, 1]);
    a.users.getOrCreate('bob', 1);
    await a.assign([0]);
    expect(a.local.openPartitions()).toEqual([0]);
    expect(a.users.size).toBe(0);
    changelog.user(state('bob', 1, 5)); // written by the new owner meanwhile
    changelog.handedOver = 0;
    await a.assign([0, 1]);
    expect(changelog.handedOver).toBe(1);
    expect(eventsOf(a.users, 'bob')).toBe(5);
    await a.local.closeAll();
  });
});

/** Whether `p` settles within a few turns of the event loop (a read held stays pending). */
async function settles(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 20));
  return done;
}

const eventsOnDisk = (local: LocalStateStore, userId: string, partition: number): number | undefined => local.load(userId, partition)?.interests[0]?.events;

describe('PartitionState across generations: restores, revocations and resets of one partition', () => {
  it('a partition assigned again while its first restore is held waits for it: one restore of a store at a time, no older record landing after a newer', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    const release = changelog.holdNextRead(); // the first read ends at alice's first record
    const { ps, local, settled } = setUp(changelog);
    ps.onAssignment([0], { clicks: [0] });
    while (changelog.reads.length === 0) await settles(Promise.resolve()); // its read has taken its end
    ps.onRebalancing();
    ps.onAssignment([], { clicks: [] }); // revoked while restoring
    changelog.user(state('alice', 0, 5)); // the next owner's change
    ps.onRebalancing();
    ps.onAssignment([0], { clicks: [0] }); // and back

    const second = ps.restoring(0);
    expect(second).not.toBeNull();
    expect(await settles(second!)).toBe(false); // its events wait for both restores
    release();
    await settled();
    await settles(Promise.resolve()); // anything still in flight lands
    expect(changelog.mostReadsAtOnce).toBe(1);
    expect(eventsOnDisk(local, 'alice', 0)).toBe(5);
    expect(ps.isReady()).toBe(true);
    await local.closeAll();
  });

  it('the first restore\'s markers do not land after the partition\'s next restore: a chunk\'s marker set after it stays', async () => {
    const changelog = new ScriptedChangelog();
    changelog.append(0, '\u0000applied/clicks', Buffer.from('41'));
    const release = changelog.holdNextRead();
    const { ps, applied, local, settled } = setUp(changelog);
    ps.onAssignment([0], { clicks: [0] });
    ps.onRebalancing();
    ps.onAssignment([], { clicks: [] });
    ps.onRebalancing();
    ps.onAssignment([0], { clicks: [0] });
    // The partition's first chunk runs once its restore settled and leaves its marker.
    void ps.restoring(0)!.then(() => ps.markApplied('clicks', 0, '100'));
    await settles(ps.restoring(0)!);
    release();
    await settled();
    await settles(Promise.resolve());
    expect(applied.upTo('clicks', 0)).toBe(100n);
    await local.closeAll();
  });

  it('a partition revoked while restoring: its markers and deleted users are not taken, and its store is closed once the restore settled', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    changelog.user(state('bob', 1, 2));
    changelog.user(state('carol', 1, 1));
    changelog.append(1, 'carol', null);
    changelog.append(1, '\u0000applied/clicks', Buffer.from('7'));
    const { ps, applied, deleted, local, assign, settled } = setUp(changelog);
    await assign([0, 1]); // partition 1's folder now holds bob, carol's deletion and the marker
    await assign([0]);
    deleted.length = 0;

    const release = changelog.holdNextRead();
    ps.onAssignment([0, 1], { clicks: [0, 1] });
    ps.onRebalancing();
    ps.onAssignment([0], { clicks: [0] }); // revoked again while its restore is held
    release();
    await settled();
    await settles(Promise.resolve()); // the close that waited for the restore

    expect(applied.upTo('clicks', 1)).toBeUndefined();
    expect(deleted).toEqual([]);
    expect(local.openPartitions()).toEqual([0]);
    expect(ps.ownedPartitions()).toEqual([0]);
    await local.closeAll();
  });

  it('a partition revoked while the restore writes its store is closed after the write, not under it', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    changelog.user(state('bob', 1, 2));
    const { ps, local, failures, settled } = setUp(changelog);
    // Partition 1's first write waits until the revocation came.
    let release!: () => void;
    const revoked = new Promise<void>((r) => (release = r));
    const write = local.write.bind(local);
    let writing = false;
    local.write = async (partition, entries, next) => {
      if (partition === 1 && !writing) {
        writing = true;
        await revoked;
      }
      return write(partition, entries, next);
    };
    ps.onAssignment([0, 1], { clicks: [0, 1] });
    while (!writing) await settles(Promise.resolve());
    ps.onRebalancing();
    ps.onAssignment([0], { clicks: [0] });
    await settles(Promise.resolve()); // a close not waiting for the restore would run now
    release();
    await settled();
    await settles(Promise.resolve());
    expect(failures).toEqual([]);
    expect(local.openPartitions()).toEqual([0]);
    await local.closeAll();
  });

  it('readiness counts the partitions owned: a revoked partition\'s restore in flight does not hold back one restored since', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    changelog.user(state('bob', 1, 2));
    const release = changelog.holdNextRead();
    const { ps, users, local, settled } = setUp(changelog);
    ps.onAssignment([0], { clicks: [0] });
    while (changelog.reads.length === 0) await settles(Promise.resolve()); // the held read is partition 0's
    ps.onRebalancing();
    ps.onAssignment([1], { clicks: [1] });
    await ps.restoring(1);
    expect(eventsOf(users, 'bob')).toBe(2);
    expect(ps.isReady()).toBe(true);
    expect(ps.readyDetail()).toEqual({ partitionsAssigned: true, partitions: [1], restoring: false });
    release();
    await settled();
    await settles(Promise.resolve());
    expect(local.openPartitions()).toEqual([1]);
    await local.closeAll();
  });

  it('a reset waits for the partition\'s restore in flight, and does nothing once the partition is revoked before it began', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    const release = changelog.holdNextRead();
    const { ps, local, failures, settled } = setUp(changelog);
    ps.onAssignment([0], { clicks: [0] });
    ps.reset(0); // waits for the restore held
    expect(await settles(ps.restoring(0)!)).toBe(false);
    ps.onRebalancing();
    ps.onAssignment([], { clicks: [] });
    release();
    await settled();
    await settles(Promise.resolve());
    expect(changelog.reads).toEqual([[0]]); // the next owner restores it
    expect(local.openPartitions()).toEqual([]);
    expect(failures).toEqual([]);
    await local.closeAll();
  });

  it('reset after a failed chunk: the partition\'s users and unacknowledged changes go, it is read again from its checkpoint; the other partition keeps its users', async () => {
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 3));
    changelog.user(state('bob', 1, 2));
    const { ps, users, local, settled, assign } = setUp(changelog);
    await assign([0, 1]);
    // A chunk changed alice and bob in memory, then failed before its delivery was acknowledged.
    users.getOrCreate('alice', 0).interests[0]!.events = 99;
    local.changed(users.get('alice')!);
    const bob = users.getOrCreate('bob', 1);
    expect(users.size).toBe(2);
    changelog.handedOver = 0;

    ps.reset(0);
    expect(ps.restoring(0)).not.toBeNull();
    expect(ps.restoring(1)).toBeNull();
    expect(users.size).toBe(1);
    expect(users.get('bob')).toBe(bob); // still the one in memory
    await settled();
    expect(changelog.reads.at(-1)).toEqual([0]);
    expect(changelog.handedOver).toBe(0); // the store was level with the changelog: nothing to read
    expect(eventsOf(users, 'alice')).toBe(3); // the acknowledged state, not the failed chunk's
    expect(ps.isReady()).toBe(true);
    await local.closeAll();
  });
});
