/**
 * The changelog's share of the hot path, alone: every user a chunk touches is snapshotted
 * (UserStateStore.snapshot) and encoded for the changelog (UserStateCodec.encode). USERS users of
 * K interests of F floats, ROUNDS rounds after a warm-up; prints µs per user and the GC time
 * (perf_hooks 'gc' entries) as one JSON line. No broker, no models.
 *
 *   npx tsx loadtest/bench-snapshot.ts [--users 400] [--interests 3] [--dim 128] [--rounds 2000]
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { AvroCodec } from '../src/serde/avro-codec.js';
import { applyEvent } from '../src/state/user-interest.js';
import { UserStateCodec } from '../src/state/user-state-codec.js';
import { UserStateStore } from '../src/state/user-state-store.js';
import type { UserState } from '../src/domain/user-state.js';
import { seededRandom } from '../src/util/random.js';

const { values: args } = parseArgs({
  options: { users: { type: 'string', default: '400' }, interests: { type: 'string', default: '3' }, dim: { type: 'string', default: '128' }, rounds: { type: 'string', default: '2000' } },
});
const USERS = Number(args.users);
const K = Number(args.interests);
const F = Number(args.dim);
const ROUNDS = Number(args.rounds);

const users = new UserStateStore({ dim: F, maxEntries: USERS * 2, maxBytes: 2 ** 40, ttlMs: 2 ** 40 });
const codec = new UserStateCodec(new AvroCodec(), { space: 'bench', dim: F, maxInterests: K });
const rand = seededRandom(7);
const states: UserState[] = [];
for (let u = 0; u < USERS; u++) {
  const s = users.getOrCreate(`user-${u}`, 0);
  // Far-apart events (threshold above any cosine): each starts an interest of its own.
  for (let k = 0; k < K; k++) applyEvent(s, Float32Array.from({ length: F }, () => rand() - 0.5), 0, 1, 1000 + k, { halfLifeMs: 3_600_000, maxInterests: K, newInterestThreshold: 1.01 }, users.vectors);
  s.pendingEventIds = ['e1', 'e2', 'e3'];
  users.commit(s);
  states.push(s);
}
const round = (): number => {
  let bytes = 0;
  for (const s of states) bytes += codec.encode(users.snapshot(s)).length;
  return bytes;
};
let gcMs = 0;
new PerformanceObserver((l) => l.getEntries().forEach((e) => (gcMs += e.duration))).observe({ entryTypes: ['gc'] });
for (let i = 0; i < Math.max(1, ROUNDS / 10); i++) round();
await new Promise((r) => setTimeout(r, 50));
gcMs = 0;
const t0 = performance.now();
let bytes = 0;
for (let i = 0; i < ROUNDS; i++) bytes += round();
const ms = performance.now() - t0;
await new Promise((r) => setTimeout(r, 50)); // the last GC entries
console.log(JSON.stringify({ users: USERS, interests: K, dim: F, rounds: ROUNDS, us_per_user: Math.round((ms * 1000 * 1000) / (ROUNDS * USERS)) / 1000, gc_ms: Math.round(gcMs), total_ms: Math.round(ms), bytes_per_record: bytes / (ROUNDS * USERS) }));
