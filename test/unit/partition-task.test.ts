/**
 * PartitionTask (src/adapters/kafka/partition-task.ts) over scripted fetches of the port and
 * scripted hooks: what one task of a partition number does with the records of every input topic.
 * Checked: the inbox becomes one chunk across topics (timestamp order, offset order per topic);
 * chunk size adapts (alone at once, a backlog in chunks of at most chunkMaxRecords); the next chunk
 * is processed while the previous one is being sent, at most `pipelineDepth` unacknowledged; sends
 * go one at a time in order and offsets are marked done only after everything before them was
 * acknowledged; a failed delivery drops the work after it unsent, resets the state and rewinds
 * each topic to its first record not acknowledged; re-fetched and stale fetches are skipped;
 * flushes run between chunks; a revoked task sends nothing more.
 */
import { describe, expect, it } from 'vitest';
import type { InputRecord } from '../../src/domain/events.js';
import { PartitionTask, type TaskHooks } from '../../src/adapters/kafka/partition-task.js';
import { feedTasks } from '../../src/adapters/kafka/event-source.js';
import type { FetchControl, FetchedRecords, GroupConsumer } from '../../src/adapters/kafka/port.js';

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Lets queued promise callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

const rec = (topic: string, offset: number, timestamp: number): InputRecord => ({ topic, partition: 0, offset: String(offset), key: Buffer.from('u'), value: Buffer.from('v'), timestamp });
/** `c3` is offset 3 of clicks, `v1` of views, `d0` of deletions. */
const names = (records: readonly InputRecord[]): string => records.map((r) => `${r.topic[0]}${r.offset}`).join(',');

/**
 * A task whose hooks log what they are asked; processing and delivery resolve at once unless
 * held (each held call waits for its Deferred, in `processing` / `delivering`).
 */
function setUp(o: { chunkMaxRecords?: number; pipelineDepth?: number; holdProcess?: boolean; holdDeliver?: boolean; holdStored?: boolean } = {}) {
  const log: string[] = [];
  const processing: Deferred[] = [];
  const delivering: Deferred[] = [];
  /** With holdStored: per delivery, its store write (hooks.stored), held until resolved. */
  const storing: Deferred[] = [];
  const backoffs: number[] = [];
  let restoring: Promise<void> | null = null;
  const hooks: TaskHooks<string> = {
    process: async (records) => {
      log.push(`process ${names(records)}`);
      if (o.holdProcess) {
        const d = deferred();
        processing.push(d);
        await d.promise;
      }
      return names(records);
    },
    deliver: async (records, result) => {
      log.push(`deliver ${records.length > 0 ? result : `flush ${result}`}`);
      if (o.holdDeliver) {
        const d = deferred();
        delivering.push(d);
        await d.promise;
      }
      log.push(`acked ${records.length > 0 ? result : `flush ${result}`}`);
    },
    ...(o.holdStored
      ? {
          stored: () => {
            const d = deferred();
            storing.push(d);
            return d.promise;
          },
        }
      : {}),
    restoring: () => restoring,
    reset: () => void log.push('reset'),
    rewind: (topic, offset) => void log.push(`rewind ${topic} ${offset}`),
  };
  const task = new PartitionTask<string>({
    partition: 0,
    chunkMaxRecords: o.chunkMaxRecords ?? 100,
    pipelineDepth: o.pipelineDepth ?? 3,
    hooks: { ...hooks, failed: (_err, ms) => void backoffs.push(ms) },
    sleep: async () => undefined,
  });
  /** A fetch of `topic`: [offset, timestamp] pairs; its control logs done(). */
  const offer = (topic: string, records: [number, number][], active: () => boolean = () => true): Promise<void> => {
    const control: FetchControl = { isActive: active, heartbeat: async () => undefined, done: async (offset) => void log.push(`done ${topic} ${offset}`) };
    const fetched: FetchedRecords = { topic, partition: 0, records: records.map(([off, ts]) => rec(topic, off, ts)), highWatermark: 100n };
    return task.offer(fetched, control);
  };
  return { task, log, processing, delivering, storing, backoffs, offer, setRestoring: (p: Promise<void> | null) => void (restoring = p) };
}

