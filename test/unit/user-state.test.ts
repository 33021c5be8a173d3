import { describe, expect, it } from 'vitest';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { seededRandom } from '../../src/util/random.js';
import { applyEvent } from '../../src/state/user-interest.js';
import { MAX_SEGMENTS, segmentsChanged, userSegments, type Centroids } from '../../src/state/segments.js';
import { NONE, type Interest, type UserState } from '../../src/domain/user-state.js';
import { UserStateCodec } from '../../src/state/user-state-codec.js';
import { INTEREST_OVERHEAD_BYTES, stateBytes, UserStateStore } from '../../src/state/user-state-store.js';
import type { VectorPool } from '../../src/state/vector-pool.js';

const T0 = Date.UTC(2024, 0, 1);
const H = 3_600_000;
const params = { halfLifeMs: H, maxInterests: 3, newInterestThreshold: 0.5 };

function unitVector(rand: () => number, dim: number): Float32Array {
  const v = Float32Array.from({ length: dim }, () => rand() * 2 - 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function store(o: Partial<{ dim: number; maxEntries: number; maxBytes: number; ttlMs: number }> = {}): UserStateStore {
  return new UserStateStore({ dim: 4, maxEntries: 3, maxBytes: 1 << 20, ttlMs: 3_600_000, ...o });
}

/** A user of `store` with `interests` interests (random unit events far apart, so each starts one). */
function userWith(s: UserStateStore, userId: string, interests: number, partition = 0, seed = 1): UserState {
  const u = s.getOrCreate(userId, partition);
  const rand = seededRandom(seed);
  const p = { ...params, maxInterests: Math.max(1, interests), newInterestThreshold: 1.01 };
  for (let k = 0; k < interests; k++) applyEvent(u, unitVector(rand, s.dim), 0, 1, T0, p, s.vectors);
  u.latestEventTime = T0;
  u.updatedAt = T0;
  s.commit(u);
  return u;
}

describe('UserStateStore', () => {
  it('creates an empty state on first sight and returns the same one afterwards', () => {
    const s = store();
    expect(s.get('u1')).toBeUndefined();
    const u = s.getOrCreate('u1', 2);
    expect(u).toMatchObject({ userId: 'u1', partition: 2, interests: [], pendingEventIds: [], lastEmittedAt: 0, lastSegments: [] });
    expect(s.getOrCreate('u1', 2)).toBe(u);
    expect(s.get('u1')).toBe(u);
    expect(s.size).toBe(1);
    expect(s.dim).toBe(4);
  });

  it('evicts the least recently active user beyond maxEntries; get() does not count as activity', () => {
    const s = store();
    s.getOrCreate('a', 0);
    s.getOrCreate('b', 0);
    s.getOrCreate('c', 0);
    s.getOrCreate('a', 0); // b is now the least recent
    expect(s.get('b')).toBeDefined(); // a read: b stays least recent
    s.getOrCreate('d', 0);
    expect(s.size).toBe(3);
    expect(s.get('b')).toBeUndefined();
    expect(['a', 'c', 'd'].every((u) => s.get(u))).toBe(true);
  });

  it('keeps exactly the maxEntries most recent users under random access (LRU model)', () => {
    const rand = seededRandom(31337);
    const max = 10;
    const s = store({ maxEntries: max });
    const lru: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const u = `u${Math.floor(rand() * 25)}`;
      s.getOrCreate(u, 0);
      const at = lru.indexOf(u);
      if (at >= 0) lru.splice(at, 1);
      lru.push(u);
      if (lru.length > max) lru.shift();
      if (i % 50 === 0) for (let j = 0; j < 25; j++) expect(s.get(`u${j}`) !== undefined, `u${j} at step ${i}`).toBe(lru.includes(`u${j}`));
    }
  });

  it('counts at most 1 KiB for a user with one 128-d interest', () => {
    const s = store({ dim: 128, maxEntries: 10 });
    const u = userWith(s, 'user-12345', 1);
    u.lastSegments = userSegments(u.interests, { names: ['shoes'], vectors: Float32Array.from({ length: 128 }, () => 1 / Math.sqrt(128)), dim: 128 });
    s.commit(u);
    expect(u.interests).toHaveLength(1);
    expect(u.lastSegments).toEqual([{ name: 'shoes', weight: 1 }]);
    expect(s.bytes).toBe(stateBytes(u));
    expect(s.bytes).toBeLessThanOrEqual(1024);
    expect(s.bytes).toBeGreaterThan(512 + 200); // the vector and a real overhead, not just the floats
  });

  it('counts bytes again on commit, and evicts the least recent users beyond maxBytes', () => {
    const s = store({ dim: 128, maxEntries: 1000, maxBytes: 10_000 });
    const u = s.getOrCreate('a', 0);
    // A new user is counted as holding the interest its first event will give it.
    expect(s.bytes).toBe(stateBytes(u) + INTEREST_OVERHEAD_BYTES + 512);
    userWith(s, 'a', 3);
    expect(s.bytes).toBe(stateBytes(u));
    expect(s.bytes).toBeGreaterThanOrEqual(3 * (INTEREST_OVERHEAD_BYTES + 512));
    for (let i = 0; i < 20; i++) userWith(s, `u${i}`, 3, 0, i);
    expect(s.bytes).toBeLessThanOrEqual(10_000);
    expect(s.size).toBeLessThan(21);
    expect(s.get('a')).toBeUndefined();
    expect(s.get('u19')).toBeDefined();
    // Evicted users' vectors went back to the pool.
    expect((s.vectors as VectorPool).inUse).toBe([...s.entries()].reduce((n, [, st]) => n + st.interests.length, 0));
  });

  it('counts pending event ids, which grow while outputs are rate-limited', () => {
    const s = store();
    const u = userWith(s, 'a', 1);
    const before = s.bytes;
    u.pendingEventIds = Array.from({ length: 10 }, (_, i) => `event-${i}`);
    s.commit(u);
    expect(s.bytes).toBeGreaterThan(before + 10 * 14);
  });

  it('a state evicted meanwhile is not brought back by commit', () => {
    const s = store({ maxEntries: 1 });
    const a = userWith(s, 'a', 1);
    userWith(s, 'b', 1);
    expect(s.get('a')).toBeUndefined();
    s.commit(a);
    expect(s.get('a')).toBeUndefined();
    expect(s.size).toBe(1);
  });

  it('sets aside a user evicted with events waiting, off the pool, until emitted() lets it go', () => {
    const s = store({ maxEntries: 1 });
    const a = userWith(s, 'a', 2);
    a.pendingEventIds = ['a1'];
    s.commit(a);
    const vector = Array.from(a.interests[0]!.vector);
    userWith(s, 'b', 1); // evicts a
    expect(s.size).toBe(1);
    expect(s.get('a')).toBe(a);
    expect(s.isEvicted(a)).toBe(true);
    expect(s.evictedPending).toBe(1);
    expect([...s.pendingUsers()]).toEqual([a]);
    // Its vectors left the pool (whose slots b may now use) with their values.
    expect((s.vectors as VectorPool).inUse).toBe(1);
    expect(Array.from(a.interests[0]!.vector)).toEqual(vector);
    // Still waiting: emitted() keeps it; once its events are out, it goes.
    s.emitted('a');
    expect(s.get('a')).toBe(a);
    a.pendingEventIds = NONE;
    s.commit(a);
    s.emitted('a');
    expect(s.get('a')).toBeUndefined();
    expect(s.evictedPending).toBe(0);
    expect([...s.pendingUsers()]).toEqual([]);
  });

  it('a user set aside is dropped by delete and dropPartitions, and replaced by put', () => {
    const s = store({ maxEntries: 1 });
    const aside = (userId: string, partition: number): UserState => {
      const u = userWith(s, userId, 1, partition);
      u.pendingEventIds = [`${userId}1`];
      s.commit(u);
      userWith(s, `${userId}-next`, 1, partition); // evicts it
      expect(s.isEvicted(u)).toBe(true);
      return u;
    };
    aside('a', 0);
    expect(s.delete('a')).toBe(true);
    expect(s.get('a')).toBeUndefined();
    aside('b', 1);
    expect(s.dropPartitions(new Set([0]))).toBe(2); // b, and b-next held in the LRU
    expect(s.get('b')).toBeUndefined();
    const c = aside('c', 0);
    s.put({ ...c, interests: [], pendingEventIds: NONE });
    expect(s.isEvicted(s.get('c')!)).toBe(false);
    expect(s.evictedPending).toBe(0);
  });

  it('drops a user idle longer than ttlMs', async () => {
    const s = store({ ttlMs: 20 });
    const u = s.getOrCreate('a', 0);
    await new Promise((r) => setTimeout(r, 80));
    expect(s.get('a')).toBeUndefined();
    expect(s.getOrCreate('a', 0)).not.toBe(u);
  });

  it('dropPartitions drops the users of partitions not kept and says how many', () => {
    const s = store({ maxEntries: 100 });
    for (let i = 0; i < 30; i++) userWith(s, `u${i}`, 1, i % 3);
    expect(s.dropPartitions(new Set([0, 2]))).toBe(10);
    expect(s.size).toBe(20);
    expect([...s.entries()].every(([, u]) => u.partition !== 1)).toBe(true);
    expect(s.dropPartitions(new Set([0, 2]))).toBe(0);
    expect(s.dropPartitions(new Set())).toBe(20);
    expect(s.size).toBe(0);
    expect(s.bytes).toBe(0);
  });

  it('put copies a restored state in, replacing the one held; delete removes it', () => {
    const s = store();
    userWith(s, 'a', 2);
    const restored: UserState = {
      userId: 'a', partition: 1, interests: [{ vector: Float32Array.of(1, 0, 0, 0), strength: 2, asOf: T0, events: 3 }],
      latestEventTime: T0, pendingEventIds: ['e1'], lastEmittedAt: T0 - 1, updatedAt: T0, lastSegments: [{ name: 'shoes', weight: 1 }],
    };
    s.put(restored);
    const held = s.get('a')!;
    expect(held.interests).toHaveLength(1);
    expect(held.interests[0]!.vector).not.toBe(restored.interests[0]!.vector);
    expect(Array.from(held.interests[0]!.vector)).toEqual([1, 0, 0, 0]);
    expect((s.vectors as VectorPool).inUse).toBe(1);
    expect([...s.pendingUsers()].map((u) => u.userId)).toEqual(['a']);
    expect(() => s.put({ ...restored, interests: [{ vector: new Float32Array(3), strength: 1, asOf: T0, events: 1 }] })).toThrow(/4 values/);
    expect(s.delete('a')).toBe(true);
    expect(s.delete('a')).toBe(false);
    expect([...s.pendingUsers()]).toEqual([]);
  });

  it('indexes users with pending events as commits say', () => {
    const s = store({ maxEntries: 10 });
    const a = userWith(s, 'a', 1);
    const b = userWith(s, 'b', 1);
    a.pendingEventIds = ['x'];
    b.pendingEventIds = ['y'];
    s.commit(a);
    s.commit(b);
    expect([...s.pendingUsers()].map((u) => u.userId).sort()).toEqual(['a', 'b']);
    a.pendingEventIds = NONE;
    s.commit(a);
    expect([...s.pendingUsers()].map((u) => u.userId)).toEqual(['b']);
  });

  it('a snapshot (a changelog state change) stays as it was taken when the user changes, leaves, and its memory goes to others', async () => {
    const codec = new UserStateCodec(new AvroCodec(), { space: 's', dim: 4, maxInterests: 3 });
    const s = store({ maxEntries: 2 });
    const a = userWith(s, 'a', 2, 0, 7);
    const snap = s.snapshot(a);
    const vectors = snap.interests.map((i) => Array.from(i.vector));
    const value = codec.encode(snap);
    // The user changes: its vectors move and it gets a third interest.
    const rand = seededRandom(99);
    for (let k = 0; k < 5; k++) applyEvent(a, unitVector(rand, 4), 0, 2, T0 + k * H, params, s.vectors);
    s.commit(a);
    const later = s.snapshot(a); // a second snapshot, next to the first in memory
    expect(later.interests.map((i) => Array.from(i.vector))).not.toEqual(vectors);
    // It leaves memory; after the current run its pool slots go to new users, whose events fill them.
    userWith(s, 'b', 3, 0, 8);
    userWith(s, 'c', 3, 0, 9);
    expect(s.get('a')).toBeUndefined();
    await Promise.resolve();
    userWith(s, 'd', 3, 0, 10);
    userWith(s, 'e', 3, 0, 11);
    expect(snap.interests.map((i) => Array.from(i.vector))).toEqual(vectors);
    expect(codec.encode(snap).equals(value)).toBe(true);
  });
});

describe('UserStateCodec', () => {
  const avro = new AvroCodec();
  const space = 'default-v1-abc/concat-f4';
  const codec = new UserStateCodec(avro, { space, dim: 4, maxInterests: 3 });
  const interest = (v: number[], strength: number, events = 1): Interest => ({ vector: Float32Array.from(v), strength, asOf: T0 + 5, events });
  const state: UserState = {
    userId: 'user-42-用户',
    partition: 7,
    interests: [interest([0.1, -0.2, 0.3, 1e-30], 0.75), interest([1, 2, 3, 4], 3.5, 9)],
    latestEventTime: T0 + 5,
    pendingEventIds: ['e1', 'e2'],
    lastEmittedAt: T0 - 100,
    updatedAt: T0 + 10,
    lastSegments: [{ name: 'shoes', weight: 0.75 }, { name: 'phones', weight: 0.25 }],
  };

  it('round-trips a state (interests strongest first, vectors bit for bit)', () => {
    const value = codec.encode(state);
    expect(value[0]).toBe(0);
    expect(value.readUInt32BE(1)).toBe(8);
    const back = codec.decode(value)!;
    expect(back.interests.map((i) => Array.from(i.vector))).toEqual([Array.from(state.interests[1]!.vector), Array.from(state.interests[0]!.vector)]);
    expect(back.interests.map((i) => [i.strength, i.asOf, i.events])).toEqual([[3.5, T0 + 5, 9], [0.75, T0 + 5, 1]]);
    expect({ ...back, interests: [] }).toEqual({ ...state, interests: [] });
  });

  it('writes vectors as float32 little-endian bytes', () => {
    const value = codec.encode({ ...state, interests: [interest([1, 0, 0, -2], 1)] });
    expect(value.includes(Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0]))).toBe(true);
  });

  it('restores as null (a fresh user), never throws: another space, another width, a tombstone, garbage', () => {
    const discarded: string[] = [];
    const strict = new UserStateCodec(avro, { space, dim: 4, maxInterests: 3, onDiscard: (u, why) => discarded.push(`${u}: ${why}`) });
    expect(strict.decode(new UserStateCodec(avro, { space: 'default-v1-abc/average-f4', dim: 4, maxInterests: 3 }).encode(state))).toBeNull();
    expect(strict.decode(new UserStateCodec(avro, { space, dim: 2, maxInterests: 3 }).encode({ ...state, interests: [interest([1, 2], 1)] }))).toBeNull();
    expect(strict.decode(null)).toBeNull();
    expect(strict.decode(Buffer.from('not avro'))).toBeNull();
    expect(strict.decode(codec.encode(state).subarray(0, 20))).toBeNull();
    expect(discarded).toEqual([
      'user-42-用户: space default-v1-abc/average-f4, not default-v1-abc/concat-f4',
      'user-42-用户: vector of 2 values, not 4',
      expect.stringMatching(/^undefined: unreadable/),
      expect.stringMatching(/^undefined: unreadable/),
    ]);
  });

  it('keeps the strongest K when K was lowered since', () => {
    const one = new UserStateCodec(avro, { space, dim: 4, maxInterests: 1 });
    expect(one.decode(codec.encode(state))!.interests.map((i) => i.strength)).toEqual([3.5]);
  });

  it('restores through the store (a round trip of a real user)', () => {
    const s = store();
    const u = userWith(s, 'u', 2);
    const back = codec.decode(codec.encode(u))!;
    const fresh = store();
    fresh.put(back);
    const held = fresh.get('u')!;
    expect(held.interests.map((i) => Array.from(i.vector)).sort()).toEqual(u.interests.map((i) => Array.from(i.vector)).sort());
  });
});

