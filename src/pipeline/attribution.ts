/**
 * Event-time attribution of ad feedback into labelled training examples, with the features as
 * served. Pure logic (no I/O, no clock): the caller feeds it what the ranker served (`serveOutput`,
 * the interest rows and ad vectors the candidates were scored with, at that time) and the ad
 * server's reports (`feedback`), and takes the examples it finalises (`drain`).
 *
 * Rules (W = ATTRIBUTION_WINDOW_S in ms; the watermark is the latest feedback event time seen):
 * - An impression takes the features served for its (outputId, adId), or without an outputId the
 *   user's latest served capture of that ad at or before it; none: `unmatched`, no example.
 * - A click at t labels the impression of its ad (same outputId, or the user's latest) at i with
 *   i <= t <= i + W a positive, at once. A second click on it is a `duplicate`.
 * - An impression with no click when the watermark passes i + W is a negative.
 * - Out of order: a click that arrives before its impression waits (until the watermark passes
 *   t + W) and labels the impression when it comes.
 * - A click whose impression was already labelled negative, an impression whose window has already
 *   closed when it arrives, or a click older than W before the watermark with no impression, is
 *   `late`: counted, not used (its example is already out, or never will be).
 * - A report whose feedbackId the user sent in the last 2 W, a second impression of one served
 *   (output, ad), and a second click on a positive are `duplicate`s (the topic is at-least-once).
 * - Conversions are counted, not labels.
 * Memory is bounded: captures, pending impressions and waiting clicks each have a maximum count;
 * the oldest goes first (`evicted`). Captures are held for W after serving.
 *
 * Durable state (see attribution-records.ts): the attributor tracks what changed since the last
 * `takeChanges` (served outputs, ad vectors, each user's labelling state, the watermark), so the
 * caller can write exactly that with the chunk's outputs, and `Attributor.restore` rebuilds it.
 * Each label remembers the feedback offset that closed it (`closedBy`), so a replayed record
 * (already attributed before a crash) gives its examples again (`replay`) instead of new state.
 */
import type { AdFeedback } from '../domain/events.js';
import type { TrainingExample } from '../domain/outputs.js';

/** One served (output, ad) as the legacy single-ad call gives it (tests, tools). */
export interface ServedFeatures {
  readonly outputId: string;
  readonly userId: string;
  readonly adId: string;
  /** Event time of the output (its triggering event). */
  readonly servedAt: number;
  readonly modelVersion: string;
  /** The CTR the serving model gave the pair. */
  readonly servedCtr: number;
  /** The interest that matched the ad, as it was then (a copy: later state must not leak in). */
  readonly interest: Float32Array;
  readonly ad: Float32Array;
}

/** An ad of a served output: its vector is an immutable copy shared by every capture of that version (`adKey`). */
export interface ServedAd {
  readonly adId: string;
  /** Identifies the ad's vector version (see FeedbackStage's ad copies). */
  readonly adKey: string;
  readonly ad: Float32Array;
  /** Index into the output's `interests`: the row that matched the ad. */
  readonly row: number;
  readonly ctr: number;
}

/** One scored output as served: its matching interest rows (copies) and its ads. */
export interface ServedOutput {
  readonly outputId: string;
  readonly userId: string;
  readonly servedAt: number;
  readonly modelVersion: string;
  readonly interests: readonly Float32Array[];
  readonly ads: readonly ServedAd[];
}

/** What the attribution finalises: the domain's TrainingExample. */
export type LabelledExample = TrainingExample;

export interface AttributionLimits {
  readonly windowMs: number;
  readonly maxCaptures: number;
  readonly maxPending: number;
  readonly maxWaitingClicks: number;
}

export interface AttributionCounts {
  impressions: number;
  clicks: number;
  conversions: number;
  positives: number;
  negatives: number;
  late: number;
  duplicates: number;
  unmatched: number;
  /** Clicks that waited for an impression that never came. */
  unattributedClicks: number;
  evicted: number;
}

