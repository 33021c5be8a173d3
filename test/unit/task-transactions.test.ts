/**
 * TaskTransactions (src/adapters/kafka/task-transactions.ts), PROCESSING_GUARANTEE=exactly_once,
 * over a scripted transactional producer of our port: one transaction per commit interval holding
 * every delivery of it; the input offsets of its chunks sent inside it before the commit; changelog
 * records written to the store only once committed; a failed commit aborts (stored() rejects, the
 * store untouched, the next transaction on a fresh producer); a fenced producer is never inited
 * again. With a PartitionTask: an aborted transaction resets the partition and rewinds each topic
 * to the last committed offset, and offsets are marked done only after their commit; the task
 * resumes at the group's committed offsets read after its producer inited (a commit whose answer
 * was lost is not replayed; a new owner skips what the previous one committed late), and a newly
 * assigned partition's producer inits (fencing the previous owner) before its changelog is read.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fenceBeforeRestore, transactionalProducerOf } from '../../src/adapters/kafka/kafka-adapter.js';
import { PartitionTask, type TaskHooks } from '../../src/adapters/kafka/partition-task.js';
import { PartitionTasks } from '../../src/adapters/kafka/partition-tasks.js';
import { ConfigError } from '../../src/domain/errors.js';
import type { KafkaClient } from '../../src/adapters/kafka/port.js';
import { ProducerFencedError, type FetchControl, type GroupConsumer, type KafkaTransaction, type TopicRecords, type TransactionalProducer } from '../../src/adapters/kafka/port.js';
import { TaskTransactions } from '../../src/adapters/kafka/task-transactions.js';
import type { InputRecord } from '../../src/domain/events.js';
import type { ChangelogEntry } from '../../src/state/local-state-store.js';

const CHANGELOG = 'changelog';
const INTERVAL = 100;

/** A transactional producer that logs what it is asked; `failNext` makes the named call of the next transaction reject. */
function scripted(o: { after?: Promise<void> } = {}) {
  const log: string[] = [];
  // 'lost': the commit goes through on the broker but its answer is lost (the client sees `err`).
  const script: { failNext: { call: 'send' | 'commit' | 'lost'; err: Error } | null } = { failNext: null };
  /** The group's committed offsets (topic -> next offset), as the broker holds them. */
  const committed = new Map<string, bigint>();
  let producers = 0;
  let nextOffset = 0;
  const connect = async (): Promise<TransactionalProducer> => {
    const id = ++producers;
    log.push(`connect ${id}`);
    return {
      begin: async (): Promise<KafkaTransaction> => {
        log.push('begin');
        const fail = script.failNext;
        script.failNext = null;
        const maybeFail = (call: 'send' | 'commit' | 'lost'): void => {
          if (fail?.call === call) throw fail.err;
        };
        const pending = new Map<string, bigint>();
        return {
          send: async (batches: readonly TopicRecords[]) => {
            log.push(`send ${batches.map((b) => `${b.topic}:${b.records.map((r) => r.key?.toString()).join('+')}`).join(' ')}`);
            maybeFail('send');
            return batches.map((b) => ({ topic: b.topic, partition: 0, baseOffset: String((nextOffset += b.records.length) - b.records.length) }));
          },
          sendOffsets: async (consumer, offsets) => {
            log.push(`offsets ${consumer.groupId} ${offsets.map((o) => `${o.topic}/${o.partition}@${o.offset}`).join(' ')}`);
            for (const o of offsets) pending.set(o.topic, BigInt(o.offset));
          },
          commit: async () => {
            maybeFail('commit');
            for (const [t, o] of pending) committed.set(t, o);
            log.push('commit');
            maybeFail('lost');
          },
          abort: async () => {
            log.push('abort');
            if (fail?.err instanceof ProducerFencedError) throw fail.err;
          },
        };
      },
      disconnect: async () => void log.push(`disconnect ${id}`),
    };
  };
  const writes: { partition: number; entries: readonly ChangelogEntry[]; next: bigint | undefined }[] = [];
  const store = {
    write: async (partition: number, entries: readonly ChangelogEntry[], next?: bigint) => {
      log.push(`store ${entries.map((e) => e.key).join('+')}`);
      writes.push({ partition, entries, next });
    },
  };
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent } as never;
  const readCommitted = async (): Promise<ReadonlyMap<string, bigint>> => {
    log.push(`read committed ${[...committed].map(([t, o]) => `${t}@${o}`).join(' ')}`);
    return new Map(committed);
  };
  const tx = new TaskTransactions({ partition: 0, consumer: () => ({ groupId: 'g' }) as GroupConsumer, changelog: CHANGELOG, store, commitIntervalMs: INTERVAL, connect, readCommitted, log: silent, ...(o.after ? { after: o.after } : {}) });
  return { tx, log, script, writes, committed };
}

