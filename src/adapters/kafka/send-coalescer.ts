import { ProduceTooLargeError, type Appended, type KafkaProducer, type OutboundRecord, type TopicRecords } from './port.js';

/** A caller's send waiting for the next request. */
interface Waiting {
  readonly batches: readonly TopicRecords[];
  readonly resolve: (a: Appended[]) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Group commit for a producer without a linger (kafkajs sends each call as its own request): a
 * send that comes while `maxInFlight` requests are out waits, and every send that waits goes out
 * together in the next request, once one returns. A lone send goes at once; under load the
 * partition tasks' sends share requests (one per acknowledgement round trip instead of one per
 * chunk), which costs the client and the broker a request's fixed work each time.
 *
 * Order: a caller's records keep their order, and sends that wait are merged in arrival order, so
 * every partition gets its records in the order they were sent. The inner producer (a
 * BoundedProducer) splits a merged send to keep to the size limits.
 *
 * Outcome per caller: a merged request that fails fails every caller in it (each retries its own
 * chunk); a refusal as too large fails only the callers with records among those not acknowledged,
 * each with its own. A caller gets per topic-partition the offset of its own first record where the
 * records name their partition (the sink's always do); else the request's first.
 */
export class SendCoalescer implements KafkaProducer {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(
    private readonly inner: KafkaProducer,
    private readonly maxInFlight = 1,
  ) {}

  send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    return new Promise<Appended[]>((resolve, reject) => {
      this.waiting.push({ batches, resolve, reject });
      this.pump();
    });
  }

  disconnect(): Promise<void> {
    return this.inner.disconnect();
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const group = this.waiting.splice(0);
      this.inFlight++;
      void this.sendGroup(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async sendGroup(group: readonly Waiting[]): Promise<void> {
    if (group.length === 1) {
      const w = group[0]!;
      await this.inner.send(w.batches).then(w.resolve, w.reject);
      return;
    }
    // Merged by topic, in arrival order; per caller, where its records start in each topic-partition's run.
    const byTopic = new Map<string, OutboundRecord[]>();
    const before = new Map<string, number>();
    const starts = group.map((w) => {
      const at = new Map<string, number>();
      for (const b of w.batches) {
        let list = byTopic.get(b.topic);
        if (!list) byTopic.set(b.topic, (list = []));
        for (const r of b.records) {
          list.push(r);
          if (r.partition === undefined) continue;
          const key = `${b.topic}\u0000${r.partition}`;
          if (!at.has(key)) at.set(key, before.get(key) ?? 0);
          before.set(key, (before.get(key) ?? 0) + 1);
        }
      }
      return at;
    });
    const merged: TopicRecords[] = [...byTopic].map(([topic, records]) => ({ topic, records }));
    let appended: Appended[];
    try {
      appended = await this.inner.send(merged);
    } catch (err) {
      this.failGroup(group, err);
      return;
    }
    group.forEach((w, i) => w.resolve(ownAppended(w.batches, appended, starts[i]!)));
  }

  private failGroup(group: readonly Waiting[], err: unknown): void {
    if (!(err instanceof ProduceTooLargeError)) {
      for (const w of group) w.reject(err);
      return;
    }
    const unsent = new Set(err.unsent.flatMap((b) => b.records));
    for (const w of group) {
      const own = w.batches.map((b) => ({ topic: b.topic, records: b.records.filter((r) => unsent.has(r)) })).filter((b) => b.records.length > 0);
      // Acknowledged whole: its offsets are unknown here, and no caller reads them after a refusal elsewhere.
      if (own.length === 0) w.resolve([]);
      else w.reject(new ProduceTooLargeError(err.message, own, { cause: err.cause ?? err }));
    }
  }
}

/** A caller's share of a merged request's offsets: per topic-partition it wrote, its first record's. */
function ownAppended(batches: readonly TopicRecords[], appended: readonly Appended[], starts: ReadonlyMap<string, number>): Appended[] {
  const topics = new Set(batches.map((b) => b.topic));
  const out: Appended[] = [];
  for (const a of appended) {
    if (!topics.has(a.topic)) continue;
    const at = starts.get(`${a.topic}\u0000${a.partition}`);
    if (at === undefined) {
      // Not one of its named partitions: the caller's records there (if any) were placed by the partitioner.
      if (batches.some((b) => b.topic === a.topic && b.records.some((r) => r.partition === undefined))) out.push(a);
      continue;
    }
    out.push(/^\d+$/.test(a.baseOffset) ? { ...a, baseOffset: String(BigInt(a.baseOffset) + BigInt(at)) } : a);
  }
  return out;
}
