import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { rejection } from '../support/rejection.js';
import { seededRandom } from '../../src/util/random.js';
import { ReasonCodes, RejectedRecordError, type ReasonCode } from '../../src/domain/errors.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { RecordNames } from '../../src/serde/record-names.js';
import { SchemaTable, projectSchemas } from '../../src/serde/schema-table.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const SCHEMA_DIR = new URL('../../schemas/', import.meta.url);

interface IndexEntry {
  id: number;
  name: string;
  file: string;
}
const INDEX = JSON.parse(readFileSync(new URL('index.json', SCHEMA_DIR), 'utf8')) as { schemas: IndexEntry[] };

function schemaFile(file: string): avro.Schema & Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(file, SCHEMA_DIR), 'utf8')) as avro.Schema & Record<string, unknown>;
}

function idOf(name: string): number {
  const e = INDEX.schemas.find((s) => s.name === name);
  if (!e) throw new Error(`test setup: ${name} not in index.json`);
  return e.id;
}

function fileOf(name: string): string {
  const e = INDEX.schemas.find((s) => s.name === name);
  if (!e) throw new Error(`test setup: ${name} not in index.json`);
  return e.file;
}

const CLICK = 'dev.adstream.events.ClickEvent';
const IMAGE = 'dev.adstream.events.ImageViewEvent';
const REVIEW = 'dev.adstream.events.ReviewEvent';
const AD = 'dev.adstream.catalog.Ad';
const SCORED = 'dev.adstream.outputs.ScoredCandidates';
const SEGMENTS = 'dev.adstream.outputs.InterestSegments';
const DEAD = 'dev.adstream.outputs.DeadLetter';
const STATE = 'dev.adstream.state.UserState';

const T0 = Date.UTC(2024, 4, 29, 12, 34, 56, 789);

// Realistic values, one (or more) per schema. Text mixes Chinese, emoji (astral plane, ZWJ
// sequences) and right-to-left scripts (Hebrew, Arabic) so UTF-8 encoding is exercised.
const MIXED_TEXT = '这双鞋很舒服，尺码正好 👟👍🏽 👨‍👩‍👧 — מוצר מעולה, ממליץ! — منتج ممتاز جدا ✨';

const clickValue = {
  eventId: 'evt-7f3c9a2e-0001',
  userId: 'user-42-用户',
  itemId: 'sku-运动鞋-🏃-001',
  categoryId: 'shoes',
  action: 'ADD_TO_CART',
  eventTime: T0,
  sessionId: 'sess-ש-123',
};
const clickNoSession = { ...clickValue, eventId: 'evt-2', action: 'PURCHASE', sessionId: null };

// A tiny PNG signature + IHDR start; the codec treats it as opaque bytes, including 0x00 and 0xff.
const PNG_BYTES = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0xff, 0x00, 0xfe]);

const imageInline = {
  eventId: 'evt-img-1',
  userId: 'user-42-用户',
  itemId: 'sku-1',
  categoryId: 'bags',
  imageId: 'img-9f8e7d',
  image: { 'dev.adstream.events.InlineImage': { data: PNG_BYTES, contentType: 'image/png' } },
  dwellMs: 1532,
  eventTime: T0 + 1,
};
const imageInlineNoType = {
  ...imageInline,
  eventId: 'evt-img-1b',
  image: { 'dev.adstream.events.InlineImage': { data: Buffer.alloc(0), contentType: null } },
};
const imageReference = {
  eventId: 'evt-img-2',
  userId: 'مستخدم-7',
  itemId: 'sku-2',
  categoryId: null,
  imageId: 'img-ref-1',
  image: { 'dev.adstream.events.ImageReference': { uri: 'https://cdn.example.com/图片/商品-😀.jpg?w=512' } },
  dwellMs: null,
  eventTime: T0 + 2,
};

const reviewValue = {
  eventId: 'evt-rev-1',
  userId: 'user-42-用户',
  itemId: 'sku-运动鞋-🏃-001',
  categoryId: 'shoes',
  rating: 5,
  text: MIXED_TEXT,
  language: 'zh-CN',
  eventTime: T0 + 3,
};

const adInline = {
  adId: 'ad-001',
  advertiserId: 'adv-耐克',
  title: 'خصم كبير 50% على الأحذية',
  description: '限时优惠 🔥 仅限今天 — מבצע!',
  categoryId: 'shoes',
  image: { 'dev.adstream.catalog.AdInlineImage': { data: PNG_BYTES, contentType: null } },
  // Above 2^32 so the long encoding is really exercised.
  bidMicros: 5_000_000_123,
  active: true,
  updatedAt: T0,
};
const adReference = {
  ...adInline,
  adId: 'ad-002',
  image: { 'dev.adstream.catalog.AdImageReference': { uri: 'file:///srv/creatives/広告-🖼.webp' } },
  active: false,
};
const adNoImage = { ...adInline, adId: 'ad-003', image: null, description: '', bidMicros: 0 };

const scoredValue = {
  outputId: 'out-3b1f',
  userId: 'user-42-用户',
  candidates: [
    { adId: 'ad-001', score: 0.8734, categoryId: 'shoes' },
    { adId: 'ad-😀', score: -0.125, categoryId: 'מוזיקה' },
    { adId: 'ad-003', score: 0.1, categoryId: '运动' },
  ],
  modelVersion: 'hashed-v1+clip-zh',
  triggerEventTime: T0,
  processingTime: T0 + 17,
  eventIds: ['evt-7f3c9a2e-0001', 'evt-img-1', 'evt-rev-1'],
};
const scoredEmpty = { ...scoredValue, outputId: 'out-empty', candidates: [], eventIds: [] };

