/**
 * Our key partitioner against kafkajs's DefaultPartitioner (imported here on purpose: it is the
 * reference a real producer uses), over many random keys and partition counts.
 */
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { keyPartition, murmur2 } from '../../src/domain/partitioning.js';
import { seededRandom } from '../../src/util/random.js';

function metadata(partitions: number): PartitionMetadata[] {
  return Array.from({ length: partitions }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
}

describe('keyPartition', () => {
  it('matches kafkajs DefaultPartitioner for random keys of every length and many partition counts', () => {
    const rand = seededRandom(42);
    const kafkajs = Partitioners.DefaultPartitioner();
    const counts = [1, 2, 3, 4, 5, 7, 8, 12, 16, 31, 32, 64, 100, 256, 1000, 10000];
    let checked = 0;
    for (let i = 0; i < 20_000; i++) {
      // Lengths 0..40 cover every remainder mod 4; bytes over the whole range (sign bits included).
      const key = Buffer.from(Array.from({ length: Math.floor(rand() * 41) }, () => Math.floor(rand() * 256)));
      const partitions = counts[i % counts.length]!;
      const expected = kafkajs({ topic: 't', partitionMetadata: metadata(partitions), message: { key, value: null } });
      expect(keyPartition(key, partitions), `key ${key.toString('hex')}, ${partitions} partitions`).toBe(expected);
      checked++;
    }
    expect(checked).toBe(20_000);
  }, 60_000); // CPU-bound (20,000 keys x 16 counts): slow on a loaded 2-core box, not a timing check

  it('matches for user-id-like string keys (UTF-8, CJK included)', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    for (let i = 0; i < 2000; i++) {
      const key = Buffer.from(i % 3 === 0 ? `user-${i}` : i % 3 === 1 ? `用户-${i}-测试` : `u${'x'.repeat(i % 13)}${i}`, 'utf8');
      for (const partitions of [3, 6, 24]) {
        expect(keyPartition(key, partitions)).toBe(kafkajs({ topic: 't', partitionMetadata: metadata(partitions), message: { key, value: null } }));
      }
    }
  });

  it("gives Kafka's known murmur2 values", () => {
    // Values from the Java client's own unit test (Utils.murmur2).
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('a-little-bit-long-string'))).toBe(-985981536);
    expect(murmur2(Buffer.from('a-little-bit-longer-string'))).toBe(-1486304829);
    expect(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'))).toBe(-58897971);
    expect(murmur2(Buffer.from([0x61, 0x62, 0x63]))).toBe(479470107);
  });
});