/** A served output held: alive while a capture of it is live or a label state refers to it. */
interface Held {
  readonly key: string;
  readonly out: ServedOutput;
  readonly captures: Capture[];
  refs: number;
}

interface Capture {
  readonly held: Held;
  readonly ad: ServedAd;
  /** In `captures` (matchable by new impressions); false once expired or evicted. */
  live: boolean;
}

/** A capture as the durable state names it. */
export interface CaptureRef {
  readonly outputId: string;
  readonly adId: string;
}

interface Pending {
  readonly impressionId: string;
  readonly at: number;
  readonly position: number;
  readonly outputId: string | null;
  readonly capture: Capture;
}

interface Closed extends Pending {
  readonly label: 0 | 1;
  /** The feedback offset whose attribution closed it (-1: unknown). */
  readonly closedBy: number;
}

export interface WaitingClick {
  readonly userId: string;
  readonly adId: string;
  readonly outputId: string | null;
  readonly at: number;
}

interface UserAdEntries {
  readonly captures: Capture[];
  readonly pending: Pending[];
  readonly waiting: WaitingClick[];
  readonly closed: Closed[];
}

interface UserEntries {
  readonly ads: Map<string, UserAdEntries>;
  /** Recent feedback ids of the user -> event time, in arrival order. */
  readonly seen: Map<string, number>;
  /** The user's pending impressions, labels and waiting clicks, oldest first (for the per-user bound). */
  readonly order: Set<Pending | Closed | WaitingClick>;
}

/**
 * Per user, at most this many pending impressions, labels and waiting clicks together, and this
 * many recent feedback ids: the user's record must fit a changelog record (~150 and ~40 bytes
 * each as stored: about 230 KB at most), whatever one user (a bot) sends. The oldest go first
 * (evicted; a feedback id forgotten early only weakens the duplicate check).
 */
export const MAX_LABELS_PER_USER = 1000;
export const MAX_SEEN_PER_USER = 2000;

/** A user's labelling state as stored (no vectors: captures are named, their outputs stored apart). */
export interface UserLabels {
  readonly pending: readonly (Omit<Pending, 'capture'> & { readonly capture: CaptureRef })[];
  readonly closed: readonly (Omit<Closed, 'capture'> & { readonly capture: CaptureRef })[];
  readonly waiting: readonly WaitingClick[];
  readonly seen: readonly (readonly [string, number])[];
}

/** A held output as stored: the output, and which of its captures are still live. */
export interface HeldOutput {
  readonly out: ServedOutput;
  readonly live: readonly boolean[];
}

export interface PartitionMark {
  readonly watermark: number | null;
  /** The feedback offset that set the watermark. */
  readonly offset: number;
}

/** What changed since the last take: present values are written, null ones deleted. */
export interface AttributionChanges {
  readonly outputs: [key: string, held: HeldOutput | null][];
  readonly ads: [adKey: string, ad: Float32Array | null][];
  readonly users: [userId: string, labels: UserLabels | null][];
  readonly partition: PartitionMark | null;
}

/** Everything `restore` needs, as read back. */
export interface AttributionState {
  readonly partition?: PartitionMark;
  readonly outputs: readonly HeldOutput[];
  readonly users: readonly (readonly [string, UserLabels])[];
}

const outputAd = (outputId: string, adId: string): string => `${outputId}\u0000${adId}`;
/** Unique per user and output whatever the ids hold (length-prefixed). */
export const heldKey = (userId: string, outputId: string): string => `${userId.length}:${userId}${outputId}`;

