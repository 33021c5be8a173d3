// The assigner is part of the kafkajs implementation of the port, so this test speaks kafkajs's protocol.
import { AssignerProtocol } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { CoPartitionedAssigner } from '../../src/adapters/kafka/co-partitioned-assigner.js';

const TOPICS = ['clicks', 'image-views', 'reviews'];

/** The assigner only asks the cluster for partition metadata; this answers like a real one would. */
function assign(partitions: number, memberIds: string[]) {
  const cluster = { findTopicPartitionMetadata: () => Array.from({ length: partitions }, (_, partitionId) => ({ partitionId })) };
  const assigner = CoPartitionedAssigner({ cluster } as never);
  return assigner.assign({ members: memberIds.map((memberId) => ({ memberId, memberMetadata: Buffer.alloc(0) })), topics: TOPICS, userData: Buffer.alloc(0) } as never);
}

describe('CoPartitionedAssigner', () => {
  for (const [partitions, members] of [[3, 1], [3, 2], [3, 3], [6, 4], [3, 5]] as const) {
    it(`gives partition p of every topic to one member (${partitions} partitions, ${members} members)`, async () => {
      const ids = Array.from({ length: members }, (_, i) => `member-${String.fromCharCode(101 - i)}`);
      const result = await assign(partitions, ids);
      const ownerOf = new Map<string, string>();
      let assigned = 0;
      for (const { memberId, memberAssignment } of result) {
        const decoded = AssignerProtocol.MemberAssignment.decode(memberAssignment)!;
        for (const topic of TOPICS) {
          for (const p of decoded.assignment[topic] ?? []) {
            assigned++;
            const prev = ownerOf.get(`p${p}`);
            if (prev !== undefined) expect(prev, `partition ${p} of ${topic}`).toBe(memberId);
            ownerOf.set(`p${p}`, memberId);
          }
        }
      }
      // Every topic-partition assigned exactly once, spread over min(members, partitions) members.
      expect(assigned).toBe(partitions * TOPICS.length);
      expect(new Set(ownerOf.values()).size).toBe(Math.min(members, partitions));
    });
  }

  it('is the same whichever order the members come in', async () => {
    const a = await assign(6, ['x', 'y', 'z']);
    const b = await assign(6, ['z', 'x', 'y']);
    const norm = (r: typeof a) => r.map((m) => [m.memberId, AssignerProtocol.MemberAssignment.decode(m.memberAssignment)!.assignment]).sort();
    expect(norm(a)).toEqual(norm(b));
  });
});
