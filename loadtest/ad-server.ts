/**
 * The ad server, simulated: for each scored output it shows the first `slots` candidates (slot =
 * position in the output), reports an impression of each on the ad-feedback topic with the
 * output's id, and clicks each with the world's hidden probability (loadtest/click-model.ts), a
 * click reported a random delay after its impression, within the attribution window. It also
 * keeps the tallies of the online evaluation: impressions, realised clicks, the expected clicks of
 * what was shown (the sum of the true probabilities: the same figure without the coin flips) and
 * those of the oracle, which shows the best `slots` by true probability, among the output's
 * candidates and among the whole catalog.
 */
import type { OutboundRecord } from '../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../src/domain/outputs.js';
import type { AvroCodec } from '../src/serde/avro-codec.js';
import { RecordNames } from '../src/serde/record-names.js';
import { seededRandom } from '../src/util/random.js';
import type { ClickModel } from './click-model.js';

export interface AdServerOptions {
  /** Slots per page: the top N of each output shown. */
  readonly slots: number;
  /** Clicks come between min and max ms of event time after their impression (max within ATTRIBUTION_WINDOW_S). */
  readonly clickDelayMs: { readonly min: number; readonly max: number };
  readonly seed: number;
  /** Prefix of the feedback ids (unique per run, so re-runs on one topic do not collide). */
  readonly feedbackIdPrefix: string;
}

/** The online figures of a phase, summed over its pages. */
export class ServingTally {
  pages = 0;
  impressions = 0;
  clicks = 0;
  /** Sum of the true click probabilities of the ads shown, in their slots. */
  expectedClicks = 0;
  /** Same for the oracle's page built from the output's candidates. */
  oracleCandidatesClicks = 0;
  /** Same for the oracle's page built from the whole catalog. */
  oracleCatalogClicks = 0;

  get ctr(): number {
    return this.clicks / this.impressions;
  }

  get expectedCtr(): number {
    return this.expectedClicks / this.impressions;
  }

  get oracleCandidatesCtr(): number {
    return this.oracleCandidatesClicks / this.impressions;
  }

  get oracleCatalogCtr(): number {
    return this.oracleCatalogClicks / this.impressions;
  }
}

export class SimulatedAdServer {
  private readonly rand: () => number;
  private seq = 0;
  /** Per user, the oracle's expected clicks over the whole catalog (a property of the user alone). */
  private readonly catalogOracle = new Map<string, number>();

  constructor(
    private readonly clickModel: ClickModel,
    private readonly adIds: readonly string[],
    private readonly codec: AvroCodec,
    private readonly o: AdServerOptions,
  ) {
    if (!(o.slots >= 1)) throw new Error(`slots must be >= 1, got ${o.slots}`);
    if (!(o.clickDelayMs.min >= 0 && o.clickDelayMs.max >= o.clickDelayMs.min)) throw new Error('clickDelayMs must have 0 <= min <= max');
    this.rand = seededRandom(o.seed);
  }

  /**
   * Shows `output`'s top slots at event time `shownAt`; returns the feedback to produce (the
   * impressions, then the clicks) and adds the page to `tally`.
   */
  serve(output: ScoredOutput, shownAt: number, tally: ServingTally): OutboundRecord[] {
    const m = this.clickModel;
    const shown = output.candidates.slice(0, this.o.slots);
    const records: OutboundRecord[] = [];
    const clicks: OutboundRecord[] = [];
    const { min, max } = this.o.clickDelayMs;
    shown.forEach((c, position) => {
      const p = m.probability(output.userId, c.adId, position);
      tally.expectedClicks += p;
      records.push(this.feedback(output, c.adId, position, 'IMPRESSION', shownAt));
      if (this.rand() < p) {
        clicks.push(this.feedback(output, c.adId, position, 'CLICK', shownAt + min + Math.floor(this.rand() * (max - min + 1))));
        tally.clicks++;
      }
    });
    tally.pages++;
    tally.impressions += shown.length;
    tally.oracleCandidatesClicks += this.oracleClicks(output.userId, output.candidates.map((c) => c.adId), shown.length);
    tally.oracleCatalogClicks += this.catalogOracleClicks(output.userId, shown.length);
    records.push(...clicks);
    return records;
  }

  /**
   * Expected clicks of the best page of `slots` from `adIds`: the position bias is the same
   * decreasing factor for every ad, so sorting by the slot-0 probability is optimal.
   */
  oracleClicks(userId: string, adIds: readonly string[], slots: number): number {
    const m = this.clickModel;
    const p = adIds.map((a) => m.probability(userId, a, 0)).sort((a, b) => b - a);
    let sum = 0;
    for (let s = 0; s < Math.min(slots, p.length); s++) sum += p[s]! * m.positionBias(s);
    return sum;
  }

  private catalogOracleClicks(userId: string, slots: number): number {
    if (slots !== this.o.slots) return this.oracleClicks(userId, this.adIds, slots);
    let v = this.catalogOracle.get(userId);
    if (v === undefined) this.catalogOracle.set(userId, (v = this.oracleClicks(userId, this.adIds, slots)));
    return v;
  }

  private feedback(output: ScoredOutput, adId: string, position: number, kind: 'IMPRESSION' | 'CLICK', eventTime: number): OutboundRecord {
    const value = this.codec.encode(RecordNames.adFeedback, { feedbackId: `${this.o.feedbackIdPrefix}-${this.seq++}`, userId: output.userId, adId, outputId: output.outputId, position, kind, eventTime });
    return { key: Buffer.from(output.userId, 'utf8'), value };
  }
}