const segmentsValue = {
  userId: 'user-42-用户',
  segments: [
    { name: '运动鞋', weight: 0.6 },
    { name: 'מוזיקה', weight: 0.3 },
    { name: 'موسيقى 🎵', weight: 0.1 },
  ],
  updatedAt: T0 + 99,
};

const deadValue = {
  sourceTopic: 'clicks',
  sourcePartition: 2,
  // Above 2^32, so a 32-bit truncation would show.
  sourceOffset: 2 ** 40 + 7,
  key: Buffer.from('user-42-用户', 'utf8'),
  value: Buffer.from([0x00, 0x00, 0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]),
  valueTruncated: true,
  reason: 'DECODE_FAILED',
  message: 'Avro body does not decode — 解码失败 ⚠️ — פענוח נכשל',
  failedAt: T0 + 1000,
};
const deadNulls = { ...deadValue, key: null, value: null, valueTruncated: false, reason: 'EMPTY_VALUE' };

const stateValue = {
  userId: 'user-42-用户',
  partition: 2,
  space: 'default-v1-43f083bf6941/concat-f128',
  interests: [
    // float32 little-endian bytes, including 0x00 and 0xff
    { vector: Buffer.from([0x00, 0x00, 0x80, 0x3f, 0xff, 0xff, 0x7f, 0x7f]), strength: 2.75, asOf: T0, events: 12 },
    { vector: Buffer.alloc(0), strength: 0.1, asOf: T0 - 5, events: 1 },
  ],
  latestEventTime: T0,
  pendingEventIds: ['evt-7f3c9a2e-0001', 'evt-img-1'],
  lastEmittedAt: T0 - 1000,
  updatedAt: T0 + 3,
  lastSegments: [{ name: '运动鞋', weight: 0.7 }, { name: 'books', weight: 0.3 }],
};
const stateFresh = { ...stateValue, userId: 'u', interests: [], pendingEventIds: [], lastEmittedAt: 0, lastSegments: [] };

/** Avro `float` fields come back as the nearest float32; everything else must be bit-exact. */
function withFloat32(name: string, v: Record<string, unknown>): Record<string, unknown> {
  if (name === SCORED) {
    const s = v as typeof scoredValue;
    return { ...s, candidates: s.candidates.map((c) => ({ ...c, score: Math.fround(c.score) })) };
  }
  if (name === SEGMENTS) {
    const s = v as typeof segmentsValue;
    return { ...s, segments: s.segments.map((g) => ({ ...g, weight: Math.fround(g.weight) })) };
  }
  if (name === STATE) {
    const s = v as typeof stateValue;
    return { ...s, interests: s.interests.map((i) => ({ ...i, strength: Math.fround(i.strength) })), lastSegments: s.lastSegments.map((g) => ({ ...g, weight: Math.fround(g.weight) })) };
  }
  return v;
}

const SAMPLES: Array<[string, string, Record<string, unknown>]> = [
  [CLICK, 'click with session', clickValue],
  [CLICK, 'click without session', clickNoSession],
  [IMAGE, 'image view, inline bytes', imageInline],
  [IMAGE, 'image view, inline empty bytes, no content type', imageInlineNoType],
  [IMAGE, 'image view, reference', imageReference],
  [REVIEW, 'review', reviewValue],
  [AD, 'ad, inline image', adInline],
  [AD, 'ad, image reference, inactive', adReference],
  [AD, 'ad, no image', adNoImage],
  [SCORED, 'scored candidates', scoredValue],
  [SCORED, 'scored candidates, empty', scoredEmpty],
  [SEGMENTS, 'interest segments', segmentsValue],
  [DEAD, 'dead letter', deadValue],
  [DEAD, 'dead letter with null key/value', deadNulls],
  [STATE, 'user state', stateValue],
  [STATE, 'user state, fresh', stateFresh],
  ['dev.adstream.privacy.UserDeletion', 'user deletion, Unicode id', { userId: '用户-😀-שלום', requestedAt: 1_764_000_000_000, requestId: 'gdpr-2026-0001' }],
  ['dev.adstream.learning.TrainingExample', 'training example (floats exact in float32)', { exampleId: 'imp-1', userId: 'u1', adId: 'ad-7', outputId: 'out-3', position: 2, servedAt: 1_764_000_000_000, label: 1, modelVersion: 'default-v1/concat-f4/ctr-v1', servedCtr: 0.125, interest: [0.5, -0.5, 0.5, 0.5], ad: [1, 0, 0, -0.25] }],
  ['dev.adstream.feedback.AdFeedback', 'ad feedback, click with output id', { feedbackId: 'fb-1', userId: 'u1', adId: 'ad-7', outputId: 'out-3', position: 0, kind: 'CLICK', eventTime: 1_764_000_000_000 }],
  ['dev.adstream.feedback.AdFeedback', 'ad feedback, impression without output id', { feedbackId: 'fb-2', userId: 'u1', adId: 'ad-7', outputId: null, position: 4, kind: 'IMPRESSION', eventTime: 1_764_000_000_000 }],
];

// ---------------------------------------------------------------------------------------------
// schemas/ and index.json
// ---------------------------------------------------------------------------------------------

