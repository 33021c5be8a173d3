/**
 * The Kafka adapter's own logic over fakes of the port (no broker, no client library): offsets are
 * marked done only after the chunk's outputs were acknowledged, a failed chunk rewinds its
 * partition, an inactive fetch is not taken, restores hold events back, and a read from the
 * beginning knows when it caught up (the task itself: partition-task.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { InputRecord } from '../../src/domain/events.js';
import { CatchUp } from '../../src/adapters/kafka/catch-up.js';
import { restoreChangelog } from '../../src/adapters/kafka/changelog-restorer.js';
import { runEventSource } from '../../src/adapters/kafka/event-source.js';
import type { FetchControl, FetchedRecords, GroupConsumer, KafkaClient, PartitionReadOptions } from '../../src/adapters/kafka/port.js';

const rec = (partition: number, offset: number, key: string | null = `u${offset}`): InputRecord => ({
  topic: 't',
  partition,
  offset: String(offset),
  key: key === null ? null : Buffer.from(key),
  value: Buffer.from('v'),
  timestamp: 0,
});

/** A consumer that hands one fetch to the handler and records what the handler did. */
function fakeConsumer(fetched: FetchedRecords, active: () => boolean = () => true) {
  const log: string[] = [];
  let run: Promise<void> | undefined;
  const control: FetchControl = {
    isActive: active,
    heartbeat: async () => void log.push('heartbeat'),
    done: async (offset) => void log.push(`done ${offset}`),
  };
  const consumer: GroupConsumer = {
    groupId: 'g',
    run: async (handle) => {
      run = handle(fetched, control);
    },
    seek: (topic, partition, offset) => void log.push(`seek ${topic}/${partition} ${offset}`),
    pause: () => undefined,
    resume: () => undefined,
    disconnect: async () => undefined,
  };
  return { consumer, log, handled: () => run! };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond` holds (the task works after the handler returned). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await sleep(5);
  expect(cond()).toBe(true);
}

describe('runEventSource over the port (a task per partition, one handler per chunk: the pass-through)', () => {
  it('hands chunks of at most chunkMaxRecords and marks each done only after its handler resolved', async () => {
    const records = Array.from({ length: 5 }, (_, i) => rec(0, 10 + i));
    const f = fakeConsumer({ topic: 't', partition: 0, records, highWatermark: 20n });
    const lags: number[] = [];
    await runEventSource({
      consumer: f.consumer,
      chunkMaxRecords: 2,
      handle: async (chunk) => {
        f.log.push(`handling ${chunk.map((r) => r.offset).join(',')}`);
        await sleep(5);
        f.log.push(`handled ${chunk.map((r) => r.offset).join(',')}`);
      },
      onLag: (_t, _p, lag) => lags.push(lag),
    });
    await f.handled();
    await until(() => f.log.includes('done 14'));
    // Handlers one after another; each chunk's offset marked after its handler resolved (the next
    // handler may start before that mark: marking runs on its own chain, see PartitionTask.send).
    expect(f.log.filter((l) => !l.startsWith('done'))).toEqual(['handling 10,11', 'handled 10,11', 'handling 12,13', 'handled 12,13', 'handling 14', 'handled 14']);
    expect(f.log.filter((l) => l.startsWith('done'))).toEqual(['done 11', 'done 13', 'done 14']);
    for (const [done, handled] of [['done 11', 'handled 10,11'], ['done 13', 'handled 12,13'], ['done 14', 'handled 14']] as const) expect(f.log.indexOf(done)).toBeGreaterThan(f.log.indexOf(handled));
    expect(lags).toEqual([8, 6, 5]);
  });

  it('a rejected handler marks nothing done and has the partition fetched again from the chunk', async () => {
    const f = fakeConsumer({ topic: 't', partition: 3, records: [rec(3, 1), rec(3, 2)], highWatermark: 3n });
    const failures: number[] = [];
    await runEventSource({ consumer: f.consumer, chunkMaxRecords: 1, handle: () => Promise.reject(new Error('broker down')), onFailure: (_e, p) => void failures.push(p) });
    await f.handled();
    await until(() => failures.length > 0);
    expect(f.log).toEqual(['seek t/3 1']);
  });

  it('takes nothing from a fetch that is no longer active (rebalance, shutdown, a pending seek)', async () => {
    const f = fakeConsumer({ topic: 't', partition: 0, records: [rec(0, 1), rec(0, 2), rec(0, 3)], highWatermark: 4n }, () => false);
    const handled: string[] = [];
    await runEventSource({ consumer: f.consumer, chunkMaxRecords: 1, handle: async (chunk) => void handled.push(chunk[0]!.offset) });
    await f.handled();
    await sleep(20);
    expect(handled).toEqual([]);
    expect(f.log).toEqual([]);
  });

  it('holds a fetch back while its partition is being restored, heartbeating', async () => {
    let release!: () => void;
    let restoring: Promise<void> | null = new Promise<void>((r) => (release = r)).then(() => void (restoring = null));
    const f = fakeConsumer({ topic: 't', partition: 2, records: [rec(2, 7)], highWatermark: 8n });
    const handled: string[] = [];
    await runEventSource({ consumer: f.consumer, chunkMaxRecords: 10, handle: async (c) => void handled.push(c[0]!.offset), restoring: () => restoring });
    await sleep(1100); // the handler heartbeats every second while its task waits
    expect(handled).toEqual([]);
    expect(f.log).toContain('heartbeat');
    release();
    await f.handled();
    await until(() => f.log.includes('done 7'));
    expect(handled).toEqual(['7']);
  });
});

describe('CatchUp', () => {
  const ends = [
    { partition: 0, low: 0n, high: 5n },
    { partition: 1, low: 3n, high: 3n }, // empty (compacted away): caught up already
    { partition: 2, low: 0n, high: 2n },
  ];

  it('is caught up once every wanted partition reached the end it had at the start', async () => {
    const c = new CatchUp(ends);
    expect(c.before(0, 4n)).toBe(true);
    expect(c.before(0, 5n)).toBe(false);
    expect(c.before(1, 0n)).toBe(false);
    c.fetched(0, 5n);
    expect(c.done).toBe(false);
    c.fetched(2, 1n);
    expect(c.done).toBe(false);
    c.fetched(2, 2n);
    expect(c.done).toBe(true);
    await c.reached;
  });

  it('only waits for the partitions asked for', () => {
    const c = new CatchUp(ends, [2]);
    expect(c.before(0, 0n)).toBe(false);
    c.fetched(2, 3n);
    expect(c.done).toBe(true);
    expect(new CatchUp(ends, [1]).done).toBe(true);
  });
});

describe('restoreChangelog over the port', () => {
  it('reads the partitions to their end, applies keyed records and stops the reader', async () => {
    let asked: PartitionReadOptions | undefined;
    let stopped = false;
    const client = {
      readFromBeginning: async (o: PartitionReadOptions) => {
        asked = o;
        await o.onRecords([rec(1, 0, 'alice'), rec(1, 1, null), rec(1, 2, 'bob')]);
        return { caughtUp: Promise.resolve(), stop: async () => void (stopped = true) };
      },
    } as unknown as KafkaClient;
    const applied: string[] = [];
    const r = await restoreChangelog({ client, topic: 'user-state', partitions: [1], apply: (records) => void applied.push(...records.map((x) => `${x.key}@${x.partition}/${x.offset}`)) });
    expect(asked).toMatchObject({ topic: 'user-state', partitions: [1], follow: false });
    expect(asked?.from).toBeUndefined();
    expect(applied).toEqual(['alice@1/0', 'bob@1/2']);
    expect(r.records).toBe(2);
    expect(stopped).toBe(true);
  });

  it('reads from the checkpoints given; one outside its partition is stale: onStale, then read from the start', async () => {
    let asked: PartitionReadOptions | undefined;
    const stale: number[] = [];
    const client = {
      admin: async () => ({
        partitionOffsets: async () => [{ partition: 0, low: 0n, high: 10n }, { partition: 1, low: 0n, high: 10n }, { partition: 2, low: 5n, high: 10n }],
        disconnect: async () => undefined,
      }),
      readFromBeginning: async (o: PartitionReadOptions) => {
        asked = o;
        return { caughtUp: Promise.resolve(), stop: async () => undefined };
      },
    } as unknown as KafkaClient;
    const from = new Map([[0, 7n], [1, 11n], [2, 3n]]);
    await restoreChangelog({ client, topic: 'user-state', partitions: [0, 1, 2], from, onStale: async (p) => void stale.push(p), apply: () => undefined });
    expect(stale).toEqual([1, 2]); // past the end (topic recreated), before the start (truncated)
    expect([...(asked?.from ?? [])]).toEqual([[0, 7n]]);
  });

  it('stops the reader when the read fails', async () => {
    let stopped = false;
    const client = {
      readFromBeginning: async () => ({ caughtUp: Promise.reject(new Error('crashed')), stop: async () => void (stopped = true) }),
    } as unknown as KafkaClient;
    await expect(restoreChangelog({ client, topic: 't', partitions: [0], apply: () => undefined })).rejects.toThrow('crashed');
    expect(stopped).toBe(true);
  });
});
