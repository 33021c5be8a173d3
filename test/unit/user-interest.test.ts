import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/util/random.js';
import { applyEvent, FORGET_BELOW, strongestOfCategory, type InterestParams } from '../../src/state/user-interest.js';
import type { Interest } from '../../src/domain/user-state.js';
import { heapAllocator, VectorPool } from '../../src/state/vector-pool.js';

const H = 3_600_000; // one hour half-life
const T0 = Date.UTC(2024, 0, 1);

/** Standard basis vector e_i of length dim. */
function basis(dim: number, i: number): Float32Array {
  const v = new Float32Array(dim);
  v[i] = 1;
  return v;
}

function unit(v: number[]): Float32Array {
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
}

/** K = 1: one blended interest, the classic decayed sum. */
const ONE: InterestParams = { halfLifeMs: H, maxInterests: 1, newInterestThreshold: 0.5 };
const THREE: InterestParams = { halfLifeMs: H, maxInterests: 3, newInterestThreshold: 0.5 };

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

/** A user's interests, as applyEvent sees them. */
interface User {
  interests: Interest[];
}

function run(events: Ev[], dim: number, p = ONE): Interest[] {
  const u: User = { interests: [] };
  const mem = heapAllocator(dim);
  for (const e of events) applyEvent(u, e.emb, 0, e.weight, e.t, p, mem);
  return u.interests;
}

function apply(u: User, x: Float32Array, w: number, t: number, p = ONE, offset = 0): number {
  return applyEvent(u, x, offset, w, t, p, heapAllocator(x.length - offset));
}

describe('applyEvent with one interest (K = 1): decay on event time', () => {
  it('the first event starts the interest at full weight and sets asOf', () => {
    const u: User = { interests: [] };
    expect(apply(u, Float32Array.from([1, 2, 3]), 2, T0)).toBe(0);
    expect(u.interests).toHaveLength(1);
    expect(Array.from(u.interests[0]!.vector)).toEqual([2, 4, 6]);
    expect(u.interests[0]!.strength).toBe(2);
    expect(u.interests[0]!.asOf).toBe(T0);
    expect(u.interests[0]!.events).toBe(1);
  });

  it('one half-life of event time halves the old contribution, vector and strength', () => {
    const u: User = { interests: [] };
    apply(u, basis(2, 0), 1, T0);
    apply(u, basis(2, 1), 1, T0 + H);
    expect(u.interests).toHaveLength(1); // orthogonal, but K = 1 blends
    expect(Array.from(u.interests[0]!.vector)).toEqual([0.5, 1]);
    expect(u.interests[0]!.strength).toBe(1.5);
    expect(u.interests[0]!.asOf).toBe(T0 + H);
    expect(u.interests[0]!.events).toBe(2);
  });

  it('an arbitrary gap decays by 2^(-gap/H)', () => {
    const u: User = { interests: [] };
    apply(u, basis(3, 0), 4, T0);
    apply(u, basis(3, 1), 1, T0 + 2 * H);
    expect(u.interests[0]!.vector[0]).toBe(1); // 4 * 1/4
    apply(u, basis(3, 2), 1, T0 + 2 * H + 1234567);
    const keep = Math.pow(2, -1234567 / H);
    expect(u.interests[0]!.vector[0]).toBeCloseTo(keep, 6);
    expect(u.interests[0]!.vector[1]).toBeCloseTo(keep, 6);
    expect(u.interests[0]!.vector[2]).toBe(1);
    expect(u.interests[0]!.strength).toBeCloseTo(2 * keep + 1, 6);
  });

  it('reads the vector at the given offset of a packed array', () => {
    const packed = Float32Array.from([9, 9, 1, 2, 3, 9]);
    const u: User = { interests: [] };
    applyEvent(u, packed, 2, 1, T0, ONE, heapAllocator(3));
    expect(Array.from(u.interests[0]!.vector)).toEqual([1, 2, 3]);
  });

  it('a late event is weighted by its own age and does not rewind asOf', () => {
    const u: User = { interests: [] };
    apply(u, basis(3, 0), 1, T0);
    apply(u, basis(3, 1), 1, T0 + 2 * H);
    apply(u, basis(3, 2), 1, T0 + H); // one half-life late: half weight
    expect(u.interests[0]!.asOf).toBe(T0 + 2 * H);
    expect(Array.from(u.interests[0]!.vector)).toEqual([0.25, 1, 0.5]);
    expect(u.interests[0]!.strength).toBe(1.75);
    apply(u, basis(3, 0), 0, T0 + 3 * H); // weight 0: only time passes
    expect(Array.from(u.interests[0]!.vector)).toEqual([0.125, 0.5, 0.25]);
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
      const [s] = run(shuffled, dim);
      expect(s!.asOf).toBe(T);
      expect(s!.events).toBe(events.length);
      for (let i = 0; i < dim; i++) expect(s!.vector[i]).toBeCloseTo(expected[i]!, 4);
    }
  });

  it('the same events in the same order give the same state, bit for bit, whatever K', () => {
    const events = randomEvents(123, 200, 16, 48 * H);
    for (const p of [ONE, THREE]) {
      const a = run(events, 16, p);
      const b = run(randomEvents(123, 200, 16, 48 * H), 16, p);
      expect(a.length).toBe(b.length);
      a.forEach((x, k) => {
        expect(Buffer.from(x.vector.buffer).equals(Buffer.from(b[k]!.vector.buffer))).toBe(true);
        expect([x.strength, x.asOf, x.events]).toEqual([b[k]!.strength, b[k]!.asOf, b[k]!.events]);
      });
    }
  });
});

