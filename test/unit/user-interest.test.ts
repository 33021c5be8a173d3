import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/util/random.js';
import { applyEvent, newInterest } from '../../src/state/user-interest.js';
import { UserStateStore } from '../../src/state/user-state-store.js';

const H = 3_600_000; // one hour half-life
const T0 = Date.UTC(2024, 0, 1);

/** Standard basis vector e_i of length dim. */
function basis(dim: number, i: number): Float32Array {
  const v = new Float32Array(dim);
  v[i] = 1;
  return v;
}

interface Ev {
  emb: Float32Array;
  weight: number;
  t: number;
}

function randomEvents(seed: number, count: number, dim: number, spanMs: number): Ev[] {
  const rand = seededRandom(seed);
  return Array.from({ length: count }, () => ({
    emb: Float32Array.from({ length: dim }, () => rand() * 2 - 1),
    weight: 0.5 + rand() * 2,
    t: T0 + Math.floor(rand() * spanMs),
  }));
}

function run(events: Ev[], dim: number, halfLife = H) {
  const s = newInterest(dim);
  for (const e of events) applyEvent(s, e.emb, 0, e.weight, e.t, halfLife);
  return s;
}

describe('applyEvent: decay on event time', () => {
  it('a new interest is empty and not yet anchored in time', () => {
    const s = newInterest(4);
    expect(Array.from(s.vector)).toEqual([0, 0, 0, 0]);
    expect(s.events).toBe(0);
    expect(s.asOf).toBe(Number.NEGATIVE_INFINITY);
  });

  it('the first event is added at full weight, however late in time, and sets asOf', () => {
    const s = newInterest(3);
    applyEvent(s, Float32Array.from([1, 2, 3]), 0, 2, T0, H);
    expect(Array.from(s.vector)).toEqual([2, 4, 6]);
    expect(s.asOf).toBe(T0);
    expect(s.events).toBe(1);
  });

  it('one half-life of event time halves the old contribution', () => {
    const s = newInterest(2);
    applyEvent(s, basis(2, 0), 0, 1, T0, H);
    applyEvent(s, basis(2, 1), 0, 1, T0 + H, H);
    expect(s.vector[0]).toBe(0.5);
    expect(s.vector[1]).toBe(1);
    expect(s.asOf).toBe(T0 + H);
    expect(s.events).toBe(2);
  });

  it('two half-lives quarter it; an arbitrary gap decays by 2^(-gap/H)', () => {
    const s = newInterest(3);
    applyEvent(s, basis(3, 0), 0, 4, T0, H);
    applyEvent(s, basis(3, 1), 0, 1, T0 + 2 * H, H);
    expect(s.vector[0]).toBe(1); // 4 * 1/4
    applyEvent(s, basis(3, 2), 0, 1, T0 + 2 * H + 1234567, H);
    const keep = Math.pow(2, -1234567 / H);
    expect(s.vector[0]).toBeCloseTo(1 * keep, 6);
    expect(s.vector[1]).toBeCloseTo(1 * keep, 6);
    expect(s.vector[2]).toBe(1);
  });

  it('events at the same time add without decay', () => {
    const s = newInterest(2);
    applyEvent(s, basis(2, 0), 0, 1, T0, H);
    applyEvent(s, basis(2, 0), 0, 1, T0, H);
    applyEvent(s, basis(2, 1), 0, 3, T0, H);
    expect(Array.from(s.vector)).toEqual([2, 3]);
    expect(s.asOf).toBe(T0);
  });

  it('the half-life parameter scales the decay', () => {
    const a = newInterest(1);
    applyEvent(a, basis(1, 0), 0, 1, T0, H);
    applyEvent(a, new Float32Array(1), 0, 1, T0 + H, 2 * H); // half a half-life
    expect(a.vector[0]).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it('reads the embedding at the given offset of a packed array', () => {
    const packed = Float32Array.from([9, 9, 1, 2, 3, 9]);
    const s = newInterest(3);
    applyEvent(s, packed, 2, 1, T0, H);
    expect(Array.from(s.vector)).toEqual([1, 2, 3]);
  });

  it('a late event is weighted by its own age and does not rewind asOf', () => {
    const s = newInterest(3);
    applyEvent(s, basis(3, 0), 0, 1, T0, H);
    applyEvent(s, basis(3, 1), 0, 1, T0 + 2 * H, H);
    expect(s.vector[0]).toBe(0.25);
    // One half-life older than asOf: arrives at half weight; nothing else changes.
    applyEvent(s, basis(3, 2), 0, 1, T0 + H, H);
    expect(s.asOf).toBe(T0 + 2 * H);
    expect(s.vector[0]).toBe(0.25);
    expect(s.vector[1]).toBe(1);
    expect(s.vector[2]).toBe(0.5);
    expect(s.events).toBe(3);
    // A later in-order event decays everything, the late one included, from asOf.
    applyEvent(s, basis(3, 0), 0, 0, T0 + 3 * H, H);
    expect(Array.from(s.vector)).toEqual([0.125, 0.5, 0.25]);
    expect(s.asOf).toBe(T0 + 3 * H);
  });

  it('a late event gives the same vector as if it had arrived in order', () => {
    const inOrder = newInterest(2);
    applyEvent(inOrder, basis(2, 0), 0, 1, T0, H);
    applyEvent(inOrder, basis(2, 1), 0, 1, T0 + H, H);
    applyEvent(inOrder, basis(2, 0), 0, 2, T0 + 3 * H, H);
    const late = newInterest(2);
    applyEvent(late, basis(2, 0), 0, 1, T0, H);
    applyEvent(late, basis(2, 0), 0, 2, T0 + 3 * H, H);
    applyEvent(late, basis(2, 1), 0, 1, T0 + H, H); // late by 2 half-lives
    expect(late.asOf).toBe(inOrder.asOf);
    expect(late.vector[0]).toBeCloseTo(inOrder.vector[0]!, 6);
    expect(late.vector[1]).toBeCloseTo(inOrder.vector[1]!, 6);
    expect(late.vector[1]).toBe(0.25);
  });

  it('any order of the same events gives sum(w * 2^(-(T - t)/H) * e), T the latest event time', () => {
    const dim = 8;
    const events = randomEvents(11, 40, dim, 10 * H);
    const T = Math.max(...events.map((e) => e.t));
    const expected = new Float64Array(dim);
    for (const e of events) {
      const f = e.weight * Math.pow(2, -(T - e.t) / H);
      for (let i = 0; i < dim; i++) expected[i]! += f * e.emb[i]!;
    }
    const rand = seededRandom(5);
    for (let trial = 0; trial < 5; trial++) {
      const shuffled = [...events];
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      const s = run(shuffled, dim);
      expect(s.asOf).toBe(T);
      expect(s.events).toBe(events.length);
      for (let i = 0; i < dim; i++) expect(s.vector[i]).toBeCloseTo(expected[i]!, 4);
    }
  });

  it('the same events in the same order always give the same vector, bit for bit', () => {
    const dim = 16;
    const events = randomEvents(123, 200, dim, 48 * H);
    const a = run(events, dim);
    const b = run(events, dim);
    const c = run(randomEvents(123, 200, dim, 48 * H), dim);
    expect(Buffer.from(a.vector.buffer).equals(Buffer.from(b.vector.buffer))).toBe(true);
    expect(Buffer.from(a.vector.buffer).equals(Buffer.from(c.vector.buffer))).toBe(true);
    expect(a.asOf).toBe(b.asOf);
    expect(a.events).toBe(200);
    // Sanity: the result depends on the events (a different seed gives a different vector).
    const d = run(randomEvents(124, 200, dim, 48 * H), dim);
    expect(Buffer.from(a.vector.buffer).equals(Buffer.from(d.vector.buffer))).toBe(false);
  });

  it('does not depend on wall-clock time', async () => {
    const events = randomEvents(7, 20, 4, H);
    const a = run(events, 4);
    await new Promise((r) => setTimeout(r, 20));
    const b = run(events, 4);
    expect(Array.from(a.vector)).toEqual(Array.from(b.vector));
  });
});

describe('UserStateStore', () => {
  const opts = { dim: 4, maxEntries: 3, ttlMs: 3_600_000 };

  it('creates an empty interest on first sight and returns the same state afterwards', () => {
    const store = new UserStateStore(opts);
    expect(store.peek('u1')).toBeUndefined();
    const s = store.getOrCreate('u1');
    expect(s.vector).toHaveLength(4);
    expect(s.events).toBe(0);
    applyEvent(s, Float32Array.from([1, 0, 0, 0]), 0, 1, T0, H);
    expect(store.getOrCreate('u1')).toBe(s);
    expect(store.peek('u1')?.events).toBe(1);
    expect(store.size).toBe(1);
    expect(store.dim).toBe(4);
  });

  it('evicts the least recently used user beyond maxEntries', () => {
    const store = new UserStateStore(opts);
    store.getOrCreate('a');
    store.getOrCreate('b');
    store.getOrCreate('c');
    store.getOrCreate('a'); // a is now the most recent; b the least
    store.getOrCreate('d');
    expect(store.size).toBe(3);
    expect(store.peek('b')).toBeUndefined();
    expect(store.peek('a')).toBeDefined();
    expect(store.peek('c')).toBeDefined();
    expect(store.peek('d')).toBeDefined();
    // Recency order now: c (least), a, d.
    store.getOrCreate('e');
    expect(store.peek('c')).toBeUndefined();
    expect(['a', 'd', 'e'].every((u) => store.peek(u) !== undefined)).toBe(true);
  });

  it('peek does not count as use', () => {
    const store = new UserStateStore(opts);
    store.getOrCreate('a');
    store.getOrCreate('b');
    store.getOrCreate('c');
    expect(store.peek('a')).toBeDefined(); // a stays least recent
    store.getOrCreate('d');
    expect(store.peek('a')).toBeUndefined();
    expect(store.peek('b')).toBeDefined();
  });

  it('an evicted user comes back empty', () => {
    const store = new UserStateStore({ ...opts, maxEntries: 1 });
    const a = store.getOrCreate('a');
    applyEvent(a, Float32Array.from([1, 1, 1, 1]), 0, 1, T0, H);
    store.getOrCreate('b');
    expect(store.size).toBe(1);
    const again = store.getOrCreate('a');
    expect(again).not.toBe(a);
    expect(again.events).toBe(0);
    expect(Array.from(again.vector)).toEqual([0, 0, 0, 0]);
  });

  it('keeps exactly maxEntries most recent users under random access (LRU model)', () => {
    const rand = seededRandom(31337);
    const max = 10;
    const store = new UserStateStore({ ...opts, maxEntries: max });
    const lru: string[] = []; // least recent first
    for (let i = 0; i < 2000; i++) {
      const u = `u${Math.floor(rand() * 25)}`;
      store.getOrCreate(u);
      const at = lru.indexOf(u);
      if (at >= 0) lru.splice(at, 1);
      lru.push(u);
      if (lru.length > max) lru.shift();
      if (i % 50 === 0) {
        expect(store.size).toBe(lru.length);
        for (let j = 0; j < 25; j++) expect(store.peek(`u${j}`) !== undefined, `u${j} at step ${i}`).toBe(lru.includes(`u${j}`));
      }
    }
  });

  it('delete removes a user', () => {
    const store = new UserStateStore(opts);
    store.getOrCreate('a');
    expect(store.delete('a')).toBe(true);
    expect(store.delete('a')).toBe(false);
    expect(store.peek('a')).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('drops a user idle longer than ttlMs', async () => {
    const store = new UserStateStore({ ...opts, ttlMs: 20 });
    const s = store.getOrCreate('a');
    s.events = 5;
    await new Promise((r) => setTimeout(r, 80));
    const again = store.getOrCreate('a');
    expect(again).not.toBe(s);
    expect(again.events).toBe(0);
  });
});

describe('applyEvent into one modality block', () => {
  it('decays every block but adds only into its own', () => {
    const s = newInterest(6);
    applyEvent(s, new Float32Array([1, 1, 1, 1, 1, 1]), 0, 1, T0, H);
    applyEvent(s, new Float32Array([4, 8]), 0, 1, T0 + H, H, 2, 2);
    // One half-life later the first event counts half everywhere; the second lands in [2, 4) only.
    expect([...s.vector]).toEqual([0.5, 0.5, 4.5, 8.5, 0.5, 0.5]);
    expect(s.asOf).toBe(T0 + H);
  });
});
