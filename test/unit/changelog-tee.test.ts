/**
 * The changelog tee (src/adapters/kafka/changelog-tee.ts): what the broker acknowledged of the
 * changelog goes to the local state store, with its checkpoint; a send refused part way writes what
 * was acknowledged before the refusal; a failed send writes nothing; a send resolves at the
 * acknowledgement, and stored(partition) once its write is committed (or rejects if it failed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { teeChangelog } from '../../src/adapters/kafka/changelog-tee.js';
import { ProduceTooLargeError, type Appended, type KafkaProducer, type TopicRecords } from '../../src/adapters/kafka/port.js';
import { NONE, type UserState } from '../../src/domain/user-state.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { LocalStateStore } from '../../src/state/local-state-store.js';
import { UserStateCodec } from '../../src/state/user-state-codec.js';

const DIM = 4;
const SPACE = 'test-space/concat-f4';
const CHANGELOG = 'user-state';
const stateCodec = new UserStateCodec(new AvroCodec(), { space: SPACE, dim: DIM, maxInterests: 3 });
const root = mkdtempSync(join(tmpdir(), 'adstream-tee-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function state(userId: string, partition: number, events: number): UserState {
  return { userId, partition, interests: [{ vector: Float32Array.from([1, 0, 0, events]), strength: events, asOf: 1000, events }], latestEventTime: 1000, pendingEventIds: NONE, lastEmittedAt: 0, updatedAt: 1000, lastSegments: NONE };
}

const eventsOf = (s: UserState | undefined): number | undefined => s?.interests.reduce((n, i) => n + i.events, 0);

describe('the changelog tee', () => {
  function producer(sent: TopicRecords[][], fail = false): KafkaProducer {
    return {
      send: async (batches) => {
        if (fail) throw new Error('broker gone');
        sent.push([...batches]);
        return batches.flatMap((b): Appended[] => [...new Set(b.records.map((r) => r.partition ?? 0))].map((partition) => ({ topic: b.topic, partition, baseOffset: '10' })));
      },
      disconnect: async () => undefined,
    };
  }

  it('writes the acknowledged changelog records to the store, with the offset after the last batch as checkpoint; other topics not', async () => {
    const local = new LocalStateStore({ dir: join(root, 'tee'), codec: stateCodec, space: SPACE });
    const sent: TopicRecords[][] = [];
    const tee = teeChangelog(producer(sent), CHANGELOG, local);
    const alice = state('alice', 2, 3);
    local.changed(alice);
    await tee.send([
      { topic: CHANGELOG, records: [{ key: Buffer.from('alice'), value: local.encode(alice), partition: 2 }, { key: Buffer.from('\u0000applied/clicks'), value: Buffer.from('9'), partition: 2 }] },
      { topic: 'scored', records: [{ key: Buffer.from('bob'), value: Buffer.from('x') }] },
    ]);
    expect(sent).toHaveLength(1);
    await tee.stored(2);
    local.discardUnacknowledged(2);
    expect(eventsOf(local.load('alice', 2))).toBe(3); // on disk
    expect(local.checkpoint(2)).toBe(11n);
    expect(local.markers(2).map(([k, v]) => `${k.slice(1)}=${v}`)).toEqual(['applied/clicks=9']);
    expect(local.load('bob')).toBeUndefined();
    await local.closeAll();
  });

  it('a send refused part way (split into requests) writes what was acknowledged before the refusal, no checkpoint', async () => {
    const local = new LocalStateStore({ dir: join(root, 'tee-partial'), codec: stateCodec, space: SPACE });
    const alice = { key: Buffer.from('alice'), value: stateCodec.encode(state('alice', 0, 1)), partition: 0 };
    const bob = { key: Buffer.from('bob'), value: stateCodec.encode(state('bob', 0, 2)), partition: 0 };
    const refusing: KafkaProducer = {
      send: async () => {
        throw new ProduceTooLargeError('too large', [{ topic: CHANGELOG, records: [bob] }]);
      },
      disconnect: async () => undefined,
    };
    await expect(teeChangelog(refusing, CHANGELOG, local).send([{ topic: CHANGELOG, records: [alice, bob] }])).rejects.toThrow(ProduceTooLargeError);
    expect(eventsOf(local.load('alice', 0))).toBe(1);
    expect(local.load('bob', 0)).toBeUndefined();
    expect(local.checkpoint(0)).toBeUndefined();
    await local.closeAll();
  });

  it('a send resolves at the acknowledgement with its write started; stored(partition) waits for every write of the partition so far, and tells a failed one', async () => {
    const held: { partition: number; release: (err?: Error) => void }[] = [];
    const writer = {
      write: (partition: number) => new Promise<void>((resolve, reject) => void held.push({ partition, release: (err) => (err ? reject(err) : resolve()) })),
    };
    const tee = teeChangelog(producer([]), CHANGELOG, writer);
    const record = (partition: number) => [{ topic: CHANGELOG, records: [{ key: Buffer.from(`u${partition}`), value: Buffer.from('s'), partition }] }];
    let stored = 'pending';
    await tee.send(record(1)); // resolves though its write is held
    await tee.send(record(1));
    await tee.send(record(4));
    expect(held.map((h) => h.partition)).toEqual([1, 1, 4]);
    const p1 = tee.stored(1).then(() => (stored = 'stored'));
    held[1]!.release(); // the later write first: the earlier one still holds it
    await new Promise((r) => setImmediate(r));
    expect(stored).toBe('pending');
    held[0]!.release();
    await p1;
    expect(stored).toBe('stored');
    // A failed write rejects stored() of its partition; writes started after it are waited for afresh.
    const p4 = tee.stored(4);
    held[2]!.release(new Error('disk full'));
    await expect(p4).rejects.toThrow('disk full');
    await tee.send(record(4));
    const p4again = tee.stored(4);
    held[3]!.release();
    await expect(p4again).resolves.toBeUndefined();
  });

  it('a failed send writes nothing: the change stays in memory only', async () => {
    const local = new LocalStateStore({ dir: join(root, 'tee-fail'), codec: stateCodec, space: SPACE });
    const tee = teeChangelog(producer([], true), CHANGELOG, local);
    const alice = state('alice', 0, 3);
    local.changed(alice);
    await expect(tee.send([{ topic: CHANGELOG, records: [{ key: Buffer.from('alice'), value: local.encode(alice), partition: 0 }] }])).rejects.toThrow('broker gone');
    expect(eventsOf(local.load('alice', 0))).toBe(3); // still the unacknowledged change
    local.discardUnacknowledged(0);
    expect(local.load('alice', 0)).toBeUndefined();
    expect(local.checkpoint(0)).toBeUndefined();
    await local.closeAll();
  });
});
