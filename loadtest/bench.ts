/**
 * The benchmark: maximum sustainable throughput of the processor (spawned as its own process) by
 * sweeping open-loop offered load, its latency at half of it, and in the same run the two floors:
 * a Kafka pass-through (loadtest/passthrough.ts: same client, consumer settings, chunking, producer,
 * acks and commits; no features or inference), its drain rate and its latency at every offered load
 * the processor's sweep ran (same generator, observer, topics layout and step length), and raw
 * inference at the best batch size. Writes DIR/results.json, DIR/report.md and
 * DIR/latency-vs-throughput.svg, and prints one JSON line last.
 *
 *   npm run bench -- --out DIR [--world FILE] [--ads N] [--client kafkajs|confluent] [--step-seconds 8] [--max-rate 32000] [--restart] [--state-dir DIR] [--no-ceiling]
 *
 * --ads N grows the world's catalog to N ads (copies sharing the creatives, see catalog-load's catalogSlice); the
 * time to ready (catalog loaded, ad index built or loaded) and the RSS then are reported.
 * --state-dir DIR keeps the processor's state in DIR instead of a fresh folder, so a later run
 * starts warm (the ad embeddings and the saved index on disk: its first start is then no cold one).
 * --restart stops the processor once ready and starts it again on the state it left (the
 * persisted ad embeddings and the saved index): its time to ready is reported, then the sweep runs
 * on it. --no-ceiling skips the raw inference ceiling (at a large catalog it would time the exact
 * scan over every ad, which RETRIEVAL=auto does not run).
 *
 * Starts a local broker unless KAFKA_BROKERS is set. The Kafka client of the processor and the
 * pass-through: --client, else KAFKA_CLIENT from the environment (passed on to both), else kafkajs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { boundedProducerOf } from '../src/adapters/kafka/produce-limits.js';
import { loadConfig } from '../src/app/config/load-config.js';
import { AvroCodec } from '../src/serde/avro-codec.js';
import { compareAtLoads, floorSeries, floorTable, halfLoadFloor, kafkaClientName, type FloorRow } from './floor-comparison.js';
import { eventsPerSecondCeiling, inferenceCeiling } from './inference-ceiling.js';
import { drainRate, metricSum, preload, procStats, runOpenLoop, scrape, ScoredObserver, sleep, type EventTopics } from './load-generator.js';
import { benchBrokers, createTopicsFor, isolatedEnv, kafkaClient, spawnPassThrough, spawnProcessor, type Spawned } from './spawn.js';
import { latencyChart } from './svg-chart.js';
import { produceCatalog } from './catalog-load.js';
import { World, type WorldTraffic } from './world.js';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench-out' },
    world: { type: 'string', default: 'loadtest/worlds/default.json' },
    client: { type: 'string' },
    'step-seconds': { type: 'string', default: '8' },
    'half-seconds': { type: 'string', default: '15' },
    'start-rate': { type: 'string', default: '500' },
    'max-rate': { type: 'string', default: '32000' },
    'refine-steps': { type: 'string', default: '2' },
    'drain-events': { type: 'string', default: '30000' },
    ads: { type: 'string' },
    restart: { type: 'boolean', default: false },
    'state-dir': { type: 'string' },
    'no-ceiling': { type: 'boolean', default: false },
  },
});
const OUT = args.out!;
const STEP_S = Number(args['step-seconds']);
const HALF_S = Number(args['half-seconds']);
const say = (s: string): void => void process.stderr.write(`${s}\n`);
const machine = `${availableParallelism()} vCPU ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version.slice(1)}`;

interface Step {
  offered: number;
  seconds: number;
  sent: number;
  accounted_in_step: number;
  achieved_events_per_s: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  backlog_at_end: number;
  backlog_slope_per_s: number;
  drain_ms: number | null;
  /** From the processor's /metrics (the pass-through serves none: NaN). */
  consumer_lag_records: number;
  /**
   * The processor's garbage collector in the step (prom-client's GC histogram; NaN for the
   * pass-through): time in major (mark-compact) collections, and pauses of any kind over 100 ms,
   * what a latency spike in a step may come from.
   */
  gc_major_ms: number;
  gc_pauses_over_100ms: number;
  /** Of the process measured (the processor or the pass-through). */
  cpu_percent: number;
  rss_mb: number;
  generator_max_slip_ms: number;
  sustainable: boolean;
}

