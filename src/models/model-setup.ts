import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../domain/errors.js';
import { expandHome } from '../util/files.js';
import { perModality, type PerModality } from '../domain/modalities.js';
import { IMAGE_RESIZES, type ImagePreprocessing, type ImageResize } from '../preprocess/image-decoder.js';
import { CTR_TENSORS, ENCODER_TENSORS, RANKED_TENSORS, SCORER_TENSORS } from './graphs/tensors.js';
import type { CtrSettings, EncoderSettings, FusionSettings, FusionStrategy, ScorerIo, TextEncoderSettings } from './model-io.js';
import { hashedTokenizer, tokenizerJson, type TextTokenizer } from '../preprocess/text-tokenizer.js';
import { TEXT_POOLINGS, type TextPooling } from './text-pooling.js';
import type { BatcherSettings, ModelSpec, TensorDecl, TensorSpec, TensorType } from '../inference/types.js';
import { writeFusedModels } from './fused-models.js';
import { CATEGORY_BUCKET_SEED, ITEM_BUCKET_SEED } from '../preprocess/buckets.js';
import { CTR_REVISION } from './graphs/ctr.js';
import { DEFAULT_MODEL_OPTIONS, defaultModelsVersion, writeDefaultModels, type CardModel, type CardTensor } from './default-models.js';
import { MODEL_PACK_CARD, MODEL_PACKS, packDir } from './packs/model-packs.js';
import { ENCODERS, readUserCard, type EncoderName, type UserModel } from './model-card.js';

/**
 * What prepareModels reads: the settings of these names (MODEL_DIR, EMBEDDING_DIM, MODEL_CARD,
 * FUSION, ...; the batcher's from MAX_BATCH_SIZE and its kin), so the processor's Config can be
 * passed as it is.
 */
export interface ModelSetupOptions extends BatcherSettings {
  readonly modelDir: string;
  /** Width of every default encoder. */
  readonly embeddingDim: number;
  /** A user's model card; null: the defaults only. */
  readonly modelCard: string | null;
  /** Comma-separated model packs (packs/model-packs.ts), fetched into modelPackDir; null: none. */
  readonly modelPacks: string | null;
  readonly modelPackDir: string;
  readonly fusion: FusionStrategy;
  /** F with concat fusion. */
  readonly fusedDim: number;
  readonly weightImage: number;
  readonly weightText: number;
  readonly weightClick: number;
  /** The k the scorer's outputs are declared with. */
  readonly topK: number;
}

/** The models the processor runs (their specs for the engine) and how to feed them. */
export interface PreparedModels {
  readonly specs: readonly ModelSpec[];
  readonly encoders: EncoderSettings;
  /** Fusion runs in-process (src/pipeline/fuse.ts): no spec. */
  readonly fusion: FusionSettings;
  /** The scorer, with the CTR model run in the same request (its spec's rerank). */
  readonly scorer: ScorerIo;
  /** The CTR model's own tensors (the default's, or the user's output name). */
  readonly ctr: CtrSettings;
  /** Names the models in every scored output, so consumers can tell scores of different models apart. */
  readonly version: string;
  /** Models of the user's card (MODEL_CARD): spec name -> the card's `file`. */
  readonly fromCard: Readonly<Record<string, string>>;
  /**
   * What user state vectors mean: encoders, fusion strategy and F. State of another space is not
   * restored. The modality weights and the CTR model are not part of it: they change how state is
   * used, not what its vectors are.
   */
  readonly space: string;
}

interface Chosen {
  readonly entry: CardModel | UserModel;
  readonly path: string;
  /** Where it comes from, for the version: the default card's version or byo:<file>@<digest>. */
  readonly source: string;
  /** The user's card's folder (its files are relative to it); absent for the default models. */
  readonly cardDir?: string;
}

/**
 * Writes the default models (once per version) and applies the user's model card, if any: any of
 * the image, text and click encoders can be replaced by an ONNX file with its own input size,
 * normalisation and embedding size, and the CTR model by one with the same inputs. The scorer and
 * default CTR models are then built for the resulting fused width; the scorer's spec runs the CTR
 * model on its top-k in the same request (one trip to the workers).
 */
