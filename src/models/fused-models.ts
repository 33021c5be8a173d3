/**
 * The models that work in the fused space F: the scorer (top-k ads per interest) and the default
 * CTR model. Their shapes depend on F (FUSED_DIM with concat fusion, the widest encoder's width
 * otherwise: a BYO encoder can change it), so they are built at start into MODEL_DIR, one file per
 * shape; a file is rewritten only when its bytes differ (a new generator revision). Fusion itself
 * is no model: the fuser computes it in-process (src/pipeline/fuse.ts).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureFile } from '../util/files.js';
import { buildCtrModel } from './graphs/ctr.js';
import { buildScorer } from './graphs/scorer.js';

export interface FusedModelFiles {
  readonly scorer: string;
  /** Null when the user's card brings its own CTR model. */
  readonly ctr: string | null;
}

/** F, and whether the default CTR model is needed. */
export interface FusedModelOptions {
  readonly dim: number;
  readonly defaultCtr: boolean;
}

export async function writeFusedModels(root: string, o: FusedModelOptions): Promise<FusedModelFiles> {
  await mkdir(root, { recursive: true });
  const files = {
    scorer: join(root, `scorer-d${o.dim}.onnx`),
    ctr: o.defaultCtr ? join(root, `ctr-d${o.dim}.onnx`) : null,
  };
  await ensureFile(files.scorer, buildScorer({ dim: o.dim }));
  if (files.ctr) await ensureFile(files.ctr, buildCtrModel({ dim: o.dim }));
  return files;
}
