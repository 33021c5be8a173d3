/**
 * A small, stable string hash. The default text and click encoders map tokens and ids to
 * embedding rows with it, and the processor derives output ids from it: changing its values
 * changes every model's inputs (bump GENERATOR_REVISION in src/inference/models/default-models.ts)
 * and every output id.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

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

/** FNV-1a over UTF-16 code units, then fmix32. Unsigned 32-bit result. */
export function hash32(s: string, seed = 0): number {
  let h = basis(seed);
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  }
  return fmix32(h);
}