describe('schemas/index.json and the .avsc files', () => {
  it('has unique ids and names, ids fit the 4-byte header', () => {
    const ids = INDEX.schemas.map((s) => s.id);
    const names = INDEX.schemas.map((s) => s.name);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(names).size).toBe(names.length);
    for (const id of ids) {
      expect(Number.isInteger(id)).toBe(true);
      expect(id).toBeGreaterThanOrEqual(0);
      expect(id).toBeLessThanOrEqual(0xffffffff);
    }
  });

  it('lists every .avsc file in schemas/, and every listed file exists', () => {
    const onDisk = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.avsc')).sort();
    const listed = INDEX.schemas.map((s) => s.file).sort();
    expect(onDisk.length).toBeGreaterThan(0);
    expect(listed).toEqual(onDisk);
  });

  it('names in index.json match the full name declared in each file', () => {
    for (const s of INDEX.schemas) {
      const raw = schemaFile(s.file) as { name: string; namespace?: string };
      const full = raw.name.includes('.') ? raw.name : `${raw.namespace}.${raw.name}`;
      expect(full, s.file).toBe(s.name);
    }
  });

  it('covers every schema the tests below round-trip', () => {
    const tested = new Set(SAMPLES.map(([name]) => name));
    expect([...tested].sort()).toEqual(INDEX.schemas.map((s) => s.name).sort());
  });

  it('documents every field of every schema, nested records included', () => {
    const missing: string[] = [];
    let fieldsSeen = 0;
    for (const s of INDEX.schemas) {
      const r = undocumentedFields(schemaFile(s.file), s.file);
      missing.push(...r.missing);
      fieldsSeen += r.fields;
    }
    // Sanity check on the walker itself: nested records (Candidate, Segment, InlineImage...) were visited.
    expect(fieldsSeen).toBe(INDEX.schemas.reduce((n, s) => n + countFields(avro.Type.forSchema(schemaFile(s.file))), 0));
    expect(missing).toEqual([]);
  });

  it('the doc check finds undocumented fields nested in arrays, unions and maps (self-test)', () => {
    const bad = {
      type: 'record',
      name: 'X',
      fields: [
        { name: 'a', doc: 'ok', type: { type: 'array', items: { type: 'record', name: 'Y', fields: [{ name: 'b', type: 'int' }] } } },
        { name: 'c', doc: '  ', type: ['null', { type: 'record', name: 'Z', fields: [{ name: 'd', doc: 'ok', type: { type: 'map', values: { type: 'record', name: 'W', fields: [{ name: 'e', type: 'int' }] } } }] }] },
      ],
    };
    expect(undocumentedFields(bad, 'bad').missing).toEqual(['bad.X.a.Y.b', 'bad.X.c', 'bad.X.c[1].Z.d{}.W.e']);
  });
});

/** Fields without a non-empty doc, walking nested records in arrays, maps and unions. */
function undocumentedFields(schema: unknown, path: string): { missing: string[]; fields: number } {
  const missing: string[] = [];
  let fields = 0;
  const walkType = (t: unknown, where: string): void => {
    if (Array.isArray(t)) {
      t.forEach((branch, i) => walkType(branch, `${where}[${i}]`));
      return;
    }
    if (t === null || typeof t !== 'object') return; // primitive or named reference
    const o = t as { type?: unknown; fields?: unknown[]; items?: unknown; values?: unknown; name?: string };
    if (o.type === 'record' || o.type === 'error') {
      for (const f of o.fields ?? []) {
        const field = f as { name: string; doc?: unknown; type: unknown };
        fields++;
        const at = `${where}.${o.name ?? '?'}.${field.name}`;
        if (typeof field.doc !== 'string' || field.doc.trim() === '') missing.push(at);
        walkType(field.type, at);
      }
    } else if (o.type === 'array') {
      walkType(o.items, where);
    } else if (o.type === 'map') {
      walkType(o.values, `${where}{}`);
    } else if (typeof o.type === 'object') {
      walkType(o.type, where);
    }
  };
  walkType(schema, path);
  return { missing, fields };
}

