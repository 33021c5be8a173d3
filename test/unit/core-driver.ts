/**
 * Drives the processor core with no broker, in the spirit of Kafka Streams' topology test driver:
 * a core on real models and worker threads, records made with the real codec.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/app/config/load-config.js';
import type { Config, SettingName } from '../../src/app/config/settings.js';
import { startCore } from '../../src/app/assemble.js';
import type { Core } from '../../src/pipeline/core.js';
import type { InferenceReporter } from '../../src/inference/types.js';
import type { InputRecord } from '../../src/domain/events.js';
import { silentLogger } from '../../src/util/log.js';
import { AppliedOffsets } from '../../src/state/applied-offsets.js';
import { syntheticAds, type SyntheticAd } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';

export const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);

/** One model folder per test file: the default models are written once into it. */
export const MODEL_DIR = mkdtempSync(join(tmpdir(), 'adstream-models-'));

/** Local state stores of this test file's cores (each core a fresh folder below it). */
export const STATE_DIR = mkdtempSync(join(tmpdir(), 'adstream-state-'));

/** Test settings: one worker, catalog changes visible at once (no upload interval). */
export function testConfig(overrides: Partial<Record<SettingName, string | number | boolean | readonly string[]>> = {}): Config {
  return loadConfig({ env: {}, overrides: { modelDir: MODEL_DIR, stateDir: STATE_DIR, inferenceWorkers: 1, catalogUploadIntervalMs: 0, ...overrides } });
}

export class CoreDriver {
  private readonly cores: Core[] = [];
  /** Items inferred per model, as the engine reports them. */
  readonly inferred = new Map<string, number>();
  /** What the cores' clock says; tests move it. */
  now = NOW;
  private ads: SyntheticAd[] | undefined;

  private readonly reporter: InferenceReporter = {
    batch: (model, e) => void this.inferred.set(model, (this.inferred.get(model) ?? 0) + (e.failed ? 0 : e.batchSize)),
    queueDepth: () => undefined,
    rejected: () => undefined,
    provider: () => undefined,
  };

  /** Offsets a test declares already applied (as restored from the changelog). */
  applied = new AppliedOffsets();

  /** `stateDir`: the folder of a core closed before (a restart on its local store); default a fresh one. */
  async core(config: Config = testConfig(), stateDir?: string): Promise<Core> {
    const core = await startCore(config, {
      logger: silentLogger,
      stateDir: stateDir ?? mkdtempSync(join(STATE_DIR, 'core-')),
      clock: () => this.now,
      inferenceReporter: this.reporter,
      applied: this.applied,
    });
    this.cores.push(core);
    return core;
  }

  /** The synthetic catalog: 5 ads in each of the 8 categories. */
  async catalog(): Promise<SyntheticAd[]> {
    this.ads ??= await syntheticAds(5);
    return this.ads;
  }

  /** A core with the synthetic catalog loaded, and a record maker for it. */
  async coreWithCatalog(config: Config = testConfig(), stateDir?: string): Promise<{ core: Core; rec: RecordMaker; config: Config }> {
    const core = await this.core(config, stateDir);
    const rec = new RecordMaker(core, config, () => this.now);
    const ads = await this.catalog();
    const rejected = await core.catalogUpdater.apply(ads.map((ad, i) => rec.raw(config.topicAds, ad.adId, encodeAd(core.codec, ad, this.now), i)));
    if (rejected.length > 0) throw new Error(`catalog rejected: ${rejected.map((r) => r.message).join('; ')}`);
    return { core, rec, config };
  }

  async close(): Promise<void> {
    await Promise.all(this.cores.map((c) => c.close())); // closing twice is harmless
    for (const c of this.cores) rmSync(c.local.dir, { recursive: true, force: true });
  }
}

export class RecordMaker {
  private offset = 0;
  constructor(
    private readonly core: Core,
    private readonly config: Config,
    private readonly clock: () => number = () => NOW,
  ) {}

  raw(topic: string, key: string | null, value: Buffer | null, offset = this.offset++, partition = 0): InputRecord {
    return { topic, partition, offset: String(offset), key: key === null ? null : Buffer.from(key), value, timestamp: this.clock() };
  }

  click(userId: string, categoryId: string, opts: { eventId?: string; t?: number; action?: string; item?: string; partition?: number } = {}): InputRecord {
    const value = this.core.codec.encode('dev.adstream.events.ClickEvent', {
      eventId: opts.eventId ?? `c-${this.offset}`, userId, itemId: opts.item ?? `item-${categoryId}-1`, categoryId, action: opts.action ?? 'CLICK', eventTime: opts.t ?? this.clock(), sessionId: null,
    });
    return this.raw(this.config.topicClicks, userId, value, this.offset++, opts.partition ?? 0);
  }

  review(userId: string, text: string, opts: { eventId?: string; rating?: number } = {}): InputRecord {
    const value = this.core.codec.encode('dev.adstream.events.ReviewEvent', {
      eventId: opts.eventId ?? `r-${this.offset}`, userId, itemId: 'item-x', categoryId: null, rating: opts.rating ?? 5, text, language: null, eventTime: this.clock(),
    });
    return this.raw(this.config.topicReviews, userId, value);
  }

  /** A deletion request for the user on the deletions topic (key = userId unless given). */
  deletion(userId: string, opts: { requestId?: string; key?: string | null; partition?: number; offset?: number } = {}): InputRecord {
    const value = this.core.codec.encode('dev.adstream.privacy.UserDeletion', { userId, requestedAt: this.clock(), requestId: opts.requestId ?? `req-${this.offset}` });
    return this.raw(this.config.topicUserDeletions, opts.key === undefined ? userId : opts.key, value, opts.offset ?? this.offset++, opts.partition ?? 0);
  }

  /** An ad-feedback report (key = userId unless given). */
  feedback(userId: string, adId: string, kind: 'IMPRESSION' | 'CLICK' | 'CONVERSION', opts: { feedbackId?: string; outputId?: string | null; position?: number; t?: number; key?: string | null; partition?: number } = {}): InputRecord {
    const value = this.core.codec.encode('dev.adstream.feedback.AdFeedback', {
      feedbackId: opts.feedbackId ?? `f-${this.offset}`, userId, adId, outputId: opts.outputId ?? null, position: opts.position ?? 0, kind, eventTime: opts.t ?? this.clock(),
    });
    return this.raw(this.config.topicAdFeedback, opts.key === undefined ? userId : opts.key, value, this.offset++, opts.partition ?? 0);
  }

  image(userId: string, data: Buffer | string, opts: { eventId?: string; imageId?: string } = {}): InputRecord {
    const image = typeof data === 'string' ? { 'dev.adstream.events.ImageReference': { uri: data } } : { 'dev.adstream.events.InlineImage': { data, contentType: null } };
    const value = this.core.codec.encode('dev.adstream.events.ImageViewEvent', {
      eventId: opts.eventId ?? `i-${this.offset}`, userId, itemId: 'item-y', categoryId: null, imageId: opts.imageId ?? `img-${this.offset}`,
      image, dwellMs: null, eventTime: this.clock(),
    });
    return this.raw(this.config.topicImageViews, userId, value);
  }
}

export function categoriesOf(candidates: readonly { categoryId: string }[]): string[] {
  return candidates.map((c) => c.categoryId);
}
