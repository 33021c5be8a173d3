import { RejectedRecordError, errorMessage } from '../errors.js';
import type { Fuser } from '../features/fuser.js';
import type { MultimodalEmbedder } from '../features/multimodal-embedder.js';
import type { EventDecoder } from '../ingest/event-decoder.js';
import type { Ad, InputRecord } from '../ingest/events.js';
import type { DeadLetterOutput } from '../core/outputs.js';
import type { AdCatalog } from './ad-catalog.js';

const NONE = new Float32Array(0);

/**
 * Applies records of the compacted ad topic to the catalog: upsert, deactivate, or delete on a
 * tombstone. Ads are embedded by the same encoders as user events and fused from all their
 * modalities into the same space F; a batch of records is embedded together, then applied in order.
 */
export class CatalogUpdater {
  constructor(
    private readonly decoder: EventDecoder,
    private readonly embedder: MultimodalEmbedder,
    private readonly fuser: Fuser,
    private readonly catalog: AdCatalog,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Applies the records in order; returns the ones that could not be used. */
  async apply(records: readonly InputRecord[]): Promise<DeadLetterOutput[]> {
    const rejected: DeadLetterOutput[] = [];
    const changes: ({ kind: 'delete'; adId: string } | { kind: 'upsert'; ad: Ad; row: number })[] = [];
    const ads: Ad[] = [];
    for (const r of records) {
      try {
        const ad = this.decoder.decodeAd(r);
        if (ad === null) {
          const key = r.key?.toString('utf8');
          if (key) changes.push({ kind: 'delete', adId: key });
        } else if (!ad.active) {
          changes.push({ kind: 'upsert', ad, row: -1 }); // inactive ads get no row, so no embedding
        } else {
          changes.push({ kind: 'upsert', ad, row: ads.length });
          ads.push(ad);
        }
      } catch (err) {
        if (!(err instanceof RejectedRecordError)) throw err;
        rejected.push({ source: r, reason: err.reason, message: errorMessage(err), failedAt: this.clock() });
      }
    }
    const embeddings = ads.length > 0 ? await this.fuser.fuseAds(await this.embedder.embedAds(ads), ads.length) : NONE;
    const dim = this.fuser.dim;
    for (const c of changes) {
      if (c.kind === 'delete') this.catalog.delete(c.adId);
      else this.catalog.upsert(c.ad, embeddings, Math.max(0, c.row) * dim);
    }
    return rejected;
  }
}
