/**
 * At-least-once on a real broker with the processor as its own OS process: SIGKILL mid-stream and
 * a restart lose nothing; SIGTERM drains, commits only what was delivered, and exits 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { codec, collect, committedOffsets, configOf, eventually, isolatedEnv, kafkaForTests, sleep, spawnProcessor, type ReadRecord, type SpawnedProcessor } from '../support/harness.js';
import { TestTraffic } from '../support/traffic.js';
import { Accepts } from '../../src/serde/record-names.js';

const SCORED = Accepts.scored;
const DEAD = Accepts.deadLetter;
const EVENT_SCHEMAS = Accepts.events;

describe('restarts on a real broker', () => {
  // Small chunks so a SIGKILL lands between a delivery and its commit more often.
  // A short session timeout so the group notices the killed instance quickly.
  const env = isolatedEnv({ CHUNK_MAX_RECORDS: '50', SESSION_TIMEOUT_MS: '6000' });
  const config = configOf(env);
  const kafka = kafkaForTests();
  let traffic: TestTraffic;
  let outputs: { records: ReadRecord[]; stop(): Promise<void> };
  let inputs: { records: ReadRecord[]; stop(): Promise<void> };
  const running: SpawnedProcessor[] = [];
  let sent = 0;

  beforeAll(async () => {
    traffic = await TestTraffic.create(kafka, config, { users: 300, imagesPerCategory: 3 });
    outputs = await collect(kafka, [config.topicScored, config.topicDeadLetters]);
    inputs = await collect(kafka, traffic.inputTopics);
  });

  afterAll(async () => {
    for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await outputs?.stop();
    await inputs?.stop();
    await traffic?.producer.disconnect();
  });

  /** Sends `batches` batches of `size` events (1 in 50 corrupt), `everyMs` apart. */
  function produce(batches: number, size: number, everyMs: number): Promise<void> {
    return traffic.produce(batches, size, everyMs, (e) => {
      const value = sent % 50 === 49 ? Buffer.from(`corrupt ${sent}`) : e.value;
      sent++;
      return value;
    });
  }

  /** Every input record, by its position, and what accounts for it. */
  async function audit(): Promise<{ inputs: number; lost: string[]; duplicates: number; committedButUnaccounted: string[]; committedRecords: bigint }> {
    await eventually(() => inputs.records.length >= sent, 30_000);
    const lineage = new Map<string, number>();
    for (const r of outputs.records.filter((x) => x.topic === config.topicScored)) {
      for (const id of codec.decode<ScoredOutput>(r.value, SCORED).value.eventIds) lineage.set(id, (lineage.get(id) ?? 0) + 1);
    }
    const dead = new Set(
      outputs.records
        .filter((x) => x.topic === config.topicDeadLetters)
        .map((x) => codec.decode<{ sourceTopic: string; sourcePartition: number; sourceOffset: number }>(x.value, DEAD).value)
        .map((d) => `${d.sourceTopic}/${d.sourcePartition}/${d.sourceOffset}`),
    );
    const accounted = (r: ReadRecord): boolean => {
      if (dead.has(`${r.topic}/${r.partition}/${r.offset}`)) return true;
      try {
        return lineage.has(codec.decode<{ eventId: string }>(r.value, EVENT_SCHEMAS).value.eventId);
      } catch {
        return false;
      }
    };
    const commitOf = await committedOffsets(kafka, config.groupId, traffic.inputTopics);
    const lost: string[] = [];
    const committedButUnaccounted: string[] = [];
    for (const r of inputs.records) {
      if (accounted(r)) continue;
      const pos = `${r.topic}/${r.partition}/${r.offset}`;
      lost.push(pos);
      if (BigInt(r.offset) < (commitOf.get(`${r.topic}/${r.partition}`) ?? -1n)) committedButUnaccounted.push(pos);
    }
    let duplicates = 0;
    for (const n of lineage.values()) duplicates += n - 1;
    const committedRecords = [...commitOf.values()].reduce((a, b) => a + (b > 0n ? b : 0n), 0n);
    return { inputs: inputs.records.length, lost, duplicates, committedButUnaccounted, committedRecords };
  }

  it('loses nothing when the processor is SIGKILLed mid-stream and restarted', async () => {
    const a = await spawnProcessor(env);
    running.push(a);
    await a.waitReady();
    const producing = produce(40, 50, 50);
    // Kill once outputs are flowing, while input keeps arriving.
    expect(await eventually(() => outputs.records.length > 200, 30_000, 20)).toBe(true);
    a.proc.kill('SIGKILL');
    expect(await a.exited).toBe(null);
    await producing;

    const b = await spawnProcessor(env);
    running.push(b);
    await b.waitReady();
    const done = await eventually(async () => (await audit()).lost.length === 0, 60_000, 250);
    const result = await audit();
    console.log(`[restart] inputs ${result.inputs}, sent ${sent}, lost ${result.lost.length}, duplicated events ${result.duplicates}`);
    expect(result.inputs).toBe(sent);
    expect(result.lost).toEqual([]);
    expect(done).toBe(true);
  });

  it('drains, commits only delivered work, and exits 0 on SIGTERM', async () => {
    const b = running[running.length - 1]!;
    const producing = produce(20, 50, 25);
    await sleep(300);
    b.proc.kill('SIGTERM');
    const code = await Promise.race([b.exited, sleep(30_000).then(() => 'timeout' as const)]);
    expect(code, b.output()).toBe(0);
    await producing;
    // Whatever it committed before exiting must already be in the outputs.
    const afterStop = await audit();
    expect(afterStop.committedRecords).toBeGreaterThan(0n);
    expect(afterStop.committedButUnaccounted).toEqual([]);

    // A new instance finishes the rest.
    const c = await spawnProcessor(env);
    running.push(c);
    await c.waitReady();
    expect(await eventually(async () => (await audit()).lost.length === 0, 60_000, 250)).toBe(true);
    c.proc.kill('SIGTERM');
    expect(await c.exited).toBe(0);
  });
});
