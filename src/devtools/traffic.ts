import type { AvroCodec } from '../serde/avro-codec.js';
import { CATEGORIES, pick, productImage, reviewText, seededRandom, type CategorySpec, type SyntheticAd, type SyntheticUser } from './synthetic.js';

export type EventTopicRole = 'click' | 'image' | 'review';

export interface EncodedEvent {
  readonly role: EventTopicRole;
  readonly eventId: string;
  readonly userId: string;
  readonly key: Buffer;
  readonly value: Buffer;
}

const ACTIONS = ['VIEW', 'VIEW', 'VIEW', 'CLICK', 'CLICK', 'ADD_TO_CART', 'PURCHASE'] as const;

/**
 * Draws the synthetic users' events (clicks 60 %, image views 25 %, reviews 15 %) and encodes them
 * in the wire format, as the site's producers would. `offInterest` is the share of events that
 * ignore the user's interests (noise).
 */
export class TrafficFactory {
  private readonly rand: () => number;
  private seq = 0;
  private uniqueImageIds = false;
  private readonly images = new Map<string, { imageId: string; data: Buffer }[]>();

  private constructor(
    private readonly codec: AvroCodec,
    private readonly users: readonly SyntheticUser[],
    private readonly offInterest: number,
    seed: number,
  ) {
    this.rand = seededRandom(seed);
  }

  /** Pre-renders a pool of product images per category, so traffic generation stays cheap. */
  /**
   * `uniqueImageIds`: every image view names a new image id (same pooled bytes), so each one misses
   * the embedding cache and is decoded and encoded: the heaviest traffic for the processor.
   */
  static async create(codec: AvroCodec, users: readonly SyntheticUser[], opts: { seed?: number; offInterest?: number; imagesPerCategory?: number; uniqueImageIds?: boolean } = {}): Promise<TrafficFactory> {
    const f = new TrafficFactory(codec, users, opts.offInterest ?? 0.1, opts.seed ?? 3);
    f.uniqueImageIds = opts.uniqueImageIds ?? false;
    const perCat = opts.imagesPerCategory ?? 8;
    for (const cat of CATEGORIES) {
      const pool = [];
      for (let i = 0; i < perCat; i++) pool.push({ imageId: `img-${cat.id}-${i}`, data: await productImage(cat, f.rand, 64, i % 2 === 0 ? 'jpeg' : 'png') });
      f.images.set(cat.id, pool);
    }
    return f;
  }

  next(eventTime: number, user: SyntheticUser = pick(this.rand, this.users)): EncodedEvent {
    const cat: CategorySpec = this.rand() < this.offInterest ? pick(this.rand, CATEGORIES) : pick(this.rand, user.interests);
    const eventId = `ev-${this.seq++}`;
    const itemId = `item-${cat.id}-${Math.floor(this.rand() * 50)}`;
    const key = Buffer.from(user.userId, 'utf8');
    const r = this.rand();
    if (r < 0.6) {
      const value = this.codec.encode('dev.adstream.events.ClickEvent', { eventId, userId: user.userId, itemId, categoryId: cat.id, action: pick(this.rand, ACTIONS), eventTime, sessionId: null });
      return { role: 'click', eventId, userId: user.userId, key, value };
    }
    if (r < 0.85) {
      const img = pick(this.rand, this.images.get(cat.id)!);
      const value = this.codec.encode('dev.adstream.events.ImageViewEvent', {
        eventId, userId: user.userId, itemId, categoryId: this.rand() < 0.5 ? cat.id : null, imageId: this.uniqueImageIds ? `${img.imageId}/${eventId}` : img.imageId,
        image: { 'dev.adstream.events.InlineImage': { data: img.data, contentType: null } }, dwellMs: null, eventTime,
      });
      return { role: 'image', eventId, userId: user.userId, key, value };
    }
    const chinese = this.rand() < 0.5;
    const value = this.codec.encode('dev.adstream.events.ReviewEvent', {
      eventId, userId: user.userId, itemId, categoryId: null, rating: 3 + Math.floor(this.rand() * 3),
      text: reviewText(cat, this.rand, chinese), language: chinese ? 'zh-CN' : 'en', eventTime,
    });
    return { role: 'review', eventId, userId: user.userId, key, value };
  }
}

export function encodeAd(codec: AvroCodec, ad: SyntheticAd, updatedAt: number, active = true): Buffer {
  return codec.encode('dev.adstream.catalog.Ad', {
    adId: ad.adId, advertiserId: ad.advertiserId, title: ad.title, description: ad.description, categoryId: ad.categoryId,
    image: { 'dev.adstream.catalog.AdInlineImage': { data: ad.image, contentType: null } },
    bidMicros: ad.bidMicros, active, updatedAt,
  });
}
