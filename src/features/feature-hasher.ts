/**
 * Feature hashing ("hashing trick"): a feature name maps to fixed positions in a D-dimensional
 * vector without any vocabulary, so users and ads featurised by different processes (or after a
 * restart) land in the same space. Everything here is allocation-free on the hot path.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

// Two fixed seeds give the two positions of a feature; changing them changes the model
// (bump HashedFeaturizer.modelVersion if you do).
const SEED_A = 0x9e3779b9;
const SEED_B = 0x85ebca6b;

/** murmur3 fmix32: FNV-1a alone mixes its high bits poorly; this avalanches every input bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Offset basis for a seed; seed 0 keeps plain FNV-1a. Mixed so nearby seeds are unrelated. */
function basis(seed: number): number {
  return seed === 0 ? FNV_OFFSET : (FNV_OFFSET ^ fmix32(seed >>> 0)) >>> 0;
}

const BASIS_A = basis(SEED_A);
const BASIS_B = basis(SEED_B);

/** FNV-1a over UTF-16 code units, then fmix32. Unsigned 32-bit result. */
export function hash32(s: string, seed = 0): number {
  let h = basis(seed);
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  }
  return fmix32(h);
}

// Reused result slots for hashPair (no per-call allocation).
let pairA = 0;
let pairB = 0;

/**
 * Hashes `prefix + key` under both seeds in one pass, without building the concatenated string
 * (the featurizer hashes "cat:" + id, "tok:" + token... on every event).
 */
function hashPair(prefix: string, key: string): void {
  let a = BASIS_A;
  let b = BASIS_B;
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix.charCodeAt(i);
    a = Math.imul(a ^ c, FNV_PRIME);
    b = Math.imul(b ^ c, FNV_PRIME);
  }
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, FNV_PRIME);
    b = Math.imul(b ^ c, FNV_PRIME);
  }
  pairA = fmix32(a);
  pairB = fmix32(b);
}

/**
 * Adds ±weight at two hashed positions of out[offset .. offset+dim). Two positions make a
 * collision between two features only a partial overlap; the random sign makes collisions cancel
 * in expectation instead of always inflating dot products.
 */
export function addHashedFeature(
  out: Float32Array,
  offset: number,
  dim: number,
  feature: string,
  weight: number,
): void {
  addPrefixedFeature(out, offset, dim, '', feature, weight);
}

/**
 * Same as addHashedFeature(out, offset, dim, prefix + key, weight), hashing without the concat.
 * Internal to src/features.
 */
export function addPrefixedFeature(
  out: Float32Array,
  offset: number,
  dim: number,
  prefix: string,
  key: string,
  weight: number,
): void {
  hashPair(prefix, key);
  // Position from the upper 31 bits, sign from the lowest bit: independent parts of the hash.
  const i1 = (pairA >>> 1) % dim;
  let i2 = (pairB >>> 1) % dim;
  // Same slot with opposite signs would erase the feature; move the second one deterministically.
  if (i2 === i1 && dim > 1) i2 = (i1 + 1) % dim;
  out[offset + i1]! += (pairA & 1) === 0 ? weight : -weight;
  out[offset + i2]! += (pairB & 1) === 0 ? weight : -weight;
}

/** Normalises v[offset .. offset+dim) to unit length in place; returns the norm before. */
export function l2normalize(v: Float32Array, offset: number, dim: number): number {
  let sum = 0;
  const end = offset + dim;
  for (let i = offset; i < end; i++) {
    const x = v[i]!;
    sum += x * x;
  }
  const norm = Math.sqrt(sum);
  // Zero (or denormal-small) vectors stay as they are: there is no direction to keep.
  if (norm < 1e-12) return norm;
  const inv = 1 / norm;
  for (let i = offset; i < end; i++) v[i]! *= inv;
  return norm;
}
