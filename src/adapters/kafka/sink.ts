import type { InputRecord } from '../../domain/events.js';
import type { DeadLetterOutput, ProcessResult, UserState } from '../../domain/outputs.js';
import type { OutputEncoder } from '../../pipeline/encode.js';
import type { Logger } from '../../util/log.js';
import type { ChangelogMarker } from './partition-state.js';
import { ProduceTooLargeError, type KafkaProducer, type OutboundRecord, type TopicRecords } from './port.js';
import { recordBytes, type ProduceLimits } from './produce-limits.js';

export interface SinkTopics {
  readonly scored: string;
  readonly deadLetters: string;
  readonly segments: string;
  readonly changelog: string;
  readonly trainingExamples: string;
}

/** Encodes a user's state for the changelog (UserStateCodec.encode). */
export type StateEncoder = (s: UserState) => Buffer;

/** Sparse results (a catalog batch's dead letters, a flush) need not list every kind. */
export type Deliverable = Partial<ProcessResult>;

export interface KafkaSinkDeps {
  /** Splits each send to keep to `limits` (a BoundedProducer: see wiring.ts). */
  readonly producer: KafkaProducer;
  readonly topics: SinkTopics;
  readonly encoder: OutputEncoder;
  readonly encodeState: StateEncoder;
  readonly limits: ProduceLimits;
  readonly log: Logger;
  /** Told of each record too large for its topic (a metric). */
  readonly onTooLarge?: (topic: string) => void;
  readonly clock?: () => number;
}

/** The outputs of a user: what is dropped together when one is too large. */
type UserOutput = 'state' | 'scored' | 'segments';

/** Who a record is for, so a record too large is handled by its kind (see KafkaSink). */
type Owner =
  | { readonly kind: 'user'; readonly userId: string; readonly output: UserOutput }
  | { readonly kind: 'deadLetter'; readonly deadLetter: DeadLetterOutput }
  // Tombstones and the applied-offset marker: a few bytes.
  | { readonly kind: 'other' };

interface Outgoing {
  readonly topic: string;
  readonly record: OutboundRecord;
  readonly owner: Owner;
}

/** What one delivery changed under the size policy. */
interface SizePolicy {
  /** Outputs not sent, per user. */
  readonly dropped: Map<string, Set<UserOutput>>;
  /** Dead letters sent in place of the dropped outputs' inputs (OUTPUT_TOO_LARGE). */
  readonly added: DeadLetterOutput[];
  /** Dead letters that could not be sent even with no value (logged). */
  readonly lost: Set<DeadLetterOutput>;
  /** Input positions already dead-lettered: each input gets one dead letter. */
  readonly deadLettered: Set<string>;
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const positionOf = (r: InputRecord): string => `${r.topic}/${r.partition}/${r.offset}`;
/** A varint length grows by at most this many bytes as the value it counts grows. */
const VARINT_GROWTH = 4;
/** Sends again with limits read again after the broker refused a request as too large. */
const MAX_REFRESHES = 2;

/**
 * Delivers the core's outputs to Kafka and resolves only when every record is acknowledged by all
 * in-sync replicas: the caller commits input offsets after that, never before.
 *
 * Every record is checked against its topic's limit before it is sent. One that cannot fit is not
 * sent, never silently: a metric and an error log name the topic, and
 * - a user's state, scored output or segments: the inputs of this delivery that produced it (the
 *   user's records in the chunk) are dead-lettered as OUTPUT_TOO_LARGE; with no inputs at hand (a
 *   rate-limited flush) one dead letter names the output's topic and its events;
 * - a dead letter: its value is cut further, to fit (valueTruncated);
 * and the broker refusing a send as too large (a limit lowered since the start) reads the limits
 * again and sends what was not acknowledged under the new ones.
 */
export class KafkaSink {
  private readonly clock: () => number;

  constructor(private readonly o: KafkaSinkDeps) {
    this.clock = o.clock ?? Date.now;
  }

  /** `markers`: extra changelog records (the applied-offset markers) delivered with the rest. */
  async deliver(result: Deliverable, markers: readonly ChangelogMarker[] = []): Promise<void> {
    await this.deliverFor([], result, markers);
  }

