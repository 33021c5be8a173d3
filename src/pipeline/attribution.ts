/**
 * Event-time attribution of ad feedback into labelled training examples, with the features as
 * served. Pure logic (no I/O, no clock): the caller feeds it what the ranker served (`serve`, the
 * interest and ad vectors a candidate was scored with, at that time) and the ad server's reports
 * (`feedback`), and takes the examples it finalises (`drain`).
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
 * - A report whose feedbackId was seen in the last 2 W, a second impression of one served (output,
 *   ad), and a second click on a positive are `duplicate`s (the topic is at-least-once).
 * - Conversions are counted, not labels.
 * Memory is bounded: captures, pending impressions and waiting clicks each have a maximum count;
 * the oldest goes first (`evicted`). Captures are held for W after serving.
 * The whole state snapshots to bytes and back, so it can survive a restart with the offsets.
 */
import type { AdFeedback } from '../domain/events.js';
import type { TrainingExample } from '../domain/outputs.js';

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

interface Pending {
  readonly impressionId: string;
  readonly at: number;
  readonly position: number;
  readonly outputId: string | null;
  readonly capture: ServedFeatures;
}

interface WaitingClick {
  readonly userId: string;
  readonly adId: string;
  readonly outputId: string | null;
  readonly at: number;
}

const userAd = (userId: string, adId: string): string => `${userId}\u0000${adId}`;
const outputAd = (outputId: string, adId: string): string => `${outputId}\u0000${adId}`;

export class Attributor {
  readonly counts: AttributionCounts = { impressions: 0, clicks: 0, conversions: 0, positives: 0, negatives: 0, late: 0, duplicates: 0, unmatched: 0, unattributedClicks: 0, evicted: 0 };
  private watermark = -Infinity;
  /** outputId+adId -> capture, in serving order (the eviction order). */
  private readonly captures = new Map<string, ServedFeatures>();
  /** impressionId -> pending impression, in arrival order. */
  private readonly pending = new Map<string, Pending>();
  /** Clicks that came before their impression, in arrival order. */
  private readonly waiting = new Set<WaitingClick>();
  /** Impressions labelled already, kept for W more, so a late click is told from an early one. */
  private readonly closed = new Set<Closed>();
  /** Per user and ad, for matching: captures, pending impressions, waiting clicks, closed impressions. */
  private readonly index = new Map<string, UserAdEntries>();
  /** Recent feedback ids -> event time. */
  private readonly seen = new Map<string, number>();
  private ready: LabelledExample[] = [];

  constructor(private readonly limits: AttributionLimits) {}

  /** What the ranker served: one call per offered (output, ad). */
  serve(f: ServedFeatures): void {
    const key = outputAd(f.outputId, f.adId);
    const old = this.captures.get(key);
    if (old) this.dropCapture(key, old);
    this.captures.set(key, f);
    this.entries(f.userId, f.adId).captures.push(f);
    while (this.captures.size > this.limits.maxCaptures) {
      const [k, c] = this.captures.entries().next().value as [string, ServedFeatures];
      this.dropCapture(k, c);
      this.counts.evicted++;
    }
  }

  feedback(fb: AdFeedback): void {
    if (this.seen.has(fb.feedbackId)) {
      this.counts.duplicates++;
      return;
    }
    this.seen.set(fb.feedbackId, fb.eventTime);
    if (fb.eventTime > this.watermark) this.watermark = fb.eventTime;
    if (fb.kind === 'IMPRESSION') this.impression(fb);
    else if (fb.kind === 'CLICK') this.click(fb);
    else this.counts.conversions++;
  }

  /** Applies the watermark (negatives out, old state forgotten) and returns the examples finalised since the last drain. Call once per chunk. */
  drain(): LabelledExample[] {
    this.expire();
    const out = this.ready;
    this.ready = [];
    return out;
  }

  /** Held state, for the bounds' metrics. */
  sizes(): { captures: number; pending: number; waitingClicks: number } {
    return { captures: this.captures.size, pending: this.pending.size, waitingClicks: this.waiting.size };
  }

