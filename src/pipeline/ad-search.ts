/**
 * Search the active ads by a text or an image: the query is embedded and fused exactly as a
 * review or an image view of a user would be (so it lands where such a user's interest lands),
 * then compared with every ad's fused vector by cosine. Brute force over the catalog's rows: a
 * query path for people and tools, not the per-event hot path (retrieve.ts serves that).
 */
import { createHash } from 'node:crypto';
import type { AdCatalog } from '../catalog/ad-catalog.js';
import type { Modality } from '../domain/modalities.js';
import type { UserEvent } from '../domain/events.js';
import { cosineToUnit } from '../util/vectors.js';
import type { MultimodalEmbedder } from './embed.js';
import type { Fuser } from './fuse.js';

export type SearchQuery = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'image'; readonly data: Buffer };

export interface SearchHit {
  readonly adId: string;
  readonly title: string;
  readonly categoryId: string;
  /** Cosine of the query's fused vector and the ad's, in [-1, 1]. */
  readonly score: number;
}

export interface SearchResult {
  /** The modality the query was embedded as. */
  readonly modality: Modality;
  readonly hits: readonly SearchHit[];
}

export interface SearchDeps {
  readonly embedder: MultimodalEmbedder;
  readonly fuser: Fuser;
  readonly catalog: AdCatalog;
}

/** The k active ads closest to the query. A query that cannot be embedded throws its RejectedRecordError (as the event would be dead-lettered). */
export async function searchAds(deps: SearchDeps, query: SearchQuery, k: number): Promise<SearchResult> {
  const base = { eventId: 'search', userId: 'search', itemId: 'search', eventTime: 0, categoryId: null };
  const event: UserEvent =
    query.kind === 'text'
      ? { ...base, kind: 'review' as const, rating: 5, text: query.text }
      // Keyed by content in the image cache: the same picture searched twice is encoded once.
      : { ...base, kind: 'image' as const, imageId: `search:${createHash('sha256').update(query.data).digest('hex')}`, image: { kind: 'inline' as const, data: query.data, contentType: null } };
  const embedded = await deps.embedder.embedEvents([event]);
  const failure = embedded.failures.get(0);
  if (failure) throw failure;
  const q = deps.fuser.fuseEvents(embedded, [0]);
  const { dim } = deps.catalog;
  const ads = deps.catalog.embeddings();
  const n = ads.length / dim;
  const scores = new Float32Array(n);
  for (let r = 0; r < n; r++) scores[r] = cosineToUnit(q, 0, ads, r * dim, dim);
  const rows = Array.from({ length: n }, (_, r) => r).sort((a, b) => scores[b]! - scores[a]!).slice(0, k);
  return {
    modality: query.kind === 'text' ? 'text' : 'image',
    hits: rows.map((r) => {
      const ad = deps.catalog.adAt(r);
      return { adId: ad.adId, title: ad.title, categoryId: ad.categoryId, score: scores[r]! };
    }),
  };
}