  /**
   * Delivers a chunk's result; `inputs`, the chunk's records, are dead-lettered in place of
   * outputs too large to send. `markers`: one per input topic of the chunk. Resolves with what was
   * delivered.
   */
  async deliverFor(inputs: readonly InputRecord[], result: Deliverable, markers: readonly ChangelogMarker[] = []): Promise<Deliverable> {
    const policy: SizePolicy = { dropped: new Map(), added: [], lost: new Set(), deadLettered: new Set((result.deadLetters ?? []).map((d) => positionOf(d.source))) };
    let outgoing = this.encode(result, markers);
    for (let refreshes = 0; ; refreshes++) {
      const checkedUnder = this.o.limits.version;
      const sendable = this.admit(outgoing, inputs, policy);
      if (sendable.length === 0) break; // nothing to send: no empty request
      try {
        await this.o.producer.send(byTopic(sendable));
        break;
      } catch (err) {
        if (!(err instanceof ProduceTooLargeError) || refreshes >= MAX_REFRESHES) throw err;
        // Another delivery (a chunk of another partition) may have read the new limits first.
        await this.o.limits.refresh();
        if (this.o.limits.version === checkedUnder) throw err;
        this.o.log.warn('the broker refused records as too large; its limits changed since they were read: sending the rest under the new ones', { err });
        const unsent = new Set(err.unsent.flatMap((b) => b.records));
        outgoing = sendable.filter((x) => unsent.has(x.record));
      }
    }
    return delivered(result, policy);
  }

  /** Every record, in the order the topics need (see the comments); none checked yet. */
  private encode(result: Deliverable, markers: readonly ChangelogMarker[]): Outgoing[] {
    const { topics, encoder } = this.o;
    const out: Outgoing[] = [];
    const other: Owner = { kind: 'other' };
    // The state changes first; all of it is acknowledged before any offset is committed. Their
    // partition is the user's input partition, so restore reads exactly the owned partitions.
    for (const s of result.stateChanges ?? []) out.push({ topic: topics.changelog, record: { key: utf8(s.userId), value: this.o.encodeState(s), partition: s.partition }, owner: { kind: 'user', userId: s.userId, output: 'state' } });
    // Deletions: tombstones after the state changes (a user changed, then deleted in one call ends deleted).
    const tombstones = (result.deletions ?? []).map((d) => ({
      record: {
        key: utf8(d.userId),
        value: null,
        headers: { 'adstream-deletion-request': d.requestId, 'adstream-source': `${d.source.topic}/${d.source.partition}/${d.source.offset}` },
      } satisfies OutboundRecord,
      partition: d.partition,
    }));
    for (const t of tombstones) out.push({ topic: topics.changelog, record: { ...t.record, partition: t.partition }, owner: other });
    // The markers last on their partition: they say the states before them are delivered.
    for (const m of markers) out.push({ topic: topics.changelog, record: { key: utf8(m.key), value: m.value, partition: m.partition }, owner: other });
    for (const o of result.scored ?? []) out.push({ topic: topics.scored, record: encoder.scored(o), owner: { kind: 'user', userId: o.userId, output: 'scored' } });
    // Same key, same default partitioner as the segments records: the tombstone lands on their partition.
    for (const o of result.segments ?? []) out.push({ topic: topics.segments, record: encoder.segments(o), owner: { kind: 'user', userId: o.userId, output: 'segments' } });
    for (const t of tombstones) out.push({ topic: topics.segments, record: t.record, owner: other });
    for (const d of result.deadLetters ?? []) out.push(this.deadLetterOut(d));
    // A few KiB each (two F-float vectors): the largest is checked at start (record-bounds.ts).
    for (const e of result.examples ?? []) out.push({ topic: topics.trainingExamples, record: encoder.trainingExample(e), owner: other });
    return out;
  }

  /** The records that fit; the size policy for those that do not (see the class comment). */
  private admit(outgoing: readonly Outgoing[], inputs: readonly InputRecord[], policy: SizePolicy): Outgoing[] {
    const { limits } = this.o;
    const sendable: Outgoing[] = [];
    const tooLarge = new Map<string, { output: UserOutput; topic: string; bytes: number }>();
    for (const x of outgoing) {
      if (limits.fits(x.topic, x.record)) {
        sendable.push(x);
        continue;
      }
      if (x.owner.kind === 'other') {
        sendable.push(x); // a few bytes: only a broken limit refuses it, and the broker says so
        continue;
      }
      this.o.onTooLarge?.(x.topic);
      if (x.owner.kind === 'deadLetter') {
        const cut = this.cutToFit(x.owner.deadLetter);
        if (cut) sendable.push(cut);
        else this.lose(x.owner.deadLetter, policy);
        continue;
      }
      const { userId, output } = x.owner;
      const dropped = policy.dropped.get(userId) ?? new Set<UserOutput>();
      dropped.add(output);
      policy.dropped.set(userId, dropped);
      if (!tooLarge.has(userId)) tooLarge.set(userId, { output, topic: x.topic, bytes: recordBytes(x.record) });
    }
    const byTopic = new Map<string, { records: number; largest: number }>();
    for (const [userId, t] of tooLarge) {
      const message = `its ${t.output === 'state' ? 'user state' : t.output === 'scored' ? 'scored output' : 'segments output'} takes ${t.bytes} bytes, more than the ${limits.describe(t.topic)}`;
      for (const d of this.deadLettersFor(userId, t.topic, message, inputs, policy)) {
        policy.added.push(d);
        const x = this.deadLetterOut(d);
        if (limits.fits(x.topic, x.record)) sendable.push(x);
        else {
          const cut = this.cutToFit(d);
          if (cut) sendable.push(cut);
          else this.lose(d, policy);
        }
      }
      const s = byTopic.get(t.topic) ?? { records: 0, largest: 0 };
      byTopic.set(t.topic, { records: s.records + 1, largest: Math.max(s.largest, t.bytes) });
    }
    for (const [topic, s] of byTopic) {
      this.o.log.error('output records too large for their topic: not sent; the inputs that produced them are dead-lettered as OUTPUT_TOO_LARGE', { topic, records: s.records, largestBytes: s.largest, limit: limits.describe(topic) });
    }
    return sendable;
  }

