/**
 * Users beyond the in-memory cache keep their state: the default world (400 users, 12,000 events)
 * replayed through the core with the local state store under a 50-user cache ends with every
 * user's interests built from the same events as with the default cache (100,000 users, nothing
 * evicted). Before the local store, an evicted user came back empty: 0 of 400 users matched.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import type { Core } from '../../src/pipeline/core.js';
import { replayWorld } from '../../loadtest/eval.js';
import { World } from '../../loadtest/world.js';
import { MODEL_DIR } from './core-driver.js';

const SLOW = 120_000;

/** Per user: the event counts of their interests, largest first; and what the two tiers did. */
async function replay(userCacheMaxEntries: number): Promise<{ counts: Map<string, number[]>; evicted: boolean; fed: number }> {
  const world = await World.fromFile('loadtest/worlds/default.json');
  const config = loadConfig({ env: {}, overrides: { modelDir: MODEL_DIR, inferenceWorkers: 1, catalogUploadIntervalMs: 0, logLevel: 'silent', userCacheMaxEntries } });
  return replayWorld(world, config, { heldOut: true }, (core: Core, _last, fed) => {
    const counts = new Map<string, number[]>();
    for (const u of world.users) {
      const s = core.users.get(u.userId);
      counts.set(u.userId, s ? s.interests.map((i) => i.events).sort((a, b) => b - a) : []);
    }
    return { counts, evicted: core.users.size < world.users.length, fed };
  });
}

describe('user state beyond memory (local state store)', () => {
  it('replaying the default world with USER_CACHE_MAX_ENTRIES=50 leaves every user the interest event counts of the default cache', async () => {
    const full = await replay(100_000);
    const small = await replay(50);
    expect(full.fed).toBe(12_000);
    expect(full.evicted).toBe(false);
    expect(small.evicted).toBe(true); // most users left memory, several times over
    const differ = [...full.counts].filter(([userId, counts]) => JSON.stringify(small.counts.get(userId)) !== JSON.stringify(counts)).map(([userId]) => userId);
    expect(differ, `users whose interests differ: ${differ.slice(0, 5).join(', ')}`).toEqual([]);
    // Every event is in some interest (none lost with an evicted user; K=3 may drop a weak interest in both runs alike).
    const total = (m: Map<string, number[]>): number => [...m.values()].flat().reduce((a, b) => a + b, 0);
    expect(total(small.counts)).toBe(total(full.counts));
  }, SLOW);
});
