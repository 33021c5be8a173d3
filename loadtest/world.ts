/**
 * A seeded synthetic world for the load test, the benchmark and the targeting-quality evaluation,
 * described by a JSON world file (loadtest/worlds/default.json; fields documented in the README,
 * "Load test, benchmark and evaluation"). It extends the demo's shop (src/devtools/synthetic.ts:
 * the same categories, colours and English/Chinese vocabularies) with a product catalog (items
 * with titles and generated images, Zipf popularity within a category), ads with their own images
 * and copy, users with hidden interest mixtures over 1-3 categories, an event mix and a noise level
 * per event kind. Everything is deterministic for the world's seed: the same file gives the same
 * images, ads, users and events.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { CATEGORIES, pick, seededRandom, type CategorySpec, type SyntheticAd } from '../src/devtools/synthetic.js';
import type { EncodedEvent, EventTopicRole } from '../src/devtools/traffic.js';
import type { AvroCodec } from '../src/serde/avro-codec.js';
import { ClickModel, DEFAULT_CLICK_MODEL, validateClickModelSpec, type ClickModelSpec } from './click-model.js';

/**
 * The world draws events by kind, as the event topics carry them ('click' | 'image' | 'review'),
 * not by modality (src/domain/modalities.ts: a review is embedded as text). The order is the
 * world's own: its event-kind draw depends on it, so the same seed keeps giving the same events.
 */
export type EventRole = EventTopicRole;
export const EVENT_ROLES: readonly EventRole[] = ['click', 'image', 'review'];

export interface WorldSpec {
  /** Seed of everything generated. */
  readonly seed: number;
  /** Category ids to use, from src/devtools/synthetic.ts CATEGORIES; empty or absent: all of them. */
  readonly categories?: readonly string[];
  /** Products per category; their popularity within the category follows Zipf(zipfExponent). */
  readonly itemsPerCategory: number;
  /** Zipf exponent s of item popularity: item of rank r is drawn with weight 1 / r^s. */
  readonly zipfExponent: number;
  /** Product images pre-rendered per category (items share them round-robin). */
  readonly imagesPerCategory: number;
  /** Product image side in pixels. */
  readonly imageSize: number;
  /** Per-pixel noise amplitude (0-255) on top of the category's look. */
  readonly imageNoise: number;
  /** Ads per category, each with its own image and copy. */
  readonly adsPerCategory: number;
  readonly users: number;
  /** Each user's hidden mixture covers between min and max categories (1-3). */
  readonly interestsPerUser: { readonly min: number; readonly max: number };
  /** Share of each event kind; normalised. */
  readonly eventMix: Readonly<Record<EventRole, number>>;
  /** Per event kind, the share of events that ignore the user's interests (a uniformly random category). */
  readonly noise: Readonly<Record<EventRole, number>>;
  /** Share of the words of a review or ad text taken from the generic vocabulary instead of the category's. */
  readonly textNoise: number;
  /** Share of reviews and ads written in Chinese (the rest in English). */
  readonly chineseShare: number;
  /** The evaluation's replay: events per user, spread over timelineSeconds of event time; the last holdoutShare of each user's timeline is held out. */
  readonly eval: { readonly eventsPerUser: number; readonly timelineSeconds: number; readonly holdoutShare: number };
  /** The hidden true click probability per (user, ad, position) (loadtest/click-model.ts): what the simulated ad server clicks with. */
  readonly clickModel: ClickModelSpec;
}

export const DEFAULT_WORLD_SPEC: WorldSpec = {
  seed: 42,
  itemsPerCategory: 200,
  zipfExponent: 1.1,
  imagesPerCategory: 12,
  imageSize: 64,
  imageNoise: 70,
  adsPerCategory: 10,
  users: 400,
  interestsPerUser: { min: 1, max: 3 },
  eventMix: { click: 0.6, image: 0.25, review: 0.15 },
  noise: { click: 0.1, image: 0.15, review: 0.2 },
  textNoise: 0.3,
  chineseShare: 0.5,
  eval: { eventsPerUser: 30, timelineSeconds: 3600, holdoutShare: 0.2 },
  clickModel: DEFAULT_CLICK_MODEL,
};

/** Reads a world file; missing fields take DEFAULT_WORLD_SPEC's values; bad values throw with the field's name. */
export function loadWorldSpec(path: string): WorldSpec {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<WorldSpec>;
  return validateWorldSpec({ ...DEFAULT_WORLD_SPEC, ...raw, eval: { ...DEFAULT_WORLD_SPEC.eval, ...(raw.eval ?? {}) }, clickModel: { ...DEFAULT_WORLD_SPEC.clickModel, ...(raw.clickModel ?? {}) } });
}

