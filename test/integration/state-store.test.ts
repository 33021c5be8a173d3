/**
 * State beyond memory on a real broker, with the processor as its own OS process: a cache of 5
 * users for 40 (USER_CACHE_MAX_ENTRIES=5), so nearly every user is evicted many times over. Every
 * user's profile must hold all of their events (K=1: the interest's event count is the number of
 * events folded) after evictions, after a SIGKILL and a restart on the folder that survived (only
 * the changelog's tail is read), after a second instance joins (it restores its partitions into an
 * empty folder), and after the first is SIGKILLed again and the second takes everything over.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { codec, collect, configOf, eventually, isolatedEnv, kafkaForTests, sleep, spawnProcessor, type ReadRecord, type SpawnedProcessor } from '../support/harness.js';
import { TestTraffic } from '../support/traffic.js';
import { Accepts } from '../../src/serde/record-names.js';

const TOKEN = 'test-token';

describe('user state beyond the cache, across a SIGKILL, a restart and a rebalance', () => {
  const env = isolatedEnv({ CHUNK_MAX_RECORDS: '50', SESSION_TIMEOUT_MS: '6000', HTTP_TOKEN: TOKEN, INFERENCE_WORKERS: '1', LOG_LEVEL: 'info', USER_CACHE_MAX_ENTRIES: '5', INTERESTS_PER_USER: '1' });
  const config = configOf(env);
  const kafka = kafkaForTests();
  const stateA = mkdtempSync(join(tmpdir(), 'adstream-it-state-a-'));
  let traffic: TestTraffic;
  let outputs: { records: ReadRecord[]; stop(): Promise<void> };
  const running: SpawnedProcessor[] = [];
  /** Per user, the events sent; and every event id sent. */
  const perUser = new Map<string, number>();
  const sent = new Set<string>();

  beforeAll(async () => {
    traffic = await TestTraffic.create(kafka, config, { users: 40, imagesPerCategory: 2 });
    outputs = await collect(kafka, [config.topicScored]);
  });

  afterAll(async () => {
    for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await outputs?.stop();
    await traffic?.producer.disconnect();
    rmSync(stateA, { recursive: true, force: true });
  });

  async function produce(batches: number): Promise<void> {
    await traffic.produce(batches, 40, 50, (e) => {
      sent.add(e.eventId);
      perUser.set(e.userId, (perUser.get(e.userId) ?? 0) + 1);
    });
    const seen = (): Set<string> => new Set(outputs.records.flatMap((r) => codec.decode<ScoredOutput>(r.value, Accepts.scored).value.eventIds));
    expect(await eventually(() => [...sent].every((id) => seen().has(id)), 90_000, 250), 'every event in a scored output').toBe(true);
    await sleep(1500); // the last chunks' offsets committed
  }

  /** The user's events in their profile, on whichever instance holds the user's partition. */
  async function eventsOf(userId: string, among: readonly SpawnedProcessor[]): Promise<number | undefined> {
    for (const p of among) {
      const res = await fetch(`http://127.0.0.1:${p.port}/users/${encodeURIComponent(userId)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (res.ok) return ((await res.json()) as { interests: { events: number }[] }).interests.reduce((n, i) => n + i.events, 0);
    }
    return undefined;
  }

  /** Users whose profile does not hold exactly the events sent for them. */
  async function damaged(among: readonly SpawnedProcessor[]): Promise<string[]> {
    const out: string[] = [];
    for (const [userId, n] of perUser) {
      const events = await eventsOf(userId, among);
      if (events !== n) out.push(`${userId}: ${events ?? 'absent'} of ${n}`);
    }
    return out;
  }

  async function partitionsOf(p: SpawnedProcessor): Promise<number[]> {
    const res = await fetch(`http://127.0.0.1:${p.port}/readyz`);
    return ((await res.json()) as { partitions?: number[] }).partitions ?? [];
  }

  async function spawn(stateDir?: string): Promise<SpawnedProcessor> {
    const p = await spawnProcessor(env, stateDir ? { stateDir } : {});
    running.push(p);
    await p.waitReady();
    return p;
  }

  it('keeps every profile whole', async () => {
    const a = await spawn(stateA);
    await produce(10);
    expect(perUser.size).toBeGreaterThan(30);
    expect(await damaged([a]), 'profiles on A, its cache holding 5 users').toEqual([]);

    a.proc.kill('SIGKILL');
    expect(await a.exited).toBe(null);
    const a2 = await spawn(stateA);
    const restore = a2.output().match(/"msg":"restored user state"[^\n]*/)?.[0] ?? '';
    console.log(`[state-store] restart on the surviving folder: ${restore}`);
    expect(restore).toMatch(/"fromCheckpoint":\{"0":"\d+","1":"\d+","2":"\d+"\}/); // only the tail of each partition
    expect(await damaged([a2]), 'profiles after the SIGKILL and restart').toEqual([]);

    const b = await spawn(); // a fresh folder: its partitions from the whole changelog
    expect(await eventually(async () => (await partitionsOf(a2)).length > 0 && (await partitionsOf(b)).length > 0 && (await partitionsOf(a2)).length + (await partitionsOf(b)).length === config.topicPartitions, 30_000, 250)).toBe(true);
    await a2.waitReady();
    await b.waitReady();
    await produce(10);
    expect(await damaged([a2, b]), 'profiles after B joined').toEqual([]);

    a2.proc.kill('SIGKILL');
    expect(await a2.exited).toBe(null);
    expect(await eventually(async () => (await partitionsOf(b)).length === config.topicPartitions, 30_000, 250)).toBe(true);
    await b.waitReady();
    expect(await damaged([b]), 'profiles on B after A was killed').toEqual([]);
    await produce(5);
    expect(await damaged([b]), 'profiles on B, carrying on').toEqual([]);
    console.log(`[state-store] ${perUser.size} users, ${sent.size} events, cache of 5 users: every profile whole after a restart on its folder, a join and a takeover`);
  });
});