/** Record fields reachable from a parsed avsc Type, counted independently of the JSON walker. */
function countFields(type: avro.Type, seen = new Set<avro.Type>()): number {
  if (seen.has(type)) return 0;
  seen.add(type);
  if (type instanceof avro.types.RecordType) return type.fields.reduce((n, f) => n + 1 + countFields(f.type, seen), 0);
  if (type instanceof avro.types.ArrayType) return countFields(type.itemsType, seen);
  if (type instanceof avro.types.MapType) return countFields(type.valuesType, seen);
  if (type instanceof avro.types.UnwrappedUnionType || type instanceof avro.types.WrappedUnionType) return type.types.reduce((n, t) => n + countFields(t, seen), 0);
  if (type instanceof avro.types.LogicalType) return countFields(type.underlyingType, seen);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// SchemaTable
// ---------------------------------------------------------------------------------------------

describe('SchemaTable', () => {
  it('projectSchemas() holds every index.json entry under its id', () => {
    const table = projectSchemas();
    for (const s of INDEX.schemas) {
      const entry = table.get(s.id);
      expect(entry?.name).toBe(s.name);
      expect(table.latest(s.name).id).toBe(s.id);
    }
    expect(projectSchemas()).toBe(table); // loaded once
  });

  it('refuses a duplicate id and an unnamed schema', () => {
    const table = new SchemaTable();
    table.add(1, schemaFile('click-event.avsc'));
    expect(() => table.add(1, schemaFile('review-event.avsc'))).toThrow(/id 1 is already taken/);
    expect(() => table.add(2, 'string')).toThrow(/no name/);
  });

  it('latest() is the highest id of a name, whatever the order of add()', () => {
    const table = new SchemaTable();
    const v1 = schemaFile('click-event.avsc');
    table.add(50, v1);
    table.add(7, v1);
    expect(table.latest(CLICK).id).toBe(50);
    table.add(60, v1);
    expect(table.latest(CLICK).id).toBe(60);
    expect(table.get(7)?.name).toBe(CLICK);
    expect(table.get(8)).toBeUndefined();
    expect(() => table.latest('no.such.Record')).toThrow(/no schema named no\.such\.Record/);
  });

  it('fromDirectory() rejects an index whose name disagrees with the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'adstream-schemas-'));
    try {
      writeFileSync(join(dir, 'click-event.avsc'), readFileSync(new URL('click-event.avsc', SCHEMA_DIR)));
      writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemas: [{ id: 1, name: 'dev.adstream.events.Wrong', file: 'click-event.avsc' }] }));
      expect(() => SchemaTable.fromDirectory(pathToFileURL(`${dir}/`))).toThrow(/id 1 says dev\.adstream\.events\.Wrong but click-event\.avsc holds dev\.adstream\.events\.ClickEvent/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

describe('AvroCodec round trip', () => {
  const codec = new AvroCodec();

  it.each(SAMPLES)('%s: %s', (name, _label, value) => {
    const buf = codec.encode(name, value);

    // Confluent header: magic 0 then the big-endian id from index.json.
    const id = idOf(name);
    expect(buf[0]).toBe(0);
    expect(buf.readUInt32BE(1)).toBe(id);
    expect([...buf.subarray(1, 5)]).toEqual([(id >>> 24) & 0xff, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff]);

    // The body is plain Avro binary of the .avsc file, readable by an independent avsc Type.
    const independent = avro.Type.forSchema(schemaFile(fileOf(name)));
    expect(independent.fromBuffer(buf.subarray(5))).toEqual(withFloat32(name, value));

    const decoded = codec.decode<Record<string, unknown>>(buf, new Set([name]));
    expect(decoded.schemaName).toBe(name);
    expect(decoded.value).toEqual(withFloat32(name, value));
  });

  it('keeps multi-byte text byte-exact (UTF-8, not UTF-16 or Latin-1)', () => {
    const buf = codec.encode(REVIEW, reviewValue);
    // The UTF-8 bytes of the text appear verbatim in the body.
    expect(buf.includes(Buffer.from(MIXED_TEXT, 'utf8'))).toBe(true);
    const { value } = codec.decode<typeof reviewValue>(buf, new Set([REVIEW]));
    expect(value.text).toBe(MIXED_TEXT);
    expect([...value.text]).toEqual([...MIXED_TEXT]); // same code points, ZWJ sequences intact
  });

  it('decodes image unions wrapped by full record name, keeping the branch', () => {
    const inline = codec.decode<typeof imageInline>(codec.encode(IMAGE, imageInline), new Set([IMAGE])).value;
    expect(Object.keys(inline.image)).toEqual(['dev.adstream.events.InlineImage']);
    expect(Buffer.compare(inline.image['dev.adstream.events.InlineImage'].data, PNG_BYTES)).toBe(0);
    const ref = codec.decode<Record<string, unknown>>(codec.encode(IMAGE, imageReference), new Set([IMAGE])).value;
    expect(Object.keys(ref.image as object)).toEqual(['dev.adstream.events.ImageReference']);
    const ad = codec.decode<Record<string, unknown>>(codec.encode(AD, adReference), new Set([AD])).value;
    expect(Object.keys(ad.image as object)).toEqual(['dev.adstream.catalog.AdImageReference']);
    expect(codec.decode<Record<string, unknown>>(codec.encode(AD, adNoImage), new Set([AD])).value.image).toBeNull();
  });

  it('accepts a value when its name is one of several accepted', () => {
    const buf = codec.encode(CLICK, clickValue);
    expect(codec.decode(buf, new Set([REVIEW, CLICK])).schemaName).toBe(CLICK);
  });

  it('decodes a buffer that is a view into a larger allocation', () => {
    const buf = codec.encode(CLICK, clickValue);
    const big = Buffer.concat([Buffer.from([9, 9, 9]), buf, Buffer.from([7, 7])]);
    const view = big.subarray(3, 3 + buf.length);
    expect(codec.decode(view, new Set([CLICK])).value).toEqual(clickValue);
  });

  it('each encoding owns its bytes (the codec writes through one scratch buffer), larger ones included', () => {
    const own = new AvroCodec();
    const first = own.encode(CLICK, clickValue);
    const copy = Buffer.from(first);
    // Larger than the scratch buffer (16 KiB): it grows, then a small one again.
    const ids = Array.from({ length: 3000 }, (_, i) => `event-${i}`);
    const scored = { outputId: 'o', userId: 'u', candidates: [], modelVersion: 'm', triggerEventTime: 1, processingTime: 2, eventIds: ids };
    const large = own.encode(RecordNames.scored, scored);
    expect(large.length).toBeGreaterThan(16 * 1024);
    const second = own.encode(CLICK, { ...clickValue, eventId: 'another-event' });
    expect(first.equals(copy)).toBe(true);
    expect(first.buffer === second.buffer && first.byteOffset === second.byteOffset).toBe(false);
    expect(own.decode<{ eventIds: string[] }>(large, new Set([RecordNames.scored])).value.eventIds).toEqual(ids);
    expect(own.decode(second, new Set([CLICK])).value).toEqual({ ...clickValue, eventId: 'another-event' });
  });
});

// ---------------------------------------------------------------------------------------------
// Schema evolution
// ---------------------------------------------------------------------------------------------

type AvscRecord = { type: 'record'; name: string; namespace?: string; doc?: string; fields: Array<Record<string, unknown>> };

function clickV1(): AvscRecord {
  return schemaFile('click-event.avsc') as unknown as AvscRecord;
}

/** v2 of ClickEvent: a new optional `referrer` and a new enum symbol appended. */
function clickV2(): AvscRecord {
  const s = clickV1();
  const fields = s.fields.map((f) => {
    if (f.name !== 'action') return f;
    const enumType = f.type as { symbols: string[] };
    return { ...f, type: { ...enumType, symbols: [...enumType.symbols, 'SHARE'] } };
  });
  fields.push({ name: 'referrer', type: ['null', 'string'], default: null, doc: 'Page the user came from, if known.' });
  return { ...s, fields };
}

function scoredV1(): AvscRecord {
  return schemaFile('scored-candidates.avsc') as unknown as AvscRecord;
}

/** v2 of ScoredCandidates: a new top-level field and a new field inside the nested Candidate record. */
function scoredV2(): AvscRecord {
  const s = scoredV1();
  const fields = s.fields.map((f) => {
    if (f.name !== 'candidates') return f;
    const arr = f.type as { type: 'array'; items: AvscRecord };
    return {
      ...f,
      type: { ...arr, items: { ...arr.items, fields: [...arr.items.fields, { name: 'bidMicros', type: 'long', default: 0, doc: 'Bid of the ad.' }] } },
    };
  });
  fields.push({ name: 'experimentId', type: ['null', 'string'], default: null, doc: 'A/B test arm.' });
  return { ...s, fields };
}

describe('AvroCodec schema evolution', () => {
  it('a v2 reader decodes ClickEvent written with v1 (id 1), filling the new field with its default', () => {
    // The producer has not upgraded: it only knows v1 under id 1.
    const oldProducer = new AvroCodec(tableOf([[1, clickV1()]]));
    // This processor has upgraded: v1 under id 1 and v2 under id 101.
    const upgraded = new AvroCodec(tableOf([[1, clickV1()], [101, clickV2()]]));

    for (const action of ['VIEW', 'CLICK', 'ADD_TO_CART', 'PURCHASE']) {
      const v1Value = { ...clickValue, action };
      const written = oldProducer.encode(CLICK, v1Value);
      expect(written.readUInt32BE(1)).toBe(1);
      const got = upgraded.decode<Record<string, unknown>>(written, new Set([CLICK]));
      expect(got.schemaName).toBe(CLICK);
      expect(got.value).toEqual({ ...v1Value, referrer: null });
      expect(Object.keys(got.value)).toContain('referrer');
    }

    // New writes use the newest version (id 101), with the new symbol and field.
    const v2Value = { ...clickValue, action: 'SHARE', referrer: 'https://例子.测试/路径?q=😀' };
    const written2 = upgraded.encode(CLICK, v2Value);
    expect(written2.readUInt32BE(1)).toBe(101);
    expect([...written2.subarray(0, 5)]).toEqual([0, 0, 0, 0, 101]);
    expect(upgraded.decode(written2, new Set([CLICK])).value).toEqual(v2Value);
    // And the v1-only codec does not know id 101.
    expect(rejection(() => oldProducer.decode(written2, new Set([CLICK]))).reason).toBe('UNKNOWN_SCHEMA');
  });

  it('a v1 reader decodes ClickEvent written with v2, dropping the new field', () => {
    const newProducer = new AvroCodec(tableOf([[1, clickV1()], [101, clickV2()]]));
    // SchemaTable reads into the highest id of a name; to model a consumer still on v1 that has
    // learned v2's id (e.g. from a registry), v1 is registered above 101.
    const oldConsumer = new AvroCodec(tableOf([[101, clickV2()], [201, clickV1()]]));

    const v2Value = { ...clickValue, action: 'ADD_TO_CART', referrer: 'https://example.com/שלום' };
    const written = newProducer.encode(CLICK, v2Value);
    expect(written.readUInt32BE(1)).toBe(101);
    const got = oldConsumer.decode<Record<string, unknown>>(written, new Set([CLICK]));
    const { referrer: _dropped, ...expected } = v2Value;
    expect(got.value).toEqual(expected);
    expect('referrer' in got.value).toBe(false);

    // A symbol v1 does not know resolves to the enum's declared default (VIEW in click-event.avsc).
    const enumDefault = (clickV1().fields.find((f) => f.name === 'action')!.type as { default: string }).default;
    expect(enumDefault).toBe('VIEW');
    const share = oldConsumer.decode<Record<string, unknown>>(newProducer.encode(CLICK, { ...v2Value, action: 'SHARE' }), new Set([CLICK]));
    expect(share.value.action).toBe(enumDefault);
  });

  it('ScoredCandidates: v1 data reads as v2 (top-level and nested defaults) and v2 data reads as v1', () => {
    const v1Only = new AvroCodec(tableOf([[5, scoredV1()]]));
    const upgraded = new AvroCodec(tableOf([[5, scoredV1()], [105, scoredV2()]]));
    const oldConsumer = new AvroCodec(tableOf([[105, scoredV2()], [205, scoredV1()]]));

    const v1Value = withFloat32(SCORED, scoredValue) as typeof scoredValue;
    const asV2 = upgraded.decode<Record<string, unknown>>(v1Only.encode(SCORED, v1Value), new Set([SCORED])).value;
    expect(asV2).toEqual({
      ...v1Value,
      candidates: v1Value.candidates.map((c) => ({ ...c, bidMicros: 0 })),
      experimentId: null,
    });

    const v2Value = {
      ...v1Value,
      candidates: v1Value.candidates.map((c, i) => ({ ...c, bidMicros: 1_000_000 * (i + 1) })),
      experimentId: 'arm-B',
    };
    const written = upgraded.encode(SCORED, v2Value);
    expect(written.readUInt32BE(1)).toBe(105);
    const asV1 = oldConsumer.decode<Record<string, unknown>>(written, new Set([SCORED])).value;
    expect(asV1).toEqual(v1Value);
    expect('experimentId' in asV1).toBe(false);
  });

  it('ReviewEvent: a v2 that drops an optional field still reads v1 data and v1 reads v2 data', () => {
    const v1 = schemaFile('review-event.avsc') as unknown as AvscRecord;
    const v2: AvscRecord = { ...v1, fields: v1.fields.filter((f) => f.name !== 'language') };
    const v1Codec = new AvroCodec(tableOf([[3, v1]]));
    const upgraded = new AvroCodec(tableOf([[3, v1], [103, v2]]));
    const oldConsumer = new AvroCodec(tableOf([[103, v2], [203, v1]]));

    const { language: _l, ...v2Value } = reviewValue;
    expect(upgraded.decode(v1Codec.encode(REVIEW, reviewValue), new Set([REVIEW])).value).toEqual(v2Value);
    // v1 reader fills the removed field with its default (null).
    expect(oldConsumer.decode(upgraded.encode(REVIEW, v2Value), new Set([REVIEW])).value).toEqual({ ...v2Value, language: null });
  });

  it('writes big-endian ids above 255 in the header', () => {
    const id = 0x01020304;
    const codec = new AvroCodec(tableOf([[id, clickV1()]]));
    const buf = codec.encode(CLICK, clickValue);
    expect([...buf.subarray(0, 5)]).toEqual([0, 1, 2, 3, 4]);
    expect(codec.decode(buf, new Set([CLICK])).value).toEqual(clickValue);
  });
});

function tableOf(entries: Array<[number, AvscRecord]>): SchemaTable {
  const t = new SchemaTable();
  for (const [id, s] of entries) t.add(id, s as unknown as avro.Schema);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

describe('AvroCodec decode errors', () => {
  const codec = new AvroCodec();
  const clicks = new Set([CLICK]);

  it('EMPTY_VALUE for null and zero bytes', () => {
    expect(rejection(() => codec.decode(null, clicks)).reason).toBe('EMPTY_VALUE');
    expect(rejection(() => codec.decode(Buffer.alloc(0), clicks)).reason).toBe('EMPTY_VALUE');
  });

  it('BAD_FRAMING for a wrong magic byte or fewer than 5 bytes', () => {
    const good = codec.encode(CLICK, clickValue);
    for (const magic of [1, 0x7f, 0xff]) {
      const bad = Buffer.from(good);
      bad[0] = magic;
      expect(rejection(() => codec.decode(bad, clicks)).reason).toBe('BAD_FRAMING');
    }
    for (let n = 1; n < 5; n++) {
      expect(rejection(() => codec.decode(good.subarray(0, n), clicks)).reason).toBe('BAD_FRAMING');
    }
    // Plain JSON or text on the topic.
    expect(rejection(() => codec.decode(Buffer.from(JSON.stringify(clickValue)), clicks)).reason).toBe('BAD_FRAMING');
  });

  it('UNKNOWN_SCHEMA for an id missing from index.json', () => {
    const known = new Set(INDEX.schemas.map((s) => s.id));
    const body = codec.encode(CLICK, clickValue).subarray(5);
    for (const id of [0, 1000, 101, 0x01000001, 0xffffffff]) {
      expect(known.has(id)).toBe(false);
      const header = Buffer.alloc(5);
      header.writeUInt32BE(id, 1);
      const err = rejection(() => codec.decode(Buffer.concat([header, body]), clicks));
      expect(err.reason).toBe('UNKNOWN_SCHEMA');
      expect(err.message).toContain(String(id));
    }
  });

  it('WRONG_SCHEMA for a review (or any other record) where only ClickEvent is accepted', () => {
    const err = rejection(() => codec.decode(codec.encode(REVIEW, reviewValue), clicks));
    expect(err.reason).toBe('WRONG_SCHEMA');
    expect(err.message).toContain(REVIEW);
    expect(err.message).toContain(CLICK);
    for (const [name, , value] of SAMPLES) {
      if (name === CLICK) continue;
      expect(rejection(() => codec.decode(codec.encode(name, value), clicks)).reason).toBe('WRONG_SCHEMA');
    }
    // An empty accepted set accepts nothing.
    expect(rejection(() => codec.decode(codec.encode(CLICK, clickValue), new Set())).reason).toBe('WRONG_SCHEMA');
  });

  it('DECODE_FAILED for every truncation of the body, for every schema', () => {
    for (const [name, label, value] of SAMPLES) {
      const buf = codec.encode(name, value);
      const accepted = new Set([name]);
      // Every strict prefix of at least the header must fail: decoding follows the same path as
      // the full buffer until it needs a byte past the cut.
      for (let n = 5; n < buf.length; n++) {
        const err = rejection(() => codec.decode(Buffer.from(buf.subarray(0, n)), accepted));
        expect(err.reason, `${label} cut to ${n}/${buf.length} bytes`).toBe('DECODE_FAILED');
        expect(err.message, `${label} cut to ${n}/${buf.length} bytes`).not.toMatch(/trailing/);
      }
    }
  });

  it('DECODE_FAILED for trailing garbage', () => {
    for (const [name, label, value] of SAMPLES) {
      const buf = codec.encode(name, value);
      for (const extra of [[0], [0xff], [1, 2, 3], Array.from({ length: 100 }, (_, i) => i)]) {
        const err = rejection(() => codec.decode(Buffer.concat([buf, Buffer.from(extra)]), new Set([name])));
        expect(err.reason, label).toBe('DECODE_FAILED');
        expect(err.message).toContain(`${extra.length} unexpected trailing byte`);
      }
    }
  });

  it('DECODE_FAILED for a header with no body, and for an out-of-range enum index or union branch', () => {
    expect(rejection(() => codec.decode(Buffer.from([0, 0, 0, 0, idOf(CLICK)]), clicks)).reason).toBe('DECODE_FAILED');

    const clickType = avro.Type.forSchema(schemaFile('click-event.avsc'));
    const body = clickType.toBuffer(clickValue);
    // Locate the enum index byte: it follows the four strings; ADD_TO_CART is index 2 -> zigzag 4.
    const prefix = avro.Type.forSchema({ type: 'record', name: 'P', fields: ['eventId', 'userId', 'itemId', 'categoryId'].map((n) => ({ name: n, type: 'string' })) }).toBuffer(clickValue);
    expect(body[prefix.length]).toBe(4);
    const badEnum = Buffer.from(body);
    badEnum[prefix.length] = 2 * 9; // index 9: no such symbol
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, idOf(CLICK)]), badEnum]);
    const err = rejection(() => codec.decode(framed, clicks));
    expect(err.reason).toBe('DECODE_FAILED');

    // ImageViewEvent's image union has two branches; branch index 5 does not exist.
    const imgType = avro.Type.forSchema(schemaFile('image-view-event.avsc'));
    const imgPrefix = avro.Type.forSchema({
      type: 'record',
      name: 'Q',
      fields: [
        { name: 'eventId', type: 'string' },
        { name: 'userId', type: 'string' },
        { name: 'itemId', type: 'string' },
        { name: 'categoryId', type: ['null', 'string'] },
        { name: 'imageId', type: 'string' },
      ],
    }).toBuffer(imageReference);
    const imgBody = Buffer.from(imgType.toBuffer(imageReference));
    expect(imgBody[imgPrefix.length]).toBe(2); // branch 1 (ImageReference) -> zigzag 2
    imgBody[imgPrefix.length] = 10;
    const err2 = rejection(() => codec.decode(Buffer.concat([Buffer.from([0, 0, 0, 0, idOf(IMAGE)]), imgBody]), new Set([IMAGE])));
    expect(err2.reason).toBe('DECODE_FAILED');
  });

  it('the reason codes used are all documented in ReasonCodes', () => {
    for (const code of ['EMPTY_VALUE', 'BAD_FRAMING', 'UNKNOWN_SCHEMA', 'WRONG_SCHEMA', 'DECODE_FAILED'] satisfies ReasonCode[]) {
      expect(ReasonCodes[code]).toBeTruthy();
    }
  });
});

