/**
 * MovieLens through adstream: ratings >= 4 become CLICK events (item = movie, category = its first
 * genre; optionally a review event with the title as its text), the movies become the ad catalog,
 * and the train split is replayed in time order through the processor core with no broker (records
 * in the production codec, partitioned and chunked as the Kafka adapter does,
 * src/adapters/memory/memory-transport.ts). The users' interests it leaves are read back, and a
 * movie's score for a user is the scorer's similarity: its inner product with the user's best
 * matching interest (each interest normalised, as rank.ts queries the scorer).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCore } from '../../src/app/assemble.js';
import type { Config } from '../../src/app/config/settings.js';
import { feed, MemoryTopics } from '../../src/adapters/memory/memory-transport.js';
import { rankQuery, type RankQuery } from '../../src/pipeline/rank.js';
import { silentLogger } from '../../src/util/log.js';
import { dot } from '../../src/util/vectors.js';
import type { MovieLens } from './datasets.js';
import type { ScoreUser, Split, Timeline } from './ncf-protocol.js';

/** Ratings at or above this are positives (clicks); the rest are only "seen". */
export const POSITIVE_RATING = 4;

export interface IndexedMovieLens {
  /** Dense user index -> 'u<id>'. */
  readonly userIds: readonly string[];
  /** Dense item index -> 'm<id>' (the ad id and the clicked item id). */
  readonly itemIds: readonly string[];
  readonly titles: readonly string[];
  readonly genres: readonly string[];
  /** Per user, seconds since the epoch of each timeline entry. */
  readonly times: readonly Float64Array[];
  readonly timelines: readonly Timeline[];
}

/** Dense indices and per-user timelines in time order (ties by movie id, so the split is deterministic). */
export function indexMovieLens(ml: MovieLens): IndexedMovieLens {
  const itemOf = new Map(ml.movies.map((m, i) => [m.movieId, i]));
  const byUser = new Map<number, number[]>();
  const { user, movie, rating, time } = ml.ratings;
  for (let r = 0; r < user.length; r++) {
    if (!itemOf.has(movie[r]!)) throw new Error(`rating ${r}: movie ${movie[r]} is not in the items file`);
    const list = byUser.get(user[r]!);
    if (list) list.push(r);
    else byUser.set(user[r]!, [r]);
  }
  const ids = [...byUser.keys()].sort((a, b) => a - b);
  const timelines: Timeline[] = [];
  const times: Float64Array[] = [];
  for (const id of ids) {
    const rows = byUser.get(id)!.sort((a, b) => time[a]! - time[b]! || movie[a]! - movie[b]!);
    timelines.push({ items: Int32Array.from(rows, (r) => itemOf.get(movie[r]!)!), positive: Uint8Array.from(rows, (r) => (rating[r]! >= POSITIVE_RATING ? 1 : 0)) });
    times.push(Float64Array.from(rows, (r) => time[r]!));
  }
  return { userIds: ids.map((id) => `u${id}`), itemIds: ml.movies.map((m) => `m${m.movieId}`), titles: ml.movies.map((m) => m.title), genres: ml.movies.map((m) => m.genre), times, timelines };
}

/** The train split's clicks, all users merged in time order: what the processor and the item trainer see. */
export interface TrainClick {
  readonly user: number;
  readonly item: number;
  /** Seconds since the epoch. */
  readonly time: number;
}

export function trainClicks(data: IndexedMovieLens, split: Split): TrainClick[] {
  const out: TrainClick[] = [];
  data.timelines.forEach((t, u) => {
    const heldOut = split.heldOut[u]!;
    for (let i = 0; i < t.items.length; i++) {
      if (t.items[i] === heldOut) break; // the held-out positive and everything after it stay unseen
      if (t.positive[i]) out.push({ user: u, item: t.items[i]!, time: data.times[u]![i]! });
    }
  });
  return out.sort((a, b) => a.time - b.time || a.user - b.user);
}

export interface ReplayOptions {
  /** Also a review event per click, the movie's title as its text. */
  readonly titlesAsText: boolean;
  /** Events appended per poll of the memory transport. */
  readonly window?: number;
}

