/**
 * The operability files against the real thing: a real Prometheus (Debian's package) scrapes the
 * processor running in-process on a real broker every second while synthetic traffic flows, with
 * deploy/prometheus/rules.yml loaded; then every Grafana dashboard query and recording rule is run
 * through Prometheus's HTTP API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaProducer, OutboundRecord } from '../../src/adapters/kafka/port.js';
import { syntheticAds, syntheticUsers } from '../../src/devtools/synthetic.js';
import { encodeAd, TrafficFactory } from '../../src/devtools/traffic.js';
import { startHttpServer } from '../../src/adapters/http/server.js';
import { createLogger } from '../../src/util/log.js';
import { ProcessorMetrics } from '../../src/metrics/processor-metrics.js';
import { startKafkaProcessor, type RunningProcessor } from '../../src/app/processor.js';
import { codec, configOf, connectedProducer, createTopics, eventually, isolatedEnv, kafkaForTests, sleep } from '../support/harness.js';
import { DEPLOY, dashboardTargets, runnableExpr, sampleValues, startPrometheus, type PromQueryResponse, type RunningPrometheus } from '../support/prometheus.js';

const TRAFFIC_SECONDS = 20;
const RATE = 300; // events/s
const CORRUPT_SHARE = 0.01; // dead letters, so the dead-letter panels have data
const TICK_MS = 50;


interface RulesResponse {
  status: string;
  data: { groups: { name: string; rules: { type: 'recording' | 'alerting'; name: string; query: string; health: string; lastError?: string }[] }[] };
}

describe('Prometheus scraping the processor: dashboard queries and recording rules', () => {
  const env = isolatedEnv();
  const config = configOf(env);
  const kafka = kafkaForTests();
  const metrics = new ProcessorMetrics({ version: 'it' });
  let producer: KafkaProducer | undefined;
  let processor: RunningProcessor | undefined;
  let http: Awaited<ReturnType<typeof startHttpServer>> | undefined;
  let prom: RunningPrometheus | undefined;
  let sent = 0;

  beforeAll(async () => {
    producer = await connectedProducer(kafka);
    await createTopics(kafka, config);
    const ads = await syntheticAds(4);
    await producer.send([{ topic: config.topicAds, records: ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now()) })) }]);

    // /metrics first, so Prometheus starts while the processor loads the catalog and joins its group.
    http = await startHttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, isReady: () => processor?.isReady() ?? false });
    // Each is kept as soon as it is up, so afterAll stops it even if the other one fails to start.
    await Promise.all([
      startKafkaProcessor(config, createLogger('warn'), { metrics }).then((p) => (processor = p)),
      startPrometheus({ targets: [`127.0.0.1:${http.port}`], ruleFiles: [DEPLOY.rules], jobName: 'adstream', scrapeIntervalS: 1, evaluationIntervalS: 1 }).then((p) => (prom = p)),
    ]);

    // Open loop, as the demo drives it: each tick sends what the schedule says is due.
    const users = syntheticUsers(200);
    const traffic = await TrafficFactory.create(codec, users, { imagesPerCategory: 2 });
    const topicOf = { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews } as const;
    const total = RATE * TRAFFIC_SECONDS;
    const start = Date.now();
    const inFlight: Promise<unknown>[] = [];
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * RATE));
      const byTopic = new Map<string, OutboundRecord[]>();
      for (; sent < due; sent++) {
        let topic: string;
        let m: OutboundRecord;
        if (Math.random() < CORRUPT_SHARE) {
          topic = config.topicClicks;
          m = { key: Buffer.from(users[sent % users.length]!.userId), value: Buffer.from(`not avro ${sent}`) };
        } else {
          const e = traffic.next(Date.now());
          topic = topicOf[e.role];
          m = { key: e.key, value: e.value };
        }
        byTopic.set(topic, [...(byTopic.get(topic) ?? []), m]);
      }
      if (byTopic.size > 0) inFlight.push(producer.send([...byTopic].map(([t, records]) => ({ topic: t, records }))));
      await sleep(TICK_MS);
    }
    await Promise.all(inFlight);
    // Two more scrapes and rule evaluations after the last records were handled.
    await eventually(() => metrics.scoredOut.get().then((v) => (v.values[0]?.value ?? 0) > 0), 10_000);
    await sleep(2_500);
  });

  afterAll(async () => {
    await prom?.stop();
    await http?.close();
    await processor?.stop();
    await producer?.disconnect();
  });

  const query = async (expr: string): Promise<PromQueryResponse> => prom!.query(expr);

  it('scrapes the processor', async () => {
    const up = await query('up{job="adstream"}');
    expect(sampleValues(up), prom!.output()).toEqual([1]);
    expect(sent).toBe(RATE * TRAFFIC_SECONDS);
  });

  // What these queries return is checked, not how fast the processor was: latency is the benchmark's (npm run bench).
  it("reads the end-to-end p99 with the dashboard's own query: a finite number of seconds, > 0", async () => {
    const target = dashboardTargets().find((t) => t.panel === 'End-to-end latency' && t.legendFormat === 'p99');
    expect(target, 'the "End-to-end latency" panel has a p99 target').toBeDefined();
    const expr = runnableExpr(target!.expr);
    expect(expr).toBe('histogram_quantile(0.99, sum by (le) (rate(adstream_e2e_latency_seconds_bucket[1m])))');
    const r = await query(expr);
    expect(r.status, r.error).toBe('success');
    const values = sampleValues(r);
    expect(values).toHaveLength(1);
    const p99 = values[0]!;
    expect(Number.isFinite(p99), `p99 = ${p99}`).toBe(true);
    expect(p99).toBeGreaterThan(0);
  });

  it('runs every dashboard query; those over metrics fed by healthy traffic return data', async () => {
    const targets = dashboardTargets();
    expect(targets.length).toBeGreaterThan(20);
    const problems = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const t of targets) {
        const expr = runnableExpr(t.expr);
        const r = await query(expr);
        const where = `${t.panel} / ${t.refId} (${t.legendFormat}): ${expr}`;
        if (r.status !== 'success' || r.error) out.push(`${where}: ${r.errorType ?? r.status} ${r.error ?? ''}`);
        else if (!(Array.isArray(r.data?.result) && r.data.result.length > 0)) out.push(`${where}: no series`);
      }
      return out;
    };
    let last: string[] = [];
    await eventually(async () => (last = await problems()).length === 0, 10_000, 1_000);
    expect(last).toEqual([]);
  });

  it('loads every rule of rules.yml healthy, and the recording rules over fed metrics produce data', async () => {
    const rules = await prom!.api<RulesResponse>('/api/v1/rules');
    expect(rules.status).toBe('success');
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThan(10);
    expect(all.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);

    const recording = all.filter((r) => r.type === 'recording');
    expect(recording.map((r) => r.name)).toContain('adstream:e2e_latency_seconds:p99_5m');
    const empty: string[] = [];
    for (const r of recording) {
      const res = await query(r.name);
      if (sampleValues(res).length === 0) empty.push(r.name);
    }
    expect(empty).toEqual([]);

    const p99 = sampleValues(await query('adstream:e2e_latency_seconds:p99_5m'));
    expect(p99).toHaveLength(1);
    expect(Number.isFinite(p99[0]), `p99 = ${p99[0]}`).toBe(true);
    expect(p99[0]).toBeGreaterThan(0);
    const ratio = sampleValues(await query('adstream:dead_letters:ratio_rate5m'));
    expect(ratio).toHaveLength(1);
    expect(ratio[0]).toBeGreaterThan(0);
    expect(ratio[0]).toBeLessThan(0.05);
  });
});
