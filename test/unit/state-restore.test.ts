/**
 * Restore into the local store (PartitionState over a scripted changelog, through the real
 * restoreChangelog), and the changelog tee (what the broker acknowledged goes to the store): an
 * empty store reads the whole changelog, a surviving one only the tail after its checkpoint, one
 * whose checkpoint the changelog does not have (the topic was recreated) is rebuilt; markers and
 * deleted users come back from the store; a failed send writes nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { restoreChangelog } from '../../src/adapters/kafka/changelog-restorer.js';
import { teeChangelog } from '../../src/adapters/kafka/changelog-tee.js';
import { PartitionState } from '../../src/adapters/kafka/partition-state.js';
import { ProduceTooLargeError, type Appended, type KafkaClient, type KafkaProducer, type PartitionReadOptions, type TopicRecords } from '../../src/adapters/kafka/port.js';
import type { InputRecord } from '../../src/domain/events.js';
import { NONE, type UserState } from '../../src/domain/user-state.js';
import { ProcessorMetrics } from '../../src/metrics/processor-metrics.js';
import type { Core } from '../../src/pipeline/core.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { AppliedOffsets } from '../../src/state/applied-offsets.js';
import { LocalStateStore } from '../../src/state/local-state-store.js';
import { UserStateCodec } from '../../src/state/user-state-codec.js';
import { UserStateStore } from '../../src/state/user-state-store.js';
import { silentLogger } from '../../src/util/log.js';

const DIM = 4;
const SPACE = 'test-space/concat-f4';
const CHANGELOG = 'user-state';
const stateCodec = new UserStateCodec(new AvroCodec(), { space: SPACE, dim: DIM, maxInterests: 3 });
const root = mkdtempSync(join(tmpdir(), 'adstream-restore-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function state(userId: string, partition: number, events: number): UserState {
  return { userId, partition, interests: [{ vector: Float32Array.from([1, 0, 0, events]), strength: events, asOf: 1000, events }], latestEventTime: 1000, pendingEventIds: NONE, lastEmittedAt: 0, updatedAt: 1000, lastSegments: NONE };
}

/** The changelog topic as the port serves it, from the start or from given offsets; it counts what it hands over. */
class ScriptedChangelog {
  log = new Map<number, InputRecord[]>();
  handedOver = 0;

  append(partition: number, key: string, value: Buffer | null): void {
    const records = this.log.get(partition) ?? [];
    records.push({ topic: CHANGELOG, partition, offset: String(records.length), key: Buffer.from(key), value, timestamp: 0 });
    this.log.set(partition, records);
  }

  user(s: UserState): void {
    this.append(s.partition, s.userId, stateCodec.encode(s));
  }

  readonly client = {
    admin: async () => ({
      partitionOffsets: async () => [...this.log].map(([partition, r]) => ({ partition, low: 0n, high: BigInt(r.length) })),
      disconnect: async () => undefined,
    }),
    readFromBeginning: async (o: PartitionReadOptions) => {
      const caughtUp = (async () => {
        for (const p of o.partitions ?? []) {
          const records = (this.log.get(p) ?? []).filter((r) => BigInt(r.offset) >= (o.from?.get(p) ?? 0n));
          this.handedOver += records.length;
          if (records.length > 0) await o.onRecords(records);
        }
      })();
      return { caughtUp, stop: async () => undefined };
    },
  } as unknown as KafkaClient;
}

/** An instance's state as PartitionState sees it: the LRU over a local store in `dir`. */
function instance(changelog: ScriptedChangelog, dir: string) {
  const local = new LocalStateStore({ dir, codec: stateCodec, space: SPACE });
  const users = new UserStateStore({ dim: DIM, maxEntries: 1000, maxBytes: 1 << 24, ttlMs: 3_600_000, backing: local });
  const applied = new AppliedOffsets();
  const deleted: string[] = [];
  const core = { users, applied, local, stateCodec, processor: { markDeleted: (u: string) => void deleted.push(u) } } as unknown as Core;
  const ps = new PartitionState({
    core,
    log: silentLogger,
    metrics: new ProcessorMetrics({ defaultMetrics: false }),
    readChangelog: (o) => restoreChangelog({ client: changelog.client, topic: CHANGELOG, ...o }),
    fail: (err) => {
      throw err;
    },
  });
  const assign = async (parts: number[]): Promise<void> => {
    ps.onAssignment(parts, { clicks: parts });
    await Promise.all(parts.map((p) => ps.restoring(p)));
  };
  return { ps, users, local, applied, deleted, assign };
}