const stateOf = (key: string): TopicRecords => ({ topic: CHANGELOG, records: [{ key: Buffer.from(key), value: Buffer.from(`state of ${key}`), partition: 0 }] });
const scoredOf = (key: string): TopicRecords => ({ topic: 'scored', records: [{ key: Buffer.from(key), value: Buffer.from('x') }] });

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const never = (): never => {
  throw new Error('not called');
};

describe('TaskTransactions', () => {
  it('puts every delivery of a commit interval in one transaction and commits the chunks\' input offsets inside it', async () => {
    const { tx, log } = scripted();
    await tx.deliver(async () => void (await tx.sender.send([scoredOf('a')])), [{ topic: 'clicks', last: '4' }]);
    await tx.deliver(async () => void (await tx.sender.send([scoredOf('b')])), [{ topic: 'clicks', last: '7' }, { topic: 'views', last: '2' }]);
    expect(log).toEqual(['connect 1', 'begin', 'send scored:a', 'send scored:b']);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    // The offsets after the last record of each topic, sent before the commit, in the transaction.
    expect(log.slice(4)).toEqual(['offsets g clicks/0@8 views/0@3', 'commit']);
    await expect(tx.stored()).resolves.toBeUndefined();
    // The next delivery opens the next transaction on the same producer.
    await tx.deliver(async () => void (await tx.sender.send([scoredOf('c')])), [{ topic: 'clicks', last: '8' }]);
    expect(log.slice(6)).toEqual(['begin', 'send scored:c']);
  });

  it('writes changelog records to the store only once their transaction committed', async () => {
    const { tx, log, writes } = scripted();
    await tx.deliver(async () => void (await tx.sender.send([stateOf('u1'), scoredOf('u1')])), [{ topic: 'clicks', last: '0' }]);
    let stored = false;
    void tx.stored().then(() => (stored = true));
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(writes).toEqual([]);
    expect(stored).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(log.slice(-2)).toEqual(['commit', 'store u1']);
    expect(writes[0]).toMatchObject({ partition: 0, next: 1n });
    expect(stored).toBe(true);
  });

  it('aborts a transaction whose commit fails: stored() rejects, the store gets nothing, the next one starts on a fresh producer', async () => {
    const { tx, log, script, writes } = scripted();
    script.failNext = { call: 'commit', err: new Error('coordinator gone') };
    await tx.deliver(async () => void (await tx.sender.send([stateOf('u1')])), [{ topic: 'clicks', last: '0' }]);
    const stored = tx.stored();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    await expect(stored).rejects.toThrow('coordinator gone');
    expect(writes).toEqual([]);
    expect(log).toEqual(['connect 1', 'begin', 'send changelog:u1', 'offsets g clicks/0@1', 'abort', 'disconnect 1']);
    // Once the task read the committed offsets again (its recovery), it delivers on a fresh producer.
    await tx.committed();
    await tx.deliver(async () => void (await tx.sender.send([stateOf('u1')])), [{ topic: 'clicks', last: '0' }]);
    expect(log.slice(6)).toEqual(['connect 2', 'begin', 'read committed ', 'send changelog:u1']);
  });

  it('refuses a delivery queued behind a transaction whose commit fails, until the committed offsets are read again: no later transaction commits offsets past the aborted records', async () => {
    const { tx, log, script, committed } = scripted();
    script.failNext = { call: 'commit', err: new Error('Failed to find group coordinator') };
    await tx.deliver(async () => void (await tx.sender.send([scoredOf('a')])), [{ topic: 'clicks', last: '1' }]);
    const first = tx.stored();
    // The interval ends (the commit starts) and the next chunk's delivery comes while it runs.
    vi.advanceTimersByTime(INTERVAL);
    const queued = tx.deliver(async () => void (await tx.sender.send([scoredOf('b')])), [{ topic: 'clicks', last: '3' }]);
    await expect(first).rejects.toThrow('Failed to find group coordinator');
    await expect(queued).rejects.toThrow('Failed to find group coordinator');
    await vi.advanceTimersByTimeAsync(INTERVAL * 3);
    expect(log).not.toContain('send scored:b');
    expect(committed.get('clicks')).toBeUndefined(); // before the fix: 4, covering the aborted a's records 0 and 1
    await tx.committed();
    await tx.deliver(async () => void (await tx.sender.send([scoredOf('a')])), [{ topic: 'clicks', last: '1' }]);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(committed.get('clicks')).toBe(2n);
  });

  it('a partition\'s next transactions connect only once the previous ones (a revoked task\'s) closed, and a closed one never connects', async () => {
    const previous = scripted();
    let releaseConnect!: () => void;
    const slow = new Promise<void>((r) => (releaseConnect = r));
    // The revoked task's producer is still connecting (the broker was away) when the partition comes back.
    const stuck = new TaskTransactions({ partition: 0, consumer: () => ({ groupId: 'g' }) as GroupConsumer, changelog: CHANGELOG, store: { write: async () => undefined }, commitIntervalMs: INTERVAL, connect: async () => (await slow, previous.log.push('late connect'), { begin: async () => (previous.log.push('late begin'), never()), disconnect: async () => void previous.log.push('late disconnect') }), readCommitted: async () => new Map(), log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => undefined } as never });
    const reading = stuck.committed().catch((err: Error) => err.message);
    const next = scripted({ after: stuck.closed() });
    const fencing = next.tx.committed();
    await vi.advanceTimersByTimeAsync(10);
    expect(next.log).toEqual([]); // waits for the previous one's close
    const closing = stuck.close(true);
    releaseConnect();
    await closing;
    expect(await reading).toMatch(/closed/);
    expect(previous.log).toEqual(['late connect', 'late disconnect']); // it never began: no init that would fence the next owner
    await fencing;
    expect(next.log).toEqual(['connect 1', 'begin', 'read committed ']);
  });

  it('aborts at once when a delivery fails, and never inits again once fenced', async () => {
    const { tx, log, script } = scripted();
    script.failNext = { call: 'send', err: new ProducerFencedError('fenced') };
    await expect(tx.deliver(async () => void (await tx.sender.send([stateOf('u1')])), [{ topic: 'clicks', last: '0' }])).rejects.toThrow('fenced');
    await expect(tx.stored()).rejects.toThrow('fenced');
    await expect(tx.deliver(async () => undefined, [])).rejects.toBeInstanceOf(ProducerFencedError);
    expect(log).toEqual(['connect 1', 'begin', 'send changelog:u1', 'abort', 'disconnect 1']);
  });

  it('with a partition task: an aborted transaction resets the partition and rewinds to the last committed offset', async () => {
    const { tx, log, script } = scripted();
    // No committed hook: this is the rewind to the task's own last commit.
    const { task, offer } = taskOver(tx, log, { resumeAtCommitted: false });
    offer(0, 1);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    // Marked done only after the commit that holds its offsets.
    expect(log.slice(-4)).toEqual(['offsets g clicks/0@2', 'commit', 'store u0+u1', 'done 1']);
    script.failNext = { call: 'commit', err: new Error('commit failed') };
    offer(2, 3);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(log.slice(-4)).toEqual(['abort', 'disconnect 1', 'reset', 'rewind clicks 2']);
    expect(log).not.toContain('store u2+u3');
    expect(log).not.toContain('done 3');
    await task.close();
  });

  it('reads the committed offsets only after its producer began a transaction (initing it completes what an earlier producer left pending)', async () => {
    const { tx, log, committed } = scripted();
    committed.set('clicks', 5n);
    await expect(tx.committed()).resolves.toEqual(new Map([['clicks', 5n]]));
    expect(log).toEqual(['connect 1', 'begin', 'read committed clicks@5']);
  });

  it('callers at once (the restore\'s fence, the task\'s own read, a delivery) share one producer and one transaction', async () => {
    const { tx, log } = scripted();
    await Promise.all([tx.committed(), tx.committed(), tx.deliver(async () => void (await tx.sender.send([scoredOf('a')])), [{ topic: 'clicks', last: '0' }])]);
    expect(log.filter((l) => l.startsWith('connect') || l === 'begin')).toEqual(['connect 1', 'begin']);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(log).toContain('commit');
  });

  /** A task over `tx` whose deliveries send each record's key to the changelog, with committed() as exactly_once wires it (unless told not to). */
  function taskOver(tx: TaskTransactions, log: string[], o: { resumeAtCommitted?: boolean } = {}) {
    const control: FetchControl = { isActive: () => true, heartbeat: async () => undefined, done: async (offset) => void log.push(`done ${offset}`) };
    const task = new PartitionTask<readonly InputRecord[]>({
      partition: 0,
      chunkMaxRecords: 2,
      sleep: async () => undefined,
      hooks: {
        process: async (records) => records,
        deliver: (_records, result, ends) => tx.deliver(async () => void (await tx.sender.send([{ topic: CHANGELOG, records: result.map((r) => ({ key: r.key, value: Buffer.from('s'), partition: 0 })) }])), ends),
        stored: () => tx.stored(),
        ...(o.resumeAtCommitted === false ? {} : { committed: () => tx.committed() }),
        restoring: () => null,
        reset: () => void log.push('reset'),
        rewind: (topic, offset) => void log.push(`rewind ${topic} ${offset}`),
        closed: (dropped) => tx.close(dropped),
      },
    });
    const offer = (...offsets: number[]) =>
      void task.offer({ topic: 'clicks', partition: 0, records: offsets.map((o) => ({ topic: 'clicks', partition: 0, offset: String(o), key: Buffer.from(`u${o}`), value: null, timestamp: o })), highWatermark: BigInt(offsets.at(-1)! + 1) }, control);
    return { task, offer };
  }

  it('with a partition task: a commit that went through though its answer was lost is not replayed; the task resumes at the committed offsets', async () => {
    const { tx, log, script } = scripted();
    const { task, offer } = taskOver(tx, log);
    offer(0, 1);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(log.slice(-4)).toEqual(['offsets g clicks/0@2', 'commit', 'store u0+u1', 'done 1']);
    script.failNext = { call: 'lost', err: new Error('connection closed') };
    offer(2, 3);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    // The task rewound to 2, then learnt from the group that 4 is committed: it skips 2 and 3 and
    // restores the state again (the changelog has what that transaction wrote).
    expect(log.slice(log.indexOf('commit', log.indexOf('done 1')))).toEqual(['commit', 'abort', 'disconnect 1', 'reset', 'rewind clicks 2', 'connect 2', 'begin', 'read committed clicks@4', 'reset']);
    offer(2, 3, 4);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(log.filter((l) => l.startsWith('send'))).toEqual(['send changelog:u0+u1', 'send changelog:u2+u3', 'send changelog:u4']);
    expect(log.slice(-2)).toEqual(['store u4', 'done 4']);
    await task.close();
  });

  it('with a partition task: a new owner skips what an earlier owner committed after the offsets it fetches from were read', async () => {
    const { tx, log, committed } = scripted();
    committed.set('clicks', 3n); // the earlier owner's last transaction, committed during the rebalance
    const { task, offer } = taskOver(tx, log);
    offer(1, 2, 3, 4);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(log.slice(0, 4)).toEqual(['connect 1', 'begin', 'read committed clicks@3', 'reset']);
    expect(log.filter((l) => l.startsWith('send'))).toEqual(['send changelog:u3+u4']);
    expect(log.slice(-2)).toEqual(['store u3+u4', 'done 4']);
    await task.close();
  });
});

