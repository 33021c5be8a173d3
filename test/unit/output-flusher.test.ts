/**
 * OutputFlusher (src/adapters/kafka/output-flusher.ts): rate-limited outputs (EMIT_INTERVAL_MS)
 * delivered by a timer, through the real KafkaSink to a scripted producer of the port. What is
 * checked: nothing runs when outputs are not rate-limited; a flush delivers what flushDue returns
 * and reports it only once the producer acknowledged it; one flush at a time; a failed delivery
 * stops the processor, a failed scoring does not; stop() flushes once more.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OutputFlusher } from '../../src/adapters/kafka/output-flusher.js';
import type { KafkaProducer, TopicRecords } from '../../src/adapters/kafka/port.js';
import { ProduceLimits } from '../../src/adapters/kafka/produce-limits.js';
import { KafkaSink } from '../../src/adapters/kafka/sink.js';
import type { ProcessResult, ScoredOutput } from '../../src/domain/outputs.js';
import { NONE, type UserState } from '../../src/domain/user-state.js';
import type { ChunkResult } from '../../src/pipeline/processor.js';
import { OutputEncoder } from '../../src/pipeline/encode.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { Accepts } from '../../src/serde/record-names.js';
import { createLogger } from '../../src/util/log.js';

const TOPICS = { scored: 'scored', deadLetters: 'dead-letters', segments: 'segments', changelog: 'user-state', trainingExamples: 'training-examples' };
const avro = new AvroCodec();

function scored(userId: string, eventIds: string[]): ScoredOutput {
  return { outputId: `out-${userId}`, userId, candidates: [{ adId: 'ad-1', score: 0.5, categoryId: 'shoes' }], modelVersion: 'v', triggerEventTime: 1000, processingTime: 2000, eventIds };
}

function settled(userId: string): UserState {
  return { userId, partition: 1, interests: [], latestEventTime: 1000, pendingEventIds: NONE, lastEmittedAt: 2000, updatedAt: 2000, lastSegments: NONE };
}

function result(userId: string, eventIds: string[]): ChunkResult {
  return { scored: [scored(userId, eventIds)], deadLetters: [], stateChanges: [settled(userId)], segments: [], deletions: [], timings: { decode: 0, features: 0, fusion: 0, scoring: 0 } };
}

/** A producer of the port whose sends are answered by the test (acknowledged or failed), in order. */
class ScriptedProducer implements KafkaProducer {
  readonly sends: { batches: readonly TopicRecords[]; ack: () => void; fail: (err: Error) => void }[] = [];
  send(batches: readonly TopicRecords[]) {
    return new Promise<[]>((resolve, reject) => this.sends.push({ batches, ack: () => resolve([]), fail: reject }));
  }
  async disconnect(): Promise<void> {}
}

function setUp(emitIntervalMs: number, flushDue: () => Promise<ChunkResult>) {
  const producer = new ScriptedProducer();
  const delivered: ProcessResult[] = [];
  const failures: Error[] = [];
  const logged: string[] = [];
  const log = createLogger('error', {}, (line) => void logged.push(line));
  const sink = new KafkaSink({
    producer,
    topics: TOPICS,
    encoder: new OutputEncoder(avro, 1000),
    encodeState: (s) => Buffer.from(`state of ${s.userId}`),
    // Nothing here is near a real broker's limits.
    limits: new ProduceLimits({ topics: new Map(), otherTopics: 1 << 20, request: 1 << 20, source: 'setting' }),
    log,
  });
  const calls = { flushDue: 0 };
  const flusher = new OutputFlusher({
    processor: { flushDue: () => (calls.flushDue++, flushDue()) },
    sink,
    emitIntervalMs,
    delivered: (r) => void delivered.push(r),
    log,
    fail: (err) => void failures.push(err),
  });
  return { producer, flusher, delivered, failures, logged, calls };
}