const eventsOf = (s: UserState | undefined): number | undefined => s?.interests.reduce((n, i) => n + i.events, 0);

describe('restore into the local store', () => {
  it('an empty store reads the whole changelog; a surviving one reads only the tail after its checkpoint', async () => {
    const dir = join(root, 'survives');
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    changelog.user(state('alice', 0, 4)); // newer: wins
    changelog.user(state('bob', 0, 2));
    changelog.append(0, 'carol', stateCodec.encode(state('carol', 0, 1)));
    changelog.append(0, 'carol', null); // deleted
    changelog.append(0, '\u0000applied/clicks', Buffer.from('41'));

    const first = instance(changelog, dir);
    await first.assign([0]);
    expect(changelog.handedOver).toBe(6);
    expect(first.users.size).toBe(0); // into the store, not into memory: the cache fills on demand
    expect(eventsOf(first.users.getOrCreate('alice', 0))).toBe(4);
    expect(eventsOf(first.users.get('bob'))).toBe(2);
    expect(first.users.get('carol')).toBeUndefined();
    expect(first.applied.upTo('clicks', 0)).toBe(41n);
    expect(first.deleted).toEqual(['carol']);
    await first.local.closeAll(); // the process ends (SIGKILL leaves the folder just the same)

    // Meanwhile the changelog grows: bob changes, dave arrives, alice is deleted, a new marker.
    changelog.user(state('bob', 0, 3));
    changelog.user(state('dave', 0, 1));
    changelog.append(0, 'alice', null);
    changelog.append(0, '\u0000applied/clicks', Buffer.from('57'));
    changelog.handedOver = 0;

    const second = instance(changelog, dir);
    await second.assign([0]);
    expect(changelog.handedOver).toBe(4); // the tail only
    expect(eventsOf(second.users.get('bob'))).toBe(3);
    expect(eventsOf(second.users.get('dave'))).toBe(1);
    expect(second.users.get('alice')).toBeUndefined();
    expect(second.applied.upTo('clicks', 0)).toBe(57n);
    expect(second.deleted.sort()).toEqual(['alice', 'carol']); // remembered from before the checkpoint too
    await second.local.closeAll();
  });

  it('a store whose checkpoint the changelog does not have (the topic was recreated) is rebuilt from the whole changelog', async () => {
    const dir = join(root, 'recreated');
    const old = new ScriptedChangelog();
    for (let i = 0; i < 5; i++) old.user(state(`u${i}`, 1, 1));
    const first = instance(old, dir);
    await first.assign([1]);
    await first.local.closeAll();

    const fresh = new ScriptedChangelog(); // the same topic name, created again: two records
    fresh.user(state('u0', 1, 7));
    fresh.user(state('x', 1, 2));
    const second = instance(fresh, dir);
    await second.assign([1]);
    expect(fresh.handedOver).toBe(2);
    expect(eventsOf(second.users.get('u0'))).toBe(7);
    expect(second.users.get('u3')).toBeUndefined(); // not on the new changelog: gone with the old store
    expect(second.local.users(1)).toBe(2);
    await second.local.closeAll();
  });

  it('revocation drops memory and closes the partition\'s store; its folder is read from the checkpoint when it comes back', async () => {
    const dir = join(root, 'revoked');
    const changelog = new ScriptedChangelog();
    changelog.user(state('alice', 0, 1));
    changelog.user(state('bob', 1, 1));
    const a = instance(changelog, dir);
    await a.assign([0, 1]);
    a.users.getOrCreate('bob', 1);
    await a.assign([0]);
    expect(a.local.openPartitions()).toEqual([0]);
    expect(a.users.size).toBe(0);
    changelog.user(state('bob', 1, 5)); // written by the new owner meanwhile
    changelog.handedOver = 0;
    await a.assign([0, 1]);
    expect(changelog.handedOver).toBe(1);
    expect(eventsOf(a.users.get('bob'))).toBe(5);
    await a.local.closeAll();
  });
});

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
