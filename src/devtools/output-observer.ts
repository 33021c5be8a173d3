import { randomUUID } from 'node:crypto';
import type { GroupConsumer, KafkaClient } from '../adapters/kafka/port.js';
import type { ScoredOutput } from '../domain/outputs.js';
import type { AvroCodec } from '../serde/avro-codec.js';
import { Accepts } from '../serde/record-names.js';

const SCORED = Accepts.scored;
const DEAD = Accepts.deadLetter;

interface DeadLetterRecord {
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: number;
  reason: string;
}

/**
 * An independent consumer of the output topics, as an ad server would be: it accounts every sent
 * event (first seen in a scored output's lineage, or as a dead letter) and measures end-to-end
 * latency from the event's send time to the output's arrival.
 */
export class OutputObserver {
  private consumer: GroupConsumer | undefined;
  private readonly sentAt = new Map<string, number>();
  private readonly seen = new Set<string>();
  private readonly deadSeen = new Set<string>();
  private expectedCorrupt = 0;
  private accountedEvents = 0;
  private latencies = new Float64Array(1 << 14);
  private nLatencies = 0;
  /** Events sent before this time are the warm-up: accounted for, their latencies kept apart. */
  private measuredFrom = Number.NEGATIVE_INFINITY;
  private readonly warmUp: number[] = [];
  scoredRecords = 0;
  duplicateEvents = 0;
  readonly reasons: Record<string, number> = {};
  sample: ScoredOutput | undefined;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly kafka: KafkaClient,
    private readonly codec: AvroCodec,
    private readonly topics: { readonly scored: string; readonly deadLetters: string },
  ) {}

  expectEvent(eventId: string, sentAt: number): void {
    this.sentAt.set(eventId, sentAt);
  }

  /** Latencies of events sent from `sentAt` on are the measured ones; those before, the warm-up's. */
  measureFrom(sentAt: number): void {
    this.measuredFrom = sentAt;
  }

  expectCorrupt(): void {
    this.expectedCorrupt++;
  }

  /**
   * Resolves once the observer's group has given it its partitions, so that what it measures from
   * then on is the output's latency, not the time its own group took to form.
   */
  async start(): Promise<void> {
    let assigned!: () => void;
    const isAssigned = new Promise<void>((resolve) => (assigned = resolve));
    // A group of its own that commits nothing: it reads everything, as a fresh ad server would.
    this.consumer = await this.kafka.groupConsumer({
      groupId: `adstream-observer-${randomUUID()}`,
      topics: [this.topics.scored, this.topics.deadLetters],
      commits: 'none',
      events: { assigned: (a) => Object.values(a).some((ps) => ps.length > 0) && assigned() },
    });
    await this.consumer.run(async (fetched) => {
      const now = Date.now();
      for (const m of fetched.records) {
        if (fetched.topic === this.topics.scored) this.onScored(this.codec.decode<ScoredOutput>(m.value, SCORED).value, now);
        else this.onDead(this.codec.decode<DeadLetterRecord>(m.value, DEAD).value);
      }
      if (this.done()) for (const w of this.waiters.splice(0)) w();
    });
    await isAssigned;
  }

  private onScored(o: ScoredOutput, now: number): void {
    this.scoredRecords++;
    if (o.candidates.length > 0) this.sample = o;
    for (const id of o.eventIds) {
      if (this.seen.has(id)) {
        this.duplicateEvents++;
        continue;
      }
      this.seen.add(id);
      const t = this.sentAt.get(id);
      if (t !== undefined) {
        this.accountedEvents++;
        if (t >= this.measuredFrom) this.addLatency(now - t);
        else this.warmUp.push(now - t);
      }
    }
  }

  private onDead(d: DeadLetterRecord): void {
    const k = `${d.sourceTopic}/${d.sourcePartition}/${d.sourceOffset}`;
    if (this.deadSeen.has(k)) return;
    this.deadSeen.add(k);
    this.reasons[d.reason] = (this.reasons[d.reason] ?? 0) + 1;
  }

  private addLatency(ms: number): void {
    if (this.nLatencies === this.latencies.length) {
      const grown = new Float64Array(this.latencies.length * 2);
      grown.set(this.latencies);
      this.latencies = grown;
    }
    this.latencies[this.nLatencies++] = ms;
  }

  private done(): boolean {
    return this.accountedEvents === this.sentAt.size && this.deadSeen.size >= this.expectedCorrupt;
  }

  /** Resolves when every expected event is accounted for, or after timeoutMs. */
  async waitForAll(timeoutMs: number): Promise<boolean> {
    if (this.done()) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  stats(): { scoredRecords: number; deadLetters: number; accountedEvents: number; unaccounted: number; duplicateEvents: number; reasons: Record<string, number>; sample: ScoredOutput | undefined; percentile(q: number): number; warmUpPercentile(q: number): number } {
    const sorted = this.latencies.slice(0, this.nLatencies).sort();
    const warm = Float64Array.from(this.warmUp).sort();
    const accountedEvents = this.accountedEvents;
    return {
      scoredRecords: this.scoredRecords,
      deadLetters: this.deadSeen.size,
      accountedEvents,
      unaccounted: this.sentAt.size - accountedEvents + Math.max(0, this.expectedCorrupt - this.deadSeen.size),
      duplicateEvents: this.duplicateEvents,
      reasons: { ...this.reasons },
      sample: this.sample,
      percentile: (q) => nearestRank(sorted, q),
      warmUpPercentile: (q) => nearestRank(warm, q),
    };
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

function nearestRank(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