export class Attributor {
  readonly counts: AttributionCounts = { impressions: 0, clicks: 0, conversions: 0, positives: 0, negatives: 0, late: 0, duplicates: 0, unmatched: 0, unattributedClicks: 0, evicted: 0 };
  private watermark = -Infinity;
  private watermarkOffset = -1;
  /** Served outputs held, by heldKey. */
  private readonly held = new Map<string, Held>();
  /** Ad vector versions referred to by held outputs: adKey -> references. */
  private readonly adRefs = new Map<string, { readonly ad: Float32Array; refs: number }>();
  /** outputId+adId -> live capture, in serving order (the eviction order). */
  private readonly captures = new Map<string, Capture>();
  /** impressionId -> pending impression, in arrival order. */
  private readonly pending = new Map<string, Pending>();
  /** Clicks that came before their impression, in arrival order. */
  private readonly waiting = new Set<WaitingClick>();
  /** Impressions labelled already, kept for 2 W, so a late click is told from an early one and a replay gives them again. */
  private readonly closed = new Set<Closed>();
  /** closedBy offset -> the labels it closed (for `replay`). */
  private readonly closedBy = new Map<number, Closed[]>();
  private readonly users = new Map<string, UserEntries>();
  private ready: LabelledExample[] = [];
  private readonly dirtyUsers = new Set<string>();
  private readonly dirtyHeld = new Set<string>();
  private readonly dirtyAds = new Set<string>();
  private dirtyMark = false;

  constructor(private readonly limits: AttributionLimits) {}

  /** Whether any feedback was attributed here (since the start, or before it, when restored). */
  get hasFeedback(): boolean {
    return Number.isFinite(this.watermark);
  }

  /** What the ranker served: one call per output, with its ads. A second call for one output (a replay) keeps the first. */
  serveOutput(out: ServedOutput): void {
    const key = heldKey(out.userId, out.outputId);
    if (this.held.has(key)) return;
    const h: Held = { key, out, captures: [], refs: 0 };
    this.held.set(key, h);
    this.dirtyHeld.add(key);
    for (const ad of out.ads) {
      this.refAd(ad.adKey, ad.ad);
      const c: Capture = { held: h, ad, live: false };
      h.captures.push(c);
      this.makeLive(c);
    }
    this.evictCaptures();
    this.releaseIfUnused(h);
  }

  /** The single-ad form: one (output, ad) at a time, each ad a version of its own. */
  serve(f: ServedFeatures): void {
    this.serveOutput({ outputId: f.outputId, userId: f.userId, servedAt: f.servedAt, modelVersion: f.modelVersion, interests: [f.interest], ads: [{ adId: f.adId, adKey: `${f.outputId}\u0000${f.adId}`, ad: f.ad, row: 0, ctr: f.servedCtr }] });
  }

  /** A feedback report; `offset`, its record's offset, lets a replay find what it closed. */
  feedback(fb: AdFeedback, offset = -1): void {
    const user = this.user(fb.userId);
    if (user.seen.has(fb.feedbackId)) {
      this.counts.duplicates++;
      return;
    }
    user.seen.set(fb.feedbackId, fb.eventTime);
    if (user.seen.size > MAX_SEEN_PER_USER) user.seen.delete(user.seen.keys().next().value as string);
    this.dirtyUsers.add(fb.userId);
    if (fb.eventTime > this.watermark) {
      this.watermark = fb.eventTime;
      this.watermarkOffset = offset;
      this.dirtyMark = true;
    }
    if (fb.kind === 'IMPRESSION') this.impression(fb, offset);
    else if (fb.kind === 'CLICK') this.click(fb, offset);
    else this.counts.conversions++;
  }

  /** Applies the watermark (negatives out, old state forgotten) and returns the examples finalised since the last drain. Call once per chunk. */
  drain(): LabelledExample[] {
    this.expire();
    const out = this.ready;
    this.ready = [];
    return out;
  }

  /** The examples the record at `offset` finalised when it was attributed (a replay after a crash: at-least-once). */
  replay(offset: number): LabelledExample[] {
    return (this.closedBy.get(offset) ?? []).map((c) => example(c, c.label));
  }

  /** A deleted user: everything held of them goes (no example comes of it), and their records are deleted with the next take. */
  forgetUser(userId: string): void {
    const u = this.users.get(userId);
    if (!u) return;
    for (const e of [...u.ads.values()]) {
      for (const c of [...e.captures]) this.dropCapture(c);
      for (const p of [...e.pending]) this.removePending(p);
      for (const w of [...e.waiting]) this.removeWaiting(w);
      for (const c of [...e.closed]) this.removeClosed(c);
    }
    u.seen.clear();
    this.users.delete(userId);
    this.dirtyUsers.add(userId);
  }

