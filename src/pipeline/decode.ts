import { RejectedRecordError } from '../domain/errors.js';
import type { AvroCodec } from '../serde/avro-codec.js';
import type { Ad, AdFeedback, ClickAction, EventKind, FeedbackKind, ImageSource, InputRecord, UserDeletion, UserEvent } from '../domain/events.js';
import { Accepts } from '../serde/record-names.js';

/** Which record name each event kind's topic carries. */
const EVENT_SCHEMAS: Readonly<Record<EventKind, ReadonlySet<string>>> = { click: Accepts.click, image: Accepts.imageView, review: Accepts.review };

export interface DecodeLimits {
  readonly maxRecordBytes: number;
  readonly maxTextChars: number;
  readonly maxClockSkewMs: number;
  readonly maxEventAgeMs: number;
}

/** The longest id (event, user, ad, category) accepted, in characters. */
export const MAX_ID_CHARS = 128;
const MAX_ITEM_CHARS = 256;
const ACTIONS: ReadonlySet<string> = new Set<ClickAction>(['VIEW', 'CLICK', 'ADD_TO_CART', 'PURCHASE']);
const FEEDBACK_KINDS: ReadonlySet<string> = new Set<FeedbackKind>(['IMPRESSION', 'CLICK', 'CONVERSION']);
/** The last slot a feedback position may name (0 = first). */
export const MAX_FEEDBACK_POSITION = 1000;

/** Raw Avro shapes as avsc decodes them (unions of two records come wrapped by their full name). */
interface RawBase { eventId: string; userId: string; itemId: string; eventTime: number }
interface RawClick extends RawBase { categoryId: string; action: string }
interface RawImageView extends RawBase { categoryId: string | null; imageId: string; image: Record<string, { data?: Buffer; contentType?: string | null; uri?: string }> }
interface RawReview extends RawBase { categoryId: string | null; rating: number; text: string }
interface RawAd extends Omit<Ad, 'image'> { image: Record<string, { data?: Buffer; contentType?: string | null; uri?: string }> | null }

/**
 * Turns an input record into a validated domain event, or throws RejectedRecordError with the
 * dead-letter reason. Validation lives here so the rest of the pipeline can trust its inputs.
 */
export class EventDecoder {
  constructor(
    private readonly codec: AvroCodec,
    private readonly limits: DecodeLimits,
  ) {}

  decodeEvent(kind: EventKind, record: InputRecord, now: number): UserEvent {
    this.checkSize(record);
    const { value } = this.codec.decode<RawClick | RawImageView | RawReview>(record.value, EVENT_SCHEMAS[kind]);
    const base = {
      eventId: id('eventId', value.eventId, MAX_ID_CHARS),
      userId: id('userId', value.userId, MAX_ID_CHARS),
      itemId: id('itemId', value.itemId, MAX_ITEM_CHARS),
      eventTime: this.eventTime(value.eventTime, now),
    };
    const key = record.key?.toString('utf8');
    if (key !== base.userId) {
      throw new RejectedRecordError('KEY_MISMATCH', key === undefined ? 'record has no key; events must be keyed by userId' : `record key "${truncate(key)}" differs from userId "${truncate(base.userId)}"`);
    }
    switch (kind) {
      case 'click': {
        const v = value as RawClick;
        if (!ACTIONS.has(v.action)) throw new RejectedRecordError('INVALID_FIELD', `action "${v.action}" is unknown`);
        return { kind, ...base, categoryId: id('categoryId', v.categoryId, MAX_ID_CHARS), action: v.action as ClickAction };
      }
      case 'image': {
        const v = value as RawImageView;
        return { kind, ...base, categoryId: optionalId('categoryId', v.categoryId), imageId: id('imageId', v.imageId, MAX_ITEM_CHARS), image: imageSource(v.image) };
      }
      case 'review': {
        const v = value as RawReview;
        if (!Number.isInteger(v.rating) || v.rating < 1 || v.rating > 5) throw new RejectedRecordError('INVALID_FIELD', `rating must be 1..5, got ${v.rating}`);
        if (v.text.length > this.limits.maxTextChars) throw new RejectedRecordError('INVALID_FIELD', `text has ${v.text.length} characters, more than the ${this.limits.maxTextChars} allowed`);
        if (v.text.trim().length === 0) throw new RejectedRecordError('INVALID_FIELD', 'text is empty');
        return { kind, ...base, categoryId: optionalId('categoryId', v.categoryId), rating: v.rating, text: v.text };
      }
    }
  }

