import type { ProcessResult, UserState } from '../../domain/outputs.js';
import type { OutputEncoder } from '../../pipeline/encode.js';
import type { KafkaProducer, OutboundRecord, TopicRecords } from './port.js';

export interface SinkTopics {
  readonly scored: string;
  readonly deadLetters: string;
  readonly segments: string;
  readonly changelog: string;
}

/** Encodes a user's state for the changelog (UserStateCodec.encode). */
export type StateEncoder = (s: UserState) => Buffer;

/** Sparse results (a catalog batch's dead letters, a flush) need not list every kind. */
export type Deliverable = Partial<ProcessResult>;

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/**
 * Delivers the core's outputs to Kafka and resolves only when every record is acknowledged by all
 * in-sync replicas: the caller commits input offsets after that, never before.
 */
export class KafkaSink {
  constructor(
    private readonly producer: KafkaProducer,
    private readonly topics: SinkTopics,
    private readonly encoder: OutputEncoder,
    private readonly encodeState: StateEncoder,
  ) {}

  /** `marker`: an extra changelog record (the applied-offset marker) delivered with the rest. */
  async deliver(result: Deliverable, marker?: { key: string; value: Buffer; partition: number }): Promise<void> {
    const batches: TopicRecords[] = [];
    const add = (topic: string, records: OutboundRecord[]): void => {
      if (records.length > 0) batches.push({ topic, records });
    };
    // The state change first in the list; all of it is acknowledged before any offset is committed.
    // Its partition is the user's input partition, so restore reads exactly the owned partitions.
    const changes: OutboundRecord[] = (result.stateChanges ?? []).map((s) => ({ key: utf8(s.userId), value: this.encodeState(s), partition: s.partition }));
    // Deletions: tombstones after the state changes (a user changed, then deleted in one call ends deleted).
    const tombstones = (result.deletions ?? []).map((d) => ({
      key: utf8(d.userId),
      value: null,
      headers: { 'adstream-deletion-request': d.requestId, 'adstream-source': `${d.source.topic}/${d.source.partition}/${d.source.offset}` },
    }));
    changes.push(...tombstones.map((t, i) => ({ ...t, partition: result.deletions![i]!.partition })));
    if (marker) changes.push({ key: utf8(marker.key), value: marker.value, partition: marker.partition });
    add(this.topics.changelog, changes);
    add(this.topics.scored, (result.scored ?? []).map((o) => this.encoder.scored(o)));
    // Same key, same default partitioner as the segments records: the tombstone lands on their partition.
    add(this.topics.segments, [...(result.segments ?? []).map((o): OutboundRecord => this.encoder.segments(o)), ...tombstones]);
    add(this.topics.deadLetters, (result.deadLetters ?? []).map((d) => this.encoder.deadLetter(d)));
    if (batches.length === 0) return;
    await this.producer.send(batches);
  }
}