/** What an open-loop step drives and watches: one spawned process, its input topics and the observer of its outputs. */
interface Target {
  readonly name: string;
  readonly pid: number;
  /** Its /metrics port, if it serves one. */
  readonly metricsPort?: number;
  readonly observer: ScoredObserver;
  readonly traffic: WorldTraffic;
  readonly topics: EventTopics;
}

/** Least-squares slope of y over t (per second). */
function slope(samples: { t: number; y: number }[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const my = samples.reduce((a, s) => a + s.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.y - my);
    den += (s.t - mt) ** 2;
  }
  return den > 0 ? (num / den) * 1000 : 0;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const { brokers, broker } = await benchBrokers(say);
  // Both spawned processes inherit our environment; --client sets KAFKA_CLIENT for both.
  const clientEnv: Record<string, string> = args.client ? { KAFKA_CLIENT: args.client } : {};
  const spawnedProcs: Spawned[] = [];
  try {
    const world = await World.fromFile(args.world!);
    const codec = new AvroCodec();
    // The generator's and the observer's client: the same for both runs, whichever client is measured.
    const kafka = kafkaClient(brokers);
    // Its topics are made per run below: the broker's message.max.bytes bounds its sends.
    const producer = await boundedProducerOf(kafka, []);
    const topicsOf = (env: Record<string, string>): EventTopics => ({ click: env.TOPIC_CLICKS!, image: env.TOPIC_IMAGE_VIEWS!, review: env.TOPIC_REVIEWS! });

    const step = async (t: Target, rate: number, seconds: number): Promise<Step> => {
      const obs = t.observer;
      obs.resetHistogram();
      const samples: { t: number; y: number }[] = [];
      const s0 = procStats(t.pid);
      const m0 = t.metricsPort === undefined ? undefined : await scrape(t.metricsPort);
      const a0 = obs.accounted;
      const started = Date.now();
      let rss = s0?.rssBytes ?? 0;
      const r = await runOpenLoop({
        producer, traffic: t.traffic, topics: t.topics, observer: obs, rate, seconds, sampleMs: 250,
        onSample: (s) => {
          samples.push({ t: s.t, y: s.outstanding });
          rss = Math.max(rss, procStats(t.pid)?.rssBytes ?? 0);
        },
      });
      const stepMs = Date.now() - started;
      const backlog = obs.outstanding;
      const m1 = t.metricsPort === undefined ? undefined : await scrape(t.metricsPort);
      const lag = m1 === undefined ? Number.NaN : metricSum(m1, 'adstream_consumer_lag_records');
      const gc = gcInStep(m0, m1);
      const s1 = procStats(t.pid);
      const accountedInStep = obs.accounted - a0;
      const tail = samples.filter((s) => s.t >= (seconds * 1000) / 2);
      const sl = slope(tail);
      const d0 = Date.now();
      const drained = await obs.drained(Math.max(5000, STEP_S * 1000));
      const drainMs = drained ? Date.now() - d0 : null;
      if (!drained) await obs.drained(60_000); // leave a clean slate for the next step
      const h = obs.histogram.summary();
      // Sustainable: the generator kept its schedule, the backlog did not keep growing in the second
      // half of the step (slope under 5 % of the rate), and it was drained within 2 s after the step.
      const sustainable = r.maxScheduleSlipMs < 1000 && sl < 0.05 * rate && drainMs !== null && drainMs <= 2000;
      const st: Step = {
        offered: rate, seconds, sent: r.sent, accounted_in_step: accountedInStep,
        achieved_events_per_s: Math.round(accountedInStep / (stepMs / 1000)),
        p50_ms: h.p50, p90_ms: h.p90, p99_ms: h.p99, p999_ms: h.p999, max_ms: h.max,
        backlog_at_end: backlog, backlog_slope_per_s: Math.round(sl), drain_ms: drainMs,
        consumer_lag_records: lag,
        gc_major_ms: gc.majorMs,
        gc_pauses_over_100ms: gc.over100ms,
        cpu_percent: s0 && s1 ? Math.round(((s1.cpuSeconds - s0.cpuSeconds) / (stepMs / 1000)) * 100) : Number.NaN,
        rss_mb: Math.round(rss / 2 ** 20),
        generator_max_slip_ms: r.maxScheduleSlipMs,
        sustainable,
      };
      say(`  ${t.name} ${String(rate).padStart(6)}/s: ${st.achieved_events_per_s}/s achieved, p50 ${h.p50} p99 ${h.p99} p99.9 ${h.p999} max ${h.max} ms, backlog ${backlog} (slope ${st.backlog_slope_per_s}/s, drained in ${drainMs ?? '>'} ms), lag ${lag}, gc major ${gc.majorMs} ms (${gc.over100ms} pauses > 100 ms), cpu ${st.cpu_percent} %, rss ${st.rss_mb} MB -> ${sustainable ? 'sustainable' : 'NOT sustainable'}`);
      return st;
    };

    // 1. The processor: catalog, spawn, then the open-loop sweep.
    const env = isolatedEnv(brokers, 'bench', clientEnv);
    const config = await createTopicsFor(kafka, env);
    const kafkaClientUsed = kafkaClientName(config, { ...process.env, ...env });
    say(`Kafka client of the processor and the pass-through: ${kafkaClientUsed}`);
    const now = Date.now();
    const adCount = Number(args.ads ?? world.ads.length);
    await produceCatalog(producer, codec, config.topicAds, world.ads, adCount, now);
    say(`catalog: ${adCount} ads produced in ${Math.round((Date.now() - now) / 1000)} s`);
    // --state-dir: the processor's state kept between runs (a warm start: embeddings and index on disk).
    const stateDir = args['state-dir'] ? resolve(args['state-dir']) : join(env.STATE_DIR!, 'bench-processor');
    // A large catalog is encoded (and indexed) before the processor is ready: minutes at a million.
    const readyTimeoutMs = Math.max(120_000, adCount * 2);
    const startReady = async (): Promise<{ proc: Spawned; start: StartFigures }> => {
      const t = Date.now();
      // Info level: the catalog's and the index's start-up records (load time, build or load of the index).
      const p = await spawnProcessor({ ...env, LOG_LEVEL: 'info' }, stateDir);
      spawnedProcs.push(p);
      await p.waitReady(readyTimeoutMs);
      const start: StartFigures = { ready_s: Math.round((Date.now() - t) / 100) / 10, rss_mb_at_ready: Math.round((procStats(p.proc.pid!)?.rssBytes ?? 0) / 2 ** 20), log: startLog(p.output()) };
      say(`processor ready in ${start.ready_s} s, rss ${start.rss_mb_at_ready} MB: ${JSON.stringify(start.log)}`);
      return { proc: p, start };
    };
    let { proc, start: coldStart } = await startReady();
    let restartStart: StartFigures | null = null;
    if (args.restart) {
      await proc.stop(120_000);
      ({ proc, start: restartStart } = await startReady());
    }
    const obs = new ScoredObserver(kafka, codec, { scored: config.topicScored, deadLetters: config.topicDeadLetters });
    await obs.start();
    const processor: Target = { name: 'processor', pid: proc.proc.pid!, metricsPort: proc.port, observer: obs, traffic: world.traffic(codec, { seed: 202, eventIdPrefix: 'bench' }), topics: topicsOf(env) };

    say('processor: warm-up');
    await step(processor, 200, 3);
    // Burst drain: the processor's own drain rate on a backlog, comparable with the pass-through's.
    const drainN = Number(args['drain-events']);
    say(`processor: burst of ${drainN} events (drain rate)...`);
    const a0 = obs.accounted;
    await preload(producer, processor.traffic, processor.topics, drainN, obs);
    const burst = await (async () => {
      // The observer counts from a0: wait for 5 % .. 95 % of the burst.
      const lo = a0 + Math.ceil(drainN * 0.05);
      const hi = a0 + Math.floor(drainN * 0.95);
      const deadline = Date.now() + 180_000;
      let tLo: number | undefined;
      while (Date.now() < deadline) {
        if (tLo === undefined && obs.accounted >= lo) tLo = performance.now();
        if (tLo !== undefined && obs.accounted >= hi) return (hi - lo) / ((performance.now() - tLo) / 1000);
        await sleep(10);
      }
      return null;
    })();
    await obs.drained(60_000);
    say(`processor: burst drained at ${Math.round(burst ?? 0)} events/s`);

    say(`processor: sweep (${STEP_S} s per step)`);
    const steps: Step[] = [];
    let rate = Number(args['start-rate']);
    let lo = 0;
    let hi = 0;
    for (;;) {
      const st = await step(processor, rate, STEP_S);
      steps.push(st);
      if (!st.sustainable) {
        hi = rate;
        break;
      }
      lo = rate;
      if (rate * 2 > Number(args['max-rate'])) break;
      rate *= 2;
    }
    for (let i = 0; hi > 0 && i < Number(args['refine-steps']); i++) {
      const mid = Math.round((lo + hi) / 2 / 50) * 50;
      if (mid <= lo || mid >= hi) break;
      const st = await step(processor, mid, STEP_S);
      steps.push(st);
      if (st.sustainable) lo = mid;
      else hi = mid;
    }
    const best = steps.filter((s) => s.sustainable && s.offered === lo)[0];
    const maxEventsPerS = best ? best.achieved_events_per_s : 0;

    const halfRate = Math.max(50, Math.round(lo / 2));
    say(`processor: latency at half of ${lo}/s`);
    const items0 = await scrape(proc.port);
    const accounted0 = obs.accounted;
    const half = await step(processor, halfRate, HALF_S);
    const items1 = await scrape(proc.port);
    const perEvent: Record<string, number> = {};
    const events = obs.accounted - accounted0;
    // The engine's queued models: fusion runs in-process, and the CTR model inside the scorer's requests.
    for (const m of ['image', 'text', 'click', 'scorer', 'ann']) {
      const f = (l: string): boolean => l.includes(`model="${m}"`);
      perEvent[m] = events > 0 ? (metricSum(items1, 'adstream_inference_items_total', f) - metricSum(items0, 'adstream_inference_items_total', f)) / events : 0;
    }
    // Query rows answered by the retrieval cache instead of a search (RETRIEVAL_CACHE_ROWS), and
    // rows the index answered from a candidate pool or searched (RETRIEVAL_POOL_DRIFT).
    const rowsBy = [['retrieval_cache', 'adstream_retrieval_cache_rows_total', ['hit', 'miss']], ['retrieval_pool', 'adstream_retrieval_pool_rows_total', ['pooled', 'searched']]] as const;
    for (const [key, metric, results] of rowsBy) {
      for (const result of results) {
        const f = (l: string): boolean => l.includes(`result="${result}"`);
        perEvent[`${key}_${result}`] = events > 0 ? (metricSum(items1, metric, f) - metricSum(items0, metric, f)) / events : 0;
      }
    }
    // The pools' recall against a search, over every checked row of the run (sweep included).
    const checks = metricSum(items1, 'adstream_retrieval_pool_recall_count');
    const poolRecall = checks > 0 ? { checks, mean: round3(metricSum(items1, 'adstream_retrieval_pool_recall_sum') / checks), share_below_0_9: round3(metricSum(items1, 'adstream_retrieval_pool_recall_bucket', (l) => l.includes('le="0.9"')) / checks) } : null;
    const deadLetters = obs.deadLetters;
    await obs.stop();
    await proc.stop();

    // 2. The Kafka pass-through, with the processor stopped: its drain rate on a backlog, then its
    // latency at every offered load the processor ran, in the same order, same step lengths.
    const ptEnv = isolatedEnv(brokers, 'bench-pt', clientEnv);
    await createTopicsFor(kafka, ptEnv);
    const ptObs = new ScoredObserver(kafka, codec, { scored: ptEnv.TOPIC_SCORED! });
    await ptObs.start();
    say(`pass-through: preloading ${drainN} events...`);
    await preload(producer, world.traffic(codec, { seed: 101, eventIdPrefix: 'pt' }), topicsOf(ptEnv), drainN, ptObs);
    const pt = await spawnPassThrough(ptEnv);
    spawnedProcs.push(pt);
    const ptStarted = Date.now();
    const passthroughRate = await drainRate(ptObs, drainN, 120_000);
    const ptStats = procStats(pt.proc.pid!);
    await ptObs.drained(10_000);
    say(`pass-through: ${Math.round(passthroughRate ?? 0)} events/s (${drainN} events drained; cpu ${ptStats ? ((ptStats.cpuSeconds / ((Date.now() - ptStarted) / 1000)) * 100).toFixed(0) : '?'} % incl. start-up)`);
    const passthrough: Target = { name: 'pass-through', pid: pt.proc.pid!, observer: ptObs, traffic: world.traffic(codec, { seed: 202, eventIdPrefix: 'bench-pt' }), topics: topicsOf(ptEnv) };
    say('pass-through: warm-up');
    await step(passthrough, 200, 3);
    say(`pass-through: the processor's offered loads (${STEP_S} s per step)`);
    const ptSteps: Step[] = [];
    for (const s of steps) ptSteps.push(await step(passthrough, s.offered, STEP_S));
    say(`pass-through: latency at ${halfRate}/s (the processor's half load)`);
    const ptHalf = await step(passthrough, halfRate, HALF_S);
    await ptObs.stop();
    await pt.stop();
    await producer.disconnect();

    // 3. Raw inference at the best batch size, with both stopped (same models and settings).
    say('inference ceiling: every model at batch 32, 128, 256...');
    const ceilings = args['no-ceiling'] ? {} : await inferenceCeiling(loadConfig({ env: { ...process.env, ...env } }), { ads: adCount });
    const inferenceEventsPerS = args['no-ceiling'] ? Number.NaN : eventsPerSecondCeiling(ceilings, perEvent);

    const floor = compareAtLoads([...steps, half], [...ptSteps, ptHalf]);
    const halfFloor = halfLoadFloor(half, ptHalf);
    const results = {
      machine,
      world: args.world,
      kafka_client: kafkaClientUsed,
      ads: adCount,
      cold_start: coldStart,
      restart: restartStart,
      step_seconds: STEP_S,
      max_events_per_s: maxEventsPerS,
      max_offered_sustainable: lo,
      first_unsustainable_offered: hi || null,
      passthrough_events_per_s: Math.round(passthroughRate ?? 0),
      ratio_to_passthrough: passthroughRate ? round3(maxEventsPerS / passthroughRate) : null,
      processor_burst_drain_events_per_s: Math.round(burst ?? 0),
      burst_ratio_to_passthrough: passthroughRate && burst ? round3(burst / passthroughRate) : null,
      inference_ceiling_items_per_s: Math.round(inferenceEventsPerS),
      ratio_to_inference: round3(maxEventsPerS / inferenceEventsPerS),
      model_items_per_event: Object.fromEntries(Object.entries(perEvent).map(([k, v]) => [k, round3(v)])),
      pool_recall: poolRecall,
      model_ceilings: ceilings,
      half_load_offered_per_s: halfRate,
      half_load: half,
      p99_ms_at_half_load: half.p99_ms,
      p50_ms_at_half_load: half.p50_ms,
      passthrough_half_load: ptHalf,
      ...halfFloor,
      latency_vs_passthrough: floor,
      steps,
      passthrough_steps: ptSteps,
      dead_letters: deadLetters,
      seconds: Math.round((Date.now() - t0) / 1000),
    };
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, 'results.json'), JSON.stringify(results, null, 2) + '\n');
    writeFileSync(
      join(OUT, 'latency-vs-throughput.svg'),
      latencyChart(floorSeries(floor), {
        title: `Latency vs offered load: adstream and the Kafka pass-through (${kafkaClientUsed})`,
        xLabel: 'offered load (events/s)',
        yLabel: 'latency from scheduled send (ms, log scale)',
      }),
    );
    const sorted = [...steps, half].sort((a, b) => a.offered - b.offered);
    const ptSorted = [...ptSteps, ptHalf].sort((a, b) => a.offered - b.offered);
    const md = report(results, sorted, ptSorted, floor);
    writeFileSync(join(OUT, 'report.md'), md);
    say(md);
    console.log(JSON.stringify({
      kafka_client: results.kafka_client,
      max_events_per_s: results.max_events_per_s,
      passthrough_events_per_s: results.passthrough_events_per_s,
      ratio_to_passthrough: results.ratio_to_passthrough,
      inference_ceiling_items_per_s: results.inference_ceiling_items_per_s,
      ratio_to_inference: results.ratio_to_inference,
      half_load_offered_per_s: results.half_load_offered_per_s,
      p99_ms_at_half_load: results.p99_ms_at_half_load,
      p50_ms_at_half_load: results.p50_ms_at_half_load,
      passthrough_p50_ms_at_half_load: results.passthrough_p50_ms_at_half_load,
      passthrough_p99_ms_at_half_load: results.passthrough_p99_ms_at_half_load,
      p50_ratio_at_half_load: results.p50_ratio_at_half_load,
      p99_ratio_at_half_load: results.p99_ratio_at_half_load,
      processor_burst_drain_events_per_s: results.processor_burst_drain_events_per_s,
      ads: results.ads,
      pool_recall_mean: results.pool_recall?.mean ?? null,
      ready_s: coldStart.ready_s,
      rss_mb_at_ready: coldStart.rss_mb_at_ready,
      restart_ready_s: restartStart?.ready_s ?? null,
      restart_rss_mb_at_ready: restartStart?.rss_mb_at_ready ?? null,
      machine,
      seconds: results.seconds,
    }));
  } finally {
    for (const p of spawnedProcs) await p.stop(5000).catch(() => undefined);
    await broker?.stop();
  }
}

