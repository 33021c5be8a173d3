/**
 * Faults on a real broker, with the processor as its own OS process:
 * (a) the broker stopped mid-stream for a few seconds and started again on the same ports and data:
 *     the processor waits, reconnects and loses nothing;
 * (b) a rebalance under load, 2 -> 1 -> 2 instances (a clean SIGTERM of one, then a new one joining):
 *     nothing lost, and every user's state holds each of its events exactly once.
 * Each runs in at_least_once and in exactly_once on every client (TEST_KAFKA_CLIENTS); exactly_once
 * must also show 0 duplicated events to its read_committed readers. The exactly_once outage run on the confluent client is skipped unless TEST_EOS_OUTAGE=1 (CI time, see it). Each test prints its figures, with the mode, on a line starting `[guarantees]`.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { KafkaClient } from '../../src/adapters/kafka/port.js';
import type { Config } from '../../src/app/config/settings.js';
import { startLocalBroker, type LocalBroker } from '../../src/devtools/local-broker.js';
import { auditLineage, reasonsLine } from '../support/audit.js';
import { collect, configOf, eventually, isolatedEnv, kafkaForTests, sleep, spawnProcessor, type SpawnedProcessor, TestResources } from '../support/harness.js';
import { clientsUnderTest } from '../support/clients.js';
import { SteadyLoad, spoilEvery, TestTraffic } from '../support/traffic.js';

const TOKEN = 'faults-token';
/** The readers' session: after the broker outage kafkajs rejoins as a new member, and reading resumes once the old one's session expired. */
const READER_SESSION_MS = 6000;

type Guarantee = 'at_least_once' | 'exactly_once';

async function setUp(kafka: KafkaClient, config: Config, users: number): Promise<{ traffic: TestTraffic; outputs: Awaited<ReturnType<typeof collect>>; inputs: Awaited<ReturnType<typeof collect>> }> {
  const traffic = await TestTraffic.create(kafka, config, { users, imagesPerCategory: 2, producer: { retries: 3 } });
  const outputs = await collect(kafka, [config.topicScored, config.topicDeadLetters], { sessionTimeoutMs: READER_SESSION_MS });
  const inputs = await collect(kafka, traffic.inputTopics, { sessionTimeoutMs: READER_SESSION_MS });
  return { traffic, outputs, inputs };
}

const runs = clientsUnderTest().flatMap((client) => (['at_least_once', 'exactly_once'] as const).map((guarantee: Guarantee) => ({ client, guarantee })));

