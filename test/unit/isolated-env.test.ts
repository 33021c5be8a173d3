/**
 * The integration tests and the benchmark run processors side by side on one broker: each must get
 * every topic of its own (a shared one, as the deletions topic was, lets one run read another's records).
 */
import { describe, expect, it } from 'vitest';
import { isolatedEnv } from '../../loadtest/spawn-processor.js';
import { SETTINGS } from '../../src/app/config/settings.js';

const topicVariables = Object.values(SETTINGS)
  .map((s) => s.env)
  .filter((env) => env.startsWith('TOPIC_') && env !== 'TOPIC_PARTITIONS' && env !== 'TOPIC_REPLICATION');

describe('isolatedEnv', () => {
  it('names every topic setting, and two environments share no topic and no group', () => {
    expect(topicVariables).toContain('TOPIC_USER_DELETIONS');
    const a = isolatedEnv('localhost:9092', 'it');
    const b = isolatedEnv('localhost:9092', 'it');
    for (const v of topicVariables) {
      expect(a[v], v).toBeDefined();
      expect(a[v]).not.toBe(b[v]);
    }
    expect(new Set(topicVariables.map((v) => a[v])).size).toBe(topicVariables.length);
    expect(a.GROUP_ID).not.toBe(b.GROUP_ID);
  });
});