describe('PartitionTask: chunks from the inbox', () => {
  it('takes what the topics brought while it was busy into one chunk, by timestamp across topics and in offset order per topic', async () => {
    const t = setUp({ holdProcess: true });
    void t.offer('clicks', [[0, 10]]);
    await settle();
    expect(t.log).toEqual(['process c0']);
    // While c0 is processed: clicks, views and deletions arrive.
    void t.offer('clicks', [[1, 20], [2, 40], [3, 60]]);
    void t.offer('views', [[7, 30], [8, 50]]);
    void t.offer('deletions', [[4, 45]]);
    expect(t.task.queued).toBe(6);
    t.processing[0]!.resolve();
    await settle();
    expect(t.log.filter((l) => l.startsWith('process'))).toEqual(['process c0', 'process c1,v7,c2,d4,v8,c3']);
    t.processing[1]!.resolve();
    await settle();
    // One chunk serves every topic: each topic's last offset is marked done after its ack.
    const second = t.log.indexOf('acked c1,v7,c2,d4,v8,c3');
    expect(t.log.slice(second)).toEqual(['acked c1,v7,c2,d4,v8,c3', 'done clicks 3', 'done views 8', 'done deletions 4']);
  });

  it('adapts the chunk size: a record that comes alone goes at once, a backlog goes in chunks of at most chunkMaxRecords', async () => {
    const t = setUp({ chunkMaxRecords: 3, holdProcess: true });
    void t.offer('clicks', [[0, 1]]);
    await settle();
    expect(t.log).toEqual(['process c0']); // did not wait for a fuller chunk
    void t.offer('clicks', [[1, 2], [2, 3], [3, 4], [4, 5]]);
    void t.offer('views', [[0, 6], [1, 7], [2, 8]]);
    for (let i = 0; i < 4; i++) {
      t.processing[i]!.resolve();
      await settle();
    }
    expect(t.log.filter((l) => l.startsWith('process'))).toEqual(['process c0', 'process c1,c2,c3', 'process c4,v0,v1', 'process v2']);
  });

  it('the handler of a fetch is released once its records are in chunks, not once they are acknowledged', async () => {
    const t = setUp({ chunkMaxRecords: 2, holdDeliver: true, pipelineDepth: 1 });
    let taken = false;
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3]]).then(() => void (taken = true));
    await settle();
    expect(t.log).toEqual(['process c0,c1', 'deliver c0,c1']);
    expect(taken).toBe(false); // c2 still waits (depth 1: c0,c1 unacknowledged)
    t.delivering[0]!.resolve();
    await settle();
    expect(taken).toBe(true);
    expect(t.log).toContain('process c2');
    expect(t.log).not.toContain('done clicks 2'); // taken, not acknowledged
  });
});