describe('AvroCodec fuzz: every failure is a RejectedRecordError', () => {
  // Schemas whose values arrive from outside (event topics, catalog) plus DeadLetter. The output
  // schemas with arrays are left out: avsc allocates and loops over an array's declared item
  // count before noticing the buffer ran out, so a tiny corrupt record claiming 1e8 items takes
  // many seconds (see the report); they are never decoded from untrusted input by the processor.
  const FUZZ_NAMES = [CLICK, IMAGE, REVIEW, AD, DEAD];
  const accepted = new Set(FUZZ_NAMES);
  const codec = new AvroCodec();
  const valid = SAMPLES.filter(([n]) => accepted.has(n)).map(([n, , v]) => codec.encode(n, v));
  const knownIds = FUZZ_NAMES.map(idOf);

  it('2,000+ random and mutated buffers with a seeded PRNG', () => {
    const rand = seededRandom(0xad57ea);
    const int = (n: number) => Math.floor(rand() * n);
    const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

    const cases: Buffer[] = [];
    // Fully random buffers, including short ones.
    for (let i = 0; i < 400; i++) cases.push(randomBytes(int(48)));
    // A valid header of a known schema followed by random bytes.
    for (let i = 0; i < 600; i++) {
      const header = Buffer.from([0, 0, 0, 0, 0]);
      header.writeUInt32BE(knownIds[int(knownIds.length)]!, 1);
      cases.push(Buffer.concat([header, randomBytes(int(80))]));
    }
    // Mutations of valid encodings: flips, inserts, deletes, cuts, appends.
    for (let i = 0; i < 1200; i++) {
      const base = valid[int(valid.length)]!;
      let b = Buffer.from(base);
      const edits = 1 + int(4);
      for (let e = 0; e < edits; e++) {
        const op = int(5);
        const at = int(Math.max(1, b.length));
        if (op === 0 && b.length > 0) b[at] = int(256);
        else if (op === 1 && b.length > 0) b[at] = b[at]! ^ (1 << int(8));
        else if (op === 2) b = Buffer.concat([b.subarray(0, at), randomBytes(1 + int(4)), b.subarray(at)]);
        else if (op === 3) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(4))]);
        else b = b.subarray(0, at);
      }
      cases.push(b);
    }
    expect(cases.length).toBeGreaterThanOrEqual(2000);

    const seen = new Map<string, number>();
    let decodedOk = 0;
    for (const [i, buf] of cases.entries()) {
      try {
        const d = codec.decode(buf, accepted);
        expect(accepted.has(d.schemaName)).toBe(true);
        decodedOk++;
      } catch (err) {
        if (!(err instanceof RejectedRecordError)) {
          throw new Error(`case ${i} (${buf.toString('hex')}) threw ${String(err)} instead of a RejectedRecordError`);
        }
        expect(Object.keys(ReasonCodes)).toContain(err.reason);
        seen.set(err.reason, (seen.get(err.reason) ?? 0) + 1);
      }
    }
    // The fuzz really reached each stage of the decoder.
    for (const reason of ['EMPTY_VALUE', 'BAD_FRAMING', 'UNKNOWN_SCHEMA', 'DECODE_FAILED']) {
      expect(seen.get(reason) ?? 0, reason).toBeGreaterThan(0);
    }
    expect((seen.get('DECODE_FAILED') ?? 0) + decodedOk).toBeGreaterThan(500);
  });
});

