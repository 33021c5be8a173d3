import { RejectedRecordError } from '../domain/errors.js';
import type { Ad, InputRecord } from '../domain/events.js';
import { deadLetterOf, type DeadLetterOutput } from '../domain/outputs.js';
import type { AdCatalog } from './ad-catalog.js';

/**
 * What the catalog needs of the pipeline's stages (decode, embed, fuse): named here so the catalog
 * sits below the pipeline and the composition root hands it the stages.
 */
export interface AdEncoding<Blocks> {
  readonly decoder: { decodeAd(record: InputRecord): Ad | null };
  readonly embedder: { embedAds(ads: readonly Ad[]): Promise<Blocks> };
  readonly fuser: { readonly dim: number; fuseAds(blocks: Blocks, n: number): Promise<Float32Array> };
}

const NONE = new Float32Array(0);

/**
 * Applies records of the compacted ad topic to the catalog: upsert, deactivate, or delete on a
 * tombstone. Ads are embedded by the same encoders as user events and fused from all their
 * modalities into the same space F; a batch of records is embedded together, then applied in order.
 */
export class CatalogUpdater<Blocks = unknown> {
  private readonly decoder: AdEncoding<Blocks>['decoder'];
  private readonly embedder: AdEncoding<Blocks>['embedder'];
  private readonly fuser: AdEncoding<Blocks>['fuser'];

  constructor(
    stages: AdEncoding<Blocks>,
    private readonly catalog: AdCatalog,
    private readonly clock: () => number = Date.now,
  ) {
    ({ decoder: this.decoder, embedder: this.embedder, fuser: this.fuser } = stages);
  }

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
        rejected.push(deadLetterOf(r, err, this.clock()));
      }
    }
    const embeddings = ads.length > 0 ? await this.fuser.fuseAds(await this.embedder.embedAds(ads), ads.length) : NONE;
    const dim = this.fuser.dim;
    for (const c of changes) {
      if (c.kind === 'delete') this.catalog.delete(c.adId);
      else this.catalog.upsert(withoutCreative(c.ad), embeddings, Math.max(0, c.row) * dim);
    }
    return rejected;
  }
}

/**
 * The ad as the catalog keeps it: its creative is in its vector already (and in the persisted
 * embeddings by content hash), and nothing reads it again, while inline bytes are a slice of the
 * fetched record that would keep about 650 bytes per ad alive, and the fetch buffer around them.
 */
function withoutCreative(ad: Ad): Ad {
  return ad.image === null ? ad : { ...ad, image: null };
}