  /**
   * A deletion request from the deletions topic. Its time is not checked: a deletion is never
   * refused for being old or early. The key must be the user id (it picks the partition, and so the
   * instance, that holds the user).
   */
  decodeDeletion(record: InputRecord): UserDeletion {
    this.checkSize(record);
    const { value: v } = this.codec.decode<{ userId: string; requestedAt: number; requestId: string }>(record.value, Accepts.userDeletion);
    const userId = id('userId', v.userId, MAX_ID_CHARS);
    const key = record.key?.toString('utf8');
    if (key !== userId) {
      throw new RejectedRecordError('KEY_MISMATCH', key === undefined ? 'record has no key; deletions must be keyed by userId' : `record key "${truncate(key)}" differs from userId "${truncate(userId)}"`);
    }
    return { userId, requestedAt: v.requestedAt, requestId: id('requestId', v.requestId, MAX_ID_CHARS) };
  }

  /**
   * A report from the ad-feedback topic, checked like an event: ids, event time (skew, age), the
   * key equal to the user id (attribution joins a user's impressions and clicks in one partition).
   */
  decodeFeedback(record: InputRecord, now: number): AdFeedback {
    this.checkSize(record);
    const { value: v } = this.codec.decode<Omit<AdFeedback, 'kind'> & { kind: string }>(record.value, Accepts.adFeedback);
    const userId = id('userId', v.userId, MAX_ID_CHARS);
    const key = record.key?.toString('utf8');
    if (key !== userId) {
      throw new RejectedRecordError('KEY_MISMATCH', key === undefined ? 'record has no key; feedback must be keyed by userId' : `record key "${truncate(key)}" differs from userId "${truncate(userId)}"`);
    }
    if (!FEEDBACK_KINDS.has(v.kind)) throw new RejectedRecordError('INVALID_FIELD', `kind ${v.kind} is not IMPRESSION, CLICK or CONVERSION`);
    if (!Number.isInteger(v.position) || v.position < 0 || v.position > MAX_FEEDBACK_POSITION) throw new RejectedRecordError('INVALID_FIELD', `position must be 0..${MAX_FEEDBACK_POSITION}, got ${v.position}`);
    return {
      feedbackId: id('feedbackId', v.feedbackId, MAX_ID_CHARS),
      userId,
      adId: id('adId', v.adId, MAX_ID_CHARS),
      outputId: optionalId('outputId', v.outputId),
      position: v.position,
      kind: v.kind as FeedbackKind,
      eventTime: this.eventTime(v.eventTime, now),
    };
  }

  /** An ad from the catalog topic; null for a tombstone (the caller deletes by key). */
  decodeAd(record: InputRecord): Ad | null {
    if (record.value === null || record.value.length === 0) return null;
    this.checkSize(record);
    const { value: v } = this.codec.decode<RawAd>(record.value, Accepts.ad);
    const adId = id('adId', v.adId, MAX_ID_CHARS);
    const key = record.key?.toString('utf8');
    if (key !== undefined && key !== adId) throw new RejectedRecordError('KEY_MISMATCH', `record key "${truncate(key)}" differs from adId "${truncate(adId)}"`);
    if (!Number.isSafeInteger(v.bidMicros) || v.bidMicros < 0) throw new RejectedRecordError('INVALID_FIELD', `bidMicros must be a non-negative integer, got ${v.bidMicros}`);
    return {
      adId,
      advertiserId: id('advertiserId', v.advertiserId, MAX_ID_CHARS),
      title: v.title.slice(0, this.limits.maxTextChars),
      description: v.description.slice(0, this.limits.maxTextChars),
      categoryId: id('categoryId', v.categoryId, MAX_ID_CHARS),
      image: v.image === null ? null : imageSource(v.image),
      bidMicros: v.bidMicros,
      active: v.active,
      updatedAt: v.updatedAt,
    };
  }

