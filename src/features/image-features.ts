import { LRUCache } from 'lru-cache';
import { RejectedRecordError } from '../errors.js';
import type { ImageSource } from '../ingest/events.js';
import { imageSignature } from './image-signature.js';

export interface ImageFeaturesOptions {
  readonly maxPixels: number;
  /** Signatures kept by image id, so a popular product image is decoded once. */
  readonly cacheEntries: number;
}

/**
 * Image id -> colour signature, decoding with sharp (off the event loop, on libuv's pool) only on
 * a cache miss. Concurrent requests for the same image share one decode.
 */
export class ImageFeatures {
  private readonly cache: LRUCache<string, Float32Array>;
  private readonly inFlight = new Map<string, Promise<Float32Array>>();
  hits = 0;
  misses = 0;

  constructor(private readonly opts: ImageFeaturesOptions) {
    this.cache = new LRUCache({ max: opts.cacheEntries });
  }

  async signature(imageId: string, source: ImageSource): Promise<Float32Array> {
    const cached = this.cache.get(imageId);
    if (cached) {
      this.hits++;
      return cached;
    }
    const pending = this.inFlight.get(imageId);
    if (pending) {
      this.hits++;
      return pending;
    }
    this.misses++;
    const p = this.decode(source).finally(() => this.inFlight.delete(imageId));
    this.inFlight.set(imageId, p);
    const sig = await p;
    this.cache.set(imageId, sig);
    return sig;
  }

  private async decode(source: ImageSource): Promise<Float32Array> {
    if (source.kind === 'reference') {
      // Fetching by reference needs an allow-list of origins/roots to be safe (no SSRF); none is
      // configured in this version, so references are refused rather than fetched blindly.
      throw new RejectedRecordError('IMAGE_UNREADABLE', `image reference ${source.uri.slice(0, 200)} not fetched: no allowed image origins are configured`);
    }
    return imageSignature(source.data, { maxPixels: this.opts.maxPixels });
  }
}