  /** Held state, for the bounds' metrics. */
  sizes(): { captures: number; pending: number; waitingClicks: number } {
    return { captures: this.captures.size, pending: this.pending.size, waitingClicks: this.waiting.size };
  }

  /** What changed since the last call, for the durable state; clears the record of changes. */
  takeChanges(): AttributionChanges {
    const outputs: AttributionChanges['outputs'] = [];
    for (const key of this.dirtyHeld) {
      const h = this.held.get(key);
      outputs.push([key, h ? { out: h.out, live: h.captures.map((c) => c.live) } : null]);
    }
    const ads: AttributionChanges['ads'] = [];
    for (const adKey of this.dirtyAds) ads.push([adKey, this.adRefs.get(adKey)?.ad ?? null]);
    const users: AttributionChanges['users'] = [];
    for (const userId of this.dirtyUsers) users.push([userId, this.labelsOf(userId)]);
    const partition = this.dirtyMark ? { watermark: this.hasFeedback ? this.watermark : null, offset: this.watermarkOffset } : null;
    this.dirtyHeld.clear();
    this.dirtyAds.clear();
    this.dirtyUsers.clear();
    this.dirtyMark = false;
    return { outputs, ads, users, partition };
  }

  /** Whether takeChanges would return anything. */
  get changed(): boolean {
    return this.dirtyHeld.size + this.dirtyAds.size + this.dirtyUsers.size > 0 || this.dirtyMark;
  }

  /**
   * An attributor as the durable state left it. Outputs no label refers to and with no live
   * capture, and labels whose output is missing, are dropped (written again on the next take).
   */
  static restore(state: AttributionState, limits: AttributionLimits): Attributor {
    const a = new Attributor(limits);
    if (state.partition?.watermark != null) {
      a.watermark = state.partition.watermark;
      a.watermarkOffset = state.partition.offset;
    }
    const byCapture = new Map<string, Capture>();
    for (const { out, live } of [...state.outputs].sort((x, y) => x.out.servedAt - y.out.servedAt)) {
      const key = heldKey(out.userId, out.outputId);
      const h: Held = { key, out, captures: [], refs: 0 };
      a.held.set(key, h);
      out.ads.forEach((ad, i) => {
        a.refAd(ad.adKey, ad.ad);
        const c: Capture = { held: h, ad, live: false };
        h.captures.push(c);
        byCapture.set(`${key}\u0000${ad.adId}`, c);
        if (live[i]) a.makeLive(c);
      });
    }
    a.dirtyAds.clear(); // as stored
    const find = (userId: string, ref: CaptureRef): Capture | undefined => byCapture.get(`${heldKey(userId, ref.outputId)}\u0000${ref.adId}`);
    for (const [userId, labels] of state.users) {
      const user = a.user(userId);
      for (const p of labels.pending) {
        const capture = find(userId, p.capture);
        if (capture) a.addPending({ ...p, capture });
      }
      for (const c of labels.closed) {
        const capture = find(userId, c.capture);
        if (capture) a.addClosed({ ...c, capture });
      }
      for (const c of labels.waiting) a.addWaiting(c);
      for (const [id, at] of labels.seen) user.seen.set(id, at);
    }
    for (const h of [...a.held.values()]) a.releaseIfUnused(h);
    a.dirtyUsers.clear();
    a.dirtyMark = false;
    // Outputs released here are tombstoned by the next take; the rest is as stored.
    for (const key of [...a.dirtyHeld]) if (a.held.has(key)) a.dirtyHeld.delete(key);
    return a;
  }