describe('applyEvent with several interests', () => {
  const shoes = unit([1, 0.1, 0, 0]);
  const shoes2 = unit([0.9, 0.2, 0.1, 0]);
  const phones = unit([0, 0, 1, 0.1]);
  const books = unit([0, 1, 0, 0.2]);
  const toys = unit([0, 0, 0.1, 1]);

  it('an event close to an interest joins it; a far one starts a new interest', () => {
    const u: User = { interests: [] };
    expect(apply(u, shoes, 1, T0, THREE)).toBe(0);
    expect(apply(u, shoes2, 2, T0, THREE)).toBe(0); // cosine ~0.98
    expect(apply(u, phones, 1, T0, THREE)).toBe(1); // cosine ~0
    expect(u.interests.map((i) => [i.strength, i.events])).toEqual([[3, 2], [1, 1]]);
    for (let j = 0; j < 4; j++) expect(u.interests[0]!.vector[j]).toBeCloseTo(shoes[j]! + 2 * shoes2[j]!, 6);
  });

  it('the threshold decides what is close enough', () => {
    const a = unit([1, 0]);
    const b = unit([1, 1]); // cosine 0.707
    const loose: User = { interests: [] };
    apply(loose, a, 1, T0, { ...THREE, newInterestThreshold: 0.7 });
    apply(loose, b, 1, T0, { ...THREE, newInterestThreshold: 0.7 });
    expect(loose.interests).toHaveLength(1);
    const strict: User = { interests: [] };
    apply(strict, a, 1, T0, { ...THREE, newInterestThreshold: 0.75 });
    apply(strict, b, 1, T0, { ...THREE, newInterestThreshold: 0.75 });
    expect(strict.interests).toHaveLength(2);
  });

  it('joins the nearest of several interests', () => {
    const u: User = { interests: [] };
    apply(u, shoes, 1, T0, THREE);
    apply(u, phones, 1, T0, THREE);
    apply(u, books, 1, T0, THREE);
    expect(apply(u, unit([0.1, 0.05, 1, 0]), 1, T0, THREE)).toBe(1);
  });

  it('drops the weakest (decayed) interest when K are held and a new one starts', () => {
    const u: User = { interests: [] };
    apply(u, shoes, 4, T0, THREE); // 4, decays to 1 two half-lives later
    apply(u, phones, 1.5, T0 + 2 * H, THREE);
    apply(u, books, 2, T0 + 2 * H, THREE);
    expect(u.interests.map((i) => i.strength)).toEqual([1, 1.5, 2]);
    apply(u, toys, 1, T0 + 2 * H, THREE);
    expect(u.interests).toHaveLength(3);
    // shoes (strength 1 after decay) went, though it had the largest weight at the time.
    const names = u.interests.map((i) => (i.vector[3]! > 0.9 ? 'toys' : i.vector[2]! > 0.9 ? 'phones' : i.vector[1]! > 0.9 ? 'books' : 'shoes'));
    expect(names).toEqual(['phones', 'books', 'toys']);
  });

  it('frees the dropped vector back to the pool', async () => {
    const pool = new VectorPool(4);
    const u: User = { interests: [] };
    const p = { ...THREE, maxInterests: 2 };
    applyEvent(u, shoes, 0, 1, T0, p, pool);
    applyEvent(u, phones, 0, 2, T0, p, pool);
    expect(pool.inUse).toBe(2);
    applyEvent(u, books, 0, 3, T0, p, pool);
    expect(pool.inUse).toBe(2);
  });

  it('K = 1 blends everything into one interest', () => {
    const u: User = { interests: [] };
    for (let k = 0; k < 4; k++) {
      apply(u, shoes, 1, T0 + k, ONE);
      apply(u, phones, 1, T0 + k, ONE);
    }
    expect(u.interests).toHaveLength(1);
    expect(u.interests[0]!.events).toBe(8);
  });

  it('a late event decays by its age, wherever it lands', () => {
    const u: User = { interests: [] };
    apply(u, shoes, 1, T0 + 2 * H, THREE);
    apply(u, phones, 2, T0 + H, THREE); // one half-life late: strength 1, at the user's time
    expect(u.interests[1]!.asOf).toBe(T0 + 2 * H);
    expect(u.interests[1]!.strength).toBe(1);
    apply(u, shoes2, 4, T0, THREE); // two half-lives late: joins shoes with weight 1
    expect(u.interests[0]!.strength).toBe(2);
    expect(u.interests[0]!.asOf).toBe(T0 + 2 * H);
  });

  it('forgets interests decayed below 2^-24 of the strongest weight (their float32 vectors would underflow)', () => {
    const u: User = { interests: [] };
    apply(u, shoes, 1, T0, THREE);
    apply(u, phones, 1, T0 + 23 * H, THREE);
    expect(u.interests).toHaveLength(2); // 2^-23 is still above the bar
    apply(u, books, 1, T0 + 25 * H, THREE);
    expect(u.interests).toHaveLength(2);
    expect(u.interests.every((i) => i.strength >= FORGET_BELOW)).toBe(true);
    expect(u.interests[0]!.vector[2]).toBeGreaterThan(0.2); // phones stays, shoes went
  });

  it('a zero weight or a zero vector changes nothing but the time', () => {
    const u: User = { interests: [] };
    expect(apply(u, shoes, 0, T0, THREE)).toBe(-1);
    expect(apply(u, new Float32Array(4), 1, T0, THREE)).toBe(-1);
    expect(u.interests).toEqual([]);
    apply(u, shoes, 2, T0, THREE);
    expect(apply(u, phones, 0, T0 + H, THREE)).toBe(-1);
    expect(u.interests).toHaveLength(1);
    expect(u.interests[0]!.strength).toBe(1);
  });
});

