import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/**
 * A partition assigner that keeps co-partitioned topics together: partition p of every input
 * topic goes to the same instance, so all of a user's events (clicks, image views, reviews, keyed
 * by user id) reach the one instance that holds that user's state. kafkajs's round-robin assigner
 * deals topic-partitions out one by one and would split them.
 *
 * Partition numbers are dealt round-robin over the members sorted by id, so the assignment is the
 * same whichever member leads the group.
 */
export const CoPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'AdstreamCoPartitioned',
  version: 1,
  async assign({ members, topics }) {
    const sorted = members.map((m) => m.memberId).sort();
    const assignment = new Map<string, Record<string, number[]>>(sorted.map((id) => [id, {}]));
    for (const topic of topics) {
      for (const { partitionId } of cluster.findTopicPartitionMetadata(topic)) {
        const owner = assignment.get(sorted[partitionId % sorted.length]!)!;
        (owner[topic] ??= []).push(partitionId);
      }
    }
    return sorted.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: assignment.get(memberId)!, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: 'AdstreamCoPartitioned', metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) };
  },
});
