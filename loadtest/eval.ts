/**
 * Targeting quality: replays a synthetic world through the processor core with no broker (records
 * made with the production codec, partitioned and chunked as the Kafka adapter does, see
 * src/adapters/memory/memory-transport.ts), holds out the last part of each user's timeline, and scores each
 * user's last ranked ads against the user's hidden interest mixture: HitRate@10, NDCG@10 (graded by
 * mixture weight) and Precision@10. One row per modality alone and per fusion strategy with K = 1
 * and K = 3 interests. Prints a table and, last, one JSON line.
 *
 * `--models packs` runs the fetched model packs (efficientnet-lite0, use-multilingual) in place of
 * the default image and text encoders (or `--models <pack,...>` for some of them).
 *
 *   npm run eval -- --world loadtest/worlds/default.json [--window 2000] [--models default|packs|<pack,...>]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config/load-config.js';
import type { Config, SettingName } from '../src/app/config/settings.js';
import { startCore } from '../src/app/assemble.js';
import type { ScoredOutput } from '../src/domain/outputs.js';
import type { Core } from '../src/pipeline/core.js';
import { encodeAd } from '../src/devtools/traffic.js';
import { silentLogger } from '../src/util/log.js';
import { feed, MemoryTopics } from '../src/adapters/memory/memory-transport.js';
import { AvroCodec } from '../src/serde/avro-codec.js';
import { seededRandom } from '../src/util/random.js';
import { DEMO_PACKS } from '../src/app/demo.js';
import { modelOverrides, selectPacks } from './model-selection.js';
import { hitAtK, ndcgAtK, precisionAtK } from './ranking-metrics.js';
import { World, type EventRole } from './world.js';

export interface EvalRun {
  readonly name: string;
  /** Feed only this modality's events (undefined: all of them). */
  readonly only?: EventRole;
  readonly overrides: Partial<Record<SettingName, string | number | boolean>>;
}

export const EVAL_RUNS: readonly EvalRun[] = [
  { name: 'click only (concat, K=3)', only: 'click', overrides: { fusion: 'concat', interestsPerUser: 3 } },
  { name: 'image only (concat, K=3)', only: 'image', overrides: { fusion: 'concat', interestsPerUser: 3 } },
  { name: 'text only (concat, K=3)', only: 'review', overrides: { fusion: 'concat', interestsPerUser: 3 } },
  { name: 'concat, K=1', overrides: { fusion: 'concat', interestsPerUser: 1 } },
  { name: 'concat, K=3', overrides: { fusion: 'concat', interestsPerUser: 3 } },
  { name: 'average, K=1', overrides: { fusion: 'average', interestsPerUser: 1 } },
  { name: 'average, K=3', overrides: { fusion: 'average', interestsPerUser: 3 } },
  { name: 'weighted, K=1', overrides: { fusion: 'weighted', interestsPerUser: 1 } },
  { name: 'weighted, K=3', overrides: { fusion: 'weighted', interestsPerUser: 3 } },
];

export interface Quality {
  users: number;
  /** Users with at least one scored output (the others count as misses). */
  usersScored: number;
  eventsFed: number;
  hitRateAt10: number;
  ndcgAt10: number;
  precisionAt10: number;
  seconds: number;
}

const K = 10;

/** Each user's ranked ads scored against the hidden mixture; users without a ranking score 0. */
export function scoreRankings(world: World, last: ReadonlyMap<string, readonly { categoryId: string }[]>): { hit: number; ndcg: number; precision: number; scored: number } {
  let hit = 0;
  let ndcg = 0;
  let precision = 0;
  let scored = 0;
  for (const u of world.users) {
    const w = new Map(u.mixture.map((m) => [m.categoryId, m.weight]));
    const ranked = last.get(u.userId);
    if (!ranked) continue;
    scored++;
    const gains = ranked.map((c) => w.get(c.categoryId) ?? 0);
    const pool = world.ads.map((a) => w.get(a.categoryId) ?? 0);
    hit += hitAtK(gains, K);
    ndcg += ndcgAtK(gains, pool, K);
    precision += precisionAtK(gains, K);
  }
  const n = world.users.length;
  return { hit: hit / n, ndcg: ndcg / n, precision: precision / n, scored };
}

export interface ReplayOptions {
  /** Feed only this modality's events (undefined: all of them). */
  readonly only?: EventRole;
  /** Feed the held-out part of the timelines too. */
  readonly heldOut?: boolean;
  /** Events appended per poll of the memory transport. */
  readonly window?: number;
}

/**
 * Replays the world's events through a fresh core (with a fresh local state store: a replay has no
 * changelog to bring an old one level with), as the Kafka adapter would feed them; `inspect` sees
 * the core and each user's last ranking before the core closes.
 */