  /**
   * The whole state as bytes (JSON, vectors as base64 float32), to be stored with the feedback
   * offsets it reflects; `Attributor.restore` reads it back.
   */
  snapshot(): Uint8Array {
    const all = new Map<ServedFeatures, number>();
    const ref = (c: ServedFeatures): number => {
      let i = all.get(c);
      if (i === undefined) all.set(c, (i = all.size));
      return i;
    };
    const captures = [...this.captures.values()].map(ref);
    const pending = [...this.pending.values()].map((p) => ({ ...p, capture: ref(p.capture) }));
    const closed = [...this.closed].map((c) => ({ ...c, capture: ref(c.capture) }));
    const features = [...all.keys()].map((c) => ({ ...c, interest: base64(c.interest), ad: base64(c.ad) }));
    const state = { version: 1, watermark: Number.isFinite(this.watermark) ? this.watermark : null, counts: this.counts, features, captures, pending, closed, waiting: [...this.waiting], seen: [...this.seen], ready: this.ready.map((e) => ({ ...e, interest: base64(e.interest), ad: base64(e.ad) })) };
    return new TextEncoder().encode(JSON.stringify(state));
  }

  static restore(bytes: Uint8Array, limits: AttributionLimits): Attributor {
    const s = JSON.parse(new TextDecoder().decode(bytes)) as SnapshotState;
    if (s.version !== 1) throw new Error(`attribution snapshot version ${String(s.version)} is not 1`);
    const a = new Attributor(limits);
    a.watermark = s.watermark ?? -Infinity;
    Object.assign(a.counts, s.counts);
    const features: ServedFeatures[] = s.features.map((f) => ({ ...f, interest: floats(f.interest), ad: floats(f.ad) }));
    for (const i of s.captures) a.serve(features[i]!);
    for (const p of s.pending) {
      const pending: Pending = { ...p, capture: features[p.capture]! };
      a.pending.set(pending.impressionId, pending);
      a.entries(pending.capture.userId, pending.capture.adId).pending.push(pending);
    }
    for (const c of s.closed) {
      const closed: Closed = { ...c, capture: features[c.capture]! };
      a.closed.add(closed);
      a.entries(closed.capture.userId, closed.capture.adId).closed.push(closed);
    }
    for (const c of s.waiting) {
      a.waiting.add(c);
      a.entries(c.userId, c.adId).waiting.push(c);
    }
    for (const [id, at] of s.seen) a.seen.set(id, at);
    a.ready = s.ready.map((e) => ({ ...e, interest: floats(e.interest), ad: floats(e.ad) }));
    return a;
  }

  private impression(fb: AdFeedback): void {
    this.counts.impressions++;
    const W = this.limits.windowMs;
    if (fb.eventTime + W < this.watermark) {
      this.counts.late++;
      return;
    }
    const e = this.index.get(userAd(fb.userId, fb.adId));
    const capture = fb.outputId !== null ? this.captures.get(outputAd(fb.outputId, fb.adId)) : latest(e?.captures ?? [], (c) => c.servedAt <= fb.eventTime, (c) => c.servedAt);
    if (!capture || capture.userId !== fb.userId) {
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
      this.finish(p, 1);
      return;
    }
    this.pending.set(p.impressionId, p);
    entries.pending.push(p);
    while (this.pending.size > this.limits.maxPending) {
      const oldest = this.pending.values().next().value as Pending;
      this.removePending(oldest);
      this.counts.evicted++;
    }
  }

