import { readFileSync } from 'node:fs';
import type avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { rejection } from '../support/rejection.js';
import { RejectedRecordError, type ReasonCode } from '../../src/domain/errors.js';
import { EventDecoder, type DecodeLimits } from '../../src/pipeline/decode.js';
import type { EventKind, InputRecord } from '../../src/domain/events.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { SchemaTable } from '../../src/serde/schema-table.js';

const CLICK = 'dev.adstream.events.ClickEvent';
const IMAGE = 'dev.adstream.events.ImageViewEvent';
const REVIEW = 'dev.adstream.events.ReviewEvent';
const AD = 'dev.adstream.catalog.Ad';

const NOW = Date.UTC(2024, 5, 1, 12, 0, 0);
const LIMITS: DecodeLimits = {
  maxRecordBytes: 64 * 1024,
  maxTextChars: 200,
  maxClockSkewMs: 5 * 60_000,
  maxEventAgeMs: 30 * 24 * 3_600_000,
};

const codec = new AvroCodec();
const decoder = new EventDecoder(codec, LIMITS);

function record(value: Buffer | null, key: string | Buffer | null, offset = 0): InputRecord {
  return {
    topic: 't',
    partition: 0,
    offset: String(offset),
    key: key === null ? null : Buffer.isBuffer(key) ? key : Buffer.from(key, 'utf8'),
    value,
    timestamp: NOW,
  };
}

const click = {
  eventId: 'evt-c-1',
  userId: 'user-42',
  itemId: 'sku-1',
  categoryId: 'shoes',
  action: 'ADD_TO_CART',
  eventTime: NOW - 60_000,
  sessionId: 'sess-1',
};
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const image = {
  eventId: 'evt-i-1',
  userId: 'user-42',
  itemId: 'sku-2',
  categoryId: 'bags',
  imageId: 'img-1',
  image: { 'dev.adstream.events.InlineImage': { data: PNG, contentType: 'image/png' } },
  dwellMs: 1200,
  eventTime: NOW - 1000,
};
const review = {
  eventId: 'evt-r-1',
  userId: 'user-42',
  itemId: 'sku-3',
  categoryId: null,
  rating: 4,
  text: '质量很好 👍 — טוב מאוד',
  language: 'zh-CN',
  eventTime: NOW,
};
const ad = {
  adId: 'ad-1',
  advertiserId: 'adv-1',
  title: '夏季大促 ☀️',
  description: 'Sale — מבצע',
  categoryId: 'shoes',
  image: { 'dev.adstream.catalog.AdImageReference': { uri: 'https://cdn.example.com/ad-1.jpg' } },
  bidMicros: 1_500_000,
  active: true,
  updatedAt: NOW - 5000,
};

const SCHEMA_OF: Record<EventKind, string> = { click: CLICK, image: IMAGE, review: REVIEW };
const BASE_OF: Record<EventKind, Record<string, unknown>> = { click, image, review };

function eventRecord(kind: EventKind, patch: Record<string, unknown> = {}, key?: string | null): InputRecord {
  const value = { ...BASE_OF[kind], ...patch };
  return record(codec.encode(SCHEMA_OF[kind], value), key === undefined ? (value.userId as string) : key);
}

function expectReject(fn: () => unknown, reason: ReasonCode, message?: RegExp): RejectedRecordError {
  const err = rejection(fn);
  expect(err.reason).toBe(reason);
  if (message) expect(err.message).toMatch(message);
  return err;
}