  private impression(fb: AdFeedback, offset: number): void {
    this.counts.impressions++;
    const W = this.limits.windowMs;
    if (fb.eventTime + W < this.watermark) {
      this.counts.late++;
      return;
    }
    const e = this.users.get(fb.userId)?.ads.get(fb.adId);
    const capture = fb.outputId !== null ? this.captures.get(outputAd(fb.outputId, fb.adId)) : latest(e?.captures ?? [], (c) => c.held.out.servedAt <= fb.eventTime, (c) => c.held.out.servedAt);
    if (!capture || capture.held.out.userId !== fb.userId) {
      this.counts.unmatched++;
      return;
    }
    // One example per served (output, ad): a second impression of it is the same showing reported twice.
    if (e && (e.pending.some((p) => p.capture === capture) || e.closed.some((c) => c.capture === capture))) {
      this.counts.duplicates++;
      return;
    }
    const p: Pending = { impressionId: fb.feedbackId, at: fb.eventTime, position: fb.position, outputId: fb.outputId, capture };
    const entries = this.entries(fb.userId, fb.adId);
    // A click that came first labels it now.
    const early = entries.waiting.find((c) => this.clickMatches(c, p));
    if (early) {
      this.removeWaiting(early);
      this.finish(p, 1, offset);
      return;
    }
    this.addPending(p);
    while (this.pending.size > this.limits.maxPending) {
      this.removePending(this.pending.values().next().value as Pending);
      this.counts.evicted++;
    }
  }

  private click(fb: AdFeedback, offset: number): void {
    this.counts.clicks++;
    const c: WaitingClick = { userId: fb.userId, adId: fb.adId, outputId: fb.outputId, at: fb.eventTime };
    const entries = this.entries(fb.userId, fb.adId);
    const match = latest(entries.pending, (p) => this.clickMatches(c, p), (p) => p.at);
    if (match) {
      this.removePending(match);
      this.finish(match, 1, offset);
      return;
    }
    const done = entries.closed.find((x) => this.clickMatches(c, x));
    if (done) {
      // Its impression is labelled already: a second click on a positive, or a click on a negative whose window closed.
      if (done.label === 1) this.counts.duplicates++;
      else this.counts.late++;
      return;
    }
    if (fb.eventTime + this.limits.windowMs < this.watermark) {
      this.counts.late++;
      return;
    }
    this.addWaiting(c);
    while (this.waiting.size > this.limits.maxWaitingClicks) {
      this.removeWaiting(this.waiting.values().next().value as WaitingClick);
      this.counts.evicted++;
    }
  }

  private finish(p: Pending, label: 0 | 1, closedBy: number): void {
    if (label === 1) this.counts.positives++;
    else this.counts.negatives++;
    this.ready.push(example(p, label));
    this.addClosed({ ...p, label, closedBy });
  }

  private clickMatches(c: WaitingClick, p: { readonly at: number; readonly outputId: string | null }): boolean {
    if (c.outputId !== null && p.outputId !== null && c.outputId !== p.outputId) return false;
    return c.at >= p.at && c.at <= p.at + this.limits.windowMs;
  }

  /** Everything the watermark has passed: negatives out, old captures, waiting clicks, closed impressions and seen ids forgotten. */
  private expire(): void {
    const W = this.limits.windowMs;
    const wm = this.watermark;
    for (const p of [...this.pending.values()]) {
      if (p.at + W >= wm) continue;
      this.removePending(p);
      this.finish(p, 0, this.watermarkOffset);
    }
    for (const c of [...this.captures.values()]) if (c.held.out.servedAt + W < wm) this.dropCapture(c);
    for (const c of [...this.waiting]) {
      if (c.at + W >= wm) continue;
      this.removeWaiting(c);
      this.counts.unattributedClicks++;
    }
    for (const c of [...this.closed]) if (c.at + 2 * W < wm) this.removeClosed(c);
    for (const [userId, u] of this.users) {
      let changed = false;
      for (const [id, at] of u.seen) {
        if (at + 2 * W >= wm) continue;
        u.seen.delete(id);
        changed = true;
      }
      if (changed) {
        this.dirtyUsers.add(userId);
        this.forgetIfEmpty(userId, u);
      }
    }
  }

  private user(userId: string): UserEntries {
    let u = this.users.get(userId);
    if (!u) this.users.set(userId, (u = { ads: new Map(), seen: new Map(), order: new Set() }));
    return u;
  }