export async function prepareModels(config: ModelSetupOptions): Promise<PreparedModels> {
  // Packs are checked before anything is written: an unknown or unfetched pack stops the start at once.
  const packs = (config.modelPacks ? config.modelPacks.split(',').map((p) => p.trim()).filter((p) => p.length > 0) : []).map((name) => {
    const pack = MODEL_PACKS[name];
    if (!pack) throw new ConfigError('MODEL_PACKS', `unknown model pack "${name}"; packs: ${Object.keys(MODEL_PACKS).join(', ')}`);
    const cardPath = join(packDir(expandHome(config.modelPackDir), pack), MODEL_PACK_CARD);
    // Offline by design: the processor never downloads; the fetch is a separate, explicit step.
    if (!existsSync(cardPath)) throw new ConfigError('MODEL_PACKS', `model pack ${name} is not fetched into ${config.modelPackDir}: run \`adstream models fetch ${name}\` (or \`npm run models -- ${name}\`) first`);
    return { name, pack, cardPath };
  });
  const root = expandHome(config.modelDir);
  const options = { ...DEFAULT_MODEL_OPTIONS, dim: config.embeddingDim };
  const dir = join(root, defaultModelsVersion(options));
  const card = await writeDefaultModels(dir, options);

  const chosen: Record<EncoderName, Chosen> = {
    image: { entry: card.models.image, path: join(dir, card.models.image.file), source: card.version },
    text: { entry: card.models.text, path: join(dir, card.models.text.file), source: card.version },
    click: { entry: card.models.click, path: join(dir, card.models.click.file), source: card.version },
  };
  let userCtr: Chosen | undefined;
  const fromCard: Record<string, string> = {};
  /** Applies the entries of a card in the user-card format; `source` names an entry in the version. */
  const apply = (cardPath: string, source: (name: string, entry: UserModel, digest: string, cardDir: string) => string): void => {
    for (const [name, entry] of Object.entries(readUserCard(cardPath))) {
      fromCard[name] = entry.file;
      // The embedder reads rows of embeddingDim values: the declared output must be that wide.
      const out = entry.outputs[0]!;
      // A text model pooled on its token states outputs [batch, maxTokens, dim]: textSettings checks it.
      const pooled = name === 'text' && tokenStatesPooled(entry);
      if (name !== 'ctr' && !pooled && (out.shape.length !== 2 || out.shape[1] !== entry.embeddingDim)) {
        throw new ConfigError('MODEL_CARD', `models.${name}: output ${out.name} is declared [${out.shape.join(', ')}], but embeddingDim is ${entry.embeddingDim}: it must be [batch, ${entry.embeddingDim}]`);
      }
      const cardDir = dirname(cardPath);
      const path = resolve(cardDir, entry.file);
      // Named by content, so a model swapped behind the same file name gets a new version.
      const digest = createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 12);
      const c = { entry, path, source: source(name, entry, digest, cardDir), cardDir };
      if (name === 'ctr') userCtr = c;
      else chosen[name as EncoderName] = c;
    }
  };
  for (const { name, pack, cardPath } of packs) {
    apply(cardPath, (modality, entry, digest, cardDir) => `pack:${name}-${pack.revision}@${digest}${modality === 'text' ? tokenizerSource(entry, cardDir) : ''}`);
  }
  // The user's card wins over packs: it is the more specific choice.
  if (config.modelCard) apply(config.modelCard, (name, entry, digest, cardDir) => `byo:${entry.file}@${digest}${name === 'text' ? tokenizerSource(entry, cardDir) : ''}`);

  const encoders = encoderSettings(chosen);
  const inputDim = Math.max(...perModality((m) => encoders[m].dim));
  const strategy = config.fusion;
  const F = strategy === 'concat' ? config.fusedDim : inputDim;
  const files = await writeFusedModels(root, { dim: F, defaultCtr: !userCtr });
  const weightOf = { image: config.weightImage, text: config.weightText, click: config.weightClick };
  const weights: PerModality<number> = perModality((m) => (strategy === 'average' ? 1 : weightOf[m]));

  const batcher: BatcherSettings = { maxBatchSize: config.maxBatchSize, maxQueueDelayMs: config.maxQueueDelayMs, maxQueueItems: config.maxQueueItems };
  const spec = (name: string, path: string, e: Pick<CardModel, 'inputs' | 'outputs'>): ModelSpec => ({
    name, path, batcher, inputs: e.inputs.map(tensor), outputs: e.outputs.map(tensor),
  });
  const fusion: FusionSettings = { strategy, inputDim, dim: F, weights };
  const scorer: ScorerIo = { model: 'scorer', ...RANKED_TENSORS };
  const ctr: CtrSettings = userCtr ? userCtrSettings(userCtr.entry as UserModel, F) : { model: 'ctr', ...CTR_TENSORS };
  const specs: ModelSpec[] = [
    ...ENCODERS.map((n) => spec(n, chosen[n].path, chosen[n].entry)),
    {
      name: scorer.model, path: files.scorer, batcher,
      inputs: [shaped(scorer.inputs.users, [F])],
      // k is resident and varies with the catalog; the engine reads each output's real width.
      outputs: [shaped(scorer.outputs.scores, [config.topK]), shaped(scorer.outputs.indices, [config.topK]), shaped(scorer.outputs.ctr, [config.topK])],
      residentInputs: [SCORER_TENSORS.resident.ads, SCORER_TENSORS.resident.k],
      rerank: {
        model: ctr.model, queries: scorer.inputs.users.name, candidates: SCORER_TENSORS.resident.ads.name, indices: scorer.outputs.indices.name,
        queryInput: ctr.inputs.user.name, candidateInput: ctr.inputs.ad.name, score: ctr.outputs.ctr.name, output: scorer.outputs.ctr.name,
      },
    },
    userCtr
      ? spec(ctr.model, userCtr.path, userCtr.entry)
      : {
          name: ctr.model, path: files.ctr!, batcher,
          inputs: [shaped(ctr.inputs.user, [F]), shaped(ctr.inputs.ad, [F])],
          outputs: [shaped(ctr.outputs.ctr, [1])],
        },
  ];
  const sources = [...new Set(ENCODERS.map((n) => chosen[n].source))].join('+');
  const space = `${sources}/${strategy}-f${F}`;
  return {
    specs,
    encoders,
    fusion,
    scorer,
    ctr,
    space,
    version: `${space}-w${weights.join(',')}/${userCtr ? userCtr.source : CTR_REVISION}`,
    fromCard,
  };
}

