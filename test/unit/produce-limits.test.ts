/**
 * Produce limits over fakes of the port: sends split so that no topic-partition batch and no
 * request passes its limit, records kept in order per partition, limits read from the cluster's
 * configs (or PRODUCE_MAX_BYTES), and a refused request reported with what was not acknowledged.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/domain/errors.js';
import { ProduceTooLargeError, type Appended, type KafkaAdmin, type KafkaProducer, type OutboundRecord, type TopicRecords } from '../../src/adapters/kafka/port.js';
import { BoundedProducer, planRequests, ProduceLimits, readLimits, recordBytes } from '../../src/adapters/kafka/produce-limits.js';

const limitsOf = (topics: Record<string, number>, request: number): ProduceLimits => new ProduceLimits({ topics: new Map(Object.entries(topics)), otherTopics: request, request, source: 'cluster' });

const rec = (id: string, bytes: number, partition?: number): OutboundRecord => ({ key: Buffer.from(id), value: Buffer.alloc(bytes, 1), ...(partition !== undefined ? { partition } : {}) });

/** Per request: bytes of each topic-partition's records (records without a partition under 'any'), and the request's total. */
function loads(request: readonly TopicRecords[]): { batches: Map<string, number>; total: number } {
  const batches = new Map<string, number>();
  let total = 0;
  for (const { topic, records } of request) {
    for (const r of records) {
      const k = `${topic}/${r.partition ?? 'any'}`;
      batches.set(k, (batches.get(k) ?? 0) + recordBytes(r));
      total += recordBytes(r);
    }
  }
  return { batches, total };
}

/** The ids of the records of each topic-partition, in the order the requests carry them. */
function orderOf(requests: readonly (readonly TopicRecords[])[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const req of requests) for (const { topic, records } of req) for (const r of records) {
    const k = `${topic}/${r.partition ?? 'any'}`;
    out.set(k, [...(out.get(k) ?? []), r.key!.toString()]);
  }
  return out;
}

describe('planRequests', () => {
  // A changelog of 3 partitions with states of ~2 KB, scored outputs the partitioner places.
  const changelog = Array.from({ length: 60 }, (_, i) => rec(`s${i}`, 2000, i % 3));
  const scored = Array.from({ length: 40 }, (_, i) => rec(`o${i}`, 700));
  const batches: TopicRecords[] = [
    { topic: 'user-state', records: changelog },
    { topic: 'scored', records: scored },
  ];

  it('keeps every topic-partition batch and every request under its limit, with room to spare for framing', () => {
    const limits = limitsOf({ 'user-state': 12_000, scored: 9_000 }, 30_000);
    const requests = planRequests(batches, limits);
    expect(requests.length).toBeGreaterThan(1);
    for (const req of requests) {
      const { batches: b, total } = loads(req);
      for (const [k, n] of b) {
        const topic = k.slice(0, k.lastIndexOf('/'));
        // Records without a partition may all land on one partition, with the pinned ones.
        const pinnedMax = Math.max(0, ...[...b].filter(([x]) => x.startsWith(`${topic}/`) && !x.endsWith('/any')).map(([, v]) => v));
        const worst = k.endsWith('/any') ? n + pinnedMax : n + (b.get(`${topic}/any`) ?? 0);
        expect(worst + 61, k).toBeLessThanOrEqual(limits.batchLimit(topic) - 1024);
      }
      expect(total).toBeLessThanOrEqual(limits.requestLimit - 1024);
    }
  });

  it('fills requests: a split is needed, not one request per record', () => {
    const requests = planRequests(batches, limitsOf({ 'user-state': 12_000, scored: 9_000 }, 30_000));
    // 60 x 2 KB + 40 x 0.7 KB = 148 KB over requests of at most 30 KB.
    expect(requests.length).toBeLessThan(15);
  });

  it('keeps the order of each topic-partition and sends every record once', () => {
    const requests = planRequests(batches, limitsOf({ 'user-state': 12_000, scored: 9_000 }, 30_000));
    const order = orderOf(requests);
    for (const p of [0, 1, 2]) expect(order.get(`user-state/${p}`)).toEqual(changelog.filter((r) => r.partition === p).map((r) => r.key!.toString()));
    expect(order.get('scored/any')).toEqual(scored.map((r) => r.key!.toString()));
  });

  it('bounds the records per request too', () => {
    const requests = planRequests(batches, limitsOf({ 'user-state': 1 << 30, scored: 1 << 30 }, 1 << 30), 25);
    expect(requests.map((r) => r.reduce((n, t) => n + t.records.length, 0))).toEqual([25, 25, 25, 25]);
  });

  it('sends a record too large even alone in a request of its own (the caller checks records first)', () => {
    const limits = limitsOf({ t: 5_000 }, 5_000);
    const requests = planRequests([{ topic: 't', records: [rec('a', 100), rec('big', 10_000), rec('b', 100)] }], limits);
    expect(requests.map((r) => r[0]!.records.map((x) => x.key!.toString()))).toEqual([['a'], ['big'], ['b']]);
    expect(limits.fits('t', rec('big', 10_000))).toBe(false);
    expect(limits.fits('t', rec('a', 100))).toBe(true);
  });
});

