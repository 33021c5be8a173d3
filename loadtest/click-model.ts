/**
 * The synthetic world's hidden truth about clicks: the probability that a user clicks an ad shown
 * in a slot,
 *
 *   p(click | user, ad, position) = positionBias(position) x sigmoid(base + affinity x w(user, ad) + quality(ad))
 *
 * where w(user, ad) is the weight of the ad's category in the user's hidden mixture (0 when the
 * category is not in it), quality(ad) a hidden per-ad logit offset ~ N(0, qualitySd) and
 * positionBias(position) = 1 / (1 + position)^positionDecay (slot 0 = 1). Neither the processor
 * nor the trainer sees any of it: the simulated ad server clicks with it, the oracle ranks by it.
 * Deterministic for the world's seed (its own random stream, so the world's other draws stay as they were).
 */
import { gaussian, seededRandom } from '../src/util/random.js';

export interface ClickModelSpec {
  /** Logit of a click on an ad of no interest to the user, of average quality, in slot 0. */
  readonly base: number;
  /** Logit added per unit of mixture weight of the ad's category (weight 1: a single-interest user's own category). */
  readonly affinity: number;
  /** Standard deviation of the hidden per-ad quality (a logit offset). */
  readonly qualitySd: number;
  /** Position bias exponent: slot s is clicked 1 / (1 + s)^positionDecay times as often as slot 0. */
  readonly positionDecay: number;
}

export const DEFAULT_CLICK_MODEL: ClickModelSpec = { base: -4.5, affinity: 3, qualitySd: 0.8, positionDecay: 0.5 };

/** The fields of a world the click model reads. */
export interface ClickWorld {
  readonly ads: readonly { readonly adId: string; readonly categoryId: string }[];
  readonly users: readonly { readonly userId: string; readonly mixture: readonly { readonly categoryId: string; readonly weight: number }[] }[];
}

export class ClickModel {
  private readonly quality = new Map<string, number>();
  private readonly categoryOf = new Map<string, string>();
  private readonly mixtures = new Map<string, ReadonlyMap<string, number>>();

  constructor(
    readonly spec: ClickModelSpec,
    world: ClickWorld,
    seed: number,
  ) {
    const normal = gaussian(seededRandom(seed));
    // Drawn in catalog order, so an ad's quality depends only on the seed and its place.
    for (const ad of world.ads) {
      this.quality.set(ad.adId, spec.qualitySd * normal());
      this.categoryOf.set(ad.adId, ad.categoryId);
    }
    for (const u of world.users) this.mixtures.set(u.userId, new Map(u.mixture.map((m) => [m.categoryId, m.weight])));
  }

  /** The hidden quality of an ad (logit offset); 0 for an ad the world does not know. */
  qualityOf(adId: string): number {
    return this.quality.get(adId) ?? 0;
  }

  /** Weight of the ad's category in the user's hidden mixture (0 for unknown users or ads). */
  affinityOf(userId: string, adId: string): number {
    const c = this.categoryOf.get(adId);
    return c === undefined ? 0 : (this.mixtures.get(userId)?.get(c) ?? 0);
  }

  positionBias(position: number): number {
    return 1 / (1 + position) ** this.spec.positionDecay;
  }

  /** p(click | user, ad, position). */
  probability(userId: string, adId: string, position: number): number {
    const s = this.spec;
    const logit = s.base + s.affinity * this.affinityOf(userId, adId) + this.qualityOf(adId);
    return this.positionBias(position) / (1 + Math.exp(-logit));
  }
}

/** Checks a click model spec; names the bad field. */
export function validateClickModelSpec(s: ClickModelSpec): ClickModelSpec {
  for (const [field, v] of Object.entries(s)) if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`world file: clickModel.${field} must be a finite number (got ${String(v)})`);
  if (s.qualitySd < 0) throw new Error(`world file: clickModel.qualitySd must be >= 0 (got ${s.qualitySd})`);
  if (s.positionDecay < 0) throw new Error(`world file: clickModel.positionDecay must be >= 0 (got ${s.positionDecay})`);
  return s;
}
