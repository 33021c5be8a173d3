import { RejectedRecordError, errorMessage } from '../errors.js';
import type { HashedFeaturizer } from '../features/featurizer.js';
import type { ImageFeatures } from '../features/image-features.js';
import type { EventDecoder } from '../ingest/event-decoder.js';
import type { InputRecord } from '../ingest/events.js';
import type { DeadLetterOutput } from '../core/outputs.js';
import type { AdCatalog } from './ad-catalog.js';

/**
 * Applies records of the compacted ad topic to the catalog: upsert, deactivate, or delete on a
 * tombstone. Ads are embedded by the same featurizer as user events, so both share one space.
 */
export class CatalogUpdater {
  private readonly scratch: Float32Array;

  constructor(
    private readonly decoder: EventDecoder,
    private readonly featurizer: HashedFeaturizer,
    private readonly images: ImageFeatures,
    private readonly catalog: AdCatalog,
    private readonly clock: () => number = Date.now,
  ) {
    this.scratch = new Float32Array(featurizer.dim);
  }

  /** Applies the records in order; returns the ones that could not be used. */
  async apply(records: readonly InputRecord[]): Promise<DeadLetterOutput[]> {
    const rejected: DeadLetterOutput[] = [];
    for (const r of records) {
      try {
        const ad = this.decoder.decodeAd(r);
        if (ad === null) {
          const key = r.key?.toString('utf8');
          if (key) this.catalog.delete(key);
          continue;
        }
        // A creative that cannot be decoded leaves the ad usable on its text and category.
        let sig: Float32Array | null = null;
        if (ad.image) sig = await this.images.signature(`ad:${ad.adId}:${ad.updatedAt}`, ad.image).catch(() => null);
        this.featurizer.ad(ad.categoryId, ad.title, ad.description, sig, this.scratch, 0);
        this.catalog.upsert(ad, this.scratch);
      } catch (err) {
        if (!(err instanceof RejectedRecordError)) throw err;
        rejected.push({ source: r, reason: err.reason, message: errorMessage(err), failedAt: this.clock() });
      }
    }
    return rejected;
  }
}
