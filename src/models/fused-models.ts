/**
 * The models that work in the fused space F: fusion (encoders -> F), the scorer (top-k ads per
 * interest) and the default CTR model. Their shapes depend on the encoders in use (a BYO encoder
 * changes the widest width) and on FUSION / FUSED_DIM, so they are built at start into MODEL_DIR,
 * one file per shape; a file is rewritten only when its bytes differ (a new generator revision).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MODALITY_COUNT } from '../domain/modalities.js';
import { ensureFile } from '../util/files.js';
import type { FusionSettings, FusionStrategy } from './model-io.js';
import { buildCtrModel } from './graphs/ctr.js';
import { buildConcatFusion, buildWeightedFusion } from './graphs/fusion.js';
import { buildScorer } from './graphs/scorer.js';

export interface FusedModelFiles {
  readonly fusion: string;
  readonly scorer: string;
  /** Null when the user's card brings its own CTR model. */
  readonly ctr: string | null;
}

/** The fusion's strategy and widths (F: FUSED_DIM for concat, the widest encoder's otherwise), and whether the default CTR model is needed. */
export interface FusedModelOptions extends Pick<FusionSettings, 'strategy' | 'inputDim' | 'dim'> {
  readonly defaultCtr: boolean;
}

export function fusionFileName(strategy: FusionStrategy, inputDim: number, dim: number): string {
  return strategy === 'concat' ? `fusion-concat-d${inputDim}-o${dim}.onnx` : `fusion-${strategy}-d${inputDim}.onnx`;
}

export async function writeFusedModels(root: string, o: FusedModelOptions): Promise<FusedModelFiles> {
  await mkdir(root, { recursive: true });
  // average and weighted are the same graph: they differ in the weights fed to it.
  const fusion = o.strategy === 'concat' ? buildConcatFusion({ modalities: MODALITY_COUNT, dim: o.inputDim, outDim: o.dim }) : buildWeightedFusion({ modalities: MODALITY_COUNT, dim: o.inputDim });
  const files = {
    fusion: join(root, fusionFileName(o.strategy, o.inputDim, o.dim)),
    scorer: join(root, `scorer-d${o.dim}.onnx`),
    ctr: o.defaultCtr ? join(root, `ctr-d${o.dim}.onnx`) : null,
  };
  await ensureFile(files.fusion, fusion);
  await ensureFile(files.scorer, buildScorer({ dim: o.dim }));
  if (files.ctr) await ensureFile(files.ctr, buildCtrModel({ dim: o.dim }));
  return files;
}