/**
 * Checks what the models really output against what their specs declare, once the engine has
 * warmed each of them on a zero batch (`warmUpShapes`, see InferenceEngine.warmUpShapes). The
 * embedder slices an encoder's output by the card's embeddingDim, so a model whose real output is
 * wider or narrower would silently misalign every vector: a user's model stops the start with a
 * MODEL_CARD error instead. Models warmed only later (with resident inputs: the scorer) are not
 * checked here.
 */
export function checkOutputShapes(models: PreparedModels, warmUpShapes: (model: string) => Readonly<Record<string, readonly number[]>> | undefined): void {
  for (const spec of models.specs) {
    const real = warmUpShapes(spec.name);
    if (!real) continue;
    for (const t of spec.outputs) {
      const got = real[t.name];
      if (got && got.length === t.itemShape.length && got.every((d, i) => d === t.itemShape[i])) continue;
      const gave = got ? `[batch, ${got.join(', ')}]` : 'nothing';
      const file = models.fromCard[spec.name];
      if (file === undefined) throw new Error(`model ${spec.name} (${spec.path}): output ${t.name} gave ${gave} on its warm-up, its spec says [batch, ${t.itemShape.join(', ')}]`);
      const encoder = (ENCODERS as readonly string[]).includes(spec.name) ? models.encoders[spec.name as EncoderName] : undefined;
      const declared = encoder ? `embeddingDim ${encoder.dim}` : `[batch, ${t.itemShape.join(', ')}]`;
      throw new ConfigError('MODEL_CARD', `models.${spec.name} (${file}): output ${t.name} is ${gave} when run on a zero batch at warm-up, but the card says ${declared}`);
    }
  }
}

function encoderSettings(chosen: Record<EncoderName, Chosen>): EncoderSettings {
  const image = chosen.image.entry;
  const click = chosen.click.entry;
  const imagePrep = imagePreprocessing(image.preprocessing as Record<string, unknown> | undefined, chosen.image.source);
  const clickPrep = click.preprocessing as { itemBuckets?: number; categoryBuckets?: number; itemSeed?: number; categorySeed?: number; adItems?: boolean } | undefined;
  // The image and text encoders' tensors may have any names (the card's first input and output); the click encoder's inputs are told apart by name.
  const T = ENCODER_TENSORS;
  return {
    image: {
      model: 'image', inputs: { pixels: typed(image.inputs[0]!, T.image.inputs.pixels, 'image encoder input') }, outputs: { embedding: typed(image.outputs[0]!, T.image.outputs.embedding, 'image encoder output') },
      dim: image.embeddingDim!, prep: imagePrep,
    },
    text: textSettings(chosen.text),
    click: {
      model: 'click',
      inputs: { itemIds: named(click.inputs, T.click.inputs.itemIds, 'click encoder'), categoryIds: named(click.inputs, T.click.inputs.categoryIds, 'click encoder') },
      outputs: { embedding: typed(click.outputs[0]!, T.click.outputs.embedding, 'click encoder output') },
      dim: click.embeddingDim!,
      itemBuckets: positive(clickPrep?.itemBuckets, 'click preprocessing.itemBuckets'), categoryBuckets: positive(clickPrep?.categoryBuckets, 'click preprocessing.categoryBuckets'),
      itemSeed: clickPrep?.itemSeed ?? ITEM_BUCKET_SEED, categorySeed: clickPrep?.categorySeed ?? CATEGORY_BUCKET_SEED,
      // A learned item table knows the promoted items: an ad is then looked up as the item of its ad id.
      adItems: clickPrep?.adItems === true,
    },
  };
}