describe('EventDecoder.decodeEvent: valid events', () => {
  it('decodes a click into the domain shape', () => {
    expect(decoder.decodeEvent('click', eventRecord('click'), NOW)).toEqual({
      kind: 'click',
      eventId: 'evt-c-1',
      userId: 'user-42',
      itemId: 'sku-1',
      eventTime: NOW - 60_000,
      categoryId: 'shoes',
      action: 'ADD_TO_CART',
    });
  });

  it('decodes every click action', () => {
    for (const action of ['VIEW', 'CLICK', 'ADD_TO_CART', 'PURCHASE']) {
      const e = decoder.decodeEvent('click', eventRecord('click', { action }), NOW);
      expect(e.kind === 'click' && e.action).toBe(action);
    }
  });

  it('decodes an image view with inline bytes', () => {
    const e = decoder.decodeEvent('image', eventRecord('image'), NOW);
    expect(e).toEqual({
      kind: 'image',
      eventId: 'evt-i-1',
      userId: 'user-42',
      itemId: 'sku-2',
      eventTime: NOW - 1000,
      categoryId: 'bags',
      imageId: 'img-1',
      image: { kind: 'inline', data: PNG, contentType: 'image/png' },
    });
    if (e.kind !== 'image' || e.image.kind !== 'inline') throw new Error('unreachable');
    expect(Buffer.isBuffer(e.image.data)).toBe(true);
    expect(Buffer.compare(e.image.data, PNG)).toBe(0);
  });

  it('decodes an inline image without a content type as contentType null', () => {
    const e = decoder.decodeEvent('image', eventRecord('image', { image: { 'dev.adstream.events.InlineImage': { data: PNG, contentType: null } } }), NOW);
    expect(e.kind === 'image' && e.image).toEqual({ kind: 'inline', data: PNG, contentType: null });
  });

  it('decodes an image reference as {kind: "reference"}', () => {
    const uri = 'https://cdn.example.com/图片/1.jpg';
    const e = decoder.decodeEvent('image', eventRecord('image', { image: { 'dev.adstream.events.ImageReference': { uri } }, categoryId: null }), NOW);
    expect(e.kind === 'image' && e.image).toEqual({ kind: 'reference', uri });
    expect(e.kind === 'image' && e.categoryId).toBeNull();
  });

  it('decodes a review into the domain shape (language is not carried)', () => {
    expect(decoder.decodeEvent('review', eventRecord('review'), NOW)).toEqual({
      kind: 'review',
      eventId: 'evt-r-1',
      userId: 'user-42',
      itemId: 'sku-3',
      eventTime: NOW,
      categoryId: null,
      rating: 4,
      text: review.text,
    });
  });

  it('accepts ratings 1 and 5, text of exactly maxTextChars, and ids of exactly 128 characters', () => {
    for (const rating of [1, 5]) {
      const e = decoder.decodeEvent('review', eventRecord('review', { rating }), NOW);
      expect(e.kind === 'review' && e.rating).toBe(rating);
    }
    const text = 'x'.repeat(LIMITS.maxTextChars);
    expect(decoder.decodeEvent('review', eventRecord('review', { text }), NOW)).toMatchObject({ text });
    const userId = 'u'.repeat(128);
    expect(decoder.decodeEvent('click', eventRecord('click', { userId, eventId: 'e'.repeat(128) }), NOW)).toMatchObject({ userId });
    // itemId allows up to 256.
    const itemId = 'i'.repeat(256);
    expect(decoder.decodeEvent('click', eventRecord('click', { itemId }), NOW)).toMatchObject({ itemId });
  });

  it('trims ids; the key must equal the trimmed userId', () => {
    const e = decoder.decodeEvent('click', eventRecord('click', { userId: '  user-42 ', eventId: ' e1 ', categoryId: ' shoes ' }, 'user-42'), NOW);
    expect(e).toMatchObject({ userId: 'user-42', eventId: 'e1', categoryId: 'shoes' });
  });

  it('turns an empty or blank optional categoryId into null', () => {
    for (const categoryId of ['', '   ']) {
      const e = decoder.decodeEvent('review', eventRecord('review', { categoryId }), NOW);
      expect(e.categoryId).toBeNull();
    }
  });

  it('accepts eventTime exactly at the skew and age limits', () => {
    for (const eventTime of [NOW + LIMITS.maxClockSkewMs, NOW - LIMITS.maxEventAgeMs]) {
      expect(decoder.decodeEvent('click', eventRecord('click', { eventTime }), NOW).eventTime).toBe(eventTime);
    }
  });

  it('handles multi-byte user ids as UTF-8 keys', () => {
    const userId = '用户-😀-משתמש';
    expect(decoder.decodeEvent('click', eventRecord('click', { userId }), NOW).userId).toBe(userId);
  });
});

