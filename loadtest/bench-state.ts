/**
 * State beyond memory, at scale: USERS users (K = 1, F = 128 by default) through the user state's
 * two tiers, the LRU cache at its default bounds over the local state store (LMDB, one store per
 * partition), then restored from a real changelog. Measures:
 *
 * 1. ingest: each user's first event folded as the fold does (a cache miss reads the disk, finds
 *    nothing, starts the user; applyEvent; commit; snapshot; the changelog encoding), one chunk of
 *    500 users of a partition at a time, the partitions in parallel, each chunk written to the
 *    store as its acknowledgement would (no models, no broker: the state layer alone);
 * 2. cold reads: random users (the cache holds the last 100,000 of them), each a miss read from
 *    disk, decoded and taken into memory: p50 and p99 per read (the OS page cache as it is);
 * 3. disk bytes per user (B+tree pages; and the files);
 * 4. restore from the changelog (the same states produced to a compacted topic of a real broker,
 *    the local one unless KAFKA_BROKERS is set) into an empty folder, through the processor's own
 *    PartitionState and restoreChangelog; then TAIL changes more on the changelog and the restore
 *    of the folder that survived (only the tail after its checkpoint);
 * 5. RSS, split into anonymous memory (the heap, the cache) and file pages (the store's memory map,
 *    page cache the kernel reclaims as it needs).
 *
 * Prints progress on stderr and one JSON line on stdout.
 *
 *   npm run bench:state [-- --users 10000000 --partitions 3 --dim 128 --tail 10000 --cold-reads 100000]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { restoreChangelog } from '../src/adapters/kafka/changelog-restorer.js';
import { createKafkaClient } from '../src/adapters/kafka/client.js';
import { PartitionState } from '../src/adapters/kafka/partition-state.js';
import type { KafkaClient, OutboundRecord } from '../src/adapters/kafka/port.js';
import { loadConfig } from '../src/app/config/load-config.js';
import { startLocalBroker, type LocalBroker } from '../src/devtools/local-broker.js';
import { newUserState, type UserState } from '../src/domain/user-state.js';
import { ProcessorMetrics } from '../src/metrics/processor-metrics.js';
import type { Core } from '../src/pipeline/core.js';
import { AvroCodec } from '../src/serde/avro-codec.js';
import { AppliedOffsets } from '../src/state/applied-offsets.js';
import { LocalStateStore, type ChangelogEntry } from '../src/state/local-state-store.js';
import { applyEvent, type InterestParams } from '../src/state/user-interest.js';
import { UserStateCodec } from '../src/state/user-state-codec.js';
import { cacheBounds, UserStateStore } from '../src/state/user-state-store.js';
import { createLogger, silentLogger } from '../src/util/log.js';
import { gaussian, seededRandom } from '../src/util/random.js';
import { LogLinearHistogram } from './histogram.js';

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '10000000' },
    partitions: { type: 'string', default: '3' },
    dim: { type: 'string', default: '128' },
    tail: { type: 'string', default: '10000' },
    'cold-reads': { type: 'string', default: '100000' },
    dir: { type: 'string' },
    'skip-restore': { type: 'boolean', default: false },
  },
});
const USERS = Number(args.users);
const P = Number(args.partitions);
const DIM = Number(args.dim);
const TAIL = Number(args.tail);
const COLD_READS = Number(args['cold-reads']);
const CHUNK = 500;
const SPACE = 'bench-space/concat-f128';
const T0 = Date.UTC(2026, 10, 1);
/** The cache at its defaults (USER_CACHE_MAX_ENTRIES, USER_CACHE_MAX_BYTES, USER_TTL_S). */
const defaults = loadConfig({ env: {} });
const params: InterestParams = { halfLifeMs: defaults.interestHalfLifeS * 1000, maxInterests: 1, newInterestThreshold: defaults.newInterestThreshold };

const root = args.dir ?? mkdtempSync(join(tmpdir(), 'adstream-bench-state-'));
const codec = new UserStateCodec(new AvroCodec(), { space: SPACE, dim: DIM, maxInterests: 1 });
const say = (msg: string): void => void process.stderr.write(`[bench:state] ${msg}\n`);

