/**
 * User state <-> its changelog record (schemas/user-state.avsc, Confluent wire format). Vectors are
 * float32 little-endian bytes. A record that cannot be used as it is (another space, another
 * width, unreadable) restores as null: that user starts fresh, the processor does not stop.
 */
import { RejectedRecordError } from '../domain/errors.js';
import type { AvroCodec } from '../serde/avro-codec.js';
import { NONE, type Interest, type Segment, type UserState } from '../domain/user-state.js';
import { Accepts, RecordNames } from '../serde/record-names.js';

export const USER_STATE_SCHEMA = RecordNames.userState;

/**
 * A user whose events wait for a rate-limited output (EMIT_INTERVAL_MS) is scored as soon as this
 * many wait: it bounds the pending event ids a changelog record carries, so that the largest
 * record is known at start (see largestRecord).
 */
export const MAX_PENDING_EVENT_IDS = 1000;

/** The largest a field can be: a timestamp (the latest Date), an int. */
const LATEST_TIME = 8.64e15;
const LARGEST_INT = 2 ** 31 - 1;

/** A text of `chars` UTF-16 units that takes the most UTF-8 bytes such a text can (3 per unit). */
export function widestText(chars: number): string {
  return '\u4e00'.repeat(chars);
}

/** What the largest record holds: ids of this many characters, this many pending event ids and segments. */
export interface LargestStateShape {
  readonly idChars: number;
  readonly pendingEventIds: number;
  readonly segments: number;
}

interface InterestRecord {
  vector: Buffer;
  strength: number;
  asOf: number;
  events: number;
}

interface UserStateRecord {
  userId: string;
  partition: number;
  space: string;
  interests: InterestRecord[];
  latestEventTime: number;
  pendingEventIds: readonly string[];
  lastEmittedAt: number;
  updatedAt: number;
  lastSegments: readonly Segment[];
}

export interface UserStateCodecOptions {
  /** PreparedModels.space: what the vectors mean. */
  readonly space: string;
  /** F. */
  readonly dim: number;
  /** K: a record with more interests (K lowered since) keeps its strongest K. */
  readonly maxInterests: number;
  /** Told why a record was not restored (for a log line or a counter). */
  readonly onDiscard?: (userId: string | undefined, reason: string) => void;
}

export class UserStateCodec {
  constructor(
    private readonly avro: AvroCodec,
    private readonly o: UserStateCodecOptions,
  ) {}

  /**
   * The changelog value; the key is the user id. Interests go strongest first. The record reads
   * the state's arrays and vectors in place (Avro copies them into the value): nothing is copied
   * that the encoding does not keep.
   */
  encode(s: UserState): Buffer {
    const record: UserStateRecord = {
      userId: s.userId,
      partition: s.partition,
      space: this.o.space,
      interests: s.interests.map((i) => ({ vector: floatBytes(i.vector), strength: i.strength, asOf: i.asOf, events: i.events })).sort((a, b) => b.strength - a.strength),
      latestEventTime: s.latestEventTime,
      pendingEventIds: s.pendingEventIds,
      lastEmittedAt: s.lastEmittedAt,
      updatedAt: s.updatedAt,
      lastSegments: s.lastSegments,
    };
    return this.avro.encode(USER_STATE_SCHEMA, record);
  }

  /**
   * The largest changelog record this codec writes for a state of the given shape: K interests of
   * F floats, every id and name at its longest, every number at its widest. Computed by encoding
   * it, so it cannot drift from the schema.
   */
  largestRecord(shape: LargestStateShape): { key: Buffer; value: Buffer } {
    const userId = widestText(shape.idChars);
    const value = this.encode({
      userId,
      partition: LARGEST_INT,
      interests: Array.from({ length: this.o.maxInterests }, () => ({ vector: new Float32Array(this.o.dim), strength: 1, asOf: LATEST_TIME, events: LARGEST_INT })),
      latestEventTime: LATEST_TIME,
      pendingEventIds: Array.from({ length: shape.pendingEventIds }, () => widestText(shape.idChars)),
      lastEmittedAt: LATEST_TIME,
      updatedAt: LATEST_TIME,
      lastSegments: Array.from({ length: shape.segments }, () => ({ name: widestText(shape.idChars), weight: 1 })),
    });
    return { key: Buffer.from(userId, 'utf8'), value };
  }

  /** K and F: what the largest record is made of. */
  get shape(): { readonly interests: number; readonly dim: number } {
    return { interests: this.o.maxInterests, dim: this.o.dim };
  }

  /** The state of a changelog value, or null: a tombstone, or a record that cannot be restored. */
  decode(value: Buffer | null): UserState | null {
    if (value === null) return null;
    let r: UserStateRecord;
    try {
      r = this.avro.decode<UserStateRecord>(value, Accepts.userState).value;
    } catch (err) {
      if (!(err instanceof RejectedRecordError)) throw err;
      return this.discard(undefined, `unreadable: ${err.message}`);
    }
    if (r.space !== this.o.space) return this.discard(r.userId, `space ${r.space}, not ${this.o.space}`);
    const bytes = this.o.dim * 4;
    const bad = r.interests.find((i) => i.vector.length !== bytes);
    if (bad) return this.discard(r.userId, `vector of ${bad.vector.length / 4} values, not ${this.o.dim}`);
    const interests: Interest[] = r.interests
      .slice(0, this.o.maxInterests) // written strongest first
      .map((i) => ({ vector: bytesToFloats(i.vector), strength: i.strength, asOf: i.asOf, events: i.events }));
    return {
      userId: r.userId,
      partition: r.partition,
      interests,
      latestEventTime: r.latestEventTime,
      pendingEventIds: r.pendingEventIds.length > 0 ? r.pendingEventIds : NONE,
      lastEmittedAt: r.lastEmittedAt,
      updatedAt: r.updatedAt,
      lastSegments: r.lastSegments.length > 0 ? r.lastSegments : NONE,
    };
  }

  private discard(userId: string | undefined, reason: string): null {
    this.o.onDiscard?.(userId, reason);
    return null;
  }
}

/** On a little-endian platform (x86, ARM as Node runs them) float32 bytes are copied as they are. */
const LITTLE_ENDIAN = new Uint8Array(Float32Array.of(1).buffer)[3] === 0x3f;

/**
 * v as float32 little-endian bytes, whatever the platform's byte order. On a little-endian
 * platform a view of v's own memory, not a copy: read it before v changes.
 */
export function floatBytes(v: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const out = Buffer.allocUnsafe(v.length * 4);
  for (let j = 0; j < v.length; j++) out.writeFloatLE(v[j]!, j * 4);
  return out;
}

export function bytesToFloats(b: Buffer): Float32Array {
  const v = new Float32Array(b.length / 4);
  if (LITTLE_ENDIAN) new Uint8Array(v.buffer).set(b);
  else for (let j = 0; j < v.length; j++) v[j] = b.readFloatLE(j * 4);
  return v;
}