/** A start of the processor: time to ready (catalog loaded, index built or loaded), RSS then, and its catalog and index log lines. */
interface StartFigures {
  ready_s: number;
  rss_mb_at_ready: number;
  log: Record<string, unknown>[];
}

/** The processor's log records about the catalog load and the ad index (JSON lines). */
function startLog(output: string): Record<string, unknown>[] {
  return output.split('\n').flatMap((line) => {
    if (!line.includes('"ad catalog loaded"') && !line.includes('"ad index ')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

const num = (x: number): string => (Number.isFinite(x) ? String(x) : '-');

function stepTable(steps: readonly Step[]): string[] {
  return [
    '| Offered/s | Achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | Backlog at end | Lag (metrics) | CPU % | RSS MB | Sustainable |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...steps.map((s) => `| ${s.offered} | ${s.achieved_events_per_s} | ${num(s.p50_ms)} | ${num(s.p90_ms)} | ${num(s.p99_ms)} | ${num(s.p999_ms)} | ${num(s.max_ms)} | ${s.backlog_at_end} | ${num(s.consumer_lag_records)} | ${num(s.cpu_percent)} | ${s.rss_mb} | ${s.sustainable ? 'yes' : 'no'} |`),
  ];
}

type Results = Record<string, unknown> & { kafka_client: string; half_load: Step; passthrough_half_load: Step; p50_ratio_at_half_load: number | null; p99_ratio_at_half_load: number | null };

function report(r: Results, sorted: readonly Step[], ptSorted: readonly Step[], floor: readonly FloorRow[]): string {
  const h = r.half_load;
  const f = r.passthrough_half_load;
  const lines = [
    '# adstream benchmark',
    '',
    `Machine: ${r.machine}. World: \`${r.world}\`. Kafka client (processor and pass-through): ${r.kafka_client}. Open-loop steps of ${r.step_seconds} s; latency from each event's scheduled send time to its scored output at an independent consumer.`,
    '',
    '| Figure | Value |',
    '| --- | --- |',
    `| Max sustainable throughput (processor) | ${r.max_events_per_s} events/s (offered ${r.max_offered_sustainable}/s; ${r.first_unsustainable_offered ?? '-'}/s was not sustainable) |`,
    `| Kafka pass-through ceiling (drain) | ${r.passthrough_events_per_s} events/s; processor at ${r.ratio_to_passthrough} of it |`,
    `| Processor drain rate on a burst (same method as the pass-through) | ${r.processor_burst_drain_events_per_s} events/s; ${r.burst_ratio_to_passthrough} of the pass-through |`,
    `| Raw inference ceiling (best batch, per event's model work) | ${r.inference_ceiling_items_per_s} events/s; processor at ${r.ratio_to_inference} of it |`,
    `| Latency at half load (${h.offered}/s), processor | p50 ${h.p50_ms} ms, p90 ${h.p90_ms} ms, p99 ${h.p99_ms} ms, p99.9 ${h.p999_ms} ms, max ${h.max_ms} ms |`,
    `| Latency at half load (${f.offered}/s), pass-through | p50 ${f.p50_ms} ms, p90 ${f.p90_ms} ms, p99 ${f.p99_ms} ms, p99.9 ${f.p999_ms} ms, max ${f.max_ms} ms |`,
    `| Processor / pass-through at half load | p50 ${r.p50_ratio_at_half_load ?? '-'}, p99 ${r.p99_ratio_at_half_load ?? '-'} |`,
    `| Model items per event (at half load) | ${Object.entries(r.model_items_per_event as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', ')} |`,
    '',
    '![latency vs offered load](latency-vs-throughput.svg)',
    '',
    '## Latency against the Kafka floor (same offered load)',
    '',
    ...floorTable(floor, r.kafka_client),
    '',
    '## Processor steps',
    '',
    ...stepTable(sorted),
    '',
    '## Pass-through steps',
    '',
    ...stepTable(ptSorted),
    '',
    '| Model | Best batch | items/s | by batch |',
    '| --- | --- | --- | --- |',
    ...Object.entries(r.model_ceilings as Record<string, { bestBatch: number; itemsPerS: number; byBatch: Record<string, number> }>).map(([m, c]) => `| ${m} | ${c.bestBatch} | ${c.itemsPerS} | ${Object.entries(c.byBatch).map(([b, v]) => `${b}: ${v}`).join(', ')} |`),
    '',
  ];
  return lines.join('\n');
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

await main();

/** Major GC time and pauses over 100 ms between two scrapes of the processor's /metrics (NaN without them). */
function gcInStep(m0: string | undefined, m1: string | undefined): { majorMs: number; over100ms: number } {
  if (m0 === undefined || m1 === undefined) return { majorMs: Number.NaN, over100ms: Number.NaN };
  const name = 'adstream_nodejs_gc_duration_seconds';
  const delta = (suffix: string, labels: (l: string) => boolean): number => metricSum(m1, name + suffix, labels) - metricSum(m0, name + suffix, labels);
  const majorMs = Math.round(delta('_sum', (l) => l.includes('kind="major"')) * 1000);
  const over100ms = delta('_count', () => true) - delta('_bucket', (l) => l.includes('le="0.1"'));
  return { majorMs: majorMs || 0, over100ms: over100ms || 0 };
}