/** A pool of unit event vectors, drawn once: which one a user gets is seeded by the user. */
const EVENT_VECTORS = 4096;
const events = (() => {
  const normal = gaussian(seededRandom(17));
  const v = new Float32Array(EVENT_VECTORS * DIM);
  for (let r = 0; r < EVENT_VECTORS; r++) {
    let n = 0;
    for (let j = 0; j < DIM; j++) n += (v[r * DIM + j] = normal()) ** 2;
    for (let j = 0; j < DIM; j++) v[r * DIM + j]! /= Math.sqrt(n);
  }
  return v;
})();
const userId = (u: number): string => `user-${u}`;
const partitionOf = (u: number): number => Math.floor(u / CHUNK) % P;

/** A user's first event, folded as the fold does. */
function fold(s: UserState, u: number, t: number, users: UserStateStore): void {
  applyEvent(s, events, (u % EVENT_VECTORS) * DIM, 1 + (u % 4), t, params, users.vectors);
  s.latestEventTime = t;
  s.updatedAt = t;
}

function memory(): { rssMiB: number; anonMiB: number; fileMiB: number; heapMiB: number } {
  const status = Object.fromEntries(
    readFileLines('/proc/self/status')
      .map((l) => l.split(':'))
      .filter((kv) => kv.length === 2)
      .map(([k, v]) => [k!.trim(), Number.parseInt(v!.trim(), 10) / 1024]),
  );
  return { rssMiB: Math.round(status.VmRSS ?? 0), anonMiB: Math.round(status.RssAnon ?? 0), fileMiB: Math.round(status.RssFile ?? 0), heapMiB: Math.round(process.memoryUsage().heapUsed / 1048576) };
}

function readFileLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch {
    return [];
  }
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(join(e.parentPath, e.name)).blocks * 512;
  return n;
}

/** Peak RSS while `fn` runs, sampled every 200 ms. */
async function peakDuring<T>(fn: () => Promise<T>): Promise<{ value: T; peak: ReturnType<typeof memory> }> {
  let peak = memory();
  const timer = setInterval(() => {
    const m = memory();
    if (m.rssMiB > peak.rssMiB) peak = m;
  }, 200);
  try {
    const value = await fn();
    const m = memory();
    if (m.rssMiB > peak.rssMiB) peak = m;
    return { value, peak };
  } finally {
    clearInterval(timer);
  }
}

// --- 1. ingest ---
const ingestDir = join(root, 'ingest');
const local = new LocalStateStore({ dir: ingestDir, codec, space: SPACE });
const lookups = { hits: 0, misses: 0 };
const users = new UserStateStore({
  dim: DIM,
  ...cacheBounds(defaults),
  backing: local,
  onLookup: (hit) => void (hit ? lookups.hits++ : lookups.misses++),
});
say(`ingest: ${USERS.toLocaleString('en-US')} users, ${P} partitions, K=1, F=${DIM}, cache ${defaults.userCacheMaxEntries.toLocaleString('en-US')} users / ${defaults.userCacheMaxBytes / 1048576} MiB, store in ${ingestDir}`);
const chunks = Math.ceil(USERS / CHUNK);
let nextChunk = 0;
let lastReport = Date.now();
const ingest = await peakDuring(async () => {
  const t0 = performance.now();
  // One chunk of a partition at a time, the partitions in parallel (as the Kafka adapter runs them).
  await Promise.all(
    Array.from({ length: P }, async (_, p) => {
      for (let c = p; c < chunks; c += P) {
        const entries: ChangelogEntry[] = [];
        for (let u = c * CHUNK; u < Math.min(USERS, (c + 1) * CHUNK); u++) {
          const s = users.getOrCreate(userId(u), p);
          fold(s, u, T0 + u, users);
          users.commit(s);
          entries.push({ key: s.userId, value: local.encode(users.snapshot(s)) });
        }
        await local.write(p, entries); // acknowledged
        nextChunk++;
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          say(`  ${Math.min(USERS, nextChunk * CHUNK).toLocaleString('en-US')} users, ${Math.round((nextChunk * CHUNK) / ((performance.now() - t0) / 1000))}/s, RSS ${memory().rssMiB} MiB`);
        }
      }
    }),
  );
  return (performance.now() - t0) / 1000;
});
const ingestSeconds = ingest.value;
const afterIngest = memory();
say(`ingest: ${ingestSeconds.toFixed(1)} s, ${Math.round(USERS / ingestSeconds)} users/s; memory after ${JSON.stringify(afterIngest)}`);

