/**
 * SendCoalescer over a scripted producer: a lone send goes at once, sends that come while one is
 * out share the next request, in arrival order per partition; each caller gets its own first
 * offsets; a failed request fails its callers; a refusal as too large fails only the callers whose
 * records were not acknowledged.
 */
import { describe, expect, it } from 'vitest';
import { ProduceTooLargeError, type Appended, type KafkaProducer, type OutboundRecord, type TopicRecords } from '../../src/adapters/kafka/port.js';
import { SendCoalescer } from '../../src/adapters/kafka/send-coalescer.js';

const rec = (id: string, partition: number): OutboundRecord => ({ key: Buffer.from(id), value: Buffer.from(id), partition });
const ids = (request: readonly TopicRecords[]): string[] => request.flatMap((b) => b.records.map((r) => `${b.topic}/${r.partition}:${r.key!.toString()}`));

/** Requests answered when the test says so; offsets per topic-partition count up from 100. */
class ScriptedProducer implements KafkaProducer {
  readonly requests: TopicRecords[][] = [];
  private readonly answers: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private readonly next = new Map<string, number>();

  send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    this.requests.push([...batches]);
    return new Promise<Appended[]>((resolve, reject) => {
      this.answers.push({
        resolve: () => {
          const first = new Map<string, Appended>();
          for (const b of batches) {
            for (const r of b.records) {
              const key = `${b.topic}/${r.partition}`;
              const offset = this.next.get(key) ?? 100;
              this.next.set(key, offset + 1);
              if (!first.has(key)) first.set(key, { topic: b.topic, partition: r.partition!, baseOffset: String(offset) });
            }
          }
          resolve([...first.values()]);
        },
        reject,
      });
    });
  }

  answer(i: number, err?: unknown): void {
    const a = this.answers[i]!;
    if (err === undefined) a.resolve();
    else a.reject(err);
  }

  async disconnect(): Promise<void> {}
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('SendCoalescer', () => {
  it('sends a lone send at once, and the sends that wait meanwhile in one request, in arrival order', async () => {
    const inner = new ScriptedProducer();
    const c = new SendCoalescer(inner);
    const a = c.send([{ topic: 'scored', records: [rec('a1', 0)] }]);
    expect(inner.requests).toHaveLength(1);
    const b = c.send([{ topic: 'scored', records: [rec('b1', 1)] }, { topic: 'changelog', records: [rec('b2', 1)] }]);
    const d = c.send([{ topic: 'scored', records: [rec('d1', 1), rec('d2', 0)] }]);
    expect(inner.requests).toHaveLength(1); // both wait for the first request
    inner.answer(0);
    await a;
    await tick();
    expect(inner.requests).toHaveLength(2);
    expect(ids(inner.requests[1]!)).toEqual(['scored/1:b1', 'scored/1:d1', 'scored/0:d2', 'changelog/1:b2']);
    inner.answer(1);
    // Offsets: a took scored/0 at 100; the merged request put b1 at scored/1 100, d1 at 101, d2 at scored/0 101.
    expect(await b).toEqual(expect.arrayContaining([{ topic: 'scored', partition: 1, baseOffset: '100' }, { topic: 'changelog', partition: 1, baseOffset: '100' }]));
    expect((await b).length).toBe(2);
    expect(await d).toEqual(expect.arrayContaining([{ topic: 'scored', partition: 1, baseOffset: '101' }, { topic: 'scored', partition: 0, baseOffset: '101' }]));
    expect((await d).length).toBe(2);
  });

  it('fails every caller of a failed request, and goes on with the next', async () => {
    const inner = new ScriptedProducer();
    const c = new SendCoalescer(inner);
    const a = c.send([{ topic: 't', records: [rec('a', 0)] }]);
    const b = c.send([{ topic: 't', records: [rec('b', 0)] }]);
    const d = c.send([{ topic: 't', records: [rec('d', 1)] }]);
    inner.answer(0);
    await a;
    await tick();
    inner.answer(1, new Error('broker gone'));
    await expect(b).rejects.toThrow('broker gone');
    await expect(d).rejects.toThrow('broker gone');
    const e = c.send([{ topic: 't', records: [rec('e', 0)] }]);
    expect(inner.requests).toHaveLength(3);
    inner.answer(2);
    await expect(e).resolves.toEqual([{ topic: 't', partition: 0, baseOffset: '101' }]);
  });

  it('after a refusal as too large, fails only the callers with records not acknowledged, each with its own', async () => {
    const inner = new ScriptedProducer();
    const c = new SendCoalescer(inner);
    const first = c.send([{ topic: 't', records: [rec('x', 0)] }]);
    const b1 = rec('b', 0);
    const d1 = rec('d', 1);
    const b = c.send([{ topic: 't', records: [b1] }]);
    const d = c.send([{ topic: 't', records: [d1] }]);
    inner.answer(0);
    await first;
    await tick();
    inner.answer(1, new ProduceTooLargeError('too large', [{ topic: 't', records: [d1] }]));
    await expect(b).resolves.toEqual([]);
    const err = await d.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProduceTooLargeError);
    expect((err as ProduceTooLargeError).unsent).toEqual([{ topic: 't', records: [d1] }]);
  });

  it('keeps up to maxInFlight requests out', async () => {
    const inner = new ScriptedProducer();
    const c = new SendCoalescer(inner, 2);
    void c.send([{ topic: 't', records: [rec('a', 0)] }]);
    void c.send([{ topic: 't', records: [rec('b', 1)] }]);
    void c.send([{ topic: 't', records: [rec('d', 2)] }]);
    expect(inner.requests.map(ids)).toEqual([['t/0:a'], ['t/1:b']]);
    inner.answer(0);
    await tick();
    await tick();
    expect(inner.requests.map(ids)).toEqual([['t/0:a'], ['t/1:b'], ['t/2:d']]);
  });
});
