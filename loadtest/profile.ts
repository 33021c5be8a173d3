/**
 * Where the processor's time goes at a high load: runs it (`node --cpu-prof dist/app/cli.js run`,
 * its own process, isolated topics) under an open-loop load for N seconds, stops it with SIGTERM
 * (so that every thread writes its .cpuprofile), and summarises the profiles of the load window:
 * the main thread and the inference workers apart. Writes DIR/profile.json, DIR/profile.md and the
 * raw profiles under DIR/cpuprofiles (open them in Chrome DevTools), and prints one JSON line last.
 *
 *   npm run profile -- [--out DIR] [--rate 10000] [--seconds 30] [--warmup 5] [--world FILE]
 *                      [--ads N] [--state-dir DIR] [--main PATH/app/cli.js] [--env KEY=VALUE ...]
 *   (--main: another build's entry, e.g. a copy of dist/ for an A/B pair; --env: settings of the processor;
 *   --ads: the world's catalog grown to N ads, as in npm run bench; --state-dir: the processor's state
 *   kept there between runs, so a large catalog's embeddings and saved index are not built again)
 *   npm run profile -- --summarise DIR     (summarise DIR's profiles again, e.g. after changing the categories)
 *
 * Starts a local broker unless KAFKA_BROKERS is set. Needs `npm run build` (the script runs it).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { boundedProducerOf } from '../src/adapters/kafka/produce-limits.js';
import { POOL_MISS_REASONS } from '../src/pipeline/retrieve-index.js';
import { AvroCodec } from '../src/serde/avro-codec.js';
import { summariseProfiles, summaryMarkdown, threadOfProfileFile, type CpuProfile, type ThreadSummary } from './cpu-profile.js';
import { metricSum, procStats, runOpenLoop, scrape, ScoredObserver } from './load-generator.js';
import { produceCatalog } from './catalog-load.js';
import { spawnNode } from './spawn-processor.js';
import { benchBrokers, createTopicsFor, isolatedEnv, kafkaClient } from './spawn.js';
import { World } from './world.js';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: 'profile-out' },
    world: { type: 'string', default: 'loadtest/worlds/default.json' },
    // Near the highest rate the benchmark found sustainable on the 2-core box (README, "Benchmark").
    rate: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    summarise: { type: 'string' },
    main: { type: 'string' },
    ads: { type: 'string' },
    'state-dir': { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const OUT = resolve(args.summarise ?? args.out!);
const PROFILES = join(OUT, 'cpuprofiles');
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = resolve(args.main ?? join(ROOT, 'dist/app/cli.js'));
/** --env KEY=VALUE: the processor's settings on top of the isolated run's. */
const EXTRA_ENV = Object.fromEntries(args.env!.map((kv) => {
  const at = kv.indexOf('=');
  if (at < 1) throw new Error(`--env wants KEY=VALUE, got ${kv}`);
  return [kv.slice(0, at), kv.slice(at + 1)];
}));
const say = (s: string): void => void process.stderr.write(`${s}\n`);
const machine = `${availableParallelism()} vCPU ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version.slice(1)}`;
/** process.hrtime's clock in microseconds: the clock the profiles' timestamps are on (Linux). */
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<void> {
  const rate = Number(args.rate);
  const seconds = Number(args.seconds);
  const warmup = Number(args.warmup);
  if (!(rate > 0) || !(seconds > 0) || !(warmup >= 0)) throw new Error('--rate and --seconds must be positive, --warmup at least 0');
  const { brokers, broker } = await benchBrokers(say);
  rmSync(PROFILES, { recursive: true, force: true });
  mkdirSync(PROFILES, { recursive: true });
  const kafka = kafkaClient(brokers);
  const producer = await boundedProducerOf(kafka, []);
  const codec = new AvroCodec();
  const world = await World.fromFile(args.world!);
  const env = isolatedEnv(brokers, 'profile', EXTRA_ENV);
  const config = await createTopicsFor(kafka, env);
  const adCount = Number(args.ads ?? world.ads.length);
  await produceCatalog(producer, codec, config.topicAds, world.ads, adCount);
  const stateDir = args['state-dir'] ? resolve(args['state-dir']) : join(env.STATE_DIR!, 'instance');
  // A large catalog is encoded (and indexed) before the processor is ready, as in the benchmark.
  const proc = await spawnNode(['--cpu-prof', '--cpu-prof-dir', PROFILES, MAIN, 'run'], { ...env, STATE_DIR: stateDir }, { outputChars: 20_000, readyTimeoutMs: Math.max(90_000, adCount * 2) });
  const obs = new ScoredObserver(kafka, codec, { scored: config.topicScored, deadLetters: config.topicDeadLetters });
  let window: { fromUs: number; toUs: number; accounted: number; sent: number; cpuPercent: number; slipMs: number; p50Ms: number; p99Ms: number; chunks: number; recordsPerChunk: number; workerBatches: number; pools: { pooledRows: number; searchedRows: number; checks: number; recallMean: number | null; misses: Record<string, number> } };
  try {
    await proc.waitReady();
    await obs.start();
    const traffic = world.traffic(codec, { seed: 303, eventIdPrefix: 'profile' });
    const topics = { click: env.TOPIC_CLICKS!, image: env.TOPIC_IMAGE_VIEWS!, review: env.TOPIC_REVIEWS! };
    if (warmup > 0) {
      say(`warm-up: ${warmup} s at ${rate}/s`);
      await runOpenLoop({ producer, traffic, topics, observer: obs, rate, seconds: warmup });
    }
    say(`profiling window: ${seconds} s at ${rate}/s`);
    const a0 = obs.accounted;
    const m0 = await scrape(proc.port);
    obs.resetHistogram();
    const s0 = procStats(proc.proc.pid!);
    const fromUs = nowUs();
    const r = await runOpenLoop({ producer, traffic, topics, observer: obs, rate, seconds });
    const toUs = nowUs();
    const s1 = procStats(proc.proc.pid!);
    const m1 = await scrape(proc.port);
    // The window's events that arrive after it still count in its latency.
    await obs.drained(30_000);
    const latency = obs.resetHistogram();
    // Per chunk: how many records a chunk held, how many worker trips (batches) the window made.
    const delta = (name: string, labels?: (l: string) => boolean): number => metricSum(m1, name, labels) - metricSum(m0, name, labels);
    const chunks = delta('adstream_chunk_records_count');
    // With the ad index: rows its candidate pools answered and rows it searched, and the pools' checked recall.
    const rows = (result: string): number => delta('adstream_retrieval_pool_rows_total', (l) => l.includes(`result="${result}"`));
    const checks = delta('adstream_retrieval_pool_recall_count');
    // Why the searched rows of known users found no pool.
    const misses = Object.fromEntries(POOL_MISS_REASONS.map((reason) => [reason, delta('adstream_retrieval_pool_misses_total', (l) => l.includes(`reason="${reason}"`)) || 0]));
    const pools = { pooledRows: rows('pooled'), searchedRows: rows('searched'), checks, recallMean: checks > 0 ? Math.round((delta('adstream_retrieval_pool_recall_sum') / checks) * 1000) / 1000 : null, misses };
    window = {
      fromUs, toUs, accounted: obs.accounted - a0, sent: r.sent, slipMs: r.maxScheduleSlipMs,
      cpuPercent: s0 && s1 ? Math.round(((s1.cpuSeconds - s0.cpuSeconds) / ((toUs - fromUs) / 1e6)) * 100) : Number.NaN,
      p50Ms: latency.percentile(0.5), p99Ms: latency.percentile(0.99),
      chunks, recordsPerChunk: Math.round((delta('adstream_chunk_records_sum') / chunks) * 100) / 100, workerBatches: delta('adstream_inference_batch_size_count'),
      pools,
    };
  } finally {
    await obs.stop().catch(() => undefined);
    // SIGTERM: the processor drains, commits and exits, and each thread writes its profile on the way out.
    await proc.stop(60_000);
    await producer.disconnect();
    await broker?.stop();
  }
  const code = await proc.exited;
  if (code !== 0) throw new Error(`the processor exited with ${code} (its profiles may be missing):\n${proc.output()}`);

  const { summary, counts } = summariseDir(PROFILES, window);
  const results = {
    machine,
    command: `npm run profile -- --rate ${rate} --seconds ${seconds} --warmup ${warmup}${args.ads ? ` --ads ${args.ads}` : ''}`,
    offered_events_per_s: rate,
    window_seconds: seconds,
    achieved_events_per_s: Math.round(window.accounted / ((window.toUs - window.fromUs) / 1e6)),
    p50_ms: window.p50Ms,
    p99_ms: window.p99Ms,
    chunks: window.chunks,
    records_per_chunk: window.recordsPerChunk,
    worker_batches: window.workerBatches,
    candidate_pools: window.pools,
    processor_env: EXTRA_ENV,
    generator_max_slip_ms: window.slipMs,
    processor_cpu_percent: window.cpuPercent,
    window_us: { from: window.fromUs, to: window.toUs },
    profiles: counts,
    ...summary,
  };
  write(results, summary);
}

