/**
 * Multi-interest update, in the spirit of PinnerSage: a user is a few interests (clusters of what
 * they engaged with) instead of one average that lands between shoes and phones and matches
 * neither. Decay runs on event time, not wall-clock time, so a replay of the same events gives the
 * same state.
 */
import type { Interest } from '../domain/user-state.js';
import { cosineToUnit } from '../util/vectors.js';
import type { VectorAllocator } from './vector-pool.js';

export interface InterestParams {
  readonly halfLifeMs: number;
  /** K: interests kept at most. 1 = one blended interest (every event joins it). */
  readonly maxInterests: number;
  /**
   * Without a catalog to route by category: an event whose cosine to every interest is below this
   * starts a new one.
   */
  readonly newInterestThreshold: number;
}

/**
 * An interest decayed below this share of the strongest weight around is forgotten: in float32
 * it can no longer move anything (2^-24 is float32's precision), and long idle users would
 * otherwise keep vectors that underflow to zero.
 */
export const FORGET_BELOW = 2 ** -24;

/**
 * Folds one event into a user's interests: fused unit vector x = vec[offset..offset+F), weight w, event
 * time t. Every interest is first decayed to T = max(t, their time); a late event (t < T) is
 * weighted by its own age instead of rewinding them. The event then joins the interest of its
 * category (`route(v, at)`: the catalog-category centroid nearest to v[at, at + F)) or, without a catalog, the interest
 * nearest by cosine; else it starts a new one (dropping the weakest when K are held). Returns the index of the interest it landed in (-1 when w or x is zero: nothing changes).
 */
export function applyEvent(
  user: { interests: Interest[] },
  vec: Float32Array,
  offset: number,
  w: number,
  t: number,
  p: InterestParams,
  mem: VectorAllocator,
  route?: (v: Float32Array, at: number) => number,
): number {
  const interests = user.interests;
  let T = t;
  for (const i of interests) if (i.asOf > T) T = i.asOf;
  const weight = w * decayFactor(T - t, p.halfLifeMs);
  let peak = weight;
  for (const i of interests) {
    decayTo(i, T, p.halfLifeMs);
    if (i.strength > peak) peak = i.strength;
  }
  forget(interests, peak * FORGET_BELOW, mem);

  if (!(weight > 0) || isZero(vec, offset, mem.dim)) return -1;

  let best = -1;
  let bestCos = Number.NEGATIVE_INFINITY;
  // With a catalog, route by category: the default encoders are not aligned across modalities, so
  // a click and an image view of shoes have a cosine near 0 in the fused space (different blocks),
  // yet both are nearest to the shoes ads' centroid. Without one, the nearest interest by cosine.
  const category = route && p.maxInterests > 1 ? route(vec, offset) : -1;
  if (category >= 0) {
    best = strongestOfCategory(interests, category, route!);
    if (best >= 0) bestCos = Number.POSITIVE_INFINITY; // same category: join it
  } else {
    for (let k = 0; k < interests.length; k++) {
      const v = interests[k]!.vector;
      const c = cosineToUnit(v, 0, vec, offset, v.length);
      if (c > bestCos) {
        bestCos = c;
        best = k;
      }
    }
  }
  // K = 1 is the classic single interest: everything blends into it.
  if (best >= 0 && (bestCos >= p.newInterestThreshold || p.maxInterests === 1)) {
    addInto(interests[best]!, vec, offset, weight);
    return best;
  }
  if (interests.length >= p.maxInterests) mem.free(interests.splice(weakest(interests), 1)[0]!.vector);
  const fresh: Interest = { vector: mem.alloc(), strength: 0, asOf: T, events: 0 };
  addInto(fresh, vec, offset, weight);
  // concat allocates the exact size; push() or a spread would reserve room for ~16 more (~130 bytes per user).
  user.interests = interests.concat(fresh);
  return interests.length;
}

/** Interests tried strongest first by a bit mask: up to this many (INTERESTS_PER_USER's bound). */
const MASKED_INTERESTS = 32;

/**
 * Index of the strongest interest routed to `category` (the first of equal strengths), or -1.
 * Routing an interest is the costly part (a dot product per catalog centroid), so interests are
 * tried strongest first and the first that matches is the answer: the same one a scan of all of
 * them finds, usually after one or two routings instead of one per interest.
 */
export function strongestOfCategory(interests: readonly Interest[], category: number, route: (v: Float32Array, at: number) => number): number {
  if (interests.length > MASKED_INTERESTS) {
    let best = -1;
    let strongest = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < interests.length; k++) {
      if (route(interests[k]!.vector, 0) === category && interests[k]!.strength > strongest) {
        strongest = interests[k]!.strength;
        best = k;
      }
    }
    return best;
  }
  let tried = 0;
  for (;;) {
    let next = -1;
    let strongest = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < interests.length; k++) {
      if ((tried & (1 << k)) === 0 && interests[k]!.strength > strongest) {
        strongest = interests[k]!.strength;
        next = k;
      }
    }
    if (next < 0) return -1; // every interest tried (or none with a comparable strength)
    if (route(interests[next]!.vector, 0) === category) return next;
    tried |= 1 << next;
  }
}

export function decayFactor(ageMs: number, halfLifeMs: number): number {
  return ageMs <= 0 ? 1 : Math.pow(2, -ageMs / halfLifeMs);
}

/** Decays vector and strength to event time T (never backwards). */
export function decayTo(i: Interest, T: number, halfLifeMs: number): void {
  if (T <= i.asOf) return;
  const keep = decayFactor(T - i.asOf, halfLifeMs);
  const v = i.vector;
  for (let j = 0; j < v.length; j++) v[j]! *= keep;
  i.strength *= keep;
  i.asOf = T;
}

/** Index of the interest with the lowest strength (the first of equals). */
export function weakest(interests: readonly Interest[]): number {
  let at = 0;
  for (let k = 1; k < interests.length; k++) if (interests[k]!.strength < interests[at]!.strength) at = k;
  return at;
}

function addInto(i: Interest, x: Float32Array, offset: number, weight: number): void {
  const v = i.vector;
  for (let j = 0; j < v.length; j++) v[j]! += weight * x[offset + j]!;
  i.strength += weight;
  i.events++;
}

function forget(interests: Interest[], below: number, mem: VectorAllocator): void {
  for (let k = interests.length - 1; k >= 0; k--) {
    if (interests[k]!.strength < below) mem.free(interests.splice(k, 1)[0]!.vector);
  }
}

function isZero(x: Float32Array, offset: number, n: number): boolean {
  for (let j = 0; j < n; j++) if (x[offset + j] !== 0) return false;
  return true;
}
