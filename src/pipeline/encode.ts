import type { AvroCodec } from '../serde/avro-codec.js';
import type { DeadLetterOutput, ScoredOutput, SegmentsOutput } from '../domain/outputs.js';
import { RecordNames } from '../serde/record-names.js';

/** A record ready for any transport: key, value and headers as bytes. */
export interface OutgoingRecord {
  readonly key: Buffer | null;
  readonly value: Buffer;
}


/** Turns the core's outputs into Avro records in the wire format. */
export class OutputEncoder {
  constructor(
    private readonly codec: AvroCodec,
    private readonly deadLetterMaxValueBytes: number,
  ) {}

  scored(o: ScoredOutput): OutgoingRecord {
    return {
      key: Buffer.from(o.userId, 'utf8'),
      value: this.codec.encode(RecordNames.scored, {
        outputId: o.outputId,
        userId: o.userId,
        candidates: o.candidates,
        modelVersion: o.modelVersion,
        triggerEventTime: o.triggerEventTime,
        processingTime: o.processingTime,
        eventIds: o.eventIds,
      }),
    };
  }

  segments(o: SegmentsOutput): OutgoingRecord {
    return {
      key: Buffer.from(o.userId, 'utf8'),
      value: this.codec.encode(RecordNames.segments, { userId: o.userId, segments: o.segments.map((g) => ({ name: g.name, weight: g.weight })), updatedAt: o.updatedAt }),
    };
  }

  deadLetter(d: DeadLetterOutput): OutgoingRecord {
    const v = d.source.value;
    const truncated = v !== null && v.length > this.deadLetterMaxValueBytes;
    return {
      key: d.source.key,
      value: this.codec.encode(RecordNames.deadLetter, {
        sourceTopic: d.source.topic,
        sourcePartition: d.source.partition,
        sourceOffset: Number(d.source.offset),
        key: d.source.key,
        value: truncated ? v.subarray(0, this.deadLetterMaxValueBytes) : v,
        valueTruncated: truncated,
        reason: d.reason,
        message: d.message.slice(0, 2000),
        failedAt: d.failedAt,
      }),
    };
  }
}