describe('EventDecoder.decodeEvent: INVALID_FIELD', () => {
  it.each(['eventId', 'userId', 'itemId'])('empty or whitespace %s', (field) => {
    for (const v of ['', ' ', '\t\n ']) {
      // key: for a blank userId use the raw value so the failure is about the field, not the key.
      expectReject(() => decoder.decodeEvent('click', eventRecord('click', { [field]: v }, field === 'userId' ? v : 'user-42'), NOW), 'INVALID_FIELD', new RegExp(`${field} is empty`));
    }
  });

  it('empty categoryId on a click (required there)', () => {
    expectReject(() => decoder.decodeEvent('click', eventRecord('click', { categoryId: ' ' }), NOW), 'INVALID_FIELD', /categoryId is empty/);
  });

  it('empty imageId', () => {
    expectReject(() => decoder.decodeEvent('image', eventRecord('image', { imageId: '' }), NOW), 'INVALID_FIELD', /imageId is empty/);
  });

  it('ids over 128 characters (itemId over 256)', () => {
    expectReject(() => decoder.decodeEvent('click', eventRecord('click', { userId: 'u'.repeat(129) }), NOW), 'INVALID_FIELD', /userId has 129 characters/);
    expectReject(() => decoder.decodeEvent('click', eventRecord('click', { eventId: 'e'.repeat(129) }), NOW), 'INVALID_FIELD', /eventId/);
    expectReject(() => decoder.decodeEvent('click', eventRecord('click', { categoryId: 'c'.repeat(129) }), NOW), 'INVALID_FIELD', /categoryId/);
    expectReject(() => decoder.decodeEvent('review', eventRecord('review', { categoryId: 'c'.repeat(129) }), NOW), 'INVALID_FIELD', /categoryId/);
    expectReject(() => decoder.decodeEvent('click', eventRecord('click', { itemId: 'i'.repeat(257) }), NOW), 'INVALID_FIELD', /itemId/);
    expectReject(() => decoder.decodeEvent('image', eventRecord('image', { imageId: 'm'.repeat(257) }), NOW), 'INVALID_FIELD', /imageId/);
  });

  it('eventTime beyond maxClockSkewMs in the future', () => {
    for (const eventTime of [NOW + LIMITS.maxClockSkewMs + 1, NOW + 365 * 86_400_000, 8.64e15]) {
      expectReject(() => decoder.decodeEvent('click', eventRecord('click', { eventTime }), NOW), 'INVALID_FIELD', /future/);
    }
  });

  it('eventTime older than maxEventAgeMs, zero and negative', () => {
    for (const eventTime of [NOW - LIMITS.maxEventAgeMs - 1, 0, -1, -(2 ** 50)]) {
      expectReject(() => decoder.decodeEvent('review', eventRecord('review', { eventTime }), NOW), 'INVALID_FIELD', /older than/);
    }
  });

  it('the same eventTime is valid or not depending on `now`', () => {
    const rec = eventRecord('click', { eventTime: NOW });
    expect(decoder.decodeEvent('click', rec, NOW).eventTime).toBe(NOW);
    expectReject(() => decoder.decodeEvent('click', rec, NOW - LIMITS.maxClockSkewMs - 1), 'INVALID_FIELD', /future/);
    expectReject(() => decoder.decodeEvent('click', rec, NOW + LIMITS.maxEventAgeMs + 1), 'INVALID_FIELD', /older/);
  });

  it('rating 0, 6 and negative', () => {
    for (const rating of [0, 6, -1, 100]) {
      expectReject(() => decoder.decodeEvent('review', eventRecord('review', { rating }), NOW), 'INVALID_FIELD', new RegExp(`rating must be 1..5, got ${rating}`));
    }
  });

  it('empty and whitespace-only review text', () => {
    for (const text of ['', '   ', '\n\t']) {
      expectReject(() => decoder.decodeEvent('review', eventRecord('review', { text }), NOW), 'INVALID_FIELD', /text is empty/);
    }
  });

  it('text over maxTextChars', () => {
    expectReject(() => decoder.decodeEvent('review', eventRecord('review', { text: 'x'.repeat(LIMITS.maxTextChars + 1) }), NOW), 'INVALID_FIELD', new RegExp(`${LIMITS.maxTextChars + 1} characters`));
  });

  it('empty inline image bytes', () => {
    expectReject(
      () => decoder.decodeEvent('image', eventRecord('image', { image: { 'dev.adstream.events.InlineImage': { data: Buffer.alloc(0), contentType: 'image/png' } } }), NOW),
      'INVALID_FIELD',
      /image data is empty/,
    );
  });

  it('an action symbol unknown to the processor (from a newer ClickEvent schema)', () => {
    // A newer producer schema adds SHARE; the processor's table knows it (id 101), so Avro decodes
    // the symbol, and the decoder must refuse an action it has no weight for.
    const v1 = JSON.parse(readFileSync(new URL('../../schemas/click-event.avsc', import.meta.url), 'utf8')) as { fields: Array<Record<string, unknown>> };
    const v2 = {
      ...v1,
      fields: v1.fields.map((f) => (f.name === 'action' ? { ...f, type: { ...(f.type as object), symbols: ['VIEW', 'CLICK', 'ADD_TO_CART', 'PURCHASE', 'SHARE'] } } : f)),
    };
    const table = new SchemaTable();
    table.add(1, v1 as unknown as avro.Schema);
    table.add(101, v2 as unknown as avro.Schema);
    const newCodec = new AvroCodec(table);
    const newDecoder = new EventDecoder(newCodec, LIMITS);
    const rec = record(newCodec.encode(CLICK, { ...click, action: 'SHARE' }), 'user-42');
    expectReject(() => newDecoder.decodeEvent('click', rec, NOW), 'INVALID_FIELD', /action "SHARE" is unknown/);
    // Known actions still work through the same codec.
    expect(newDecoder.decodeEvent('click', record(newCodec.encode(CLICK, click), 'user-42'), NOW)).toMatchObject({ action: 'ADD_TO_CART' });
  });
});