// --- 2. cold reads ---
const rand = seededRandom(99);
const cold = new LogLinearHistogram(0.01, 10_000_000); // microseconds (the summary rounds to 0.01 of the unit)
const readsStart = memory();
const missesBefore = lookups.misses;
for (let i = 0; i < COLD_READS; i++) {
  const u = Math.floor(rand() * USERS);
  const id = userId(u);
  const t0 = performance.now();
  const s = users.getOrCreate(id, partitionOf(u));
  cold.record((performance.now() - t0) * 1000);
  if (s.interests.length !== 1) throw new Error(`${id} came back without its interest`);
}
const misses = lookups.misses - missesBefore;
const reads = cold.summary();
say(`cold reads: ${COLD_READS} (${misses} cache misses): p50 ${reads.p50.toFixed(1)} us, p99 ${reads.p99.toFixed(1)} us`);

// --- 3. disk ---
const btreeBytes = local.openPartitions().reduce((n, p) => n + local.bytes(p), 0);
const storedUsers = local.openPartitions().reduce((n, p) => n + local.users(p), 0);
if (storedUsers !== USERS) throw new Error(`the store holds ${storedUsers} users, not ${USERS}`);
await local.closeAll();
const fileBytes = folderBytes(ingestDir);
say(`disk: ${Math.round(btreeBytes / USERS)} bytes/user in B+tree pages, ${Math.round(fileBytes / USERS)} bytes/user in files`);
rmSync(ingestDir, { recursive: true, force: true });

const result: Record<string, unknown> = {
  machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  users: USERS,
  partitions: P,
  interests: 1,
  dim: DIM,
  cache_max_entries: defaults.userCacheMaxEntries,
  cache_max_bytes: defaults.userCacheMaxBytes,
  ingest_seconds: round1(ingestSeconds),
  ingest_users_per_s: Math.round(USERS / ingestSeconds),
  cold_reads: COLD_READS,
  cold_read_cache_misses: misses,
  cold_read_p50_us: round1(reads.p50),
  cold_read_p99_us: round1(reads.p99),
  cold_read_max_us: round1(reads.max),
  disk_bytes_per_user: Math.round(btreeBytes / USERS),
  disk_file_bytes_per_user: Math.round(fileBytes / USERS),
  rss_mib_after_ingest: afterIngest.rssMiB,
  rss_anon_mib_after_ingest: afterIngest.anonMiB,
  rss_file_mib_after_ingest: afterIngest.fileMiB,
  rss_peak_mib_ingest: ingest.peak.rssMiB,
  rss_anon_peak_mib_ingest: ingest.peak.anonMiB,
  heap_mib_after_ingest: afterIngest.heapMiB,
  cache_users: users.size,
  cache_bytes_counted: users.bytes,
  rss_anon_mib_after_cold_reads: memory().anonMiB,
  rss_anon_mib_before_cold_reads: readsStart.anonMiB,
};