for (const { client, guarantee } of runs) {
  describe.skipIf(client.skipped !== null)(`faults on a real broker ${client.title} PROCESSING_GUARANTEE=${guarantee}`, () => {
    const exactlyOnce = guarantee === 'exactly_once';
    const resources = new TestResources();
    afterAll(() => resources.release());

    // exactly_once: its loss (records left unprocessed in about 1 of 8 runs) is fixed (README,
    // exactly-once: a delivery queued behind a failed commit went into the next transaction). It
    // runs on kafkajs, the default client; on confluent it is opt-in for CI time (a broker of its
    // own and ~30 s): TEST_EOS_OUTAGE=1 runs it there too.
    const outageSkipped = exactlyOnce && client.kind !== 'kafkajs' && process.env['TEST_EOS_OUTAGE'] !== '1';
    it.skipIf(outageSkipped)(`(a) the broker stopped mid-stream and restarted: the processor waits, reconnects and loses nothing${outageSkipped ? ' [SKIPPED: the exactly_once outage run on confluent is opt-in for CI time; TEST_EOS_OUTAGE=1 runs it]' : ''}`, async () => {
      // A broker of its own: stopping the shared one would break the other test files.
      const broker: LocalBroker = await startLocalBroker();
      resources.onRelease(() => broker.stop());
      const kafka = kafkaForTests({ brokers: [broker.bootstrap], retry: { retries: 20, maxRetryTimeMs: 2000 } });
      const env = isolatedEnv({ ...client.env, PROCESSING_GUARANTEE: guarantee, KAFKA_BROKERS: broker.bootstrap, CHUNK_MAX_RECORDS: '50', SESSION_TIMEOUT_MS: '6000', INFERENCE_WORKERS: '1' });
      const config = configOf(env);
      const { traffic, outputs, inputs } = await setUp(kafka, config, 200);
      resources.onRelease(() => traffic.producer.disconnect(), () => outputs.stop(), () => inputs.stop());

      const p = resources.spawned(await spawnProcessor(env));
          await p.waitReady();
      const load = new SteadyLoad(traffic, spoilEvery(100)); // 1 in 100 spoilt on purpose
      // Short phases: what is asserted (nothing lost, no duplicate, the recovery) needs no long load.
      load.start(20, 100); // ~200 events/s offered
      expect(await eventually(() => outputs.records.length > 100, 30_000, 50)).toBe(true);
      await sleep(1000);

      const downMs = 8000;
      const tStop = Date.now();
      await broker.stopProcess();
      await sleep(downMs);
      await broker.startProcess();
      const tUp = Date.now();
      const outputsAtUp = outputs.records.length;
      // Recovered: scored outputs flow again (the processor reconnected, the readers too).
      expect(await eventually(() => outputs.records.length > outputsAtUp + 20, 90_000, 100)).toBe(true);
      const recoverMs = Date.now() - tUp;
      await sleep(1000);
      await load.stop();

      const audit = () => auditLineage(config, inputs.records, outputs.records);
      const drained = await eventually(() => inputs.records.length >= load.sent && audit().lost.length === 0, 60_000, 200);
      const r = audit();
      // The log tail without the client's connection errors of the outage itself.
      if (!drained || process.env['TEST_DIAG_DIR']) writeFileSync(`${process.env['TEST_DIAG_DIR'] ?? '/tmp'}/outage-${guarantee}-${client.kind}-${Date.now()}${drained ? '' : '-LOST'}.log`, `LOST ${JSON.stringify(r.lost)}\n${p.output()}`);
      if (!drained) console.log(`[guarantees] broker outage (${guarantee}, KAFKA_CLIENT=${client.kind}): not drained; the processor's log tail:\n${p.output().split('\n').filter((l) => !l.includes('ECONNREFUSED')).join('\n').slice(-12000)}`);
      console.log(
        `[guarantees] broker outage (${guarantee}, KAFKA_CLIENT=${client.kind}): down ${tUp - tStop} ms (stopped ${downMs} ms), records tried ${load.sent} (sends retried ${load.failedSends}), inputs read back ${r.inputs} (written twice by the producer's retries ${r.duplicatedInputs}), lost ${r.lost.length}, duplicated events ${r.duplicates}, dead letters ${reasonsLine(r.deadLettersByReason)} (deserved ${reasonsLine(r.deservedByReason)}), scored outputs ${r.scoredOutputs}, outputs flowing again ${recoverMs} ms after the broker was back, processor still running: ${p.proc.exitCode === null && p.proc.signalCode === null}${p.proc.exitCode !== null || p.proc.signalCode !== null ? ` (exited: ${p.proc.exitCode ?? p.proc.signalCode})` : ''}`,
      );
      expect(p.proc.exitCode, p.output().slice(-4000)).toBe(null);
      expect(r.inputs).toBeGreaterThanOrEqual(load.sent);
      expect(r.lost, p.output().slice(-8000)).toEqual([]); // the processor's log tail says where it stopped
      expect(r.undeserved).toEqual([]);
      expect(r.deadLettersByReason).toEqual(r.deservedByReason);
      expect(drained).toBe(true);
      if (exactlyOnce) expect(r.duplicates).toBe(0);
      p.proc.kill('SIGTERM');
      expect(await p.exited).toBe(0);
    });

    it('(b) rebalance under load 2 -> 1 -> 2: nothing lost, every user holds each of its events once', async () => {
      const kafka = kafkaForTests();
      // K = 32 > categories: no interest is ever dropped, so a user's event count is exact.
      const env = isolatedEnv({ ...client.env, PROCESSING_GUARANTEE: guarantee, CHUNK_MAX_RECORDS: '50', SESSION_TIMEOUT_MS: '6000', HTTP_TOKEN: TOKEN, INFERENCE_WORKERS: '1', INTERESTS_PER_USER: '32' });
      const config = configOf(env);
      const { traffic, outputs, inputs } = await setUp(kafka, config, 60);
      resources.onRelease(() => traffic.producer.disconnect(), () => outputs.stop(), () => inputs.stop());
      const partitionsOf = async (p: SpawnedProcessor): Promise<number[]> =>
        ((await (await fetch(`http://127.0.0.1:${p.port}/readyz`)).json()) as { partitions?: number[] }).partitions ?? [];
      const ready = (p: SpawnedProcessor): Promise<boolean> => fetch(`http://127.0.0.1:${p.port}/readyz`).then((r) => r.ok, () => false);

      const a = resources.spawned(await spawnProcessor(env));
          await a.waitReady();
      const b = resources.spawned(await spawnProcessor(env));
          await b.waitReady();
      expect(await eventually(async () => (await partitionsOf(a)).length > 0 && (await partitionsOf(b)).length > 0 && (await ready(a)), 30_000, 250)).toBe(true);

      const load = new SteadyLoad(traffic, spoilEvery(100)); // 1 in 100 spoilt on purpose
      load.start(30, 100); // ~300 events/s offered
      await sleep(2000); // each phase 2 s of load: every move happens with records in flight

      // 2 -> 1: B leaves cleanly; A takes every partition and restores B's users.
      b.proc.kill('SIGTERM');
      expect(await b.exited).toBe(0);
      const t1 = Date.now();
      expect(await eventually(async () => (await partitionsOf(a)).length === config.topicPartitions && (await ready(a)), 60_000, 100)).toBe(true);
      const scaleInMs = Date.now() - t1;
      await sleep(2000);

      // 1 -> 2: C joins; A gives up some partitions, C restores their users.
      const c = resources.spawned(await spawnProcessor(env));
          const t2 = Date.now();
      await c.waitReady(90_000);
      expect(await eventually(async () => (await partitionsOf(a)).length > 0 && (await partitionsOf(c)).length > 0 && (await ready(a)) && (await ready(c)), 60_000, 100)).toBe(true);
      const scaleOutMs = Date.now() - t2;
      await sleep(2000);
      await load.stop();

      const audit = () => auditLineage(config, inputs.records, outputs.records);
      expect(await eventually(() => inputs.records.length >= load.sent && audit().lost.length === 0, 90_000, 200)).toBe(true);
      const r = audit();

      // State: each user, on whichever instance owns it now, holds exactly its events that were not dead-lettered.
      const dead = new Set(r.deadLetterPositions);
      const expected = new Map<string, number>();
      for (const rec of inputs.records) {
        if (dead.has(`${rec.topic}/${rec.partition}/${rec.offset}`)) continue;
        const u = rec.key!.toString();
        expected.set(u, (expected.get(u) ?? 0) + 1);
      }
      const wrong: string[] = [];
      for (const [userId, n] of expected) {
        let held: number | undefined;
        for (const p of [a, c]) {
          const res = await fetch(`http://127.0.0.1:${p.port}/users/${encodeURIComponent(userId)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
          if (res.ok) held = ((await res.json()) as { interests: { events: number }[] }).interests.reduce((s, i) => s + i.events, 0);
        }
        if (held !== n) wrong.push(`${userId}: produced ${n}, state holds ${held ?? 'nothing'}`);
      }
      console.log(
        `[guarantees] rebalance 2->1->2 (${guarantee}, KAFKA_CLIENT=${client.kind}): records tried ${load.sent}, inputs read back ${r.inputs}, lost ${r.lost.length}, duplicated events ${r.duplicates}, dead letters ${reasonsLine(r.deadLettersByReason)} (deserved ${reasonsLine(r.deservedByReason)}), users ${expected.size} with exact event counts ${expected.size - wrong.length}, scale-in (SIGTERM) to ready ${scaleInMs} ms, scale-out (join) to ready ${scaleOutMs} ms`,
      );
      expect(r.lost).toEqual([]);
      expect(r.undeserved).toEqual([]);
      expect(r.deadLettersByReason).toEqual(r.deservedByReason);
      expect(wrong).toEqual([]);
      if (exactlyOnce) expect(r.duplicates).toBe(0);
      for (const p of [a, c]) {
        p.proc.kill('SIGTERM');
        expect(await p.exited).toBe(0);
      }
    });
  });
}