describe('routing by catalog category', () => {
  /** An interest whose vector's first value is its category (the route below reads it). */
  const of = (category: number, strength: number): Interest => ({ vector: Float32Array.of(category, 0), strength, asOf: T0, events: 1 });
  const routeOf = (routed: number[]) => (v: Float32Array, at: number): number => {
    routed.push(v[at]!);
    return v[at]!;
  };

  it('joins the strongest interest of the category, the first of equals, routing strongest first', () => {
    const interests = [of(1, 2), of(2, 5), of(1, 3), of(1, 3), of(3, 9)];
    const routed: number[] = [];
    expect(strongestOfCategory(interests, 1, routeOf(routed))).toBe(2);
    expect(routed).toEqual([3, 2, 1]); // strengths 9 (category 3), 5 (category 2), then the first 3: a match
    expect(strongestOfCategory(interests, 4, routeOf([]))).toBe(-1);
    expect(strongestOfCategory([of(1, Number.NaN), of(1, 1)], 1, routeOf([]))).toBe(1); // NaN never wins
    expect(strongestOfCategory([of(1, Number.NaN)], 1, routeOf([]))).toBe(-1);
  });

  it('finds what a scan of every interest finds, for any strengths and categories', () => {
    const rand = seededRandom(4242);
    for (let trial = 0; trial < 2000; trial++) {
      const n = 1 + Math.floor(rand() * 40); // above 32 too (the scan without a bit mask)
      const interests = Array.from({ length: n }, () => of(Math.floor(rand() * 4), Math.floor(rand() * 6) / 2));
      const category = Math.floor(rand() * 4);
      let scan = -1;
      for (let k = 0; k < n; k++) if (interests[k]!.vector[0] === category && interests[k]!.strength > (scan < 0 ? Number.NEGATIVE_INFINITY : interests[scan]!.strength)) scan = k;
      expect(strongestOfCategory(interests, category, routeOf([])), `trial ${trial}`).toBe(scan);
    }
  });
});

describe('VectorPool', () => {
  it('hands out zeroed views of one slab, and reuses a freed slot only after the current synchronous run', async () => {
    const pool = new VectorPool(8);
    const a = pool.alloc();
    const b = pool.alloc();
    expect(a.buffer).toBe(b.buffer);
    expect(a.length).toBe(8);
    a.fill(7);
    pool.free(a);
    pool.free(a); // a second free is ignored
    const c = pool.alloc();
    expect(c.byteOffset).not.toBe(a.byteOffset); // a may still be read by whoever dropped it
    expect(a[0]).toBe(7);
    await Promise.resolve();
    const d = pool.alloc();
    expect(d.byteOffset).toBe(a.byteOffset);
    expect(Array.from(d)).toEqual(Array(8).fill(0));
    expect(pool.inUse).toBe(3);
    pool.free(new Float32Array(8)); // not from the pool: ignored
    expect(pool.inUse).toBe(3);
  });

  it('grows by slabs', () => {
    const pool = new VectorPool(1024);
    const vs = Array.from({ length: 600 }, () => pool.alloc());
    expect(new Set(vs.map((v) => v.buffer)).size).toBeGreaterThan(1);
    expect(pool.inUse).toBe(600);
    expect(pool.reservedBytes).toBeGreaterThanOrEqual(600 * 4096);
  });
});
