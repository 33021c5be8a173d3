/**
 * The sink's size policy over a scripted fake of the port's producer: outputs too large for their
 * topic are not sent and the chunk's records that produced them are dead-lettered as
 * OUTPUT_TOO_LARGE; dead letters are cut to fit; a broker refusing a send (a limit lowered while
 * running) has the limits read again and the rest sent under them; order per partition holds.
 */
import { describe, expect, it } from 'vitest';
import type { InputRecord } from '../../src/domain/events.js';
import type { DeadLetterOutput, ScoredOutput, UserState } from '../../src/domain/outputs.js';
import { NONE } from '../../src/domain/user-state.js';
import { ProduceTooLargeError, type Appended, type KafkaProducer, type TopicRecords } from '../../src/adapters/kafka/port.js';
import { BoundedProducer, ProduceLimits, recordBytes, type LimitValues } from '../../src/adapters/kafka/produce-limits.js';
import { KafkaSink } from '../../src/adapters/kafka/sink.js';
import { OutputEncoder } from '../../src/pipeline/encode.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { Accepts } from '../../src/serde/record-names.js';
import { UserStateCodec } from '../../src/state/user-state-codec.js';
import { silentLogger } from '../../src/util/log.js';

const avro = new AvroCodec();
const DIM = 512;
const topics = { scored: 'scored', deadLetters: 'dead', segments: 'segments', changelog: 'state', trainingExamples: 'examples' };

const input = (userId: string, offset: number, bytes = 50): InputRecord => ({ topic: 'clicks', partition: 0, offset: String(offset), key: Buffer.from(userId), value: Buffer.alloc(bytes, 7), timestamp: 1 });

function state(userId: string, interests: number, partition = 0): UserState {
  return {
    userId,
    partition,
    interests: Array.from({ length: interests }, () => ({ vector: new Float32Array(DIM).fill(0.5), strength: 1, asOf: 1, events: 1 })),
    latestEventTime: 1,
    pendingEventIds: NONE,
    lastEmittedAt: 1,
    updatedAt: 1,
    lastSegments: NONE,
  };
}

const scored = (userId: string, eventIds: string[]): ScoredOutput => ({ outputId: 'x', userId, candidates: [{ adId: 'a1', score: 0.5, categoryId: 'c' }], modelVersion: 'm', triggerEventTime: 1, processingTime: 1, eventIds });

const values = (perTopic: number, request = 1 << 20): LimitValues => ({ topics: new Map(Object.values(topics).map((t) => [t, perTopic])), otherTopics: perTopic, request, source: 'cluster' });

/** A broker that refuses a request with a batch over `brokerLimit` (as the real one does), recording what it took. */
function fakeBroker(brokerLimit: () => number) {
  const acked: TopicRecords[] = [];
  const producer: KafkaProducer = {
    send: async (req): Promise<Appended[]> => {
      for (const t of req) {
        const perPartition = new Map<number, number>();
        for (const r of t.records) perPartition.set(r.partition ?? -1, (perPartition.get(r.partition ?? -1) ?? 0) + recordBytes(r));
        if ([...perPartition.values()].some((n) => n + 61 > brokerLimit())) throw new ProduceTooLargeError('MESSAGE_TOO_LARGE', req);
      }
      acked.push(...req);
      return [];
    },
    disconnect: async () => undefined,
  };
  return { producer, acked, records: (topic: string) => acked.filter((t) => t.topic === topic).flatMap((t) => t.records) };
}

function sinkOn(limits: ProduceLimits, broker: ReturnType<typeof fakeBroker>, deadLetterMaxValueBytes = 65536) {
  const codec = new UserStateCodec(avro, { space: 's', dim: DIM, maxInterests: 8 });
  const tooLarge: string[] = [];
  const sink = new KafkaSink({
    producer: new BoundedProducer(broker.producer, limits),
    topics,
    encoder: new OutputEncoder(avro, deadLetterMaxValueBytes),
    encodeState: (s) => codec.encode(s),
    limits,
    log: silentLogger,
    onTooLarge: (t) => tooLarge.push(t),
    clock: () => 99,
  });
  return { sink, tooLarge, codec };
}

const deadLetters = (broker: ReturnType<typeof fakeBroker>) => broker.records('dead').map((r) => avro.decode<{ sourceOffset: number; reason: string; value: Buffer | null; valueTruncated: boolean; message: string; key: Buffer | null; sourceTopic: string; sourcePartition: number }>(r.value, Accepts.deadLetter).value);

