/**
 * Writes a trained CTR model as a new version under MODEL_DIR: `<MODEL_DIR>/ctr/<version>/` holds
 * `ctr.onnx` (written by our own graph writer, the same graph as the hand-set default) and
 * `model-card.json`. The card is in MODEL_CARD's format (an entry "ctr" with file, inputs,
 * outputs), so `MODEL_CARD=<that card>` runs it, plus what a reader needs to trust it: sha256,
 * bytes, the validation metrics next to the hand-set model's, the training data's time range and
 * the training settings. The card is written last, so a folder with a card is complete.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/files.js';
import { writeCtrGraph, type CtrWeights } from '../../models/graphs/ctr.js';
import { CTR_TENSORS } from '../../models/graphs/tensors.js';
import type { UserModel } from '../../models/model-card.js';

/** Where versions of trained CTR models live, under MODEL_DIR. */
export const TRAINED_CTR_FOLDER = 'ctr';
export const TRAINED_CTR_FILE = 'ctr.onnx';
export const TRAINED_CARD_FILE = 'model-card.json';
export const TRAINED_CHECK_FILE = 'check.json';

/**
 * Held-back pairs and what the model must predict for them (CtrCheckFile in
 * src/models/ctr-versions.ts): a processor swapping the version in runs them first.
 */
export interface CtrCheckSample {
  readonly user: Float32Array;
  readonly ad: Float32Array;
  readonly expected: Float32Array;
}

export interface TrainedCtrEntry extends UserModel {
  readonly sha256: string;
  readonly bytes: number;
  /** Anything describing how it was made and how well it does (metrics, data range, settings). */
  readonly [detail: string]: unknown;
}

export interface TrainedCtrCard {
  readonly version: string;
  readonly createdAt: string;
  readonly models: { readonly ctr: TrainedCtrEntry };
}

/** float32 inference on another provider or thread count differs from our forward pass by ~1e-7; a wrong model by far more. */
const CHECK_TOLERANCE = 1e-4;

export interface PublishedCtr {
  readonly version: string;
  readonly dir: string;
  readonly card: string;
  readonly sha256: string;
}

/** Writes a new version; `details` lands in the card's ctr entry. The version is named by time and content. */
export async function publishTrainedCtr(modelDir: string, weights: CtrWeights, check: CtrCheckSample, details: Record<string, unknown>, now = new Date()): Promise<PublishedCtr> {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  // The digest of the weights names the version; the ONNX bytes then carry the version itself.
  const weightDigest = createHash('sha256').update(weights.w1).update(weights.b1).update(weights.w2).update(weights.b2).digest('hex').slice(0, 12);
  const version = `ctr-trained-${stamp}-${weightDigest}`;
  const bytes = writeCtrGraph(weights, { revision: version, weights: 'trained by adstream train (BCE, Adam)' });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const dir = join(modelDir, TRAINED_CTR_FOLDER, version);
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, TRAINED_CTR_FILE), bytes);
  await writeFileAtomic(join(dir, TRAINED_CHECK_FILE), JSON.stringify({ items: check.expected.length, user: Array.from(check.user), ad: Array.from(check.ad), expected: Array.from(check.expected), tolerance: CHECK_TOLERANCE }) + '\n');
  const F = weights.dim;
  const card: TrainedCtrCard = {
    version,
    createdAt: now.toISOString(),
    models: {
      ctr: {
        file: TRAINED_CTR_FILE,
        inputs: [
          { name: CTR_TENSORS.inputs.user.name, type: 'float32', shape: ['batch', F] },
          { name: CTR_TENSORS.inputs.ad.name, type: 'float32', shape: ['batch', F] },
        ],
        outputs: [{ name: CTR_TENSORS.outputs.ctr.name, type: 'float32', shape: ['batch', 1] }],
        sha256,
        bytes: bytes.length,
        check: TRAINED_CHECK_FILE,
        hidden: weights.hidden,
        ...details,
      },
    },
  };
  const cardPath = join(dir, TRAINED_CARD_FILE);
  await writeFileAtomic(cardPath, JSON.stringify(card, null, 2) + '\n');
  return { version, dir, card: cardPath, sha256 };
}