export async function replayWorld<T>(world: World, config: Config, o: ReplayOptions, inspect: (core: Core, last: ReadonlyMap<string, ScoredOutput['candidates']>, eventsFed: number) => T | Promise<T>): Promise<T> {
  const stateDir = mkdtempSync(join(tmpdir(), 'adstream-replay-state-'));
  const core = await startCore(config, { logger: silentLogger, stateDir });
  try {
    const now = Date.now();
    const codec = core.codec;
    const ads = world.ads.map((ad, i) => ({ topic: config.topicAds, partition: 0, offset: String(i), key: Buffer.from(ad.adId), value: encodeAd(codec, ad, now), timestamp: now }));
    const rejected = await core.catalogUpdater.apply(ads);
    if (rejected.length > 0) throw new Error(`catalog rejected: ${rejected[0]!.message}`);

    const topicOf = { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews } as const;
    const events = world.timeline(codec, now - 1000).filter((e) => (o.heldOut || !e.heldOut) && (!o.only || e.event.role === o.only));
    const topics = new MemoryTopics(config.topicPartitions);
    const last = new Map<string, ScoredOutput['candidates']>();
    const concurrency = Math.min(config.topicPartitions * 3, 6); // as the Kafka adapter
    const window = o.window ?? 2000;
    for (let i = 0; i < events.length; i += window) {
      for (const { event } of events.slice(i, i + window)) topics.append(topicOf[event.role], event.key, event.value, event.eventTime);
      await feed(topics.poll(config.chunkMaxRecords), (records) => core.processor.process(records), (result) => {
        for (const out of result.scored) last.set(out.userId, out.candidates);
        if (result.deadLetters.length > 0) throw new Error(`dead letter in the replay: ${result.deadLetters[0]!.reason} ${result.deadLetters[0]!.message}`);
      }, concurrency, core.local);
    }
    return await inspect(core, last, events.length);
  } finally {
    await core.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Replays the world's training events (held-out ones skipped) through a fresh core; each user's last ranking. */
export async function evaluate(world: World, run: EvalRun, base: Partial<Record<SettingName, string | number | boolean>> = {}, window = 2000): Promise<Quality> {
  const t0 = performance.now();
  const config: Config = loadConfig({ env: {}, overrides: { catalogUploadIntervalMs: 0, logLevel: 'silent', ...base, ...run.overrides } });
  return replayWorld(world, config, { ...(run.only ? { only: run.only } : {}), window }, (_core, last, eventsFed) => {
    const q = scoreRankings(world, last);
    return { users: world.users.length, usersScored: q.scored, eventsFed, hitRateAt10: q.hit, ndcgAt10: q.ndcg, precisionAt10: q.precision, seconds: (performance.now() - t0) / 1000 };
  });
}

/** Ads in a random order (seeded): what targeting must beat. */
export function randomBaseline(world: World, seed = 5): Quality {
  const rand = seededRandom(seed);
  const last = new Map<string, { categoryId: string }[]>();
  for (const u of world.users) {
    const ads = [...world.ads];
    for (let i = ads.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [ads[i], ads[j]] = [ads[j]!, ads[i]!];
    }
    last.set(u.userId, ads.slice(0, K));
  }
  const q = scoreRankings(world, last);
  return { users: world.users.length, usersScored: q.scored, eventsFed: 0, hitRateAt10: q.hit, ndcgAt10: q.ndcg, precisionAt10: q.precision, seconds: 0 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { world: { type: 'string', default: 'loadtest/worlds/default.json' }, window: { type: 'string', default: '2000' }, only: { type: 'string' }, models: { type: 'string', default: 'default' } } });
  const world = await World.fromFile(values.world!);
  const base = modelOverrides(selectPacks(values.models!, DEMO_PACKS.split(',')));
  const rows: [string, Quality][] = [['random ads (baseline)', randomBaseline(world)]];
  const runs = values.only ? EVAL_RUNS.filter((r) => r.name.includes(values.only!)) : EVAL_RUNS;
  const t0 = performance.now();
  for (const run of runs) {
    const q = await evaluate(world, run, base, Number(values.window));
    rows.push([run.name, q]);
    process.stderr.write(`${run.name}: ${q.eventsFed} events in ${q.seconds.toFixed(1)} s\n`);
  }
  const s = world.spec;
  const machine = `${availableParallelism()} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
  console.log(`targeting quality, models ${values.models}: world ${values.world} (seed ${s.seed}, ${world.categories.length} categories, ${world.ads.length} ads, ${s.users} users x ${s.eval.eventsPerUser} events, last ${s.eval.holdoutShare * 100} % of each timeline held out); ${machine}`);
  console.log('');
  console.log('| Run | Events fed | HitRate@10 | NDCG@10 | Precision@10 |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [name, q] of rows) console.log(`| ${name} | ${q.eventsFed.toLocaleString('en-US')} | ${q.hitRateAt10.toFixed(3)} | ${q.ndcgAt10.toFixed(3)} | ${q.precisionAt10.toFixed(3)} |`);
  console.log('');
  const json: Record<string, unknown> = { world: values.world, models: values.models, seed: s.seed, users: s.users, machine, seconds: Math.round((performance.now() - t0) / 100) / 10 };
  json.runs = Object.fromEntries(rows.map(([name, q]) => [name, { hit_rate_at_10: round3(q.hitRateAt10), ndcg_at_10: round3(q.ndcgAt10), precision_at_10: round3(q.precisionAt10), events_fed: q.eventsFed, users_scored: q.usersScored }]));
  console.log(JSON.stringify(json));
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
