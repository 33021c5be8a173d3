/**
 * How large a produce may be, and sends split to fit. The broker refuses a record batch larger than
 * its topic's `max.message.bytes` (default: the broker's `message.max.bytes`, 1 MB) and a request
 * larger than `socket.request.max.bytes`; a refused batch is refused on every retry. The limits are
 * read from the cluster at start (or PRODUCE_MAX_BYTES), and sizes are counted from above: each
 * record's Kafka framing at its widest, each batch's header, each request's entries, plus a margin.
 */
import { ConfigError, errorMessage } from '../../domain/errors.js';
import { ProduceTooLargeError, type Appended, type KafkaAdmin, type KafkaClient, type KafkaProducer, type OutboundRecord, type ProducerOptions, type TopicRecords } from './port.js';

/** A v2 record's framing besides key, value and headers, varints at their widest: length, attributes, timestamp and offset deltas, key and value lengths, header count. */
const RECORD_FRAMING = 5 + 1 + 10 + 5 + 5 + 5 + 5;
/** A header's key and value lengths. */
const HEADER_FRAMING = 5 + 5;
/** A v2 record batch's header, with the base offset and length: the broker counts them against max.message.bytes. */
const BATCH_HEADER = 61;
/** A partition's entry in a produce request: its index and the records' size. */
const PARTITION_ENTRY = 8;
/** A topic's entry: the name's length and the partition count (the name's bytes come on top). */
const TOPIC_ENTRY = 6;
/** A request's size, header (client id up to 200 bytes), transactional id, acks, timeout and topic count. */
const REQUEST_HEADER = 256;
/** Kept free under every limit, for framing a client might add that the counts above miss. */
const SAFETY_MARGIN = 1024;

/** Kafka's defaults, used when a broker does not report its value. */
const DEFAULT_MESSAGE_MAX_BYTES = 1048588;
const DEFAULT_SOCKET_REQUEST_MAX_BYTES = 104857600;

/** The bytes one record takes in a record batch, counted from above. */
export function recordBytes(r: OutboundRecord): number {
  let n = RECORD_FRAMING + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const [k, v] of Object.entries(r.headers ?? {})) n += HEADER_FRAMING + Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

export interface LimitValues {
  /** Per topic, the largest record batch it accepts, in bytes. */
  readonly topics: ReadonlyMap<string, number>;
  /** A topic not read: the broker's message.max.bytes. */
  readonly otherTopics: number;
  /** The largest produce request. */
  readonly request: number;
  /** Where they come from: the cluster's configs, or PRODUCE_MAX_BYTES. */
  readonly source: 'cluster' | 'setting';
}

/**
 * Reads the limits: each topic's max.message.bytes (as the cluster resolves it), the brokers'
 * message.max.bytes and socket.request.max.bytes (the smallest over brokers). A request is kept
 * to the largest batch it may carry (as the Java producer's max.request.size does), and under the
 * socket limit. PRODUCE_MAX_BYTES > 0 replaces all of them and nothing is read.
 */
export async function readLimits(admin: KafkaAdmin, topics: readonly string[], overrideBytes: number): Promise<LimitValues> {
  if (overrideBytes > 0) return { topics: new Map(topics.map((t) => [t, overrideBytes])), otherTopics: overrideBytes, request: overrideBytes, source: 'setting' };
  let brokers: ReadonlyMap<string, string>[];
  let configs: Map<string, ReadonlyMap<string, string>>;
  try {
    // A topic that does not exist yet takes the broker's default when it is created.
    const existing = new Set(await admin.listTopics());
    [brokers, configs] = await Promise.all([admin.brokerConfigs(['message.max.bytes', 'socket.request.max.bytes']), admin.topicConfigs(topics.filter((t) => existing.has(t)), ['max.message.bytes'])]);
  } catch (err) {
    throw new ConfigError('PRODUCE_MAX_BYTES', `could not read the cluster's size limits (message.max.bytes, the topics' max.message.bytes): ${errorMessage(err)}; allow DescribeConfigs on the brokers and topics, or set PRODUCE_MAX_BYTES to the largest record batch the topics accept`);
  }
  const smallest = (name: string, fallback: number): number => {
    const values = brokers.map((b) => Number(b.get(name))).filter((n) => Number.isFinite(n) && n > 0);
    return values.length > 0 ? Math.min(...values) : fallback;
  };
  const message = smallest('message.max.bytes', DEFAULT_MESSAGE_MAX_BYTES);
  const socket = smallest('socket.request.max.bytes', DEFAULT_SOCKET_REQUEST_MAX_BYTES);
  const perTopic = new Map<string, number>();
  for (const t of topics) {
    const n = Number(configs.get(t)?.get('max.message.bytes'));
    perTopic.set(t, Number.isFinite(n) && n > 0 ? n : message);
  }
  return { topics: perTopic, otherTopics: message, request: Math.min(socket, Math.max(message, ...perTopic.values())), source: 'cluster' };
}

