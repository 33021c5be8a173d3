import { describe, expect, it } from 'vitest';
import { DoneOffsets, type TopicPartitionOffset } from '../../src/adapters/kafka/done-offsets.js';
import { silentLogger } from '../../src/util/log.js';

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function committer(failFirst = 0) {
  const commits: TopicPartitionOffset[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let failures = failFirst;
  const done = new DoneOffsets(async (offsets) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await tick(5);
    inFlight--;
    if (failures-- > 0) throw new Error('REBALANCE_IN_PROGRESS');
    commits.push(offsets);
  }, silentLogger);
  return { done, commits, maxInFlight: () => maxInFlight };
}

describe('DoneOffsets: what a pipelined consumer marked done, committed by us', () => {
  it('commits the next offset to read, the latest per partition, one request at a time, and flushes on leaving', async () => {
    const { done, commits, maxInFlight } = committer();
    done.assigned({ clicks: [0, 1], reviews: [0] });
    done.done('clicks', 0, '4');
    done.done('clicks', 0, '9');
    done.done('reviews', 0, '2');
    await done.flush();
    expect(commits.flat()).toEqual(expect.arrayContaining([
      { topic: 'clicks', partition: 0, offset: '10' },
      { topic: 'reviews', partition: 0, offset: '3' },
    ]));
    expect(commits.flat().filter((c) => c.topic === 'clicks')).toEqual([{ topic: 'clicks', partition: 0, offset: '10' }]);
    expect(maxInFlight()).toBe(1);
  });

  it('drops offsets of partitions not assigned (marked before or after the revocation)', async () => {
    const { done, commits } = committer();
    done.assigned({ clicks: [0, 1] });
    done.done('clicks', 1, '7');
    done.assigned({ clicks: [0] }); // partition 1 revoked before its commit went out
    done.done('clicks', 1, '8');
    done.done('clicks', 0, '3');
    await done.flush();
    expect(commits.flat()).toEqual([{ topic: 'clicks', partition: 0, offset: '4' }]);
    expect(done.isOwned('clicks', 1)).toBe(false);
  });

  it('a failed commit is tried again', async () => {
    const { done, commits } = committer(1);
    done.assigned({ clicks: [0] });
    done.done('clicks', 0, '5');
    for (let i = 0; i < 40 && commits.length === 0; i++) await tick(50);
    expect(commits.flat()).toEqual([{ topic: 'clicks', partition: 0, offset: '6' }]);
  });
});