  private click(fb: AdFeedback): void {
    this.counts.clicks++;
    const c: WaitingClick = { userId: fb.userId, adId: fb.adId, outputId: fb.outputId, at: fb.eventTime };
    const entries = this.entries(fb.userId, fb.adId);
    const match = latest(entries.pending, (p) => this.clickMatches(c, p), (p) => p.at);
    if (match) {
      this.removePending(match);
      this.finish(match, 1);
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
    this.waiting.add(c);
    entries.waiting.push(c);
    while (this.waiting.size > this.limits.maxWaitingClicks) {
      this.removeWaiting(this.waiting.values().next().value as WaitingClick);
      this.counts.evicted++;
    }
  }

  private finish(p: Pending, label: 0 | 1): void {
    if (label === 1) this.counts.positives++;
    else this.counts.negatives++;
    this.ready.push(example(p, label));
    const c: Closed = { at: p.at, outputId: p.outputId, capture: p.capture, label };
    this.closed.add(c);
    this.entries(p.capture.userId, p.capture.adId).closed.push(c);
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
      this.finish(p, 0);
    }
    for (const [key, f] of [...this.captures]) if (f.servedAt + W < wm) this.dropCapture(key, f);
    for (const c of [...this.waiting]) {
      if (c.at + W >= wm) continue;
      this.removeWaiting(c);
      this.counts.unattributedClicks++;
    }
    for (const c of [...this.closed]) {
      if (c.at + 2 * W >= wm) continue;
      this.closed.delete(c);
      this.withEntries(c.capture.userId, c.capture.adId, (e) => remove(e.closed, c));
    }
    for (const [id, at] of this.seen) if (at + 2 * W < wm) this.seen.delete(id);
  }

  private entries(userId: string, adId: string): UserAdEntries {
    const key = userAd(userId, adId);
    let e = this.index.get(key);
    if (!e) this.index.set(key, (e = { captures: [], pending: [], waiting: [], closed: [] }));
    return e;
  }

  /** Runs `f` on the user-ad's entries, and forgets them once all are empty. */
  private withEntries(userId: string, adId: string, f: (e: UserAdEntries) => void): void {
    const key = userAd(userId, adId);
    const e = this.index.get(key);
    if (!e) return;
    f(e);
    if (e.captures.length + e.pending.length + e.waiting.length + e.closed.length === 0) this.index.delete(key);
  }

  private dropCapture(key: string, c: ServedFeatures): void {
    this.captures.delete(key);
    this.withEntries(c.userId, c.adId, (e) => remove(e.captures, c));
  }

  private removePending(p: Pending): void {
    this.pending.delete(p.impressionId);
    this.withEntries(p.capture.userId, p.capture.adId, (e) => remove(e.pending, p));
  }

  private removeWaiting(c: WaitingClick): void {
    this.waiting.delete(c);
    this.withEntries(c.userId, c.adId, (e) => remove(e.waiting, c));
  }
}

type Encoded<T> = Omit<T, 'interest' | 'ad'> & { interest: string; ad: string };

interface SnapshotState {
  readonly version: number;
  readonly watermark: number | null;
  readonly counts: AttributionCounts;
  readonly features: Encoded<ServedFeatures>[];
  readonly captures: number[];
  readonly pending: (Omit<Pending, 'capture'> & { capture: number })[];
  readonly closed: (Omit<Closed, 'capture'> & { capture: number })[];
  readonly waiting: WaitingClick[];
  readonly seen: [string, number][];
  readonly ready: Encoded<LabelledExample>[];
}

function base64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

function floats(b64: string): Float32Array {
  const b = Buffer.from(b64, 'base64');
  // Copied into its own buffer: Buffer's pool offset need not be 4-aligned.
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

interface Closed {
  readonly label: 0 | 1;
  readonly at: number;
  readonly outputId: string | null;
  readonly capture: ServedFeatures;
}

interface UserAdEntries {
  readonly captures: ServedFeatures[];
  readonly pending: Pending[];
  readonly waiting: WaitingClick[];
  readonly closed: Closed[];
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
  const c = p.capture;
  return { exampleId: p.impressionId, userId: c.userId, adId: c.adId, outputId: p.outputId, position: p.position, servedAt: p.at, label, modelVersion: c.modelVersion, servedCtr: c.servedCtr, interest: c.interest, ad: c.ad };
}

/** A labelled example as the value of a `training-examples` record (schemas/training-example.avsc). */
export function trainingExampleValue(e: LabelledExample): Record<string, unknown> {
  return {
    exampleId: e.exampleId, userId: e.userId, adId: e.adId, outputId: e.outputId, position: e.position, servedAt: e.servedAt,
    label: e.label, modelVersion: e.modelVersion, servedCtr: e.servedCtr, interest: Array.from(e.interest), ad: Array.from(e.ad),
  };
}