  private entries(userId: string, adId: string): UserAdEntries {
    const u = this.user(userId);
    let e = u.ads.get(adId);
    if (!e) u.ads.set(adId, (e = { captures: [], pending: [], waiting: [], closed: [] }));
    return e;
  }

  /** Runs `f` on the user-ad's entries, and forgets them once all are empty. */
  private withEntries(userId: string, adId: string, f: (e: UserAdEntries) => void): void {
    const u = this.users.get(userId);
    const e = u?.ads.get(adId);
    if (!u || !e) return;
    f(e);
    if (e.captures.length + e.pending.length + e.waiting.length + e.closed.length === 0) u.ads.delete(adId);
    this.forgetIfEmpty(userId, u);
  }

  private forgetIfEmpty(userId: string, u: UserEntries): void {
    if (u.ads.size === 0 && u.seen.size === 0) this.users.delete(userId);
  }

  private refAd(adKey: string, ad: Float32Array): void {
    const r = this.adRefs.get(adKey);
    if (r) r.refs++;
    else {
      this.adRefs.set(adKey, { ad, refs: 1 });
      this.dirtyAds.add(adKey);
    }
  }

  private makeLive(c: Capture): void {
    const key = outputAd(c.held.out.outputId, c.ad.adId);
    const old = this.captures.get(key);
    if (old) this.dropCapture(old);
    c.live = true;
    c.held.refs++;
    this.captures.set(key, c);
    this.entries(c.held.out.userId, c.ad.adId).captures.push(c);
  }

  private evictCaptures(): void {
    while (this.captures.size > this.limits.maxCaptures) {
      this.dropCapture(this.captures.values().next().value as Capture);
      this.counts.evicted++;
    }
  }

  private dropCapture(c: Capture): void {
    if (!c.live) return;
    c.live = false;
    this.captures.delete(outputAd(c.held.out.outputId, c.ad.adId));
    this.withEntries(c.held.out.userId, c.ad.adId, (e) => remove(e.captures, c));
    this.dirtyHeld.add(c.held.key);
    this.unref(c.held);
  }

  private unref(h: Held): void {
    h.refs--;
    this.releaseIfUnused(h);
  }

  /** An output no live capture or label refers to any more is forgotten (its record deleted), with its ad versions no other refers to. */
  private releaseIfUnused(h: Held): void {
    if (h.refs > 0 || this.held.get(h.key) !== h) return;
    this.held.delete(h.key);
    this.dirtyHeld.add(h.key);
    for (const c of h.captures) {
      const r = this.adRefs.get(c.ad.adKey);
      if (!r || --r.refs > 0) continue;
      this.adRefs.delete(c.ad.adKey);
      this.dirtyAds.add(c.ad.adKey);
    }
  }

  private addPending(p: Pending): void {
    this.bound(p.capture.held.out.userId, p);
    this.pending.set(p.impressionId, p);
    this.entries(p.capture.held.out.userId, p.capture.ad.adId).pending.push(p);
    p.capture.held.refs++;
    this.dirtyUsers.add(p.capture.held.out.userId);
  }

  private removePending(p: Pending): void {
    this.users.get(p.capture.held.out.userId)?.order.delete(p);
    this.pending.delete(p.impressionId);
    this.withEntries(p.capture.held.out.userId, p.capture.ad.adId, (e) => remove(e.pending, p));
    this.dirtyUsers.add(p.capture.held.out.userId);
    this.unref(p.capture.held);
  }

  private addClosed(c: Closed): void {
    this.bound(c.capture.held.out.userId, c);
    this.closed.add(c);
    this.entries(c.capture.held.out.userId, c.capture.ad.adId).closed.push(c);
    c.capture.held.refs++;
    this.dirtyUsers.add(c.capture.held.out.userId);
    if (c.closedBy < 0) return;
    const list = this.closedBy.get(c.closedBy);
    if (list) list.push(c);
    else this.closedBy.set(c.closedBy, [c]);
  }