/** What a text card entry's preprocessing may say (model-card.ts documents it). */
interface TextPrep {
  readonly vocabSize?: number;
  readonly maxTokens?: number;
  /** 'hashed' (default) or the path of a tokenizer.json, relative to the card. */
  readonly tokenizer?: string;
  readonly tokenizerConfig?: string;
  readonly pooling?: string;
  readonly normalize?: boolean;
}

const textPrepOf = (e: CardModel | UserModel): TextPrep | undefined => e.preprocessing as TextPrep | undefined;
const usesTokenizerJson = (p: TextPrep | undefined): boolean => p?.tokenizer !== undefined && p.tokenizer !== 'hashed';
const tokenStatesPooled = (e: CardModel | UserModel): boolean => usesTokenizerJson(textPrepOf(e)) && (textPrepOf(e)?.pooling ?? 'mean') !== 'output';

/** '+<tokenizer.json>@<digest>' for a text model with a tokenizer file; '' for hashed tokens. */
function tokenizerSource(e: UserModel, cardDir: string): string {
  const p = textPrepOf(e);
  if (!usesTokenizerJson(p)) return '';
  const path = resolve(cardDir, p!.tokenizer!);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new ConfigError('MODEL_CARD', `models.text.preprocessing.tokenizer ${p!.tokenizer}: cannot read ${path}: ${(err as Error).message}`);
  }
  return `+${p!.tokenizer}@${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`;
}

/**
 * The text encoder's tokenizer, inputs and pooling. Hashed tokens (the default models, and a card
 * that names no tokenizer): the first input gets the ids, the model's output is the embedding. A
 * tokenizer.json: inputs named attention_mask and token_type_ids get those rows, the one other
 * input the ids, all int64 [batch, maxTokens]; pooling mean (default) or cls reads token states
 * [batch, maxTokens, dim], output reads [batch, dim]; L2 unless normalize is false.
 */
function textSettings(c: Chosen): TextEncoderSettings {
  const e = c.entry;
  const p = textPrepOf(e);
  const where = `models.text (${c.source})`;
  const T = ENCODER_TENSORS.text;
  const maxTokens = positive(p?.maxTokens, `text preprocessing.maxTokens`);
  const states = typed(e.outputs[0]!, T.outputs.embedding, 'text encoder output');
  const dim = e.embeddingDim!;
  // The default card names its hashed tokenizer in words; only a user's card points at a file.
  if (c.cardDir === undefined || !usesTokenizerJson(p)) {
    const vocabSize = positive(p?.vocabSize, 'text preprocessing.vocabSize');
    return {
      model: 'text', inputs: { inputIds: typed(e.inputs[0]!, T.inputs.tokenIds, 'text encoder input') }, outputs: { states },
      dim, maxTokens, tokenizer: hashedTokenizer(vocabSize, maxTokens), pooling: 'output', normalize: false,
    };
  }
  const pooling = (p!.pooling ?? 'mean') as TextPooling;
  if (!(TEXT_POOLINGS as readonly string[]).includes(pooling)) throw new ConfigError('MODEL_CARD', `${where}: preprocessing.pooling must be one of ${TEXT_POOLINGS.join(', ')}, got ${String(p!.pooling)}`);
  if (p!.normalize !== undefined && typeof p!.normalize !== 'boolean') throw new ConfigError('MODEL_CARD', `${where}: preprocessing.normalize must be true or false`);
  const rows = (t: CardTensor): TensorDecl<'int64'> => {
    if (t.type !== 'int64' || t.shape.length !== 2 || t.shape[1] !== maxTokens) throw new ConfigError('MODEL_CARD', `${where}: input ${t.name} must be int64 [batch, ${maxTokens}] (maxTokens), got ${t.type} [${t.shape.join(', ')}]`);
    return { name: t.name, type: 'int64' };
  };
  const mask = e.inputs.find((t) => t.name === 'attention_mask');
  const types = e.inputs.find((t) => t.name === 'token_type_ids');
  const ids = e.inputs.filter((t) => t !== mask && t !== types);
  if (ids.length !== 1) throw new ConfigError('MODEL_CARD', `${where}: a tokenizer.json model takes one input of token ids (input_ids), and optionally attention_mask and token_type_ids; got ${e.inputs.map((t) => t.name).join(', ')}`);
  const out = e.outputs[0]!;
  const want = pooling === 'output' ? ['batch', dim] : ['batch', maxTokens, dim];
  if (out.shape.length !== want.length || out.shape.some((d, i) => i > 0 && d !== want[i])) {
    throw new ConfigError('MODEL_CARD', `${where}: with pooling ${pooling} output ${out.name} must be [${want.join(', ')}] (embeddingDim ${dim}), got [${out.shape.join(', ')}]`);
  }
  const dir = c.cardDir;
  let tokenizer: TextTokenizer;
  try {
    tokenizer = tokenizerJson(resolve(dir, p!.tokenizer!), maxTokens, p!.tokenizerConfig === undefined ? undefined : resolve(dir, p!.tokenizerConfig));
  } catch (err) {
    throw new ConfigError('MODEL_CARD', `${where}: preprocessing.tokenizer ${p!.tokenizer} cannot be used: ${(err as Error).message}`);
  }
  return {
    model: 'text',
    inputs: { inputIds: rows(ids[0]!), ...(mask ? { attentionMask: rows(mask) } : {}), ...(types ? { tokenTypeIds: rows(types) } : {}) },
    outputs: { states }, dim, maxTokens, tokenizer, pooling, normalize: p!.normalize ?? true,
  };
}