describe('PartitionTask: pipelined sends', () => {
  it('processes the next chunks while earlier ones are being sent, at most pipelineDepth unacknowledged', async () => {
    const t = setUp({ chunkMaxRecords: 1, pipelineDepth: 2, holdDeliver: true });
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3], [3, 4]]);
    await settle();
    // c1 processed while c0 is in flight; c2 waits: two unacknowledged.
    const started = (prefix: string) => t.log.filter((l) => l.startsWith(prefix));
    expect(started('process')).toEqual(['process c0', 'process c1']);
    expect(started('deliver')).toEqual(['deliver c0']);
    expect(t.task.inFlight).toBe(2);
    t.delivering[0]!.resolve();
    await settle();
    // c0 acknowledged: c2 may start; c1's send starts after c0's ack.
    expect(started('process')).toEqual(['process c0', 'process c1', 'process c2']);
    expect(started('deliver')).toEqual(['deliver c0', 'deliver c1']);
    expect(t.log.indexOf('deliver c1')).toBeGreaterThan(t.log.indexOf('acked c0'));
    expect(t.task.inFlight).toBe(2);
  });

  it('sends one at a time in order, and marks an offset done only after it and everything before it is acknowledged', async () => {
    const t = setUp({ chunkMaxRecords: 1, pipelineDepth: 3, holdDeliver: true });
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3]]);
    await settle();
    expect(t.delivering).toHaveLength(1); // c1 and c2 processed, their sends wait for c0's
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual([]);
    t.delivering[0]!.resolve();
    await settle();
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual(['done clicks 0']);
    t.delivering[1]!.resolve();
    t.delivering[1]!.resolve();
    await settle();
    t.delivering[2]!.resolve();
    await settle();
    // The next send may start before the previous one's offsets are marked (their marking waits only for its store write).
    expect(t.log.filter((l) => l.startsWith('deliver'))).toEqual(['deliver c0', 'deliver c1', 'deliver c2']);
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual(['done clicks 0', 'done clicks 1', 'done clicks 2']);
  });

  it('sends the next chunk while the previous one\'s store write commits; marks offsets done only once stored, in order; a failed write resets and rewinds', async () => {
    const t = setUp({ chunkMaxRecords: 1, pipelineDepth: 3, holdStored: true });
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3]]);
    await settle();
    // All three acknowledged by the broker though no write has committed: the sends did not wait.
    expect(t.log.filter((l) => l.startsWith('acked'))).toEqual(['acked c0', 'acked c1', 'acked c2']);
    expect(t.storing).toHaveLength(3);
    t.storing[1]!.resolve(); // c1's write first: c0's is still open, so nothing is done
    await settle();
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual([]);
    t.storing[0]!.resolve();
    await settle();
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual(['done clicks 0', 'done clicks 1']);
    t.storing[2]!.reject(new Error('disk full'));
    await settle();
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual(['done clicks 0', 'done clicks 1']);
    expect(t.log.filter((l) => l === 'reset' || l.startsWith('rewind'))).toEqual(['reset', 'rewind clicks 2']);
  });

  it('waits for the partition restore before processing', async () => {
    const t = setUp();
    const restore = deferred();
    t.setRestoring(restore.promise.then(() => t.setRestoring(null)));
    void t.offer('clicks', [[0, 1]]);
    await settle();
    expect(t.log).toEqual([]);
    restore.resolve();
    await settle();
    expect(t.log[0]).toBe('process c0');
  });
});