// ---------------------------------------------------------------------------------------------
// Encode errors
// ---------------------------------------------------------------------------------------------

describe('AvroCodec encode errors', () => {
  const codec = new AvroCodec();

  it('names the bad field', () => {
    expect(() => codec.encode(CLICK, { ...clickValue, action: 'LIKE' })).toThrow(/ClickEvent.*bad field\(s\) action\b/);
    expect(() => codec.encode(CLICK, { ...clickValue, eventTime: '2024-05-29' })).toThrow(/bad field\(s\) eventTime\b/);
    expect(() => codec.encode(REVIEW, { ...reviewValue, rating: 4.5 })).toThrow(/bad field\(s\) rating\b/);
    const { userId: _u, ...noUser } = clickValue;
    expect(() => codec.encode(CLICK, noUser)).toThrow(/bad field\(s\) userId\b/);
  });

  it('names nested fields with their path', () => {
    expect(() => codec.encode(SCORED, { ...scoredValue, candidates: [{ adId: 'a', score: 'high', categoryId: 'c' }] })).toThrow(/bad field\(s\) candidates\.0\.score\b/);
    expect(() =>
      codec.encode(IMAGE, { ...imageInline, image: { 'dev.adstream.events.InlineImage': { data: 'not bytes', contentType: null } } }),
    ).toThrow(/bad field\(s\) image\.dev\.adstream\.events\.InlineImage\.data\b/);
  });

  it('lists every bad field', () => {
    let message = '';
    try {
      codec.encode(CLICK, { ...clickValue, itemId: 42, sessionId: 7 });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/itemId/);
    expect(message).toMatch(/sessionId/);
    expect(message).not.toMatch(/eventId/);
  });

  it('refuses an unknown schema name', () => {
    expect(() => codec.encode('dev.adstream.events.Nope', {})).toThrow(/no schema named dev\.adstream\.events\.Nope/);
  });
});