  private removeClosed(c: Closed): void {
    this.users.get(c.capture.held.out.userId)?.order.delete(c);
    this.closed.delete(c);
    this.withEntries(c.capture.held.out.userId, c.capture.ad.adId, (e) => remove(e.closed, c));
    this.dirtyUsers.add(c.capture.held.out.userId);
    const list = this.closedBy.get(c.closedBy);
    if (list) {
      remove(list, c);
      if (list.length === 0) this.closedBy.delete(c.closedBy);
    }
    this.unref(c.capture.held);
  }

  private addWaiting(c: WaitingClick): void {
    this.bound(c.userId, c);
    this.waiting.add(c);
    this.entries(c.userId, c.adId).waiting.push(c);
    this.dirtyUsers.add(c.userId);
  }

  private removeWaiting(c: WaitingClick): void {
    this.users.get(c.userId)?.order.delete(c);
    this.waiting.delete(c);
    this.withEntries(c.userId, c.adId, (e) => remove(e.waiting, c));
    this.dirtyUsers.add(c.userId);
  }

  /** Takes `x` into the user's order, first making room: the user's oldest entry goes (evicted). */
  private bound(userId: string, x: Pending | Closed | WaitingClick): void {
    const order = this.user(userId).order;
    while (order.size >= MAX_LABELS_PER_USER) {
      const oldest = order.values().next().value as Pending | Closed | WaitingClick;
      if ('label' in oldest) this.removeClosed(oldest);
      else if ('capture' in oldest) this.removePending(oldest);
      else this.removeWaiting(oldest);
      this.counts.evicted++;
    }
    this.user(userId).order.add(x); // the entry is kept (the loop leaves it entries), looked up again all the same
  }

  /** The user's labelling state as stored; null when there is none (the record is deleted). */
  private labelsOf(userId: string): UserLabels | null {
    const u = this.users.get(userId);
    if (!u) return null;
    const ref = (c: Capture): CaptureRef => ({ outputId: c.held.out.outputId, adId: c.ad.adId });
    const labels = { pending: [] as (Omit<Pending, 'capture'> & { capture: CaptureRef })[], closed: [] as (Omit<Closed, 'capture'> & { capture: CaptureRef })[], waiting: [] as WaitingClick[], seen: [...u.seen] };
    for (const e of u.ads.values()) {
      for (const p of e.pending) labels.pending.push({ ...p, capture: ref(p.capture) });
      for (const c of e.closed) labels.closed.push({ ...c, capture: ref(c.capture) });
      labels.waiting.push(...e.waiting);
    }
    if (labels.pending.length + labels.closed.length + labels.waiting.length + labels.seen.length === 0) return null;
    return labels;
  }
}

function remove<T>(a: T[], x: T): void {
  const i = a.indexOf(x);
  if (i >= 0) a.splice(i, 1);
}

/** The element of `a` passing `ok` with the largest `time` (the last such on ties). */
function latest<T>(a: readonly T[], ok: (x: T) => boolean, time: (x: T) => number): T | undefined {
  let best: T | undefined;
  for (const x of a) if (ok(x) && (!best || time(x) >= time(best))) best = x;
  return best;
}

function example(p: Pending, label: 0 | 1): LabelledExample {
  const { held, ad } = p.capture;
  const o = held.out;
  return { exampleId: p.impressionId, userId: o.userId, adId: ad.adId, outputId: p.outputId, position: p.position, servedAt: p.at, label, modelVersion: o.modelVersion, servedCtr: ad.ctr, interest: o.interests[ad.row]!, ad: ad.ad };
}

/** A labelled example as the value of a `training-examples` record (schemas/training-example.avsc). */
export function trainingExampleValue(e: LabelledExample): Record<string, unknown> {
  return {
    exampleId: e.exampleId, userId: e.userId, adId: e.adId, outputId: e.outputId, position: e.position, servedAt: e.servedAt,
    label: e.label, modelVersion: e.modelVersion, servedCtr: e.servedCtr, interest: Array.from(e.interest), ad: Array.from(e.ad),
  };
}
