import type { AvroCodec } from '../serde/avro-codec.js';
import type { DeadLetterOutput, ScoredOutput, SegmentsOutput, TrainingExample } from '../domain/outputs.js';
import { trainingExampleValue } from './attribution.js';
import { RecordNames } from '../serde/record-names.js';
import { MAX_SEGMENTS } from '../state/segments.js';
import { widestText } from '../state/user-state-codec.js';
import { MAX_ID_CHARS } from './decode.js';

/** The largest a timestamp field can be (the latest Date). */
const LATEST_TIME = 8.64e15;

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
      // The output is the record as it is (its fields are the schema's): no copy of it.
      value: this.codec.encode(RecordNames.scored, o),
    };
  }

  /** A labelled impression for the training-examples topic, keyed by user id. */
  trainingExample(e: TrainingExample): OutgoingRecord {
    return { key: Buffer.from(e.userId, 'utf8'), value: this.codec.encode(RecordNames.trainingExample, trainingExampleValue(e)) };
  }

  segments(o: SegmentsOutput): OutgoingRecord {
    return {
      key: Buffer.from(o.userId, 'utf8'),
      value: this.codec.encode(RecordNames.segments, o),
    };
  }

  /**
   * `maxValueBytes`: keep less of the value than DEAD_LETTER_MAX_VALUE_BYTES (so that the dead
   * letter fits its topic's record size limit); valueTruncated says so.
   */
  deadLetter(d: DeadLetterOutput, maxValueBytes = this.deadLetterMaxValueBytes): OutgoingRecord {
    const v = d.source.value;
    const keep = Math.max(0, Math.min(this.deadLetterMaxValueBytes, maxValueBytes));
    const truncated = v !== null && v.length > keep;
    return {
      key: d.source.key,
      value: this.codec.encode(RecordNames.deadLetter, {
        sourceTopic: d.source.topic,
        sourcePartition: d.source.partition,
        sourceOffset: Number(d.source.offset),
        key: d.source.key,
        value: truncated ? v.subarray(0, keep) : v,
        valueTruncated: truncated,
        reason: d.reason,
        message: d.message.slice(0, 2000),
        failedAt: d.failedAt,
      }),
    };
  }

  /**
   * The largest scored output at TOP_K candidates: ids at their longest, `eventIds` event ids in
   * its lineage (the lineage grows with a user's events per output: not bounded by settings).
   */
  largestScored(topK: number, modelVersion: string, eventIds: number): OutgoingRecord {
    const id = widestText(MAX_ID_CHARS);
    return this.scored({
      outputId: 'f'.repeat(16),
      userId: id,
      candidates: Array.from({ length: topK }, () => ({ adId: id, score: 1, categoryId: id })),
      modelVersion,
      triggerEventTime: LATEST_TIME,
      processingTime: LATEST_TIME,
      eventIds: Array.from({ length: eventIds }, () => id),
    });
  }

  /** The largest segments output: MAX_SEGMENTS names at their longest. */
  largestSegments(): OutgoingRecord {
    const id = widestText(MAX_ID_CHARS);
    return this.segments({ userId: id, segments: Array.from({ length: MAX_SEGMENTS }, () => ({ name: id, weight: 1 })), updatedAt: LATEST_TIME });
  }

  /** The largest training example: ids at their longest, two vectors of `dim` floats. */
  largestTrainingExample(dim: number, modelVersion: string): OutgoingRecord {
    const id = widestText(MAX_ID_CHARS);
    const v = new Float32Array(dim).fill(1);
    return this.trainingExample({ exampleId: id, userId: id, adId: id, outputId: id, position: 0, servedAt: LATEST_TIME, label: 1, modelVersion, servedCtr: 1, interest: v, ad: v });
  }
}
