/**
 * At start: the largest record the settings can give each output topic must fit that topic's
 * limit, or the processor refuses to start with a message naming the settings and the limit
 * (instead of failing on the first busy chunk). The records are encoded by the codecs themselves,
 * at their largest, so the sizes cannot drift from the schemas.
 */
import { ConfigError } from '../../domain/errors.js';
import { MAX_ID_CHARS } from '../../pipeline/decode.js';
import type { OutputEncoder } from '../../pipeline/encode.js';
import { MAX_SEGMENTS } from '../../state/segments.js';
import { MAX_PENDING_EVENT_IDS, type UserStateCodec } from '../../state/user-state-codec.js';
import type { OutboundRecord } from './port.js';
import { recordBytes, type ProduceLimits } from './produce-limits.js';
import type { KafkaSettings } from './settings.js';
import type { SinkTopics } from './sink.js';

export interface LargestRecord {
  readonly topic: string;
  readonly record: OutboundRecord;
  /** The settings that size it, for the message: the first is the ConfigError's. */
  readonly settings: readonly string[];
  /** What it is, with the settings' values. */
  readonly what: string;
}

export interface LargestRecordSources {
  readonly stateCodec: Pick<UserStateCodec, 'largestRecord' | 'shape'>;
  readonly encoder: Pick<OutputEncoder, 'largestScored' | 'largestSegments' | 'largestTrainingExample'>;
  readonly modelVersion: string;
  readonly topics: SinkTopics;
  readonly settings: Pick<KafkaSettings, 'interestsPerUser' | 'fusedDim' | 'topK' | 'emitIntervalMs'>;
}

/**
 * The largest record of each kind: a user state of K interests of F floats with the most pending
 * event ids it can carry (none when outputs are not rate-limited: every touched user is emitted),
 * a scored output of TOP_K candidates with one event in its lineage (more events make it larger:
 * bounded by traffic, not by settings, see the OUTPUT_TOO_LARGE policy in sink.ts), segments.
 */
export function largestRecords(o: LargestRecordSources): LargestRecord[] {
  const s = o.settings;
  const { dim } = o.stateCodec.shape;
  const pending = s.emitIntervalMs > 0 ? MAX_PENDING_EVENT_IDS - 1 : 0;
  return [
    {
      topic: o.topics.changelog,
      record: o.stateCodec.largestRecord({ idChars: MAX_ID_CHARS, pendingEventIds: pending, segments: MAX_SEGMENTS }),
      settings: ['INTERESTS_PER_USER', 'FUSED_DIM', ...(pending > 0 ? ['EMIT_INTERVAL_MS'] : [])],
      what: `a user state at INTERESTS_PER_USER=${s.interestsPerUser} interests of ${dim} floats (FUSED_DIM=${s.fusedDim}${dim !== s.fusedDim ? `; this fusion keeps the encoders' width ${dim}` : ''})${pending > 0 ? ` with up to ${pending} pending event ids (EMIT_INTERVAL_MS=${s.emitIntervalMs})` : ''}`,
    },
    {
      topic: o.topics.scored,
      record: o.encoder.largestScored(s.topK, o.modelVersion, 1),
      settings: ['TOP_K'],
      what: `a scored output at TOP_K=${s.topK} candidates`,
    },
    { topic: o.topics.segments, record: o.encoder.largestSegments(), settings: ['TOPIC_SEGMENTS'], what: `a segments output (${MAX_SEGMENTS} segments)` },
    { topic: o.topics.trainingExamples, record: o.encoder.largestTrainingExample(dim, o.modelVersion), settings: ['FUSED_DIM'], what: `a training example of two ${dim}-float vectors` },
  ];
}

/** Throws a ConfigError naming the settings and the topic's limit for every record that cannot fit. */
export function checkLargestRecords(limits: ProduceLimits, records: readonly LargestRecord[]): void {
  const misfits = records.filter((r) => !limits.fits(r.topic, r.record));
  if (misfits.length === 0) return;
  const lines = misfits.map((r) => {
    const lower = r.settings.filter((x) => x !== 'TOPIC_SEGMENTS');
    return `${r.what}, with ids at their longest (${MAX_ID_CHARS} characters), takes ${recordBytes(r.record)} bytes as a Kafka record, more than the ${limits.describe(r.topic)} leaves room for (${limits.recordBudget(r.topic)} bytes); ${lower.length > 0 ? `lower ${lower.join(' or ')}, or ` : ''}raise max.message.bytes of topic ${r.topic}`;
  });
  throw new ConfigError(misfits[0]!.settings[0]!, `the largest record cannot be produced: ${lines.join('; ')}`);
}