describe('EventDecoder.decodeEvent: KEY_MISMATCH', () => {
  it('null key', () => {
    expectReject(() => decoder.decodeEvent('click', eventRecord('click', {}, null), NOW), 'KEY_MISMATCH', /no key/);
  });

  it("another user's key, an empty key, or a differently-cased key", () => {
    for (const kind of ['click', 'image', 'review'] as const) {
      for (const key of ['user-43', '', 'USER-42', 'user-42 ']) {
        expectReject(() => decoder.decodeEvent(kind, eventRecord(kind, {}, key), NOW), 'KEY_MISMATCH', /differs from userId/);
      }
    }
  });

  it('the userId is validated before the key is compared', () => {
    expectReject(() => decoder.decodeEvent('click', eventRecord('click', { userId: '' }, null), NOW), 'INVALID_FIELD');
  });
});

describe('EventDecoder.decodeEvent: framing and size', () => {
  it('OVERSIZED when key + value exceed maxRecordBytes, checked before decoding', () => {
    const rec = eventRecord('click');
    const size = rec.value!.length + rec.key!.length;
    const exact = new EventDecoder(codec, { ...LIMITS, maxRecordBytes: size });
    expect(exact.decodeEvent('click', rec, NOW).eventId).toBe('evt-c-1');
    const tooSmall = new EventDecoder(codec, { ...LIMITS, maxRecordBytes: size - 1 });
    expectReject(() => tooSmall.decodeEvent('click', rec, NOW), 'OVERSIZED', new RegExp(`${size} bytes`));

    // A value alone over the limit; garbage, so a later check would say BAD_FRAMING.
    const garbage = record(Buffer.alloc(LIMITS.maxRecordBytes + 1, 0x41), 'user-42');
    expectReject(() => decoder.decodeEvent('click', garbage, NOW), 'OVERSIZED');
    // A valid review whose text pushes the record over the limit.
    const bigText = record(codec.encode(REVIEW, { ...review, text: 'x'.repeat(LIMITS.maxRecordBytes) }), 'user-42');
    expectReject(() => decoder.decodeEvent('review', bigText, NOW), 'OVERSIZED');
  });

  it('passes codec errors through: EMPTY_VALUE, BAD_FRAMING, WRONG_SCHEMA, DECODE_FAILED', () => {
    expectReject(() => decoder.decodeEvent('click', record(null, 'user-42'), NOW), 'EMPTY_VALUE');
    expectReject(() => decoder.decodeEvent('click', record(Buffer.from('{"userId":"user-42"}'), 'user-42'), NOW), 'BAD_FRAMING');
    expectReject(() => decoder.decodeEvent('click', eventRecord('review'), NOW), 'WRONG_SCHEMA');
    expectReject(() => decoder.decodeEvent('image', eventRecord('click'), NOW), 'WRONG_SCHEMA');
    expectReject(() => decoder.decodeEvent('review', record(codec.encode(AD, ad), 'user-42'), NOW), 'WRONG_SCHEMA');
    const rec = eventRecord('click');
    expectReject(() => decoder.decodeEvent('click', record(rec.value!.subarray(0, rec.value!.length - 3), 'user-42'), NOW), 'DECODE_FAILED');
  });
});

