/**
 * Small graph fragments shared by the default models (built with GraphBuilder).
 */
import type { GraphBuilder } from './graph-builder.js';
import { gaussian, seededRandom } from '../../util/random.js';

/** Below this norm a vector is left (near) zero instead of blowing up: an all-padding text, say. */
export const NORM_EPSILON = 1e-12;

/**
 * y = x / max(||x||_2, eps) along the last axis. Unlike LpNormalization, a zero row stays zero
 * (no NaN). `prefix` keeps the constant's name unique when used more than once in a graph.
 */
export function l2Normalize(g: GraphBuilder, x: string, outputName: string, prefix = 'l2'): string {
  const eps = g.weight(`${prefix}_eps`, Float32Array.of(NORM_EPSILON), [1]);
  const norm = g.op1('ReduceL2', [x], { axes: [-1], keepdims: 1 });
  const safe = g.op1('Max', [norm, eps]);
  return g.op1('Div', [x, safe], {}, outputName);
}

/** n values ~ N(0, std^2) from a seeded source (deterministic for the seed). */
export function gaussianArray(n: number, std: number, seed: number): Float32Array {
  const normal = gaussian(seededRandom(seed));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = normal() * std;
  return out;
}

/** A table [rows, dim] of gaussian rows scaled by 1/sqrt(dim) (so rows are about unit length), row 0 zero. */
export function embeddingTable(rows: number, dim: number, seed: number): Float32Array {
  const table = gaussianArray(rows * dim, 1 / Math.sqrt(dim), seed);
  table.fill(0, 0, dim);
  return table;
}
