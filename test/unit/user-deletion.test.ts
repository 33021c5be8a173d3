/**
 * User deletion in the core, with no broker: a deletion request removes the user's state (pending
 * output included) and comes back as a deletion for the transport to tombstone; replays of events
 * delivered before it do not bring the user back; a later event starts a fresh user.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CoreDriver, testConfig } from './core-driver.js';

const driver = new CoreDriver();
afterAll(() => driver.close());

// The first test starts a core (models, worker threads): on a loaded machine that alone can take seconds.
describe('user deletion in the core', { timeout: 60_000 }, () => {
  it('removes the user state and returns a deletion for the tombstones', async () => {
    const { core, rec, config } = await driver.coreWithCatalog();
    const first = await core.processor.process([rec.click('alice', 'shoes'), rec.click('alice', 'shoes', { action: 'PURCHASE' }), rec.click('bob', 'phones')]);
    expect(first.scored.map((o) => o.userId).sort()).toEqual(['alice', 'bob']);
    expect(core.users.get('alice')).toBeDefined();

    const del = rec.deletion('alice', { requestId: 'gdpr-1' });
    const r = await core.processor.process([del]);
    expect(r.deadLetters).toEqual([]);
    expect(r.scored).toEqual([]);
    expect(r.stateChanges).toEqual([]);
    expect(r.deletions).toHaveLength(1);
    expect(r.deletions[0]).toMatchObject({ userId: 'alice', requestId: 'gdpr-1', partition: 0, held: true, discardedEventIds: [], source: { topic: config.topicUserDeletions, offset: del.offset } });
    expect(core.users.get('alice')).toBeUndefined();
    expect(core.users.get('bob')).toBeDefined();
    expect([...core.users.values()].map((s) => s.userId)).toEqual(['bob']);

    // Deleting an unknown user (or again) is fine: the tombstones still go out (another instance, or the changelog, may hold them).
    const again = await core.processor.process([rec.deletion('alice'), rec.deletion('nobody')]);
    expect(again.deletions.map((d) => [d.userId, d.held])).toEqual([['alice', false], ['nobody', false]]);
  });

  it('dead-letters malformed deletion requests', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    await core.processor.process([rec.click('carol', 'garden')]);
    const r = await core.processor.process([
      rec.deletion('carol', { key: 'mallory' }),
      rec.deletion('carol', { key: null }),
      rec.raw(rec.deletion('x').topic, 'carol', Buffer.from('{"userId":"carol"}')),
      rec.raw(rec.deletion('x').topic, 'carol', null),
      rec.raw(rec.deletion('x').topic, 'carol', rec.click('carol', 'garden').value),
    ]);
    expect(r.deletions.filter((d) => d.userId === 'carol')).toEqual([]);
    expect(r.deadLetters.map((d) => d.reason)).toEqual(['KEY_MISMATCH', 'KEY_MISMATCH', 'BAD_FRAMING', 'EMPTY_VALUE', 'WRONG_SCHEMA']);
    expect(core.users.get('carol')).toBeDefined();
  });

  it('drops pending rate-limited output with the user and accounts for it in the deletion', async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ emitIntervalMs: 60_000 }));
    await core.processor.process([rec.click('dave', 'shoes', { eventId: 'd1' })]); // first output goes out at once
    const waiting = await core.processor.process([rec.click('dave', 'shoes', { eventId: 'd2' })]);
    expect(waiting.scored).toEqual([]);
    expect(core.users.get('dave')!.pendingEventIds).toEqual(['d2']);
    const r = await core.processor.process([rec.deletion('dave')]);
    expect(r.deletions[0]!.discardedEventIds).toEqual(['d2']);
    driver.now += 120_000;
    const flushed = await core.processor.flushDue();
    expect(flushed.scored.map((o) => o.userId)).not.toContain('dave');
    driver.now -= 120_000;
  });

  it('does not resurrect a deleted user from a replay of older events; a new event starts a fresh user', async () => {
    const { core, rec, config } = await driver.coreWithCatalog();
    const e1 = rec.click('erin', 'shoes', { eventId: 'e1' });
    const e2 = rec.click('erin', 'shoes', { eventId: 'e2' });
    await core.processor.process([e1, e2]);
    // The changelog marker says both were delivered (as after a crash that followed the deletion).
    driver.applied.mark(config.topicClicks, 0, BigInt(e2.offset));
    await core.processor.process([rec.deletion('erin')]);

    const replay = await core.processor.process([e1, e2]);
    expect(replay.scored).toEqual([]);
    expect(replay.stateChanges).toEqual([]);
    expect(core.users.get('erin')).toBeUndefined();
    expect(core.processor.skippedReplays).toBe(2);

    // A tombstone met on restore has the same effect in a fresh core.
    const fresh = await driver.core();
    fresh.processor.markDeleted('erin');
    expect((await fresh.processor.process([e1])).stateChanges).toEqual([]);

    const later = await core.processor.process([rec.click('erin', 'phones', { eventId: 'e3' })]);
    expect(later.scored.map((o) => [o.userId, o.eventIds])).toEqual([['erin', ['e3']]]);
    const s = core.users.get('erin')!;
    expect(s.interests.reduce((n, i) => n + i.events, 0)).toBe(1);
    driver.applied.retainPartitions(new Set());
  });

  it('handles events and deletions mixed in one call in record order', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const r = await core.processor.process([rec.click('finn', 'shoes', { eventId: 'f1' }), rec.deletion('finn'), rec.click('finn', 'garden', { eventId: 'f2' })]);
    expect(r.scored.map((o) => o.eventIds)).toEqual([['f1'], ['f2']]);
    expect(r.deletions.map((d) => d.userId)).toEqual(['finn']);
    expect(core.users.get('finn')!.interests.reduce((n, i) => n + i.events, 0)).toBe(1);
  });
});
