import { INDEX_QUANTIZATIONS } from '../inference/vector-index.js';
import type { SettingTable, SettingValues } from '../util/settings.js';

export const RETRIEVAL_MODES = ['exact', 'ann', 'auto'] as const;
export type RetrievalMode = (typeof RETRIEVAL_MODES)[number];

/** Retrieval over the catalog: exact scan or HNSW index, and the index's parameters. */
export const CATALOG_SETTINGS = {
  retrieval: { env: 'RETRIEVAL', kind: 'enum', default: 'auto', values: RETRIEVAL_MODES, doc: 'How candidates are found: exact (scan every active ad: the reference), ann (HNSW index on the inference workers), auto (exact below RETRIEVAL_EXACT_BELOW active ads, ann above).' },
  retrievalExactBelow: { env: 'RETRIEVAL_EXACT_BELOW', kind: 'int', default: 50000, min: 0, max: 1000000000, doc: 'With RETRIEVAL=auto: catalogs with fewer active ads are scanned exactly (the crossover measured by npm run bench:catalog).' },
  retrievalCacheRows: { env: 'RETRIEVAL_CACHE_ROWS', kind: 'int', default: 20000, min: 0, max: 100000000, doc: 'Query rows (user interests) whose candidates are kept while the catalog and the models stay the same: an interest no event moved is not searched again. About 1.5 KB a row at TOP_K 10; 0 turns it off.' },
  retrievalPoolDrift: { env: 'RETRIEVAL_POOL_DRIFT', kind: 'number', default: 0.002, min: 0, max: 2, doc: 'With the index: an interest within this cosine distance of the row its candidate pool was searched for is scored against that pool (RETRIEVAL_POOL_SIZE ads, exact similarity and a fresh CTR) instead of searching the index again. 0 turns pools off. Their measured recall against a search: adstream_retrieval_pool_recall.' },
  retrievalPoolSize: { env: 'RETRIEVAL_POOL_SIZE', kind: 'int', default: 80, min: 1, max: 10000, doc: 'Ads a candidate pool holds: the top this many of the search (at least 2 x TOP_K, what each interest asks for). At RETRIEVAL_POOL_DRIFT 0.002, 80 kept recall@20 against the exact scan at the index\'s own (0.984 and 0.983, npm run bench:catalog at 10^5), 40 did not (0.940).' },
  retrievalPoolMaxAgeS: { env: 'RETRIEVAL_POOL_MAX_AGE_S', kind: 'int', default: 30, min: 1, max: 86400, doc: 'A candidate pool older than this is searched again, so ads added since reach the user.' },
  retrievalPoolUsers: { env: 'RETRIEVAL_POOL_USERS', kind: 'int', default: 20000, min: 0, max: 100000000, doc: 'Users whose candidate pools are kept (least recently used go first), one pool per interest, about 2.1 KB a pool at RETRIEVAL_POOL_SIZE 80.' },
  retrievalPoolCheckEvery: { env: 'RETRIEVAL_POOL_CHECK_EVERY', kind: 'int', default: 64, min: 0, max: 1000000000, doc: 'Every this many pooled rows, one is searched too and the share of the search\'s candidates the pool gave is observed in adstream_retrieval_pool_recall (0: never).' },
  annConnectivity: { env: 'ANN_CONNECTIVITY', kind: 'int', default: 16, min: 2, max: 256, doc: 'HNSW neighbours per ad (M): memory and recall grow with it.' },
  annExpansionAdd: { env: 'ANN_EXPANSION_ADD', kind: 'int', default: 128, min: 1, max: 4096, doc: 'HNSW candidates considered when an ad is added (efConstruction).' },
  annQuantization: { env: 'ANN_QUANTIZATION', kind: 'enum', default: 'f16', values: INDEX_QUANTIZATIONS, doc: 'How the HNSW graph stores ad vectors: f16 halves its memory and searched faster than f32 at recall@10 0.98 (npm run bench:catalog); the CTR re-rank reads f32 copies either way.' },
  annExpansionSearch: { env: 'ANN_EXPANSION_SEARCH', kind: 'int', default: 128, min: 1, max: 4096, doc: 'HNSW candidates considered per query (ef): recall against queries/s.' },
} as const satisfies SettingTable;

export type CatalogSettings = SettingValues<typeof CATALOG_SETTINGS>;