export function validateWorldSpec(s: WorldSpec): WorldSpec {
  const fail = (field: string, why: string): never => {
    throw new Error(`world file: ${field} ${why}`);
  };
  const int = (field: string, v: number, lo: number, hi: number): void => {
    if (!Number.isInteger(v) || v < lo || v > hi) fail(field, `must be an integer in ${lo}..${hi} (got ${v})`);
  };
  const share = (field: string, v: number): void => {
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(field, `must be a number in 0..1 (got ${v})`);
  };
  int('seed', s.seed, 0, 2 ** 32 - 1);
  for (const c of s.categories ?? []) if (!CATEGORIES.some((k) => k.id === c)) fail('categories', `has unknown category "${c}" (known: ${CATEGORIES.map((k) => k.id).join(', ')})`);
  int('itemsPerCategory', s.itemsPerCategory, 1, 1_000_000);
  if (!(s.zipfExponent >= 0 && s.zipfExponent <= 5)) fail('zipfExponent', `must be in 0..5 (got ${s.zipfExponent})`);
  int('imagesPerCategory', s.imagesPerCategory, 1, 1000);
  int('imageSize', s.imageSize, 8, 1024);
  int('imageNoise', s.imageNoise, 0, 255);
  int('adsPerCategory', s.adsPerCategory, 1, 100_000);
  int('users', s.users, 1, 10_000_000);
  int('interestsPerUser.min', s.interestsPerUser.min, 1, 3);
  int('interestsPerUser.max', s.interestsPerUser.max, s.interestsPerUser.min, 3);
  for (const m of EVENT_ROLES) {
    if (!(s.eventMix[m] >= 0)) fail(`eventMix.${m}`, 'must be >= 0');
    share(`noise.${m}`, s.noise[m]);
  }
  if (!(EVENT_ROLES.reduce((a, m) => a + s.eventMix[m], 0) > 0)) fail('eventMix', 'must have a positive share');
  share('textNoise', s.textNoise);
  share('chineseShare', s.chineseShare);
  int('eval.eventsPerUser', s.eval.eventsPerUser, 2, 100_000);
  if (!(s.eval.timelineSeconds > 0)) fail('eval.timelineSeconds', 'must be > 0');
  share('eval.holdoutShare', s.eval.holdoutShare);
  validateClickModelSpec(s.clickModel);
  return s;
}

export interface WorldItem {
  readonly itemId: string;
  readonly categoryId: string;
  readonly title: string;
  /** Index into the category's image pool. */
  readonly image: number;
}

export interface WorldUser {
  readonly userId: string;
  /** The hidden interest mixture: categories and weights summing to 1, strongest first. */
  readonly mixture: readonly { readonly categoryId: string; readonly weight: number }[];
}

/** One generated event: the wire record, plus what generated it (the evaluation's ground truth). */
export interface WorldEvent extends EncodedEvent {
  readonly categoryId: string;
  /** True when this event was a noise draw (a category picked at random, not from the mixture). */
  readonly noise: boolean;
  readonly eventTime: number;
}

const COMMON_EN = ['great', 'good', 'value', 'quality', 'fast', 'delivery', 'recommend', 'nice', 'price', 'arrived', 'ok', 'works'];
const COMMON_ZH = ['很好', '质量', '推荐', '快递', '满意', '不错', '价格', '包装', '一般', '喜欢'];
const ACTIONS = ['VIEW', 'VIEW', 'VIEW', 'CLICK', 'CLICK', 'ADD_TO_CART', 'PURCHASE'] as const;

/** Cumulative weights of Zipf(s) over ranks 1..n. */
export function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let r = 1; r <= n; r++) cdf[r - 1] = acc += 1 / r ** s;
  for (let i = 0; i < n; i++) cdf[i]! /= acc;
  return cdf;
}

/** Smallest index whose cumulative weight exceeds u (binary search). */
export function sampleCdf(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Words from the category's vocabulary, `noise` of them from the generic one. */
function text(cat: CategorySpec, rand: () => number, chinese: boolean, noise: number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    const generic = rand() < noise;
    out.push(chinese ? pick(rand, generic ? COMMON_ZH : cat.zh) : pick(rand, generic ? COMMON_EN : cat.en));
  }
  return chinese ? out.join('') + '。' : out.join(' ') + '.';
}

/**
 * A product image: the category's colour, a per-image variant (a brightness shift and a diagonal
 * stripe pattern of the image's own phase) and per-pixel noise. Similar within a category,
 * different across.
 */