  /** The user's inputs not dead-lettered yet; with none at hand, one dead letter for the output itself. */
  private deadLettersFor(userId: string, topic: string, message: string, inputs: readonly InputRecord[], policy: SizePolicy): DeadLetterOutput[] {
    const failedAt = this.clock();
    const key = utf8(userId);
    const sources = inputs.filter((r) => r.key !== null && key.equals(r.key) && !policy.deadLettered.has(positionOf(r)));
    for (const r of sources) policy.deadLettered.add(positionOf(r));
    if (sources.length > 0) return sources.map((source) => ({ source, reason: 'OUTPUT_TOO_LARGE', message: `This record's user: ${message}`, failedAt }));
    // A rate-limited flush: its events' records were committed with earlier chunks.
    const source: InputRecord = { topic, partition: -1, offset: '-1', key, value: null, timestamp: failedAt };
    return [{ source, reason: 'OUTPUT_TOO_LARGE', message: `An output for this key was not sent: ${message}`, failedAt }];
  }

  private deadLetterOut(d: DeadLetterOutput): Outgoing {
    return { topic: this.o.topics.deadLetters, record: this.o.encoder.deadLetter(d), owner: { kind: 'deadLetter', deadLetter: d } };
  }

  /** The dead letter with as much of its value as fits its topic; null if not even its key and message fit. */
  private cutToFit(d: DeadLetterOutput): Outgoing | null {
    const topic = this.o.topics.deadLetters;
    const bare = this.o.encoder.deadLetter(d, 0);
    const room = this.o.limits.recordBudget(topic) - recordBytes(bare) - VARINT_GROWTH;
    if (room < 0) return null;
    return { topic, record: this.o.encoder.deadLetter(d, room), owner: { kind: 'deadLetter', deadLetter: d } };
  }

  private lose(d: DeadLetterOutput, policy: SizePolicy): void {
    policy.lost.add(d);
    const topic = this.o.topics.deadLetters;
    this.o.log.error('a dead letter cannot fit its topic even without its value (its key is too large): not sent', { topic, sourceTopic: d.source.topic, partition: d.source.partition, offset: d.source.offset, keyBytes: d.source.key?.length ?? 0, limit: this.o.limits.describe(topic) });
  }
}

/** Records of each topic together, in their order (the producer keeps it per partition). */
function byTopic(outgoing: readonly Outgoing[]): TopicRecords[] {
  const topics = new Map<string, OutboundRecord[]>();
  for (const x of outgoing) {
    const list = topics.get(x.topic);
    if (list) list.push(x.record);
    else topics.set(x.topic, [x.record]);
  }
  return [...topics].map(([topic, records]) => ({ topic, records }));
}

/** The result as delivered: without the outputs not sent, with the dead letters sent in their place. */
function delivered(result: Deliverable, policy: SizePolicy): Deliverable {
  if (policy.dropped.size === 0 && policy.added.length === 0 && policy.lost.size === 0) return result;
  const kept = (userId: string, output: UserOutput): boolean => !policy.dropped.get(userId)?.has(output);
  return {
    ...result,
    ...(result.stateChanges ? { stateChanges: result.stateChanges.filter((s) => kept(s.userId, 'state')) } : {}),
    ...(result.scored ? { scored: result.scored.filter((o) => kept(o.userId, 'scored')) } : {}),
    ...(result.segments ? { segments: result.segments.filter((o) => kept(o.userId, 'segments')) } : {}),
    deadLetters: [...(result.deadLetters ?? []), ...policy.added].filter((d) => !policy.lost.has(d)),
  };
}
