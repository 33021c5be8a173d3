/**
 * Trained CTR model versions under MODEL_DIR/ctr/ (written by `adstream train`, see
 * src/training/ctr/publish.ts): one folder per version, complete once its model-card.json is
 * there (written last). Versions are named ctr-trained-<UTC time>-<digest>, so the newest sorts last.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelSpec } from '../inference/types.js';
import { CTR_TENSORS } from './graphs/tensors.js';
import { readUserCard } from './model-card.js';

export const CTR_VERSIONS_FOLDER = 'ctr';
const CARD = 'model-card.json';

/** check.json of a version: held-back pairs and the predictions the model must reproduce. */
export interface CtrCheckFile {
  readonly items: number;
  readonly user: number[];
  readonly ad: number[];
  readonly expected: number[];
  readonly tolerance: number;
}

export interface CtrVersion {
  readonly version: string;
  /** The running CTR spec with this version's file. */
  readonly spec: ModelSpec;
  readonly check: { readonly items: number; readonly inputs: Float32Array[]; readonly expected: Float32Array; readonly tolerance: number };
}

/** Complete versions, oldest first. */
export function listCtrVersions(modelDir: string): string[] {
  const root = join(modelDir, CTR_VERSIONS_FOLDER);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, CARD)))
    .map((d) => d.name)
    .sort();
}

/**
 * Reads a version for the processor running `running` (the CTR spec in use): its card must
 * declare the same inputs and output, and it must bring a check sample of the right widths. Any
 * problem throws an Error saying what, for the refusal's log line.
 */
export function readCtrVersion(modelDir: string, version: string, running: ModelSpec): CtrVersion {
  const dir = join(modelDir, CTR_VERSIONS_FOLDER, version);
  const entry = readUserCard(join(dir, CARD)).ctr;
  if (!entry) throw new Error(`${dir}/${CARD} has no ctr entry`);
  const F = running.inputs[0]!.itemShape[0]!;
  for (const t of running.inputs) {
    const declared = entry.inputs.find((x) => x.name === t.name);
    if (!declared || declared.type !== t.type || declared.shape[1] !== F) throw new Error(`${version}: input ${t.name} must be ${t.type} [batch, ${F}], the card says ${declared ? `${declared.type} [${declared.shape.join(', ')}]` : 'nothing'}`);
  }
  const out = entry.outputs[0];
  if (!out || out.name !== running.outputs[0]!.name || out.shape[1] !== 1) throw new Error(`${version}: output must be ${running.outputs[0]!.name} [batch, 1]`);
  const checkFile = (entry as { check?: unknown }).check;
  if (typeof checkFile !== 'string') throw new Error(`${version}: the card names no check sample`);
  let c: CtrCheckFile;
  try {
    c = JSON.parse(readFileSync(join(dir, checkFile), 'utf8')) as CtrCheckFile;
  } catch (err) {
    throw new Error(`${version}: check sample ${checkFile} unreadable: ${(err as Error).message}`);
  }
  if (!(Number.isInteger(c.items) && c.items > 0 && c.user?.length === c.items * F && c.ad?.length === c.items * F && c.expected?.length === c.items && c.tolerance > 0)) {
    throw new Error(`${version}: check sample ${checkFile} must hold items > 0 rows of ${F} user and ad values, items expected values and a tolerance`);
  }
  // The check's inputs go in the order of the running spec's.
  const byName: Record<string, number[]> = { [CTR_TENSORS.inputs.user.name]: c.user, [CTR_TENSORS.inputs.ad.name]: c.ad };
  return {
    version,
    spec: { ...running, path: join(dir, entry.file) },
    check: { items: c.items, inputs: running.inputs.map((t) => Float32Array.from(byName[t.name] ?? [])), expected: Float32Array.from(c.expected), tolerance: c.tolerance },
  };
}