export interface Replayed {
  readonly score: ScoreUser;
  readonly eventsFed: number;
  readonly seconds: number;
}

/** Replays the train clicks through a fresh core; the returned scorer reads the interests it left. */
export async function replayMovieLens(data: IndexedMovieLens, clicks: readonly TrainClick[], config: Config, o: ReplayOptions): Promise<Replayed> {
  const t0 = performance.now();
  const stateDir = mkdtempSync(join(tmpdir(), 'adstream-real-state-'));
  const core = await startCore(config, { logger: silentLogger, stateDir });
  try {
    const codec = core.codec;
    const now = Date.now();
    const ads = data.itemIds.map((adId, i) => ({
      topic: config.topicAds, partition: 0, offset: String(i), key: Buffer.from(adId), timestamp: now,
      value: codec.encode('dev.adstream.catalog.Ad', { adId, advertiserId: 'movielens', title: data.titles[i]!, description: '', categoryId: data.genres[i]!, image: null, bidMicros: 1, active: true, updatedAt: now }),
    }));
    const rejected = await core.catalogUpdater.apply(ads);
    if (rejected.length > 0) throw new Error(`catalog rejected: ${rejected[0]!.message}`);

    // Event time keeps the gaps of the dataset, shifted so that the last click is a second ago.
    const last = clicks.length > 0 ? clicks[clicks.length - 1]!.time : 0;
    const topics = new MemoryTopics(config.topicPartitions);
    const concurrency = Math.min(config.topicPartitions * 3, 6); // as the Kafka adapter
    const window = o.window ?? 2000;
    let fed = 0;
    for (let i = 0; i < clicks.length; i += window) {
      for (const c of clicks.slice(i, i + window)) {
        const userId = data.userIds[c.user]!;
        const itemId = data.itemIds[c.item]!;
        const eventTime = now - 1000 - Math.round((last - c.time) * 1000);
        const key = Buffer.from(userId);
        const eventId = `ml-${fed++}`;
        topics.append(config.topicClicks, key, codec.encode('dev.adstream.events.ClickEvent', { eventId, userId, itemId, categoryId: data.genres[c.item]!, action: 'CLICK', eventTime, sessionId: null }), eventTime);
        if (o.titlesAsText) {
          topics.append(config.topicReviews, key, codec.encode('dev.adstream.events.ReviewEvent', { eventId: `ml-${fed++}`, userId, itemId, categoryId: null, rating: 5, text: data.titles[c.item]!, language: 'en', eventTime }), eventTime);
        }
      }
      await feed(topics.poll(config.chunkMaxRecords), (records) => core.processor.process(records), (result) => {
        if (result.deadLetters.length > 0) throw new Error(`dead letter in the replay: ${result.deadLetters[0]!.reason} ${result.deadLetters[0]!.message}`);
      }, concurrency, core.local);
    }

    const F = core.catalog.dim;
    const queries: (RankQuery | undefined)[] = data.userIds.map((userId) => {
      const state = core.users.get(userId);
      return state && state.interests.length > 0 ? rankQuery(state.interests, F) : undefined;
    });
    // The ad matrix in item order (catalog rows are in upsert order, which deletes could change).
    const rowOfAd = new Map(core.catalog.rowSnapshot().map((ad, r) => [ad.adId, r]));
    const catalogRows = core.catalog.embeddings();
    const ads2 = new Float32Array(data.itemIds.length * F);
    data.itemIds.forEach((id, i) => ads2.set(catalogRows.subarray(rowOfAd.get(id)! * F, (rowOfAd.get(id)! + 1) * F), i * F));
    const score: ScoreUser = (u, out) => {
      const q = queries[u];
      if (!q) return void out.fill(0);
      const rows = q.shares.length;
      for (let j = 0; j < out.length; j++) {
        let best = -Infinity;
        for (let r = 0; r < rows; r++) best = Math.max(best, dot(q.interests, r * F, ads2, j * F, F));
        out[j] = best;
      }
    };
    return { score, eventsFed: fed, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await core.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}
