import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from './config/load-config.js';
import { kafkaClientFactory } from '../adapters/kafka/client.js';
import type { KafkaProducer, OutboundRecord } from '../adapters/kafka/port.js';
import { boundedProducerOf } from '../adapters/kafka/produce-limits.js';
import { ensureTopics } from '../adapters/kafka/topics.js';
import type { Logger } from '../util/log.js';
import { codecFor } from '../adapters/registry/registry-codec.js';
import { startLocalBroker, type LocalBroker } from '../devtools/local-broker.js';
import { startLocalRegistry, type LocalRegistry } from '../devtools/local-registry.js';
import { spawnNode, type Spawned } from '../devtools/node-process.js';
import { OutputObserver } from '../devtools/output-observer.js';
import { syntheticAds, syntheticUsers } from '../devtools/synthetic.js';
import { encodeAd, TrafficFactory } from '../devtools/traffic.js';

export interface DemoOptions {
  readonly seconds: number;
  /**
   * Seconds of traffic before the measured ones, at the same rate: every event is still accounted
   * for, but its latency is reported apart (a cold processor takes 70-200 ms a chunk for its first
   * two seconds, 5-40 ms after; a fresh broker's JVM warms up too).
   */
  readonly warmupSeconds: number;
  /** Offered load, events per second, on a fixed schedule (open loop). */
  readonly rate: number;
  readonly users: number;
  /** Share of records sent as garbage, to show the dead-letter path. */
  readonly corruptShare: number;
  /** Schemas from a schema registry: a local one unless SCHEMA_REGISTRY_URL is set. */
  readonly registry?: boolean;
  readonly logger: Logger;
  /** Where the human-readable summary goes; the JSON line goes to stdout last. */
  readonly say: (line: string) => void;
  /** packs: the pretrained model packs (fetched first with `adstream models fetch`) instead of the default encoders. */
  readonly models?: 'default' | 'packs';
}

/** What `--models packs` runs: every image and text pack. */
export const DEMO_PACKS = 'efficientnet-lite0,use-multilingual';

export interface DemoResult {
  events_in: number;
  scored_out: number;
  dead_letters: number;
  unaccounted: number;
  e2e_p50_ms: number;
  e2e_p99_ms: number;
  e2e_max_ms: number;
  /** The warm-up's events, sent before the measured ones. */
  warmup_p50_ms: number;
  warmup_p99_ms: number;
  events_per_s: number;
  broker_start_ms: number | null;
  /** The local schema registry's start (launch to first answer), when the demo started one. */
  registry_start_ms: number | null;
  seconds: number;
  warmup_seconds: number;
  offered_rate: number;
}

const TICK_MS = 10;
const READY_TIMEOUT_MS = 120_000;
// The built CLI beside this file (the demo runs from dist/).
const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