  private checkSize(record: InputRecord): void {
    const size = (record.value?.length ?? 0) + (record.key?.length ?? 0);
    if (size > this.limits.maxRecordBytes) throw new RejectedRecordError('OVERSIZED', `record is ${size} bytes, more than the ${this.limits.maxRecordBytes} allowed`);
  }

  private eventTime(t: number, now: number): number {
    if (!Number.isSafeInteger(t)) throw new RejectedRecordError('INVALID_FIELD', `eventTime ${t} is not a valid timestamp`);
    if (t > now + this.limits.maxClockSkewMs) throw new RejectedRecordError('INVALID_FIELD', `eventTime ${new Date(t).toISOString()} is in the future (now ${new Date(now).toISOString()})`);
    if (t < now - this.limits.maxEventAgeMs) throw new RejectedRecordError('INVALID_FIELD', `eventTime ${t < 0 ? t : new Date(t).toISOString()} is older than the ${Math.round(this.limits.maxEventAgeMs / 1000)} s allowed`);
    return t;
  }
}

/** A chunk's events that decoded, in record order; sources[i] is the record of events[i]. */
export interface DecodedEvents {
  readonly events: UserEvent[];
  readonly sources: InputRecord[];
}

/**
 * Decodes a chunk of event records (topics: input topic -> the kind it carries); a record the
 * decoder rejects goes to reject. A record from another topic is a wiring bug, and throws.
 */
export function decodeEvents(
  decoder: Pick<EventDecoder, 'decodeEvent'>,
  topics: ReadonlyMap<string, EventKind>,
  records: readonly InputRecord[],
  now: number,
  reject: (source: InputRecord, err: unknown) => void,
): DecodedEvents {
  const events: UserEvent[] = [];
  const sources: InputRecord[] = [];
  for (const r of records) {
    const kind = topics.get(r.topic);
    if (!kind) throw new Error(`record from topic ${r.topic}, which is not an input topic`);
    try {
      events.push(decoder.decodeEvent(kind, r, now));
      sources.push(r);
    } catch (err) {
      reject(r, err);
    }
  }
  return { events, sources };
}

function id(field: string, v: string, maxChars: number): string {
  const s = v.trim();
  if (s.length === 0) throw new RejectedRecordError('INVALID_FIELD', `${field} is empty`);
  if (s.length > maxChars) throw new RejectedRecordError('INVALID_FIELD', `${field} has ${s.length} characters, more than ${maxChars}`);
  return s;
}

function optionalId(field: string, v: string | null): string | null {
  return v === null || v.trim() === '' ? null : id(field, v, MAX_ID_CHARS);
}

function imageSource(wrapped: Record<string, { data?: Buffer; contentType?: string | null; uri?: string }>): ImageSource {
  const branch = Object.values(wrapped)[0];
  if (branch?.data !== undefined) {
    if (branch.data.length === 0) throw new RejectedRecordError('INVALID_FIELD', 'image data is empty');
    return { kind: 'inline', data: branch.data, contentType: branch.contentType ?? null };
  }
  if (branch?.uri !== undefined) return { kind: 'reference', uri: branch.uri };
  throw new RejectedRecordError('INVALID_FIELD', 'image is neither inline bytes nor a reference');
}

function truncate(s: string, n = 64): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}
