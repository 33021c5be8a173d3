/**
 * Fusion of per-modality embeddings (image, text, click...) into one vector.
 *
 * Both graphs take modalities [batch, M, dim] and weights [batch, M]; a missing modality is given
 * weight 0 (its row may hold anything finite, zeros say).
 * - weighted: fused = L2norm(sum_m w_m * x_m). Equal weights give the (normalised) average.
 * - concat:   fused = L2norm(concat_m(w_m * x_m) @ P), P a seeded gaussian [M*dim, outDim] / sqrt(outDim).
 *   A random projection keeps inner products approximately (Johnson-Lindenstrauss), so the fused
 *   space ranks like the weighted concatenation, at a chosen width.
 */
import { GraphBuilder } from './graph-builder.js';
import { FUSION_TENSORS } from './tensors.js';
import { gaussianArray, l2Normalize } from './graph-ops.js';

export interface WeightedFusionOptions {
  readonly modalities: number;
  readonly dim: number;
}

export interface ConcatFusionOptions {
  readonly modalities: number;
  readonly dim: number;
  readonly outDim: number;
  readonly seed?: number;
}

export const DEFAULT_CONCAT_SEED = 0xf05e;

const { fused } = FUSION_TENSORS.outputs;

function check(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
}

/** x_m * w_m for every modality: [batch, M, dim]. */
function weighted(g: GraphBuilder, modalities: number, dim: number): string {
  const x = g.inputOf(FUSION_TENSORS.inputs.modalities, ['batch', modalities, dim]);
  const w = g.inputOf(FUSION_TENSORS.inputs.weights, ['batch', modalities]);
  const w3 = g.op1('Unsqueeze', [w, g.int64s('weight_axis', [2])]); // [batch, M, 1]
  return g.op1('Mul', [x, w3]);
}

export function buildWeightedFusion(opts: WeightedFusionOptions): Uint8Array {
  const { modalities, dim } = opts;
  check('modalities', modalities);
  check('dim', dim);
  const g = new GraphBuilder('adstream_fusion_weighted');
  const scaled = weighted(g, modalities, dim);
  const sum = g.op1('ReduceSum', [scaled, g.int64s('modality_axis', [1])], { keepdims: 0 }); // [batch, dim]
  l2Normalize(g, sum, fused.name);
  g.outputOf(fused, ['batch', dim]);
  return g.build({ 'adstream.model': 'fusion-weighted', modalities: String(modalities), dim: String(dim) });
}

export function buildConcatFusion(opts: ConcatFusionOptions): Uint8Array {
  const { modalities, dim, outDim } = opts;
  const seed = opts.seed ?? DEFAULT_CONCAT_SEED;
  check('modalities', modalities);
  check('dim', dim);
  check('outDim', outDim);
  const g = new GraphBuilder('adstream_fusion_concat');
  const scaled = weighted(g, modalities, dim);
  const flat = g.op1('Reshape', [scaled, g.int64s('flat_shape', [-1, modalities * dim])]); // [batch, M*dim]
  const proj = g.weight('projection', gaussianArray(modalities * dim * outDim, 1 / Math.sqrt(outDim), seed), [modalities * dim, outDim]);
  l2Normalize(g, g.op1('MatMul', [flat, proj]), fused.name);
  g.outputOf(fused, ['batch', outDim]);
  return g.build({ 'adstream.model': 'fusion-concat', modalities: String(modalities), dim: String(dim), outDim: String(outDim), seed: String(seed) });
}
