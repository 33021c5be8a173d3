/**
 * The local state store (src/state/local-state-store.ts) on real LMDB folders, and the LRU over it
 * (UserStateStore with a backing): what was acknowledged is read back after eviction and after a
 * reopen, what was not acknowledged is read back from memory and never replaced by an older disk
 * state, deletions hide the disk until their tombstone lands, the pending index, the checkpoint,
 * and the folder lock.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/domain/errors.js';
import { NONE, type UserState } from '../../src/domain/user-state.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { LocalStateStore, TOMBSTONE_RETENTION_MS } from '../../src/state/local-state-store.js';
import { UserStateCodec } from '../../src/state/user-state-codec.js';
import { UserStateStore } from '../../src/state/user-state-store.js';

const DIM = 4;
const SPACE = 'test-space/concat-f4';
const codec = new UserStateCodec(new AvroCodec(), { space: SPACE, dim: DIM, maxInterests: 3 });
const root = mkdtempSync(join(tmpdir(), 'adstream-local-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let folders = 0;
function folder(): string {
  return join(root, `s${folders++}`);
}

function store(dir = folder(), o: { space?: string; clock?: () => number } = {}): LocalStateStore {
  return new LocalStateStore({ dir, codec: o.space ? new UserStateCodec(new AvroCodec(), { space: o.space, dim: DIM, maxInterests: 3 }) : codec, space: o.space ?? SPACE, ...(o.clock ? { clock: o.clock } : {}) });
}

function state(userId: string, events: number, o: { partition?: number; pending?: string[] } = {}): UserState {
  return {
    userId,
    partition: o.partition ?? 0,
    interests: [{ vector: Float32Array.from([events, 0, 0, 1]), strength: events, asOf: 1000, events }],
    latestEventTime: 1000,
    pendingEventIds: o.pending ?? NONE,
    lastEmittedAt: 0,
    updatedAt: 1000,
    lastSegments: NONE,
  };
}

const eventsOf = (s: UserState | undefined): number | undefined => s?.interests.reduce((n, i) => n + i.events, 0);

describe('LocalStateStore', () => {
  it('reads back what was written, with its checkpoint, pending index and markers, also after a reopen', async () => {
    const dir = folder();
    const a = store(dir);
    await a.write(0, [
      { key: 'alice', value: codec.encode(state('alice', 3)) },
      { key: 'bob', value: codec.encode(state('bob', 2, { pending: ['e1'] })) },
      { key: '\u0000applied/clicks', value: Buffer.from('41') },
    ], 3n);
    await a.write(0, [{ key: 'alice', value: codec.encode(state('alice', 5)) }], 2n); // a checkpoint never moves back
    expect(eventsOf(a.load('alice', 0))).toBe(5);
    expect(eventsOf(a.load('alice'))).toBe(5); // any open partition
    expect(a.load('carol', 0)).toBeUndefined();
    expect(a.checkpoint(0)).toBe(3n);
    expect([...a.pendingUsers()]).toEqual([['bob', 0]]);
    expect(a.markers(0).map(([k, v]) => [k, v.toString()])).toEqual([['\u0000applied/clicks', '41']]);
    expect(a.users(0)).toBe(2);
    expect(a.bytes(0)).toBeGreaterThan(0);
    await a.closeAll();

    const b = store(dir);
    expect(eventsOf(b.load('alice', 0))).toBe(5);
    expect(b.load('bob', 0)?.pendingEventIds).toEqual(['e1']);
    expect(b.checkpoint(0)).toBe(3n);
    expect([...b.pendingUsers()]).toEqual([['bob', 0]]);
    // bob's output went out: no longer pending
    await b.write(0, [{ key: 'bob', value: codec.encode(state('bob', 2)) }], 4n);
    expect([...b.pendingUsers()]).toEqual([]);
    await b.closeAll();
  });

  it('a tombstone deletes the user and remembers the deletion; a state of another space deletes without remembering', async () => {
    const s = store();
    const other = new UserStateCodec(new AvroCodec(), { space: 'another/space', dim: DIM, maxInterests: 3 });
    await s.write(1, [{ key: 'alice', value: codec.encode(state('alice', 3, { partition: 1 })) }, { key: 'bob', value: codec.encode(state('bob', 1, { partition: 1 })) }]);
    await s.write(1, [{ key: 'alice', value: null }, { key: 'bob', value: other.encode(state('bob', 9, { partition: 1 })) }]);
    expect(s.load('alice', 1)).toBeUndefined();
    expect(s.load('bob', 1)).toBeUndefined();
    expect(s.deletedUsers(1)).toEqual(['alice']);
    // alice comes back with a new event: no longer a deleted user
    await s.write(1, [{ key: 'alice', value: codec.encode(state('alice', 1, { partition: 1 })) }]);
    expect(s.deletedUsers(1)).toEqual([]);
    await s.closeAll();
  });

  it('reads a change not yet acknowledged from memory, and an older acknowledgement does not replace a newer change', async () => {
    const s = store();
    await s.write(0, [{ key: 'alice', value: codec.encode(state('alice', 1)) }]);
    const second = state('alice', 2);
    s.changed(second);
    expect(eventsOf(s.load('alice', 0))).toBe(2); // not on disk yet
    const third = state('alice', 3);
    const bytesOfSecond = s.encode(second);
    s.changed(third);
    await s.write(0, [{ key: 'alice', value: bytesOfSecond }]); // the second acknowledged while the third is in memory
    expect(eventsOf(s.load('alice', 0))).toBe(3);
    await s.write(0, [{ key: 'alice', value: s.encode(third) }]);
    expect(eventsOf(s.load('alice', 0))).toBe(3); // now from disk
    s.discardUnacknowledged(0);
    expect(eventsOf(s.load('alice', 0))).toBe(3);
    await s.closeAll();
  });

  it('a deletion hides the user on disk until its tombstone is written; a failed chunk\'s changes can be discarded', async () => {
    const s = store();
    await s.write(0, [{ key: 'alice', value: codec.encode(state('alice', 4)) }]);
    s.deleted('alice', 0);
    expect(s.load('alice', 0)).toBeUndefined();
    expect(s.load('alice')).toBeUndefined();
    s.discardUnacknowledged(0); // the deletion's chunk failed: it will run again
    expect(eventsOf(s.load('alice', 0))).toBe(4);
    s.deleted('alice', 0);
    await s.write(0, [{ key: 'alice', value: null }]);
    s.discardUnacknowledged(0);
    expect(s.load('alice', 0)).toBeUndefined();
    await s.closeAll();
  });

  it('prepare() keeps a store of the same space with a recent checkpoint, and rebuilds one of another space or too old', async () => {
    let now = 1_000_000_000;
    const clock = (): number => now;
    const dir = folder();
    const a = store(dir, { clock });
    await a.write(0, [{ key: 'alice', value: codec.encode(state('alice', 3)) }], 10n);
    await a.write(1, [{ key: 'bob', value: codec.encode(state('bob', 3, { partition: 1 })) }], 5n);
    expect(await a.prepare(0)).toBeUndefined();
    expect(a.checkpoint(0)).toBe(10n);
    now += TOMBSTONE_RETENTION_MS + 1; // a tombstone after the checkpoint could be compacted away by now
    expect(await a.prepare(1)).toMatch(/older than/);
    expect(a.checkpoint(1)).toBeUndefined();
    expect(a.load('bob', 1)).toBeUndefined();
    await a.closeAll();

    const b = store(dir, { space: 'new-models/concat-f4', clock });
    expect(await b.prepare(0)).toMatch(/space test-space/);
    expect(b.load('alice', 0)).toBeUndefined();
    await b.closeAll();
  });

  it('one process per folder: a live owner refuses a second, a dead one is taken over', async () => {
    const dir = folder();
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    try {
      store(dir).closeAll(); // creates the folder, then lets it go
      writeFileSync(join(dir, 'owner.pid'), String(live.pid));
      expect(() => store(dir)).toThrow(ConfigError);
      expect(() => store(dir)).toThrow(/STATE_DIR/);
    } finally {
      live.kill('SIGKILL');
    }
    await new Promise((r) => live.once('exit', r));
    const s = store(dir); // the owner is gone: taken over
    await s.closeAll();
  });
});

describe('UserStateStore over the local store', () => {
  it('counts cache hits and misses, disk reads found or absent, and records written (the metrics)', async () => {
    const reads: boolean[] = [];
    let written = 0;
    const local = new LocalStateStore({ dir: folder(), codec, space: SPACE, reporter: { diskRead: (found) => void reads.push(found), diskWrites: (n) => void (written += n) } });
    const lookups: boolean[] = [];
    const users = new UserStateStore({ dim: DIM, maxEntries: 10, maxBytes: 1 << 20, ttlMs: 3_600_000, backing: local, onLookup: (hit) => void lookups.push(hit) });
    await local.write(0, [{ key: 'alice', value: codec.encode(state('alice', 1)) }, { key: 'bob', value: null }]);
    users.getOrCreate('alice', 0); // miss, found on disk
    users.getOrCreate('alice', 0); // hit
    users.getOrCreate('carol', 0); // miss, absent
    expect(lookups).toEqual([false, true, false]);
    expect(reads).toEqual([true, false]);
    expect(written).toBe(2);
    await local.closeAll();
  });

  it('a miss reads the user from disk into memory; get() reads through without keeping it', async () => {
    const local = store();
    const users = new UserStateStore({ dim: DIM, maxEntries: 2, maxBytes: 1 << 20, ttlMs: 3_600_000, backing: local });
    await local.write(0, [{ key: 'alice', value: codec.encode(state('alice', 7)) }]);
    expect(eventsOf(users.get('alice'))).toBe(7);
    expect(users.size).toBe(0);
    const a = users.getOrCreate('alice', 0);
    expect(eventsOf(a)).toBe(7);
    expect(users.size).toBe(1);
    expect(users.getOrCreate('zed', 0).interests).toEqual([]); // never seen: fresh
    await local.closeAll();
  });

  it('a user evicted before its change is acknowledged comes back with that change, not the older disk state', async () => {
    const local = store();
    const users = new UserStateStore({ dim: DIM, maxEntries: 1, maxBytes: 1 << 20, ttlMs: 3_600_000, backing: local });
    await local.write(0, [{ key: 'alice', value: codec.encode(state('alice', 1)) }]);
    const a = users.getOrCreate('alice', 0);
    a.interests[0]!.events = 2;
    users.commit(a);
    const snap = users.snapshot(a); // handed to the transport
    users.getOrCreate('bob', 0); // evicts alice
    expect(users.size).toBe(1);
    expect(eventsOf(users.getOrCreate('alice', 0))).toBe(2);
    snap.interests[0]!.events = 99; // the snapshot is the transport's: memory has its own copy
    expect(eventsOf(users.get('alice'))).toBe(2);
    await local.closeAll();
  });

  it('forget() hides the user everywhere; pendingUsers() includes users with events waiting on disk', async () => {
    const local = store();
    const users = new UserStateStore({ dim: DIM, maxEntries: 10, maxBytes: 1 << 20, ttlMs: 3_600_000, backing: local });
    await local.write(0, [{ key: 'alice', value: codec.encode(state('alice', 1)) }, { key: 'bob', value: codec.encode(state('bob', 1, { pending: ['b1', 'b2'] })) }]);
    expect([...users.pendingUsers()].map((s) => [s.userId, s.pendingEventIds])).toEqual([['bob', ['b1', 'b2']]]);
    expect(users.size).toBe(1); // taken into memory for its output
    users.getOrCreate('alice', 0);
    expect(users.forget('alice', 0)).toBe(true);
    expect(users.get('alice')).toBeUndefined();
    expect(users.getOrCreate('alice', 0).interests).toEqual([]);
    await local.closeAll();
  });
});