describe('EventDecoder.decodeAd', () => {
  const adRecord = (patch: Record<string, unknown> = {}, key: string | null = 'ad-1') => record(codec.encode(AD, { ...ad, ...patch }), key);

  it('returns null for a tombstone (null or empty value)', () => {
    expect(decoder.decodeAd(record(null, 'ad-1'))).toBeNull();
    expect(decoder.decodeAd(record(Buffer.alloc(0), 'ad-1'))).toBeNull();
  });

  it('decodes an ad with an image reference', () => {
    expect(decoder.decodeAd(adRecord())).toEqual({
      adId: 'ad-1',
      advertiserId: 'adv-1',
      title: ad.title,
      description: ad.description,
      categoryId: 'shoes',
      image: { kind: 'reference', uri: 'https://cdn.example.com/ad-1.jpg' },
      bidMicros: 1_500_000,
      active: true,
      updatedAt: NOW - 5000,
    });
  });

  it('decodes inline and missing images', () => {
    expect(decoder.decodeAd(adRecord({ image: { 'dev.adstream.catalog.AdInlineImage': { data: PNG, contentType: null } } }))?.image).toEqual({ kind: 'inline', data: PNG, contentType: null });
    expect(decoder.decodeAd(adRecord({ image: null }))?.image).toBeNull();
    expectReject(() => decoder.decodeAd(adRecord({ image: { 'dev.adstream.catalog.AdInlineImage': { data: Buffer.alloc(0), contentType: null } } })), 'INVALID_FIELD', /image data is empty/);
  });

  it('accepts an inactive ad', () => {
    const got = decoder.decodeAd(adRecord({ active: false }));
    expect(got?.active).toBe(false);
    expect(got?.adId).toBe('ad-1');
  });

  it('rejects a negative bidMicros and accepts 0 and large bids', () => {
    expectReject(() => decoder.decodeAd(adRecord({ bidMicros: -1 })), 'INVALID_FIELD', /bidMicros/);
    expect(decoder.decodeAd(adRecord({ bidMicros: 0 }))?.bidMicros).toBe(0);
    expect(decoder.decodeAd(adRecord({ bidMicros: 2 ** 40 }))?.bidMicros).toBe(2 ** 40);
  });

  it('accepts a null key, rejects a key of another ad', () => {
    expect(decoder.decodeAd(adRecord({}, null))?.adId).toBe('ad-1');
    expectReject(() => decoder.decodeAd(adRecord({}, 'ad-2')), 'KEY_MISMATCH', /differs from adId/);
  });

  it('cuts title and description to maxTextChars', () => {
    const got = decoder.decodeAd(adRecord({ title: 't'.repeat(LIMITS.maxTextChars + 50), description: 'd'.repeat(LIMITS.maxTextChars * 2) }));
    expect(got?.title).toBe('t'.repeat(LIMITS.maxTextChars));
    expect(got?.description).toBe('d'.repeat(LIMITS.maxTextChars));
  });

  it('validates ids', () => {
    expectReject(() => decoder.decodeAd(adRecord({ adId: ' ' }, null)), 'INVALID_FIELD', /adId is empty/);
    expectReject(() => decoder.decodeAd(adRecord({ advertiserId: '' })), 'INVALID_FIELD', /advertiserId is empty/);
    expectReject(() => decoder.decodeAd(adRecord({ categoryId: 'c'.repeat(129) })), 'INVALID_FIELD', /categoryId/);
  });

  it('OVERSIZED and WRONG_SCHEMA', () => {
    const rec = adRecord();
    const small = new EventDecoder(codec, { ...LIMITS, maxRecordBytes: rec.value!.length + rec.key!.length - 1 });
    expectReject(() => small.decodeAd(rec), 'OVERSIZED');
    expectReject(() => decoder.decodeAd(eventRecord('click')), 'WRONG_SCHEMA');
  });
});