describe('exactly_once: the previous owner fenced before a restore', () => {
  it('a newly assigned partition gets its task at once, and its producer begins (inits) before the changelog is read', async () => {
    const { tx, log } = scripted();
    const made: number[] = [];
    const hooks: TaskHooks<null> = { process: async () => null, deliver: async () => undefined, restoring: () => null, reset: () => undefined, rewind: () => undefined };
    const tasks = new PartitionTasks<null>({ chunkMaxRecords: 1, hooksOf: (p) => (made.push(p), hooks) });
    tasks.onAssignment([0, 2]);
    expect(made).toEqual([0, 2]); // before any fetch: the restore of the assignment can fence through them
    const silent = { warn: () => undefined } as never;
    await fenceBeforeRestore(new Map([[0, tx]]), [0, 1], silent);
    log.push('read the changelog');
    expect(log).toEqual(['connect 1', 'begin', 'read committed ', 'read the changelog']);
    await tasks.close();
  });
});

describe('exactly_once and the client', () => {
  const client = (transactional: boolean): KafkaClient => ({ brokers: [], admin: async () => never(), producer: async () => never(), groupConsumer: async () => never(), readFromBeginning: async () => never(), ...(transactional ? { transactionalProducer: async () => never() } : {}) });
  const never = (): never => {
    throw new Error('not called');
  };

  it('is refused at start with a ConfigError naming PROCESSING_GUARANTEE when the client has no transactions, and taken on either client that has them', () => {
    expect(() => transactionalProducerOf({ kafkaClient: 'kafkajs' }, client(false))).toThrow(ConfigError);
    expect(() => transactionalProducerOf({ kafkaClient: 'confluent' }, client(false))).toThrow(/PROCESSING_GUARANTEE/);
    expect(typeof transactionalProducerOf({ kafkaClient: 'kafkajs' }, client(true))).toBe('function');
    expect(typeof transactionalProducerOf({ kafkaClient: 'confluent' }, client(true))).toBe('function');
  });
});