type Results = { machine: string; command: string; offered_events_per_s: number; achieved_events_per_s: number; processor_cpu_percent: number; window_seconds: number; p50_ms?: number; p99_ms?: number; chunks?: number; records_per_chunk?: number; worker_batches?: number; candidate_pools?: unknown };

/** The main thread's profile and the workers', each summarised over the window. */
function summariseDir(dir: string, window: { fromUs?: number; toUs?: number }): { summary: { main: ThreadSummary; workers: ThreadSummary }; counts: { main: number; workers: number } } {
  const files = readdirSync(dir).filter((f) => threadOfProfileFile(f) !== undefined);
  const main = files.filter((f) => threadOfProfileFile(f) === 0);
  const workers = files.filter((f) => threadOfProfileFile(f)! > 0);
  if (main.length !== 1) throw new Error(`expected one main-thread profile in ${dir}, found ${main.length} (files: ${files.join(', ') || 'none'})`);
  const read = (f: string): CpuProfile => JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
  const opts = { ...window, root: ROOT };
  return { summary: { main: summariseProfiles(main.map(read), opts), workers: summariseProfiles(workers.map(read), opts) }, counts: { main: main.length, workers: workers.length } };
}

function write(results: Results, summary: { main: ThreadSummary; workers: ThreadSummary }): void {
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'profile.json'), JSON.stringify(results, null, 2) + '\n');
  const md = report(results, summary);
  writeFileSync(join(OUT, 'profile.md'), md);
  say(md);
  console.log(JSON.stringify({
    achieved_events_per_s: results.achieved_events_per_s, offered_events_per_s: results.offered_events_per_s, processor_cpu_percent: results.processor_cpu_percent,
    p50_ms: results.p50_ms, p99_ms: results.p99_ms, chunks: results.chunks, records_per_chunk: results.records_per_chunk, worker_batches: results.worker_batches, candidate_pools: results.candidate_pools,
    main_busy_percent: summary.main.busyPercent, main_categories: summary.main.categories, workers_busy_percent: summary.workers.busyPercent, machine: results.machine,
  }));
}