describe('BoundedProducer', () => {
  function fakeProducer(refuseWhen: (req: readonly TopicRecords[]) => boolean = () => false) {
    const sent: TopicRecords[][] = [];
    const producer: KafkaProducer = {
      send: async (req): Promise<Appended[]> => {
        if (refuseWhen(req)) throw new ProduceTooLargeError('MESSAGE_TOO_LARGE', req);
        sent.push([...req]);
        return req.flatMap((t) => [...new Set(t.records.map((r) => r.partition ?? 0))].map((p) => ({ topic: t.topic, partition: p, baseOffset: String(sent.length) })));
      },
      disconnect: async () => undefined,
    };
    return { producer, sent };
  }

  it('sends the planned requests one after the other and reports the first offset per partition', async () => {
    const f = fakeProducer();
    const bounded = new BoundedProducer(f.producer, limitsOf({ t: 10_000 }, 10_000));
    const appended = await bounded.send([{ topic: 't', records: Array.from({ length: 10 }, (_, i) => rec(`r${i}`, 3000, 0)) }]);
    expect(f.sent.length).toBeGreaterThanOrEqual(4);
    expect(appended).toEqual([{ topic: 't', partition: 0, baseOffset: '1' }]);
  });

  it('on a refused request, rejects with what was not acknowledged: that request and the ones after it', async () => {
    const f = fakeProducer((req) => req.some((t) => t.records.some((r) => r.key!.toString() === 'r5')));
    const bounded = new BoundedProducer(f.producer, limitsOf({ t: 10_000 }, 10_000));
    const records = Array.from({ length: 10 }, (_, i) => rec(`r${i}`, 3000, 0));
    const err = await bounded.send([{ topic: 't', records }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProduceTooLargeError);
    const unsent = (err as ProduceTooLargeError).unsent.flatMap((t) => t.records.map((r) => r.key!.toString()));
    const acked = f.sent.flat().flatMap((t) => t.records.map((r) => r.key!.toString()));
    expect([...acked, ...unsent]).toEqual(records.map((r) => r.key!.toString()));
    expect(unsent).toContain('r5');
  });
});

describe('readLimits', () => {
  function fakeAdmin(brokers: Record<string, string>[], topics: Record<string, Record<string, string>>, fail?: Error) {
    const calls: string[] = [];
    const admin = {
      listTopics: async () => Object.keys(topics),
      brokerConfigs: async () => {
        calls.push('brokers');
        if (fail) throw fail;
        return brokers.map((b) => new Map(Object.entries(b)));
      },
      topicConfigs: async (names: readonly string[]) => {
        calls.push(`topics ${names.join(',')}`);
        return new Map(names.map((t) => [t, new Map(Object.entries(topics[t] ?? {}))]));
      },
    } as unknown as KafkaAdmin;
    return { admin, calls };
  }

  it("takes each topic's max.message.bytes, the smallest broker message.max.bytes for the others, and a request as large as the largest batch under the socket limit", async () => {
    const f = fakeAdmin(
      [
        { 'message.max.bytes': '2000000', 'socket.request.max.bytes': '104857600' },
        { 'message.max.bytes': '1048588', 'socket.request.max.bytes': '3000000' },
      ],
      { state: { 'max.message.bytes': '65536' }, scored: { 'max.message.bytes': '5000000' } },
    );
    const v = await readLimits(f.admin, ['state', 'scored', 'missing'], 0);
    expect(v.topics).toEqual(new Map([['state', 65536], ['scored', 5000000], ['missing', 1048588]]));
    expect(v.otherTopics).toBe(1048588);
    expect(v.request).toBe(3000000);
    expect(f.calls).toEqual(['brokers', 'topics state,scored']);
  });

  it('with PRODUCE_MAX_BYTES set, uses it everywhere and reads nothing', async () => {
    const f = fakeAdmin([], {});
    const v = await readLimits(f.admin, ['state'], 500_000);
    expect(v).toMatchObject({ request: 500_000, otherTopics: 500_000, source: 'setting' });
    expect(v.topics.get('state')).toBe(500_000);
    expect(f.calls).toEqual([]);
    expect(new ProduceLimits(v).describe('state')).toBe('500000 bytes (PRODUCE_MAX_BYTES)');
  });

  it('names PRODUCE_MAX_BYTES when the configs cannot be read', async () => {
    const f = fakeAdmin([], {}, new Error('Cluster authorization failed'));
    const err = await readLimits(f.admin, ['state'], 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).setting).toBe('PRODUCE_MAX_BYTES');
    expect((err as Error).message).toMatch(/Cluster authorization failed.*set PRODUCE_MAX_BYTES/);
  });

  it('refresh reads them again and says whether they changed', async () => {
    let limit = 1_000_000;
    const limits = new ProduceLimits({ topics: new Map([['t', limit]]), otherTopics: limit, request: limit, source: 'cluster' }, async () => ({ topics: new Map([['t', limit]]), otherTopics: 1_000_000, request: 1_000_000, source: 'cluster' }));
    expect(await limits.refresh()).toBe(false);
    limit = 10_000;
    expect(await limits.refresh()).toBe(true);
    expect(limits.batchLimit('t')).toBe(10_000);
    expect(limits.describe('t')).toBe('10000 bytes (max.message.bytes of topic t)');
  });
});
