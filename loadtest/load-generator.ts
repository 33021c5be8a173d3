/**
 * Open-loop load generation and end-to-end measurement.
 *
 * The generator sends the world's events on a fixed schedule (event i is due at start + i / rate),
 * whatever the processor does: when it falls behind, events pile up in Kafka rather than the
 * generator slowing down, so there is no coordinated omission. Each event's latency is measured from
 * its SCHEDULED send time (not the time it was actually handed to the producer) to the arrival, at
 * an independent consumer of the scored topic, of the first output whose lineage (eventIds) holds it.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { GroupConsumer, KafkaClient, KafkaProducer, OutboundRecord } from '../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../src/domain/outputs.js';
import type { AvroCodec } from '../src/serde/avro-codec.js';
import { LogLinearHistogram } from './histogram.js';
import type { EventRole, WorldEvent, WorldTraffic } from './world.js';
import { Accepts } from '../src/serde/record-names.js';

/** Events per produce request at most (image events carry a few KB each). */
const MAX_SEND = 100;
const SCORED = Accepts.scored;
const DEAD = Accepts.deadLetter;

/** Independent consumer of the scored (and dead-letter) topics: accounts events and records their latency. */
export class ScoredObserver {
  private consumer: GroupConsumer | undefined;
  /** Event id -> scheduled send time (ms since epoch), until the event is seen in an output. */
  private readonly pending = new Map<string, number>();
  histogram = new LogLinearHistogram();
  accounted = 0;
  expected = 0;
  deadLetters = 0;
  duplicates = 0;
  scoredRecords = 0;

  constructor(
    private readonly kafka: KafkaClient,
    private readonly codec: AvroCodec,
    private readonly topics: { scored: string; deadLetters?: string },
  ) {}

  async start(): Promise<void> {
    // A group of its own, committing nothing; short fetch waits, so arrival times are not held back.
    this.consumer = await this.kafka.groupConsumer({
      groupId: `loadgen-observer-${randomUUID()}`,
      topics: [this.topics.scored, ...(this.topics.deadLetters ? [this.topics.deadLetters] : [])],
      commits: 'none',
      fetchMaxWaitMs: 50,
    });
    await this.consumer.run(async (fetched) => {
      const now = Date.now();
      if (fetched.topic === this.topics.scored) {
        for (const m of fetched.records) this.onScored(this.codec.decode<ScoredOutput>(m.value, SCORED).value, now);
      } else {
        for (const m of fetched.records) this.onDead(this.codec.decode<{ eventId?: string; originalValue: Buffer | null }>(m.value, DEAD).value);
      }
    });
  }

  expect(eventId: string, scheduledAt: number): void {
    this.pending.set(eventId, scheduledAt);
    this.expected++;
  }

  private onScored(o: ScoredOutput, now: number): void {
    this.scoredRecords++;
    for (const id of o.eventIds) {
      const t = this.pending.get(id);
      if (t === undefined) {
        this.duplicates++;
        continue;
      }
      this.pending.delete(id);
      this.accounted++;
      this.histogram.record(Math.max(0, now - t));
    }
  }

  private onDead(_d: unknown): void {
    this.deadLetters++;
  }

  /** Events sent and not yet seen in an output. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** Starts a fresh histogram (per load step); returns the previous one. */
  resetHistogram(): LogLinearHistogram {
    const h = this.histogram;
    this.histogram = new LogLinearHistogram();
    return h;
  }

