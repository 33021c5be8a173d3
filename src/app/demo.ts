import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config/load-config.js';
import { startKafkaProcessor } from './processor.js';
import { startHttpServer } from '../adapters/http/server.js';
import { kafkaClientFactory } from '../adapters/kafka/client.js';
import type { KafkaProducer, OutboundRecord } from '../adapters/kafka/port.js';
import { boundedProducerOf } from '../adapters/kafka/produce-limits.js';
import { ensureTopics } from '../adapters/kafka/topics.js';
import type { Logger } from '../util/log.js';
import { codecFor } from '../adapters/registry/registry-codec.js';
import { startLocalBroker, type LocalBroker } from '../devtools/local-broker.js';
import { startLocalRegistry, type LocalRegistry } from '../devtools/local-registry.js';
import { OutputObserver } from '../devtools/output-observer.js';
import { syntheticAds, syntheticUsers } from '../devtools/synthetic.js';
import { encodeAd, TrafficFactory } from '../devtools/traffic.js';

export interface DemoOptions {
  readonly seconds: number;
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
  events_per_s: number;
  broker_start_ms: number | null;
  /** The local schema registry's start (launch to first answer), when the demo started one. */
  registry_start_ms: number | null;
  seconds: number;
  offered_rate: number;
}

const TICK_MS = 10;

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
  let processor: Awaited<ReturnType<typeof startKafkaProcessor>> | undefined;
  let http: Awaited<ReturnType<typeof startHttpServer>> | undefined;
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

    processor = await startKafkaProcessor(config, o.logger);
    http = await startHttpServer({ host: config.httpHost, port: 0, registry: processor.metrics.registry, isReady: processor.isReady, readyDetail: processor.readyDetail, views: processor.views, token: config.httpToken });
    o.say(`processor running; metrics at http://${config.httpHost}:${http.port}/metrics`);
    await observer.start();

    const users = syntheticUsers(o.users);
    const traffic = await TrafficFactory.create(codec, users);
    const topicOf = { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews } as const;
    o.say(`driving ${o.rate} events/s for ${o.seconds} s from ${users.length} users...`);

    // Open loop: each tick sends what the schedule says is due, whether or not earlier sends finished.
    const start = Date.now();
    const total = Math.round(o.rate * o.seconds);
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
      await sleep(TICK_MS);
    }
    await Promise.all(inFlight);
    const sendSeconds = (Date.now() - start) / 1000;
    o.say(`sent ${sent} records in ${sendSeconds.toFixed(1)} s; waiting for the processor to drain...`);
    await observer.waitForAll(30_000);
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
      events_per_s: round(stats.accountedEvents / drainedSeconds),
      broker_start_ms: brokerStartMs,
      registry_start_ms: registry?.startMs ?? null,
      seconds: o.seconds,
      offered_rate: o.rate,
    };
    o.say('');
    o.say(`events in         ${result.events_in}`);
    o.say(`scored outputs    ${result.scored_out} (one per user per processed chunk, covering ${stats.accountedEvents} events)`);
    o.say(`dead letters      ${result.dead_letters} (${Object.entries(stats.reasons).map(([r, n]) => `${r}: ${n}`).join(', ') || 'none'})`);
    o.say(`unaccounted       ${result.unaccounted}`);
    o.say(`end-to-end        p50 ${result.e2e_p50_ms} ms, p99 ${result.e2e_p99_ms} ms, max ${result.e2e_max_ms} ms (event sent -> scored output received)`);
    o.say(`throughput        ${result.events_per_s} events/s accounted for`);
    o.say(`stage means       ${await stageMeans(processor)}`);
    const sample = stats.sample;
    if (sample) o.say(`sample output     ${sample.userId}: ${sample.candidates.slice(0, 5).map((c) => `${c.adId} (${c.score.toFixed(3)})`).join(', ')}`);
    if (sample) o.say(`model version     ${sample.modelVersion}`);
    return result;
  } finally {
    await observer.stop().catch(() => undefined);
    await http?.close();
    await processor?.stop();
    await producer?.disconnect().catch(() => undefined);
    await broker?.stop();
    await registry?.stop();
    if (ownStateDir) rmSync(ownStateDir, { recursive: true, force: true });
  }
}

/** Mean time per chunk in each stage, read back from the processor's own histograms. */
async function stageMeans(p: { metrics: { stageDuration: { get(): Promise<{ values: { labels: Record<string, string | number>; value: number; metricName?: string }[] }> } } }): Promise<string> {
  const { values } = await p.metrics.stageDuration.get();
  const sums = new Map<string, { sum: number; count: number }>();
  for (const v of values) {
    const stage = String(v.labels.stage);
    const acc = sums.get(stage) ?? { sum: 0, count: 0 };
    if (v.metricName?.endsWith('_sum')) acc.sum = v.value;
    if (v.metricName?.endsWith('_count')) acc.count = v.value;
    sums.set(stage, acc);
  }
  return [...sums].map(([stage, { sum, count }]) => `${stage} ${count ? ((sum / count) * 1000).toFixed(2) : '-'} ms`).join(', ');
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
