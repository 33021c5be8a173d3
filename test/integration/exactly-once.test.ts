/**
 * PROCESSING_GUARANTEE=exactly_once on a real broker, on each client (TEST_KAFKA_CLIENTS; the
 * Confluent client's run is skipped with the reason when its optional package is missing): the
 * processor, its own OS process, is SIGKILLed under load and restarted; a read_committed observer
 * (kafkajs reads committed unless told otherwise) audits every input: in
 * exactly one scored output or dead letter, 0 lost, 0 duplicated. The at_least_once run of the
 * same scenario is restart.test.ts's SIGKILL test (on both clients), which prints its duplicate
 * count; it was here too, and gave 133 duplicated events of 1,500 (20 s of CI time).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { auditLineage, reasonsLine } from '../support/audit.js';
import { clientsUnderTest } from '../support/clients.js';
import { collect, configOf, eventually, isolatedEnv, kafkaForTests, spawnProcessor, TestResources } from '../support/harness.js';
import { spoilEvery, TestTraffic } from '../support/traffic.js';

for (const client of clientsUnderTest()) describe.skipIf(client.skipped !== null)(`exactly-once outputs on a real broker ${client.title}`, () => {
  const kafka = kafkaForTests();
  const resources = new TestResources();
  afterAll(() => resources.release());

  /** Runs the SIGKILL-and-restart scenario in `guarantee`; returns the audit. */
  async function killAndRestart(guarantee: 'exactly_once' | 'at_least_once') {
    // Small chunks and a long commit interval: the kill lands inside an open transaction often.
    const env = isolatedEnv({ ...client.env, PROCESSING_GUARANTEE: guarantee, COMMIT_INTERVAL_MS: '200', CHUNK_MAX_RECORDS: '50', SESSION_TIMEOUT_MS: '6000' });
    const config = configOf(env);
    const traffic = await TestTraffic.create(kafka, config, { users: 300, imagesPerCategory: 3 });
    resources.onRelease(() => traffic.producer.disconnect());
    const outputs = await collect(kafka, [config.topicScored, config.topicDeadLetters]);
    resources.onRelease(() => outputs.stop());
    const inputs = await collect(kafka, traffic.inputTopics);
    resources.onRelease(() => inputs.stop());
    const spoilt = spoilEvery(50);
    let sent = 0;
    const scored = (): number => outputs.records.filter((x) => x.topic === config.topicScored).length;

    const a = resources.spawned(await spawnProcessor(env));
    await a.waitReady();
    const producing = traffic.produce(30, 50, 50, (e) => {
      sent++;
      return spoilt(e);
    });
    expect(await eventually(() => scored() > 200, 30_000, 20)).toBe(true);
    a.proc.kill('SIGKILL');
    expect(await a.exited).toBe(null);
    await producing;

    const b = resources.spawned(await spawnProcessor(env));
    await b.waitReady();
    expect(await eventually(() => inputs.records.length >= sent, 30_000)).toBe(true);
    expect(await eventually(() => auditLineage(config, inputs.records, outputs.records).lost.length === 0, 60_000, 250)).toBe(true);
    const r = auditLineage(config, inputs.records, outputs.records);
    console.log(`[guarantees] ${guarantee} (KAFKA_CLIENT=${client.kind}), restart after SIGKILL: records tried ${sent}, lost ${r.lost.length}, duplicated events ${r.duplicates}, dead letters ${reasonsLine(r.deadLettersByReason)}`);
    b.proc.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    expect(r.inputs).toBe(sent);
    expect(r.undeserved).toEqual([]);
    return r;
  }

  it('exactly_once: a read_committed reader sees every input once after a SIGKILL and restart', async () => {
    const r = await killAndRestart('exactly_once');
    expect(r.lost).toEqual([]);
    expect(r.duplicates).toBe(0);
  });
});