/**
 * The limits a producer keeps to. `refresh` reads them again (after the broker refused a send as
 * too large: a topic's limit may have been lowered since the start).
 */
export class ProduceLimits {
  private changes = 0;

  constructor(
    private values: LimitValues,
    private readonly reread: () => Promise<LimitValues> = async () => values,
  ) {}

  static async fromCluster(admin: KafkaAdmin, topics: readonly string[], overrideBytes: number): Promise<ProduceLimits> {
    const read = () => readLimits(admin, topics, overrideBytes);
    return new ProduceLimits(await read(), read);
  }

  /** The largest record batch the topic accepts, as configured. */
  batchLimit(topic: string): number {
    return this.values.topics.get(topic) ?? this.values.otherTopics;
  }

  get requestLimit(): number {
    return this.values.request;
  }

  /** The most one record of `topic` may take (recordBytes) and still be sent, alone in its batch and request. */
  recordBudget(topic: string): number {
    const inBatch = this.batchLimit(topic) - SAFETY_MARGIN - BATCH_HEADER;
    const inRequest = this.values.request - SAFETY_MARGIN - REQUEST_HEADER - TOPIC_ENTRY - Buffer.byteLength(topic) - PARTITION_ENTRY - BATCH_HEADER;
    return Math.min(inBatch, inRequest);
  }

  fits(topic: string, record: OutboundRecord): boolean {
    return recordBytes(record) <= this.recordBudget(topic);
  }

  /** The limit, for messages: "1048588 bytes (max.message.bytes of topic user-state)". */
  describe(topic: string): string {
    if (this.values.source === 'setting') return `${this.batchLimit(topic)} bytes (PRODUCE_MAX_BYTES)`;
    const batch = this.batchLimit(topic);
    const what = this.values.topics.has(topic) ? `max.message.bytes of topic ${topic}` : `the broker's message.max.bytes`;
    return batch <= this.values.request ? `${batch} bytes (${what})` : `${this.values.request} bytes (the broker's socket.request.max.bytes)`;
  }

  /** Counts the changes refresh() saw: a sender that checked its records under an older version checks them again. */
  get version(): number {
    return this.changes;
  }

  /** Reads the limits again; true when they changed. */
  async refresh(): Promise<boolean> {
    const next = await this.reread();
    const same = next.request === this.values.request && next.otherTopics === this.values.otherTopics && next.topics.size === this.values.topics.size && [...next.topics].every(([t, n]) => this.values.topics.get(t) === n);
    this.values = next;
    if (!same) this.changes++;
    return !same;
  }
}

interface TopicLoad {
  readonly records: OutboundRecord[];
  /** Bytes per explicit partition. */
  readonly pinned: Map<number, number>;
  /** Records the partitioner places: any partition may get all of them. */
  unpinned: number;
  maxPinned: number;
}

/**
 * Splits a send into requests that keep to the limits: each topic-partition's batch under its
 * topic's limit, each request under the request limit and `maxRecords`. Records keep their order:
 * taken in order, a request closed when the next one does not fit, so sending the requests one
 * after the other keeps every partition's order (a changelog's marker after the states before it,
 * a tombstone after the user's states). Records without a partition count against every partition
 * of their topic (the partitioner picks one). A record too large even alone goes in a request of
 * its own (the broker then refuses it: callers check records first, see ProduceLimits.fits).
 */