describe('PartitionTask: failures, re-fetches, flushes, revocation', () => {
  it('a failed delivery drops the work after it unsent, resets the state once, rewinds each topic to its first record not acknowledged, then takes the records again', async () => {
    const t = setUp({ chunkMaxRecords: 2, holdDeliver: true });
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]);
    void t.offer('views', [[9, 6]]);
    await settle();
    expect(t.log.filter((l) => l.startsWith('process'))).toEqual(['process c0,c1', 'process c2,c3', 'process c4,v9']);
    t.delivering[0]!.resolve(); // c0,c1 acknowledged
    await settle();
    t.delivering[1]!.reject(new Error('NOT_ENOUGH_REPLICAS')); // c2,c3 refused
    await settle();
    expect(t.log.filter((l) => !l.startsWith('process') && !l.startsWith('done'))).toEqual(['deliver c0,c1', 'acked c0,c1', 'deliver c2,c3', 'reset', 'rewind clicks 2', 'rewind views 9']);
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual(['done clicks 1']);
    expect(t.backoffs).toEqual([100]);
    // The consumer fetches again from the rewind points (and an old copy of what was acknowledged).
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]);
    void t.offer('views', [[9, 6]]);
    await settle();
    expect(t.log.slice(10).filter((l) => l.startsWith('process'))).toEqual(['process c2,c3', 'process c4,v9']);
    expect(t.log.filter((l) => l === 'reset')).toHaveLength(1);
    t.delivering[2]!.resolve();
    t.delivering[2]!.resolve();
    await settle();
    t.delivering[3]!.resolve();
    await settle();
    // c4,v9 were never sent before the failure: each chunk acknowledged once.
    expect(t.log.filter((l) => l.startsWith('acked'))).toEqual(['acked c0,c1', 'acked c2,c3', 'acked c4,v9']);
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual(['done clicks 1', 'done clicks 3', 'done clicks 4', 'done views 9']);
  });

  it('a failed processing resets and rewinds too; the chunk before it is still sent', async () => {
    const t = setUp({ chunkMaxRecords: 1, holdDeliver: true });
    let calls = 0;
    const task = new PartitionTask<string>({
      partition: 0,
      chunkMaxRecords: 1,
      sleep: async () => undefined,
      hooks: {
        process: async (records) => {
          if (calls++ === 1) throw new Error('worker exited');
          return names(records);
        },
        deliver: async (_r, result) => void t.log.push(`deliver ${result}`),
        restoring: () => null,
        reset: () => void t.log.push('reset'),
        rewind: (topic, offset) => void t.log.push(`rewind ${topic} ${offset}`),
      },
    });
    const control: FetchControl = { isActive: () => true, heartbeat: async () => undefined, done: async (o) => void t.log.push(`done ${o}`) };
    void task.offer({ topic: 'clicks', partition: 0, records: [rec('clicks', 0, 1), rec('clicks', 1, 2)], highWatermark: 2n }, control);
    await settle();
    expect(t.log).toEqual(['deliver c0', 'done 0', 'reset', 'rewind clicks 1']);
  });

  it('skips records it took already (a re-fetch after a rebalance or a consumer restart) and fetches handed before a rewind (stale)', async () => {
    const t = setUp({ holdDeliver: true });
    void t.offer('clicks', [[0, 1], [1, 2]]);
    await settle();
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3]]); // from the last commit: 0 and 1 are in flight
    void t.offer('views', [[5, 1]], () => false); // stale: a seek is pending
    t.delivering[0]!.resolve();
    await settle();
    expect(t.log.filter((l) => l.startsWith('process'))).toEqual(['process c0,c1', 'process c2']);
  });

  it('runs a flush between chunks, never during one, and sends it after the chunks before it', async () => {
    const t = setUp({ holdProcess: true });
    void t.offer('clicks', [[0, 1]]);
    await settle();
    let made = false;
    const flushed = t.task.flush(async () => {
      made = true;
      t.log.push('flush made');
      return 'due users';
    });
    await settle();
    expect(made).toBe(false); // c0 is being processed
    t.processing[0]!.resolve();
    await flushed;
    expect(t.log.filter((l) => l.startsWith('deliver'))).toEqual(['deliver c0', 'deliver flush due users']);
    expect(t.log.indexOf('deliver flush due users')).toBeGreaterThan(t.log.indexOf('acked c0'));
  });

  it('a revoked task sends nothing more and marks nothing done; its handlers are released', async () => {
    const t = setUp({ chunkMaxRecords: 1, holdDeliver: true });
    let taken = false;
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]).then(() => void (taken = true));
    await settle();
    expect(t.log.filter((l) => l.startsWith('process'))).toEqual(['process c0', 'process c1', 'process c2']);
    const closed = t.task.close(true);
    await settle();
    expect(taken).toBe(true);
    t.delivering[0]!.resolve(); // the send in flight completes: not marked done (the next owner replays it)
    await closed;
    expect(t.log.filter((l) => !l.startsWith('process'))).toEqual(['deliver c0', 'acked c0']);
  });

  it('a shutdown (close) takes no more records but sends what it processed and marks it done', async () => {
    const t = setUp({ chunkMaxRecords: 1, holdDeliver: true });
    void t.offer('clicks', [[0, 1], [1, 2], [2, 3], [3, 4]]);
    await settle();
    const closed = t.task.close();
    for (let i = 0; i < 3; i++) {
      await settle();
      t.delivering[i]?.resolve();
    }
    await closed;
    expect(t.log.filter((l) => l.startsWith('done'))).toEqual(['done clicks 0', 'done clicks 1', 'done clicks 2']);
    expect(t.log).not.toContain('process c3');
  });
});

describe('feedTasks: the consumer into the tasks', () => {
  it('a handler returns once its task took the records, heartbeating while it waits', async () => {
    const log: string[] = [];
    let handler!: (f: FetchedRecords, c: FetchControl) => Promise<void>;
    const consumer: GroupConsumer = {
      groupId: 'g',
      run: async (h) => void (handler = h),
      seek: () => undefined,
      pause: () => undefined,
      resume: () => undefined,
      disconnect: async () => undefined,
    };
    let release!: () => void;
    const taken = new Promise<void>((r) => (release = r));
    await feedTasks({ consumer, heartbeatMs: 5, taskOf: () => ({ offer: () => taken }) });
    const control: FetchControl = { isActive: () => true, heartbeat: async () => void log.push('heartbeat'), done: async () => undefined };
    let returned = false;
    const handled = handler({ topic: 't', partition: 0, records: [rec('t', 0, 0)], highWatermark: 1n }, control).then(() => void (returned = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(returned).toBe(false);
    expect(log.length).toBeGreaterThan(0);
    release();
    await handled;
    expect(returned).toBe(true);
  });
});