/**
 * The main job in one command: a broker (local unless KAFKA_BROKERS is set), the topics, a synthetic
 * ad catalog, the processor, and synthetic click/image/review traffic, observed by an independent
 * consumer of the output topics.
 */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  let broker: LocalBroker | undefined;
  let brokerStartMs: number | null = null;
  const env = { ...process.env };
  if (!env.KAFKA_BROKERS) {
    o.say('starting a local Apache Kafka broker (KAFKA_BROKERS is not set)...');
    const t0 = Date.now();
    broker = await startLocalBroker({ log: (m) => o.logger.debug(m) });
    brokerStartMs = Date.now() - t0;
    env.KAFKA_BROKERS = broker.bootstrap;
    o.say(`broker ready at ${broker.bootstrap} in ${brokerStartMs} ms`);
  }
  let registry: LocalRegistry | undefined;
  if (o.registry && !env.SCHEMA_REGISTRY_URL) {
    o.say('starting a local schema registry (Apicurio, SCHEMA_REGISTRY_URL is not set)...');
    registry = await startLocalRegistry({ log: (m) => o.logger.debug(m) });
    env.SCHEMA_REGISTRY_URL = registry.url;
    o.say(`schema registry ready at ${registry.url} in ${registry.startMs} ms`);
  }
  // A fresh consumer group per run, so a demo against a shared cluster starts clean.
  env.GROUP_ID ??= `adstream-demo-${randomUUID().slice(0, 8)}`;
  // And a local state store of its own, gone after the run (unless STATE_DIR says where to keep it).
  const ownStateDir = env.STATE_DIR ? undefined : mkdtempSync(join(tmpdir(), 'adstream-demo-state-'));
  if (ownStateDir) env.STATE_DIR = ownStateDir;
  if (o.models === 'packs') env.MODEL_PACKS ??= DEMO_PACKS;
  const config = loadConfig({ env });
  // With a registry, the demo's producer writes with the ids it assigns (registering is idempotent:
  // the processor gets the same ones).
  const codec = await codecFor(config);
  if (codec.registered) o.say(`schemas registered at ${config.schemaRegistryUrl} (subjects by ${config.schemaRegistrySubjectStrategy} name)`);
  const kafka = kafkaClientFactory(config.kafkaClient)({ brokers: config.kafkaBrokers!, clientId: 'adstream-demo', logger: o.logger });
  let producer: KafkaProducer | undefined;
  let processor: Spawned | undefined;
  const observer = new OutputObserver(kafka, codec, { scored: config.topicScored, deadLetters: config.topicDeadLetters });
  try {
    const admin = await kafka.admin();
    try {
      await ensureTopics(admin, config, o.logger);
    } finally {
      await admin.disconnect();
    }
    // A tick that fell behind sends many events at once (images inline): split to the topics' limits.
    producer = await boundedProducerOf(kafka, [config.topicAds, config.topicClicks, config.topicImageViews, config.topicReviews]);

    const ads = await syntheticAds(25);
    const now = Date.now();
    await producer.send([{ topic: config.topicAds, records: ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, now) })) }]);
    o.say(`ad catalog: ${ads.length} ads in ${new Set(ads.map((a) => a.categoryId)).size} categories produced to ${config.topicAds}`);

    // The processor as operators run it, a process of its own: the demo's traffic and observer
    // then take none of its event loop.
    processor = await spawnNode([CLI, 'run'], definedOnly(env), { outputChars: 20_000, readyTimeoutMs: READY_TIMEOUT_MS });
    await observer.start();
    // Traffic starts once the processor holds its partitions (group formed, state restored, index
    // built): what the demo reports is then the pipeline's latency, not the group's forming.
    await processor.waitReady();
    const metricsUrl = `http://127.0.0.1:${processor.port}/metrics`;
    o.say(`processor running (pid ${processor.proc.pid}); metrics at ${metricsUrl}`);
    const exitedEarly = processor.exited.then((code) => {
      throw new Error(`the processor exited with ${code} during the demo:\n${processor?.output()}`);
    });
    exitedEarly.catch(() => undefined);

    const users = syntheticUsers(o.users);
    const traffic = await TrafficFactory.create(codec, users);
    const topicOf = { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews } as const;
    o.say(`driving ${o.rate} events/s for ${o.warmupSeconds} s of warm-up, then ${o.seconds} s measured, from ${users.length} users...`);

    // Open loop: each tick sends what the schedule says is due, whether or not earlier sends finished.
    const start = Date.now();
    observer.measureFrom(start + o.warmupSeconds * 1000);
    const total = Math.round(o.rate * (o.warmupSeconds + o.seconds));
    let sent = 0;
    const inFlight = new Set<Promise<unknown>>();
    let sendError: unknown;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * o.rate));
      if (due > sent) {
        const byTopic = new Map<string, OutboundRecord[]>();
        for (; sent < due; sent++) {
          const t = Date.now();
          if (Math.random() < o.corruptShare) {
            const key = `user-${sent % o.users}`;
            observer.expectCorrupt();
            push(byTopic, config.topicClicks, { key: Buffer.from(key), value: Buffer.from(`not avro ${sent}`) });
            continue;
          }
          const e = traffic.next(t);
          observer.expectEvent(e.eventId, t);
          push(byTopic, topicOf[e.role], { key: e.key, value: e.value });
        }
        const p = producer.send([...byTopic].map(([topic, records]) => ({ topic, records })));
        inFlight.add(p);
        p.then(() => inFlight.delete(p), (err: unknown) => (sendError = err));
      }
      if (sendError) throw sendError;
      await Promise.race([sleep(TICK_MS), exitedEarly]);
    }
    await Promise.all(inFlight);
    const sendSeconds = (Date.now() - start) / 1000;
    o.say(`sent ${sent} records in ${sendSeconds.toFixed(1)} s; waiting for the processor to drain...`);
    await Promise.race([observer.waitForAll(30_000), exitedEarly]);
    const drainedSeconds = (Date.now() - start) / 1000;

    const stats = observer.stats();
    const result: DemoResult = {
      events_in: sent,
      scored_out: stats.scoredRecords,
      dead_letters: stats.deadLetters,
      unaccounted: stats.unaccounted,
      e2e_p50_ms: round(stats.percentile(0.5)),
      e2e_p99_ms: round(stats.percentile(0.99)),
      e2e_max_ms: round(stats.percentile(1)),
      warmup_p50_ms: round(stats.warmUpPercentile(0.5)),
      warmup_p99_ms: round(stats.warmUpPercentile(0.99)),
      events_per_s: round(stats.accountedEvents / drainedSeconds),
      broker_start_ms: brokerStartMs,
      registry_start_ms: registry?.startMs ?? null,
      seconds: o.seconds,
      warmup_seconds: o.warmupSeconds,
      offered_rate: o.rate,
    };
    o.say('');
    o.say(`events in         ${result.events_in}`);
    o.say(`scored outputs    ${result.scored_out} (one per user per processed chunk, covering ${stats.accountedEvents} events)`);
    o.say(`dead letters      ${result.dead_letters} (${Object.entries(stats.reasons).map(([r, n]) => `${r}: ${n}`).join(', ') || 'none'})`);
    o.say(`unaccounted       ${result.unaccounted}`);
    o.say(`end-to-end        p50 ${result.e2e_p50_ms} ms, p99 ${result.e2e_p99_ms} ms, max ${result.e2e_max_ms} ms (event sent -> scored output received, the ${o.seconds} s measured)`);
    if (o.warmupSeconds > 0) o.say(`warm-up           p50 ${result.warmup_p50_ms} ms, p99 ${result.warmup_p99_ms} ms (the first ${o.warmupSeconds} s after a cold start, reported apart)`);
    o.say(`throughput        ${result.events_per_s} events/s accounted for`);
    o.say(`stage means       ${await stageMeans(metricsUrl, config.httpToken ?? undefined)}`);
    const sample = stats.sample;
    if (sample) o.say(`sample output     ${sample.userId}: ${sample.candidates.slice(0, 5).map((c) => `${c.adId} (${c.score.toFixed(3)})`).join(', ')}`);
    if (sample) o.say(`model version     ${sample.modelVersion}`);
    return result;
  } finally {
    await observer.stop().catch(() => undefined);
    await processor?.stop();
    await producer?.disconnect().catch(() => undefined);
    await broker?.stop();
    await registry?.stop();
    if (ownStateDir) rmSync(ownStateDir, { recursive: true, force: true });
  }
}

/** Mean time per chunk in each stage, read back from the processor's own histograms on /metrics. */
async function stageMeans(metricsUrl: string, token: string | undefined): Promise<string> {
  const res = await fetch(metricsUrl, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  if (!res.ok) return `(metrics answered ${res.status})`;
  const sums = new Map<string, { sum: number; count: number }>();
  for (const m of (await res.text()).matchAll(/^adstream_stage_duration_seconds_(sum|count)\{stage="([^"]+)"\} (\S+)$/gm)) {
    const acc = sums.get(m[2]!) ?? { sum: 0, count: 0 };
    acc[m[1] as 'sum' | 'count'] = Number(m[3]);
    sums.set(m[2]!, acc);
  }
  return [...sums].map(([stage, { sum, count }]) => `${stage} ${count ? ((sum / count) * 1000).toFixed(2) : '-'} ms`).join(', ');
}

function definedOnly(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

function push(map: Map<string, OutboundRecord[]>, topic: string, m: OutboundRecord): void {
  const list = map.get(topic);
  if (list) list.push(m);
  else map.set(topic, [m]);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