// --- 4. restore from the changelog ---
if (!args['skip-restore']) {
  let broker: LocalBroker | undefined;
  if (!process.env.KAFKA_BROKERS) broker = await startLocalBroker();
  const brokers = (process.env.KAFKA_BROKERS ?? broker!.bootstrap).split(',');
  const kafka = createKafkaClient({ brokers, clientId: 'bench-state', logger: createLogger('warn') });
  const admin = await kafka.admin();
  const topic = `bench-state-changelog-${Date.now()}`;
  try {
    await admin.createTopics([{ topic, partitions: P, configs: { 'cleanup.policy': 'compact' } }]);
    const producer = await kafka.producer();
    // The same states again (same seeds), produced as the sink would: key the user id, on its partition.
    const scratch = new UserStateStore({ dim: DIM, maxEntries: 10, maxBytes: 1 << 20, ttlMs: 3_600_000 });
    const produce = async (from: number, to: number, t: (u: number) => number): Promise<void> => {
      const SEND = 3000;
      for (let start = from; start < to; start += SEND) {
        const records: OutboundRecord[] = [];
        for (let u = start; u < Math.min(to, start + SEND); u++) {
          const s = newUserState(userId(u), partitionOf(u));
          fold(s, u, t(u), scratch);
          records.push({ key: Buffer.from(s.userId), value: codec.encode(s), partition: s.partition });
          for (const i of s.interests) scratch.vectors.free(i.vector);
        }
        await producer.send([{ topic, records }]);
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          say(`  produced ${(start - from).toLocaleString('en-US')} records`);
        }
      }
    };
    say(`producing ${USERS.toLocaleString('en-US')} states to ${topic}`);
    const p0 = performance.now();
    await produce(0, USERS, (u) => T0 + u);
    result.produce_seconds = round1((performance.now() - p0) / 1000);

    const restoreDir = join(root, 'restored');
    const empty = await peakDuring(() => restoreOnce(kafka, topic, restoreDir));
    say(`restore into an empty folder: ${empty.value.seconds.toFixed(1)} s, ${empty.value.records} records, ${empty.value.users} users; peak ${JSON.stringify(empty.peak)}`);
    result.restore_empty_seconds = round1(empty.value.seconds);
    result.restore_empty_records = empty.value.records;
    result.restore_empty_records_per_s = Math.round(empty.value.records / empty.value.seconds);
    result.rss_peak_mib_restore = empty.peak.rssMiB;
    result.rss_anon_peak_mib_restore = empty.peak.anonMiB;

    // The folder survives; meanwhile TAIL users change (a second event each) on the changelog.
    await produce(0, TAIL, (u) => T0 + USERS + u);
    const survived = await peakDuring(() => restoreOnce(kafka, topic, restoreDir));
    say(`restore from the surviving folder: ${survived.value.seconds.toFixed(2)} s, ${survived.value.records} records`);
    result.tail_changes = TAIL;
    result.restore_surviving_seconds = round2(survived.value.seconds);
    result.restore_surviving_records = survived.value.records;
    await producer.disconnect();
    rmSync(restoreDir, { recursive: true, force: true });
  } finally {
    await admin.deleteTopics([topic]).catch(() => undefined);
    await admin.disconnect();
    await broker?.stop();
  }
}
if (!args.dir) rmSync(root, { recursive: true, force: true });
console.log(JSON.stringify(result));

/** A fresh instance's restore of every partition into `dir`, through PartitionState as on assignment. */
async function restoreOnce(kafka: KafkaClient, topic: string, dir: string): Promise<{ seconds: number; records: number; users: number }> {
  const store = new LocalStateStore({ dir, codec, space: SPACE });
  const metrics = new ProcessorMetrics({ defaultMetrics: false });
  const core = {
    users: new UserStateStore({ dim: DIM, maxEntries: defaults.userCacheMaxEntries, maxBytes: defaults.userCacheMaxBytes, ttlMs: defaults.userTtlS * 1000, backing: store }),
    applied: new AppliedOffsets(),
    local: store,
    stateCodec: codec,
    processor: { markDeleted: () => undefined },
  } as unknown as Core;
  let failed: Error | undefined;
  const ps = new PartitionState({ core, log: silentLogger, metrics, readChangelog: (o) => restoreChangelog({ client: kafka, topic, ...o }), fail: (err) => (failed = err) });
  const t0 = performance.now();
  const parts = Array.from({ length: P }, (_, p) => p);
  ps.onAssignment(parts, { [topic]: parts });
  await Promise.all(parts.map((p) => ps.restoring(p)));
  const seconds = (performance.now() - t0) / 1000;
  if (failed) throw failed;
  const records = (await metrics.restoreRecords.get()).values[0]?.value ?? 0;
  const restoredUsers = parts.reduce((n, p) => n + store.users(p), 0);
  await store.closeAll();
  return { seconds, records, users: restoredUsers };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