async function renderImage(cat: CategorySpec, rand: () => number, size: number, noise: number, format: 'jpeg' | 'png'): Promise<Buffer> {
  const px = Buffer.alloc(size * size * 3);
  const shift = (rand() - 0.5) * 40;
  const period = 6 + Math.floor(rand() * 10);
  const phase = Math.floor(rand() * period);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const stripe = (x + y + phase) % period < period / 2 ? 12 : -12;
      const i = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) px[i + c] = Math.max(0, Math.min(255, Math.round(cat.rgb[c]! + shift + stripe + (rand() - 0.5) * noise)));
    }
  }
  return sharp(px, { raw: { width: size, height: size, channels: 3 } }).toFormat(format).toBuffer();
}

export class World {
  readonly categories: readonly CategorySpec[];
  readonly items = new Map<string, WorldItem[]>();
  readonly images = new Map<string, { imageId: string; data: Buffer }[]>();
  readonly ads: SyntheticAd[] = [];
  readonly users: WorldUser[] = [];
  /** Set once the ads and users exist (create). */
  private clicks: ClickModel | undefined;
  private readonly zipf: Float64Array;
  private readonly mixCdf: Float64Array;

  private constructor(readonly spec: WorldSpec) {
    this.categories = spec.categories?.length ? CATEGORIES.filter((c) => spec.categories!.includes(c.id)) : CATEGORIES;
    this.zipf = zipfCdf(spec.itemsPerCategory, spec.zipfExponent);
    const total = EVENT_ROLES.reduce((a, m) => a + spec.eventMix[m], 0);
    let acc = 0;
    this.mixCdf = Float64Array.from(EVENT_ROLES, (m) => (acc += spec.eventMix[m] / total));
  }

  /** Builds the world: images (pre-rendered pools), items, ads and users, all from the seed. */
  static async create(spec: WorldSpec = DEFAULT_WORLD_SPEC): Promise<World> {
    const w = new World(validateWorldSpec(spec));
    const s = w.spec;
    const rand = seededRandom(s.seed);
    for (const cat of w.categories) {
      const pool = [];
      for (let i = 0; i < s.imagesPerCategory; i++) pool.push({ imageId: `wimg-${cat.id}-${i}`, data: await renderImage(cat, rand, s.imageSize, s.imageNoise, i % 2 === 0 ? 'jpeg' : 'png') });
      w.images.set(cat.id, pool);
      const items: WorldItem[] = [];
      for (let i = 0; i < s.itemsPerCategory; i++) {
        items.push({ itemId: `witem-${cat.id}-${i}`, categoryId: cat.id, title: text(cat, rand, rand() < s.chineseShare, s.textNoise, 3), image: i % s.imagesPerCategory });
      }
      w.items.set(cat.id, items);
      for (let i = 0; i < s.adsPerCategory; i++) {
        const zh = rand() < s.chineseShare;
        w.ads.push({
          adId: `wad-${cat.id}-${i}`,
          advertiserId: `wadv-${cat.id}-${i % 4}`,
          title: text(cat, rand, zh, s.textNoise, 3),
          description: text(cat, rand, zh, s.textNoise, 6 + Math.floor(rand() * 4)),
          categoryId: cat.id,
          image: await renderImage(cat, rand, 32, s.imageNoise, 'jpeg'),
          bidMicros: 100_000 + Math.floor(rand() * 900_000),
        });
      }
    }
    const C = w.categories.length;
    for (let u = 0; u < s.users; u++) {
      const n = Math.min(C, s.interestsPerUser.min + Math.floor(rand() * (s.interestsPerUser.max - s.interestsPerUser.min + 1)));
      const chosen = new Set<number>();
      while (chosen.size < n) chosen.add(Math.floor(rand() * C));
      // Weights: exponential draws, normalised (a flat Dirichlet), strongest first.
      const raw = [...chosen].map((c) => ({ categoryId: w.categories[c]!.id, weight: -Math.log(1 - rand()) }));
      const sum = raw.reduce((a, r) => a + r.weight, 0);
      w.users.push({ userId: `wuser-${u}`, mixture: raw.map((r) => ({ categoryId: r.categoryId, weight: r.weight / sum })).sort((a, b) => b.weight - a.weight) });
    }
    // A stream of its own: the draws above (and so every existing world) stay as they were.
    w.clicks = new ClickModel(s.clickModel, w, s.seed + 4);
    return w;
  }

  /** The hidden true click probability of this world's users on its ads. */
  get clickModel(): ClickModel {
    return this.clicks!;
  }

  static async fromFile(path: string): Promise<World> {
    return World.create(loadWorldSpec(path));
  }