/** A user's CTR model must take `user` and `ad` of width F and give one probability per row. */
function userCtrSettings(e: UserModel, F: number): CtrSettings {
  for (const { name } of Object.values(CTR_TENSORS.inputs)) {
    const t = e.inputs.find((x) => x.name === name);
    if (!t) throw new ConfigError('MODEL_CARD', `ctr model must have an input named ${name}`);
    if (t.type !== 'float32' || t.shape.length !== 2 || t.shape[1] !== F) throw new ConfigError('MODEL_CARD', `ctr input ${name} must be float32 [batch, ${F}] (the fused width), got ${t.type} [${t.shape.join(', ')}]`);
  }
  if (e.inputs.length !== 2) throw new ConfigError('MODEL_CARD', 'ctr model must have exactly the inputs user and ad');
  const out = e.outputs[0]!;
  if (out.type !== 'float32' || out.shape.length !== 2 || out.shape[1] !== 1) throw new ConfigError('MODEL_CARD', `ctr output ${out.name} must be float32 [batch, 1], got ${out.type} [${out.shape.join(', ')}]`);
  return { model: 'ctr', inputs: CTR_TENSORS.inputs, outputs: { ctr: { name: out.name, type: 'float32' } } };
}

/** An engine tensor spec: a declared tensor with the shape of one item. */
function shaped(t: TensorDecl, itemShape: readonly number[]): TensorSpec {
  return { name: t.name, type: t.type, itemShape };
}

/** The card's tensor, which the pipeline feeds or reads as `as` declares it: same role and element type, the card's name. */
function typed<T extends TensorType>(t: CardTensor, as: TensorDecl<T>, what: string): TensorDecl<T> {
  if (t.type !== as.type) throw new ConfigError('MODEL_CARD', `${what} ${t.name} must be ${as.type}, got ${t.type}`);
  return { name: t.name, type: as.type };
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
  const resize = (p?.resize ?? 'fill') as ImageResize;
  if (!(IMAGE_RESIZES as readonly string[]).includes(resize)) throw new ConfigError('MODEL_CARD', `${where}.resize must be ${IMAGE_RESIZES.join(' or ')}, got ${String(p?.resize)}`);
  // Absent for fill, so a card without it keeps its settings (and tests) as they were.
  return p?.resize === undefined ? { size, layout, mean: triple(p?.mean, 'mean'), std } : { size, layout, mean: triple(p?.mean, 'mean'), std, resize };
}

function positive(v: number | undefined, what: string): number {
  if (v === undefined || !Number.isInteger(v) || v < 1) throw new ConfigError('MODEL_CARD', `${what} must be a positive integer, got ${String(v)}`);
  return v;
}

function named<T extends TensorType>(inputs: readonly CardTensor[], as: TensorDecl<T>, what: string): TensorDecl<T> {
  const t = inputs.find((x) => x.name === as.name);
  if (!t) throw new ConfigError('MODEL_CARD', `${what} must have an input named ${as.name}`);
  return typed(t, as, `${what} input`);
}