describe('KafkaSink size policy', () => {
  it("dead-letters a user's chunk records when its state is too large for the changelog, and sends the rest", async () => {
    const limits = new ProduceLimits(values(20_000));
    const broker = fakeBroker(() => 20_000);
    const { sink, tooLarge } = sinkOn(limits, broker);
    // 8 x 512 floats: 16 KB fits; a user with K = 16 (a record written before K was lowered, say) does not.
    const inputs = [input('small', 1), input('big', 2), input('big', 3), input('small', 4)];
    const delivered = await sink.deliverFor(inputs, { stateChanges: [state('small', 8), state('big', 10)], scored: [scored('small', ['e1', 'e4']), scored('big', ['e2', 'e3'])] }, [{ key: '\u0000applied/clicks', value: Buffer.from('4'), partition: 0 }]);
    const changelog = broker.records('state').map((r) => r.key!.toString());
    expect(changelog).toEqual(['small', '\u0000applied/clicks']);
    expect(broker.records('scored').map((r) => r.key!.toString())).toEqual(['small', 'big']);
    const dead = deadLetters(broker);
    expect(dead.map((d) => [d.sourceOffset, d.reason])).toEqual([[2, 'OUTPUT_TOO_LARGE'], [3, 'OUTPUT_TOO_LARGE']]);
    expect(dead[0]!.message).toMatch(/user state takes \d+ bytes, more than the 20000 bytes \(max.message.bytes of topic state\)/);
    expect(tooLarge).toEqual(['state']);
    expect(delivered.stateChanges!.map((s) => s.userId)).toEqual(['small']);
    expect(delivered.deadLetters!.map((d) => d.source.offset)).toEqual(['2', '3']);
  });

  it('does not dead-letter an input twice (one already rejected by the core)', async () => {
    const limits = new ProduceLimits(values(20_000));
    const broker = fakeBroker(() => 20_000);
    const { sink } = sinkOn(limits, broker);
    const inputs = [input('big', 2), input('big', 3)];
    const rejected: DeadLetterOutput = { source: inputs[0]!, reason: 'DECODE_FAILED', message: 'corrupt', failedAt: 1 };
    await sink.deliverFor(inputs, { stateChanges: [state('big', 10)], deadLetters: [rejected] });
    expect(deadLetters(broker).map((d) => [d.sourceOffset, d.reason])).toEqual([[2, 'DECODE_FAILED'], [3, 'OUTPUT_TOO_LARGE']]);
  });

  it('with no inputs at hand (a rate-limited flush), dead-letters the output itself, keyed by the user', async () => {
    const limits = new ProduceLimits(values(5_000));
    const broker = fakeBroker(() => 5_000);
    const { sink } = sinkOn(limits, broker);
    await sink.deliver({ scored: [scored('busy', Array.from({ length: 600 }, (_, i) => `event-${i}`))] });
    expect(broker.records('scored')).toEqual([]);
    const [d, ...more] = deadLetters(broker);
    expect(more).toEqual([]);
    expect(d).toMatchObject({ sourceTopic: 'scored', sourcePartition: -1, reason: 'OUTPUT_TOO_LARGE' });
    expect(d!.key!.toString()).toBe('busy');
  });

  it('cuts a dead letter whose value does not fit its topic, and says so', async () => {
    const limits = new ProduceLimits(values(20_000));
    const broker = fakeBroker(() => 20_000);
    const { sink, tooLarge } = sinkOn(limits, broker);
    const big = input('u', 5, 60_000);
    await sink.deliverFor([big], { deadLetters: [{ source: big, reason: 'DECODE_FAILED', message: 'corrupt', failedAt: 1 }] });
    const [d] = deadLetters(broker);
    expect(d!.valueTruncated).toBe(true);
    expect(d!.value!.length).toBeGreaterThan(15_000);
    expect(d!.value!.length).toBeLessThan(20_000);
    expect(tooLarge).toEqual(['dead']);
  });

  it('sends twenty 60 KB dead letters of one key under a 1 MB limit in several requests, all of them whole', async () => {
    const limits = new ProduceLimits(values(1_048_588, 1_048_588));
    const broker = fakeBroker(() => 1_048_588);
    const { sink } = sinkOn(limits, broker);
    const bad = Array.from({ length: 20 }, (_, i) => input('poison', i, 60_000));
    await sink.deliverFor(bad, { deadLetters: bad.map((source) => ({ source, reason: 'DECODE_FAILED', message: 'corrupt', failedAt: 1 })) });
    const dead = deadLetters(broker);
    expect(dead.map((d) => d.sourceOffset)).toEqual(bad.map((_, i) => i));
    expect(dead.every((d) => !d.valueTruncated && d.value!.length === 60_000)).toBe(true);
  });

  it('reads the limits again when the broker refuses a send, and sends the rest under the new ones', async () => {
    let brokerLimit = 1_000_000;
    const limits = new ProduceLimits(values(1_000_000), async () => values(brokerLimit));
    const broker = fakeBroker(() => brokerLimit);
    const { sink } = sinkOn(limits, broker);
    brokerLimit = 20_000; // lowered after the start: the sink still believes 1 MB
    const inputs = [input('a', 1), input('b', 2), input('c', 3)];
    const delivered = await sink.deliverFor(inputs, { stateChanges: [state('a', 4), state('b', 10), state('c', 4)] }, [{ key: '\u0000applied/clicks', value: Buffer.from('3'), partition: 0 }]);
    expect(broker.records('state').map((r) => r.key!.toString())).toEqual(['a', 'c', '\u0000applied/clicks']);
    expect(deadLetters(broker).map((d) => [d.sourceOffset, d.reason])).toEqual([[2, 'OUTPUT_TOO_LARGE']]);
    expect(delivered.deadLetters).toHaveLength(1);
  });

  it('retries under the new limits when another delivery in flight read them first', async () => {
    let brokerLimit = 1_000_000;
    const limits = new ProduceLimits(values(1_000_000), async () => values(brokerLimit));
    const broker = fakeBroker(() => brokerLimit);
    const { sink } = sinkOn(limits, broker);
    brokerLimit = 20_000;
    // Two partitions' chunks at once: both refused; the first to read the limits sees them change.
    await Promise.all([
      sink.deliverFor([input('a', 1)], { stateChanges: [state('a', 10)] }),
      sink.deliverFor([input('b', 2)], { stateChanges: [state('b', 10)] }),
    ]);
    expect(deadLetters(broker).map((d) => d.sourceOffset).sort()).toEqual([1, 2]);
  });

  it('rethrows when the broker refuses a send and the limits did not change (nothing to do better)', async () => {
    const limits = new ProduceLimits(values(1_000_000));
    const broker = fakeBroker(() => 20_000);
    const { sink } = sinkOn(limits, broker);
    await expect(sink.deliverFor([input('b', 1)], { stateChanges: [state('b', 10)] })).rejects.toBeInstanceOf(ProduceTooLargeError);
  });

  it("keeps each partition's order across requests: states, then a deletion's tombstone, then the marker", async () => {
    const limits = new ProduceLimits(values(40_000, 40_000));
    const broker = fakeBroker(() => 40_000);
    const { sink } = sinkOn(limits, broker);
    const states = Array.from({ length: 12 }, (_, i) => state(`u${i}`, 4, i % 2));
    const source = input('u0', 99);
    await sink.deliverFor([], {
      stateChanges: states,
      deletions: [{ userId: 'u0', partition: 0, requestId: 'r', requestedAt: 1, deletedAt: 1, source, held: true, discardedEventIds: [] }],
    }, [{ key: '\u0000applied/clicks', value: Buffer.from('99'), partition: 0 }, { key: '\u0000applied/image-views', value: Buffer.from('7'), partition: 0 }]);
    expect(acksOf(broker).length).toBeGreaterThan(2);
    const p0 = broker.records('state').filter((r) => r.partition === 0).map((r) => `${r.key!.toString()}${r.value === null ? '(tombstone)' : ''}`);
    // A chunk of several input topics: one marker per topic, after every state and tombstone.
    expect(p0).toEqual(['u0', 'u2', 'u4', 'u6', 'u8', 'u10', 'u0(tombstone)', '\u0000applied/clicks', '\u0000applied/image-views']);
  });
});

