import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../config/settings.js';
import { ConfigError } from '../errors.js';
import type { EncoderSettings } from '../features/multimodal-embedder.js';
import type { ImagePreprocessing } from '../features/image-decoder.js';
import type { BatcherSettings, ModelSpec, TensorSpec } from './engine/types.js';
import { CATEGORY_BUCKET_SEED, ITEM_BUCKET_SEED } from './models/click-encoder.js';
import { DEFAULT_MODEL_OPTIONS, defaultModelsVersion, writeDefaultModels, type CardModel, type CardTensor } from './models/default-models.js';
import { buildScorer } from './models/scorer.js';

/** The encoders the processor runs (their specs for the engine) and how to feed them. */
export interface PreparedModels {
  readonly specs: readonly ModelSpec[];
  readonly encoders: EncoderSettings;
  /** Names the models in every scored output, so consumers can tell scores of different models apart. */
  readonly version: string;
}

/** An encoder entry of a user's model card: the default card's format, file relative to the card. */
type UserEncoder = Pick<CardModel, 'file' | 'inputs' | 'outputs' | 'embeddingDim'> & { preprocessing?: Record<string, unknown> };

const ENCODERS = ['image', 'text', 'click'] as const;
type EncoderName = (typeof ENCODERS)[number];

/**
 * Writes the default models (once per version) and applies the user's model card, if any: any of
 * the image, text and click encoders can be replaced by an ONNX file with its own input size,
 * normalisation and embedding size. The scorer is built for the resulting concatenated width.
 */
export async function prepareModels(config: Config): Promise<PreparedModels> {
  const root = expandHome(config.modelDir);
  const options = { ...DEFAULT_MODEL_OPTIONS, dim: config.embeddingDim };
  const dir = join(root, defaultModelsVersion(options));
  const card = await writeDefaultModels(dir, options);

  const chosen: Record<EncoderName, { entry: CardModel | UserEncoder; path: string; source: string }> = {
    image: { entry: card.models.image, path: join(dir, card.models.image.file), source: card.version },
    text: { entry: card.models.text, path: join(dir, card.models.text.file), source: card.version },
    click: { entry: card.models.click, path: join(dir, card.models.click.file), source: card.version },
  };
  if (config.modelCard) {
    for (const [name, entry] of Object.entries(readUserCard(config.modelCard))) {
      const path = resolve(dirname(config.modelCard), entry.file);
      // Named by content, so a model swapped behind the same file name gets a new version.
      const digest = createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 12);
      chosen[name as EncoderName] = { entry, path, source: `byo:${entry.file}@${digest}` };
    }
  }

  const image = chosen.image.entry;
  const text = chosen.text.entry;
  const click = chosen.click.entry;
  const imagePrep = imagePreprocessing(image.preprocessing as Record<string, unknown> | undefined, chosen.image.source);
  const textPrep = text.preprocessing as { vocabSize?: number; maxTokens?: number } | undefined;
  const clickPrep = click.preprocessing as { itemBuckets?: number; categoryBuckets?: number; itemSeed?: number; categorySeed?: number } | undefined;
  const encoders: EncoderSettings = {
    image: { model: 'image', input: image.inputs[0]!.name, output: image.outputs[0]!.name, dim: image.embeddingDim, prep: imagePrep },
    text: {
      model: 'text', input: text.inputs[0]!.name, output: text.outputs[0]!.name, dim: text.embeddingDim,
      vocabSize: positive(textPrep?.vocabSize, 'text preprocessing.vocabSize'), maxTokens: positive(textPrep?.maxTokens, 'text preprocessing.maxTokens'),
    },
    click: {
      model: 'click', itemInput: named(click.inputs, 'item_ids'), categoryInput: named(click.inputs, 'category_ids'), output: click.outputs[0]!.name, dim: click.embeddingDim,
      itemBuckets: positive(clickPrep?.itemBuckets, 'click preprocessing.itemBuckets'), categoryBuckets: positive(clickPrep?.categoryBuckets, 'click preprocessing.categoryBuckets'),
      itemSeed: clickPrep?.itemSeed ?? ITEM_BUCKET_SEED, categorySeed: clickPrep?.categorySeed ?? CATEGORY_BUCKET_SEED,
    },
  };

  const totalDim = encoders.image.dim + encoders.text.dim + encoders.click.dim;
  const scorerPath = join(root, `scorer-d${totalDim}.onnx`);
  if (!existsSync(scorerPath)) {
    await mkdir(root, { recursive: true });
    await writeFile(scorerPath, buildScorer({ dim: totalDim }));
  }

  const batcher: BatcherSettings = { maxBatchSize: config.maxBatchSize, maxQueueDelayMs: config.maxQueueDelayMs, maxQueueItems: config.maxQueueItems };
  const spec = (name: string, path: string, e: Pick<CardModel, 'inputs' | 'outputs'>): ModelSpec => ({
    name, path, batcher, inputs: e.inputs.map(tensor), outputs: e.outputs.map(tensor),
  });
  const specs: ModelSpec[] = [
    ...ENCODERS.map((n) => spec(n, chosen[n].path, chosen[n].entry)),
    {
      name: 'scorer', path: scorerPath, batcher,
      inputs: [{ name: 'users', type: 'float32', itemShape: [totalDim] }],
      // k is resident and varies with the catalog; the engine reads each output's real width.
      outputs: [{ name: 'scores', type: 'float32', itemShape: [config.topK] }, { name: 'indices', type: 'int64', itemShape: [config.topK] }],
      residentInputs: [{ name: 'ads', type: 'float32' }, { name: 'k', type: 'int64' }],
    },
  ];
  const sources = [...new Set(ENCODERS.map((n) => chosen[n].source))].join('+');
  return { specs, encoders, version: `${sources}/concat-w${config.weightImage},${config.weightText},${config.weightClick}` };
}