describe('AvroCodec with an incompatible writer version', () => {
  it('rejects its records as SCHEMA_UNRESOLVABLE instead of throwing a plain error', () => {
    const record = (fields: object[]) => ({ type: 'record', name: 'dev.test.Thing', fields }) as never;
    const table = new SchemaTable();
    // The newest version adds a field with no default: records of the older one cannot be resolved.
    table.add(1, record([{ name: 'a', type: 'string' }]));
    table.add(2, record([{ name: 'a', type: 'string' }, { name: 'b', type: 'int' }]));
    const writerOnly = new SchemaTable();
    writerOnly.add(1, record([{ name: 'a', type: 'string' }]));
    const bytes = new AvroCodec(writerOnly).encode('dev.test.Thing', { a: 'x' });
    const codec = new AvroCodec(table);
    for (let i = 0; i < 2; i++) {
      let caught: unknown;
      try {
        codec.decode(bytes, new Set(['dev.test.Thing']));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RejectedRecordError);
      expect((caught as RejectedRecordError).reason).toBe('SCHEMA_UNRESOLVABLE');
      expect((caught as Error).message).toMatch(/cannot be read/);
    }
  });
});

describe('RecordNames', () => {
  it('names exactly the records of schemas/index.json', () => {
    const index = JSON.parse(readFileSync(new URL('index.json', SCHEMA_DIR), 'utf8')) as { schemas: { name: string }[] };
    expect(Object.values(RecordNames).sort()).toEqual(index.schemas.map((s) => s.name).sort());
  });
});