describe('KafkaSink training examples', () => {
  it("sends a chunk's training examples to their topic, keyed by user, in the same send as its other outputs", async () => {
    const limits = new ProduceLimits(values(20_000));
    const broker = fakeBroker(() => 20_000);
    const sends: TopicRecords[][] = [];
    const recording: KafkaProducer = { send: (req) => (sends.push([...req]), broker.producer.send(req)), disconnect: async () => undefined };
    const { sink } = sinkOn(limits, { ...broker, producer: recording });
    const v = new Float32Array(DIM).fill(0.25);
    const example = { exampleId: 'imp-1', userId: 'u1', adId: 'a1', outputId: 'o1', position: 2, servedAt: 5, label: 1 as const, modelVersion: 'm', servedCtr: 0.5, interest: v, ad: v };
    await sink.deliverFor([input('u1', 0)], { scored: [scored('u1', ['e0'])], examples: [example] });
    expect(sends).toHaveLength(1);
    expect(sends[0]!.map((t) => t.topic).sort()).toEqual(['examples', 'scored']);
    const [r] = broker.records('examples');
    expect(r!.key?.toString()).toBe('u1');
    const e = avro.decode<{ exampleId: string; label: number; position: number; interest: number[] }>(r!.value, Accepts.trainingExample).value;
    expect(e).toMatchObject({ exampleId: 'imp-1', label: 1, position: 2 });
    expect(e.interest).toHaveLength(DIM);
  });
});

const acksOf = (broker: ReturnType<typeof fakeBroker>) => broker.acked.filter((t) => t.topic === 'state');