function tensor(t: CardTensor): TensorSpec {
  return {
    name: t.name,
    type: t.type,
    itemShape: t.shape.slice(1).map((d) => {
      if (typeof d !== 'number') throw new ConfigError('MODEL_CARD', `input ${t.name}: only the first (batch) dimension may be symbolic, got [${t.shape.join(', ')}]`);
      return d;
    }),
  };
}

function readUserCard(path: string): Partial<Record<EncoderName, UserEncoder>> {
  let parsed: { models?: Record<string, UserEncoder> };
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as typeof parsed;
  } catch (err) {
    throw new ConfigError('MODEL_CARD', `cannot read ${path} as JSON: ${(err as Error).message}`);
  }
  const models = parsed.models ?? {};
  for (const [name, m] of Object.entries(models)) {
    if (!(ENCODERS as readonly string[]).includes(name)) throw new ConfigError('MODEL_CARD', `${path}: model "${name}" cannot be replaced; allowed: ${ENCODERS.join(', ')}`);
    const where = `${path}: models.${name}`;
    if (typeof m.file !== 'string') throw new ConfigError('MODEL_CARD', `${where}.file must be the path of an .onnx file`);
    if (!existsSync(resolve(dirname(path), m.file))) throw new ConfigError('MODEL_CARD', `${where}.file ${m.file} does not exist`);
    if (!Array.isArray(m.inputs) || m.inputs.length === 0 || !Array.isArray(m.outputs) || m.outputs.length === 0) throw new ConfigError('MODEL_CARD', `${where} must list inputs and outputs with name, type and shape`);
    if (!Number.isInteger(m.embeddingDim) || m.embeddingDim < 1) throw new ConfigError('MODEL_CARD', `${where}.embeddingDim must be a positive integer`);
  }
  return models as Partial<Record<EncoderName, UserEncoder>>;
}

function imagePreprocessing(p: Record<string, unknown> | undefined, source: string): ImagePreprocessing {
  const where = `image preprocessing (${source})`;
  const size = positive(p?.size as number | undefined, `${where}.size`);
  const layout = (p?.layout ?? 'NCHW') as string;
  if (layout !== 'NCHW' && layout !== 'NHWC') throw new ConfigError('MODEL_CARD', `${where}.layout must be NCHW or NHWC, got ${layout}`);
  const triple = (v: unknown, name: string): [number, number, number] => {
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) throw new ConfigError('MODEL_CARD', `${where}.${name} must be three numbers (R, G, B)`);
    return [v[0], v[1], v[2]];
  };
  const std = triple(p?.std, 'std');
  if (std.some((x) => x <= 0)) throw new ConfigError('MODEL_CARD', `${where}.std must be positive`);
  return { size, layout, mean: triple(p?.mean, 'mean'), std };
}

function positive(v: number | undefined, what: string): number {
  if (v === undefined || !Number.isInteger(v) || v < 1) throw new ConfigError('MODEL_CARD', `${what} must be a positive integer, got ${String(v)}`);
  return v;
}

function named(inputs: readonly CardTensor[], name: string): string {
  if (!inputs.some((t) => t.name === name)) throw new ConfigError('MODEL_CARD', `click encoder must have an input named ${name}`);
  return name;
}

export function expandHome(p: string): string {
  const home = process.env.XDG_CACHE_HOME && p.startsWith('~/.cache/') ? join(process.env.XDG_CACHE_HOME, p.slice('~/.cache/'.length)) : p.replace(/^~(?=$|\/)/, homedir());
  return isAbsolute(home) ? home : resolve(home);
}
