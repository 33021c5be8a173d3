/**
 * The fold and emit-policy stages on their own: a user state store and hand-made fused vectors,
 * no models (the processor tests cover them wired together on real models).
 */
import { describe, expect, it } from 'vitest';
import type { ClickAction, ClickEvent, InputRecord } from '../../src/domain/events.js';
import { EmitPolicy, outputId } from '../../src/pipeline/emit-policy.js';
import { ACTION_WEIGHT, InterestFolder, type FusedEvents } from '../../src/pipeline/fold.js';
import { MODALITY_INDEX } from '../../src/domain/modalities.js';
import { UserStateStore } from '../../src/state/user-state-store.js';

const F = 4;
const T0 = Date.UTC(2026, 0, 1);
const NO_CATALOG = { current: () => ({ names: [], vectors: new Float32Array(0), dim: F }) };

function store(): UserStateStore {
  return new UserStateStore({ dim: F, maxEntries: 100, maxBytes: 1 << 20, ttlMs: 3_600_000 });
}

function folder(users: UserStateStore, applied?: bigint): InterestFolder {
  return new InterestFolder({
    users,
    interests: { halfLifeMs: 3_600_000, maxInterests: 3, newInterestThreshold: 0.5 },
    dim: F,
    modalityWeights: [1, 1, 0.5],
    centroids: NO_CATALOG,
    appliedUpTo: applied === undefined ? undefined : () => applied,
  });
}

/** Clicks (user, action) at offsets 0, 1, ..., each fused to e_0. */
function clicks(...of: [string, ClickAction][]): FusedEvents {
  const events: ClickEvent[] = of.map(([userId, action], i) => ({ kind: 'click', eventId: `e${i}`, userId, itemId: 'item', categoryId: 'toys', action, eventTime: T0 + i }));
  const sources: InputRecord[] = of.map(([userId], i) => ({ topic: 'clicks', partition: 3, offset: String(i), key: Buffer.from(userId), value: null, timestamp: T0 }));
  const vectors = new Float32Array(of.length * F);
  for (let r = 0; r < of.length; r++) vectors[r * F] = 1;
  return { events, sources, fused: of.map((_, i) => i), vectors, modality: new Uint8Array(of.length).fill(MODALITY_INDEX.click) };
}

describe('fold', () => {
  it('folds in record order, weighs by action and modality, and appends the lineage', () => {
    const users = store();
    const { states, segments } = folder(users).fold(clicks(['ann', 'VIEW'], ['ben', 'PURCHASE'], ['ann', 'CLICK']), T0);
    expect(states.map((s) => [s.userId, s.partition, s.pendingEventIds, s.latestEventTime])).toEqual([
      ['ann', 3, ['e0', 'e2'], T0 + 2],
      ['ben', 3, ['e1'], T0 + 1],
    ]);
    expect(users.get('ben')!.interests[0]!.strength).toBeCloseTo(ACTION_WEIGHT.PURCHASE * 0.5);
    expect(segments).toEqual([]); // no catalog: nothing to name interests after
  });

  it('gives a replay its lineage again without folding it twice', () => {
    const users = store();
    const { states } = folder(users, 0n).fold(clicks(['ann', 'VIEW'], ['ann', 'CLICK']), T0);
    expect(states[0]!.pendingEventIds).toEqual(['e0', 'e1']);
    expect(states[0]!.interests.reduce((n, i) => n + i.events, 0)).toBe(1);
  });

  it('skips replays of a deleted user; a later event starts the user afresh', () => {
    const users = store();
    const f = folder(users, 0n);
    f.markDeleted('ann');
    expect(f.fold(clicks(['ann', 'VIEW']), T0).states).toEqual([]);
    expect(f.skippedReplays).toBe(1);
    expect(users.get('ann')).toBeUndefined();
    const { states } = f.fold(clicks(['ann', 'VIEW'], ['ann', 'CLICK']), T0);
    expect(f.skippedReplays).toBe(2);
    expect(states.map((s) => s.pendingEventIds)).toEqual([['e1']]);
  });
});

describe('emit policy', () => {
  it('takes due users only, and gives their events back when scoring fails', () => {
    const users = store();
    const policy = new EmitPolicy({ users, emitIntervalMs: 1000, dim: F, modelVersion: 'v' });
    const { states } = folder(users).fold(clicks(['ann', 'VIEW'], ['ben', 'VIEW']), T0);
    users.get('ben')!.lastEmittedAt = T0 - 500; // emitted half an interval ago: not due
    const due = policy.due(states, T0);
    expect(due.map((s) => s.userId)).toEqual(['ann']);
    const taken = policy.take(due, T0);
    expect(taken.map((e) => [e.userId, e.eventIds, e.query.shares.length])).toEqual([['ann', ['e0'], 1]]);
    const changes = policy.settle(states, T0);
    expect(changes.map((s) => [s.userId, s.pendingEventIds, s.lastEmittedAt])).toEqual([
      ['ann', [], T0],
      ['ben', ['e1'], T0 - 500],
    ]);
    expect(policy.pendingDue(T0 + 500).map((s) => s.userId)).toEqual(['ben']);

    policy.giveBack(taken);
    expect(users.get('ann')!.pendingEventIds).toEqual(['e0']);
    expect(users.get('ann')!.lastEmittedAt).toBe(0);
  });

  it('puts the lineage and its id on the outputs', () => {
    const users = store();
    const policy = new EmitPolicy({ users, emitIntervalMs: 0, dim: F, modelVersion: 'v1' });
    const { states } = folder(users).fold(clicks(['ann', 'VIEW'], ['ann', 'CLICK']), T0);
    const [out] = policy.outputs(policy.take(states, T0), [[{ adId: 'a', score: 0.5, categoryId: 'toys' }]], T0 + 7);
    expect(out).toEqual({ outputId: outputId('ann', ['e0', 'e1']), userId: 'ann', candidates: [{ adId: 'a', score: 0.5, categoryId: 'toys' }], modelVersion: 'v1', triggerEventTime: T0 + 1, processingTime: T0 + 7, eventIds: ['e0', 'e1'] });
    expect(outputId('ann', ['e0', 'e1'])).toMatch(/^[0-9a-f]{16}$/);
    expect(outputId('ann', ['e0'])).not.toBe(outputId('ann', ['e0', 'e1']));
  });
});
