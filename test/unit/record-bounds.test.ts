/**
 * The start-time check of the largest records: computed by the codecs (never smaller than a real
 * record of the same settings), refused with the settings and the topic's limit named when one
 * cannot fit; and the pending event ids that bound a user state's record.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/domain/errors.js';
import type { UserState } from '../../src/domain/user-state.js';
import { ProduceLimits, recordBytes } from '../../src/adapters/kafka/produce-limits.js';
import { checkLargestRecords, largestRecords } from '../../src/adapters/kafka/record-bounds.js';
import { OutputEncoder } from '../../src/pipeline/encode.js';
import { EmitPolicy } from '../../src/pipeline/emit-policy.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { MAX_SEGMENTS } from '../../src/state/segments.js';
import { MAX_PENDING_EVENT_IDS, UserStateCodec } from '../../src/state/user-state-codec.js';
import type { UserStateStore } from '../../src/state/user-state-store.js';

const avro = new AvroCodec();
const topics = { scored: 'scored', deadLetters: 'dead', segments: 'segments', changelog: 'user-state', trainingExamples: 'training-examples' };
const limits = (changelog: number, others = 1_048_588) =>
  new ProduceLimits({ topics: new Map([['user-state', changelog], ['scored', others], ['segments', others], ['dead', others]]), otherTopics: others, request: Math.max(changelog, others), source: 'cluster' });

function sources(o: { interestsPerUser: number; fusedDim: number; topK?: number; emitIntervalMs?: number }) {
  const settings = { topK: 10, emitIntervalMs: 0, ...o };
  return {
    stateCodec: new UserStateCodec(avro, { space: 'default-v1-43f083bf6941/concat-f512', dim: o.fusedDim, maxInterests: o.interestsPerUser }),
    encoder: new OutputEncoder(avro, 65536),
    modelVersion: 'default-v1-43f083bf6941/concat-f512',
    topics,
    settings,
  };
}

/** A user state as the processor writes it: K interests, ids of 128 characters, pending ids. */
function realState(k: number, dim: number, pending: number): UserState {
  const id = (i: number) => `é${String(i).padStart(127, 'x')}`;
  return {
    userId: id(0),
    partition: 2,
    interests: Array.from({ length: k }, (_, i) => ({ vector: Float32Array.from({ length: dim }, (_, j) => Math.sin(i + j)), strength: 3.5, asOf: Date.now(), events: 12345 })),
    latestEventTime: Date.now(),
    pendingEventIds: Array.from({ length: pending }, (_, i) => id(i)),
    lastEmittedAt: Date.now(),
    updatedAt: Date.now(),
    lastSegments: Array.from({ length: MAX_SEGMENTS }, (_, i) => ({ name: id(i), weight: 0.2 })),
  };
}

describe('largest records', () => {
  it('the largest user state is at least as large as a real one of the same settings, and grows with K x F', () => {
    const s = sources({ interestsPerUser: 8, fusedDim: 512, emitIntervalMs: 1000 });
    const [largest] = largestRecords(s);
    const real = s.stateCodec.encode(realState(8, 512, MAX_PENDING_EVENT_IDS - 1));
    expect(largest!.record.value!.length).toBeGreaterThanOrEqual(real.length);
    expect(largest!.record.value!.length).toBeGreaterThan(8 * 512 * 4 + (MAX_PENDING_EVENT_IDS - 1) * 128);
    const [withoutPending] = largestRecords(sources({ interestsPerUser: 8, fusedDim: 512, emitIntervalMs: 0 }));
    expect(withoutPending!.record.value!.length).toBeLessThan(8 * 512 * 4 + 10_000);
  });

  it('the largest scored output grows with TOP_K', () => {
    const small = largestRecords(sources({ interestsPerUser: 1, fusedDim: 8, topK: 10 }))[1]!;
    const large = largestRecords(sources({ interestsPerUser: 1, fusedDim: 8, topK: 1000 }))[1]!;
    expect(recordBytes(large.record)).toBeGreaterThan(1000 * 2 * 128);
    expect(recordBytes(large.record)).toBeGreaterThan(recordBytes(small.record) * 50);
  });

  it('refuses a state that cannot fit the changelog, naming the settings and the limit', () => {
    const records = largestRecords(sources({ interestsPerUser: 8, fusedDim: 512 }));
    let err: unknown;
    try {
      checkLargestRecords(limits(16_384), records);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).setting).toBe('INTERESTS_PER_USER');
    const m = (err as Error).message;
    expect(m).toContain('INTERESTS_PER_USER=8');
    expect(m).toContain('FUSED_DIM=512');
    expect(m).toContain('16384 bytes (max.message.bytes of topic user-state)');
    expect(m).toMatch(/lower INTERESTS_PER_USER or FUSED_DIM, or raise max.message.bytes of topic user-state/);
  });

  it('refuses a scored output that cannot fit, naming TOP_K', () => {
    const records = largestRecords(sources({ interestsPerUser: 1, fusedDim: 8, topK: 1000 }));
    expect(() => checkLargestRecords(limits(1_048_588, 200_000), records)).toThrow(/TOP_K=1000.*max.message.bytes of topic scored/);
  });

  it('accepts settings whose records fit', () => {
    expect(() => checkLargestRecords(limits(1_048_588), largestRecords(sources({ interestsPerUser: 32, fusedDim: 4096, topK: 1000, emitIntervalMs: 60_000 })))).not.toThrow();
  });
});

describe('pending event ids', () => {
  const policy = new EmitPolicy({ users: {} as UserStateStore, emitIntervalMs: 60_000, dim: 8, modelVersion: 'm' });
  const user = (pending: number): UserState => ({ ...realState(0, 8, 0), pendingEventIds: Array.from({ length: pending }, (_, i) => `e${i}`), lastEmittedAt: 1000 });

  it('a user with MAX_PENDING_EVENT_IDS events waiting is due before its interval passed', () => {
    expect(policy.due([user(MAX_PENDING_EVENT_IDS - 1)], 2000)).toEqual([]);
    expect(policy.due([user(MAX_PENDING_EVENT_IDS)], 2000)).toHaveLength(1);
  });
});