/** Lets queued promise callbacks run (the flusher chains flushDue, deliver and send). */
const tick = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe('OutputFlusher', () => {
  it('does nothing when outputs are not rate-limited (EMIT_INTERVAL_MS 0)', async () => {
    vi.useFakeTimers();
    const { flusher, calls } = setUp(0, async () => result('u', ['e1']));
    flusher.start();
    vi.advanceTimersByTime(10_000);
    await flusher.stop();
    expect(calls.flushDue).toBe(0);
  });

  it('delivers what flushDue returns and reports it only once the producer acknowledged it', async () => {
    const { producer, flusher, delivered } = setUp(100, async () => result('alice', ['e1', 'e2']));
    const done = flusher.flush();
    await tick();
    expect(producer.sends).toHaveLength(1);
    const sent = producer.sends[0]!.batches;
    expect(sent.map((b) => b.topic)).toEqual(['user-state', 'scored']); // the state change first
    expect(sent[0]!.records[0]).toMatchObject({ key: Buffer.from('alice'), value: Buffer.from('state of alice'), partition: 1 });
    expect(avro.decode<ScoredOutput>(sent[1]!.records[0]!.value, Accepts.scored).value.eventIds).toEqual(['e1', 'e2']);
    expect(delivered).toEqual([]); // not acknowledged yet

    producer.sends[0]!.ack();
    await done;
    expect(delivered.map((r) => r.scored.map((o) => o.userId))).toEqual([['alice']]);
  });

  it('runs one flush at a time: a flush asked for while one is in flight joins it', async () => {
    const { producer, flusher, calls } = setUp(100, async () => result('alice', ['e1']));
    expect(flusher.inFlight()).toBeNull();
    const first = flusher.flush();
    expect(flusher.flush()).toBe(first);
    expect(flusher.inFlight()).toBe(first);
    await tick();
    expect(calls.flushDue).toBe(1);
    producer.sends[0]!.ack();
    await first;
    expect(flusher.inFlight()).toBeNull();
    const second = flusher.flush();
    expect(second).not.toBe(first);
    await tick();
    producer.sends[1]!.ack();
    await second;
    expect(calls.flushDue).toBe(2);
  });

  it('a failed delivery stops the processor (memory says sent, the changelog says pending) and reports nothing', async () => {
    const { producer, flusher, delivered, failures, logged } = setUp(100, async () => result('alice', ['e1']));
    const done = flusher.flush();
    await tick();
    producer.sends[0]!.fail(new Error('broker gone'));
    await done;
    expect(delivered).toEqual([]);
    expect(failures.map((e) => e.message)).toEqual(['delivering rate-limited outputs failed: broker gone']);
    expect(logged.join('')).toContain('stopping so a restart restores them from the changelog');
  });

  it('a failed scoring is logged and retried on the next flush; the processor keeps running', async () => {
    let attempt = 0;
    const { producer, flusher, delivered, failures, logged } = setUp(100, async () => {
      if (attempt++ === 0) throw new Error('worker died');
      return result('alice', ['e1']);
    });
    await flusher.flush();
    expect(producer.sends).toEqual([]);
    expect(failures).toEqual([]);
    expect(logged.join('')).toContain('scoring rate-limited outputs failed');
    const again = flusher.flush();
    await tick();
    producer.sends[0]!.ack();
    await again;
    expect(delivered).toHaveLength(1);
  });

  it('an empty flush sends nothing', async () => {
    const { producer, flusher, delivered } = setUp(100, async () => ({ ...result('x', []), scored: [], stateChanges: [] }));
    await flusher.flush();
    expect(producer.sends).toEqual([]);
    expect(delivered).toHaveLength(1);
  });

  it('flushes on a timer of half the interval (50 ms .. 1 s), and once more on stop', async () => {
    vi.useFakeTimers();
    const { producer, flusher, calls } = setUp(400, async () => ({ ...result('x', []), scored: [], stateChanges: [] }));
    flusher.start();
    expect(calls.flushDue).toBe(0);
    await vi.advanceTimersByTimeAsync(199);
    expect(calls.flushDue).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.flushDue).toBe(1);
    await vi.advanceTimersByTimeAsync(400);
    expect(calls.flushDue).toBe(3);
    await flusher.stop();
    expect(calls.flushDue).toBe(4);
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls.flushDue).toBe(4); // the timer is gone
    expect(producer.sends).toEqual([]);
  });

  it('bounds the timer: at least every second for long intervals, at most every 50 ms for short ones', async () => {
    vi.useFakeTimers();
    const slow = setUp(60_000, async () => ({ ...result('x', []), scored: [], stateChanges: [] }));
    const fast = setUp(20, async () => ({ ...result('x', []), scored: [], stateChanges: [] }));
    slow.flusher.start();
    fast.flusher.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(slow.calls.flushDue).toBe(1);
    expect(fast.calls.flushDue).toBe(20);
    await slow.flusher.stop();
    await fast.flusher.stop();
  });
});

describe('OutputFlusher with partition tasks', () => {
  it('hands each owned partition its scoring as task work, and the task nothing when nothing is due or scoring failed', async () => {
    const asked: number[] = [];
    const handed: (string | null)[] = [];
    const logged: string[] = [];
    let attempt = 0;
    const flusher = new OutputFlusher({
      processor: {
        flushDue: async (_now, partition) => {
          asked.push(partition!);
          if (partition === 2 && attempt++ === 0) throw new Error('worker died');
          return partition === 1 ? { ...result('x', []), scored: [], stateChanges: [] } : result(`user-of-${partition}`, ['e']);
        },
      },
      sink: { deliver: async () => expect.unreachable('the task sends, not the flusher') },
      emitIntervalMs: 100,
      delivered: () => undefined,
      log: createLogger('error', {}, (line) => void logged.push(line)),
      fail: () => expect.unreachable('a task failure resets the partition; the processor keeps running'),
      partitions: () => [0, 1, 2],
      inTask: async (_partition, score) => {
        const r = await score();
        handed.push(r ? r.scored.map((o) => o.userId).join(',') : null);
      },
    });
    await flusher.flush();
    expect(asked.sort()).toEqual([0, 1, 2]);
    expect(handed.sort()).toEqual(['user-of-0', null, null].sort());
    expect(logged.join('')).toContain('scoring rate-limited outputs failed');
    await flusher.flush();
    expect(handed).toContain('user-of-2');
  });
});
