import { INDEX_QUANTIZATIONS } from '../inference/vector-index.js';
import type { SettingTable, SettingValues } from '../util/settings.js';

export const RETRIEVAL_MODES = ['exact', 'ann', 'auto'] as const;
export type RetrievalMode = (typeof RETRIEVAL_MODES)[number];

/** Retrieval over the catalog: exact scan or HNSW index, and the index's parameters. */
export const CATALOG_SETTINGS = {
  retrieval: { env: 'RETRIEVAL', kind: 'enum', default: 'auto', values: RETRIEVAL_MODES, doc: 'How candidates are found: exact (scan every active ad: the reference), ann (HNSW index on the inference workers), auto (exact below RETRIEVAL_EXACT_BELOW active ads, ann above).' },
  retrievalExactBelow: { env: 'RETRIEVAL_EXACT_BELOW', kind: 'int', default: 50000, min: 0, max: 1000000000, doc: 'With RETRIEVAL=auto: catalogs with fewer active ads are scanned exactly (the crossover measured by npm run bench:catalog).' },
  retrievalCacheRows: { env: 'RETRIEVAL_CACHE_ROWS', kind: 'int', default: 20000, min: 0, max: 100000000, doc: 'Query rows (user interests) whose candidates are kept while the catalog and the models stay the same: an interest no event moved is not searched again. About 1.5 KB a row at TOP_K 10; 0 turns it off.' },
  annConnectivity: { env: 'ANN_CONNECTIVITY', kind: 'int', default: 16, min: 2, max: 256, doc: 'HNSW neighbours per ad (M): memory and recall grow with it.' },
  annExpansionAdd: { env: 'ANN_EXPANSION_ADD', kind: 'int', default: 128, min: 1, max: 4096, doc: 'HNSW candidates considered when an ad is added (efConstruction).' },
  annQuantization: { env: 'ANN_QUANTIZATION', kind: 'enum', default: 'f16', values: INDEX_QUANTIZATIONS, doc: 'How the HNSW graph stores ad vectors: f16 halves its memory and searched faster than f32 at recall@10 0.98 (npm run bench:catalog); the CTR re-rank reads f32 copies either way.' },
  annExpansionSearch: { env: 'ANN_EXPANSION_SEARCH', kind: 'int', default: 128, min: 1, max: 4096, doc: 'HNSW candidates considered per query (ef): recall against queries/s.' },
} as const satisfies SettingTable;

export type CatalogSettings = SettingValues<typeof CATALOG_SETTINGS>;