  /** Waits until nothing is outstanding (true) or timeoutMs passes (false). */
  async drained(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

export interface EventTopics {
  readonly click: string;
  readonly image: string;
  readonly review: string;
}

export interface OpenLoopOptions {
  readonly producer: KafkaProducer;
  readonly traffic: WorldTraffic;
  readonly topics: EventTopics;
  readonly observer: ScoredObserver;
  /** Offered load, events per second. */
  readonly rate: number;
  readonly seconds: number;
  /** How often the schedule is checked (ms); everything due is sent then, in one batch. */
  readonly tickMs?: number;
  /** Called every sampleMs with what is outstanding (sent, not yet in an output). */
  readonly onSample?: (s: { t: number; sent: number; accounted: number; outstanding: number }) => void;
  readonly sampleMs?: number;
}

export interface OpenLoopResult {
  readonly scheduled: number;
  readonly sent: number;
  /** How far behind its schedule the generator ever was when it handed events over (ms). */
  readonly maxScheduleSlipMs: number;
  /** Events acknowledged by the broker at the end (sends are not awaited one by one). */
  readonly acked: number;
  readonly byRole: Record<EventRole, number>;
}

/** Sends rate x seconds events on a fixed schedule (open loop); resolves when all sends were acknowledged. */
export async function runOpenLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const tick = o.tickMs ?? 5;
  const total = Math.round(o.rate * o.seconds);
  const start = Date.now();
  let sent = 0;
  let acked = 0;
  let maxSlip = 0;
  let sendError: unknown;
  const inFlight = new Set<Promise<unknown>>();
  const byRole: Record<EventRole, number> = { click: 0, image: 0, review: 0 };
  const topicOf = { click: o.topics.click, image: o.topics.image, review: o.topics.review };
  let nextSample = start;
  while (sent < total) {
    const now = Date.now();
    const due = Math.min(total, Math.floor(((now - start) / 1000) * o.rate));
    // At most MAX_SEND events per produce request, so a late tick never builds an over-sized batch.
    for (let upTo = Math.min(due, sent + MAX_SEND); due > sent; upTo = Math.min(due, sent + MAX_SEND)) {
      const byTopic = new Map<string, OutboundRecord[]>();
      const n = upTo - sent;
      for (; sent < upTo; sent++) {
        const scheduledAt = start + (sent * 1000) / o.rate;
        const e: WorldEvent = o.traffic.next(Math.round(scheduledAt));
        o.observer.expect(e.eventId, scheduledAt);
        byRole[e.role]++;
        const topic = topicOf[e.role];
        const list = byTopic.get(topic);
        const m: OutboundRecord = { key: e.key, value: e.value };
        if (list) list.push(m);
        else byTopic.set(topic, [m]);
      }
      maxSlip = Math.max(maxSlip, now - (start + ((upTo - n) * 1000) / o.rate));
      const p = o.producer.send([...byTopic].map(([topic, records]) => ({ topic, records })));
      inFlight.add(p);
      p.then(
        () => {
          inFlight.delete(p);
          acked += n;
        },
        (err: unknown) => (sendError = err),
      );
    }
    if (sendError) throw sendError;
    if (o.onSample && now >= nextSample) {
      o.onSample({ t: now - start, sent, accounted: o.observer.accounted, outstanding: o.observer.outstanding });
      nextSample += o.sampleMs ?? 500;
    }
    await sleep(tick);
  }
  await Promise.all(inFlight);
  if (sendError) throw sendError;
  return { scheduled: total, sent, maxScheduleSlipMs: Math.round(maxSlip), acked, byRole };
}

/** Produces n events as fast as the producer takes them (a backlog for drain measurements). */
export async function preload(producer: KafkaProducer, traffic: WorldTraffic, topics: EventTopics, n: number, observer?: ScoredObserver, batch = 500): Promise<void> {
  const topicOf = { click: topics.click, image: topics.image, review: topics.review };
  const now = Date.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < n; i += batch) {
    const byTopic = new Map<string, OutboundRecord[]>();
    for (let j = i; j < Math.min(n, i + batch); j++) {
      const e = traffic.next(now);
      observer?.expect(e.eventId, now);
      const list = byTopic.get(topicOf[e.role]) ?? [];
      list.push({ key: e.key, value: e.value });
      byTopic.set(topicOf[e.role], list);
    }
    inFlight.push(producer.send([...byTopic].map(([topic, records]) => ({ topic, records }))));
    if (inFlight.length >= 8) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

/**
 * Drain throughput: events/s accounted between 5 % and 95 % of `total` (so start-up and the tail
 * do not count). Resolves when 95 % are accounted, or null after timeoutMs.
 */
export async function drainRate(observer: ScoredObserver, total: number, timeoutMs: number): Promise<number | null> {
  const lo = Math.ceil(total * 0.05);
  const hi = Math.floor(total * 0.95);
  const deadline = Date.now() + timeoutMs;
  let tLo: number | undefined;
  while (Date.now() < deadline) {
    const a = observer.accounted;
    if (tLo === undefined && a >= lo) tLo = performance.now();
    if (a >= hi && tLo !== undefined) return (hi - lo) / ((performance.now() - tLo) / 1000);
    await sleep(10);
  }
  return null;
}

/** CPU seconds (user + system) and resident memory of a process, from /proc (Linux). */
export function procStats(pid: number): { cpuSeconds: number; rssBytes: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces, in parentheses): utime is field 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { cpuSeconds: ticks / 100, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
  } catch {
    return null;
  }
}

/** Sum of a Prometheus series over its labels from a /metrics text (NaN if absent). */
export function metricSum(text: string, name: string, labelFilter?: (labels: string) => boolean): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const labels = rest[0] === '{' ? rest.slice(1, rest.indexOf('}')) : '';
    if (labelFilter && !labelFilter(labels)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) {
      sum += v;
      found = true;
    }
  }
  return found ? sum : Number.NaN;
}

export async function scrape(port: number): Promise<string> {
  return fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
