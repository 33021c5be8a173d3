/**
 * At-least-once on a real broker with the processor as its own OS process: SIGKILL mid-stream and
 * a restart lose nothing; SIGTERM drains, commits only what was delivered, and exits 0. Each test
 * has topics and a group of its own (nothing carries over from the other), reads every input back,
 * and audits it: in a scored output, or dead-lettered with the reason it deserved (1 in 50 records
 * is spoilt on purpose; no valid record may be dead-lettered).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { auditLineage, reasonsLine, type AuditResult } from '../support/audit.js';
import { collect, committedOffsets, configOf, eventually, isolatedEnv, kafkaForTests, sleep, spawnProcessor, type ReadRecord, TestResources } from '../support/harness.js';
import { clientsUnderTest } from '../support/clients.js';
import { spoilEvery, TestTraffic } from '../support/traffic.js';

interface Run {
  readonly env: Record<string, string>;
  /** Sends `batches` batches of `size` events (1 in 50 spoilt), `everyMs` apart. */
  produce(batches: number, size: number, everyMs: number): Promise<void>;
  /** Records sent so far. */
  sent(): number;
  /** The lineage audit, plus inputs at or below a committed offset that nothing accounts for. */
  audit(): Promise<AuditResult & { committedButUnaccounted: string[]; committedRecords: bigint }>;
  /** Waits until every record sent was read back from the input topics. */
  allReadBack(): Promise<boolean>;
  /** Scored outputs read so far. */
  scoredOutputs(): number;
}

for (const client of clientsUnderTest()) {
  describe.skipIf(client.skipped !== null)(`restarts on a real broker ${client.title}`, () => {
    const kafka = kafkaForTests();
    const resources = new TestResources();
    afterAll(() => resources.release());

    async function setUp(): Promise<Run> {
      // Small chunks so a SIGKILL lands between a delivery and its commit more often.
      // A short session timeout so the group notices the killed instance quickly.
      const env = isolatedEnv({ ...client.env, CHUNK_MAX_RECORDS: '50', SESSION_TIMEOUT_MS: '6000' });
      const config = configOf(env);
      const traffic = await TestTraffic.create(kafka, config, { users: 300, imagesPerCategory: 3 });
      resources.onRelease(() => traffic.producer.disconnect());
      const outputs = await collect(kafka, [config.topicScored, config.topicDeadLetters]);
      resources.onRelease(() => outputs.stop());
      const inputs: { records: ReadRecord[]; stop(): Promise<void> } = await collect(kafka, traffic.inputTopics);
      resources.onRelease(() => inputs.stop());
      const spoilt = spoilEvery(50);
      let sent = 0;
      return {
        env,
        sent: () => sent,
        produce: (batches, size, everyMs) =>
          traffic.produce(batches, size, everyMs, (e) => {
            sent++;
            return spoilt(e);
          }),
        allReadBack: () => eventually(() => inputs.records.length >= sent, 30_000),
        scoredOutputs: () => outputs.records.filter((x) => x.topic === config.topicScored).length,
        async audit() {
          const commitOf = await committedOffsets(kafka, config.groupId, traffic.inputTopics);
          const r = auditLineage(config, inputs.records, outputs.records);
          const lost = new Set(r.lost);
          const committedButUnaccounted = inputs.records
            .filter((x) => lost.has(`${x.topic}/${x.partition}/${x.offset}`) && BigInt(x.offset) < (commitOf.get(`${x.topic}/${x.partition}`) ?? -1n))
            .map((x) => `${x.topic}/${x.partition}/${x.offset}`);
          const committedRecords = [...commitOf.values()].reduce((a, b) => a + (b > 0n ? b : 0n), 0n);
          return { ...r, committedButUnaccounted, committedRecords };
        },
      };
    }

    it('loses nothing when the processor is SIGKILLed mid-stream and restarted', async () => {
      const run = await setUp();
      const a = resources.spawned(await spawnProcessor(run.env));
          await a.waitReady();
      const producing = run.produce(40, 50, 50);
      // Kill once outputs are flowing, while input keeps arriving.
      expect(await eventually(() => run.scoredOutputs() > 200, 30_000, 20)).toBe(true);
      a.proc.kill('SIGKILL');
      expect(await a.exited).toBe(null);
      await producing;

      const b = resources.spawned(await spawnProcessor(run.env));
          await b.waitReady();
      expect(await run.allReadBack()).toBe(true);
      const done = await eventually(async () => (await run.audit()).lost.length === 0, 60_000, 250);
      const r = await run.audit();
      console.log(`[guarantees] restart after SIGKILL: records tried ${run.sent()}, inputs read back ${r.inputs}, lost ${r.lost.length}, duplicated events ${r.duplicates}, dead letters ${reasonsLine(r.deadLettersByReason)} (deserved ${reasonsLine(r.deservedByReason)})`);
      expect(r.inputs).toBe(run.sent());
      expect(r.lost).toEqual([]);
      expect(r.undeserved).toEqual([]);
      expect(r.deadLettersByReason).toEqual(r.deservedByReason);
      expect(done).toBe(true);
      b.proc.kill('SIGTERM');
      expect(await b.exited).toBe(0);
    });

    it('drains, commits only delivered work, and exits 0 on SIGTERM', async () => {
      const run = await setUp();
      const a = resources.spawned(await spawnProcessor(run.env));
          await a.waitReady();
      const producing = run.produce(60, 50, 50);
      // Stop it mid-stream, once it has delivered something.
      expect(await eventually(() => run.scoredOutputs() > 50, 30_000, 20)).toBe(true);
      a.proc.kill('SIGTERM');
      const code = await Promise.race([a.exited, sleep(30_000).then(() => 'timeout' as const)]);
      expect(code, a.output()).toBe(0);
      await producing;
      expect(await run.allReadBack()).toBe(true);
      // Whatever it committed before exiting must already be in the outputs.
      const afterStop = await run.audit();
      expect(afterStop.committedRecords).toBeGreaterThan(0n);
      expect(afterStop.committedButUnaccounted).toEqual([]);
      expect(afterStop.lost.length, 'records sent after the stop wait for the next instance').toBeGreaterThan(0);

      // A new instance finishes the rest.
      const b = resources.spawned(await spawnProcessor(run.env));
          await b.waitReady();
      expect(await eventually(async () => (await run.audit()).lost.length === 0, 60_000, 250)).toBe(true);
      const r = await run.audit();
      console.log(`[guarantees] SIGTERM drain: records tried ${run.sent()}, committed before the exit ${afterStop.committedRecords}, left for the next instance ${afterStop.lost.length}, lost ${r.lost.length}, duplicated events ${r.duplicates}, dead letters ${reasonsLine(r.deadLettersByReason)}`);
      expect(r.inputs).toBe(run.sent());
      expect(r.undeserved).toEqual([]);
      expect(r.deadLettersByReason).toEqual(r.deservedByReason);
      b.proc.kill('SIGTERM');
      expect(await b.exited).toBe(0);
    });
  });
}
