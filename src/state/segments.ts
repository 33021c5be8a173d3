/**
 * Interest segments for analysts: each interest is named after the nearest category centroid,
 * and a user's segments are those names with their share of the user's interest strength.
 */
import { totalStrength, type Interest, type Segment } from '../domain/user-state.js';
import { dot } from '../util/vectors.js';

/** One unit vector per category, in the fused space (scoring/category-centroids.ts). */
export interface Centroids {
  readonly names: readonly string[];
  /** names.length rows of dim values. */
  readonly vectors: Float32Array;
  readonly dim: number;
}

export const MAX_SEGMENTS = 5;
/** A change among the strongest this many names is a change worth emitting. */
export const TOP_NAMES = 3;
/** So is a weight that moved more than this since the last emission. */
export const WEIGHT_CHANGE = 0.1;

/** Index of the centroid nearest to v[at, at + dim) (by cosine: the centroids are unit norm); -1 if none. */
export function nearestCentroid(v: Float32Array, c: Centroids, at = 0): number {
  let best = -1;
  let bestDot = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < c.names.length; k++) {
    const d = dot(v, at, c.vectors, k * c.dim, c.dim);
    if (d > bestDot) {
      bestDot = d;
      best = k;
    }
  }
  return best;
}

/** Per interest, its nearest centroid (scratch of userSegments, reused: it runs for every user a chunk touches). */
let categoryOf = new Int32Array(8);

/** Category name -> share of total strength (interests of one category merged), strongest first, at most MAX_SEGMENTS. */
export function userSegments(interests: readonly Interest[], c: Centroids): readonly Segment[] {
  const total = totalStrength({ interests });
  if (!(total > 0) || c.names.length === 0) return [];
  if (categoryOf.length < interests.length) categoryOf = new Int32Array(interests.length);
  let one = true;
  for (let k = 0; k < interests.length; k++) {
    categoryOf[k] = nearestCentroid(interests[k]!.vector, c);
    one &&= categoryOf[k] === categoryOf[0];
  }
  // The commonest case, every interest of one category (its share is then exactly 1), needs no
  // Map and no list: the shared whole-category one.
  if (one) return categoryOf[0]! >= 0 ? whole(c.names[categoryOf[0]!]!) : [];
  const byName = new Map<string, number>();
  for (let k = 0; k < interests.length; k++) {
    if (categoryOf[k]! < 0) continue; // no nearest (a vector of NaNs): named nothing
    const name = c.names[categoryOf[k]!]!;
    byName.set(name, (byName.get(name) ?? 0) + interests[k]!.strength);
  }
  const list = [...byName]
    .map(([name, s]) => ({ name, weight: Math.round((s / total) * 1e4) / 1e4 }))
    .sort((a, b) => b.weight - a.weight || (a.name < b.name ? -1 : 1))
    .slice(0, MAX_SEGMENTS);
  return list.length === 1 && list[0]!.weight === 1 ? whole(list[0]!.name) : list;
}

/** True when the strongest names changed, or a weight moved more than WEIGHT_CHANGE. */
export function segmentsChanged(last: readonly Segment[], next: readonly Segment[]): boolean {
  if (last === next) return false; // the same shared list (see whole)
  const top = (l: readonly Segment[]) => l.slice(0, TOP_NAMES).map((g) => g.name).sort().join('\u0000');
  if (top(last) !== top(next)) return true;
  const before = new Map(last.map((g) => [g.name, g.weight]));
  const after = new Map(next.map((g) => [g.name, g.weight]));
  for (const name of new Set([...before.keys(), ...after.keys()])) {
    if (Math.abs((after.get(name) ?? 0) - (before.get(name) ?? 0)) > WEIGHT_CHANGE) return true;
  }
  return false;
}

/**
 * "All of one category" is the commonest list there is (every user with one interest): one frozen
 * list per name is shared by all of them instead of an array and an object per user.
 */
const WHOLE = new Map<string, readonly Segment[]>();
const MAX_SHARED = 10_000;

function whole(name: string): readonly Segment[] {
  let l = WHOLE.get(name);
  if (l) return l;
  if (WHOLE.size >= MAX_SHARED) return [{ name, weight: 1 }]; // not shared, so not frozen: counted per user
  l = Object.freeze([Object.freeze({ name, weight: 1 })]);
  WHOLE.set(name, l);
  return l;
}
