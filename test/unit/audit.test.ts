/**
 * The integration tests' lineage audit (test/support/audit.ts): a duplicate is an appearance of an
 * event id in scored outputs beyond the input records that carry it, so an input the test's
 * producer wrote twice (a retry after a broker outage) is counted apart, not as the processor's.
 */
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/app/config/settings.js';
import { RecordNames } from '../../src/serde/record-names.js';
import { auditLineage } from '../support/audit.js';
import { codec, type ReadRecord } from '../support/harness.js';

const config = { topicScored: 'scored', topicDeadLetters: 'dead' } as Config;

const click = (offset: number, eventId: string): ReadRecord => ({
  topic: 'clicks',
  partition: 0,
  offset: String(offset),
  key: Buffer.from('u1'),
  value: codec.encode(RecordNames.click, { eventId, userId: 'u1', itemId: 'i', categoryId: 'c', action: 'PURCHASE', eventTime: 1, sessionId: null }),
});

let outputs = 0;
const scored = (...eventIds: string[]): ReadRecord => ({
  topic: 'scored',
  partition: 0,
  offset: String(outputs++),
  key: Buffer.from('u1'),
  value: codec.encode(RecordNames.scored, { outputId: `o${outputs}`, userId: 'u1', candidates: [], modelVersion: 'm', triggerEventTime: 1, processingTime: 2, eventIds }),
});

describe('auditLineage duplicates', () => {
  it('counts an output beyond the inputs carrying its event, not an input written twice by the producer', () => {
    // e1 was written twice by the producer (offsets 0 and 1) and scored once per record: no duplicate.
    // e2 was written once and scored twice: one duplicate.
    const r = auditLineage(config, [click(0, 'e1'), click(1, 'e1'), click(2, 'e2')], [scored('e1'), scored('e1', 'e2'), scored('e2')]);
    expect(r.lost).toEqual([]);
    expect(r.duplicatedInputs).toBe(1);
    expect(r.duplicates).toBe(1);
  });

  it('an event in three outputs from one input counts two', () => {
    const r = auditLineage(config, [click(0, 'e3')], [scored('e3'), scored('e3'), scored('e3')]);
    expect(r.duplicates).toBe(2);
    expect(r.duplicatedInputs).toBe(0);
  });
});