describe('segments', () => {
  // Three categories on the axes of a 4-d space.
  const c: Centroids = { names: ['shoes', 'phones', 'books'], vectors: Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]), dim: 4 };
  const at = (v: number[], strength: number): Interest => ({ vector: Float32Array.from(v), strength, asOf: T0, events: 1 });

  it('names each interest by its nearest centroid, merges names, shares of strength, strongest first', () => {
    const segs = userSegments([at([0.9, 0.1, 0, 0], 1), at([0.1, 2, 0.2, 0], 2), at([1, 0, 0.3, 0], 1)], c);
    expect(segs).toEqual([{ name: 'phones', weight: 0.5 }, { name: 'shoes', weight: 0.5 }]);
    expect(userSegments([at([0, 0, 1, 0], 3)], c)).toEqual([{ name: 'books', weight: 1 }]);
    expect(Object.isFrozen(userSegments([at([0, 0, 1, 0], 3)], c))).toBe(true); // shared list
    expect(userSegments([], c)).toEqual([]);
    expect(userSegments([at([1, 0, 0, 0], 1)], { names: [], vectors: new Float32Array(0), dim: 4 })).toEqual([]);
  });

  it(`keeps the ${MAX_SEGMENTS} strongest`, () => {
    const names = Array.from({ length: 8 }, (_, i) => `cat${i}`);
    const vectors = new Float32Array(8 * 8);
    for (let i = 0; i < 8; i++) vectors[i * 8 + i] = 1;
    const interests = names.map((_, i) => at(Array.from({ length: 8 }, (_, j) => (j === i ? 1 : 0)), i + 1));
    const segs = userSegments(interests, { names, vectors, dim: 8 });
    expect(segs.map((g) => g.name)).toEqual(['cat7', 'cat6', 'cat5', 'cat4', 'cat3']);
    expect(segs[0]!.weight).toBeCloseTo(8 / 36, 4);
  });

  it('changed: a new name among the top 3, or a weight moved by more than 0.1', () => {
    const a = [{ name: 'shoes', weight: 0.5 }, { name: 'phones', weight: 0.3 }, { name: 'books', weight: 0.2 }];
    expect(segmentsChanged([], a)).toBe(true);
    expect(segmentsChanged(a, a)).toBe(false);
    expect(segmentsChanged(a, [a[1]!, a[0]!, a[2]!])).toBe(false); // same set, same weights
    expect(segmentsChanged(a, [{ name: 'shoes', weight: 0.45 }, { name: 'phones', weight: 0.35 }, { name: 'books', weight: 0.2 }])).toBe(false);
    expect(segmentsChanged(a, [{ name: 'shoes', weight: 0.62 }, { name: 'phones', weight: 0.2 }, { name: 'books', weight: 0.18 }])).toBe(true);
    expect(segmentsChanged(a, [{ name: 'shoes', weight: 0.5 }, { name: 'phones', weight: 0.3 }, { name: 'toys', weight: 0.2 }])).toBe(true);
    expect(segmentsChanged(a, [...a, { name: 'toys', weight: 0.05 }])).toBe(false); // a fourth name, small
    expect(segmentsChanged(a, [])).toBe(true);
  });
});