  category(id: string): CategorySpec {
    const c = this.categories.find((k) => k.id === id);
    if (!c) throw new Error(`unknown category ${id}`);
    return c;
  }

  /** An event generator over this world's users, deterministic for `seed`. */
  traffic(codec: AvroCodec, opts: { seed?: number; eventIdPrefix?: string; only?: EventRole } = {}): WorldTraffic {
    return new WorldTraffic(this, codec, seededRandom(opts.seed ?? this.spec.seed + 1), opts.eventIdPrefix ?? 'wev', this.mixCdf, this.zipf, opts.only);
  }

  /**
   * The evaluation's replay: eventsPerUser events per user, spread evenly over timelineSeconds of
   * event time ending at `endTime`, all users interleaved in time order. Each event says whether it
   * is held out (the last holdoutShare of its user's timeline).
   */
  timeline(codec: AvroCodec, endTime: number, opts: { only?: EventRole } = {}): { event: WorldEvent; heldOut: boolean }[] {
    const { eventsPerUser, timelineSeconds, holdoutShare } = this.spec.eval;
    const gen = this.traffic(codec, { seed: this.spec.seed + 2, eventIdPrefix: 'eval', ...(opts.only ? { only: opts.only } : {}) });
    const keep = Math.max(1, Math.round(eventsPerUser * (1 - holdoutShare)));
    const rand = seededRandom(this.spec.seed + 3);
    const out: { event: WorldEvent; heldOut: boolean; t: number }[] = [];
    const span = timelineSeconds * 1000;
    for (const user of this.users) {
      const offset = rand() * (span / eventsPerUser); // users' events interleave rather than tie
      for (let i = 0; i < eventsPerUser; i++) {
        const t = Math.round(endTime - span + offset + (i * span) / eventsPerUser);
        out.push({ event: gen.next(t, user), heldOut: i >= keep, t });
      }
    }
    out.sort((a, b) => a.t - b.t);
    return out.map(({ event, heldOut }) => ({ event, heldOut }));
  }
}

/** Draws events: a user, a kind by the mix, a category (the user's mixture, or noise), a Zipf item. */
export class WorldTraffic {
  private seq = 0;
  constructor(
    private readonly world: World,
    private readonly codec: AvroCodec,
    private readonly rand: () => number,
    private readonly prefix: string,
    private readonly mixCdf: Float64Array,
    private readonly zipf: Float64Array,
    private readonly only: EventRole | undefined,
  ) {}

  /** Events made so far. */
  get count(): number {
    return this.seq;
  }

  next(eventTime: number, user: WorldUser = this.world.users[Math.floor(this.rand() * this.world.users.length)]!): WorldEvent {
    const r = this.rand;
    const s = this.world.spec;
    const role: EventRole = this.only ?? EVENT_ROLES[sampleCdf(this.mixCdf, r())]!;
    const noise = r() < s.noise[role];
    let categoryId: string;
    if (noise) categoryId = this.world.categories[Math.floor(r() * this.world.categories.length)]!.id;
    else {
      let u = r();
      categoryId = user.mixture[user.mixture.length - 1]!.categoryId;
      for (const m of user.mixture) {
        if (u < m.weight) {
          categoryId = m.categoryId;
          break;
        }
        u -= m.weight;
      }
    }
    const item = this.world.items.get(categoryId)![sampleCdf(this.zipf, r())]!;
    const eventId = `${this.prefix}-${this.seq++}`;
    const userId = user.userId;
    const key = Buffer.from(userId, 'utf8');
    let value: Buffer;
    if (role === 'click') {
      value = this.codec.encode('dev.adstream.events.ClickEvent', { eventId, userId, itemId: item.itemId, categoryId, action: pick(r, ACTIONS), eventTime, sessionId: null });
    } else if (role === 'image') {
      const img = this.world.images.get(categoryId)![item.image]!;
      value = this.codec.encode('dev.adstream.events.ImageViewEvent', {
        eventId, userId, itemId: item.itemId, categoryId: r() < 0.5 ? categoryId : null, imageId: img.imageId,
        image: { 'dev.adstream.events.InlineImage': { data: img.data, contentType: null } }, dwellMs: null, eventTime,
      });
    } else {
      const chinese = r() < s.chineseShare;
      value = this.codec.encode('dev.adstream.events.ReviewEvent', {
        eventId, userId, itemId: item.itemId, categoryId: null, rating: 3 + Math.floor(r() * 3),
        text: text(this.world.category(categoryId), r, chinese, s.textNoise, 4 + Math.floor(r() * 5)), language: chinese ? 'zh-CN' : 'en', eventTime,
      });
    }
    return { role, eventId, userId, key, value, categoryId, noise, eventTime };
  }
}