export function planRequests(batches: readonly TopicRecords[], limits: ProduceLimits, maxRecords = Number.POSITIVE_INFINITY): TopicRecords[][] {
  const requests: TopicRecords[][] = [];
  let topics = new Map<string, TopicLoad>();
  let bytes = REQUEST_HEADER;
  let count = 0;
  const requestRoom = limits.requestLimit - SAFETY_MARGIN;
  const close = (): void => {
    if (count > 0) requests.push([...topics].map(([topic, l]) => ({ topic, records: l.records })));
    topics = new Map();
    bytes = REQUEST_HEADER;
    count = 0;
  };
  for (const { topic, records } of batches) {
    const batchRoom = limits.batchLimit(topic) - SAFETY_MARGIN - BATCH_HEADER;
    for (const r of records) {
      const size = recordBytes(r);
      for (;;) {
        const load = topics.get(topic);
        const p = r.partition;
        // What the record adds to the request: its bytes, a batch entry when it opens one (any record without a partition may), the topic's entry.
        const opensBatch = p === undefined || !load?.pinned.has(p);
        const added = size + (opensBatch ? BATCH_HEADER + PARTITION_ENTRY : 0) + (load ? 0 : TOPIC_ENTRY + Buffer.byteLength(topic));
        const inBatch = (load?.unpinned ?? 0) + size + (p === undefined ? (load?.maxPinned ?? 0) : (load?.pinned.get(p) ?? 0));
        const fits = inBatch <= batchRoom && bytes + added <= requestRoom && count < maxRecords;
        if (!fits && count > 0) {
          close();
          continue;
        }
        const l = load ?? { records: [], pinned: new Map<number, number>(), unpinned: 0, maxPinned: 0 };
        if (!load) topics.set(topic, l);
        l.records.push(r);
        if (p === undefined) l.unpinned += size;
        else {
          const n = (l.pinned.get(p) ?? 0) + size;
          l.pinned.set(p, n);
          l.maxPinned = Math.max(l.maxPinned, n);
        }
        bytes += added;
        count++;
        break;
      }
    }
  }
  close();
  return requests;
}

/**
 * A producer whose sends keep to the limits: split (planRequests) and sent one request after the
 * other, so each partition's order holds; resolves once all are acknowledged. A request the broker
 * refuses as too large rejects with ProduceTooLargeError listing what was not acknowledged.
 */
export class BoundedProducer implements KafkaProducer {
  constructor(
    private readonly inner: KafkaProducer,
    readonly limits: ProduceLimits,
    private readonly maxRecords = Number.POSITIVE_INFINITY,
  ) {}

  async send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    const requests = planRequests(batches, this.limits, this.maxRecords);
    const first = new Map<string, Appended>();
    for (let i = 0; i < requests.length; i++) {
      let appended: Appended[];
      try {
        appended = await this.inner.send(requests[i]!);
      } catch (err) {
        if (err instanceof ProduceTooLargeError) throw new ProduceTooLargeError(err.message, requests.slice(i).flat(), { cause: err });
        throw err;
      }
      // The port promises the offset of the first record per topic-partition.
      for (const a of appended) if (!first.has(`${a.topic}/${a.partition}`)) first.set(`${a.topic}/${a.partition}`, a);
    }
    return [...first.values()];
  }

  disconnect(): Promise<void> {
    return this.inner.disconnect();
  }
}

/**
 * A producer of `client` that keeps to the limits of `topics`, read once now (the demo's and the
 * load tools' traffic: the processor's own producer is made in wiring.ts).
 */
export async function boundedProducerOf(client: KafkaClient, topics: readonly string[], o: ProducerOptions & { readonly maxRecords?: number } = {}): Promise<BoundedProducer> {
  const admin = await client.admin();
  let limits: ProduceLimits;
  try {
    limits = new ProduceLimits(await readLimits(admin, topics, 0));
  } finally {
    await admin.disconnect();
  }
  const { maxRecords, ...options } = o;
  return new BoundedProducer(await client.producer(options), limits, maxRecords);
}
