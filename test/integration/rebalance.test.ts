/**
 * Two processor instances in one consumer group on a real broker. One is SIGKILLed; the other takes
 * its partitions, restores their users from the state changelog, and carries on: every input is
 * accounted for (no dead letter: every record is valid), and each user's outputs keep the order of
 * that user's events on each topic.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import type { EventTopicRole } from '../../src/devtools/traffic.js';
import { auditLineage } from '../support/audit.js';
import { codec, collect, configOf, eventually, isolatedEnv, kafkaForTests, sleep, spawnProcessor, type ReadRecord, type SpawnedProcessor } from '../support/harness.js';
import { clientsUnderTest } from '../support/clients.js';
import { TestTraffic } from '../support/traffic.js';
import { Accepts } from '../../src/serde/record-names.js';

const SCORED = Accepts.scored;
const TOKEN = 'test-token';

interface UserView {
  interests: { events: number; strength: number; segment: string | null }[];
}

for (const client of clientsUnderTest()) {
  describe.skipIf(client.skipped !== null)(`two instances, one killed ${client.title}`, () => {
    const env = isolatedEnv({ ...client.env, CHUNK_MAX_RECORDS: '50', SESSION_TIMEOUT_MS: '6000', HTTP_TOKEN: TOKEN, INFERENCE_WORKERS: '1', LOG_LEVEL: 'info' });
    const config = configOf(env);
    const kafka = kafkaForTests();
    let traffic: TestTraffic;
    let outputs: { records: ReadRecord[]; stop(): Promise<void> };
    let inputs: { records: ReadRecord[]; stop(): Promise<void> };
    const running: SpawnedProcessor[] = [];
    /** Per event id: its user, topic role and production sequence number. */
    const sent = new Map<string, { userId: string; role: EventTopicRole; seq: number }>();

    beforeAll(async () => {
      traffic = await TestTraffic.create(kafka, config, { users: 40, imagesPerCategory: 2 });
      outputs = await collect(kafka, [config.topicScored, config.topicDeadLetters]);
      inputs = await collect(kafka, traffic.inputTopics);
    });

    afterAll(async () => {
      for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
      await outputs?.stop();
      await inputs?.stop();
      await traffic?.producer.disconnect();
    });

    /** Sends `batches` batches of `size` events, `everyMs` apart, recording each in `sent`. */
    function produce(batches: number, size: number, everyMs: number): Promise<void> {
      return traffic.produce(batches, size, everyMs, (e) => {
        sent.set(e.eventId, { userId: e.userId, role: e.role, seq: sent.size });
      });
    }

    /** Scored outputs in the order the topic holds them (one partition per user: that user's order). */
    function scored(): ScoredOutput[] {
      return outputs.records.filter((r) => r.topic === config.topicScored).map((r) => codec.decode<ScoredOutput>(r.value, SCORED).value);
    }

    /** Every record sent read back, and each in a scored output or dead-lettered. */
    function allAccounted(): boolean {
      return inputs.records.length >= sent.size && auditLineage(config, inputs.records, outputs.records).lost.length === 0;
    }

    async function userView(p: SpawnedProcessor, userId: string): Promise<UserView | undefined> {
      const res = await fetch(`http://127.0.0.1:${p.port}/users/${encodeURIComponent(userId)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return res.ok ? ((await res.json()) as UserView) : undefined;
    }

    async function partitionsOf(p: SpawnedProcessor): Promise<number[]> {
      const res = await fetch(`http://127.0.0.1:${p.port}/readyz`);
      return ((await res.json()) as { partitions?: number[] }).partitions ?? [];
    }

    it('restores the killed instance users on the survivor and loses nothing', async () => {
      const a = await spawnProcessor(env);
      running.push(a);
      await a.waitReady();
      const b = await spawnProcessor(env);
      running.push(b);
      // Both ready means the group settled with partitions on each.
      await b.waitReady();
      expect(await eventually(async () => (await a.waitReady().then(() => true, () => false)) && (await partitionsOf(a)).length > 0 && (await partitionsOf(b)).length > 0, 30_000, 250)).toBe(true);
      const partsA = await partitionsOf(a);

      await produce(10, 40, 50);
      expect(await eventually(allAccounted, 60_000, 200)).toBe(true);
      await sleep(1500); // let the last chunks' offsets be committed, so the survivor replays nothing

      // The users A holds, and what A knows of them.
      const users = [...new Set([...sent.values()].map((e) => e.userId))];
      const onA = new Map<string, number>();
      for (const userId of users) {
        const view = await userView(a, userId);
        if (view) onA.set(userId, view.interests.reduce((n, i) => n + i.events, 0));
      }
      expect(onA.size, `A (partitions ${partsA.join(',')}) holds some users`).toBeGreaterThan(0);

      a.proc.kill('SIGKILL');
      expect(await a.exited).toBe(null);
      // B takes every partition once the group notices, restores A's users, and only then is ready.
      expect(await eventually(async () => (await partitionsOf(b)).length === config.topicPartitions, 30_000, 250)).toBe(true);
      await b.waitReady();
      expect(b.output()).toMatch(/restored user state/);
      for (const [userId, events] of onA) {
        const view = await userView(b, userId);
        expect(view, `B restored ${userId}`).toBeDefined();
        expect(view!.interests.reduce((n, i) => n + i.events, 0), `events of ${userId} after restore`).toBe(events);
      }
      console.log(`[rebalance] ${onA.size} users of A restored on B: ${b.output().match(/"msg":"restored user state"[^\n]*/g)?.join(' | ')}`);

      // And it carries on: more traffic, every input accounted for.
      await produce(10, 40, 50);
      expect(await eventually(allAccounted, 90_000, 250)).toBe(true);
      const audit = auditLineage(config, inputs.records, outputs.records);
      expect(audit.inputs).toBe(sent.size);
      expect(audit.undeserved).toEqual([]);

      // Per user and topic, the first appearance of each event in the outputs follows production order.
      const lastSeq = new Map<string, number>();
      const seen = new Set<string>();
      const outOfOrder: string[] = [];
      for (const o of scored()) {
        for (const id of o.eventIds) {
          if (seen.has(id)) continue;
          seen.add(id);
          const e = sent.get(id)!;
          const k = `${e.userId}/${e.role}`;
          if ((lastSeq.get(k) ?? -1) > e.seq) outOfOrder.push(`${k}: ${id}`);
          lastSeq.set(k, e.seq);
        }
      }
      expect(outOfOrder).toEqual([]);
    });
  });
}