function report(r: Results, s: { main: ThreadSummary; workers: ThreadSummary }): string {
  return [
    '### CPU profile',
    '',
    `Machine: ${r.machine}. \`${r.command}\`: ${r.window_seconds} s window at ${r.offered_events_per_s} events/s offered, ${r.achieved_events_per_s}/s achieved, processor CPU ${r.processor_cpu_percent} % (all threads); latency p50 ${r.p50_ms} ms / p99 ${r.p99_ms} ms; ${r.chunks} chunks of ${r.records_per_chunk} records on average, ${r.worker_batches} inference batches.`,
    '',
    summaryMarkdown('Main thread', s.main),
    summaryMarkdown('Inference workers (merged)', s.workers),
  ].join('\n');
}

/** --summarise DIR: the profiles under DIR/cpuprofiles again, over the window its profile.json names (else all of them). */
function summariseAgain(): void {
  const before = JSON.parse(readFileSync(join(OUT, 'profile.json'), 'utf8')) as Results & { window_us?: { from: number; to: number } };
  const w = before.window_us;
  const { summary, counts } = summariseDir(PROFILES, w ? { fromUs: w.from, toUs: w.to } : {});
  if (!w) say('profile.json names no window: the whole profiles are summarised (start-up and shutdown included)');
  write({ ...before, profiles: counts, ...summary } as Results, summary);
}

if (args.summarise !== undefined) summariseAgain();
else await main();
