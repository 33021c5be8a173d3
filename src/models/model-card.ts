import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../domain/errors.js';
import { MODALITIES, type Modality } from '../domain/modalities.js';
import type { CardModel } from './default-models.js';

/** An entry of a user's model card: the default card's format, `file` relative to the card. */
export type UserModel = Pick<CardModel, 'file' | 'inputs' | 'outputs'> & { embeddingDim?: number; preprocessing?: Record<string, unknown> };

/** One encoder per modality, named after it. */
export const ENCODERS = MODALITIES;
export type EncoderName = Modality;
/** What a user's card may replace: the encoders, and the CTR model that re-ranks candidates. */
export const REPLACEABLE = [...ENCODERS, 'ctr'] as const;
export type ReplaceableName = (typeof REPLACEABLE)[number];

/** Reads and checks MODEL_CARD; every problem is a ConfigError naming MODEL_CARD. */
export function readUserCard(path: string): Partial<Record<ReplaceableName, UserModel>> {
  let parsed: { models?: Record<string, UserModel> };
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as typeof parsed;
  } catch (err) {
    throw new ConfigError('MODEL_CARD', `cannot read ${path} as JSON: ${(err as Error).message}`);
  }
  const models = parsed.models ?? {};
  for (const [name, m] of Object.entries(models)) {
    if (!(REPLACEABLE as readonly string[]).includes(name)) throw new ConfigError('MODEL_CARD', `${path}: model "${name}" cannot be replaced; allowed: ${REPLACEABLE.join(', ')}`);
    const where = `${path}: models.${name}`;
    if (typeof m.file !== 'string') throw new ConfigError('MODEL_CARD', `${where}.file must be the path of an .onnx file`);
    if (!existsSync(resolve(dirname(path), m.file))) throw new ConfigError('MODEL_CARD', `${where}.file ${m.file} does not exist`);
    if (!Array.isArray(m.inputs) || m.inputs.length === 0 || !Array.isArray(m.outputs) || m.outputs.length === 0) throw new ConfigError('MODEL_CARD', `${where} must list inputs and outputs with name, type and shape`);
    // The CTR model outputs a probability, not an embedding.
    if (name !== 'ctr' && (!Number.isInteger(m.embeddingDim) || m.embeddingDim! < 1)) throw new ConfigError('MODEL_CARD', `${where}.embeddingDim must be a positive integer`);
  }
  return models as Partial<Record<ReplaceableName, UserModel>>;
}
